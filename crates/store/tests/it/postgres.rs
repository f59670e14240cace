//! The PostgreSQL backend against the server `HUSH_TEST_POSTGRES_URL` names:
//! the shared conformance suite, every check on a database of its own that
//! is dropped afterwards, and what only a store shared by several instances
//! promises (each "instance" here is a backend with its own pool).
//!
//! Compiled in only when the variable is set (see `build.rs`); an
//! unreachable server then fails the tests.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hush_engine::{AddOutcome, Backend};
use hush_model::{
    BounceClass, Email, Kind, KindSet, ListFilter, NewGroup, NewSuppression, Origin, Scope,
    ScopeFilter, StreamType, TenantId, Timestamp, UnsubscribeHandling,
};
use hush_store::postgres::SqlParam;
use hush_store::{PostgresBackend, PostgresOptions};
use sqlx::Row as _;

use crate::guarded::Guarded;

const URL_VAR: &str = "HUSH_TEST_POSTGRES_URL";

/// A database of its own on the test server, dropped with this value.
#[derive(Debug)]
pub struct TempDatabase {
    server: PostgresOptions,
    name: String,
}

impl TempDatabase {
    pub async fn create() -> Self {
        let url = std::env::var(URL_VAR).unwrap_or_else(|_| panic!("{URL_VAR} is not set"));
        let server = PostgresOptions::from_url(&url).unwrap_or_else(|e| panic!("{URL_VAR}: {e}"));
        let name = format!("hush_test_{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = server.create_database(&name).await {
            panic!(
                "{URL_VAR} names a PostgreSQL server that cannot be used ({}): {e}",
                server.location()
            );
        }
        Self { server, name }
    }

    pub fn options(&self) -> PostgresOptions {
        let mut options = self.server.clone().with_database(&self.name);
        options.pool_size = 4;
        options
    }

    pub async fn backend(&self) -> PostgresBackend {
        PostgresBackend::connect(self.options()).await.unwrap()
    }

    /// A plain connection, to look at the tables directly.
    pub async fn connection(&self) -> sqlx::PgConnection {
        self.options().connect_once().await.unwrap()
    }
}

impl Drop for TempDatabase {
    /// Dropping needs I/O, and this may run inside the test's runtime, which
    /// cannot block on a future: a thread with a runtime of its own does it.
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(server.drop_database(&name))
                .map_err(|e| e.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

/// A fresh backend on a fresh database, for the conformance suite.
pub async fn fresh() -> Arc<dyn Backend> {
    let database = TempDatabase::create().await;
    let backend = database.backend().await;
    Arc::new(Guarded {
        backend: Box::new(backend),
        guard: database,
    })
}

mod conformance {
    hush_engine::backend_conformance!(super::fresh);
}

/// Who the tests' changes are journaled as.
fn actor() -> hush_model::Actor {
    hush_model::Actor::new(hush_model::Door::ADMIN)
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn bounce(address: &str, created: i64) -> NewSuppression {
    NewSuppression {
        email: Email::parse(address).unwrap(),
        scope: Scope::Global,
        kind: Kind::Bounce {
            class: BounceClass::Hard,
            status: Some("5.1.1".into()),
            reason: None,
        },
        origin: Origin::Recipient,
        created_at: Timestamp::from_nanos(created),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_when_instances_start_together() {
    let database = TempDatabase::create().await;
    let starts = (0..4).map(|_| PostgresBackend::connect(database.options()));
    let backends = futures_util::future::join_all(starts).await;
    for backend in &backends {
        assert!(backend.is_ok(), "{backend:?}");
    }
    let mut conn = database.connection().await;
    let versions: Vec<i32> =
        sqlx::query("SELECT version FROM hush_schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
    assert_eq!(
        versions,
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "each migration recorded once"
    );
    // And a restart applies nothing and still works.
    drop(backends);
    let again = database.backend().await;
    again.ready().await.unwrap();
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let database = TempDatabase::create().await;
    drop(database.backend().await);
    let mut conn = database.connection().await;
    sqlx::query("INSERT INTO hush_schema_migrations (version) VALUES (99)")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = PostgresBackend::connect(database.options())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

/// Two instances add overlapping batches at once: every identity ends up
/// with exactly one row, and every instance reports that row's id for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_instances_keep_one_entry_per_identity() {
    let database = TempDatabase::create().await;
    let instances = [database.backend().await, database.backend().await];
    let t = tenant("shared");
    let mut tasks = Vec::new();
    for (n, instance) in instances.into_iter().enumerate() {
        let instance = Arc::new(instance);
        for writer in 0..4 {
            let (instance, t) = (Arc::clone(&instance), t.clone());
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                for round in 0..10 {
                    // Overlapping windows of 60 addresses, in an order that
                    // differs per writer (deadlock-prone on purpose).
                    let mut batch: Vec<_> = (0..60)
                        .map(|i| {
                            let k = (round * 30 + i) % 300;
                            bounce(
                                &format!("u{k}@x.com"),
                                i64::try_from(n * 10 + writer).unwrap(),
                            )
                        })
                        .collect();
                    if writer % 2 == 1 {
                        batch.reverse();
                    }
                    for outcome in instance.add(&t, batch, &actor()).await.unwrap() {
                        let AddOutcome::Added { suppression, new } = outcome else {
                            panic!("global adds are always stored");
                        };
                        seen.push((suppression.email.as_str().to_owned(), suppression.id, new));
                    }
                }
                seen
            }));
        }
    }
    let mut ids: HashMap<String, HashSet<_>> = HashMap::new();
    let mut made = HashMap::<String, usize>::new();
    for task in tasks {
        for (address, id, new) in task.await.unwrap() {
            ids.entry(address.clone()).or_default().insert(id);
            if new {
                *made.entry(address).or_default() += 1;
            }
        }
    }
    assert_eq!(ids.len(), 300);
    for (address, set) in &ids {
        assert_eq!(set.len(), 1, "{address} was reported with ids {set:?}");
        assert_eq!(made.get(address), Some(&1), "{address} was made once");
    }
    let mut conn = database.connection().await;
    let rows: i64 = sqlx::query("SELECT count(*) FROM suppressions")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 300, "one row per identity");
}

/// The statements of the other sessions of this test's database that are
/// waiting for a lock.
async fn lock_waits(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query(
        "SELECT query FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'",
    )
    .fetch_all(conn)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect()
}

/// Polls `decide` on the lock waits every 10 ms until it decides, at most
/// 1000 times: a bounded wait, never a timing assumption.
async fn when_locks<T>(
    conn: &mut sqlx::PgConnection,
    decide: impl Fn(&[String]) -> Option<T>,
) -> Option<T> {
    for _ in 0..1000 {
        if let Some(decided) = decide(&lock_waits(conn).await) {
            return Some(decided);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    None
}

fn waiting_in(waits: &[String], statement: &str) -> usize {
    waits.iter().filter(|q| q.starts_with(statement)).count()
}

/// Adds into a group while another instance deletes it: afterwards no
/// entry points at the deleted group. The interleaving is forced, not
/// hoped for: a third session holds the tenant's version rows, which an
/// add updates last, so the add is seen waiting with its group locked and
/// its rows inserted but uncommitted; the delete then starts and is seen
/// waiting for the add's group lock; only then is the add let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_racing_a_group_delete_leave_no_orphans() {
    let database = TempDatabase::create().await;
    let adder = Arc::new(database.backend().await);
    let deleter = Arc::new(database.backend().await);
    let t = tenant("t");
    let group = deleter
        .create_group(
            &t,
            NewGroup {
                key: hush_model::GroupKey::parse("news").unwrap(),
                name: "News".into(),
                description: String::new(),
                is_default: false,
                stream_type: StreamType::Broadcasts,
                unsubscribe_handling: UnsubscribeHandling::default_for(StreamType::Broadcasts),
                created_at: Timestamp::from_nanos(1),
            },
            &actor(),
        )
        .await
        .unwrap();
    let mut watcher = database.connection().await;
    let mut holder = database.connection().await;
    let mut held = sqlx::Connection::begin(&mut holder).await.unwrap();
    // Every shard of the tenant's version (sql::VERSION_SHARDS is 16).
    sqlx::query(
        "INSERT INTO hush_tenant_versions (tenant, shard, version) \
         SELECT $1, s::smallint, 0 FROM generate_series(0, 15) AS s \
         ON CONFLICT (tenant, shard) DO UPDATE SET version = hush_tenant_versions.version",
    )
    .bind(t.as_str())
    .execute(&mut *held)
    .await
    .unwrap();
    let adding = {
        let (adder, t) = (Arc::clone(&adder), t.clone());
        tokio::spawn(async move {
            let batch = (0..25)
                .map(|i| NewSuppression {
                    scope: Scope::Group(group.id),
                    kind: Kind::Unsubscribe,
                    ..bounce(&format!("r{i}@x.com"), 5)
                })
                .collect();
            adder.add(&t, batch, &actor()).await.unwrap()
        })
    };
    const BUMP: &str = "INSERT INTO hush_tenant_versions";
    assert!(
        when_locks(&mut watcher, |waits| (waiting_in(waits, BUMP) == 1)
            .then_some(()))
        .await
        .is_some(),
        "the add is in flight: its group locked, its rows inserted, not committed"
    );
    assert!(!adding.is_finished());
    let deleting = {
        let (deleter, t) = (Arc::clone(&deleter), t.clone());
        tokio::spawn(async move { deleter.delete_group(&t, group.id, &actor()).await.unwrap() })
    };
    // The delete waits for the add's lock on the group. Were the add not to
    // hold one, the delete would get past its deletes and wait at its own
    // version bump (or finish); the checks below then find the orphans the
    // add commits.
    let delete_waited = when_locks(&mut watcher, |waits| {
        if waiting_in(waits, "DELETE FROM suppression_groups") == 1 {
            Some(true)
        } else if waiting_in(waits, BUMP) == 2 || deleting.is_finished() {
            Some(false)
        } else {
            None
        }
    })
    .await;
    assert!(
        delete_waited.is_some(),
        "the delete neither waited nor got past the group"
    );
    held.rollback().await.unwrap();
    let outcomes = adding.await.unwrap();
    assert!(deleting.await.unwrap(), "the group was there to delete");
    let left = adder
        .count(
            &t,
            &ListFilter::new(KindSet::ALL, ScopeFilter::Group(group.id)),
        )
        .await
        .unwrap();
    let rows: i64 = sqlx::query("SELECT count(*) FROM suppressions WHERE group_id = $1")
        .bind(group.id.0)
        .fetch_one(&mut watcher)
        .await
        .unwrap()
        .get(0);
    assert_eq!((left, rows), (0, 0), "no entry outlives its group");
    // The add did go in before the delete: it committed into the group,
    // and the delete, which waited for it, took its entries along.
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, AddOutcome::Added { new: true, .. })),
        "{outcomes:?}"
    );
    assert_eq!(
        delete_waited,
        Some(true),
        "the delete ran while the add was in flight"
    );
}

/// The plan of each statement the backend runs to list a page of `filter`
/// (`hush_store::postgres::list_statements`), with the same parameters.
async fn listing_plans(
    conn: &mut sqlx::PgConnection,
    t: &TenantId,
    filter: &ListFilter,
) -> Vec<(String, String)> {
    let page = hush_model::PageRequest {
        limit: 50,
        offset: 0,
    };
    let mut plans = Vec::new();
    for (sql, params) in hush_store::postgres::list_statements(t, filter, page) {
        let explain = format!("EXPLAIN {sql}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
        for param in params {
            query = match param {
                SqlParam::Text(text) => query.bind(text),
                SqlParam::Int(n) => query.bind(n),
                SqlParam::Small(n) => query.bind(n),
            };
        }
        let lines: Vec<String> = query
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        plans.push((sql, lines.join("\n")));
    }
    plans
}

/// The backend's own listing SQL, as it runs it, is served by the indexes
/// a filter needs: an address prefix and an exact address by a range of
/// the identity index, a group's entries by the scope index.
#[tokio::test]
async fn filters_are_served_by_indexes() {
    let database = TempDatabase::create().await;
    drop(database.backend().await);
    let mut conn = database.connection().await;
    // Without statistics of a real table the planner would scan anything
    // this small; tell it not to, to see which index it would use.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let t = tenant("t");
    let mut prefix = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    prefix.email = Some(hush_model::EmailMatch::prefix("sales").unwrap());
    let mut exact = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    exact.email = Some(hush_model::EmailMatch::Exact(
        Email::parse("sales@x.com").unwrap(),
    ));
    let group = ListFilter::new(
        KindSet::family(hush_model::KindFamily::Unsubscribe),
        ScopeFilter::Group(hush_model::GroupId(7)),
    );
    let cases = [
        (
            "prefix",
            &prefix,
            "suppressions_identity",
            &["email >= 'sales'", "email < 'salet'"][..],
        ),
        (
            "exact",
            &exact,
            "suppressions_identity",
            &["email = 'sales@x.com'"][..],
        ),
        (
            "group",
            &group,
            "suppressions_by_scope",
            &["group_id = '7'", "family = 3"][..],
        ),
    ];
    for (name, filter, index, conditions) in cases {
        let plans = listing_plans(&mut conn, &t, filter).await;
        assert_eq!(plans.len(), 2, "{name}: a count and a page");
        for (sql, plan) in plans {
            let seen = format!("{name}: {sql}\n{plan}");
            assert!(!plan.contains("Seq Scan"), "{seen}");
            assert!(
                plan.contains(&format!("Scan using {index} on suppressions"))
                    || plan.contains(&format!("Bitmap Index Scan on {index}")),
                "{seen}"
            );
            // The filter's own conditions bound the index range, not merely
            // filter the rows it yields.
            let bounds: Vec<&str> = plan
                .lines()
                .filter(|line| line.trim_start().starts_with("Index Cond:"))
                .collect();
            for condition in conditions {
                assert!(
                    bounds.iter().any(|line| line.contains(condition)),
                    "{seen}\nno index condition {condition}"
                );
            }
        }
    }
}

fn group_named(key: &str, name: &str, is_default: bool) -> NewGroup {
    NewGroup {
        key: hush_model::GroupKey::parse(key).unwrap(),
        name: name.into(),
        description: String::new(),
        is_default,
        stream_type: StreamType::Broadcasts,
        unsubscribe_handling: UnsubscribeHandling::default_for(StreamType::Broadcasts),
        created_at: Timestamp::from_nanos(1),
    }
}

/// Two instances create, rename and make default at once: keys and names
/// stay unique, each refusal is the engine's error, and exactly one group
/// is the default afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_group_changes_keep_groups_consistent() {
    let database = TempDatabase::create().await;
    let instances = [
        Arc::new(database.backend().await),
        Arc::new(database.backend().await),
    ];
    let t = tenant("t");
    let mut tasks = Vec::new();
    for (n, instance) in instances.iter().enumerate() {
        for k in 0..6 {
            let (instance, t) = (Arc::clone(instance), t.clone());
            tasks.push(tokio::spawn(async move {
                // Every task races for the same three keys and names, and
                // half of them ask to be the default.
                let key = format!("g{}", k % 3);
                let made = instance
                    .create_group(
                        &t,
                        group_named(&key, &format!("G {}", k % 3), k % 2 == 0),
                        &actor(),
                    )
                    .await;
                match made {
                    Ok(group) => {
                        let changes = hush_model::GroupChanges {
                            is_default: Some(true),
                            name: Some(format!("G {} by {n}", k % 3)),
                            ..Default::default()
                        };
                        instance
                            .update_group(&t, group.id, changes, &actor())
                            .await
                            .unwrap()
                            .unwrap();
                        1
                    }
                    Err(hush_engine::EngineError::GroupKeyTaken(_))
                    | Err(hush_engine::EngineError::GroupNameTaken(_)) => 0,
                    Err(other) => panic!("unexpected refusal: {other}"),
                }
            }));
        }
    }
    let mut created = 0;
    for task in tasks {
        created += task.await.unwrap();
    }
    assert_eq!(created, 3, "one group per key");
    for instance in &instances {
        let groups = instance.groups(&t).await.unwrap();
        assert_eq!(groups.len(), 3);
        let keys: HashSet<_> = groups.iter().map(|g| g.key.as_str().to_owned()).collect();
        let names: HashSet<_> = groups.iter().map(|g| g.name.clone()).collect();
        assert_eq!((keys.len(), names.len()), (3, 3));
        assert_eq!(
            groups.iter().filter(|g| g.is_default).count(),
            1,
            "exactly one default: {groups:?}"
        );
    }
}

/// The PostgreSQL twin of the SQLite migration: addresses stored before
/// they were normalized are put in their one form by the migration, and
/// two rows of one identity become one.
#[tokio::test]
async fn stored_addresses_are_normalized_by_the_migration() {
    let db = TempDatabase::create().await;
    drop(db.backend().await);
    let mut conn = db.connection().await;
    for (n, (stored, family)) in [
        ("bob@xn--mnchen-3ya.de", 3_i16),
        ("bob@münchen.de", 3),
        ("bob@mu\u{308}nchen.de", 0),
        ("ca\u{200b}t@example.com", 3),
        ("bob@xn--zz.de", 3),
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO suppressions (tenant, email, group_id, family, class, origin, created_at) \
             VALUES ('t1', $1, 0, $2, CASE WHEN $2 = 0 THEN 0::SMALLINT END, 1, $3)",
        )
        .bind(stored)
        .bind(family)
        .bind(n as i64)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    // Back to before migration 4 (and the later ones).
    sqlx::raw_sql(
        "DELETE FROM hush_schema_migrations WHERE version >= 4; \
         DROP TABLE hush_meta; DROP TABLE hush_journal; DROP TABLE hush_webhook_receipts; DROP TABLE hush_mirror_state; DROP TABLE hush_mirror_failures;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    let backend = db.backend().await;
    let t = TenantId::parse("t1").unwrap();
    let all = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    assert_eq!(backend.count(&t, &all).await.unwrap(), 3);
    let found = backend
        .entries(&t, &Email::parse("BOB@XN--MNCHEN-3YA.DE").unwrap())
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|s| s.email.as_str() == "bob@münchen.de"));
    let mut check = db.connection().await;
    let kept: String = sqlx::query_scalar("SELECT email FROM hush_quarantine")
        .fetch_one(&mut check)
        .await
        .unwrap();
    assert_eq!(kept, "bob@xn--zz.de", "moved aside, not lost");
    let cat = backend
        .entries(&t, &Email::parse("cat@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(cat.len(), 1);
}
