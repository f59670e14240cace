//! Two `hush` processes on one PostgreSQL database, written to at once
//! through their APIs: afterwards both read the same, every acknowledged
//! write is there, nothing is there twice.
//!
//! Each API contributes a [`Workload`]: writers that record what the
//! instances acknowledged (a [`Ledger`]), and a reader of the API's whole
//! state. Every workload's writers run at the same time. Every API takes part: v3 bounces, groups and CSV imports, Postmark
//! stream suppressions, SendPost suppressions. Each workload writes
//! addresses (or group names) of its own, so its reader can tell its state
//! from the others' in the one tenant they share.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::pg::{TempDatabase, config_toml};
use crate::support::*;

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What one writer was told by the instances: entries acknowledged as
/// stored (and not removed since), by key, and keys acknowledged as removed.
#[derive(Debug, Default)]
struct Ledger {
    present: BTreeMap<String, Value>,
    absent: BTreeSet<String>,
}

/// One API's share of the test.
struct Workload {
    name: &'static str,
    /// Writer number `n` of many, spreading its requests over every
    /// instance (base URLs).
    write: fn(Client, Vec<String>, usize) -> Boxed<Ledger>,
    /// The API's whole state as one instance serves it, by key; panics on a
    /// key listed twice.
    read: fn(Client, String) -> Boxed<BTreeMap<String, Value>>,
    /// Whether one key reads as absent from an instance.
    is_absent: fn(Client, String, String) -> Boxed<bool>,
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "v3 bounces",
            write: |client, bases, n| Box::pin(v3_bounces::write(client, bases, n)),
            read: |client, base| Box::pin(v3_bounces::read(client, base)),
            is_absent: |client, base, key| Box::pin(v3_bounces::is_absent(client, base, key)),
        },
        Workload {
            name: "v3 groups",
            write: |client, bases, n| Box::pin(v3_groups::write(client, bases, n)),
            read: |client, base| Box::pin(v3_groups::read(client, base)),
            is_absent: |client, base, key| Box::pin(v3_groups::is_absent(client, base, key)),
        },
        Workload {
            name: "v3 spam report imports",
            write: |client, bases, n| Box::pin(v3_imports::write(client, bases, n)),
            read: |client, base| Box::pin(v3_imports::read(client, base)),
            is_absent: |client, base, key| Box::pin(v3_imports::is_absent(client, base, key)),
        },
        Workload {
            name: "postmark stream suppressions",
            write: |client, bases, n| Box::pin(postmark::write(client, bases, n)),
            read: |client, base| Box::pin(postmark::read(client, base)),
            is_absent: |client, base, key| Box::pin(postmark::is_absent(client, base, key)),
        },
        Workload {
            name: "sendpost suppressions",
            write: |client, bases, n| Box::pin(sendpost::write(client, bases, n)),
            read: |client, base| Box::pin(sendpost::read(client, base)),
            is_absent: |client, base, key| Box::pin(sendpost::is_absent(client, base, key)),
        },
    ]
}

/// Requests go to the instances in turn, starting at the writer's number.
fn rotation(bases: Vec<String>, n: usize) -> impl FnMut() -> String {
    let mut turn = n;
    move || {
        turn += 1;
        bases[turn % bases.len()].clone()
    }
}

const WRITERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_agree_under_concurrent_writes() {
    let db = TempDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    // Both start at once: the schema migration must cope.
    let starts = (0..2).map(|i| {
        let config = dir.path().join(format!("hush-{i}.toml"));
        std::fs::write(&config, config_toml(&db.url)).unwrap();
        async move { Gateway::start(&config, &[]).await }
    });
    let instances = futures_util::future::join_all(starts).await;
    let bases: Vec<String> = instances.iter().map(|gw| gw.base.clone()).collect();
    let client = Client::new();

    // Every API's writers at once, against both instances: v3, Postmark
    // and SendPost requests interleave on the same tenant and database.
    let running: Vec<_> = workloads()
        .into_iter()
        .map(|workload| {
            let writers: Vec<_> = (0..WRITERS)
                .map(|n| tokio::spawn((workload.write)(client.clone(), bases.clone(), n)))
                .collect();
            (workload, writers)
        })
        .collect();
    for (workload, writers) in running {
        let mut expected = BTreeMap::new();
        let mut absent = BTreeSet::new();
        for writer in writers {
            let ledger = writer.await.unwrap();
            for (key, record) in ledger.present {
                if let Some(other) = expected.insert(key.clone(), record.clone()) {
                    assert_eq!(
                        other, record,
                        "{}: {key} was acknowledged as two different entries",
                        workload.name
                    );
                }
            }
            absent.extend(ledger.absent);
        }
        assert!(
            expected.len() > WRITERS && !absent.is_empty(),
            "{}: the workload wrote and removed something",
            workload.name
        );
        assert!(
            absent.is_disjoint(&expected.keys().cloned().collect()),
            "{}: the test removes only keys nobody else adds",
            workload.name
        );
        for base in &bases {
            let state = (workload.read)(client.clone(), base.clone()).await;
            assert_eq!(
                state.len(),
                expected.len(),
                "{} at {base}: one entry per acknowledged key",
                workload.name
            );
            assert_eq!(
                state, expected,
                "{} at {base}: every acknowledged write, as acknowledged",
                workload.name
            );
            for key in &absent {
                assert!(
                    (workload.is_absent)(client.clone(), base.clone(), key.clone()).await,
                    "{} at {base}: {key} was removed",
                    workload.name
                );
            }
        }
    }

    group_races(&client, &bases).await;

    // Underneath: one row per identity, ids unique, nothing orphaned.
    let mut conn = db.connection().await;
    let row = sqlx::query(
        "SELECT count(*), count(DISTINCT id), \
                count(DISTINCT (tenant, email, group_id, family)), \
                count(*) FILTER (WHERE group_id <> 0 AND group_id NOT IN \
                                 (SELECT id FROM suppression_groups)) \
         FROM suppressions",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let (rows, ids, identities, orphans): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(rows, ids, "ids are unique");
    assert_eq!(rows, identities, "one row per identity");
    assert_eq!(orphans, 0, "no entry outlives its group");
}

/// Races on shared groups, through both instances at once: every writer
/// moves the default flag to a group of its own while adding an address
/// into the next writer's group, which that writer may be deleting. After:
/// at most one default group, the same on both instances, and (checked
/// underneath by the caller) no entry left in a deleted group.
async fn group_races(client: &Client, bases: &[String]) {
    const KEY: &str = "demo-v3-key";
    let mut ids = Vec::new();
    for i in 0..WRITERS {
        let res = client
            .post(format!("{}/v3/asm/groups", bases[i % bases.len()]))
            .header("Authorization", bearer(KEY))
            .json(&json!({"name": format!("race-{i}"), "description": "raced"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        ids.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let racers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (client, bases, ids) = (client.clone(), bases.to_vec(), ids.clone());
            tokio::spawn(async move {
                let base = &bases[i % bases.len()];
                let other = &bases[(i + 1) % bases.len()];
                let moved = client
                    .patch(format!("{base}/v3/asm/groups/{}", ids[i]))
                    .header("Authorization", bearer(KEY))
                    .json(&json!({"is_default": true}))
                    .send();
                let added = client
                    .post(format!(
                        "{other}/v3/asm/groups/{}/suppressions",
                        ids[(i + 1) % ids.len()]
                    ))
                    .header("Authorization", bearer(KEY))
                    .json(&json!({"recipient_emails": [format!("race{i}@example.com")]}))
                    .send();
                let (moved, added) = futures_util::join!(moved, added);
                assert_eq!(moved.unwrap().status(), StatusCode::OK);
                let added = added.unwrap().status();
                // The group may already be gone: then 404, never a 5xx.
                assert!(
                    added == StatusCode::CREATED || added == StatusCode::NOT_FOUND,
                    "{added}"
                );
                if i % 3 == 0 {
                    let res = client
                        .delete(format!("{other}/v3/asm/groups/{}", ids[i]))
                        .header("Authorization", bearer(KEY))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), StatusCode::NO_CONTENT);
                }
            })
        })
        .collect();
    for racer in racers {
        racer.await.unwrap();
    }
    let mut defaults = Vec::new();
    for base in bases {
        let res = client
            .get(format!("{base}/v3/asm/groups"))
            .header("Authorization", bearer(KEY))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        let flagged: Vec<i64> = body["suppression_groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["is_default"] == json!(true))
            .map(|g| g["id"].as_i64().unwrap())
            .collect();
        assert!(flagged.len() <= 1, "{base}: default groups {flagged:?}");
        defaults.push(flagged);
    }
    assert!(
        defaults.windows(2).all(|w| w[0] == w[1]),
        "both instances show one default: {defaults:?}"
    );
}

mod v3_bounces {
    use super::*;

    const KEY: &str = "demo-v3-key";

    async fn add(client: &Client, base: &str, email: &str) -> Value {
        let res = client
            .post(format!("{base}/v3/suppression/bounces"))
            .header("Authorization", bearer(KEY))
            .json(&json!({"email": email, "reason": "550 5.1.1 User unknown"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "adding {email} at {base}"
        );
        res.json().await.unwrap()
    }

    /// Own addresses added, some removed one by one and some in bulk, each
    /// request to the next instance in turn; and addresses every writer
    /// adds, to race the same identity across instances.
    pub async fn write(client: Client, bases: Vec<String>, n: usize) -> Ledger {
        let mut ledger = Ledger::default();
        let mut next = rotation(bases, n);
        let mut bulk = Vec::new();
        for k in 0..30 {
            let email = format!("w{n}-{k}@multi.example");
            let record = add(&client, &next(), &email).await;
            ledger.present.insert(email.clone(), record);
            if k % 3 == 0 {
                let res = client
                    .delete(format!("{}/v3/suppression/bounces/{email}", next()))
                    .header("Authorization", bearer(KEY))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::NO_CONTENT, "deleting {email}");
                ledger.present.remove(&email);
                ledger.absent.insert(email);
            } else if k % 5 == 1 {
                bulk.push(email);
            }
            if bulk.len() == 3 {
                let res = client
                    .delete(format!("{}/v3/suppression/bounces", next()))
                    .header("Authorization", bearer(KEY))
                    .json(&json!({ "emails": bulk }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::NO_CONTENT, "deleting {bulk:?}");
                for email in bulk.drain(..) {
                    ledger.present.remove(&email);
                    ledger.absent.insert(email);
                }
            }
            let shared = format!("shared-{}@multi.example", (k + n) % 10);
            let record = add(&client, &next(), &shared).await;
            ledger.present.insert(shared, record);
        }
        ledger
    }

    pub async fn read(client: Client, base: String) -> BTreeMap<String, Value> {
        let mut state = BTreeMap::new();
        let mut offset = 0;
        loop {
            let res = client
                .get(format!(
                    "{base}/v3/suppression/bounces?limit=100&offset={offset}"
                ))
                .header("Authorization", bearer(KEY))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let page: Value = res.json().await.unwrap();
            let items = page["bounces"].as_array().unwrap();
            for item in items {
                let email = item["email"].as_str().unwrap().to_owned();
                assert!(
                    state.insert(email.clone(), item.clone()).is_none(),
                    "{email} listed twice at {base}"
                );
            }
            offset += items.len();
            if items.is_empty()
                || offset >= usize::try_from(page["total"].as_u64().unwrap()).unwrap()
            {
                return state;
            }
        }
    }

    pub async fn is_absent(client: Client, base: String, email: String) -> bool {
        let res = client
            .get(format!("{base}/v3/suppression/bounces/{email}"))
            .header("Authorization", bearer(KEY))
            .send()
            .await
            .unwrap();
        res.status() == StatusCode::NOT_FOUND
    }
}

mod v3_groups {
    use super::*;

    const KEY: &str = "demo-v3-key";
    const PREFIX: &str = "multi ";

    /// Groups created, renamed by description, and some deleted, each call
    /// to the next instance; keyed by name.
    pub async fn write(client: Client, bases: Vec<String>, n: usize) -> Ledger {
        let mut ledger = Ledger::default();
        let mut next = rotation(bases, n);
        for k in 0..6 {
            let name = format!("{PREFIX}{n}-{k}");
            let res = client
                .post(format!("{}/v3/asm/groups", next()))
                .header("Authorization", bearer(KEY))
                .json(&json!({"name": name, "description": "first"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED, "creating {name}");
            let group: Value = res.json().await.unwrap();
            let id = group["id"].as_i64().unwrap();
            let res = client
                .patch(format!("{}/v3/asm/groups/{id}", next()))
                .header("Authorization", bearer(KEY))
                .json(&json!({"description": format!("changed by writer {n}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "changing {name}");
            let changed: Value = res.json().await.unwrap();
            if k % 3 == 0 {
                let res = client
                    .delete(format!("{}/v3/asm/groups/{id}", next()))
                    .header("Authorization", bearer(KEY))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::NO_CONTENT, "deleting {name}");
                ledger.absent.insert(id.to_string());
            } else {
                ledger.present.insert(id.to_string(), changed);
            }
        }
        ledger
    }

    pub async fn read(client: Client, base: String) -> BTreeMap<String, Value> {
        let res = client
            .get(format!("{base}/v3/asm/groups"))
            .header("Authorization", bearer(KEY))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let mut state = BTreeMap::new();
        for group in body["suppression_groups"].as_array().unwrap() {
            if group["name"].as_str().unwrap().starts_with(PREFIX) {
                let id = group["id"].as_i64().unwrap().to_string();
                assert!(
                    state.insert(id.clone(), group.clone()).is_none(),
                    "group {id} listed twice"
                );
            }
        }
        state
    }

    pub async fn is_absent(client: Client, base: String, id: String) -> bool {
        let res = client
            .get(format!("{base}/v3/asm/groups/{id}"))
            .header("Authorization", bearer(KEY))
            .send()
            .await
            .unwrap();
        res.status() == StatusCode::NOT_FOUND
    }
}

mod v3_imports {
    use super::*;

    const KEY: &str = "demo-v3-key";
    const DOMAIN: &str = "@imports.multi.example";

    /// What both an import and a listing tell of a spam report.
    fn record(email: &str, source: &str) -> Value {
        json!({"email": email, "source": source})
    }

    /// Three CSV imports per writer, to alternating instances, each with a
    /// row every writer shares; then some addresses removed.
    pub async fn write(client: Client, bases: Vec<String>, n: usize) -> Ledger {
        let mut ledger = Ledger::default();
        let mut next = rotation(bases, n);
        for round in 0..3 {
            let mut csv = String::from("email,source\r\n");
            for k in 0..20 {
                let email = format!("i{n}-{round}-{k}{DOMAIN}");
                csv.push_str(&format!("{email},fbl-{n}\r\n"));
                ledger
                    .present
                    .insert(email.clone(), record(&email, &format!("fbl-{n}")));
            }
            let res = client
                .post(format!("{}/v3/suppression/spam_reports/import", next()))
                .header("Authorization", bearer(KEY))
                .header("Content-Type", "text/csv")
                .body(csv)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "import round {round}");
            let reply: Value = res.json().await.unwrap();
            assert_eq!(reply["imported"], 20, "{reply}");
            assert_eq!(reply["skipped"], 0, "{reply}");
        }
        for k in (0..20).step_by(4) {
            let email = format!("i{n}-1-{k}{DOMAIN}");
            let res = client
                .delete(format!("{}/v3/suppression/spam_reports/{email}", next()))
                .header("Authorization", bearer(KEY))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::NO_CONTENT, "deleting {email}");
            ledger.present.remove(&email);
            ledger.absent.insert(email);
        }
        ledger
    }

    pub async fn read(client: Client, base: String) -> BTreeMap<String, Value> {
        let mut state = BTreeMap::new();
        let mut offset = 0;
        loop {
            let res = client
                .get(format!(
                    "{base}/v3/suppression/spam_reports?limit=500&offset={offset}"
                ))
                .header("Authorization", bearer(KEY))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let page: Value = res.json().await.unwrap();
            let items = page["spam_reports"].as_array().unwrap();
            for item in items {
                let email = item["email"].as_str().unwrap();
                if email.ends_with(DOMAIN) {
                    let source = item["source"].as_str().unwrap();
                    assert!(
                        state
                            .insert(email.to_owned(), record(email, source))
                            .is_none(),
                        "{email} listed twice"
                    );
                }
            }
            offset += items.len();
            if items.is_empty()
                || offset >= usize::try_from(page["total"].as_u64().unwrap()).unwrap()
            {
                return state;
            }
        }
    }

    pub async fn is_absent(client: Client, base: String, email: String) -> bool {
        let res = client
            .get(format!("{base}/v3/suppression/spam_reports/{email}"))
            .header("Authorization", bearer(KEY))
            .send()
            .await
            .unwrap();
        res.status() == StatusCode::NOT_FOUND
    }
}

mod postmark {
    use super::*;

    const TOKEN: &str = "demo-postmark-token";
    const DOMAIN: &str = "@postmark.multi.example";

    async fn call(client: &Client, base: &str, path: &str, emails: &[String]) -> Vec<Value> {
        let body = json!({"Suppressions": emails.iter().map(|e| json!({"EmailAddress": e})).collect::<Vec<_>>()});
        let res = client
            .post(format!(
                "{base}/message-streams/outbound/suppressions{path}"
            ))
            .header("X-Postmark-Server-Token", TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path} at {base}");
        let reply: Value = res.json().await.unwrap();
        reply["Suppressions"].as_array().unwrap().clone()
    }

    /// Batches of stream suppressions created and some deleted, to
    /// alternating instances; keyed by address, valued as the dump shows.
    pub async fn write(client: Client, bases: Vec<String>, n: usize) -> Ledger {
        let mut ledger = Ledger::default();
        let mut next = rotation(bases, n);
        for round in 0..4 {
            let emails: Vec<String> = (0..10)
                .map(|k| format!("p{n}-{round}-{k}{DOMAIN}"))
                .collect();
            for result in call(&client, &next(), "", &emails).await {
                assert_eq!(result["Status"], "Suppressed", "{result}");
            }
            for email in &emails {
                ledger.present.insert(email.clone(), json!({"EmailAddress": email, "SuppressionReason": "ManualSuppression", "Origin": "Customer"}));
            }
            let gone: Vec<String> = emails.iter().step_by(3).cloned().collect();
            for result in call(&client, &next(), "/delete", &gone).await {
                assert_eq!(result["Status"], "Deleted", "{result}");
            }
            for email in gone {
                ledger.present.remove(&email);
                ledger.absent.insert(email);
            }
        }
        ledger
    }

    async fn dump(client: &Client, base: &str) -> Vec<Value> {
        let res = client
            .get(format!("{base}/message-streams/outbound/suppressions/dump"))
            .header("X-Postmark-Server-Token", TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["Suppressions"].as_array().unwrap().clone()
    }

    pub async fn read(client: Client, base: String) -> BTreeMap<String, Value> {
        let mut state = BTreeMap::new();
        for row in dump(&client, &base).await {
            let email = row["EmailAddress"].as_str().unwrap().to_owned();
            if email.ends_with(DOMAIN) {
                let shown = json!({"EmailAddress": email, "SuppressionReason": row["SuppressionReason"], "Origin": row["Origin"]});
                assert!(
                    state.insert(email.clone(), shown).is_none(),
                    "{email} dumped twice"
                );
            }
        }
        state
    }

    pub async fn is_absent(client: Client, base: String, email: String) -> bool {
        !dump(&client, &base)
            .await
            .iter()
            .any(|row| row["EmailAddress"] == email.as_str())
    }
}

mod sendpost {
    use super::*;

    const KEY: &str = "demo-sendpost-key";
    const DOMAIN: &str = "@sendpost.multi.example";

    fn window() -> String {
        let today = time::OffsetDateTime::now_utc().date();
        format!(
            "from={}&to={}",
            today.previous_day().unwrap(),
            today.next_day().unwrap()
        )
    }

    /// Manual and unsubscribe suppressions created and some deleted, to
    /// alternating instances; keyed by address and reason, valued as
    /// created (id and nanosecond time included).
    pub async fn write(client: Client, bases: Vec<String>, n: usize) -> Ledger {
        let mut ledger = Ledger::default();
        let mut next = rotation(bases, n);
        for round in 0..4 {
            let manual: Vec<Value> = (0..5)
                .map(|k| json!({"email": format!("s{n}-{round}-{k}{DOMAIN}")}))
                .collect();
            let unsubscribe: Vec<Value> = (5..8)
                .map(|k| json!({"email": format!("s{n}-{round}-{k}{DOMAIN}")}))
                .collect();
            let res = client
                .post(format!("{}/api/v1/subaccount/suppression", next()))
                .header("X-SubAccount-ApiKey", KEY)
                .json(&json!({"manual": manual, "unsubscribe": unsubscribe}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let created: Vec<Value> = res.json().await.unwrap();
            assert_eq!(created.len(), 8);
            for row in created {
                let key = format!("{}#{}", row["email"].as_str().unwrap(), row["reason"]);
                ledger.present.insert(key, json!({"id": row["id"], "email": row["email"], "reason": row["reason"], "created": row["created"]}));
            }
            let gone = format!("s{n}-{round}-0{DOMAIN}");
            let res = client
                .delete(format!("{}/api/v1/subaccount/suppression", next()))
                .header("X-SubAccount-ApiKey", KEY)
                .json(&json!({"suppressions": [{"email": gone}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let key = format!("{gone}#0");
            ledger.present.remove(&key);
            ledger.absent.insert(key);
        }
        ledger
    }

    pub async fn read(client: Client, base: String) -> BTreeMap<String, Value> {
        let mut state = BTreeMap::new();
        let mut offset = 0;
        loop {
            let res = client
                .get(format!("{base}/api/v1/subaccount/suppression?{}&limit=100&offset={offset}&search=sendpost.multi", window()))
                .header("X-SubAccount-ApiKey", KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let rows: Vec<Value> = res.json().await.unwrap();
            for row in &rows {
                let key = format!("{}#{}", row["email"].as_str().unwrap(), row["reason"]);
                let shown = json!({"id": row["id"], "email": row["email"], "reason": row["reason"], "created": row["created"]});
                assert!(
                    state.insert(key.clone(), shown).is_none(),
                    "{key} listed twice"
                );
            }
            offset += rows.len();
            if rows.len() < 100 {
                return state;
            }
        }
    }

    pub async fn is_absent(client: Client, base: String, key: String) -> bool {
        !read(client, base).await.contains_key(&key)
    }
}
