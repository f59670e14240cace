//! Provider events in, end to end (`POST /webhooks/{provider}/{name}`):
//! each provider's delivery, signed as the provider signs it, records
//! exactly what crates/webhooks/MAPPING.md says, once, journaled with door
//! `webhook:<provider>` and the provider's event id; what is not proved to
//! be the provider's is refused and records nothing.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hush_webhooks::verify::signing::{SendGridSigner, SnsSigner, mailgun_signature};
use hush_webhooks::verify::sns::Envelope;
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use sha2_hmac::Digest as _;

use crate::support::{Gateway, TestGateway, refused_start};

const ADMIN: &str = "admin-webhooks-reader-0123456789";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../webhooks/tests/fixtures");
const SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
const TIMESTAMP: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

/// One tenant `demo` with a key for each API (v3 in the `sendgrid` shape,
/// which serves blocks and invalid emails), the given
/// `[[tenants.webhooks]]`, an admin reader, and `extra` top-level tables.
fn config(hooks: &str, extra: &str) -> String {
    format!(
        r#"
[[tenants]]
id = "demo"
  [[tenants.keys]]
  api = "v3"
  token = "v3-key"
  shape = "sendgrid"
  [[tenants.keys]]
  api = "postmark"
  token = "pm-token"
  [[tenants.keys]]
  api = "sendpost"
  token = "sp-key"
{hooks}
[[admin.tokens]]
name = "reader"
token = "{ADMIN}"
scopes = ["admin.read"]
{extra}
"#
    )
}

fn sendgrid_hook(signer: &SendGridSigner) -> String {
    format!(
        "  [[tenants.webhooks]]\n  provider = \"sendgrid\"\n  name = \"main\"\n  public_key = \"{}\"\n",
        signer.public_base64_der()
    )
}

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn now_secs() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// Nanoseconds since the epoch of an RFC 3339 time.
fn nanos(rfc3339: &str) -> i64 {
    let at = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|err| panic!("{rfc3339}: {err}"));
    i64::try_from(at.unix_timestamp_nanos()).unwrap()
}

fn rfc3339(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

const SECOND: i64 = 1_000_000_000;

// ---- what an entry should be, as the admin API shows it ------------------

fn global() -> Value {
    json!({"type": "global"})
}

/// A group scope by key and name (its id is the store's own).
fn in_group(key: &str, name: &str) -> Value {
    json!({"type": "group", "key": key, "name": name})
}

fn bounce(class: &str, status: Option<&str>, reason: Option<&str>) -> Value {
    json!({"kind": "bounce", "class": class, "status": status, "reason": reason, "source": null})
}

fn invalid(reason: &str) -> Value {
    json!({"kind": "invalid", "class": null, "status": null, "reason": reason, "source": null})
}

fn spam(source: Option<&str>) -> Value {
    json!({"kind": "spam_complaint", "class": null, "status": null, "reason": null, "source": source})
}

fn manual() -> Value {
    json!({"kind": "manual", "class": null, "status": null, "reason": null, "source": null})
}

fn unsubscribe() -> Value {
    json!({"kind": "unsubscribe", "class": null, "status": null, "reason": null, "source": null})
}

/// A kind with its scope, origin and `created_at` (nanoseconds).
fn entry(kind: Value, scope: Value, origin: &str, created_at: i64) -> Value {
    let mut entry = kind;
    entry["scope"] = scope;
    entry["origin"] = json!(origin);
    entry["created_at"] = json!(created_at);
    entry
}

/// A journal entry in one line: operation, address (or group key), door,
/// key and event id.
fn line(e: &Value) -> String {
    let subject = match e["suppression"]["email"].as_str() {
        Some(email) => email.to_owned(),
        None => format!("group {}", e["group"]["key"].as_str().unwrap()),
    };
    let actor = &e["actor"];
    format!(
        "{} {subject} {} {} {}",
        e["op"].as_str().unwrap(),
        actor["door"].as_str().unwrap(),
        actor["key"].as_str().unwrap_or("-"),
        actor["event_id"].as_str().unwrap_or("-"),
    )
}

fn lines(entries: &[Value]) -> Vec<String> {
    let mut lines: Vec<String> = entries.iter().map(line).collect();
    lines.sort();
    lines
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

// ---- talking to the gateway ----------------------------------------------

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn counts(&self, recorded: u64, ignored: u64, duplicate: u64) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(
            self.body,
            json!({"recorded": recorded, "ignored": ignored, "duplicate": duplicate})
        );
    }

    /// A refusal: the status, and the JSON message containing `says`.
    #[track_caller]
    fn refused(&self, status: StatusCode, says: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let message = self.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{says:?} not in {}", self.body);
        assert_eq!(self.body.as_object().unwrap().len(), 1, "{}", self.body);
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A gateway and the calls the tests make to it.
struct Hub {
    base: String,
    client: Client,
    /// Keeps a gateway of [`Hub::spawn`] running; `None` for one the test
    /// starts and stops itself ([`Hub::at`]).
    gw: Option<TestGateway>,
}

impl Hub {
    async fn spawn(hooks: &str, extra: &str) -> Self {
        let gw = TestGateway::spawn(&config(hooks, extra)).await;
        Self {
            base: gw.base().to_owned(),
            client: Client::new(),
            gw: Some(gw),
        }
    }

    /// For a gateway the test starts and stops itself.
    fn at(gateway: &Gateway) -> Self {
        Self {
            base: gateway.base.clone(),
            client: Client::new(),
            gw: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req).await
    }

    /// A JSON body, as Postmark, SendPost and Mailgun post it.
    async fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.post(path, &all, serde_json::to_vec(body).unwrap())
            .await
    }

    async fn call(
        &self,
        auth: (&str, &str),
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(auth.0, auth.1);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply = self.send(req).await;
        (reply.status, reply.body)
    }

    async fn v3(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(("Authorization", "Bearer v3-key"), method, path, body)
            .await
    }

    async fn v3_get(&self, path: &str) -> Value {
        let (status, body) = self.v3(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn admin(&self, path: &str) -> Value {
        let auth = format!("Bearer {ADMIN}");
        let (status, body) = self
            .call(("Authorization", &auth), Method::GET, path, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// The tenant's journal, newest first; `door` narrows it.
    async fn journal(&self, door: Option<&str>) -> Vec<Value> {
        let mut path = "/admin/v1/tenants/demo/history?limit=250".to_owned();
        if let Some(door) = door {
            path.push_str(&format!("&door={door}"));
        }
        let body = self.admin(&path).await;
        assert_eq!(body["done"], true, "more history than one page");
        body["data"].as_array().unwrap().clone()
    }

    /// The address's entries in `demo` as the admin API shows them, without
    /// the store's ids, `created_at` as nanoseconds, in a stable order.
    async fn entries(&self, email: &str) -> Vec<Value> {
        let body = self.admin(&format!("/admin/v1/addresses/{email}")).await;
        let tenants = body["tenants"].as_array().unwrap();
        let Some(tenant) = tenants.iter().find(|t| t["tenant"] == "demo") else {
            return Vec::new();
        };
        let mut entries: Vec<Value> = tenant["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let mut e = e.clone();
                assert_eq!(e["email"], email);
                let object = e.as_object_mut().unwrap();
                object.remove("id");
                object.remove("email");
                if let Some(scope) = object.get_mut("scope").and_then(Value::as_object_mut) {
                    scope.remove("id");
                }
                let created = nanos(object["created_at"].as_str().unwrap());
                object.insert("created_at".into(), json!(created));
                e
            })
            .collect();
        entries.sort_by_key(Value::to_string);
        entries
    }

    /// How many entries the tenant holds.
    async fn total(&self) -> i64 {
        let body = self.admin("/admin/v1/tenants").await;
        let demo = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant"] == "demo")
            .unwrap();
        demo["counts"]["total"].as_i64().unwrap()
    }

    /// The Postmark dump of a stream as address → (reason, origin).
    async fn postmark_dump(&self, stream: &str) -> BTreeMap<String, (String, String)> {
        let (status, body) = self
            .call(
                ("X-Postmark-Server-Token", "pm-token"),
                Method::GET,
                &format!("/message-streams/{stream}/suppressions/dump"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        crate::support::dump_rows(&body)
    }

    /// SendPost's listing over `from`..=`to` (UTC days), as address →
    /// reasons.
    async fn sendpost_rows(&self, from: &str, to: &str) -> BTreeMap<String, Vec<i64>> {
        let (status, body) = self
            .call(
                ("X-SubAccount-ApiKey", "sp-key"),
                Method::GET,
                &format!("/api/v1/subaccount/suppression?from={from}&to={to}&limit=100"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        crate::support::sendpost_rows(&body)
    }

    /// A v3 group by name: its id and members, sorted (the `sendgrid`
    /// shape lists members as a bare array).
    async fn v3_group(&self, name: &str) -> Option<(i64, Vec<Value>)> {
        let groups = self.v3_get("/v3/asm/groups").await;
        let group = groups
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)?;
        let id = group["id"].as_i64().unwrap();
        let members = self
            .v3_get(&format!("/v3/asm/groups/{id}/suppressions"))
            .await;
        let mut members = members.as_array().unwrap().clone();
        members.sort_by_key(Value::to_string);
        Some((id, members))
    }
}

// ---- SendGrid --------------------------------------------------------------

fn sendgrid_body(events: &[Value]) -> Vec<u8> {
    // SendGrid's payload ends in CRLF, and is signed so.
    let mut body = serde_json::to_vec(events).unwrap();
    body.extend_from_slice(b"\r\n");
    body
}

async fn post_sendgrid(
    hub: &Hub,
    path: &str,
    signer: &SendGridSigner,
    timestamp: &str,
    body: &[u8],
) -> Reply {
    let signature = signer.sign(timestamp, body);
    hub.post(
        path,
        &[
            ("Content-Type", "application/json"),
            (SIGNATURE, &signature),
            (TIMESTAMP, timestamp),
        ],
        body.to_vec(),
    )
    .await
}

fn sg_event(id: &str, event: &str, email: &str, at: i64) -> Value {
    json!({
        "email": email,
        "timestamp": at,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": ["cat facts", "e2e"],
        "sg_event_id": id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    })
}

/// `event` with `fields` (an object) set on it.
fn with(mut event: Value, fields: Value) -> Value {
    let Value::Object(fields) = fields else {
        panic!("not an object: {fields}");
    };
    for (key, value) in fields {
        event[key] = value;
    }
    event
}

/// Every row of the SendGrid table in one signed batch: exactly the mapped
/// entries exist afterwards, each journaled with its `sg_event_id`; a replay
/// (also after an entry was removed through v3) changes nothing.
#[tokio::test]
async fn sendgrid_batch_records_exactly_the_mapping() {
    let signer = SendGridSigner::new();
    let hub = Hub::spawn(&sendgrid_hook(&signer), "").await;

    // A group hush has, holding an address a resubscribe lifts; the same
    // address's global unsubscribe must stay.
    let (status, group) = hub
        .v3(
            Method::POST,
            "/v3/asm/groups",
            Some(json!({"name": "Product news", "description": "", "is_default": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let product_news = group["id"].as_i64().unwrap();
    let (status, body) = hub
        .v3(
            Method::POST,
            &format!("/v3/asm/groups/{product_news}/suppressions"),
            Some(json!({"recipient_emails": ["sg-resub@example.com"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = hub
        .v3(
            Method::POST,
            "/v3/asm/suppressions/global",
            Some(json!({"recipient_emails": ["sg-resub@example.com"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // An asm_group_id hush does not have (ids here are the store's, small).
    let missing_group = 4242;
    assert_ne!(product_news, missing_group);

    let now = now_secs();
    let at = now - 120;
    let events = vec![
        with(
            sg_event("sgev-01-bounce", "bounce", "sg-bounce@example.com", at),
            json!({"type": "bounce", "reason": "550 5.1.1 The email account that you tried to reach does not exist", "status": "5.1.1"}),
        ),
        with(
            sg_event("sgev-02-blocked", "bounce", "SG-Blocked@Example.com", at),
            json!({"type": "blocked", "reason": "554 5.7.1 Service unavailable; Client host blocked"}),
        ),
        with(
            sg_event("sgev-03-invalid", "dropped", "sg-invalid@example.com", at),
            json!({"reason": "Invalid", "status": "5.0.0"}),
        ),
        with(
            sg_event("sgev-04-unparsable", "dropped", "invalid@invalid", at),
            json!({"reason": "Invalid", "status": "5.0.0"}),
        ),
        with(
            sg_event("sgev-05-echo-bounce", "dropped", "sg-echo1@example.com", at),
            json!({"reason": "Bounced Address", "status": "5.0.0"}),
        ),
        with(
            sg_event("sgev-06-echo-unsub", "dropped", "sg-echo2@example.com", at),
            json!({"reason": "Unsubscribed Address", "status": "5.0.0"}),
        ),
        with(
            sg_event("sgev-07-echo-spam", "dropped", "sg-echo3@example.com", at),
            json!({"reason": "Spam Reporting Address", "status": "5.0.0"}),
        ),
        with(
            sg_event(
                "sgev-08-drop-content",
                "dropped",
                "sg-content@example.com",
                at,
            ),
            json!({"reason": "Spam Content (if spam checker app enabled)", "status": "5.0.0"}),
        ),
        sg_event("sgev-09-spam", "spamreport", "sg-spam@example.com", at),
        sg_event("sgev-10-unsub", "unsubscribe", "sg-unsub@example.com", at),
        with(
            sg_event(
                "sgev-11-group-unsub",
                "group_unsubscribe",
                "sg-group@example.com",
                at,
            ),
            json!({"asm_group_id": missing_group, "useragent": "Mozilla/5.0", "ip": "255.255.255.255", "url": "http://www.sendgrid.com/"}),
        ),
        with(
            sg_event(
                "sgev-12-group-resub",
                "group_resubscribe",
                "sg-resub@example.com",
                at,
            ),
            json!({"asm_group_id": product_news, "useragent": "Mozilla/5.0", "ip": "255.255.255.255", "url": "http://www.sendgrid.com/"}),
        ),
        sg_event(
            "sgev-13-processed",
            "processed",
            "sg-activity@example.com",
            at,
        ),
        with(
            sg_event(
                "sgev-14-delivered",
                "delivered",
                "sg-activity@example.com",
                at,
            ),
            json!({"response": "250 OK"}),
        ),
        with(
            sg_event("sgev-15-open", "open", "sg-activity@example.com", at),
            json!({"useragent": "Mozilla/5.0", "ip": "255.255.255.255"}),
        ),
        with(
            sg_event("sgev-16-click", "click", "sg-activity@example.com", at),
            json!({"useragent": "Mozilla/5.0", "ip": "255.255.255.255", "url": "http://www.sendgrid.com/"}),
        ),
        with(
            sg_event(
                "sgev-17-deferred",
                "deferred",
                "sg-activity@example.com",
                at,
            ),
            json!({"response": "400 try again later", "attempt": "5"}),
        ),
        sg_event(
            "sgev-18-unknown",
            "a_future_event",
            "sg-activity@example.com",
            at,
        ),
        // The group made above, again: found, not made twice.
        with(
            sg_event(
                "sgev-19-group-unsub",
                "group_unsubscribe",
                "sg-group2@example.com",
                at,
            ),
            json!({"asm_group_id": missing_group}),
        ),
        // A resubscribe to a group hush lacks: nothing to lift, and the
        // group is made all the same (DESIGN-HUB, "Events in": a group an
        // event names that does not exist is created).
        with(
            sg_event(
                "sgev-20-resub-nowhere",
                "group_resubscribe",
                "sg-nowhere@example.com",
                at,
            ),
            json!({"asm_group_id": 777}),
        ),
    ];
    let body = sendgrid_body(&events);
    let timestamp = now.to_string();
    let before = hub.journal(None).await;
    let signature = signer.sign(&timestamp, &body);
    let headers = [
        ("Content-Type", "application/json"),
        (SIGNATURE, signature.as_str()),
        (TIMESTAMP, timestamp.as_str()),
        ("X-Request-Id", "sg-batch-1"),
    ];
    let reply = hub
        .post("/webhooks/sendgrid/main", &headers, body.clone())
        .await;
    reply.counts(9, 11, 0);

    // Exactly the mapped entries, as the admin API shows them.
    let created = at * SECOND;
    let expected: Vec<(&str, Vec<Value>)> = vec![
        (
            "sg-bounce@example.com",
            vec![entry(
                bounce(
                    "hard",
                    Some("5.1.1"),
                    Some("550 5.1.1 The email account that you tried to reach does not exist"),
                ),
                global(),
                "recipient",
                created,
            )],
        ),
        (
            "sg-blocked@example.com",
            vec![entry(
                bounce(
                    "block",
                    Some("5.7.1"),
                    Some("554 5.7.1 Service unavailable; Client host blocked"),
                ),
                global(),
                "recipient",
                created,
            )],
        ),
        (
            "sg-invalid@example.com",
            vec![entry(invalid("Invalid"), global(), "recipient", created)],
        ),
        (
            "sg-spam@example.com",
            vec![entry(spam(None), global(), "recipient", created)],
        ),
        (
            "sg-unsub@example.com",
            vec![entry(unsubscribe(), global(), "recipient", created)],
        ),
        (
            "sg-group@example.com",
            vec![entry(
                unsubscribe(),
                in_group("sendgrid-group-4242", "sendgrid-group-4242"),
                "recipient",
                created,
            )],
        ),
        (
            "sg-group2@example.com",
            vec![entry(
                unsubscribe(),
                in_group("sendgrid-group-4242", "sendgrid-group-4242"),
                "recipient",
                created,
            )],
        ),
    ];
    for (email, want) in &expected {
        assert_eq!(&hub.entries(email).await, want, "{email}");
    }
    // The resubscribe lifted the group entry and left the global one.
    let resub = hub.entries("sg-resub@example.com").await;
    assert_eq!(resub.len(), 1, "{resub:?}");
    assert_eq!(resub[0]["kind"], "unsubscribe");
    assert_eq!(resub[0]["scope"], global());
    for ignored in [
        "sg-echo1@example.com",
        "sg-echo2@example.com",
        "sg-echo3@example.com",
        "sg-content@example.com",
        "sg-activity@example.com",
        "sg-nowhere@example.com",
    ] {
        assert_eq!(hub.entries(ignored).await, Vec::<Value>::new(), "{ignored}");
    }
    assert_eq!(
        hub.total().await,
        8,
        "seven mapped entries and sg-resub's global one"
    );

    // The same through v3, as SendGrid's own API shows them.
    let item = hub
        .v3_get("/v3/suppression/bounces/sg-bounce@example.com")
        .await;
    assert_eq!(item[0]["status"], "5.1.1", "{item}");
    assert_eq!(item[0]["created"], at, "{item}");
    let item = hub
        .v3_get("/v3/suppression/blocks/sg-blocked@example.com")
        .await;
    assert_eq!(
        item[0]["reason"],
        "554 5.7.1 Service unavailable; Client host blocked"
    );
    let item = hub
        .v3_get("/v3/suppression/invalid_emails/sg-invalid@example.com")
        .await;
    assert_eq!(item[0]["reason"], "Invalid", "{item}");
    let item = hub
        .v3_get("/v3/suppression/spam_reports/sg-spam@example.com")
        .await;
    assert_eq!(item[0]["email"], "sg-spam@example.com", "{item}");
    let item = hub
        .v3_get("/v3/asm/suppressions/global/sg-unsub@example.com")
        .await;
    assert_eq!(item, json!({"recipient_email": "sg-unsub@example.com"}));
    let item = hub
        .v3_get("/v3/suppression/bounces/sg-echo1@example.com")
        .await;
    assert_eq!(item, json!([]), "an echo of a drop is not recorded");
    let (made_id, members) = hub
        .v3_group("sendgrid-group-4242")
        .await
        .expect("the group made");
    assert_eq!(
        members,
        vec![
            json!("sg-group2@example.com"),
            json!("sg-group@example.com")
        ]
    );
    let (_, members) = hub.v3_group("Product news").await.unwrap();
    assert_eq!(members, Vec::<Value>::new(), "the resubscribe lifted it");
    let (_, members) = hub.v3_group("sendgrid-group-777").await.unwrap();
    assert_eq!(members, Vec::<Value>::new());

    // The journal: each change under door webhook:sendgrid, the hook's
    // label and the event's id; the group made is journaled by the hook.
    let journal = hub.journal(Some("webhook:sendgrid")).await;
    let change = |op: &str, email: &str, id: &str| {
        format!("{op} {email} webhook:sendgrid sendgrid/main {id}")
    };
    assert_eq!(
        lines(&journal),
        sorted(vec![
            change("added", "sg-bounce@example.com", "sgev-01-bounce"),
            change("added", "sg-blocked@example.com", "sgev-02-blocked"),
            change("added", "sg-invalid@example.com", "sgev-03-invalid"),
            change("added", "sg-spam@example.com", "sgev-09-spam"),
            change("added", "sg-unsub@example.com", "sgev-10-unsub"),
            change("added", "sg-group@example.com", "sgev-11-group-unsub"),
            change("added", "sg-group2@example.com", "sgev-19-group-unsub"),
            change("removed", "sg-resub@example.com", "sgev-12-group-resub"),
            "group_created group sendgrid-group-4242 webhook:sendgrid sendgrid/main -".to_owned(),
            "group_created group sendgrid-group-777 webhook:sendgrid sendgrid/main -".to_owned(),
        ])
    );
    assert!(
        journal
            .iter()
            .all(|e| e["actor"]["request_id"] == "sg-batch-1"),
        "each change names the delivery's request: {journal:?}"
    );
    let after = hub.journal(None).await;
    assert_eq!(after.len(), before.len() + 10, "nothing else was journaled");

    // A replay of the whole batch: every event a duplicate, nothing changed.
    let reply = post_sendgrid(&hub, "/webhooks/sendgrid/main", &signer, &timestamp, &body).await;
    reply.counts(0, 0, 20);
    assert_eq!(hub.journal(None).await, after, "a replay journals nothing");

    // Removed through v3 (a global entry and a group member), then
    // redelivered: still duplicates, and neither comes back.
    let (status, reply) = hub
        .v3(
            Method::DELETE,
            "/v3/suppression/bounces/sg-bounce@example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let (status, reply) = hub
        .v3(
            Method::DELETE,
            &format!("/v3/asm/groups/{made_id}/suppressions/sg-group@example.com"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let removed = hub.journal(None).await;
    assert_eq!(removed.len(), after.len() + 2);
    let later = now_secs().to_string();
    let reply = post_sendgrid(&hub, "/webhooks/sendgrid/main", &signer, &later, &body).await;
    reply.counts(0, 0, 20);
    assert_eq!(
        hub.entries("sg-bounce@example.com").await,
        Vec::<Value>::new()
    );
    assert_eq!(
        hub.entries("sg-group@example.com").await,
        Vec::<Value>::new()
    );
    assert_eq!(
        hub.journal(None).await,
        removed,
        "a redelivery journals nothing"
    );
}

/// A redelivery changes nothing also when the group its event named was
/// deleted since: the group is not made again.
#[tokio::test]
async fn a_redelivery_does_not_make_a_deleted_group_again() {
    let signer = SendGridSigner::new();
    let hub = Hub::spawn(&sendgrid_hook(&signer), "").await;
    let now = now_secs();
    let body = sendgrid_body(&[with(
        sg_event(
            "sgev-group",
            "group_unsubscribe",
            "sg-group@example.com",
            now,
        ),
        json!({"asm_group_id": 4242}),
    )]);
    let url = "/webhooks/sendgrid/main";
    post_sendgrid(&hub, url, &signer, &now.to_string(), &body)
        .await
        .counts(1, 0, 0);
    let (made, members) = hub.v3_group("sendgrid-group-4242").await.unwrap();
    assert_eq!(members, vec![json!("sg-group@example.com")]);
    let (status, reply) = hub
        .v3(Method::DELETE, &format!("/v3/asm/groups/{made}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let journal = hub.journal(None).await;
    post_sendgrid(&hub, url, &signer, &now.to_string(), &body)
        .await
        .counts(0, 0, 1);
    assert_eq!(
        hub.v3_group("sendgrid-group-4242").await,
        None,
        "the group is made again"
    );
    assert_eq!(
        hub.journal(None).await,
        journal,
        "a redelivery journals nothing"
    );
}

/// What is not SendGrid's, or not readable, is refused with the table's
/// status and records nothing.
#[tokio::test]
async fn sendgrid_refusals() {
    let signer = SendGridSigner::new();
    let hub = Hub::spawn(
        &sendgrid_hook(&signer),
        "[webhooks]\nmax_body_bytes = 1024\n",
    )
    .await;
    let url = "/webhooks/sendgrid/main";
    let now = now_secs();
    let body = sendgrid_body(&[sg_event(
        "sgev-refused",
        "spamreport",
        "refused@example.com",
        now,
    )]);
    let timestamp = now.to_string();
    let before = hub.journal(None).await;

    // Another key.
    let other = SendGridSigner::new();
    post_sendgrid(&hub, url, &other, &timestamp, &body)
        .await
        .refused(StatusCode::UNAUTHORIZED, "signature does not verify");
    // The body changed by one byte after signing.
    let signature = signer.sign(&timestamp, &body);
    let mut changed = body.clone();
    let at = changed.iter().position(|b| *b == b'@').unwrap();
    changed[at - 1] = b'X';
    hub.post(
        url,
        &[(SIGNATURE, &signature), (TIMESTAMP, &timestamp)],
        changed,
    )
    .await
    .refused(StatusCode::UNAUTHORIZED, "signature does not verify");
    // The timestamp header changed after signing.
    let shifted = (now + 1).to_string();
    hub.post(
        url,
        &[(SIGNATURE, &signature), (TIMESTAMP, &shifted)],
        body.clone(),
    )
    .await
    .refused(StatusCode::UNAUTHORIZED, "signature does not verify");
    // Headers missing.
    hub.post(url, &[], body.clone()).await.refused(
        StatusCode::UNAUTHORIZED,
        "missing X-Twilio-Email-Event-Webhook-Signature",
    );
    hub.post(url, &[(SIGNATURE, &signature)], body.clone())
        .await
        .refused(
            StatusCode::UNAUTHORIZED,
            "missing X-Twilio-Email-Event-Webhook-Timestamp",
        );
    hub.post(url, &[(TIMESTAMP, &timestamp)], body.clone())
        .await
        .refused(
            StatusCode::UNAUTHORIZED,
            "missing X-Twilio-Email-Event-Webhook-Signature",
        );
    // Signed an hour ago, and an hour ahead.
    for skew in [-3600, 3600] {
        let stale = (now + skew).to_string();
        post_sendgrid(&hub, url, &signer, &stale, &body)
            .await
            .refused(StatusCode::UNAUTHORIZED, "stale");
    }
    // Over `[webhooks] max_body_bytes`, signed.
    let many: Vec<Value> = (0..20)
        .map(|i| {
            sg_event(
                &format!("sgev-big-{i}"),
                "spamreport",
                &format!("big{i}@example.com"),
                now,
            )
        })
        .collect();
    let big = sendgrid_body(&many);
    assert!(big.len() > 1024);
    post_sendgrid(&hub, url, &signer, &timestamp, &big)
        .await
        .refused(StatusCode::PAYLOAD_TOO_LARGE, "1024 bytes");
    // Signed, but not JSON; not an array; an event without its address;
    // a good event before a bad one (the batch is refused whole).
    let partly = sendgrid_body(&[
        sg_event("sgev-partly", "spamreport", "partly@example.com", now),
        sg_event("sgev-bad", "bounce", "not an address", now),
    ]);
    for (malformed, says) in [
        (&b"[{\"event\": \"bounce\",\r\n"[..], "body"),
        (&b"{\"event\": \"bounce\"}"[..], "array"),
        (
            &br#"[{"event":"bounce","sg_event_id":"x","timestamp":1700000000}]"#[..],
            "[0].email",
        ),
        (&partly[..], "[1].email"),
    ] {
        post_sendgrid(&hub, url, &signer, &timestamp, malformed)
            .await
            .refused(StatusCode::BAD_REQUEST, says);
    }
    // No such hook, provider or path; another method.
    for path in [
        "/webhooks/sendgrid/other",
        "/webhooks/sparkpost/main",
        "/webhooks/sendgrid",
        "/webhooks/sendgrid/main/extra",
    ] {
        post_sendgrid(&hub, path, &signer, &timestamp, &body)
            .await
            .refused(StatusCode::NOT_FOUND, "no such webhook");
    }
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let reply = hub
            .send(
                hub.client
                    .request(method.clone(), format!("{}{url}", hub.base)),
            )
            .await;
        reply.refused(StatusCode::METHOD_NOT_ALLOWED, "only POST");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
    }

    assert_eq!(hub.total().await, 0, "nothing refused was recorded");
    assert_eq!(hub.journal(None).await, before);
    // The right delivery after all of it is recorded.
    post_sendgrid(&hub, url, &signer, &timestamp, &body)
        .await
        .counts(1, 0, 0);
    assert_eq!(
        hub.entries("refused@example.com").await,
        vec![entry(spam(None), global(), "recipient", now * SECOND)]
    );
}

/// Without `[webhooks] max_body_bytes`, a body of 2 MiB is read (twice the
/// APIs' own limit: SendGrid batches run to about 768 KB), and one byte
/// more is 413.
#[tokio::test]
async fn the_default_body_limit_is_two_mib() {
    let signer = SendGridSigner::new();
    let hub = Hub::spawn(&sendgrid_hook(&signer), "").await;
    let now = now_secs();
    let timestamp = now.to_string();
    let batch = |url_len: usize| {
        sendgrid_body(&[with(
            sg_event("sgev-large", "click", "large@example.com", now),
            json!({"url": "x".repeat(url_len)}),
        )])
    };
    let limit = 2 << 20;
    let room = limit - batch(0).len();
    let fits = batch(room);
    assert_eq!(fits.len(), limit);
    let url = "/webhooks/sendgrid/main";
    post_sendgrid(&hub, url, &signer, &timestamp, &batch(room + 1))
        .await
        .refused(StatusCode::PAYLOAD_TOO_LARGE, "2097152 bytes");
    post_sendgrid(&hub, url, &signer, &timestamp, &fits)
        .await
        .counts(0, 1, 0);
}

// ---- Postmark --------------------------------------------------------------

const PM_PASSWORD: &str = "pm-hook-password-0123";
const PM_HEADER: &str = "X-Hush-Hook-Secret";
const PM_HEADER_VALUE: &str = "pm-header-secret-0123";

fn postmark_hooks() -> String {
    format!(
        r#"
  [[tenants.webhooks]]
  provider = "postmark"
  name = "main"
  basic_user = "postmark"
  basic_password = "{PM_PASSWORD}"
  [[tenants.webhooks]]
  provider = "postmark"
  name = "by-header"
  header_name = "{PM_HEADER}"
  header_value = "{PM_HEADER_VALUE}"
"#
    )
}

fn edited(path: &str, fields: Value) -> Value {
    with(fixture(path), fields)
}

/// Postmark's records: a hard bounce and a complaint Global, a subscription
/// change in its stream (the group made), lifted by a reactivation that
/// leaves Global entries alone; basic auth or a header; Postmark's test
/// posts accepted and not recorded; the trace id deduplicates.
#[tokio::test]
async fn postmark_records_and_reactivates() {
    let hub = Hub::spawn(&postmark_hooks(), "").await;
    let main = "/webhooks/postmark/main";
    let basic = {
        use base64::Engine as _;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("postmark:{PM_PASSWORD}"));
        format!("Basic {encoded}")
    };
    let auth = [("Authorization", basic.as_str())];

    // A hard bounce, without a trace id: keyed by the record itself.
    let hard = edited(
        "postmark/bounce_hard.json",
        json!({"Email": "pm-hard@example.com"}),
    );
    hub.post_json(main, &auth, &hard).await.counts(1, 0, 0);
    hub.post_json(main, &auth, &hard).await.counts(0, 0, 1);
    let bounced_at = nanos("2016-04-27T16:28:50.3963933-04:00");
    let details = "smtp;550 5.1.1 The email account that you tried to reach does not exist.";
    assert_eq!(
        hub.entries("pm-hard@example.com").await,
        vec![entry(
            bounce("hard", Some("5.1.1"), Some(details)),
            global(),
            "recipient",
            bounced_at
        )]
    );

    // Wrong or no credentials: 401 asking for basic auth, nothing recorded.
    let refused = edited(
        "postmark/bounce_hard.json",
        json!({"Email": "pm-refused@example.com"}),
    );
    let wrong = format!("Basic {}", "cG9zdG1hcms6d3Jvbmc="); // postmark:wrong
    for headers in [
        &[("Authorization", wrong.as_str())][..],
        &[][..],
        &[(PM_HEADER, PM_HEADER_VALUE)][..],
    ] {
        let reply = hub.post_json(main, headers, &refused).await;
        reply.refused(StatusCode::UNAUTHORIZED, "credentials");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Basic realm=\"hush webhooks\"")
        );
    }
    assert_eq!(
        hub.entries("pm-refused@example.com").await,
        Vec::<Value>::new()
    );

    // A complaint, with a trace id: the trace id is the key, whatever the
    // body of a retry holds.
    let complaint = edited(
        "postmark/spam_complaint.json",
        json!({"Email": "pm-spam@example.com"}),
    );
    let traced = [auth[0], ("X-PM-Webhook-Trace-Id", "pm-trace-spam-1")];
    hub.post_json(main, &traced, &complaint)
        .await
        .counts(1, 0, 0);
    let retry = edited(
        "postmark/spam_complaint.json",
        json!({"Email": "pm-spam-retry@example.com"}),
    );
    hub.post_json(main, &traced, &retry).await.counts(0, 0, 1);
    assert_eq!(
        hub.entries("pm-spam@example.com").await,
        vec![entry(spam(None), global(), "recipient", bounced_at)]
    );
    assert_eq!(
        hub.entries("pm-spam-retry@example.com").await,
        Vec::<Value>::new()
    );

    // An unsubscribe in a stream hush lacks: the stream's group is made.
    let unsubscribed = edited(
        "postmark/subscription_change_unsubscribe.json",
        json!({"Recipient": "pm-unsub@example.com", "MessageStream": "newsletters"}),
    );
    hub.post_json(main, &auth, &unsubscribed)
        .await
        .counts(1, 0, 0);
    assert_eq!(
        hub.entries("pm-unsub@example.com").await,
        vec![entry(
            unsubscribe(),
            in_group("newsletters", "newsletters"),
            "recipient",
            nanos("2022-06-05T17:17:32Z")
        )]
    );
    let pair = |reason: &str, origin: &str| (reason.to_owned(), origin.to_owned());
    assert_eq!(
        hub.postmark_dump("newsletters")
            .await
            .get("pm-unsub@example.com"),
        Some(&pair("ManualSuppression", "Recipient"))
    );

    // Reactivated: lifted from the stream.
    let reactivated = edited(
        "postmark/subscription_change_reactivation.json",
        json!({"Recipient": "pm-unsub@example.com", "MessageStream": "newsletters", "ChangedAt": "2022-06-06T09:00:00Z"}),
    );
    hub.post_json(main, &auth, &reactivated)
        .await
        .counts(1, 0, 0);
    assert_eq!(
        hub.entries("pm-unsub@example.com").await,
        Vec::<Value>::new()
    );
    assert!(
        !hub.postmark_dump("newsletters")
            .await
            .contains_key("pm-unsub@example.com")
    );
    // A reactivation lifts only the stream's entries (MAPPING.md): the
    // Global hard bounce stays.
    let reactivated_hard = edited(
        "postmark/subscription_change_reactivation.json",
        json!({"Recipient": "pm-hard@example.com", "MessageStream": "outbound", "ChangedAt": "2022-06-06T09:00:00Z"}),
    );
    hub.post_json(main, &auth, &reactivated_hard)
        .await
        .counts(1, 0, 0);
    assert_eq!(hub.entries("pm-hard@example.com").await.len(), 1);
    // A reactivation in a stream hush lacks lifts nothing; the stream's
    // group is made all the same (DESIGN-HUB, "Events in").
    let reactivated_elsewhere = edited(
        "postmark/subscription_change_reactivation.json",
        json!({"Recipient": "pm-hard@example.com", "MessageStream": "promotions"}),
    );
    hub.post_json(main, &auth, &reactivated_elsewhere)
        .await
        .counts(1, 0, 0);
    let (_, members) = hub.v3_group("promotions").await.unwrap();
    assert_eq!(members, Vec::<Value>::new());

    // Postmark's test posts when a webhook is saved: 200, nothing recorded.
    let test_bounce = fixture("postmark/test_bounce.json");
    hub.post_json(main, &auth, &test_bounce)
        .await
        .counts(0, 1, 0);
    let test_complaint = fixture("postmark/test_spam_complaint.json");
    hub.post_json(main, &auth, &test_complaint)
        .await
        .counts(0, 1, 0);
    assert_eq!(hub.entries("john@example.com").await, Vec::<Value>::new());
    assert_eq!(
        hub.entries(test_complaint["Email"].as_str().unwrap()).await,
        Vec::<Value>::new()
    );

    // The header hook: its header, not basic auth.
    let by_header = "/webhooks/postmark/by-header";
    let header_bounce = edited(
        "postmark/bounce_hard.json",
        json!({"Email": "pm-header@example.com"}),
    );
    for headers in [&[(PM_HEADER, "wrong")][..], &[][..], &auth[..]] {
        let reply = hub.post_json(by_header, headers, &header_bounce).await;
        reply.refused(StatusCode::UNAUTHORIZED, "credentials");
        assert_eq!(
            reply.header("www-authenticate"),
            None,
            "no basic auth to ask for"
        );
    }
    hub.post_json(by_header, &[(PM_HEADER, PM_HEADER_VALUE)], &header_bounce)
        .await
        .counts(1, 0, 0);
    // Not JSON, or not one object: 400.
    hub.post(by_header, &[(PM_HEADER, PM_HEADER_VALUE)], "[]")
        .await
        .refused(StatusCode::BAD_REQUEST, "one JSON object");

    // Postmark's own suppressions keep the record's Origin: a hard bounce
    // (Global), and a manual suppression by the customer (Manual, in the
    // stream).
    let sc_hard = edited(
        "postmark/subscription_change_hard_bounce.json",
        json!({"Recipient": "pm-sc-hard@example.com"}),
    );
    hub.post_json(main, &auth, &sc_hard).await.counts(1, 0, 0);
    let sc_manual = edited(
        "postmark/subscription_change_unsubscribe.json",
        json!({"Recipient": "pm-manual@example.com", "Origin": "Customer"}),
    );
    hub.post_json(main, &auth, &sc_manual).await.counts(1, 0, 0);
    assert_eq!(
        hub.entries("pm-sc-hard@example.com").await,
        vec![entry(
            bounce("hard", None, None),
            global(),
            "recipient",
            nanos("2020-02-01T10:53:34.416071Z")
        )]
    );
    assert_eq!(
        hub.entries("pm-manual@example.com").await,
        vec![entry(
            manual(),
            in_group("outbound", "Default Transactional Stream"),
            "customer",
            nanos("2022-06-05T17:17:32Z")
        )]
    );

    assert_eq!(
        hub.postmark_dump("outbound").await,
        BTreeMap::from([
            (
                "pm-manual@example.com".to_owned(),
                pair("ManualSuppression", "Customer")
            ),
            (
                "pm-sc-hard@example.com".to_owned(),
                pair("HardBounce", "Recipient")
            ),
            (
                "pm-hard@example.com".to_owned(),
                pair("HardBounce", "Recipient")
            ),
            (
                "pm-header@example.com".to_owned(),
                pair("HardBounce", "Recipient")
            ),
            (
                "pm-spam@example.com".to_owned(),
                pair("SpamComplaint", "Recipient")
            ),
        ])
    );
    let change = |op: &str, email: &str, key: &str, id: &str| {
        format!("{op} {email} webhook:postmark {key} {id}")
    };
    assert_eq!(
        lines(&hub.journal(Some("webhook:postmark")).await),
        sorted(vec![
            change(
                "added",
                "pm-hard@example.com",
                "postmark/main",
                "Bounce::901542550:pm-hard@example.com:2016-04-27T16:28:50.3963933-04:00:"
            ),
            change(
                "added",
                "pm-spam@example.com",
                "postmark/main",
                "pm-trace-spam-1"
            ),
            "group_created group newsletters webhook:postmark postmark/main -".to_owned(),
            change(
                "added",
                "pm-sc-hard@example.com",
                "postmark/main",
                "SubscriptionChange:outbound:883953f4-6105-42a2-a16a-77a8eac79483:pm-sc-hard@example.com:2020-02-01T10:53:34.416071Z:suppress"
            ),
            change(
                "added",
                "pm-manual@example.com",
                "postmark/main",
                "SubscriptionChange:outbound:a4909a96-73d7-4c49-b148-a54522d3f7ac:pm-manual@example.com:2022-06-05T17:17:32Z:suppress"
            ),
            "group_created group promotions webhook:postmark postmark/main -".to_owned(),
            change(
                "added",
                "pm-unsub@example.com",
                "postmark/main",
                "SubscriptionChange:newsletters:a4909a96-73d7-4c49-b148-a54522d3f7ac:pm-unsub@example.com:2022-06-05T17:17:32Z:suppress"
            ),
            change(
                "removed",
                "pm-unsub@example.com",
                "postmark/main",
                "SubscriptionChange:newsletters:a4909a96-73d7-4c49-b148-a54522d3f7ac:pm-unsub@example.com:2022-06-06T09:00:00Z:reactivate"
            ),
            change(
                "added",
                "pm-header@example.com",
                "postmark/by-header",
                "Bounce::901542550:pm-header@example.com:2016-04-27T16:28:50.3963933-04:00:"
            ),
        ])
    );
    assert_eq!(hub.total().await, 5);
}

// ---- SendPost --------------------------------------------------------------

/// A SendPost hook's name is its only secret.
const SENDPOST_SECRET: &str = "Zq3v9XkP2mW7tR1yB8nL4c_e2e-hook";

/// SendPost's events through the secret name: hard bounce, spam and
/// unsubscribe Global, deliveries ignored, a wrong name 404; the journal
/// names the hook by a digest, never the secret.
#[tokio::test]
async fn sendpost_records_through_its_secret_name() {
    let hooks = format!(
        "  [[tenants.webhooks]]\n  provider = \"sendpost\"\n  name = \"{SENDPOST_SECRET}\"\n"
    );
    let hub = Hub::spawn(&hooks, "").await;
    let url = format!("/webhooks/sendpost/{SENDPOST_SECRET}");
    let now = now_secs();
    let at = now * SECOND + 587_205_000;
    let event = |file: &str, to: &str| {
        let mut body = fixture(file);
        body["event"]["to"] = json!(to);
        body["event"]["submittedAt"] = json!(at);
        body
    };
    let hard = event("sendpost/hard_bounced.json", "sp-hard@example.com");
    hub.post_json(&url, &[], &hard).await.counts(1, 0, 0);
    hub.post_json(
        &url,
        &[],
        &event("sendpost/spam.json", "sp-spam@example.com"),
    )
    .await
    .counts(1, 0, 0);
    hub.post_json(
        &url,
        &[],
        &event("sendpost/unsubscribed.json", "sp-unsub@example.com"),
    )
    .await
    .counts(1, 0, 0);
    hub.post_json(
        &url,
        &[],
        &event("sendpost/delivered.json", "sp-delivered@example.com"),
    )
    .await
    .counts(0, 1, 0);
    hub.post_json(&url, &[], &hard).await.counts(0, 0, 1);

    let reason = "550 5.1.1 The email account that you tried to reach does not exist.";
    assert_eq!(
        hub.entries("sp-hard@example.com").await,
        vec![entry(
            bounce("hard", Some("5.1.1"), Some(reason)),
            global(),
            "recipient",
            at
        )]
    );
    assert_eq!(
        hub.entries("sp-spam@example.com").await,
        vec![entry(spam(None), global(), "recipient", at)]
    );
    assert_eq!(
        hub.entries("sp-unsub@example.com").await,
        vec![entry(unsubscribe(), global(), "recipient", at)]
    );
    assert_eq!(
        hub.entries("sp-delivered@example.com").await,
        Vec::<Value>::new()
    );
    let today = rfc3339(now)[..10].to_owned();
    assert_eq!(
        hub.sendpost_rows(&today, &today).await,
        BTreeMap::from([
            ("sp-hard@example.com".to_owned(), vec![2]),
            ("sp-spam@example.com".to_owned(), vec![3]),
            ("sp-unsub@example.com".to_owned(), vec![1]),
        ])
    );

    // Any other name is no hook.
    let almost = &SENDPOST_SECRET[..SENDPOST_SECRET.len() - 1];
    for path in [
        format!("/webhooks/sendpost/{almost}"),
        "/webhooks/sendpost/main".to_owned(),
    ] {
        let other = event("sendpost/spam.json", "sp-other@example.com");
        hub.post_json(&path, &[], &other)
            .await
            .refused(StatusCode::NOT_FOUND, "no such webhook");
    }
    // Not the body SendPost posts.
    hub.post_json(&url, &[], &json!({"emailMessage": {}}))
        .await
        .refused(StatusCode::BAD_REQUEST, "event");
    assert_eq!(hub.total().await, 3);

    let digest = hex::encode(sha2_hmac::Sha256::digest(SENDPOST_SECRET.as_bytes()));
    let label = format!("sendpost/{}", &digest[..16]);
    let change = |email: &str, id: &str| format!("added {email} webhook:sendpost {label} {id}");
    let journal = hub.journal(Some("webhook:sendpost")).await;
    assert_eq!(
        lines(&journal),
        sorted(vec![
            change("sp-hard@example.com", "edhg-123gh-afasdf-124egi"),
            change("sp-spam@example.com", "edhg-123gh-afasdf-124egk"),
            change("sp-unsub@example.com", "edhg-123gh-afasdf-124egj"),
        ])
    );
    let history = serde_json::to_string(&hub.journal(None).await).unwrap();
    assert!(
        !history.contains(SENDPOST_SECRET),
        "the secret is journaled"
    );

    // The admin API counts what the hook received, by outcome: the 404s
    // reached no hook; the unreadable body was refused.
    let listed = hub.admin("/admin/v1/tenants/demo/webhooks").await;
    let hooks = listed["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{listed}");
    let hook = &hooks[0];
    assert_eq!(hook["provider"], "sendpost");
    assert_eq!(hook["hook"], label.as_str());
    assert_eq!(
        [
            &hook["recorded"],
            &hook["ignored"],
            &hook["duplicate"],
            &hook["refused"]
        ],
        [&json!(3), &json!(1), &json!(1), &json!(1)],
        "{hook}"
    );
    let last = nanos(hook["last_event_at"].as_str().unwrap());
    assert!(last >= now * SECOND, "{hook}");
    assert!(!listed.to_string().contains(SENDPOST_SECRET));
}

/// A SendPost hook's name is its only secret, so the log names the hook by
/// its label, never by its path (hooks.rs: "what receipts, the journal and
/// logs call it").
#[tokio::test]
async fn a_sendpost_secret_name_is_not_logged() {
    let hooks = format!(
        "  [[tenants.webhooks]]\n  provider = \"sendpost\"\n  name = \"{SENDPOST_SECRET}\"\n"
    );
    let hub = Hub::spawn(&hooks, "").await;
    let url = format!("/webhooks/sendpost/{SENDPOST_SECRET}");
    let mut body = fixture("sendpost/delivered.json");
    body["event"]["to"] = json!("sp-log@example.com");
    hub.post_json(&url, &[], &body).await.counts(0, 1, 0);
    // Written from a thread of its own: wait for the request's line.
    let log = hub
        .gw
        .as_ref()
        .unwrap()
        .gateway
        .log_with("\"status\":200")
        .await;
    assert!(log.contains("\"message\":\"request\""), "{log}");
    assert!(
        !log.contains(SENDPOST_SECRET),
        "the secret is logged: {log}"
    );
}

// ---- Mailgun ---------------------------------------------------------------

const MG_KEY: &str = "mg-signing-key-0123456789abcdef";
const MG_OTHER_KEY: &str = "mg-other-tenant-key-0123456789";

/// A Mailgun fixture, its recipient set and signed with `key` at
/// `timestamp` for `token`.
fn mailgun(file: &str, recipient: &str, token: &str, timestamp: i64, key: &str) -> Value {
    let mut body = fixture(file);
    body["event-data"]["recipient"] = json!(recipient);
    let timestamp = timestamp.to_string();
    body["signature"] = json!({
        "token": token,
        "timestamp": timestamp,
        "signature": mailgun_signature(key, &timestamp, token),
    });
    body
}

/// Mailgun's events, verified by the HMAC in the body: permanent failure,
/// complaint, unsubscribe by tag (`*` Global, another tag its group, made);
/// a token replayed is a duplicate; bad, stale or unreadable is refused.
#[tokio::test]
async fn mailgun_records_by_signed_token() {
    let hooks = format!(
        "  [[tenants.webhooks]]\n  provider = \"mailgun\"\n  name = \"main\"\n  signing_key = \"{MG_KEY}\"\n"
    );
    // Another tenant, with a Mailgun hook of its own.
    let other = format!(
        "[[tenants]]\nid = \"other\"\n  [[tenants.webhooks]]\n  provider = \"mailgun\"\n  name = \"other\"\n  signing_key = \"{MG_OTHER_KEY}\"\n"
    );
    let hub = Hub::spawn(&hooks, &other).await;
    let url = "/webhooks/mailgun/main";
    let now = now_secs();
    let token = |n: u32| format!("mgtoken{n:02}fff0ebc59c0516f4ce0823212a2f45e5c67814420b99fe");

    let hard = mailgun(
        "mailgun/permanent_failure.json",
        "mg-hard@example.com",
        &token(1),
        now,
        MG_KEY,
    );
    hub.post_json(url, &[], &hard).await.counts(1, 0, 0);
    let spam_body = mailgun(
        "mailgun/spam_complaints.json",
        "mg-spam@example.com",
        &token(2),
        now,
        MG_KEY,
    );
    hub.post_json(url, &[], &spam_body).await.counts(1, 0, 0);
    let mut unsubscribed = mailgun(
        "mailgun/unsubscribes.json",
        "mg-unsub@example.com",
        &token(3),
        now,
        MG_KEY,
    );
    unsubscribed["event-data"]["tags"] = json!(["*", "promos"]);
    hub.post_json(url, &[], &unsubscribed).await.counts(1, 0, 0);
    let temporary = mailgun(
        "mailgun/temporary_failure.json",
        "mg-soft@example.com",
        &token(4),
        now,
        MG_KEY,
    );
    hub.post_json(url, &[], &temporary).await.counts(0, 1, 0);

    assert_eq!(
        hub.entries("mg-hard@example.com").await,
        vec![entry(
            bounce("hard", Some("550"), Some("No Such User Here")),
            global(),
            "recipient",
            1_521_233_195_375_624_000
        )]
    );
    assert_eq!(
        hub.entries("mg-spam@example.com").await,
        vec![entry(
            spam(None),
            global(),
            "recipient",
            1_521_233_123_501_324_000
        )]
    );
    let unsub_at = 1_521_243_339_873_676_000;
    let mut want = vec![
        entry(unsubscribe(), global(), "recipient", unsub_at),
        entry(
            unsubscribe(),
            in_group("promos", "promos"),
            "recipient",
            unsub_at,
        ),
    ];
    want.sort_by_key(Value::to_string);
    assert_eq!(hub.entries("mg-unsub@example.com").await, want);
    assert_eq!(
        hub.entries("mg-soft@example.com").await,
        Vec::<Value>::new()
    );
    let (_, members) = hub.v3_group("promos").await.expect("the tag's group made");
    assert_eq!(members, vec![json!("mg-unsub@example.com")]);

    // The same delivery again, and its token with another event.
    hub.post_json(url, &[], &hard).await.counts(0, 0, 1);
    let mut replayed = hard.clone();
    replayed["event-data"]["recipient"] = json!("mg-replayed@example.com");
    hub.post_json(url, &[], &replayed).await.counts(0, 0, 1);
    assert_eq!(
        hub.entries("mg-replayed@example.com").await,
        Vec::<Value>::new()
    );

    // Another key; a signature for another token; an hour old; an hour
    // ahead.
    let refused = [
        mailgun(
            "mailgun/spam_complaints.json",
            "mg-refused@example.com",
            &token(5),
            now,
            "another-key",
        ),
        {
            let mut body = mailgun(
                "mailgun/spam_complaints.json",
                "mg-refused@example.com",
                &token(6),
                now,
                MG_KEY,
            );
            body["signature"]["token"] = json!(token(7));
            body
        },
    ];
    for body in &refused {
        hub.post_json(url, &[], body)
            .await
            .refused(StatusCode::UNAUTHORIZED, "signature does not verify");
    }
    for skew in [-3600, 3600] {
        let stale = mailgun(
            "mailgun/spam_complaints.json",
            "mg-refused@example.com",
            &token(8),
            now + skew,
            MG_KEY,
        );
        hub.post_json(url, &[], &stale)
            .await
            .refused(StatusCode::UNAUTHORIZED, "stale");
    }
    // Unreadable: 406, the one status Mailgun stops retrying on.
    hub.post(
        url,
        &[("Content-Type", "application/json")],
        "{\"signature\": ",
    )
    .await
    .refused(StatusCode::NOT_ACCEPTABLE, "body");
    let mut no_event = mailgun(
        "mailgun/spam_complaints.json",
        "mg-refused@example.com",
        &token(9),
        now,
        MG_KEY,
    );
    no_event.as_object_mut().unwrap().remove("event-data");
    hub.post_json(url, &[], &no_event)
        .await
        .refused(StatusCode::NOT_ACCEPTABLE, "event-data");
    assert_eq!(
        hub.entries("mg-refused@example.com").await,
        Vec::<Value>::new()
    );
    assert_eq!(hub.total().await, 4);

    // The other tenant's hook: its key, its tenant.
    let theirs = mailgun(
        "mailgun/spam_complaints.json",
        "mg-tenant@example.com",
        &token(10),
        now,
        MG_OTHER_KEY,
    );
    hub.post_json("/webhooks/mailgun/main", &[], &theirs)
        .await
        .refused(StatusCode::UNAUTHORIZED, "signature does not verify");
    hub.post_json("/webhooks/mailgun/other", &[], &theirs)
        .await
        .counts(1, 0, 0);
    let found = hub.admin("/admin/v1/addresses/mg-tenant@example.com").await;
    let tenants: Vec<&Value> = found["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["tenant"])
        .collect();
    assert_eq!(tenants, [&json!("other")]);
    assert_eq!(hub.total().await, 4, "nothing more in demo");

    let change =
        |email: &str, n: u32| format!("added {email} webhook:mailgun mailgun/main {}", token(n));
    assert_eq!(
        lines(&hub.journal(Some("webhook:mailgun")).await),
        sorted(vec![
            change("mg-hard@example.com", 1),
            change("mg-spam@example.com", 2),
            change("mg-unsub@example.com", 3),
            change("mg-unsub@example.com", 3),
            "group_created group promos webhook:mailgun mailgun/main -".to_owned(),
        ])
    );
}

// ---- Amazon SES through SNS ------------------------------------------------

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";

fn sns_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn notification(id: &str, topic: &str, message: &Value, cert_url: &str) -> Envelope {
    Envelope {
        r#type: "Notification".into(),
        message_id: id.into(),
        topic_arn: topic.into(),
        subject: None,
        message: serde_json::to_string(message).unwrap(),
        timestamp: sns_now(),
        signature_version: String::new(),
        signature: String::new(),
        signing_cert_url: cert_url.into(),
        subscribe_url: None,
        token: None,
        unsubscribe_url: Some("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe".into()),
    }
}

fn signed(mut envelope: Envelope, version: &str) -> Envelope {
    SnsSigner::new().sign_into(&mut envelope, version);
    envelope
}

async fn post_sns(hub: &Hub, path: &str, envelope: &Envelope) -> Reply {
    hub.post(
        path,
        &[
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("x-amz-sns-message-type", &envelope.r#type),
            ("x-amz-sns-message-id", &envelope.message_id),
        ],
        serde_json::to_string(envelope).unwrap(),
    )
    .await
}

/// SES events through SNS: verified with the certificate fetched (once)
/// from an allowed host, the subscription confirmed by one fetch; a host
/// not allowed or a topic not accepted is 403 and fetches nothing; a
/// tampered or stale message is 401.
#[tokio::test]
async fn ses_through_sns() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let signer = SnsSigner::new();
    let sns = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cert.pem"))
        .respond_with(ResponseTemplate::new(200).set_body_string(signer.certificate_pem()))
        .expect(1)
        .mount(&sns)
        .await;
    Mock::given(method("GET"))
        .and(path("/confirm"))
        .and(query_param("Token", "sns-token-1"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<ConfirmSubscriptionResponse/>"))
        .expect(1)
        .mount(&sns)
        .await;
    // A host that is not allowed, serving the same certificate.
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(signer.certificate_pem()))
        .expect(0)
        .mount(&elsewhere)
        .await;

    let hooks = format!(
        "  [[tenants.webhooks]]\n  provider = \"ses\"\n  name = \"main\"\n  topic_arns = [\"{TOPIC}\"]\n  [[tenants.webhooks]]\n  provider = \"ses\"\n  name = \"any-topic\"\n  topic_arns = [\"arn:aws:sns:eu-west-1:123456789012:other\"]\n"
    );
    let extra = format!("[webhooks]\nsns_cert_hosts = [\"{}\"]\n", sns.uri());
    let hub = Hub::spawn(&hooks, &extra).await;
    let main = "/webhooks/ses/main";
    let cert = format!("{}/cert.pem", sns.uri());

    // A bounce (identity notification), SignatureVersion 1.
    let mut message = fixture("ses/notification_bounce_dsn.json");
    message["bounce"]["bouncedRecipients"][0]["emailAddress"] = json!("ses-bounce@example.com");
    let bounce_note = signed(notification("sns-msg-bounce", TOPIC, &message, &cert), "1");
    post_sns(&hub, main, &bounce_note).await.counts(1, 0, 0);
    // A complaint (event publishing), SignatureVersion 2, on another topic
    // to the hook that accepts that topic.
    let mut message = fixture("ses/event_complaint.json");
    message["complaint"]["complainedRecipients"] = json!([{"emailAddress": "ses-spam1@example.com"}, {"emailAddress": "ses-spam2@example.com"}]);
    let other_topic = "arn:aws:sns:eu-west-1:123456789012:other";
    let complaint = signed(
        notification("sns-msg-complaint", other_topic, &message, &cert),
        "2",
    );
    post_sns(&hub, "/webhooks/ses/any-topic", &complaint)
        .await
        .counts(1, 0, 0);
    // A delivery: accepted, not recorded.
    let delivery = signed(
        notification(
            "sns-msg-delivery",
            TOPIC,
            &fixture("ses/notification_delivery.json"),
            &cert,
        ),
        "2",
    );
    post_sns(&hub, main, &delivery).await.counts(0, 1, 0);
    // SES's notice when a configuration set starts publishing to the topic.
    let mut validated = notification("sns-msg-validated", TOPIC, &json!({}), &cert);
    validated.message = "Successfully validated SNS topic for Amazon SES event publishing.".into();
    post_sns(&hub, main, &signed(validated, "1"))
        .await
        .counts(0, 1, 0);
    // SNS retries with the same MessageId.
    post_sns(&hub, main, &bounce_note).await.counts(0, 0, 1);

    assert_eq!(
        hub.entries("ses-bounce@example.com").await,
        vec![entry(
            bounce(
                "hard",
                Some("5.1.1"),
                Some("smtp; 550 5.1.1 <jane@example.com>... User")
            ),
            global(),
            "recipient",
            nanos("2016-01-27T14:59:38.237Z")
        )]
    );
    for email in ["ses-spam1@example.com", "ses-spam2@example.com"] {
        assert_eq!(
            hub.entries(email).await,
            vec![entry(
                spam(Some("abuse")),
                global(),
                "recipient",
                nanos("2017-08-05T00:41:02.669Z")
            )],
            "{email}"
        );
    }

    // The subscription confirmation: confirmed by one GET of its URL.
    let confirmation = signed(
        Envelope {
            r#type: "SubscriptionConfirmation".into(),
            message: "You have chosen to subscribe to the topic. To confirm the subscription, visit the SubscribeURL included in this message.".into(),
            subscribe_url: Some(format!(
                "{}/confirm?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=sns-token-1",
                sns.uri()
            )),
            token: Some("sns-token-1".into()),
            unsubscribe_url: None,
            ..notification("sns-msg-confirm", TOPIC, &json!({}), &cert)
        },
        "2",
    );
    post_sns(&hub, main, &confirmation).await.counts(0, 0, 0);

    // Not fetched from a host not allowed: the certificate, or the
    // SubscribeURL.
    let mut message = fixture("ses/event_complaint.json");
    message["complaint"]["complainedRecipients"] =
        json!([{"emailAddress": "ses-refused@example.com"}]);
    let foreign_cert = signed(
        notification(
            "sns-msg-foreign",
            TOPIC,
            &message,
            &format!("{}/cert.pem", elsewhere.uri()),
        ),
        "2",
    );
    post_sns(&hub, main, &foreign_cert)
        .await
        .refused(StatusCode::FORBIDDEN, "SigningCertURL");
    let foreign_confirm = signed(
        Envelope {
            message_id: "sns-msg-confirm-2".into(),
            subscribe_url: Some(format!("{}/confirm?Token=sns-token-1", elsewhere.uri())),
            ..confirmation.clone()
        },
        "2",
    );
    post_sns(&hub, main, &foreign_confirm)
        .await
        .refused(StatusCode::FORBIDDEN, "SubscribeURL");
    // A topic the hook does not accept.
    let wrong_topic = signed(
        notification("sns-msg-topic", other_topic, &message, &cert),
        "2",
    );
    post_sns(&hub, main, &wrong_topic)
        .await
        .refused(StatusCode::FORBIDDEN, "topic");
    // The message changed after signing, under either version.
    for version in ["1", "2"] {
        let mut tampered = signed(
            notification("sns-msg-tampered", TOPIC, &message, &cert),
            version,
        );
        tampered.message = tampered.message.replace("ses-refused@", "ses-tampered@");
        post_sns(&hub, main, &tampered)
            .await
            .refused(StatusCode::UNAUTHORIZED, "signature does not verify");
    }
    // Signed by SNS an hour ago.
    let mut stale = notification("sns-msg-stale", TOPIC, &message, &cert);
    stale.timestamp = rfc3339(now_secs() - 3600);
    post_sns(&hub, main, &signed(stale, "2"))
        .await
        .refused(StatusCode::UNAUTHORIZED, "stale");
    // Not an SNS message.
    hub.post(
        main,
        &[("Content-Type", "text/plain")],
        "{\"Type\": \"Notification\"}",
    )
    .await
    .refused(StatusCode::BAD_REQUEST, "SNS message");

    for email in ["ses-refused@example.com", "ses-tampered@example.com"] {
        assert_eq!(hub.entries(email).await, Vec::<Value>::new(), "{email}");
    }
    assert_eq!(hub.total().await, 3);
    let change = |email: &str, key: &str, id: &str| format!("added {email} webhook:ses {key} {id}");
    assert_eq!(
        lines(&hub.journal(Some("webhook:ses")).await),
        sorted(vec![
            change("ses-bounce@example.com", "ses/main", "sns-msg-bounce"),
            change(
                "ses-spam1@example.com",
                "ses/any-topic",
                "sns-msg-complaint"
            ),
            change(
                "ses-spam2@example.com",
                "ses/any-topic",
                "sns-msg-complaint"
            ),
        ])
    );
    sns.verify().await;
    elsewhere.verify().await;
}

// ---- across the APIs, and across a restart ---------------------------------

/// A hard bounce SendGrid posted reads through Postmark and SendPost too.
#[tokio::test]
async fn a_sendgrid_webhook_bounce_reads_in_postmark_and_sendpost() {
    let signer = SendGridSigner::new();
    let hub = Hub::spawn(&sendgrid_hook(&signer), "").await;
    let now = now_secs();
    let body = sendgrid_body(&[with(
        sg_event("sgev-everywhere", "bounce", "everywhere@example.com", now),
        json!({"type": "bounce", "reason": "550 5.1.1 unknown user", "status": "5.1.1"}),
    )]);
    post_sendgrid(
        &hub,
        "/webhooks/sendgrid/main",
        &signer,
        &now.to_string(),
        &body,
    )
    .await
    .counts(1, 0, 0);
    let pair = ("HardBounce".to_owned(), "Recipient".to_owned());
    assert_eq!(
        hub.postmark_dump("outbound").await,
        BTreeMap::from([("everywhere@example.com".to_owned(), pair)])
    );
    let today = rfc3339(now)[..10].to_owned();
    assert_eq!(
        hub.sendpost_rows(&today, &today).await,
        BTreeMap::from([("everywhere@example.com".to_owned(), vec![2])])
    );
    let item = hub
        .v3_get("/v3/suppression/bounces/everywhere@example.com")
        .await;
    assert_eq!(item[0]["reason"], "550 5.1.1 unknown user", "{item}");
}

/// The keys of applied events outlive the process: the same delivery to a
/// restarted gateway on the same store is a duplicate and journals nothing.
#[tokio::test]
async fn a_redelivery_after_a_restart_is_a_duplicate() {
    let signer = SendGridSigner::new();
    let dir = tempfile::tempdir().unwrap();
    // A Mailgun hook of the same name: names are per provider.
    let hooks = format!(
        "{}  [[tenants.webhooks]]\n  provider = \"mailgun\"\n  name = \"main\"\n  signing_key = \"{MG_KEY}\"\n",
        sendgrid_hook(&signer)
    );
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout_secs = 5\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n[log]\nformat = \"json\"\n{}",
        dir.path().join("hush.db").display(),
        config(&hooks, "")
    );
    let file = dir.path().join("hush.toml");
    std::fs::write(&file, toml).unwrap();

    let now = now_secs();
    let timestamp = now.to_string();
    let body = sendgrid_body(&[with(
        sg_event("sgev-restart", "bounce", "restart@example.com", now),
        json!({"type": "bounce", "reason": "550 5.1.1 unknown user", "status": "5.1.1"}),
    )]);
    let mg = mailgun(
        "mailgun/spam_complaints.json",
        "mg-restart@example.com",
        "mg-restart-token-0123456789abcdef0123456789abcd",
        now,
        MG_KEY,
    );

    let mut first = Gateway::start(&file, &[]).await;
    let hub = Hub::at(&first);
    post_sendgrid(&hub, "/webhooks/sendgrid/main", &signer, &timestamp, &body)
        .await
        .counts(1, 0, 0);
    hub.post_json("/webhooks/mailgun/main", &[], &mg)
        .await
        .counts(1, 0, 0);
    let journal = hub.journal(None).await;
    assert_eq!(
        lines(&journal[..2]),
        sorted(vec![
            "added mg-restart@example.com webhook:mailgun mailgun/main mg-restart-token-0123456789abcdef0123456789abcd".to_owned(),
            "added restart@example.com webhook:sendgrid sendgrid/main sgev-restart".to_owned(),
        ])
    );
    assert!(first.terminate().success());

    let second = Gateway::start(&file, &[]).await;
    let hub = Hub::at(&second);
    post_sendgrid(&hub, "/webhooks/sendgrid/main", &signer, &timestamp, &body)
        .await
        .counts(0, 0, 1);
    hub.post_json("/webhooks/mailgun/main", &[], &mg)
        .await
        .counts(0, 0, 1);
    assert_eq!(hub.journal(None).await, journal);
    assert_eq!(hub.total().await, 2);
}

// ---- refused configurations ------------------------------------------------

/// A hook the gateway could not verify, or could not tell from another,
/// stops the start with the key named (exit 2), never a secret.
#[test]
fn webhook_config_mistakes_refuse_the_start() {
    let signer = SendGridSigner::new();
    let key = signer.public_base64_der();
    let hook = |body: &str| format!("  [[tenants.webhooks]]\n{body}");
    let cases = [
        (
            hook("  provider = \"sparkpost\"\n  name = \"main\"\n"),
            "tenants[0].webhooks[0].provider",
            "sparkpost",
        ),
        (
            format!(
                "{}{}",
                hook(&format!(
                    "  provider = \"sendgrid\"\n  name = \"main\"\n  public_key = \"{key}\"\n"
                )),
                hook(&format!(
                    "  provider = \"sendgrid\"\n  name = \"main\"\n  public_key = \"{key}\"\n"
                )),
            ),
            "tenants[0].webhooks[1].name",
            "another sendgrid hook",
        ),
        (
            hook("  provider = \"postmark\"\n  name = \"main\"\n"),
            "tenants[0].webhooks[0]:",
            "Postmark signs nothing",
        ),
        (
            hook(
                "  provider = \"postmark\"\n  name = \"main\"\n  basic_password = \"hunter2-not-shown\"\n",
            ),
            "tenants[0].webhooks[0].basic_user",
            "go together",
        ),
        (
            hook("  provider = \"sendgrid\"\n  name = \"main\"\n  public_key = \"bm90IGEga2V5\"\n"),
            "tenants[0].webhooks[0].public_key",
            "not a P-256 public key",
        ),
        (
            hook("  provider = \"sendgrid\"\n  name = \"main\"\n"),
            "tenants[0].webhooks[0].public_key",
            "is required",
        ),
        (
            hook("  provider = \"sendpost\"\n  name = \"short-secret\"\n"),
            "tenants[0].webhooks[0].name",
            "at least 22",
        ),
        (
            hook("  provider = \"mailgun\"\n  name = \"main\"\n"),
            "tenants[0].webhooks[0].signing_key",
            "is required",
        ),
        (
            hook(
                "  provider = \"mailgun\"\n  name = \"main\"\n  signing_key = \"k\"\n  topic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\n",
            ),
            "tenants[0].webhooks[0].topic_arns",
            "not a setting of a mailgun hook",
        ),
        (
            hook(
                "  provider = \"ses\"\n  name = \"main\"\n  signing_key = \"hunter2-not-shown\"\n",
            ),
            "tenants[0].webhooks[0].signing_key",
            "not a setting of a ses hook",
        ),
        (
            hook("  provider = \"ses\"\n  name = \"main\"\n"),
            "tenants[0].webhooks[0].topic_arns",
            "is required",
        ),
        (
            hook(
                "  provider = \"sendpost\"\n  name = \"Zq3v9XkP2mW7tR1yB8nL4c-cfg\"\n  header_name = \"X-Secret\"\n",
            ),
            "tenants[0].webhooks[0].header_name",
            "not a setting of a sendpost hook",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hush.toml");
    let write = |tables: &str| {
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n{tables}",
            dir.path().join("hush.db").display()
        );
        std::fs::write(&file, toml).unwrap();
    };
    for (hooks, key, says) in &cases {
        write(&config(hooks, ""));
        let (code, stderr) = refused_start(Some(&file), &[]);
        assert_eq!(code, 2, "{key}: {stderr}");
        assert!(
            stderr.contains(&format!("configuration error: {key}")),
            "{key} not named in: {stderr}"
        );
        assert!(stderr.contains(says), "{says:?} not in: {stderr}");
        assert!(!stderr.contains("hunter2"), "a secret is shown: {stderr}");
    }
    write(&config("", "[webhooks]\nmax_body_bytes = 100\n"));
    let (code, stderr) = refused_start(Some(&file), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("webhooks.max_body_bytes"), "{stderr}");
}
