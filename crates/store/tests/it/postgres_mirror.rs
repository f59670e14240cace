//! The PostgreSQL lookup mirror: exact across instances, and actually used.
//!
//! Two backends on one database stand for two hush instances. Every read
//! that must see a write follows a read on the same instance that saw the
//! opposite state, so that a mirror that kept the old answer fails the
//! test. Writes by hand in SQL stand for anything else that writes the
//! table (an older hush, an operator).

use std::sync::Arc;

use hush_engine::{AddOutcome, Backend};
use hush_model::{
    Email, GroupKey, Kind, KindSet, ListFilter, NewGroup, NewSuppression, Origin, Scope,
    ScopeFilter, StreamType, Suppression, SuppressionId, TenantId, Timestamp, UnsubscribeHandling,
};
use hush_store::PostgresBackend;

use crate::postgres::TempDatabase;

/// Who the tests' changes are journaled as.
fn actor() -> hush_model::Actor {
    hush_model::Actor::new(hush_model::Door::ADMIN)
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

fn unsubscribe(address: &str, scope: Scope) -> NewSuppression {
    NewSuppression {
        email: email(address),
        scope,
        kind: Kind::Unsubscribe,
        origin: Origin::Customer,
        created_at: Timestamp::from_nanos(1_000),
    }
}

async fn add(backend: &PostgresBackend, t: &TenantId, item: NewSuppression) -> Suppression {
    match backend
        .add(t, vec![item], &actor())
        .await
        .unwrap()
        .remove(0)
    {
        AddOutcome::Added { suppression, .. } => suppression,
        other => panic!("not added: {other:?}"),
    }
}

async fn ids(backend: &PostgresBackend, t: &TenantId, address: &str) -> Vec<SuppressionId> {
    backend
        .entries(t, &email(address))
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect()
}

async fn two_instances(database: &TempDatabase) -> (PostgresBackend, PostgresBackend) {
    (database.backend().await, database.backend().await)
}

/// Runs SQL on the database behind hush's back: what an operator in psql,
/// or an older hush, would do.
async fn by_hand(conn: &mut sqlx::PgConnection, sql: &'static str) {
    sqlx::raw_sql(sql).execute(conn).await.unwrap();
}

#[tokio::test]
async fn an_add_on_one_instance_is_seen_by_the_next_lookup_on_another() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    assert!(
        ids(&b, &t, "x@x.com").await.is_empty(),
        "absent, and cached"
    );
    assert!(ids(&b, &t, "x@x.com").await.is_empty());
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id]);
    // And a second entry of the same address, on top of a cached one.
    let second = add(
        &a,
        &t,
        NewSuppression {
            kind: Kind::Manual,
            created_at: Timestamp::from_nanos(2_000),
            ..unsubscribe("x@x.com", Scope::Global)
        },
    )
    .await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [second.id, made.id]);
}

#[tokio::test]
async fn each_kind_of_delete_on_one_instance_is_seen_by_the_next_lookup_on_another() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");

    // remove_ids
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id]);
    assert_eq!(a.remove_ids(&t, &[made.id], &actor()).await.unwrap(), 1);
    assert!(ids(&b, &t, "x@x.com").await.is_empty(), "remove_ids seen");

    // remove_matching
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id], "re-add seen");
    let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::Global);
    filter.email = Some(hush_model::EmailMatch::Exact(email("x@x.com")));
    assert_eq!(a.remove_matching(&t, &filter, &actor()).await.unwrap(), 1);
    assert!(
        ids(&b, &t, "x@x.com").await.is_empty(),
        "remove_matching seen"
    );

    // delete_group takes the group's entries with it
    let group = a
        .create_group(
            &t,
            NewGroup {
                key: GroupKey::parse("news").unwrap(),
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
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Group(group.id))).await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id], "group add seen");
    assert!(a.delete_group(&t, group.id, &actor()).await.unwrap());
    assert!(ids(&b, &t, "x@x.com").await.is_empty(), "delete_group seen");
}

#[tokio::test]
async fn an_instance_sees_its_own_writes_and_other_tenants_are_apart() {
    let database = TempDatabase::create().await;
    let a = database.backend().await;
    let (one, two) = (tenant("one"), tenant("two"));
    assert!(ids(&a, &one, "x@x.com").await.is_empty());
    assert!(ids(&a, &two, "x@x.com").await.is_empty());
    let made = add(&a, &one, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&a, &one, "x@x.com").await, [made.id]);
    assert!(
        ids(&a, &two, "x@x.com").await.is_empty(),
        "tenant two apart"
    );
    assert_eq!(a.remove_ids(&one, &[made.id], &actor()).await.unwrap(), 1);
    assert!(ids(&a, &one, "x@x.com").await.is_empty());
}

/// With the mirror, lookups of addresses present or absent read nothing
/// from PostgreSQL but the change log, and a write on another instance is
/// applied to the mirror rather than read per lookup.
#[tokio::test]
async fn lookups_are_answered_from_the_mirror() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    let made = add(&a, &t, unsubscribe("hit@x.com", Scope::Global)).await;
    for _ in 0..5 {
        assert_eq!(ids(&b, &t, "hit@x.com").await, [made.id]);
        assert!(ids(&b, &t, "miss@x.com").await.is_empty());
    }
    add(&a, &t, unsubscribe("other@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "hit@x.com").await, [made.id]);
    assert_eq!(ids(&b, &t, "other@x.com").await.len(), 1);
    assert_eq!(b.entry_reads(), 0, "no lookup read PostgreSQL itself");
    assert_eq!(b.mirrored_addresses(), 2);
    assert_eq!(b.mirror_builds(), 1, "built once, at start");
}

/// A backend started on a database that already holds entries builds its
/// mirror from them.
#[tokio::test]
async fn an_instance_started_later_builds_its_mirror_from_the_table() {
    let database = TempDatabase::create().await;
    let a = database.backend().await;
    let (one, two) = (tenant("one"), tenant("two"));
    let x = add(&a, &one, unsubscribe("x@x.com", Scope::Global)).await;
    let y = add(&a, &two, unsubscribe("y@x.com", Scope::Global)).await;
    let later = database.backend().await;
    assert_eq!(later.mirrored_addresses(), 2);
    assert_eq!(ids(&later, &one, "x@x.com").await, [x.id]);
    assert_eq!(ids(&later, &two, "y@x.com").await, [y.id]);
    assert!(ids(&later, &two, "x@x.com").await.is_empty());
    assert_eq!(later.entry_reads(), 0);
}

#[tokio::test]
async fn without_the_mirror_every_lookup_reads_postgres() {
    let database = TempDatabase::create().await;
    let mut options = database.options();
    options.lookup_index_mib = 0;
    let b = PostgresBackend::connect(options).await.unwrap();
    let t = tenant("t");
    for _ in 0..3 {
        assert!(ids(&b, &t, "miss@x.com").await.is_empty());
    }
    assert_eq!(b.entry_reads(), 3);
    assert_eq!(b.mirrored_addresses(), 0);
    assert_eq!(b.mirror_builds(), 0);
}

/// Lookups in flight together share one step. On a current-thread runtime
/// the driver runs only once every lookup below has registered (30:
/// `join_all` polls up to 32 futures before it yields).
#[tokio::test(flavor = "current_thread")]
async fn concurrent_lookups_share_one_round_trip() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    let made = add(&a, &t, unsubscribe("u7@x.com", Scope::Global)).await;
    let steps = b.mirror_steps();
    let addresses: Vec<String> = (0..30).map(|i| format!("u{}@x.com", i % 15)).collect();
    let answers =
        futures_util::future::join_all(addresses.iter().map(|address| ids(&b, &t, address))).await;
    for (address, found) in addresses.iter().zip(&answers) {
        let expected = if address == "u7@x.com" {
            vec![made.id]
        } else {
            Vec::new()
        };
        assert_eq!(found, &expected, "{address}");
    }
    assert_eq!(b.mirror_steps(), steps + 1, "one step for 30 lookups");
}

/// A tenant that does not fit the budget is read from PostgreSQL for each
/// lookup, exactly; a tenant that fits stays in the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_the_budget_is_read_from_postgres_and_stays_exact() {
    let database = TempDatabase::create().await;
    let a = database.backend().await;
    let (big, small) = (tenant("big"), tenant("small"));
    // About 3 MiB of reasons that repeat nowhere: past a 1 MiB budget.
    let mut conn = database.connection().await;
    by_hand(
        &mut conn,
        "INSERT INTO suppressions \
         (tenant, email, family, class, status, reason, origin, created_at) \
         SELECT 'big', 'u' || n || '@x.com', 0, 0, '5.1.1', repeat(md5(n::text), 24), 0, n \
         FROM generate_series(1, 3000) AS n",
    )
    .await;
    let kept = add(&a, &small, unsubscribe("s@x.com", Scope::Global)).await;
    let mut options = database.options();
    options.lookup_index_mib = 1;
    let b = Arc::new(PostgresBackend::connect(options).await.unwrap());
    assert_eq!(ids(&b, &small, "s@x.com").await, [kept.id]);
    assert_eq!(b.entry_reads(), 0, "the small tenant is in the mirror");
    let found = b.entries(&big, &email("u7@x.com")).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        b.entry_reads() > 0,
        "the big tenant is read from PostgreSQL"
    );
    // Its writes are seen, as any read of the table sees them.
    let made = add(&a, &big, unsubscribe("new@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &big, "new@x.com").await, [made.id]);
    assert_eq!(a.remove_ids(&big, &[made.id], &actor()).await.unwrap(), 1);
    assert!(ids(&b, &big, "new@x.com").await.is_empty());
}

/// Many lookups racing many writes on another instance: every lookup that
/// starts after a write was acknowledged sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_racing_writes_never_miss_an_acknowledged_write() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let b = Arc::new(b);
    let t = tenant("t");
    // Readers keep the mirror stepping on the addresses being written.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (b, t, stop) = (Arc::clone(&b), t.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = ids(&b, &t, &format!("w{}@x.com", (n + r) % 5)).await;
                    n += 1;
                }
            })
        })
        .collect();
    for round in 0..20 {
        let address = format!("w{}@x.com", round % 5);
        let made = add(&a, &t, unsubscribe(&address, Scope::Global)).await;
        assert_eq!(ids(&b, &t, &address).await, [made.id], "add, round {round}");
        assert_eq!(a.remove_ids(&t, &[made.id], &actor()).await.unwrap(), 1);
        assert!(
            ids(&b, &t, &address).await.is_empty(),
            "remove, round {round}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    assert_eq!(b.entry_reads(), 0);
}

/// Writes that do not go through hush (an older hush during a rolling
/// upgrade, an operator in psql) are in the change log too: the triggers
/// write it, not hush.
#[tokio::test]
async fn writes_by_hand_in_sql_are_seen_by_the_next_lookup() {
    let database = TempDatabase::create().await;
    let b = database.backend().await;
    let t = tenant("t");
    assert!(ids(&b, &t, "x@x.com").await.is_empty());
    let mut conn = database.connection().await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO suppressions (tenant, email, family, origin, created_at) \
         VALUES ('t', 'x@x.com', 3, 0, 5) RETURNING id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(ids(&b, &t, "x@x.com").await, [SuppressionId(id)], "insert");
    sqlx::query("UPDATE suppressions SET email = 'y@x.com' WHERE id = $1")
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        ids(&b, &t, "x@x.com").await.is_empty(),
        "update, old address"
    );
    assert_eq!(
        ids(&b, &t, "y@x.com").await,
        [SuppressionId(id)],
        "update, new"
    );
    sqlx::query("DELETE FROM suppressions WHERE id = $1")
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(ids(&b, &t, "y@x.com").await.is_empty(), "delete");
    assert_eq!(b.entry_reads(), 0);
}

/// A TRUNCATE names no rows; every instance builds its mirror again.
#[tokio::test]
async fn a_truncate_makes_every_instance_build_again() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "x@x.com").await.len(), 1);
    let mut conn = database.connection().await;
    by_hand(&mut conn, "TRUNCATE suppressions").await;
    assert!(ids(&b, &t, "x@x.com").await.is_empty());
    assert_eq!(b.mirror_builds(), 2);
    assert_eq!(b.mirrored_addresses(), 0);
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(
        ids(&b, &t, "x@x.com").await,
        [made.id],
        "and steps on after"
    );
    assert_eq!(b.mirror_builds(), 2);
}

/// An instance whose snapshot is older than what pruning deleted cannot
/// learn from the log what changed; it builds again rather than miss the
/// pruned change. The pruning is done by hand here, so that it reaches past
/// the instance's snapshot whatever else runs on the server.
#[tokio::test]
async fn an_instance_behind_the_pruning_horizon_builds_again() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id]);
    let builds = b.mirror_builds();
    assert_eq!(a.remove_ids(&t, &[made.id], &actor()).await.unwrap(), 1);
    // The log of the remove is gone, and the horizon says so.
    let mut conn = database.connection().await;
    by_hand(
        &mut conn,
        "BEGIN; DELETE FROM hush_changes; \
         UPDATE hush_change_horizon SET pruned_below = pg_current_xact_id(); COMMIT",
    )
    .await;
    assert!(
        ids(&b, &t, "x@x.com").await.is_empty(),
        "the remove is seen"
    );
    // At least one build: more while transactions of other tests that
    // began before the hand-set horizon still run (xids are the server's,
    // not the database's), which real pruning never causes (it prunes
    // below the oldest running transaction).
    assert!(b.mirror_builds() > builds, "from a fresh snapshot");
    let again = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(
        ids(&b, &t, "x@x.com").await,
        [again.id],
        "and steps on after"
    );
}

/// Pruning deletes the log below what the pruning instance has read, and
/// every instance stays exact across it. The server's oldest running
/// transaction (of any database: other tests run beside this one) bounds
/// what can go, so the prune is tried until it deletes something.
#[tokio::test]
async fn pruning_deletes_the_log_and_every_instance_stays_exact() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id]);
    assert_eq!(a.remove_ids(&t, &[made.id], &actor()).await.unwrap(), 1);
    let mut pruned = 0;
    for _ in 0..100 {
        pruned = a.prune_change_log_now().await.unwrap();
        if pruned > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(pruned >= 2, "the add and the remove: {pruned}");
    assert!(ids(&b, &t, "x@x.com").await.is_empty(), "b");
    assert!(ids(&a, &t, "x@x.com").await.is_empty(), "a");
    assert_eq!(a.mirror_builds(), 1, "the pruning instance steps on");
    let again = add(&b, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&a, &t, "x@x.com").await, [again.id]);
}

/// More changes between two steps than a prepared step reads
/// (`sql::STEP_LOG_CAP`, 1,000) are all applied, without a rebuild.
#[tokio::test]
async fn a_step_past_the_log_cap_applies_every_change() {
    let database = TempDatabase::create().await;
    let b = database.backend().await;
    let t = tenant("t");
    assert!(ids(&b, &t, "u1@x.com").await.is_empty());
    let mut conn = database.connection().await;
    by_hand(
        &mut conn,
        "INSERT INTO suppressions (tenant, email, family, origin, created_at) \
         SELECT 't', 'u' || n || '@x.com', 3, 0, n FROM generate_series(1, 1500) AS n",
    )
    .await;
    for n in [1, 999, 1000, 1001, 1500] {
        assert_eq!(ids(&b, &t, &format!("u{n}@x.com")).await.len(), 1, "u{n}");
    }
    assert_eq!(b.mirrored_addresses(), 1500);
    assert_eq!(b.mirror_builds(), 1);
    assert_eq!(b.entry_reads(), 0);
}

/// A write whose transaction was still running when an instance took its
/// snapshot is not in that snapshot, and is below the next one's xmax: the
/// step must find it among the snapshot's running transactions.
#[tokio::test]
async fn a_write_running_across_a_step_is_seen_once_it_commits() {
    let database = TempDatabase::create().await;
    let b = database.backend().await;
    let t = tenant("t");
    let mut conn = database.connection().await;
    by_hand(
        &mut conn,
        "BEGIN; INSERT INTO suppressions (tenant, email, family, origin, created_at) \
         VALUES ('t', 'x@x.com', 3, 0, 5)",
    )
    .await;
    // b steps (and holds a snapshot) while the insert's transaction runs,
    // and a later transaction commits, so the next snapshot's xmax is past
    // the insert's.
    assert!(ids(&b, &t, "x@x.com").await.is_empty(), "not committed yet");
    let other = add(&b, &t, unsubscribe("y@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "y@x.com").await, [other.id]);
    by_hand(&mut conn, "COMMIT").await;
    assert_eq!(ids(&b, &t, "x@x.com").await.len(), 1, "committed: seen");
    assert_eq!(b.mirror_builds(), 1);
}

/// A row stored in a form hush never writes (`X@x.com`, by hand) is not
/// what a read of the table matches, and the mirror leaves it out too;
/// deleting it leaves nothing behind.
#[tokio::test]
async fn rows_written_by_hand_in_another_form_are_left_out() {
    let database = TempDatabase::create().await;
    let b = database.backend().await;
    let t = tenant("t");
    let mut conn = database.connection().await;
    by_hand(
        &mut conn,
        "INSERT INTO suppressions (tenant, email, family, origin, created_at) \
         VALUES ('t', 'X@x.com', 3, 0, 5)",
    )
    .await;
    let mut options = database.options();
    options.lookup_index_mib = 0;
    let direct = PostgresBackend::connect(options).await.unwrap();
    assert_eq!(
        ids(&b, &t, "x@x.com").await,
        ids(&direct, &t, "x@x.com").await
    );
    by_hand(&mut conn, "DELETE FROM suppressions").await;
    assert!(ids(&b, &t, "x@x.com").await.is_empty());
}

/// A step that cannot run (here the log is locked by another session; the
/// mirror's connection gives up after `lock_timeout`) leaves its lookups to
/// PostgreSQL, which answers them exactly; once the lock goes, steps serve
/// again.
#[tokio::test]
async fn lookups_read_postgres_while_a_step_cannot_run() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    assert!(ids(&b, &t, "x@x.com").await.is_empty());
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    let mut conn = database.connection().await;
    by_hand(
        &mut conn,
        "BEGIN; LOCK TABLE hush_changes IN ACCESS EXCLUSIVE MODE",
    )
    .await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id], "read directly");
    assert_eq!(b.entry_reads(), 1);
    by_hand(&mut conn, "COMMIT").await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id]);
    assert_eq!(b.entry_reads(), 1, "the mirror serves again");
}
