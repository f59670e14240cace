// The bounce slice through the official Node SendGrid client, unchanged but
// for its base URL (setApiKey first: it resets the base URL).
const assert = require('node:assert/strict');
const { Client } = require('@sendgrid/client');

const client = new Client();
client.setApiKey('SG.sdk-writer');
client.setDefaultRequest('baseUrl', process.env.HUSH_URL);

async function refused(request, code) {
  try {
    await client.request(request);
  } catch (err) {
    assert.equal(err.code, code);
    assert.ok(Array.isArray(err.response.body.errors), JSON.stringify(err.response.body));
    return err.response.body.errors[0];
  }
  assert.fail(`expected ${code} for ${request.method} ${request.url}`);
}

(async () => {
  const [created, record] = await client.request({
    method: 'POST', url: '/v3/suppression/bounces',
    body: { email: 'node+sdk@example.com', bounce_type: 'soft', reason: '452 4.2.2 Mailbox full' },
  });
  assert.equal(created.statusCode, 201);
  assert.equal(record.bounce_type, 'soft');
  assert.equal(record.status, '4.2.2');

  const [, list] = await client.request({ method: 'GET', url: '/v3/suppression/bounces', qs: { limit: 5, offset: 0 } });
  assert.equal(list.total, 1);
  assert.deepEqual(list.bounces[0], record);

  const encoded = encodeURIComponent('node+sdk@example.com');
  const [, one] = await client.request({ method: 'GET', url: `/v3/suppression/bounces/${encoded}` });
  assert.deepEqual(one, [record]);

  const [deleted] = await client.request({ method: 'DELETE', url: `/v3/suppression/bounces/${encoded}` });
  assert.equal(deleted.statusCode, 204);
  await refused({ method: 'GET', url: `/v3/suppression/bounces/${encoded}` }, 404);
  const limit = await refused({ method: 'GET', url: '/v3/suppression/bounces', qs: { limit: 501 } }, 400);
  assert.equal(limit.field, 'limit');
  await refused({ method: 'GET', url: '/v3/nowhere' }, 404);
  console.log('node @sendgrid/client: all passed');
})().catch((err) => {
  console.error(err && err.response ? JSON.stringify(err.response.body) : err);
  process.exit(1);
});
