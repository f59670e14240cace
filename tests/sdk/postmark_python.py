"""The suppressions and message-streams calls through the official
postmark-python 0.4.0 (sync client), unchanged but for base_url
(docs/api/postmark.md). The gateway was seeded with entries no Postmark call
can make (see tests/e2e/sdk_postmark.rs)."""
import datetime as dt
import os

import postmark.sync
from postmark.exceptions import InvalidAPIKeyException, ValidationException
from postmark.models.streams import MessageStreamType, UnsubscribeHandlingType
from postmark.models.suppressions import SuppressionOrigin, SuppressionReason

BASE = os.environ["HUSH_URL"]
TOKEN = os.environ["POSTMARK_TOKEN"]
NO_AUTHORITY = "You do not have the required authority to change this suppression."
INVALID = "An invalid email address was provided."


def check(ok, context=None):
    """Fails the suite unless ok. A bare `assert` is removed when Python runs
    with -O or PYTHONOPTIMIZE, and the suite would then pass vacuously."""
    if not ok:
        raise AssertionError("check failed" if context is None else context)


def refused(call, exception, status, code):
    try:
        call()
    except exception as err:
        check(err.http_status == status, (err.http_status, str(err)))
        check(err.error_code == code, (err.error_code, str(err)))
        return err
    raise AssertionError(f"expected {exception.__name__} {status}/{code}")


def emails(entries):
    for entry in entries:
        check(entry.created_at.tzinfo is not None, entry)
    return [e.email_address for e in entries]


def statuses(results):
    return [(r.email_address, r.status, r.message) for r in results]


with postmark.sync.ServerClient(TOKEN, base_url=BASE, retries=0, timeout=30) as c:
    dump = c.suppressions.dump
    rows = dump("outbound")
    check([(r.email_address, r.suppression_reason, r.origin) for r in rows] == [
        ("admin.blocked@example.com", SuppressionReason.MANUAL_SUPPRESSION, SuppressionOrigin.ADMIN),
        ("unsubscribed@example.com", SuppressionReason.MANUAL_SUPPRESSION, SuppressionOrigin.RECIPIENT),
        ("spam.complaint@example.com", SuppressionReason.SPAM_COMPLAINT, SuppressionOrigin.RECIPIENT),
        ("hard.bounce@example.com", SuppressionReason.HARD_BOUNCE, SuppressionOrigin.RECIPIENT),
    ], rows)
    check(rows[3].created_at == dt.datetime(2019, 12, 5, 10, 0, tzinfo=dt.timezone.utc))

    # Every filter, as postmark-python names them.
    check(emails(dump("outbound", SuppressionReason.HARD_BOUNCE, SuppressionOrigin.RECIPIENT,
                       dt.date(2019, 12, 1), dt.date(2019, 12, 31),
                       "hard.bounce@example.com")) == ["hard.bounce@example.com"])
    check(emails(dump("outbound", suppression_reason=SuppressionReason.SPAM_COMPLAINT)) == [
        "spam.complaint@example.com"])
    check(emails(dump("outbound", suppression_reason=SuppressionReason.MANUAL_SUPPRESSION)) == [
        "admin.blocked@example.com", "unsubscribed@example.com"])
    check(emails(dump("outbound", origin=SuppressionOrigin.ADMIN)) == ["admin.blocked@example.com"])
    check(emails(dump("outbound", origin=SuppressionOrigin.CUSTOMER)) == [])
    # Both bounds inclusive: entries made on 2019-12-10 and 2019-12-20.
    check(emails(dump("outbound", from_date=dt.date(2019, 12, 10), to_date=dt.date(2019, 12, 20))) == [
        "unsubscribed@example.com", "spam.complaint@example.com"])
    check(emails(dump("outbound", from_date=dt.date(2020, 1, 6))) == [])
    check(emails(dump("outbound", email_address="SPAM.complaint@example.com")) == [
        "spam.complaint@example.com"])

    created = c.suppressions.create("outbound", [
        "good.address@example.com", "spam.complaint@example.com", "invalid-email-address",
        "unsubscribed@example.com", "admin.blocked@example.com", "good.address@example.com"])
    check(statuses(created) == [
        ("good.address@example.com", "Suppressed", None),
        ("spam.complaint@example.com", "Failed", NO_AUTHORITY),
        ("invalid-email-address", "Failed", INVALID),
        ("unsubscribed@example.com", "Failed", NO_AUTHORITY),
        ("admin.blocked@example.com", "Failed", NO_AUTHORITY),
        ("good.address@example.com", "Suppressed", None),
    ], created)
    mine = dump("outbound", origin=SuppressionOrigin.CUSTOMER)
    check([(r.email_address, r.suppression_reason) for r in mine] == [
        ("good.address@example.com", SuppressionReason.MANUAL_SUPPRESSION)])

    deleted = c.suppressions.delete("outbound", [
        "good.address@example.com", "hard.bounce@example.com", "not.suppressed@example.com",
        "spam.complaint@example.com", "unsubscribed@example.com", "admin.blocked@example.com",
        "invalid-email-address"])
    check(statuses(deleted) == [
        ("good.address@example.com", "Deleted", None),
        ("hard.bounce@example.com", "Deleted", None),
        ("not.suppressed@example.com", "Deleted", None),
        ("spam.complaint@example.com", "Failed", NO_AUTHORITY),
        ("unsubscribed@example.com", "Failed", NO_AUTHORITY),
        ("admin.blocked@example.com", "Failed", NO_AUTHORITY),
        ("invalid-email-address", "Failed", INVALID),
    ], deleted)
    check(emails(dump("outbound")) == [
        "admin.blocked@example.com", "unsubscribed@example.com", "spam.complaint@example.com"])

    # postmark-python refuses more than 50 itself, before any request.
    many = [f"u{i}@example.com" for i in range(51)]
    for call in (c.suppressions.create, c.suppressions.delete):
        try:
            call("outbound", many)
            raise AssertionError("51 addresses were accepted")
        except ValueError:
            pass
    check(emails(dump("outbound", email_address="u0@example.com")) == [])

    err = refused(lambda: dump("nope"), ValidationException, 422, 1226)
    check("The message stream for the provided 'ID' was not found." in str(err))
    refused(lambda: c.suppressions.create("nope", ["a@example.com"]), ValidationException, 422, 1226)

    # Message streams.
    page = c.stream.list()
    check(page.total == 1 and [s.id for s in page.items] == ["outbound"], page)
    outbound = page.items[0]
    check(outbound.message_stream_type == MessageStreamType.TRANSACTIONAL)
    check(outbound.server_id > 0)

    created = c.stream.create("broadcast", "Broadcast Stream", MessageStreamType.BROADCASTS,
                              description="News")
    check(created.id == "broadcast" and created.server_id == outbound.server_id)
    check(created.subscription_management_configuration.unsubscribe_handling_type == \
        UnsubscribeHandlingType.POSTMARK)
    check(created.updated_at is None)
    refused(lambda: c.stream.create("pm-nope", "X", MessageStreamType.TRANSACTIONAL),
            ValidationException, 422, 1233)
    refused(lambda: c.stream.create("all", "X", MessageStreamType.TRANSACTIONAL),
            ValidationException, 422, 1237)
    # Broadcasts streams require unsubscribe management (Postmark API docs,
    # "Message Streams API"; code 1239).
    refused(lambda: c.stream.create("news", "News", MessageStreamType.BROADCASTS,
                                    unsubscribe_handling_type=UnsubscribeHandlingType.NONE),
            ValidationException, 422, 1239)

    got = c.stream.get("broadcast")
    check(got == created, (got, created))
    edited = c.stream.edit("broadcast", name="Renamed", description="Weekly",
                           unsubscribe_handling_type=UnsubscribeHandlingType.CUSTOM)
    check((edited.name, edited.description) == ("Renamed", "Weekly"))
    check(edited.subscription_management_configuration.unsubscribe_handling_type == \
        UnsubscribeHandlingType.CUSTOM)
    check(edited.updated_at is not None)
    refused(lambda: c.stream.edit("broadcast", unsubscribe_handling_type=UnsubscribeHandlingType.NONE),
            ValidationException, 422, 1239)

    check([s.id for s in c.stream.list(MessageStreamType.BROADCASTS).items] == ["broadcast"])
    check([s.id for s in c.stream.list(MessageStreamType.TRANSACTIONAL).items] == ["outbound"])

    # archive and unarchive: bodiless POSTs with Content-Type: application/json.
    archived = c.stream.archive("broadcast")
    check(archived.id == "broadcast" and archived.server_id == outbound.server_id)
    check(archived.expected_purge_date > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=44))
    check([s.id for s in c.stream.list().items] == ["outbound"])
    check([s.id for s in c.stream.list(include_archived=True).items] == ["outbound", "broadcast"])
    check(c.stream.get("broadcast").archived_at is not None)
    back = c.stream.unarchive("broadcast")
    check(back.archived_at is None and back.expected_purge_date is None)
    check(c.stream.list().total == 2)
    refused(lambda: c.stream.archive("outbound"), ValidationException, 422, 1229)
    refused(lambda: c.stream.get("nope"), ValidationException, 422, 1226)

with postmark.sync.ServerClient("bad-token", base_url=BASE, retries=0) as stranger:
    refused(lambda: stranger.suppressions.dump("outbound"), InvalidAPIKeyException, 401, 10)
    refused(lambda: stranger.stream.list(), InvalidAPIKeyException, 401, 10)

print("postmark-python: all passed")
