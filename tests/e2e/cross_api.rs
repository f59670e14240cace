//! Whatever one API writes, the others read (docs/mapping.md):
//! all three APIs against one gateway, one tenant.

use std::collections::BTreeMap;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestGateway;

const TENANTS: &str = crate::support::ONE_TENANT_THREE_APIS;

struct Apis {
    gw: TestGateway,
    client: Client,
}

impl Apis {
    async fn spawn() -> Self {
        Self {
            gw: TestGateway::spawn(TENANTS).await,
            client: Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = req.send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap()
        };
        (status, value)
    }

    /// One call with the given auth header and optional JSON body.
    async fn call(
        &self,
        (header, value): (&str, &str),
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.gw.base()))
            .header(header, value);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    async fn v3(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(("Authorization", "Bearer v3-key"), method, path, body)
            .await
    }

    async fn postmark(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(("X-Postmark-Server-Token", "pm-token"), method, path, body)
            .await
    }

    async fn sendpost(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(("X-SubAccount-ApiKey", "sp-key"), method, path, body)
            .await
    }

    /// The dump of a stream as address → (reason, origin).
    async fn dump(&self, stream: &str) -> BTreeMap<String, (String, String)> {
        let (status, body) = self
            .postmark(
                Method::GET,
                &format!("/message-streams/{stream}/suppressions/dump"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        crate::support::dump_rows(&body)
    }

    /// SendPost's listing over the days around now, as address → reasons.
    async fn sendpost_rows(&self) -> BTreeMap<String, Vec<i64>> {
        let today = time::OffsetDateTime::now_utc().date();
        let from = today.previous_day().unwrap();
        let to = today.next_day().unwrap();
        let (status, body) = self
            .sendpost(
                Method::GET,
                &format!("/api/v1/subaccount/suppression?from={from}&to={to}&limit=100"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        crate::support::sendpost_rows(&body)
    }
}

fn pair(reason: &str, origin: &str) -> (String, String) {
    (reason.to_owned(), origin.to_owned())
}

#[tokio::test]
async fn sendpost_reasons_read_in_the_postmark_dump() {
    let apis = Apis::spawn().await;
    let body = json!({
        "hardBounce": [{"email": "hard@example.com"}],
        "spamComplaint": [{"email": "spam@example.com"}],
        "unsubscribe": [{"email": "unsub@example.com"}],
        "manual": [{"email": "manual@example.com"}],
    });
    let (status, created) = apis
        .sendpost(Method::POST, "/api/v1/subaccount/suppression", Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let dump = apis.dump("outbound").await;
    let expected: BTreeMap<String, (String, String)> = [
        ("hard@example.com", pair("HardBounce", "Customer")),
        ("manual@example.com", pair("ManualSuppression", "Customer")),
        ("spam@example.com", pair("SpamComplaint", "Customer")),
        ("unsub@example.com", pair("ManualSuppression", "Customer")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(dump, expected, "global entries show in every stream's dump");

    // A SendPost delete removes the address from the Postmark dump too.
    let (status, _) = apis
        .sendpost(
            Method::DELETE,
            "/api/v1/subaccount/suppression",
            Some(json!({"suppressions": [{"email": "spam@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!apis.dump("outbound").await.contains_key("spam@example.com"));
}

#[tokio::test]
async fn postmark_stream_entries_are_not_sendpost_rows_but_its_deletes_reach_sendpost() {
    let apis = Apis::spawn().await;
    let (status, results) = apis
        .postmark(
            Method::POST,
            "/message-streams/outbound/suppressions",
            Some(json!({"Suppressions": [{"EmailAddress": "stream-only@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["Suppressions"][0]["Status"], "Suppressed");
    assert!(
        !apis
            .sendpost_rows()
            .await
            .contains_key("stream-only@example.com"),
        "a stream (group) entry is not a SendPost row (docs/mapping.md: not shown)"
    );

    // A bounce SendPost made is Customer origin: Postmark may reactivate it,
    // and SendPost sees it gone.
    apis.sendpost(
        Method::POST,
        "/api/v1/subaccount/suppression",
        Some(json!({"hardBounce": [{"email": "bounced@example.com"}]})),
    )
    .await;
    assert_eq!(
        apis.sendpost_rows().await.get("bounced@example.com"),
        Some(&vec![2])
    );
    let (status, results) = apis
        .postmark(
            Method::POST,
            "/message-streams/outbound/suppressions/delete",
            Some(json!({"Suppressions": [{"EmailAddress": "bounced@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(results["Suppressions"][0]["Status"], "Deleted", "{results}");
    assert!(
        !apis
            .sendpost_rows()
            .await
            .contains_key("bounced@example.com")
    );

    // A spam complaint SendPost recorded may not be removed through Postmark.
    apis.sendpost(
        Method::POST,
        "/api/v1/subaccount/suppression",
        Some(json!({"spamComplaint": [{"email": "complainer@example.com"}]})),
    )
    .await;
    let (_, results) = apis
        .postmark(
            Method::POST,
            "/message-streams/outbound/suppressions/delete",
            Some(json!({"Suppressions": [{"EmailAddress": "complainer@example.com"}]})),
        )
        .await;
    assert_eq!(results["Suppressions"][0]["Status"], "Failed", "{results}");
    assert_eq!(
        apis.sendpost_rows().await.get("complainer@example.com"),
        Some(&vec![3])
    );
}

#[tokio::test]
async fn a_v3_bounce_reads_in_postmark_and_sendpost() {
    let apis = Apis::spawn().await;
    let (status, record) = apis
        .v3(Method::POST, "/v3/suppression/bounces", Some(json!({"email": "everywhere@example.com", "bounce_type": "soft", "reason": "452 4.2.2 Mailbox full"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{record}");
    assert_eq!(
        apis.dump("outbound").await.get("everywhere@example.com"),
        Some(&pair("HardBounce", "Customer"))
    );
    assert_eq!(
        apis.sendpost_rows().await.get("everywhere@example.com"),
        Some(&vec![2])
    );
    let (status, _) = apis
        .v3(
            Method::DELETE,
            "/v3/suppression/bounces/everywhere@example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(apis.dump("outbound").await.is_empty());
    assert!(apis.sendpost_rows().await.is_empty());
}

impl Apis {
    /// The addresses of a v3 list: `field` names the array of records or
    /// addresses in the seed shape.
    async fn v3_list(&self, path: &str, field: &str) -> Vec<String> {
        let (status, body) = self.v3(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let mut emails: Vec<String> = body[field]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {body}"))
            .iter()
            .map(|v| {
                v.as_str()
                    .map_or_else(|| v["email"].as_str().unwrap().to_owned(), str::to_owned)
            })
            .collect();
        emails.sort();
        emails
    }
}

#[tokio::test]
async fn sendpost_reasons_read_in_the_v3_lists_and_its_delete_clears_them() {
    let apis = Apis::spawn().await;
    let body = json!({
        "hardBounce": [{"email": "hard@example.com"}, {"email": "all@example.com"}],
        "spamComplaint": [{"email": "spam@example.com"}, {"email": "all@example.com"}],
        "unsubscribe": [{"email": "unsub@example.com"}, {"email": "all@example.com"}],
        "manual": [{"email": "manual@example.com"}],
    });
    let (status, _) = apis
        .sendpost(Method::POST, "/api/v1/subaccount/suppression", Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        apis.v3_list("/v3/suppression/bounces", "bounces").await,
        ["all@example.com", "hard@example.com"]
    );
    assert_eq!(
        apis.v3_list("/v3/suppression/spam_reports", "spam_reports")
            .await,
        ["all@example.com", "spam@example.com"]
    );
    assert_eq!(
        apis.v3_list("/v3/asm/suppressions/global", "recipient_emails")
            .await,
        ["all@example.com", "manual@example.com", "unsub@example.com"],
        "unsubscribe (1) and manual (0) are both global unsubscribes in v3"
    );

    let (status, _) = apis
        .sendpost(
            Method::DELETE,
            "/api/v1/subaccount/suppression",
            Some(json!({"suppressions": [{"email": "all@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        apis.v3_list("/v3/suppression/bounces", "bounces").await,
        ["hard@example.com"]
    );
    assert_eq!(
        apis.v3_list("/v3/suppression/spam_reports", "spam_reports")
            .await,
        ["spam@example.com"]
    );
    assert_eq!(
        apis.v3_list("/v3/asm/suppressions/global", "recipient_emails")
            .await,
        ["manual@example.com", "unsub@example.com"]
    );
}

#[tokio::test]
async fn a_v3_spam_report_cannot_be_deleted_through_postmark() {
    let apis = Apis::spawn().await;
    let (status, _) = apis
        .v3(
            Method::POST,
            "/v3/suppression/spam_reports",
            Some(json!({"email": "complaint@example.com", "source": "feedback_loop"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        apis.dump("outbound").await.get("complaint@example.com"),
        Some(&pair("SpamComplaint", "Customer"))
    );
    let (_, results) = apis
        .postmark(
            Method::POST,
            "/message-streams/outbound/suppressions/delete",
            Some(json!({"Suppressions": [{"EmailAddress": "complaint@example.com"}]})),
        )
        .await;
    assert_eq!(results["Suppressions"][0]["Status"], "Failed");
    assert_eq!(
        results["Suppressions"][0]["Message"],
        "You do not have the required authority to change this suppression."
    );
    assert_eq!(
        apis.v3_list("/v3/suppression/spam_reports", "spam_reports")
            .await,
        ["complaint@example.com"]
    );
}

#[tokio::test]
async fn a_postmark_stream_suppression_is_that_v3_group_s_and_nowhere_else() {
    let apis = Apis::spawn().await;
    let stream =
        json!({"ID": "broadcast", "Name": "Broadcast Stream", "MessageStreamType": "Broadcasts"});
    let (status, created) = apis
        .postmark(Method::POST, "/message-streams", Some(stream))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, results) = apis
        .postmark(
            Method::POST,
            "/message-streams/broadcast/suppressions",
            Some(json!({"Suppressions": [{"EmailAddress": "opted-out@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(results["Suppressions"][0]["Status"], "Suppressed");

    let (_, groups) = apis.v3(Method::GET, "/v3/asm/groups", None).await;
    let groups = groups["suppression_groups"].as_array().unwrap().clone();
    let id_of = |name: &str| {
        groups
            .iter()
            .find(|g| g["name"] == name)
            .unwrap_or_else(|| panic!("no group {name}: {groups:?}"))["id"]
            .as_i64()
            .unwrap()
    };
    let broadcast = id_of("Broadcast Stream");
    let outbound = id_of("Default Transactional Stream");
    assert_eq!(
        apis.v3_list(
            &format!("/v3/asm/groups/{broadcast}/suppressions"),
            "recipient_emails"
        )
        .await,
        ["opted-out@example.com"],
        "the group behind the stream holds it"
    );
    assert!(
        apis.v3_list(
            &format!("/v3/asm/groups/{outbound}/suppressions"),
            "recipient_emails"
        )
        .await
        .is_empty()
    );
    assert!(
        apis.v3_list("/v3/asm/suppressions/global", "recipient_emails")
            .await
            .is_empty(),
        "not global"
    );
    assert!(
        apis.v3_list("/v3/suppression/bounces", "bounces")
            .await
            .is_empty()
    );
    assert!(
        apis.dump("outbound").await.is_empty(),
        "not in another stream's dump"
    );
    assert_eq!(
        apis.dump("broadcast").await.get("opted-out@example.com"),
        Some(&pair("ManualSuppression", "Customer"))
    );
    assert!(
        !apis
            .sendpost_rows()
            .await
            .contains_key("opted-out@example.com")
    );
}
