"""The `sendgrid` shape (docs/api/v3.md) through the official
Python SendGrid SDK, written as code against SendGrid itself would be."""
import json
import os
import sys

import sendgrid
from python_http_client import exceptions

URL = os.environ["HUSH_URL"]
c = sendgrid.SendGridAPIClient(api_key="SG.sdk-sg-writer", host=URL).client
ro = sendgrid.SendGridAPIClient(api_key="SG.sdk-sg-reader", host=URL).client
bad = sendgrid.SendGridAPIClient(api_key="SG.wrong", host=URL).client
sub = sendgrid.SendGridAPIClient(api_key="SG.sdk-sg-writer", host=URL, impersonate_subuser="sdk-sub").client
stranger = sendgrid.SendGridAPIClient(api_key="SG.sdk-sg-writer", host=URL, impersonate_subuser="nobody").client


def body(response):
    return json.loads(response.body) if response.body else None


def expect(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def refused(call, error, status, field=None, what=""):
    try:
        call()
    except error as err:
        envelope = err.to_dict
        expect(err.status_code == status and len(envelope["errors"]) == 1
               and envelope["errors"][0]["field"] == field
               and envelope["errors"][0]["message"], f"{what}: {status} envelope {envelope}")
        return envelope["errors"][0]["message"]
    expect(False, f"{what}: expected {status}")


# Fill the lists through hush's own extensions (SendGrid's MTA fills them).
c.suppression.bounces.post(request_body={"email": "hard@example.com", "reason": "550 5.1.1 User unknown"})
c.suppression.bounces.post(request_body={"email": "soft@example.com", "bounce_type": "soft", "reason": "452 4.2.2 Mailbox full"})
r = c.suppression.bounces.post(request_body={"email": "block@example.com", "bounce_type": "block", "reason": "554 5.7.1 blocked"})
expect(r.status_code == 201 and set(body(r)) == {"created", "email", "reason", "status"}, f"bounce create answers SendGrid's item {body(r)}")
c.suppression.spam_reports.post(request_body={"email": "spam@example.com"})
r = c.suppression.invalid_emails.post(request_body={"email": "invalid@example.com", "reason": "Mail domain mentioned in email address is unknown"})
expect(r.status_code == 201, "invalid email create (extension)")

# --- bounces, blocks, spam reports, invalid emails: bare arrays and Link
r = ro.suppression.bounces.get(query_params={"limit": 1, "offset": 0})
items = body(r)
expect(r.status_code == 200 and isinstance(items, list) and len(items) == 1
       and set(items[0]) == {"created", "email", "reason", "status"}, f"bounces are a bare array {items}")
link = r.headers["Link"]
expect('rel="next"' in link and 'rel="last"; title="2"' in link and "offset=1" in link, f"Link header {link}")
r = ro.suppression.bounces.get()
expect(sorted(b["email"] for b in body(r)) == ["hard@example.com", "soft@example.com"], "bounces are hard and soft")
r = ro.suppression.blocks.get()
expect([b["email"] for b in body(r)] == ["block@example.com"] and body(r)[0]["status"] == "5.7.1", "blocks are the block class")
r = ro.suppression.spam_reports.get()
expect(body(r)[0]["email"] == "spam@example.com" and body(r)[0]["ip"] == "", "spam reports carry ip")
r = ro.suppression.invalid_emails.get(query_params={"email": "inv"})
expect([i["email"] for i in body(r)] == ["invalid@example.com"], "invalid emails with a prefix filter")
for name in ["bounces", "blocks", "spam_reports", "invalid_emails"]:
    r = getattr(ro.suppression, name)._("nobody@example.com").get()
    expect(r.status_code == 200 and body(r) == [], f"{name}: absent is 200 []")
r = ro.suppression.bounces._("hard@example.com").get()
expect(len(body(r)) == 1 and body(r)[0]["status"] == "5.1.1", "one bounce is an array")
r = c.suppression.blocks._("block@example.com").delete()
expect(r.status_code == 204, "DELETE block 204")
refused(lambda: c.suppression.blocks._("block@example.com").delete(), exceptions.NotFoundError, 404, None, "DELETE absent block")
r = c.suppression.bounces.delete(request_body={"emails": ["hard@example.com"]})
expect(r.status_code == 204 and [b["email"] for b in body(ro.suppression.bounces.get())] == ["soft@example.com"], "bulk delete by emails")
c.suppression.invalid_emails.post(request_body={"email": "gone@example.com", "reason": "no such domain"})
r = c.suppression.invalid_emails._("gone@example.com").delete()
expect(r.status_code == 204 and body(ro.suppression.invalid_emails._("gone@example.com").get()) == [],
       "DELETE one invalid email")
refused(lambda: c.suppression.invalid_emails._("gone@example.com").delete(), exceptions.NotFoundError, 404, None,
        "DELETE absent invalid email")
r = c.suppression.invalid_emails.delete(request_body={"delete_all": True})
expect(r.status_code == 204 and body(ro.suppression.invalid_emails.get()) == [], "bulk delete_all")
refused(lambda: c.suppression.spam_reports.delete(request_body={"delete_all": True, "emails": ["a@example.com"]}),
        exceptions.BadRequestsError, 400, "delete_all", "both delete_all and emails")

# --- global unsubscribes
glob = c.asm.suppressions._("global")
r = glob.post(request_body={"recipient_emails": ["Test1@Example.com", "test2@example.com"]})
expect(r.status_code == 201 and body(r) == {"recipient_emails": ["Test1@Example.com", "test2@example.com"]}, "POST global echoes the request")
r = ro.suppression.unsubscribes.get(query_params={"limit": 10})
expect(sorted(u["email"] for u in body(r)) == ["test1@example.com", "test2@example.com"]
       and set(body(r)[0]) == {"created", "email"} and "Link" in r.headers, "unsubscribes list")
r = ro.asm.suppressions._("global")._("test1@example.com").get()
expect(body(r) == {"recipient_email": "test1@example.com"}, "global check: listed")
r = ro.asm.suppressions._("global")._("nobody@example.com").get()
expect(r.status_code == 200 and body(r) == {}, "global check: absent is 200 {}")
r = glob._("nobody@example.com").delete()
expect(r.status_code == 204, "DELETE global absent is 204")
# GET on the global path: hush's alias of the unsubscribes list
# (docs/api/v3.md).
r = ro.asm.suppressions._("global").get(query_params={"limit": 1})
expect(r.status_code == 200 and len(body(r)) == 1 and set(body(r)[0]) == {"created", "email"}
       and 'rel="last"; title="2"' in r.headers["Link"], f"GET global is the unsubscribes list {body(r)}")
r = ro.asm.suppressions._("global").get()
expect(sorted(u["email"] for u in body(r)) == ["test1@example.com", "test2@example.com"], "GET global lists every address")

# --- CSV imports with a sendgrid-shape key: the same report as the seed's
imp = sendgrid.SendGridAPIClient(api_key="SG.sdk-sg-writer", host=URL).client
csv_headers = {"Content-Type": "text/csv"}
r = imp.suppression.bounces._("import").post(
    request_body="email,reason\r\nsgimp1@example.com,\"550 5.1.1 User unknown\"\r\nnot-an-email,x\r\n",
    request_headers=csv_headers)
report = body(r)
expect(r.status_code == 200 and report["imported"] == 1 and report["skipped"] == 1
       and report["errors"][0]["row"] == 3 and report["errors"][0]["email"] == "not-an-email", f"bounce import {report}")
r = ro.suppression.bounces._("sgimp1@example.com").get()
expect(len(body(r)) == 1 and body(r)[0]["status"] == "5.1.1", "the imported bounce is listed")
r = imp.suppression.spam_reports._("import").post(request_body="sgimp2@example.com,fbl\n", request_headers=csv_headers)
expect(body(r) == {"imported": 1, "skipped": 0, "errors": []}, "spam import")
expect([s["email"] for s in body(ro.suppression.spam_reports._("sgimp2@example.com").get())] == ["sgimp2@example.com"],
       "the imported spam report is listed")
r = imp.asm.suppressions._("global")._("import").post(request_body="email\rsgimp3@example.com\rbad\r", request_headers=csv_headers)
report = body(r)
expect(report["imported"] == 1 and report["errors"][0]["row"] == 3, f"global import, bare CR rows {report}")
expect(body(ro.asm.suppressions._("global")._("sgimp3@example.com").get()) == {"recipient_email": "sgimp3@example.com"},
       "the imported unsubscribe is listed")

# --- groups
r = c.asm.groups.post(request_body={"name": "Newsletters", "description": "Monthly", "is_default": False})
news = body(r)
expect(r.status_code == 201 and news["last_email_sent_at"] is None and news["unsubscribes"] == 0, f"create group {news}")
r = ro.asm.groups.get(query_params={"id": [news["id"]]})
expect(body(r) == [news], "groups are a bare array, filtered by id")
r = c.asm.groups._(news["id"]).patch(request_body={"name": "Renamed"})
expect(r.status_code == 201 and body(r)["name"] == "Renamed", "PATCH is 201")
r = ro.asm.groups._(news["id"]).get()
expect(body(r)["name"] == "Renamed", "GET group")
members = c.asm.groups._(news["id"]).suppressions
r = members.post(request_body={"recipient_emails": ["Bob@Example.com", "amy@example.com"]})
expect(r.status_code == 201 and body(r) == {"recipient_emails": ["Bob@Example.com", "amy@example.com"]}, "add to group echoes")
r = ro.asm.groups._(news["id"]).suppressions.get()
expect(sorted(body(r)) == ["amy@example.com", "bob@example.com"], "members are an array of strings")
r = ro.asm.groups._(news["id"]).suppressions.search.post(request_body={"recipient_emails": ["bob@example.com", "x@example.com"]})
expect(r.status_code == 200 and body(r) == ["bob@example.com"], "search")
r = ro.asm.suppressions.get()
rows = body(r)
expect(len(rows) == 2 and all(row["group_id"] == news["id"] and row["group_name"] == "Renamed" for row in rows), f"all group suppressions {rows}")
r = ro.asm.suppressions._("bob@example.com").get()
flags = {g["name"]: g["suppressed"] for g in body(r)["suppressions"]}
expect(flags == {"Default Transactional Stream": False, "Renamed": True}, f"groups of an address {flags}")
r = members._("bob@example.com").delete()
expect(r.status_code == 204, "remove from group")
r = c.asm.groups._(987654).suppressions.post(request_body={"recipient_emails": ["orphan@example.com"]})
expect(r.status_code == 201 and body(ro.asm.suppressions._("global")._("orphan@example.com").get()) == {"recipient_email": "orphan@example.com"},
       "adding to an unknown group goes to global")
r = c.asm.groups._(news["id"]).delete()
expect(r.status_code == 204, "DELETE group")
refused(lambda: ro.asm.groups._(news["id"]).get(), exceptions.NotFoundError, 404, None, "deleted group")

# --- on-behalf-of
r = sub.asm.suppressions._("global").post(request_body={"recipient_emails": ["kid@example.com"]})
expect(r.status_code == 201, "write on behalf of a subuser")
r = sub.asm.suppressions._("global")._("kid@example.com").get()
expect(body(r) == {"recipient_email": "kid@example.com"}, "the subuser has it")
r = ro.asm.suppressions._("global")._("kid@example.com").get()
expect(body(r) == {}, "the parent does not")
refused(lambda: stranger.asm.groups.get(), exceptions.ForbiddenError, 403, None, "not a subuser")

# --- refusals
refused(lambda: bad.suppression.bounces.get(), exceptions.UnauthorizedError, 401, None, "wrong key")
refused(lambda: ro.asm.groups.post(request_body={"name": "RO"}), exceptions.ForbiddenError, 403, None, "read-only key")
refused(lambda: c.asm.suppressions._("global").post(request_body={"recipient_emails": ["nope"]}),
        exceptions.BadRequestsError, 400, "recipient_emails", "bad email")
# An address hush cannot store is absent, as SendGrid answers: its clients
# read a 400 on a lookup as an outage.
r = ro.suppression.bounces._("nope").get()
expect(r.status_code == 200 and body(r) == [], f"an unstorable address is absent {body(r)}")
r = ro.asm.suppressions._("global")._("no@pe@").get()
expect(r.status_code == 200 and body(r) == {}, f"an unstorable global address is absent {body(r)}")
# Odd but real addresses are stored and found again.
r = c.suppression.bounces.post(request_body={"email": "a..b@docomo.ne.jp", "reason": "550 5.1.1 unknown"})
expect(r.status_code == 201, "docomo's doubled dot is stored")
r = ro.suppression.bounces._("a..b@docomo.ne.jp").get()
expect([row["email"] for row in body(r)] == ["a..b@docomo.ne.jp"], f"and found {body(r)}")
refused(lambda: ro.suppression.bounces.get(query_params={"limit": 501}), exceptions.BadRequestsError, 400, "limit", "limit over 500")
print("python sendgrid sendgrid shape: all passed")
