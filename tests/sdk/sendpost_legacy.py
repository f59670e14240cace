"""The legacy SendPost contract through the official Python SDK 2.0.1
(`sendpost-python-sdk==2.0.1`, import `sendpost_python_sdk`), unchanged but
for its host. 2.0.1 decodes the delete reply as an array of {id, message}
and the bounce text as `smtp_error` (docs/api/sendpost.md, "Contracts"); hush tells it by
its User-Agent, `OpenAPI-Generator/2.0.1/python`."""
import datetime
import os
import sys

import sendpost_python_sdk as sp

URL = os.environ["HUSH_URL"]
KEY = os.environ["SENDPOST_KEY"]


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


cfg = sp.Configuration(host=URL + "/api/v1")
cfg.api_key["subAccountAuth"] = KEY
today = datetime.datetime.now(datetime.timezone.utc).date()
FROM = today - datetime.timedelta(days=1)
TO = today + datetime.timedelta(days=1)

with sp.ApiClient(cfg) as api_client:
    api = sp.SuppressionApi(api_client)
    created = api.create_suppression(sp.CreateSuppressionRequest(
        hard_bounce=[sp.CreateSuppressionRequestHardBounceInner(email="legacy-bounce@example.com")],
        unsubscribe=[sp.CreateSuppressionRequestUnsubscribeInner(email="legacy-bounce@example.com")],
        manual=[sp.CreateSuppressionRequestManualInner(email="legacy-manual@example.com")],
    ))
    expect(all(isinstance(s, sp.Suppression) for s in created) and len(created) == 3, f"create: {created}")
    expect([s.reason for s in created] == [2, 0, 1], "reason codes")
    expect(all(type(s.id) is int and type(s.created) is int for s in created), "ints")
    expect(all(s.smtp_error == "" for s in created), "legacy smtp_error is read")

    rows = api.get_suppression_list(var_from=FROM, to=TO, search="legacy-")
    expect(sorted(s.id for s in rows) == sorted(s.id for s in created), "list")
    if os.environ.get("V3_BOUNCE"):
        rows = api.get_suppression_list(var_from=FROM, to=TO, search=os.environ["V3_BOUNCE"])
        expect(len(rows) == 1 and rows[0].smtp_error == "550 5.1.1 User unknown",
               "a v3 bounce's reason reaches 2.0.1 as smtp_error")

    info = api.delete_suppression_with_http_info(sp.DeleteSuppressionRequest(suppressions=[
        sp.CreateSuppressionRequestSpamComplaintInner(email="legacy-bounce@example.com"),
        sp.CreateSuppressionRequestSpamComplaintInner(email="legacy-manual@example.com"),
    ]))
    expect(info.status_code == 200 and header(info, "X-SendPost-Public-Contract") == "legacy",
           "the legacy contract is applied and echoed")
    expect(header(info, "Deprecation") == "true" and header(info, "Link").endswith('; rel="deprecation"'),
           "the legacy contract's deprecation signals (docs/api/sendpost.md, Contracts)")
    deleted = info.data
    expect(isinstance(deleted, list) and all(isinstance(d, sp.DeleteSuppression200ResponseInner) for d in deleted),
           f"delete returns the legacy array: {deleted}")
    expect(sorted(d.id for d in deleted) == sorted(s.id for s in created), "one item per entry removed, with its id")
    expect(all(d.message == "Suppressions have been deleted successfully" for d in deleted), "legacy message")
    expect(api.get_suppression_list(var_from=FROM, to=TO, search="legacy-") == [], "gone")
print("python sendpost 2.0.1: all passed")
