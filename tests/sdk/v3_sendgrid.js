// The `sendgrid` shape (docs/api/v3.md) through the official Node SendGrid
// client, written as code against SendGrid itself would be.
const assert = require('node:assert/strict');
const { Client } = require('@sendgrid/client');

function client(key, subuser) {
  const c = new Client();
  c.setApiKey(key); // first: it resets baseUrl
  c.setDefaultRequest('baseUrl', process.env.HUSH_URL);
  if (subuser) c.setImpersonateSubuser(subuser);
  return c;
}

const c = client('SG.sdk-sg-writer');
const ro = client('SG.sdk-sg-reader');
const bad = client('SG.wrong');
const sub = client('SG.sdk-sg-writer', 'sdk-sub');

async function call(cl, request) {
  const [response, body] = await cl.request(request);
  return { status: response.statusCode, body, headers: response.headers };
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
  for (const [email, type] of [['hard@example.com', 'hard'], ['soft@example.com', 'soft'], ['block@example.com', 'block']]) {
    const r = await call(c, { method: 'POST', url: '/v3/suppression/bounces', body: { email, bounce_type: type, reason: '550 5.1.1 gone' } });
    assert.equal(r.status, 201);
    assert.deepEqual(Object.keys(r.body).sort(), ['created', 'email', 'reason', 'status']);
  }
  await call(c, { method: 'POST', url: '/v3/suppression/spam_reports', body: { email: 'spam@example.com', source: 'fbl' } });
  await call(c, { method: 'POST', url: '/v3/suppression/invalid_emails', body: { email: 'invalid@example.com', reason: 'bad domain' } });

  // --- lists: bare arrays with a Link header
  let r = await call(ro, { method: 'GET', url: '/v3/suppression/bounces', qs: { limit: 1, offset: 1 } });
  assert.ok(Array.isArray(r.body));
  assert.equal(r.body.length, 1);
  assert.match(r.headers.link, /rel="prev"; title="1"/);
  assert.match(r.headers.link, /rel="last"; title="2"/);
  r = await call(ro, { method: 'GET', url: '/v3/suppression/bounces' });
  assert.deepEqual(r.body.map((b) => b.email).sort(), ['hard@example.com', 'soft@example.com']);
  r = await call(ro, { method: 'GET', url: '/v3/suppression/blocks' });
  assert.deepEqual(r.body.map((b) => b.email), ['block@example.com']);
  r = await call(ro, { method: 'GET', url: '/v3/suppression/spam_reports' });
  assert.deepEqual(Object.keys(r.body[0]).sort(), ['created', 'email', 'ip']);
  r = await call(ro, { method: 'GET', url: '/v3/suppression/invalid_emails', qs: { email: '%valid' } });
  assert.deepEqual(r.body.map((i) => [i.email, i.reason]), [['invalid@example.com', 'bad domain']]);
  for (const list of ['bounces', 'blocks', 'spam_reports', 'invalid_emails']) {
    r = await call(ro, { method: 'GET', url: `/v3/suppression/${list}/${enc('nobody@example.com')}` });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, [], `${list}: absent is []`);
  }
  r = await call(c, { method: 'DELETE', url: `/v3/suppression/spam_reports/${enc('spam@example.com')}` });
  assert.equal(r.status, 204);
  await refused(c, { method: 'DELETE', url: '/v3/suppression/spam_reports/spam@example.com' }, 404);
  r = await call(c, { method: 'DELETE', url: `/v3/suppression/invalid_emails/${enc('invalid@example.com')}` });
  assert.equal(r.status, 204);
  r = await call(ro, { method: 'GET', url: '/v3/suppression/invalid_emails/invalid@example.com' });
  assert.deepEqual(r.body, [], 'the invalid email is gone');
  await refused(c, { method: 'DELETE', url: '/v3/suppression/invalid_emails/invalid@example.com' }, 404);
  r = await call(c, { method: 'DELETE', url: '/v3/suppression/blocks', body: { delete_all: true } });
  assert.equal(r.status, 204);
  assert.deepEqual((await call(ro, { method: 'GET', url: '/v3/suppression/blocks' })).body, []);

  // --- global unsubscribes
  r = await call(c, { method: 'POST', url: '/v3/asm/suppressions/global', body: { recipient_emails: ['Node@Example.com'] } });
  assert.equal(r.status, 201);
  assert.deepEqual(r.body, { recipient_emails: ['Node@Example.com'] }, 'echoed as sent');
  r = await call(ro, { method: 'GET', url: '/v3/suppression/unsubscribes', qs: { limit: 5, offset: 0 } });
  assert.deepEqual(r.body.map((u) => u.email), ['node@example.com']);
  assert.ok(r.headers.link.includes('rel="first"'));
  r = await call(ro, { method: 'GET', url: `/v3/asm/suppressions/global/${enc('node@example.com')}` });
  assert.deepEqual(r.body, { recipient_email: 'node@example.com' });
  r = await call(ro, { method: 'GET', url: '/v3/asm/suppressions/global/nobody@example.com' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {});
  r = await call(c, { method: 'DELETE', url: '/v3/asm/suppressions/global/nobody@example.com' });
  assert.equal(r.status, 204);
  // GET on the global path: hush's alias of the unsubscribes list
  // (docs/api/v3.md).
  r = await call(ro, { method: 'GET', url: '/v3/asm/suppressions/global', qs: { limit: 5 } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.map((u) => u.email), ['node@example.com']);
  assert.deepEqual(Object.keys(r.body[0]).sort(), ['created', 'email']);
  assert.match(r.headers.link, /rel="last"; title="1"/);

  // --- CSV imports with a sendgrid-shape key: the seed's report
  const csv = { 'Content-Type': 'text/csv' };
  r = await call(c, { method: 'POST', url: '/v3/suppression/bounces/import', headers: csv, body: 'email,reason\r\nsgni1@example.com,"550 5.1.1 gone"\r\nbroken\r\n' });
  assert.equal(r.status, 200);
  assert.deepEqual([r.body.imported, r.body.skipped, r.body.errors[0].row, r.body.errors[0].email], [1, 1, 3, 'broken']);
  r = await call(ro, { method: 'GET', url: `/v3/suppression/bounces/${enc('sgni1@example.com')}` });
  assert.equal(r.body[0].status, '5.1.1');
  r = await call(c, { method: 'POST', url: '/v3/suppression/spam_reports/import', headers: csv, body: 'sgni2@example.com,fbl\n' });
  assert.deepEqual(r.body, { imported: 1, skipped: 0, errors: [] });
  r = await call(ro, { method: 'GET', url: `/v3/suppression/spam_reports/${enc('sgni2@example.com')}` });
  assert.deepEqual(r.body.map((s) => s.email), ['sgni2@example.com']);
  r = await call(c, { method: 'POST', url: '/v3/asm/suppressions/global/import', headers: csv, body: 'email\rsgni3@example.com\rbad\r' });
  assert.equal(r.body.imported, 1);
  assert.equal(r.body.errors[0].row, 3, 'bare CR rows');
  r = await call(ro, { method: 'GET', url: `/v3/asm/suppressions/global/${enc('sgni3@example.com')}` });
  assert.deepEqual(r.body, { recipient_email: 'sgni3@example.com' });
  r = await call(c, { method: 'DELETE', url: `/v3/asm/suppressions/global/${enc('sgni3@example.com')}` });
  assert.equal(r.status, 204);

  // --- groups
  r = await call(c, { method: 'POST', url: '/v3/asm/groups', body: { name: 'Node Group', description: 'D', is_default: true } });
  assert.equal(r.status, 201);
  const group = r.body;
  assert.equal(group.last_email_sent_at, null);
  r = await call(ro, { method: 'GET', url: '/v3/asm/groups', qs: { id: [group.id] } });
  assert.deepEqual(r.body, [group]);
  r = await call(c, { method: 'PATCH', url: `/v3/asm/groups/${group.id}`, body: { description: 'Updated' } });
  assert.equal(r.status, 201);
  assert.equal(r.body.description, 'Updated');
  const members = `/v3/asm/groups/${group.id}/suppressions`;
  r = await call(c, { method: 'POST', url: members, body: { recipient_emails: ['m@example.com', 'n@example.com'] } });
  assert.equal(r.status, 201);
  r = await call(ro, { method: 'GET', url: members });
  assert.deepEqual(r.body.sort(), ['m@example.com', 'n@example.com']);
  r = await call(ro, { method: 'POST', url: `${members}/search`, body: { recipient_emails: ['M@example.com', 'z@example.com'] } });
  assert.deepEqual(r.body, ['M@example.com']);
  r = await call(ro, { method: 'GET', url: '/v3/asm/suppressions', qs: { limit: 1 } });
  assert.equal(r.body.length, 1);
  assert.deepEqual(Object.keys(r.body[0]).sort(), ['created_at', 'email', 'group_id', 'group_name']);
  r = await call(ro, { method: 'GET', url: `/v3/asm/suppressions/${enc('m@example.com')}` });
  assert.deepEqual(r.body.suppressions.filter((g) => g.suppressed).map((g) => g.id), [group.id]);
  r = await call(c, { method: 'DELETE', url: `${members}/m@example.com` });
  assert.equal(r.status, 204);
  r = await call(c, { method: 'POST', url: '/v3/asm/groups/55555/suppressions', body: { recipient_emails: ['lost@example.com'] } });
  assert.equal(r.status, 201);
  r = await call(ro, { method: 'GET', url: '/v3/asm/suppressions/global/lost@example.com' });
  assert.deepEqual(r.body, { recipient_email: 'lost@example.com' }, 'unknown group goes to global');
  r = await call(c, { method: 'DELETE', url: `/v3/asm/groups/${group.id}` });
  assert.equal(r.status, 204);

  // --- on-behalf-of
  r = await call(sub, { method: 'POST', url: '/v3/suppression/spam_reports', body: { email: 'kid@example.com' } });
  assert.equal(r.status, 201);
  r = await call(sub, { method: 'GET', url: '/v3/suppression/spam_reports/kid@example.com' });
  assert.equal(r.body.length, 1);
  r = await call(ro, { method: 'GET', url: '/v3/suppression/spam_reports/kid@example.com' });
  assert.deepEqual(r.body, [], 'the parent does not see it');
  await refused(c, { method: 'GET', url: '/v3/asm/groups', headers: { 'on-behalf-of': 'stranger' } }, 403);

  // --- refusals
  await refused(bad, { method: 'GET', url: '/v3/suppression/unsubscribes' }, 401);
  await refused(ro, { method: 'DELETE', url: '/v3/suppression/bounces', body: { delete_all: true } }, 403);
  await refused(c, { method: 'POST', url: `${members}`, body: { recipient_emails: ['bad'] } }, 400, 'recipient_emails');
  // An address hush cannot store is absent, as SendGrid answers.
  r = await call(ro, { method: 'GET', url: '/v3/suppression/bounces/not-an-email' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, [], 'an unstorable address is absent');
  await refused(ro, { method: 'GET', url: '/v3/suppression/bounces/classifications' }, 501);
  await refused(ro, { method: 'GET', url: '/v3/nowhere' }, 404);
  console.log('node @sendgrid/client sendgrid shape: all passed');
})().catch((err) => {
  console.error(err && err.response ? JSON.stringify(err.response.body) : err);
  process.exit(1);
});
