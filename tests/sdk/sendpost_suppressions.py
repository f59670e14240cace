"""The SendPost suppression API through the official Python SDK
(`sendpost==3.0.0`, import `sendpost_python_sdk`), unchanged but for its
host (docs/api/sendpost.md). Every step checks the SDK's typed result:
the SDK validates strictly (StrictInt, enums), so a wrong type on the wire
fails here."""
import datetime
import json
import os
import sys

import sendpost_python_sdk as sp
from sendpost_python_sdk import exceptions

URL = os.environ["HUSH_URL"]
KEY = os.environ["SENDPOST_KEY"]
V3_BOUNCE = os.environ.get("V3_BOUNCE")  # an address the test added through v3


def header(info, name):
    """A response header from `*_with_http_info`. The SDK hands headers over
    as a plain dict keyed as sent, and hush sends names in lowercase (valid
    HTTP; actix cannot send SendPost's mixed case), so look them up without
    regard to case."""
    return {k.lower(): v for k, v in info.headers.items()}[name.lower()]


def expect(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def client(key=KEY, host=URL + "/api/v1"):
    cfg = sp.Configuration(host=host)
    if key is not None:
        cfg.api_key["subAccountAuth"] = key
    return sp.ApiClient(cfg)


today = datetime.datetime.now(datetime.timezone.utc).date()
FROM = today - datetime.timedelta(days=1)
TO = today + datetime.timedelta(days=1)

api_client = client()
api = sp.SuppressionApi(api_client)


def listing(**kwargs):
    return api.get_suppression_list(var_from=FROM, to=TO, **kwargs)


def count():
    """The legacy count endpoint has no method in 3.0.0 (docs/api/sendpost.md, count); it goes
    through the SDK's own ApiClient, auth and decoding."""
    params = api_client.param_serialize(
        method="GET",
        resource_path="/subaccount/suppression/count",
        header_params={"Accept": "application/json"},
        auth_settings=["subAccountAuth"],
    )
    response = api_client.call_api(*params)
    response.read()
    result = api_client.response_deserialize(response, {"200": "object"})
    expect(result.status_code == 200, "count is 200")
    return result.data["count"]


def is_int(value):
    return type(value) is int


def expect_error(call, exception, status, param, what):
    try:
        call()
    except exception as err:
        body = json.loads(err.body)["error"]
        expect(
            err.status == status and body["param"] == param and body["message"],
            f"{what}: {status} naming {param!r} ({body['message']})",
        )
        return body
    expect(False, f"{what}: expected {exception.__name__}")


# --- create, one list per reason -------------------------------------------
created = api.create_suppression(sp.CreateSuppressionRequest(
    hard_bounce=[sp.CreateSuppressionRequestHardBounceInner(email="Jack.Barker@Hooli.com")],
    manual=[sp.CreateSuppressionRequestManualInner(email="russ@hanneman.com")],
    unsubscribe=[sp.CreateSuppressionRequestUnsubscribeInner(email="jared@piedpiper.com")],
    spam_complaint=[sp.CreateSuppressionRequestSpamComplaintInner(email="gilfoyle@piedpiper.com")],
))
expect(all(isinstance(s, sp.Suppression) for s in created) and len(created) == 4, f"create returns 4 Suppression: {created}")
expect(
    [(s.email, s.reason, s.reason_text) for s in created] == [
        ("jack.barker@hooli.com", 2, "hardBounce"),
        ("russ@hanneman.com", 0, "manual"),
        ("jared@piedpiper.com", 1, "unsubscribe"),
        ("gilfoyle@piedpiper.com", 3, "spamComplaint"),
    ],
    "each list gets its reason code and text",
)
expect(all(is_int(s.id) and is_int(s.created) and is_int(s.reason) for s in created), "id, reason, created are ints")
# 2020-01-01 and 2100-01-01 in nanoseconds: seconds or milliseconds would
# be far below.
expect(all(1_577_836_800 * 10**9 < s.created < 4_102_444_800 * 10**9 for s in created), "created is unix nanoseconds")
expect(all(s.smtp_error == "" for s in created), "smtpError is an empty string for new entries")
expect(len({s.id for s in created}) == 4, "each entry has its own id")

for reason, build, field in [
    ("hardBounce", sp.CreateSuppressionRequestHardBounceInner, "hard_bounce"),
    ("manual", sp.CreateSuppressionRequestManualInner, "manual"),
    ("unsubscribe", sp.CreateSuppressionRequestUnsubscribeInner, "unsubscribe"),
    ("spamComplaint", sp.CreateSuppressionRequestSpamComplaintInner, "spam_complaint"),
]:
    one = api.create_suppression(sp.CreateSuppressionRequest(**{field: [build(email=f"only-{reason.lower()}@example.com")]}))
    expect(len(one) == 1 and one[0].reason_text == reason, f"create {reason} alone")

again = api.create_suppression(sp.CreateSuppressionRequest(
    manual=[sp.CreateSuppressionRequestManualInner(email="RUSS@hanneman.com")]))
expect(
    len(again) == 1 and again[0].id == created[1].id and again[0].created == created[1].created,
    "adding twice keeps the id and created",
)

# Enough rows that the default limit of 20 shows in the listing.
PAGED = 13
api.create_suppression(sp.CreateSuppressionRequest(
    manual=[sp.CreateSuppressionRequestManualInner(email=f"page{i:02}@example.com") for i in range(PAGED)]))

# --- list: required days, paging, search, type -----------------------------
everything = listing(limit=100)
expected_total = 4 + 4 + PAGED + (1 if V3_BOUNCE else 0)
expect(expected_total > 20, f"more rows ({expected_total}) than the default limit")
expect(len(everything) == expected_total, f"list shows all {expected_total} rows")
expect(all(isinstance(s, sp.Suppression) and is_int(s.created) for s in everything), "list items are typed")
expect(
    [s.created for s in everything] == sorted((s.created for s in everything), reverse=True),
    "newest first",
)
default_page = listing()
expect(len(default_page) == 20, f"limit defaults to 20: {len(default_page)} of {expected_total}")
expect([s.id for s in default_page] == [s.id for s in everything[:20]], "the default page is the newest 20")

pages = []
offset = 0
while True:
    page = listing(limit=4, offset=offset)
    expect(len(page) <= 4, f"page at offset {offset} has at most 4")
    if not page:
        break
    pages.extend(page)
    offset += 4
expect([s.id for s in pages] == [s.id for s in everything], "limit/offset pages join up")
expect(listing(limit=1)[0].id == everything[0].id, "limit=1")

found = listing(search="PIEDPIPER")
expect(sorted(s.email for s in found) == ["gilfoyle@piedpiper.com", "jared@piedpiper.com"], "search is a case-insensitive substring")
found = listing(search="page03@")
expect([s.email for s in found] == ["page03@example.com"], "search within an address")

for reason, code in [("hardBounce", 2), ("manual", 0), ("unsubscribe", 1), ("spamComplaint", 3)]:
    rows = listing(type=reason, limit=100)
    expect(rows and all(s.reason == code and s.reason_text == reason for s in rows), f"type={reason} lists reason {code}")
manual = listing(type="manual", limit=100)
expect(len(manual) == 1 + 1 + PAGED, "type=manual counts")

old = api.get_suppression_list(var_from=datetime.date(2020, 1, 1), to=datetime.date(2020, 2, 29))
expect(old == [], "a window without entries is an empty list")

if V3_BOUNCE:
    rows = listing(search=V3_BOUNCE)
    expect(
        len(rows) == 1 and rows[0].reason == 2 and rows[0].reason_text == "hardBounce"
        and rows[0].smtp_error == "550 5.1.1 User unknown",
        f"a v3 bounce reads as reason 2 with its reason as smtpError: {rows}",
    )

# --- count ----------------------------------------------------------------
counted = count()
expect(type(counted) is int, f"count is a JSON integer: {counted!r}")
expect(counted == expected_total, "count matches the list")

# --- headers and host forms ------------------------------------------------
info = api.get_suppression_list_with_http_info(var_from=FROM, to=TO, limit=1)
expect(info.status_code == 200 and header(info, "X-SendPost-Public-Contract") == "v1", "v1 contract echoed")
expect(header(info, "Content-Type").startswith("application/json"), "JSON content type")
with client(host=URL + "/api/v1/") as slash:
    rows = sp.SuppressionApi(slash).get_suppression_list(var_from=FROM, to=TO, limit=100)
    expect(len(rows) == expected_total, "a host with a trailing slash (//) works")

# --- delete -----------------------------------------------------------------
gone = api.delete_suppression(sp.DeleteSuppressionRequest(suppressions=[
    sp.DeleteSuppressionRequestSuppressionsInner(email="gilfoyle@piedpiper.com"),
    sp.DeleteSuppressionRequestSuppressionsInner(email="Jared@PiedPiper.com"),
]))
expect(isinstance(gone, sp.DeleteSuppression200Response), "delete returns the v1 object")
expect(gone.message == "Suppressions have been deleted successfully", "delete message")
expect(listing(search="piedpiper") == [], "deleted addresses are gone")
expect(count() == expected_total - 2, "count after delete")
again = api.delete_suppression(sp.DeleteSuppressionRequest(suppressions=[
    sp.DeleteSuppressionRequestSuppressionsInner(email="gilfoyle@piedpiper.com")]))
expect(again.message == "Suppressions have been deleted successfully", "deleting again is fine")

# --- errors ------------------------------------------------------------------
with client(key=None) as anonymous:
    body = expect_error(
        lambda: sp.SuppressionApi(anonymous).get_suppression_list(var_from=FROM, to=TO),
        exceptions.UnauthorizedException, 401, None, "no key")
    expect(body["code"] == "authentication_failed" and body["type"] == "authentication_error", "401 envelope")
with client(key="not-a-key") as wrong:
    expect_error(
        lambda: sp.SuppressionApi(wrong).create_suppression(sp.CreateSuppressionRequest(
            manual=[sp.CreateSuppressionRequestManualInner(email="x@example.com")])),
        exceptions.UnauthorizedException, 401, None, "wrong key")

body = expect_error(lambda: api.create_suppression(sp.CreateSuppressionRequest()),
                    exceptions.UnprocessableEntityException, 422, "body", "empty create")
expect(body["code"] == "validation_error" and body["type"] == "invalid_request_error", "422 envelope")
expect_error(lambda: api.create_suppression(sp.CreateSuppressionRequest(manual=[sp.CreateSuppressionRequestManualInner()])),
             exceptions.UnprocessableEntityException, 422, "manual[0].email", "item without email")
expect_error(lambda: api.create_suppression(sp.CreateSuppressionRequest(
                 hard_bounce=[sp.CreateSuppressionRequestHardBounceInner(email="ok@example.com"),
                              sp.CreateSuppressionRequestHardBounceInner(email="not-an-email")])),
             exceptions.UnprocessableEntityException, 422, "hardBounce[1].email", "invalid email")
expect(listing(search="ok@example.com") == [], "nothing stored by a refused create")
expect_error(lambda: api.delete_suppression(sp.DeleteSuppressionRequest()),
             exceptions.UnprocessableEntityException, 422, "suppressions", "empty delete")

for kwargs, param in [
    (dict(var_from=datetime.date(2024, 1, 1), to=datetime.date(2024, 3, 2)), "to"),
    (dict(var_from=datetime.date(2024, 1, 2), to=datetime.date(2024, 1, 1)), "to"),
    (dict(var_from=FROM, to=TO, limit=0), "limit"),
    (dict(var_from=FROM, to=TO, limit=101), "limit"),
    (dict(var_from=FROM, to=TO, offset=-1), "offset"),
    (dict(var_from=FROM, to=TO, type="not-a-type"), "type"),
]:
    body = expect_error(lambda: api.get_suppression_list(**kwargs),
                        exceptions.UnprocessableEntityException, 422, param, f"list {kwargs}")
    expect(body["code"] == "invalid_request", "query errors are invalid_request")

print("python sendpost 3.0.0: all passed")
