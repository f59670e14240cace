//! The PostgreSQL lookup cache: exact across instances, and actually used.
//!
//! Two backends on one database stand for two hush instances. Every read
//! that must see a write follows a read on the same instance that saw the
//! opposite state, so that a cached answer kept past the write fails the
//! test.

use std::sync::Arc;

use hush_engine::{AddOutcome, Backend};
use hush_model::{
    Email, GroupKey, Kind, KindSet, ListFilter, NewGroup, NewSuppression, Origin, Scope,
    ScopeFilter, StreamType, Suppression, SuppressionId, TenantId, Timestamp, UnsubscribeHandling,
};
use hush_store::PostgresBackend;

use crate::postgres::TempDatabase;

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
    match backend.add(t, vec![item]).await.unwrap().remove(0) {
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
    assert_eq!(a.remove_ids(&t, &[made.id]).await.unwrap(), 1);
    assert!(ids(&b, &t, "x@x.com").await.is_empty(), "remove_ids seen");

    // remove_matching
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id], "re-add seen");
    let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::Global);
    filter.email = Some(hush_model::EmailMatch::Exact(email("x@x.com")));
    assert_eq!(a.remove_matching(&t, &filter).await.unwrap(), 1);
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
        )
        .await
        .unwrap();
    let made = add(&a, &t, unsubscribe("x@x.com", Scope::Group(group.id))).await;
    assert_eq!(ids(&b, &t, "x@x.com").await, [made.id], "group add seen");
    assert!(a.delete_group(&t, group.id).await.unwrap());
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
    assert_eq!(a.remove_ids(&one, &[made.id]).await.unwrap(), 1);
    assert!(ids(&a, &one, "x@x.com").await.is_empty());
}

/// Without the cache every lookup reads PostgreSQL; with it, a lookup of an
/// address already read at the current version does not, present or
/// absent, and a write on another instance makes the next one read again.
#[tokio::test]
async fn repeated_lookups_are_served_from_the_cache() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    let made = add(&a, &t, unsubscribe("hit@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "hit@x.com").await, [made.id]);
    assert!(ids(&b, &t, "miss@x.com").await.is_empty());
    let reads = b.entry_reads();
    assert_eq!(reads, 2);
    for _ in 0..5 {
        assert_eq!(ids(&b, &t, "hit@x.com").await, [made.id]);
        assert!(ids(&b, &t, "miss@x.com").await.is_empty());
    }
    assert_eq!(b.entry_reads(), reads, "ten lookups, no read");
    assert_eq!(b.cached_addresses(), 2);
    // A write that changes nothing keeps the cache valid.
    let again = add(&a, &t, unsubscribe("hit@x.com", Scope::Global)).await;
    assert_eq!(again.id, made.id);
    assert_eq!(ids(&b, &t, "hit@x.com").await, [made.id]);
    assert_eq!(b.entry_reads(), reads, "an idempotent add changes nothing");
    // A write that changes the tenant makes the next lookup read again.
    add(&a, &t, unsubscribe("other@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "hit@x.com").await, [made.id]);
    assert_eq!(b.entry_reads(), reads + 1);
}

#[tokio::test]
async fn without_the_cache_every_lookup_reads_postgres() {
    let database = TempDatabase::create().await;
    let mut options = database.options();
    options.cache_entries = 0;
    let b = PostgresBackend::connect(options).await.unwrap();
    let t = tenant("t");
    for _ in 0..3 {
        assert!(ids(&b, &t, "miss@x.com").await.is_empty());
    }
    assert_eq!(b.entry_reads(), 3);
    assert_eq!(b.cached_addresses(), 0);
}

/// Lookups in flight together share one version read (and one statement
/// for their misses). On a current-thread runtime the round driver runs
/// only once every lookup below has registered (30: `join_all` polls up to
/// 32 futures before it yields).
#[tokio::test(flavor = "current_thread")]
async fn concurrent_lookups_share_one_round_trip() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    let made = add(&a, &t, unsubscribe("u7@x.com", Scope::Global)).await;
    let polls = b.version_polls();
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
    assert_eq!(b.version_polls(), polls + 1, "one round for 30 lookups");
    assert_eq!(b.entry_reads(), 15, "each distinct address read once");
}

/// A small cache stays within its bound and stays exact while it evicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_evicts_and_stays_exact() {
    let database = TempDatabase::create().await;
    let a = database.backend().await;
    let mut options = database.options();
    options.cache_entries = 4;
    let b = Arc::new(PostgresBackend::connect(options).await.unwrap());
    let t = tenant("t");
    let mut made = std::collections::HashMap::new();
    for i in (0..30).step_by(3) {
        let address = format!("u{i}@x.com");
        made.insert(
            address.clone(),
            add(&a, &t, unsubscribe(&address, Scope::Global)).await.id,
        );
    }
    for round in 0..3 {
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let (b, t) = (Arc::clone(&b), t.clone());
                tokio::spawn(async move {
                    let address = format!("u{i}@x.com");
                    (address.clone(), ids(&b, &t, &address).await)
                })
            })
            .collect();
        for task in tasks {
            let (address, found) = task.await.unwrap();
            let expected: Vec<_> = made.get(&address).copied().into_iter().collect();
            assert_eq!(found, expected, "{address}, round {round}");
        }
        assert!(b.cached_addresses() <= 4, "{}", b.cached_addresses());
    }
}

/// Many lookups racing many writes on another instance: every lookup that
/// starts after a write was acknowledged sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_racing_writes_never_miss_an_acknowledged_write() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let b = Arc::new(b);
    let t = tenant("t");
    // Readers keep the cache warm on the addresses being written.
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
        assert_eq!(a.remove_ids(&t, &[made.id]).await.unwrap(), 1);
        assert!(
            ids(&b, &t, &address).await.is_empty(),
            "remove, round {round}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
}

/// The version count going back (a restore, a failover that lost commits,
/// a deleted version row) must neither hang lookups nor let an answer cached
/// under the old count be served once the count climbs back to it.
#[tokio::test]
async fn a_version_that_goes_back_drops_what_was_cached() {
    let database = TempDatabase::create().await;
    let (a, b) = two_instances(&database).await;
    let t = tenant("t");
    add(&a, &t, unsubscribe("x@x.com", Scope::Global)).await;
    add(&a, &t, unsubscribe("y@x.com", Scope::Global)).await;
    assert_eq!(ids(&b, &t, "x@x.com").await.len(), 1, "cached at version 2");
    // Behind hush's back: the versions are lost and x's entry is gone.
    let mut conn = database.connection().await;
    sqlx::query("DELETE FROM hush_tenant_versions")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM suppressions WHERE email = 'x@x.com'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        ids(&b, &t, "x@x.com").await.is_empty(),
        "read afresh, not the answer cached under the old count"
    );
    // The count climbs back to where it was: still nothing stale.
    add(&a, &t, unsubscribe("z@x.com", Scope::Global)).await;
    add(&a, &t, unsubscribe("w@x.com", Scope::Global)).await;
    assert!(ids(&b, &t, "x@x.com").await.is_empty());
    assert_eq!(ids(&b, &t, "y@x.com").await.len(), 1);
}
