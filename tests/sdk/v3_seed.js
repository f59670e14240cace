// The seed shape (docs/api/v3.md) beyond bounces (spam reports, global
// unsubscribes, groups, group suppressions, CSV imports) through the
// official Node SendGrid client, unchanged but for its base URL (set after
// setApiKey, which resets it).
const assert = require('node:assert/strict');
const { Client } = require('@sendgrid/client');

function client(key) {
  const c = new Client();
  c.setApiKey(key); // first: it resets baseUrl
  c.setDefaultRequest('baseUrl', process.env.HUSH_URL);
  return c;
}

const c = client('SG.sdk-writer');
const ro = client('SG.sdk-reader');
const bad = client('SG.wrong');

async function call(cl, request) {
  const [response, body] = await cl.request(request);
  return { status: response.statusCode, body };
}

async function refused(cl, request, code, field = null) {
  try {
    await cl.request(request);
  } catch (err) {
    assert.equal(err.code, code, `${request.method} ${request.url}`);
    const { errors } = err.response.body;
    assert.equal(errors.length, 1, JSON.stringify(err.response.body));
    assert.equal(errors[0].field, field, JSON.stringify(err.response.body));
    assert.ok(errors[0].message.length > 0);
    return errors[0].message;
  }
  assert.fail(`expected ${code} for ${request.method} ${request.url}`);
}

const enc = encodeURIComponent;

(async () => {
  // --- spam reports
  let r = await call(c, { method: 'POST', url: '/v3/suppression/spam_reports', body: { email: 'Spam+1@Example.com', source: 'feedback_loop' } });
  assert.equal(r.status, 201);
  const report = r.body;
  assert.deepEqual(Object.keys(report).sort(), ['created', 'email', 'source']);
  assert.equal(report.email, 'spam+1@example.com');
  r = await call(c, { method: 'POST', url: '/v3/suppression/spam_reports', body: { email: 'spam+1@example.com' } });
  assert.deepEqual(r.body, report, 'idempotent');
  r = await call(ro, { method: 'GET', url: '/v3/suppression/spam_reports', qs: { limit: 10, offset: 0, email: 'spam+1@example.com' } });
  assert.deepEqual(r.body, { spam_reports: [report], total: 1 });
  r = await call(ro, { method: 'GET', url: `/v3/suppression/spam_reports/${enc('spam+1@example.com')}` });
  assert.deepEqual(r.body, [report]);
  r = await call(c, { method: 'DELETE', url: '/v3/suppression/spam_reports/spam+1@example.com' });
  assert.equal(r.status, 204);
  await refused(ro, { method: 'GET', url: '/v3/suppression/spam_reports/spam+1@example.com' }, 404);
  await refused(c, { method: 'DELETE', url: '/v3/suppression/spam_reports' }, 400, 'delete_all');
  await call(c, { method: 'POST', url: '/v3/suppression/spam_reports', body: { email: 'x@example.com' } });
  r = await call(c, { method: 'DELETE', url: '/v3/suppression/spam_reports', qs: { delete_all: true } });
  assert.equal(r.status, 204);
  assert.equal((await call(ro, { method: 'GET', url: '/v3/suppression/spam_reports' })).body.total, 0);

  // --- global unsubscribes
  r = await call(c, { method: 'POST', url: '/v3/asm/suppressions/global', body: { recipient_emails: ['G1@example.com', 'g2@example.com'] } });
  assert.equal(r.status, 201);
  assert.deepEqual(r.body, { recipient_emails: ['g1@example.com', 'g2@example.com'] });
  r = await call(ro, { method: 'GET', url: '/v3/asm/suppressions/global', qs: { limit: 1, offset: 0 } });
  assert.equal(r.body.total, 2);
  assert.equal(r.body.recipient_emails.length, 1);
  r = await call(ro, { method: 'GET', url: `/v3/asm/suppressions/global/${enc('g1@example.com')}` });
  assert.deepEqual(r.body, { recipient_email: 'g1@example.com' });
  r = await call(c, { method: 'DELETE', url: '/v3/asm/suppressions/global/g1@example.com' });
  assert.equal(r.status, 204);
  await refused(ro, { method: 'GET', url: '/v3/asm/suppressions/global/g1@example.com' }, 404);

  // --- groups
  r = await call(ro, { method: 'GET', url: '/v3/asm/groups' });
  assert.deepEqual(r.body.suppression_groups.map((g) => g.name), ['Default Transactional Stream']);
  const outbound = r.body.suppression_groups[0].id;
  r = await call(c, { method: 'POST', url: '/v3/asm/groups', body: { name: 'Node News', description: 'Weekly', is_default: false } });
  assert.equal(r.status, 201);
  const news = r.body;
  assert.deepEqual(Object.keys(news).sort(), ['created_at', 'description', 'id', 'is_default', 'name', 'unsubscribes']);
  await refused(c, { method: 'POST', url: '/v3/asm/groups', body: { name: 'Node News' } }, 400, 'name');
  await refused(c, { method: 'POST', url: '/v3/asm/groups', body: { name: '' } }, 400, 'name');
  await refused(c, { method: 'POST', url: '/v3/asm/groups', body: { name: 'D', description: 'd'.repeat(501) } }, 400, 'description');
  r = await call(c, { method: 'PATCH', url: `/v3/asm/groups/${news.id}`, body: { description: 'Monthly', is_default: true } });
  assert.equal(r.status, 200);
  assert.equal(r.body.description, 'Monthly');
  assert.equal(r.body.is_default, true);
  r = await call(ro, { method: 'GET', url: '/v3/asm/groups', qs: { id: [news.id] } });
  assert.equal(r.body.suppression_groups.length, 1, "Node's id[]= form");
  await refused(ro, { method: 'GET', url: '/v3/asm/groups/9999' }, 404);
  await refused(c, { method: 'DELETE', url: `/v3/asm/groups/${outbound}` }, 400, 'group_id');

  // --- group suppressions
  const members = `/v3/asm/groups/${news.id}/suppressions`;
  r = await call(c, { method: 'POST', url: members, body: { recipient_emails: ['m1@example.com', 'm2@example.com'] } });
  assert.equal(r.status, 201);
  assert.deepEqual(r.body, { recipient_emails: ['m1@example.com', 'm2@example.com'] });
  r = await call(ro, { method: 'GET', url: members, qs: { page: 1, page_size: 1 } });
  assert.equal(r.body.total, 2);
  assert.equal(r.body.recipient_emails.length, 1);
  r = await call(ro, { method: 'GET', url: `/v3/asm/groups/${outbound}/suppressions` });
  assert.deepEqual(r.body, { recipient_emails: [], total: 0 }, 'only in that group');
  r = await call(c, { method: 'DELETE', url: `${members}/${enc('m1@example.com')}` });
  assert.equal(r.status, 204);
  await refused(c, { method: 'DELETE', url: `${members}/m1@example.com` }, 404);
  await refused(c, { method: 'POST', url: '/v3/asm/groups/9999/suppressions', body: { recipient_emails: ['x@example.com'] } }, 404);
  r = await call(c, { method: 'DELETE', url: `/v3/asm/groups/${news.id}` });
  assert.equal(r.status, 204);
  await refused(ro, { method: 'GET', url: members }, 404);

  // --- CSV imports
  const csv = { 'Content-Type': 'text/csv' };
  r = await call(c, { method: 'POST', url: '/v3/suppression/bounces/import', headers: csv, body: 'email,reason\r\nni1@example.com,"452 4.2.2 Mailbox full, try later"\r\nbroken\r\n' });
  assert.equal(r.status, 200);
  assert.equal(r.body.imported, 1);
  assert.equal(r.body.skipped, 1);
  assert.deepEqual(r.body.errors[0].row, 3);
  r = await call(ro, { method: 'GET', url: '/v3/suppression/bounces/ni1@example.com' });
  assert.equal(r.body[0].status, '4.2.2');
  r = await call(c, { method: 'POST', url: '/v3/suppression/spam_reports/import', headers: csv, body: 'email,source\nni2@example.com,fbl\n' });
  assert.deepEqual(r.body, { imported: 1, skipped: 0, errors: [] });
  r = await call(c, { method: 'POST', url: '/v3/asm/suppressions/global/import', headers: csv, body: 'ni3@example.com\n' });
  assert.equal(r.body.imported, 1);
  await refused(c, { method: 'POST', url: '/v3/asm/suppressions/global/import', body: { email: 'json@example.com' } }, 415);

  // --- refusals
  await refused(bad, { method: 'GET', url: '/v3/asm/groups' }, 401);
  await refused(ro, { method: 'POST', url: '/v3/asm/groups', body: { name: 'RO' } }, 403);
  await refused(c, { method: 'POST', url: '/v3/asm/suppressions/global', body: { recipient_emails: ['not-an-email'] } }, 400, 'recipient_emails');
  await refused(c, { method: 'GET', url: '/v3/asm/suppressions/global/not-an-email' }, 400, 'email');
  console.log('node @sendgrid/client seed shape: all passed');
})().catch((err) => {
  console.error(err && err.response ? JSON.stringify(err.response.body) : err);
  process.exit(1);
});
