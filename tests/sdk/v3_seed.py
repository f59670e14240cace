"""Seed 001 beyond bounces (spam reports, global unsubscribes, groups,
group suppressions, CSV imports) through the official Python SendGrid SDK,
unchanged but for its host (sendgrid-python: the host is scheme://host:port, without /v3)."""
import json
import os
import sys

import sendgrid
from python_http_client import exceptions

URL = os.environ["HUSH_URL"]
c = sendgrid.SendGridAPIClient(api_key="SG.sdk-writer", host=URL).client
ro = sendgrid.SendGridAPIClient(api_key="SG.sdk-reader", host=URL).client
bad = sendgrid.SendGridAPIClient(api_key="SG.wrong", host=URL).client


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


# --- spam reports
r = c.suppression.spam_reports.post(request_body={"email": "Spam@Example.com", "source": "feedback_loop"})
rec = body(r)
expect(r.status_code == 201 and rec["email"] == "spam@example.com" and rec["source"] == "feedback_loop"
       and isinstance(rec["created"], int), f"POST spam report 201 {rec}")
r = c.suppression.spam_reports.post(request_body={"email": "spam@example.com"})
expect(r.status_code == 201 and body(r) == rec, "adding twice is idempotent")
c.suppression.spam_reports.post(request_body={"email": "other@example.com", "source": "fbl"})
r = ro.suppression.spam_reports.get(query_params={"limit": 1, "offset": 0})
listed = body(r)
expect(r.status_code == 200 and listed["total"] == 2 and len(listed["spam_reports"]) == 1, f"list pages {listed}")
r = ro.suppression.spam_reports.get(query_params={"email": "spam@example.com", "start_time": rec["created"], "end_time": rec["created"]})
expect(body(r) == {"spam_reports": [rec], "total": 1}, "list filters by email and time")
r = ro.suppression.spam_reports._("Spam@Example.com").get()
expect(r.status_code == 200 and body(r) == [rec], "GET one is an array")
r = c.suppression.spam_reports._("spam@example.com").delete()
expect(r.status_code == 204, "DELETE one is 204")
refused(lambda: ro.suppression.spam_reports._("spam@example.com").get(), exceptions.NotFoundError, 404, None, "absent report")
refused(lambda: c.suppression.spam_reports.delete(), exceptions.BadRequestsError, 400, "delete_all", "bulk delete needs delete_all")
r = c.suppression.spam_reports.delete(query_params={"delete_all": "true"})
expect(r.status_code == 204 and body(ro.suppression.spam_reports.get())["total"] == 0, "delete_all=true empties the list")

# --- global unsubscribes (`global` is a Python keyword: use _())
glob = c.asm.suppressions._("global")
r = glob.post(request_body={"recipient_emails": ["Unsub@Example.com", "two@example.com"]})
expect(r.status_code == 201 and body(r) == {"recipient_emails": ["unsub@example.com", "two@example.com"]}, f"POST global 201 {body(r)}")
r = glob.post(request_body={"recipient_emails": ["unsub@example.com"]})
expect(r.status_code == 201, "adding twice is fine")
r = ro.asm.suppressions._("global").get(query_params={"limit": 10, "offset": 0})
listed = body(r)
expect(r.status_code == 200 and listed["total"] == 2 and sorted(listed["recipient_emails"]) == ["two@example.com", "unsub@example.com"], f"list global {listed}")
r = ro.asm.suppressions._("global")._("unsub@example.com").get()
expect(r.status_code == 200 and body(r) == {"recipient_email": "unsub@example.com"}, "GET global one")
r = glob._("unsub@example.com").delete()
expect(r.status_code == 204, "DELETE global is 204")
refused(lambda: ro.asm.suppressions._("global")._("unsub@example.com").get(), exceptions.NotFoundError, 404, None, "absent global is 404")

# --- groups
r = c.asm.groups.get()
groups = body(r)["suppression_groups"]
expect(r.status_code == 200 and [g["name"] for g in groups] == ["Default Transactional Stream"], f"a new tenant has outbound {groups}")
outbound = groups[0]["id"]
r = c.asm.groups.post(request_body={"name": "Newsletter", "description": "Our weekly digest", "is_default": True})
news = body(r)
expect(r.status_code == 201 and news["name"] == "Newsletter" and news["is_default"] is True and news["unsubscribes"] == 0
       and news["created_at"].endswith("Z"), f"POST group 201 {news}")
refused(lambda: c.asm.groups.post(request_body={"name": "Newsletter"}), exceptions.BadRequestsError, 400, "name", "duplicate name")
refused(lambda: c.asm.groups.post(request_body={"name": "x" * 101}), exceptions.BadRequestsError, 400, "name", "long name")
refused(lambda: c.asm.groups.post(request_body={"name": "D", "description": "d" * 501}), exceptions.BadRequestsError, 400, "description", "long description")
r = c.asm.groups.post(request_body={"name": "Promos", "is_default": True})
promos = body(r)
r = c.asm.groups._(news["id"]).get()
expect(r.status_code == 200 and body(r)["is_default"] is False, "is_default moved to the newer group")
r = c.asm.groups._(news["id"]).patch(request_body={"name": "Weekly News"})
expect(r.status_code == 200 and body(r)["name"] == "Weekly News", "PATCH is 200 in the seed shape")
refused(lambda: c.asm.groups._(9999).get(), exceptions.NotFoundError, 404, None, "unknown group")
refused(lambda: c.asm.groups._(outbound).delete(), exceptions.BadRequestsError, 400, "group_id", "outbound cannot be deleted")

# --- group suppressions
members = c.asm.groups._(news["id"]).suppressions
r = members.post(request_body={"recipient_emails": ["a@example.com", "B@example.com", "c@example.com"]})
expect(r.status_code == 201 and body(r) == {"recipient_emails": ["a@example.com", "b@example.com", "c@example.com"]}, "POST group suppressions 201")
r = ro.asm.groups._(news["id"]).suppressions.get(query_params={"page": 1, "page_size": 2})
page1 = body(r)
r = ro.asm.groups._(news["id"]).suppressions.get(query_params={"page": 2, "page_size": 2})
page2 = body(r)
expect(page1["total"] == 3 and len(page1["recipient_emails"]) == 2 and len(page2["recipient_emails"]) == 1
       and set(page1["recipient_emails"] + page2["recipient_emails"]) == {"a@example.com", "b@example.com", "c@example.com"}, "pages start at 1")
r = ro.asm.groups._(promos["id"]).suppressions.get()
expect(body(r) == {"recipient_emails": [], "total": 0}, "only in that group")
refused(lambda: ro.asm.suppressions._("global")._("a@example.com").get(), exceptions.NotFoundError, 404, None, "not global either")
expect(body(c.asm.groups._(news["id"]).get())["unsubscribes"] == 3, "unsubscribes counts members")
r = members._("b@example.com").delete()
expect(r.status_code == 204, "DELETE member is 204")
refused(lambda: c.asm.groups._(9999).suppressions.post(request_body={"recipient_emails": ["x@example.com"]}),
        exceptions.NotFoundError, 404, None, "adding to an unknown group")
r = c.asm.groups._(news["id"]).delete()
expect(r.status_code == 204, "DELETE group is 204")
refused(lambda: c.asm.groups._(news["id"]).suppressions.get(), exceptions.NotFoundError, 404, None, "deleted group is gone")

# --- CSV imports: a client of its own, since the SDK keeps headers it was given
imp = sendgrid.SendGridAPIClient(api_key="SG.sdk-writer", host=URL).client
csv_headers = {"Content-Type": "text/csv"}
r = imp.suppression.bounces._("import").post(
    request_body="\ufeffemail,reason\r\nimp1@example.com,\"550 5.1.1 User unknown, sorry\"\r\nnot-an-email,x\r\nimp2@example.com\r\n",
    request_headers=csv_headers)
report = body(r)
expect(r.status_code == 200 and report["imported"] == 2 and report["skipped"] == 1
       and report["errors"][0]["row"] == 3 and report["errors"][0]["email"] == "not-an-email", f"bounce import {report}")
expect(body(ro.suppression.bounces._("imp1@example.com").get())[0]["status"] == "5.1.1", "imported bounce has its status")
r = imp.suppression.spam_reports._("import").post(request_body="imp3@example.com,fbl\n", request_headers=csv_headers)
expect(body(r) == {"imported": 1, "skipped": 0, "errors": []}, "spam import without a header")
r = imp.asm.suppressions._("global")._("import").post(request_body="email\nimp4@example.com\n", request_headers=csv_headers)
expect(body(r)["imported"] == 1 and body(ro.asm.suppressions._("global")._("imp4@example.com").get()) == {"recipient_email": "imp4@example.com"}, "global import")

# --- refusals
refused(lambda: bad.asm.groups.get(), exceptions.UnauthorizedError, 401, None, "wrong key")
refused(lambda: ro.asm.suppressions._("global").post(request_body={"recipient_emails": ["r@example.com"]}),
        exceptions.ForbiddenError, 403, None, "read-only key")
refused(lambda: c.asm.suppressions._("global").post(request_body={"recipient_emails": ["not-an-email"]}),
        exceptions.BadRequestsError, 400, "recipient_emails", "bad email")
refused(lambda: c.suppression.spam_reports.post(request_body={"email": "nope"}), exceptions.BadRequestsError, 400, "email", "bad email in a report")
print("python sendgrid seed shape: all passed")
