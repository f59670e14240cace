// The suppressions and message-streams calls through the official Node
// Postmark SDK (postmark@5.1.0), unchanged but for its host (`useHttps:
// false` and `requestHost`: docs/api/postmark.md). The gateway was seeded
// with entries no Postmark call can make: a spam complaint, a recipient
// unsubscribe, an operator block and a hard bounce (see
// tests/e2e/sdk_postmark.rs).
const assert = require('node:assert/strict');
const postmark = require('postmark');
const { Models, Errors } = postmark;

const host = process.env.HUSH_URL.replace(/^http:\/\//, '');
const options = { useHttps: false, requestHost: host, timeout: 30 };
const client = new postmark.ServerClient(process.env.POSTMARK_TOKEN, options);

const NO_AUTHORITY = 'You do not have the required authority to change this suppression.';
const INVALID = 'An invalid email address was provided.';

async function refused(call, ErrorClass, status, code) {
  try {
    await call();
  } catch (err) {
    assert.ok(err instanceof ErrorClass, `${err.constructor.name}: ${err.message}`);
    assert.equal(err.statusCode, status, err.message);
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.length > 0);
    return err;
  }
  assert.fail(`expected ${status}/${code}`);
}

async function dumped(filter) {
  const result = await client.getSuppressions('outbound', filter);
  for (const row of result.Suppressions) {
    assert.deepEqual(Object.keys(row).sort(), ['CreatedAt', 'EmailAddress', 'Origin', 'SuppressionReason']);
    assert.match(row.CreatedAt, /[+-]\d\d:\d\d$/);
    assert.ok(!Number.isNaN(Date.parse(row.CreatedAt)));
  }
  return result.Suppressions.map((s) => s.EmailAddress);
}

function statuses(result) {
  return result.Suppressions.map((s) => [s.EmailAddress, s.Status, s.Message]);
}

(async () => {
  // The dump, unfiltered: postmark.js sends count=100&offset=0, ignored.
  const all = await client.getSuppressions('outbound');
  assert.deepEqual(
    all.Suppressions.map((s) => [s.EmailAddress, s.SuppressionReason, s.Origin]),
    [
      ['admin.blocked@example.com', 'ManualSuppression', 'Admin'],
      ['unsubscribed@example.com', 'ManualSuppression', 'Recipient'],
      ['spam.complaint@example.com', 'SpamComplaint', 'Recipient'],
      ['hard.bounce@example.com', 'HardBounce', 'Recipient'],
    ],
  );
  assert.equal(all.Suppressions[3].CreatedAt, '2019-12-05T10:00:00+00:00');

  // Every filter, through the SDK's own filter class and plain objects.
  const { SuppressionReason, SuppressionOrigin } = Models;
  const full = new Models.SuppressionFilteringParameters(
    undefined, undefined, SuppressionReason.HardBounce, SuppressionOrigin.Recipient,
    'hard.bounce@example.com', '2019-12-01', '2019-12-31',
  );
  assert.deepEqual(await dumped(full), ['hard.bounce@example.com']);
  assert.deepEqual(await dumped({ suppressionReason: SuppressionReason.SpamComplaint }), ['spam.complaint@example.com']);
  assert.deepEqual(await dumped({ suppressionReason: SuppressionReason.ManualSuppression }),
    ['admin.blocked@example.com', 'unsubscribed@example.com']);
  assert.deepEqual(await dumped({ origin: SuppressionOrigin.Admin }), ['admin.blocked@example.com']);
  assert.deepEqual(await dumped({ origin: SuppressionOrigin.Customer }), []);
  assert.deepEqual(await dumped({ fromDate: '2019-12-10', toDate: '2019-12-20' }),
    ['unsubscribed@example.com', 'spam.complaint@example.com']);
  assert.deepEqual(await dumped({ emailAddress: 'spam.complaint@example.com' }), ['spam.complaint@example.com']);
  await refused(() => client.getSuppressions('outbound', { suppressionReason: 'Bounced' }), Errors.ApiInputError, 422, 1404);
  await refused(() => client.getSuppressions('outbound', { origin: 'Somebody' }), Errors.ApiInputError, 422, 1405);

  // Create: one status per item, in order, duplicates included.
  const created = await client.createSuppressions('outbound', {
    Suppressions: [
      { EmailAddress: 'good.address@example.com' },
      { EmailAddress: 'spam.complaint@example.com' },
      { EmailAddress: 'invalid-email-address' },
      { EmailAddress: 'unsubscribed@example.com' },
      { EmailAddress: 'admin.blocked@example.com' },
      { EmailAddress: 'Good.Address@example.com' },
    ],
  });
  assert.deepEqual(statuses(created), [
    ['good.address@example.com', 'Suppressed', null],
    ['spam.complaint@example.com', 'Failed', NO_AUTHORITY],
    ['invalid-email-address', 'Failed', INVALID],
    ['unsubscribed@example.com', 'Failed', NO_AUTHORITY],
    ['admin.blocked@example.com', 'Failed', NO_AUTHORITY],
    ['Good.Address@example.com', 'Suppressed', null],
  ]);
  const mine = await client.getSuppressions('outbound', { origin: SuppressionOrigin.Customer });
  assert.deepEqual(mine.Suppressions.map((s) => [s.EmailAddress, s.SuppressionReason]),
    [['good.address@example.com', 'ManualSuppression']]);

  // Delete: each Failed case, a reactivated bounce, an address never suppressed.
  const deleted = await client.deleteSuppressions('outbound', {
    Suppressions: [
      { EmailAddress: 'good.address@example.com' },
      { EmailAddress: 'hard.bounce@example.com' },
      { EmailAddress: 'not.suppressed@example.com' },
      { EmailAddress: 'spam.complaint@example.com' },
      { EmailAddress: 'unsubscribed@example.com' },
      { EmailAddress: 'admin.blocked@example.com' },
      { EmailAddress: 'invalid-email-address' },
    ],
  });
  assert.deepEqual(statuses(deleted), [
    ['good.address@example.com', 'Deleted', null],
    ['hard.bounce@example.com', 'Deleted', null],
    ['not.suppressed@example.com', 'Deleted', null],
    ['spam.complaint@example.com', 'Failed', NO_AUTHORITY],
    ['unsubscribed@example.com', 'Failed', NO_AUTHORITY],
    ['admin.blocked@example.com', 'Failed', NO_AUTHORITY],
    ['invalid-email-address', 'Failed', INVALID],
  ]);
  assert.deepEqual(await dumped({}),
    ['admin.blocked@example.com', 'unsubscribed@example.com', 'spam.complaint@example.com']);

  // Over 50: postmark.js does not check; hush answers 1410 and stores nothing.
  const many = Array.from({ length: 51 }, (_, i) => ({ EmailAddress: `u${i}@example.com` }));
  await refused(() => client.createSuppressions('outbound', { Suppressions: many }), Errors.ApiInputError, 422, 1410);
  await refused(() => client.deleteSuppressions('outbound', { Suppressions: many }), Errors.ApiInputError, 422, 1410);
  assert.deepEqual(await dumped({ emailAddress: 'u0@example.com' }), []);

  // postmark.js drops an undefined EmailAddress and sends {} for that item:
  // only that item fails, and the good address beside it is stored
  // (docs/mapping.md, "Postmark malformed items").
  const partial = await client.createSuppressions('outbound', {
    Suppressions: [{ EmailAddress: 'partial.ok@example.com' }, { EmailAddress: undefined }],
  });
  assert.deepEqual(statuses(partial), [['partial.ok@example.com', 'Suppressed', null], ['', 'Failed', INVALID]]);
  assert.deepEqual(await dumped({ emailAddress: 'partial.ok@example.com' }), ['partial.ok@example.com']);
  const unpartial = await client.deleteSuppressions('outbound', {
    Suppressions: [{ EmailAddress: undefined }, { EmailAddress: 'partial.ok@example.com' }],
  });
  assert.deepEqual(statuses(unpartial), [['', 'Failed', INVALID], ['partial.ok@example.com', 'Deleted', null]]);

  // An unknown stream and a bad token.
  const missing = await refused(() => client.getSuppressions('nope', {}), Errors.ApiInputError, 422, 1226);
  assert.equal(missing.message, "The message stream for the provided 'ID' was not found.");
  await refused(() => client.createSuppressions('nope', { Suppressions: [{ EmailAddress: 'a@example.com' }] }),
    Errors.ApiInputError, 422, 1226);
  const stranger = new postmark.ServerClient('bad-token', options);
  await refused(() => stranger.getSuppressions('outbound'), Errors.InvalidAPIKeyError, 401, 10);
  await refused(() => stranger.getMessageStreams(), Errors.InvalidAPIKeyError, 401, 10);

  // Message streams.
  const listed = await client.getMessageStreams();
  assert.equal(listed.TotalCount, 1);
  assert.equal(listed.MessageStreams[0].ID, 'outbound');
  assert.equal(listed.MessageStreams[0].MessageStreamType, 'Transactional');
  const serverId = listed.MessageStreams[0].ServerID;
  assert.ok(Number.isInteger(serverId) && serverId > 0);

  const stream = await client.createMessageStream(new Models.CreateMessageStreamRequest(
    'transactional-dev', 'My Dev Transactional Stream', 'Transactional', 'desc'));
  assert.equal(stream.ID, 'transactional-dev');
  assert.equal(stream.ServerID, serverId);
  assert.equal(stream.Description, 'desc');
  assert.equal(stream.UpdatedAt, null);
  assert.equal(stream.SubscriptionManagementConfiguration.UnsubscribeHandlingType, 'None');
  await refused(() => client.createMessageStream(new Models.CreateMessageStreamRequest(
    'transactional-dev', 'Again', 'Transactional')), Errors.ApiInputError, 422, 1230);
  await refused(() => client.createMessageStream(new Models.CreateMessageStreamRequest(
    'Bad ID', 'Bad', 'Transactional')), Errors.ApiInputError, 422, 1227);
  // A new stream is Transactional or Broadcasts, and Broadcasts keep
  // unsubscribe management (1239; Postmark API docs, "Message Streams API").
  await refused(() => client.createMessageStream(new Models.CreateMessageStreamRequest(
    'inbound', 'Inbound', 'Inbound')), Errors.ApiInputError, 422, 1221);
  await refused(() => client.createMessageStream(new Models.CreateMessageStreamRequest(
    'news', 'News', 'Broadcasts', undefined, { UnsubscribeHandlingType: 'None' })), Errors.ApiInputError, 422, 1239);

  const got = await client.getMessageStream('transactional-dev');
  assert.deepEqual(got, stream);
  const edited = await client.editMessageStream('transactional-dev', new Models.UpdateMessageStreamRequest('New name'));
  assert.equal(edited.Name, 'New name');
  assert.equal(edited.Description, 'desc');
  assert.ok(!Number.isNaN(Date.parse(edited.UpdatedAt)));

  const filtered = await client.getMessageStreams(new Models.MessageStreamsFilteringParameters('Transactional', true));
  assert.deepEqual(filtered.MessageStreams.map((s) => s.ID), ['outbound', 'transactional-dev']);
  const broadcasts = await client.getMessageStreams({ messageStreamType: 'Broadcasts' });
  assert.equal(broadcasts.TotalCount, 0);

  const archived = await client.archiveMessageStream('transactional-dev');
  assert.equal(archived.ID, 'transactional-dev');
  assert.equal(archived.ServerID, serverId);
  assert.ok(Date.parse(archived.ExpectedPurgeDate) > Date.now());
  assert.deepEqual((await client.getMessageStreams()).MessageStreams.map((s) => s.ID), ['outbound']);
  const withArchived = await client.getMessageStreams({ includeArchivedStreams: true });
  assert.deepEqual(withArchived.MessageStreams.map((s) => s.ID), ['outbound', 'transactional-dev']);
  const back = await client.unarchiveMessageStream('transactional-dev');
  assert.equal(back.ArchivedAt, null);
  assert.equal((await client.getMessageStreams()).TotalCount, 2);
  await refused(() => client.archiveMessageStream('outbound'), Errors.ApiInputError, 422, 1229);
  await refused(() => client.getMessageStream('nope'), Errors.ApiInputError, 422, 1226);
  await refused(() => client.editMessageStream('nope', new Models.UpdateMessageStreamRequest('x')),
    Errors.ApiInputError, 422, 1226);

  // A plus address survives the query string (postmark.js sends it as %2B)
  // and the body.
  const plus = await client.createSuppressions('outbound', { Suppressions: [{ EmailAddress: 'x+y@example.com' }] });
  assert.deepEqual(statuses(plus), [['x+y@example.com', 'Suppressed', null]]);
  assert.deepEqual(await dumped({ emailAddress: 'x+y@example.com' }), ['x+y@example.com']);
  const unplus = await client.deleteSuppressions('outbound', { Suppressions: [{ EmailAddress: 'x+y@example.com' }] });
  assert.deepEqual(statuses(unplus), [['x+y@example.com', 'Deleted', null]]);
  assert.deepEqual(await dumped({ emailAddress: 'x+y@example.com' }), []);

  console.log('node postmark: all passed');
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
