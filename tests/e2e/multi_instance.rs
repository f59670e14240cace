//! Two `hush` processes on one PostgreSQL database, written to at once
//! through their APIs: afterwards both read the same, every acknowledged
//! write is there, nothing is there twice.
//!
//! Each API contributes a [`Workload`]: writers that record what the
//! instances acknowledged (a [`Ledger`]), and a reader of the API's whole
//! state. Only the v3 bounce API exists so far; the Postmark, SendPost and
//! v3 group APIs add their workload to [`workloads`] as they land.

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
    vec![Workload {
        name: "v3 bounces",
        write: |client, bases, n| Box::pin(v3_bounces::write(client, bases, n)),
        read: |client, base| Box::pin(v3_bounces::read(client, base)),
        is_absent: |client, base, key| Box::pin(v3_bounces::is_absent(client, base, key)),
    }]
}

const WRITERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_agree_under_concurrent_writes() {
    let db = TempDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    // Both start at once: the schema migration must cope.
    let starts = (0..2).map(|i| {
        let port = free_port();
        let config = dir.path().join(format!("hush-{i}.toml"));
        std::fs::write(&config, config_toml(&db.url, port)).unwrap();
        async move { Gateway::start(&config, port, &[]).await }
    });
    let instances = futures_util::future::join_all(starts).await;
    let bases: Vec<String> = instances.iter().map(|gw| gw.base.clone()).collect();
    let client = Client::new();

    for workload in workloads() {
        let writers: Vec<_> = (0..WRITERS)
            .map(|n| tokio::spawn((workload.write)(client.clone(), bases.clone(), n)))
            .collect();
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
        let mut turn = n;
        let mut next = || {
            turn += 1;
            bases[turn % bases.len()].clone()
        };
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
