"""The bounce slice through the official Python SendGrid SDK, unchanged but
for its host (sendgrid-python: the host is scheme://host:port, without /v3)."""
import json
import os
import sys

import sendgrid
from python_http_client import exceptions

URL = os.environ["HUSH_URL"]
sg = sendgrid.SendGridAPIClient(api_key="SG.sdk-writer", host=URL)
c = sg.client


def body(response):
    return json.loads(response.body) if response.body else None


def expect(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


r = c.suppression.bounces.post(request_body={"email": "Py+SDK@Example.com", "reason": "550 5.1.1 User unknown"})
expect(r.status_code == 201, "POST bounce is 201")
rec = body(r)
expect(rec["email"] == "py+sdk@example.com" and rec["status"] == "5.1.1" and rec["bounce_type"] == "hard", f"record {rec}")

r = c.suppression.bounces.get(query_params={"limit": 10, "offset": 0, "email": "py+sdk@example.com"})
listed = body(r)
expect(r.status_code == 200 and listed["total"] == 1 and listed["bounces"][0] == rec, f"list {listed}")

# The SDK sends the email unencoded in the path, with a literal '+'.
r = c.suppression.bounces._("Py+SDK@Example.com").get()
expect(r.status_code == 200 and body(r) == [rec], "get one by raw path")

try:
    c.suppression.bounces.delete()
    expect(False, "bulk delete without delete_all is refused")
except exceptions.BadRequestsError as err:
    expect(err.to_dict["errors"][0]["field"] == "delete_all", f"400 envelope {err.to_dict}")

r = c.suppression.bounces._("Py+SDK@Example.com").delete()
expect(r.status_code == 204, "delete one is 204")

try:
    c.suppression.bounces._("py+sdk@example.com").get()
    expect(False, "absent address is 404")
except exceptions.NotFoundError as err:
    expect("errors" in err.to_dict, "404 in the envelope")

c.suppression.bounces.post(request_body={"email": "a@example.com"})
c.suppression.bounces.post(request_body={"email": "b@example.com"})
r = c.suppression.bounces.delete(request_body={"delete_all": True})
expect(r.status_code == 204, "delete_all body is 204")
expect(body(c.suppression.bounces.get())["total"] == 0, "all gone")

ro = sendgrid.SendGridAPIClient(api_key="SG.sdk-reader", host=URL).client
try:
    ro.suppression.bounces.post(request_body={"email": "x@example.com"})
    expect(False, "read-only key cannot write")
except exceptions.ForbiddenError as err:
    expect(err.status_code == 403 and "errors" in err.to_dict, "403 in the envelope")

bad = sendgrid.SendGridAPIClient(api_key="SG.wrong", host=URL).client
try:
    bad.suppression.bounces.get()
    expect(False, "wrong key is refused")
except exceptions.UnauthorizedError as err:
    expect(err.to_dict["errors"][0]["field"] is None, "401 in the envelope")

try:
    c.suppression.bounces.post(request_body={"email": "not-an-email"})
    expect(False, "bad email is refused")
except exceptions.BadRequestsError as err:
    expect(err.to_dict["errors"][0]["field"] == "email", "400 names the email field")
print("python sendgrid: all passed")
