"""The suppressions and message-streams endpoints through postmarker 1.0,
which has no methods for them, so its users go through client.call
(postmarker reads both keys of an error). postmarker needs JSON with both ErrorCode and
Message on every error and JSON on every success."""
import os

from postmarker.core import PostmarkClient
from postmarker.exceptions import ClientError

ROOT = os.environ["HUSH_URL"] + "/"
TOKEN = os.environ["POSTMARK_TOKEN"]
NO_AUTHORITY = "You do not have the required authority to change this suppression."
INVALID = "An invalid email address was provided."


def check(ok, context=None):
    """Fails the suite unless ok. A bare `assert` is removed when Python runs
    with -O or PYTHONOPTIMIZE, and the suite would then pass vacuously."""
    if not ok:
        raise AssertionError("check failed" if context is None else context)


pm = PostmarkClient(server_token=TOKEN, root_api_url=ROOT, timeout=30)
DUMP = "/message-streams/outbound/suppressions/dump"


def refused(code, *args, client=pm, **kwargs):
    try:
        client.call(*args, **kwargs)
    except ClientError as err:
        check(err.error_code == code, (err.error_code, str(err)))
        return str(err)
    raise AssertionError(f"expected error {code} for {args}")


def emails(**query):
    rows = pm.call("GET", DUMP, **query)["Suppressions"]
    for row in rows:
        check(sorted(row) == ["CreatedAt", "EmailAddress", "Origin", "SuppressionReason"], row)
    return [r["EmailAddress"] for r in rows]


def changes(path, addresses):
    body = {"Suppressions": [{"EmailAddress": a} for a in addresses]}
    reply = pm.call("POST", path, data=body)
    return [(s["EmailAddress"], s["Status"], s["Message"]) for s in reply["Suppressions"]]


rows = pm.call("GET", DUMP)["Suppressions"]
check([(r["EmailAddress"], r["SuppressionReason"], r["Origin"]) for r in rows] == [
    ("admin.blocked@example.com", "ManualSuppression", "Admin"),
    ("unsubscribed@example.com", "ManualSuppression", "Recipient"),
    ("spam.complaint@example.com", "SpamComplaint", "Recipient"),
    ("hard.bounce@example.com", "HardBounce", "Recipient"),
], rows)

# Every filter, with the spellings of the doc's own example (lowercase).
check(emails(SuppressionReason="HardBounce", Origin="Recipient", fromdate="2019-12-01",
              todate="2019-12-31", EmailAddress="hard.bounce@example.com") == ["hard.bounce@example.com"])
check(emails(suppressionreason="spamcomplaint") == ["spam.complaint@example.com"])
check(emails(SuppressionReason="ManualSuppression", ignored=None) == [
    "admin.blocked@example.com", "unsubscribed@example.com"])
check(emails(origin="admin") == ["admin.blocked@example.com"])
check(emails(origin="recipient", fromdate="2019-12-10", todate="2019-12-20") == [
    "unsubscribed@example.com", "spam.complaint@example.com"])
check(emails(todate="2019-12-05") == ["hard.bounce@example.com"])
check(emails(EmailAddress="admin.blocked@example.com") == ["admin.blocked@example.com"])
check("SuppressionReason" in refused(1404, "GET", DUMP, SuppressionReason="Bogus"))
check("Origin" in refused(1405, "GET", DUMP, Origin="Bogus"))

created = changes("/message-streams/outbound/suppressions", [
    "good.address@example.com", "spam.complaint@example.com", "invalid-email-address",
    "unsubscribed@example.com", "admin.blocked@example.com", "GOOD.address@example.com"])
check(created == [
    ("good.address@example.com", "Suppressed", None),
    ("spam.complaint@example.com", "Failed", NO_AUTHORITY),
    ("invalid-email-address", "Failed", INVALID),
    ("unsubscribed@example.com", "Failed", NO_AUTHORITY),
    ("admin.blocked@example.com", "Failed", NO_AUTHORITY),
    ("GOOD.address@example.com", "Suppressed", None),
], created)
check(emails(Origin="Customer") == ["good.address@example.com"])

deleted = changes("/message-streams/outbound/suppressions/delete", [
    "good.address@example.com", "hard.bounce@example.com", "not.suppressed@example.com",
    "spam.complaint@example.com", "unsubscribed@example.com", "admin.blocked@example.com",
    "invalid-email-address"])
check(deleted == [
    ("good.address@example.com", "Deleted", None),
    ("hard.bounce@example.com", "Deleted", None),
    ("not.suppressed@example.com", "Deleted", None),
    ("spam.complaint@example.com", "Failed", NO_AUTHORITY),
    ("unsubscribed@example.com", "Failed", NO_AUTHORITY),
    ("admin.blocked@example.com", "Failed", NO_AUTHORITY),
    ("invalid-email-address", "Failed", INVALID),
], deleted)
check(emails() == ["admin.blocked@example.com", "unsubscribed@example.com", "spam.complaint@example.com"])

many = {"Suppressions": [{"EmailAddress": f"u{i}@example.com"} for i in range(51)]}
refused(1410, "POST", "/message-streams/outbound/suppressions", data=many)
refused(1410, "POST", "/message-streams/outbound/suppressions/delete", data=many)
refused(1409, "POST", "/message-streams/outbound/suppressions")
refused(1409, "POST", "/message-streams/outbound/suppressions", data={"Suppressions": "a@example.com"})
# A malformed item is that item's Failed, never the whole request's 1409
# (docs/mapping.md, "Postmark malformed items"); the good address beside it is
# stored. With no address to echo, the item echoes "", and a non-string its
# JSON text.
odd = pm.call("POST", "/message-streams/outbound/suppressions", data={"Suppressions": [
    {"EmailAddress": "odd.ok@example.com"}, {}, {"EmailAddress": None}, {"EmailAddress": 5}]})
check([(s["EmailAddress"], s["Status"], s["Message"]) for s in odd["Suppressions"]] == [
    ("odd.ok@example.com", "Suppressed", None), ("", "Failed", INVALID), ("", "Failed", INVALID),
    ("5", "Failed", INVALID)], odd)
check(emails(EmailAddress="odd.ok@example.com") == ["odd.ok@example.com"])
check(changes("/message-streams/outbound/suppressions/delete", ["odd.ok@example.com"]) == [
    ("odd.ok@example.com", "Deleted", None)])
check(emails(EmailAddress="u0@example.com") == [])
refused(1226, "GET", "/message-streams/nope/suppressions/dump")
refused(1226, "POST", "/message-streams/nope/suppressions/delete", data={"Suppressions": []})

stranger = PostmarkClient(server_token="bad-token", root_api_url=ROOT)
refused(10, "GET", DUMP, client=stranger)
refused(10, "GET", "/message-streams", client=stranger)

# Message streams; archive and unarchive go without a body or Content-Type.
listed = pm.call("GET", "/message-streams", MessageStreamType="All", IncludeArchivedStreams=False)
check(listed["TotalCount"] == 1 and listed["MessageStreams"][0]["ID"] == "outbound", listed)
made = pm.call("POST", "/message-streams", data={
    "ID": "broadcast", "Name": "Broadcast Stream", "MessageStreamType": "Broadcasts"})
check(made["ID"] == "broadcast" and made["Description"] is None, made)
check(pm.call("GET", "/message-streams/broadcast") == made)
edited = pm.call("PATCH", "/message-streams/broadcast", data={"Description": "Weekly"})
check(edited["Description"] == "Weekly" and edited["UpdatedAt"] is not None, edited)
archived = pm.call("POST", "/message-streams/broadcast/archive")
check(archived["ID"] == "broadcast" and archived["ServerID"] == made["ServerID"], archived)
check(pm.call("GET", "/message-streams", IncludeArchivedStreams=True)["TotalCount"] == 2)
check(pm.call("GET", "/message-streams")["TotalCount"] == 1)
check(pm.call("POST", "/message-streams/broadcast/unarchive")["ArchivedAt"] is None)
check(pm.call("GET", "/message-streams", MessageStreamType="broadcasts")["TotalCount"] == 1)
refused(1221, "POST", "/message-streams", data={"ID": "x", "Name": "X", "MessageStreamType": "Fax"})
refused(1222, "POST", "/message-streams", data={"Name": "X", "MessageStreamType": "Broadcasts"})
refused(1223, "POST", "/message-streams", data={"ID": "x", "MessageStreamType": "Broadcasts"})
# A new stream is Transactional or Broadcasts, and Broadcasts must keep
# unsubscribe handling, on create and on edit (Postmark API docs, "Message
# Streams API").
refused(1221, "POST", "/message-streams", data={"ID": "in", "Name": "In", "MessageStreamType": "Inbound"})
refused(1239, "POST", "/message-streams", data={
    "ID": "x", "Name": "X", "MessageStreamType": "Broadcasts",
    "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "None"}})
refused(1239, "PATCH", "/message-streams/broadcast",
        data={"SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "None"}})
refused(1234, "PATCH", "/message-streams/broadcast", data={"Description": "<b>hi</b>"})
refused(1226, "POST", "/message-streams/nope/archive")
# The router's own answers are Postmark errors too, with both keys.
refused(0, "GET", "/message-streams/outbound/suppressions/dump/extra")
refused(0, "DELETE", "/message-streams/broadcast")
refused(0, "GET", "/no-such-endpoint")

print("postmarker: all passed")
