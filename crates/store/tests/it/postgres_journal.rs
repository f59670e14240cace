//! The PostgreSQL store's journal: the same entries as the memory store
//! (the reference) for the same changes, written in the changes' own
//! transactions, read back with every filter, and seen by readers in commit
//! order while several instances write one tenant at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hush_engine::{AddOutcome, Backend, Engine, EngineError};
use hush_model::{
    Actor, BounceClass, Door, Email, Group, GroupChanges, GroupId, GroupKey, JournalEntry,
    JournalOrder, JournalQuery, Kind, KindSet, ListFilter, NewGroup, NewSuppression, Operation,
    Origin, Position, Recorded, Scope, ScopeFilter, StreamType, Suppression, SuppressionId,
    TenantId, Timestamp, UnsubscribeHandling,
};
use hush_store::MemoryBackend;
use hush_store::postgres::SqlParam;
use sqlx::Row as _;

use crate::postgres::TempDatabase;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("tenant")
}

fn email(address: &str) -> Email {
    Email::parse(address).expect("address")
}

fn new_group(key: &str, name: &str, is_default: bool) -> NewGroup {
    NewGroup {
        key: GroupKey::parse(key).expect("key"),
        name: name.into(),
        description: format!("about {name}"),
        is_default,
        stream_type: StreamType::Broadcasts,
        unsubscribe_handling: UnsubscribeHandling::default_for(StreamType::Broadcasts),
        created_at: Timestamp::from_nanos(1_700_000_000_000_000_001),
    }
}

fn item(address: &str, scope: Scope, kind: Kind, origin: Origin, created: i64) -> NewSuppression {
    NewSuppression {
        email: email(address),
        scope,
        kind,
        origin,
        created_at: Timestamp::from_nanos(created),
    }
}

fn hard_bounce(address: &str) -> NewSuppression {
    item(
        address,
        Scope::Global,
        Kind::Bounce {
            class: BounceClass::Hard,
            status: Some("5.1.1".into()),
            reason: Some("550 5.1.1 unknown \"user\"".into()),
        },
        Origin::Recipient,
        1_700_000_000_123_456_789,
    )
}

fn api_key_actor() -> Actor {
    Actor::new(Door::V3)
        .with_key("billing")
        .with_request_id("req-1")
}

fn webhook_actor() -> Actor {
    Actor::new(Door::webhook("ses"))
        .with_request_id("req-2")
        .with_event_id("evt-9")
}

fn restore_actor() -> Actor {
    Actor::new(Door::RESTORE).with_key("ops")
}

fn oldest_first(limit: u32) -> JournalQuery {
    JournalQuery {
        order: JournalOrder::OldestFirst,
        ..JournalQuery::newest_first(limit)
    }
}

/// A tenant's whole journal, oldest first, a page at a time.
async fn whole_journal(backend: &dyn Backend, t: &TenantId) -> Vec<JournalEntry> {
    let mut all: Vec<JournalEntry> = Vec::new();
    loop {
        let query = JournalQuery {
            cursor: all.last().map(|e| e.position),
            ..oldest_first(97)
        };
        let page = backend.journal(t, &query).await.expect("journal");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

fn added(outcomes: &[AddOutcome]) -> Vec<Suppression> {
    outcomes
        .iter()
        .map(|o| match o {
            AddOutcome::Added { suppression, .. } => suppression.clone(),
            other => panic!("expected an add, got {other:?}"),
        })
        .collect()
}

fn suppression_of(entry: &JournalEntry) -> Suppression {
    match &entry.record {
        Recorded::Suppression(s) => s.clone(),
        Recorded::Group { .. } => panic!("not a suppression's entry: {entry:?}"),
    }
}

fn group_of(entry: &JournalEntry) -> Group {
    match &entry.record {
        Recorded::Group { group, .. } => group.clone(),
        Recorded::Suppression(_) => panic!("not a group's entry: {entry:?}"),
    }
}

/// Every kind of change, and the changes that change nothing, through one
/// backend: what `journal_matches_the_memory_store` runs on both.
async fn every_kind_of_change(backend: &dyn Backend, t: &TenantId) {
    let system = Actor::new(Door::SYSTEM);
    let news = backend
        .create_group(t, new_group("news", "News", false), &api_key_actor())
        .await
        .expect("news");
    backend
        .create_group(t, new_group("outbound", "Outbound", true), &system)
        .await
        .expect("outbound");
    // A second default: the first loses the flag, on the record too.
    backend
        .create_group(t, new_group("updates", "Updates", true), &api_key_actor())
        .await
        .expect("updates");
    let refused = backend
        .create_group(t, new_group("news", "Another", false), &api_key_actor())
        .await;
    assert!(matches!(refused, Err(EngineError::GroupKeyTaken(_))));
    let first = added(
        &backend
            .add(
                t,
                vec![
                    hard_bounce("a@x.com"),
                    item(
                        "b@x.com",
                        Scope::Group(news.id),
                        Kind::Unsubscribe,
                        Origin::Customer,
                        7,
                    ),
                    item(
                        "c@x.com",
                        Scope::Global,
                        Kind::SpamComplaint {
                            source: Some("feedback_loop".into()),
                        },
                        Origin::Admin,
                        8,
                    ),
                    // The same identity again in the same call: one entry.
                    hard_bounce("A@x.com"),
                ],
                &webhook_actor(),
            )
            .await
            .expect("add"),
    );
    // Already there, and a group that does not exist: nothing to journal.
    backend
        .add(t, vec![hard_bounce("a@x.com")], &api_key_actor())
        .await
        .expect("re-add");
    backend
        .add(
            t,
            vec![item(
                "d@x.com",
                Scope::Group(GroupId(999)),
                Kind::Manual,
                Origin::Customer,
                9,
            )],
            &api_key_actor(),
        )
        .await
        .expect("unknown group");
    let changes = GroupChanges {
        name: Some("News, weekly".into()),
        is_default: Some(true),
        updated_at: Some(Timestamp::from_nanos(1_700_000_000_000_000_002)),
        ..GroupChanges::default()
    };
    backend
        .update_group(t, news.id, changes, &api_key_actor())
        .await
        .expect("update")
        .expect("news is there");
    assert_eq!(
        backend
            .update_group(t, GroupId(999), GroupChanges::default(), &api_key_actor())
            .await
            .expect("update of nothing"),
        None
    );
    let spam = first[2].id;
    assert_eq!(
        backend
            .remove_ids(t, &[spam, spam, SuppressionId(999_999)], &api_key_actor())
            .await
            .expect("remove ids"),
        1
    );
    let global = ListFilter::new(KindSet::ALL, ScopeFilter::Global);
    assert_eq!(
        backend
            .remove_matching(t, &global, &api_key_actor())
            .await
            .expect("remove matching"),
        1
    );
    assert!(
        backend
            .delete_group(t, news.id, &api_key_actor())
            .await
            .expect("delete")
    );
    assert!(
        !backend
            .delete_group(t, news.id, &api_key_actor())
            .await
            .expect("delete again")
    );
    // Undo the last three entries as a restore would, newest first.
    let journal = whole_journal(backend, t).await;
    let n = journal.len();
    let deleted_group = group_of(&journal[n - 1]);
    let member = suppression_of(&journal[n - 2]);
    let bounce = suppression_of(&journal[n - 3]);
    assert!(
        backend
            .put_back_group(t, deleted_group, &restore_actor())
            .await
            .expect("group back")
    );
    assert_eq!(
        backend
            .put_back(t, vec![member, bounce], &restore_actor())
            .await
            .expect("put back"),
        [true, true]
    );
}

/// Suppression ids numbered by first appearance: PostgreSQL's sequence
/// also moves on adds that find their identity taken, the memory store's
/// counter does not. Everything else is compared as it is.
fn comparable(journal: Vec<JournalEntry>) -> Vec<(Operation, Actor, Recorded)> {
    let mut ids: HashMap<SuppressionId, i64> = HashMap::new();
    journal
        .into_iter()
        .map(|e| {
            let record = match e.record {
                Recorded::Suppression(mut s) => {
                    let next = i64::try_from(ids.len()).expect("few") + 1;
                    s.id = SuppressionId(*ids.entry(s.id).or_insert(next));
                    Recorded::Suppression(s)
                }
                group => group,
            };
            (e.operation, e.actor, record)
        })
        .collect()
}

#[tokio::test]
async fn journal_matches_the_memory_store() {
    let database = TempDatabase::create().await;
    let postgres = database.backend().await;
    let memory = MemoryBackend::new();
    let t = tenant("acme");
    let started = Engine::now();
    every_kind_of_change(&postgres, &t).await;
    every_kind_of_change(&memory, &t).await;
    let ended = Engine::now();

    let written = whole_journal(&postgres, &t).await;
    let expected = whole_journal(&memory, &t).await;
    assert!(
        written.windows(2).all(|w| w[0].position < w[1].position),
        "positions increase"
    );
    assert!(
        written.iter().all(|e| started <= e.at && e.at <= ended),
        "every entry is timed when it was written"
    );
    let operations: Vec<Operation> = written.iter().map(|e| e.operation).collect();
    use Operation::{Added, GroupChanged, GroupCreated, GroupDeleted, Removed};
    assert_eq!(
        operations,
        [
            GroupCreated, // news
            GroupCreated, // outbound
            GroupChanged, // outbound is no longer the default …
            GroupCreated, // … updates is
            Added,        // a
            Added,        // b
            Added,        // c
            GroupChanged, // updates is no longer the default …
            GroupChanged, // … news is, renamed
            Removed,      // c
            Removed,      // a
            Removed,      // b, with its group …
            GroupDeleted, // … news
            GroupCreated, // news, restored
            Added,        // b, restored
            Added,        // a, restored
        ]
    );
    assert_eq!(comparable(written), comparable(expected));
}

#[tokio::test]
async fn a_removal_records_the_whole_entry_and_a_put_back_restores_it() {
    let database = TempDatabase::create().await;
    let backend = database.backend().await;
    let t = tenant("acme");
    let group = backend
        .create_group(&t, new_group("news", "News", true), &api_key_actor())
        .await
        .expect("group");
    let kinds = [
        Kind::Bounce {
            class: BounceClass::Block,
            status: Some("5.7.1".into()),
            reason: Some("blocked, policy".into()),
        },
        Kind::Invalid {
            reason: Some("no MX".into()),
        },
        Kind::SpamComplaint { source: None },
        Kind::Manual,
    ];
    let mut items: Vec<NewSuppression> = kinds
        .into_iter()
        .enumerate()
        .map(|(n, kind)| {
            item(
                &format!("Ünï{n}@exämple.com"),
                Scope::Global,
                kind,
                Origin::from_code(i64::try_from(n % 3).expect("small")).expect("origin"),
                -5 + i64::try_from(n).expect("small"),
            )
        })
        .collect();
    items.push(item(
        "u@x.com",
        Scope::Group(group.id),
        Kind::Unsubscribe,
        Origin::Recipient,
        1_700_000_000_999_999_999,
    ));
    let stored = added(&backend.add(&t, items, &webhook_actor()).await.expect("add"));
    let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    assert_eq!(
        backend
            .remove_matching(&t, &everything, &api_key_actor())
            .await
            .expect("remove"),
        5
    );
    let removed: Vec<Suppression> = backend
        .journal(&t, &JournalQuery::newest_first(5))
        .await
        .expect("journal")
        .into_iter()
        .rev()
        .map(|e| {
            assert_eq!(e.operation, Operation::Removed);
            assert_eq!(e.actor, api_key_actor());
            suppression_of(&e)
        })
        .collect();
    assert_eq!(removed, stored, "each removed entry is on the record whole");

    let outcomes = backend
        .put_back(&t, removed.clone(), &restore_actor())
        .await
        .expect("put back");
    assert_eq!(outcomes, [true; 5]);
    let mut back = Vec::new();
    for s in &stored {
        back.extend(backend.entries(&t, &s.email).await.expect("entries"));
    }
    assert_eq!(back, stored, "put back field for field, ids included");
    let restored = backend
        .journal(&t, &JournalQuery::newest_first(5))
        .await
        .expect("journal");
    assert!(
        restored
            .iter()
            .all(|e| e.operation == Operation::Added && e.actor == restore_actor())
    );

    // Nothing goes in twice, into another tenant, or into a missing group.
    let again = backend
        .put_back(&t, removed.clone(), &restore_actor())
        .await
        .expect("again");
    assert_eq!(again, [false; 5]);
    let other = backend
        .put_back(&tenant("other"), removed.clone(), &restore_actor())
        .await
        .expect("other tenant");
    assert_eq!(other, [false; 5]);
    let mut orphan = removed[4].clone();
    orphan.id = SuppressionId(orphan.id.0 + 1_000);
    orphan.scope = Scope::Group(GroupId(999));
    assert_eq!(
        backend
            .put_back(&t, vec![orphan], &restore_actor())
            .await
            .expect("orphan"),
        [false]
    );
    // Of two items of one identity, the first goes in.
    backend
        .remove_ids(&t, &[removed[0].id], &api_key_actor())
        .await
        .expect("remove one");
    let mut twin = removed[0].clone();
    twin.id = SuppressionId(removed[0].id.0 + 1_000);
    assert_eq!(
        backend
            .put_back(&t, vec![removed[0].clone(), twin], &restore_actor())
            .await
            .expect("twins"),
        [true, false]
    );
    let journal = whole_journal(&backend, &t).await;
    let added_back = journal
        .iter()
        .filter(|e| e.operation == Operation::Added && e.actor == restore_actor())
        .count();
    assert_eq!(added_back, 6, "only what went in is journaled");
}

#[tokio::test]
async fn a_deleted_group_is_journaled_after_its_members_and_comes_back_with_its_id() {
    let database = TempDatabase::create().await;
    let backend = database.backend().await;
    let t = tenant("acme");
    let other = backend
        .create_group(&t, new_group("other", "Other", true), &api_key_actor())
        .await
        .expect("other");
    let group = backend
        .create_group(&t, new_group("news", "News", false), &api_key_actor())
        .await
        .expect("news");
    let members: Vec<NewSuppression> = (0..3)
        .map(|n| {
            item(
                &format!("m{n}@x.com"),
                Scope::Group(group.id),
                Kind::Unsubscribe,
                Origin::Recipient,
                n,
            )
        })
        .collect();
    let members = added(
        &backend
            .add(&t, members, &api_key_actor())
            .await
            .expect("members"),
    );
    backend
        .update_group(
            &t,
            group.id,
            GroupChanges {
                is_default: Some(true),
                ..GroupChanges::default()
            },
            &api_key_actor(),
        )
        .await
        .expect("update")
        .expect("there");
    assert!(
        backend
            .delete_group(&t, group.id, &Actor::new(Door::ADMIN))
            .await
            .expect("delete")
    );
    let last = backend
        .journal(&t, &JournalQuery::newest_first(4))
        .await
        .expect("journal");
    let (deleted, removed) = last.split_first().expect("entries");
    assert_eq!(deleted.operation, Operation::GroupDeleted);
    let as_deleted = group_of(deleted);
    assert_eq!(as_deleted.id, group.id);
    assert!(as_deleted.is_default, "recorded as it was when deleted");
    let mut removed: Vec<Suppression> = removed
        .iter()
        .map(|e| {
            assert_eq!(e.operation, Operation::Removed);
            suppression_of(e)
        })
        .collect();
    removed.reverse();
    assert_eq!(removed, members, "members first, by id");

    // The group comes back with its id, and as the default it was.
    assert!(
        backend
            .put_back_group(&t, as_deleted.clone(), &restore_actor())
            .await
            .expect("put back")
    );
    assert_eq!(
        backend.group(&t, group.id).await.expect("read"),
        Some(as_deleted.clone())
    );
    assert!(
        !backend
            .put_back_group(&t, as_deleted.clone(), &restore_actor())
            .await
            .expect("again"),
        "its id is taken now"
    );
    let mut same_key = as_deleted.clone();
    same_key.id = GroupId(group.id.0 + 100);
    same_key.name = "Renamed".into();
    assert!(matches!(
        backend.put_back_group(&t, same_key, &restore_actor()).await,
        Err(EngineError::GroupKeyTaken(_))
    ));
    let mut same_name = as_deleted.clone();
    same_name.id = GroupId(group.id.0 + 101);
    same_name.key = GroupKey::parse("fresh").expect("key");
    assert!(matches!(
        backend
            .put_back_group(&t, same_name, &restore_actor())
            .await,
        Err(EngineError::GroupNameTaken(_))
    ));
    let groups = backend.groups(&t).await.expect("groups");
    assert_eq!(groups.iter().filter(|g| g.is_default).count(), 1);
    let newest = backend
        .journal(&t, &JournalQuery::newest_first(2))
        .await
        .expect("journal");
    assert_eq!(newest[0].operation, Operation::GroupCreated);
    assert_eq!(group_of(&newest[0]), as_deleted);
    assert_eq!(newest[1].operation, Operation::GroupDeleted);
    assert_eq!(
        backend
            .group(&t, other.id)
            .await
            .expect("other")
            .map(|g| g.is_default),
        Some(false)
    );
}

#[tokio::test]
async fn history_reads_filter_and_page() {
    let database = TempDatabase::create().await;
    let backend = database.backend().await;
    let t = tenant("acme");
    let a = email("a@x.com");
    let mut times = Vec::new();
    for round in 0..5 {
        let actor = if round % 2 == 0 {
            api_key_actor()
        } else {
            webhook_actor()
        };
        times.push(Engine::now());
        backend
            .add(
                &t,
                vec![
                    hard_bounce("a@x.com"),
                    hard_bounce(&format!("r{round}@x.com")),
                ],
                &actor,
            )
            .await
            .expect("add");
        let a_id = backend.entries(&t, &a).await.expect("entries")[0].id;
        backend
            .remove_ids(&t, &[a_id], &actor)
            .await
            .expect("remove");
    }
    // Another tenant's entries are never anyone else's history.
    backend
        .add(
            &tenant("other"),
            vec![hard_bounce("a@x.com")],
            &api_key_actor(),
        )
        .await
        .expect("other");
    let all = whole_journal(&backend, &t).await;
    assert_eq!(all.len(), 15);

    let query = |f: &dyn Fn(&mut JournalQuery)| {
        let mut q = JournalQuery::newest_first(100);
        f(&mut q);
        q
    };
    let positions = |entries: &[JournalEntry]| -> Vec<Position> {
        entries.iter().map(|e| e.position).collect()
    };
    let wanted = |f: &dyn Fn(&JournalEntry) -> bool| -> Vec<Position> {
        all.iter()
            .rev()
            .filter(|e| f(e))
            .map(|e| e.position)
            .collect()
    };

    let of_a = backend
        .journal(&t, &query(&|q| q.email = Some(a.clone())))
        .await
        .expect("by address");
    assert_eq!(positions(&of_a), wanted(&|e| e.record.email() == Some(&a)));
    assert_eq!(of_a.len(), 10);

    let by_webhook = backend
        .journal(&t, &query(&|q| q.door = Some("webhook:ses".into())))
        .await
        .expect("by door");
    assert_eq!(
        positions(&by_webhook),
        wanted(&|e| e.actor.door == Door::webhook("ses"))
    );
    assert_eq!(by_webhook.len(), 6);

    let (since, until) = (times[1], times[3]);
    let window = backend
        .journal(
            &t,
            &query(&|q| {
                q.since = Some(since);
                q.until = Some(until);
            }),
        )
        .await
        .expect("window");
    assert_eq!(
        positions(&window),
        wanted(&|e| since <= e.at && e.at <= until)
    );
    assert_eq!(window.len(), 6, "rounds 1 and 2");
    // Both ends are inclusive.
    let exact = backend
        .journal(
            &t,
            &query(&|q| {
                q.since = Some(all[0].at);
                q.until = Some(all[0].at);
            }),
        )
        .await
        .expect("one instant");
    assert!(exact.iter().any(|e| e.position == all[0].position));

    // Cursors walk strictly past themselves, in either direction.
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = backend
            .journal(
                &t,
                &query(&|q| {
                    q.cursor = cursor;
                    q.limit = 4;
                }),
            )
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        cursor = Some(last.position);
        walked.extend(positions(&page));
    }
    assert_eq!(walked, wanted(&|_| true));
    let after_third = backend
        .journal(
            &t,
            &JournalQuery {
                cursor: Some(all[2].position),
                ..oldest_first(2)
            },
        )
        .await
        .expect("oldest first");
    assert_eq!(positions(&after_third), positions(&all[3..5]));
    let combined = backend
        .journal(
            &t,
            &query(&|q| {
                q.email = Some(a.clone());
                q.door = Some("v3".into());
                q.cursor = Some(all[12].position);
                q.limit = 2;
            }),
        )
        .await
        .expect("combined");
    assert_eq!(
        positions(&combined),
        wanted(&|e| e.record.email() == Some(&a)
            && e.actor.door == Door::V3
            && e.position < all[12].position)[..2]
    );
    assert!(
        backend
            .journal(&t, &query(&|q| q.limit = 0))
            .await
            .expect("nothing")
            .is_empty()
    );

    // Every tenant, oldest first.
    let everyone = backend.journal_all(None, 100).await.expect("all");
    assert_eq!(everyone.len(), 16);
    assert!(everyone.windows(2).all(|w| w[0].position < w[1].position));
    let rest = backend
        .journal_all(Some(everyone[9].position), 3)
        .await
        .expect("after");
    assert_eq!(positions(&rest), positions(&everyone[10..13]));
}

#[tokio::test]
async fn pruning_is_bounded_and_stops_where_retention_begins() {
    let database = TempDatabase::create().await;
    let backend = database.backend().await;
    let t = tenant("acme");
    for n in 0..6 {
        backend
            .add(
                &t,
                vec![hard_bounce(&format!("old{n}@x.com"))],
                &api_key_actor(),
            )
            .await
            .expect("old");
    }
    let cut = Engine::now();
    for n in 0..3 {
        backend
            .add(
                &t,
                vec![hard_bounce(&format!("new{n}@x.com"))],
                &api_key_actor(),
            )
            .await
            .expect("new");
    }
    assert_eq!(backend.prune_journal(cut, 4).await.expect("prune"), 4);
    assert_eq!(whole_journal(&backend, &t).await.len(), 5);
    assert_eq!(backend.prune_journal(cut, 4).await.expect("prune"), 2);
    assert_eq!(backend.prune_journal(cut, 4).await.expect("prune"), 0);
    let left = whole_journal(&backend, &t).await;
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|e| e.at >= cut), "nothing newer went");

    // The walk from the oldest stops at the first entry inside retention,
    // as the memory store's does, even if an older one follows it.
    let late = JournalEntry {
        at: Timestamp::from_nanos(5),
        ..left[0].clone()
    };
    backend.append_journal(vec![late]).await.expect("append");
    assert_eq!(backend.prune_journal(cut, 10).await.expect("prune"), 0);
    // The engine's pruning loops until a step comes back short.
    let engine = Engine::new(Arc::new(backend));
    assert_eq!(
        engine
            .prune_journal(Timestamp::from_nanos(i64::MAX))
            .await
            .expect("all"),
        4
    );
}

#[tokio::test]
async fn appended_entries_keep_their_order_and_get_new_positions() {
    let database = TempDatabase::create().await;
    let source = MemoryBackend::new();
    let (a, b) = (tenant("a"), tenant("b"));
    for n in 0..4 {
        let t = if n % 2 == 0 { &a } else { &b };
        source
            .add(
                t,
                vec![hard_bounce(&format!("u{n}@x.com"))],
                &webhook_actor(),
            )
            .await
            .expect("add");
    }
    source
        .create_group(&a, new_group("news", "News", false), &api_key_actor())
        .await
        .expect("group");
    let entries = source.journal_all(None, 100).await.expect("source");
    assert_eq!(entries.len(), 5);

    let backend = database.backend().await;
    backend
        .add(&a, vec![hard_bounce("first@x.com")], &api_key_actor())
        .await
        .expect("first");
    backend
        .append_journal(entries.clone())
        .await
        .expect("append");
    backend
        .append_journal(Vec::new())
        .await
        .expect("nothing to append");
    let copied = backend.journal_all(None, 100).await.expect("copied");
    assert_eq!(copied.len(), 6);
    let (first, appended) = copied.split_first().expect("entries");
    assert!(
        appended.iter().all(|e| e.position > first.position),
        "after what was there"
    );
    assert!(appended.windows(2).all(|w| w[0].position < w[1].position));
    let without_positions = |e: &JournalEntry| JournalEntry {
        position: Position(0),
        ..e.clone()
    };
    assert_eq!(
        appended.iter().map(without_positions).collect::<Vec<_>>(),
        entries.iter().map(without_positions).collect::<Vec<_>>(),
        "as they were written, time and actor included"
    );
    assert_eq!(whole_journal(&backend, &b).await.len(), 2);
}

#[tokio::test]
async fn a_change_that_rolls_back_leaves_no_entry() {
    let database = TempDatabase::create().await;
    let backend = database.backend().await;
    let t = tenant("acme");
    backend
        .create_group(&t, new_group("news", "News", false), &api_key_actor())
        .await
        .expect("group");
    let refused = backend
        .create_group(&t, new_group("news", "Again", false), &api_key_actor())
        .await;
    assert!(matches!(refused, Err(EngineError::GroupKeyTaken(_))));
    let refused = backend
        .create_group(&t, new_group("fresh", "News", false), &api_key_actor())
        .await;
    assert!(matches!(refused, Err(EngineError::GroupNameTaken(_))));
    assert_eq!(whole_journal(&backend, &t).await.len(), 1);

    // A failure after everything is written, at the commit itself: a
    // deferred check of the journal's rows refuses this tenant's. The
    // change and its entries go together.
    let doomed = tenant("doomed");
    let mut conn = database.connection().await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused for the test'; END $$; \
         CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON hush_journal \
         DEFERRABLE INITIALLY DEFERRED \
         FOR EACH ROW WHEN (NEW.tenant = 'doomed') EXECUTE FUNCTION refuse();",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    let refused = backend
        .add(&doomed, vec![hard_bounce("a@x.com")], &api_key_actor())
        .await
        .expect_err("refused at commit");
    assert!(
        refused.to_string().contains("refused for the test"),
        "{refused}"
    );
    let refused = backend
        .create_group(&doomed, new_group("news", "News", false), &api_key_actor())
        .await
        .expect_err("refused at commit");
    assert!(
        refused.to_string().contains("refused for the test"),
        "{refused}"
    );
    assert_eq!(backend.groups(&doomed).await.expect("groups"), []);
    assert!(whole_journal(&backend, &doomed).await.is_empty());
    assert!(
        backend
            .entries(&doomed, &email("a@x.com"))
            .await
            .expect("entries")
            .is_empty()
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM hush_journal WHERE tenant = 'doomed'")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(rows, 0);
}

/// Readers see one tenant's entries in commit order while two instances
/// write it from several tasks at once: a reader that walks the journal
/// oldest first from the last position it saw sees positions only
/// increase, and in the end has seen every committed entry exactly once.
/// An entry committed below a position it had already passed would be left
/// behind, and the final comparison would find it missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_a_tenants_entries_in_commit_order() {
    const WRITERS_PER_INSTANCE: usize = 4;
    const ROUNDS: usize = 120;
    let database = TempDatabase::create().await;
    let instances = [
        Arc::new(database.backend().await),
        Arc::new(database.backend().await),
    ];
    let reader_instance = database.backend().await;
    let t = tenant("busy");
    let writing = Arc::new(AtomicBool::new(true));

    let reader = {
        let (t, writing) = (t.clone(), Arc::clone(&writing));
        tokio::spawn(async move {
            let mut seen: Vec<Position> = Vec::new();
            let mut seen_while_writing = 0;
            loop {
                // Read before looking at the flag: a read that starts once
                // every writer has committed sees all that is left.
                let finished = !writing.load(Ordering::SeqCst);
                let query = JournalQuery {
                    cursor: seen.last().copied(),
                    ..oldest_first(50)
                };
                let page = reader_instance.journal(&t, &query).await.expect("read");
                for entry in &page {
                    if let Some(last) = seen.last() {
                        assert!(
                            entry.position > *last,
                            "position {:?} came after {last:?}",
                            entry.position
                        );
                    }
                    seen.push(entry.position);
                }
                if !finished {
                    seen_while_writing = seen.len();
                }
                if finished && page.is_empty() {
                    return (seen, seen_while_writing);
                }
            }
        })
    };

    let mut writers = Vec::new();
    for (n, instance) in instances.iter().enumerate() {
        for w in 0..WRITERS_PER_INSTANCE {
            let (instance, t) = (Arc::clone(instance), t.clone());
            writers.push(tokio::spawn(async move {
                let actor = Actor::new(Door::V3).with_key(format!("writer {n}.{w}"));
                for round in 0..ROUNDS {
                    let batch = (0..3)
                        .map(|k| hard_bounce(&format!("w{n}-{w}-{round}-{k}@x.com")))
                        .collect();
                    let made = added(&instance.add(&t, batch, &actor).await.expect("add"));
                    instance
                        .remove_ids(&t, &[made[round % 3].id], &actor)
                        .await
                        .expect("remove");
                }
            }));
        }
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    writing.store(false, Ordering::SeqCst);
    let (seen, seen_while_writing) = reader.await.expect("reader");

    let committed: Vec<Position> = whole_journal(instances[0].as_ref(), &t)
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    let expected = 2 * WRITERS_PER_INSTANCE * ROUNDS * 4;
    assert_eq!(committed.len(), expected, "every change journaled once");
    assert!(
        seen_while_writing > expected / 10,
        "the reader read while the writers wrote ({seen_while_writing} of {expected})"
    );
    let read: HashSet<Position> = seen.iter().copied().collect();
    let missed: Vec<&Position> = committed.iter().filter(|p| !read.contains(p)).collect();
    assert!(
        missed.is_empty(),
        "{} committed entries were left behind below the reader's cursor: {:?}",
        missed.len(),
        &missed[..missed.len().min(10)]
    );
    assert_eq!(seen, committed, "seen exactly once, in order");
}

/// The plan of each statement `journal_statements` gives, as a prepared
/// statement that has gone generic (what PostgreSQL may run for a
/// statement prepared once per connection and run often: it does not look
/// at the values).
async fn generic_plans(
    conn: &mut sqlx::PgConnection,
    statements: Vec<(String, Vec<SqlParam>)>,
) -> Vec<(String, String)> {
    // Every statement here is simple-protocol (`raw_sql`), so that sqlx
    // keeps no prepared statement of its own that `DEALLOCATE ALL` drops.
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .expect("generic plans");
    let mut plans = Vec::new();
    for (n, (sql, params)) in statements.into_iter().enumerate() {
        let types: Vec<&str> = params
            .iter()
            .map(|p| match p {
                SqlParam::Text(_) => "text",
                SqlParam::Int(_) => "int8",
                SqlParam::Small(_) => "int2",
            })
            .collect();
        let prepare = format!(
            "DEALLOCATE ALL; PREPARE plan{n} ({}) AS {sql}",
            types.join(", ")
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(prepare))
            .execute(&mut *conn)
            .await
            .expect("prepare");
        // EXECUTE takes its arguments as SQL, not as bound parameters.
        let values: Vec<String> = params
            .iter()
            .map(|p| match p {
                SqlParam::Text(text) => format!("'{}'", text.replace('\'', "''")),
                SqlParam::Int(n) => n.to_string(),
                SqlParam::Small(n) => n.to_string(),
            })
            .collect();
        let explain = format!("EXPLAIN EXECUTE plan{n} ({})", values.join(", "));
        let lines: Vec<String> = sqlx::raw_sql(sqlx::AssertSqlSafe(explain))
            .fetch_all(&mut *conn)
            .await
            .expect("explain")
            .iter()
            .map(|row| row.get(0))
            .collect();
        plans.push((sql, lines.join("\n")));
    }
    plans
}

/// A tenant's history is read along its own indexes and pruning looks its
/// rows up by position, also in a generic plan and in a journal where one
/// busy tenant has written everything since a quiet one last did: walking
/// the primary key there would read the whole journal for the quiet one.
#[tokio::test]
async fn journal_reads_and_pruning_are_served_by_indexes() {
    let database = TempDatabase::create().await;
    drop(database.backend().await);
    let mut conn = database.connection().await;
    sqlx::raw_sql(
        "INSERT INTO hush_journal (tenant, at, op, door, email, record) \
         SELECT 'quiet', g, 'added', 'v3', 'q' || (g % 10) || '@x.com', '{}' \
         FROM generate_series(1, 200) AS g; \
         INSERT INTO hush_journal (tenant, at, op, door, email, record) \
         SELECT 'busy', 1000 + g, 'added', 'import', 'b' || g || '@x.com', '{}' \
         FROM generate_series(1, 50000) AS g; \
         ANALYZE hush_journal;",
    )
    .execute(&mut conn)
    .await
    .expect("journal");
    let quiet = tenant("quiet");
    let cases = [
        (
            "newest",
            JournalQuery::newest_first(50),
            "hush_journal_by_tenant",
        ),
        (
            "oldest after a cursor",
            JournalQuery {
                cursor: Some(Position(20)),
                ..oldest_first(50)
            },
            "hush_journal_by_tenant",
        ),
        (
            "filtered",
            JournalQuery {
                door: Some("v3".into()),
                since: Some(Timestamp::from_nanos(5)),
                until: Some(Timestamp::from_nanos(500)),
                cursor: Some(Position(150)),
                ..JournalQuery::newest_first(50)
            },
            "hush_journal_by_tenant",
        ),
        (
            "one address",
            JournalQuery {
                email: Some(email("q3@x.com")),
                ..JournalQuery::newest_first(50)
            },
            "hush_journal_by_email",
        ),
    ];
    for (name, query, index) in cases {
        let statements = hush_store::postgres::journal_statements(
            &quiet,
            &query,
            Timestamp::from_nanos(100),
            5_000,
        );
        let plans = generic_plans(&mut conn, statements).await;
        let (read, prune) = (&plans[0], &plans[1]);
        let seen = format!("{name}: {}\n{}", read.0, read.1);
        assert!(
            read.1
                .contains(&format!("Index Scan Backward using {index}"))
                || read.1.contains(&format!("Index Scan using {index}")),
            "{seen}"
        );
        assert!(!read.1.contains("Seq Scan"), "{seen}");
        if query.email.is_some() {
            // An address's rows are a handful, found by its address and by
            // the ids it has had, then sorted.
            assert!(read.1.contains("hush_journal_by_subject"), "{seen}");
            assert!(read.1.contains("suppressions_identity"), "{seen}");
        } else {
            assert!(!read.1.contains("Sort"), "{seen}");
        }
        // The cursor bounds the index range, not merely filters what it
        // yields.
        if query.cursor.is_some() {
            assert!(
                read.1
                    .lines()
                    .any(|l| l.contains("Index Cond") && l.contains("position")),
                "{seen}"
            );
        }
        let seen = format!("{}\n{}", prune.0, prune.1);
        assert!(!prune.1.contains("Seq Scan"), "{seen}");
        assert!(prune.1.contains("hush_journal_pkey"), "{seen}");
    }
}

/// Each address's history, newest first, as operations and ids.
async fn histories(
    backend: &dyn Backend,
    t: &TenantId,
    addresses: &[&str],
) -> Vec<Vec<(Operation, SuppressionId)>> {
    let mut all = Vec::new();
    for address in addresses {
        let query = JournalQuery {
            email: Some(email(address)),
            ..JournalQuery::newest_first(100)
        };
        let entries = backend.journal(t, &query).await.expect("history");
        all.push(
            entries
                .iter()
                .map(|e| (e.operation, suppression_of(e).id))
                .collect(),
        );
    }
    all
}

/// A journal written before migration 7, where every entry of a suppression
/// was found by its address, reads the same after it, and changes made
/// afterwards join it.
#[tokio::test]
async fn migration_7_keeps_every_address_history() {
    let database = TempDatabase::create().await;
    let backend = database.backend().await;
    let t = tenant("acme");
    let first = added(
        &backend
            .add(
                &t,
                vec![hard_bounce("a@x.com"), hard_bounce("b@x.com")],
                &api_key_actor(),
            )
            .await
            .expect("add"),
    );
    backend
        .remove_ids(&t, &[first[0].id], &api_key_actor())
        .await
        .expect("remove");
    backend
        .add(&t, vec![hard_bounce("a@x.com")], &webhook_actor())
        .await
        .expect("add again");
    let addresses = ["a@x.com", "b@x.com"];
    let before = histories(&backend, &t, &addresses).await;
    assert_eq!(before[0].len(), 3, "{before:?}");
    drop(backend);
    let mut conn = database.connection().await;
    // Migration 6's layout, as an instance of that version left it.
    sqlx::raw_sql(
        "UPDATE hush_journal SET email = record::json ->> 'email' WHERE subject IS NOT NULL; \
         DROP INDEX hush_journal_by_subject; \
         DROP INDEX hush_journal_by_email; \
         ALTER TABLE hush_journal DROP COLUMN subject; \
         CREATE INDEX hush_journal_by_email ON hush_journal (tenant, email, position); \
         DROP TABLE hush_webhook_receipts; \
         DROP TABLE hush_mirror_state; \
         DROP TABLE hush_mirror_failures; \
         DELETE FROM hush_schema_migrations WHERE version >= 7;",
    )
    .execute(&mut conn)
    .await
    .expect("back to migration 6");
    let backend = database.backend().await;
    assert_eq!(histories(&backend, &t, &addresses).await, before);
    let later = added(
        &backend
            .add(&t, vec![hard_bounce("b@x.com")], &api_key_actor())
            .await
            .expect("add"),
    );
    let after = histories(&backend, &t, &addresses).await;
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1].len(), 1, "b@ was there: a re-add writes nothing");
    assert_eq!(later[0].id, first[1].id);
    backend
        .remove_ids(&t, &[first[1].id], &api_key_actor())
        .await
        .expect("remove b");
    let after = histories(&backend, &t, &addresses).await;
    assert_eq!(
        after[1],
        [
            (Operation::Removed, first[1].id),
            (Operation::Added, first[1].id)
        ]
    );
}
