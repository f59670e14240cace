//! The journal's checks, for every backend that keeps one
//! (`Capabilities::journal`); a backend without one passes them by
//! refusing every journal read.

use std::sync::Arc;

use hush_model::{
    Actor, BounceClass, Door, GroupChanges, JournalEntry, JournalOrder, JournalQuery, Kind,
    KindSet, ListFilter, Operation, Origin, Recorded, Scope, ScopeFilter, Suppression, TenantId,
    Timestamp,
};

use super::{add_all, at, email, item, new_group, tenant, tester};
use crate::{Backend, Engine, RestoreWindow};

fn keeps_journal(backend: &Arc<dyn Backend>) -> bool {
    let keeps = backend.capabilities().journal;
    if !keeps {
        let refused = futures_util::FutureExt::now_or_never(
            backend.journal(&tenant("t1"), &JournalQuery::newest_first(1)),
        );
        assert!(
            !matches!(refused, Some(Ok(_))),
            "a backend without a journal must refuse to read one"
        );
    }
    keeps
}

fn everything(limit: u32) -> JournalQuery {
    JournalQuery {
        order: JournalOrder::OldestFirst,
        ..JournalQuery::newest_first(limit)
    }
}

async fn journal(backend: &Arc<dyn Backend>, t: &TenantId) -> Vec<JournalEntry> {
    backend.journal(t, &everything(10_000)).await.unwrap()
}

fn ops(entries: &[JournalEntry]) -> Vec<&'static str> {
    entries.iter().map(|e| e.operation.as_str()).collect()
}

fn suppression(entry: &JournalEntry) -> &Suppression {
    match &entry.record {
        Recorded::Suppression(s) => s,
        Recorded::Group { .. } => panic!("expected a suppression in {entry:?}"),
    }
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind::Bounce {
            class: BounceClass::Block,
            status: Some("5.7.1".into()),
            reason: Some("550 5.7.1 blocked".into()),
        },
        Kind::SpamComplaint {
            source: Some("feedback_loop".into()),
        },
        Kind::Unsubscribe,
        Kind::Manual,
        Kind::Invalid {
            reason: Some("no MX".into()),
        },
    ]
}

/// Every change writes one entry, with its actor, in order; a re-add
/// writes none; a removal records the entry whole.
pub async fn journal_records_each_change_with_its_actor(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    let v3 = Actor::new(Door::V3)
        .with_key("v3#1")
        .with_request_id("req-1");
    let before = Engine::now();
    let group = backend
        .create_group(&t, new_group("news", "News"), &v3)
        .await
        .unwrap();
    let items = vec![
        item(
            "a@x.com",
            Scope::Global,
            Kind::Unsubscribe,
            Origin::Recipient,
            10,
        ),
        item(
            "b@x.com",
            Scope::Group(group.id),
            Kind::Manual,
            Origin::Customer,
            11,
        ),
    ];
    let stored = add_all(&backend, &t, items.clone()).await;
    let again = backend.add(&t, items, &v3).await.unwrap();
    assert_eq!(again.len(), 2);
    let postmark = Actor::new(Door::POSTMARK).with_key("postmark#1");
    assert_eq!(
        backend
            .remove_ids(&t, &[stored[0].id], &postmark)
            .await
            .unwrap(),
        1
    );
    let changes = GroupChanges {
        name: Some("News, weekly".into()),
        ..GroupChanges::default()
    };
    backend
        .update_group(&t, group.id, changes, &v3)
        .await
        .unwrap()
        .unwrap();
    assert!(backend.delete_group(&t, group.id, &v3).await.unwrap());
    let after = Engine::now();

    let entries = journal(&backend, &t).await;
    assert_eq!(
        ops(&entries),
        [
            "group_created",
            "added",
            "added",
            "removed",
            "group_changed",
            "removed",
            "group_deleted"
        ],
        "{entries:#?}"
    );
    assert!(entries.windows(2).all(|w| w[0].position < w[1].position));
    assert!(entries.iter().all(|e| e.at >= before && e.at <= after));
    assert!(entries.iter().all(|e| e.tenant == t));
    assert_eq!(entries[0].actor, v3);
    assert_eq!(entries[1].actor, tester(), "the add's own actor");
    assert_eq!(suppression(&entries[1]), &stored[0]);
    assert_eq!(entries[3].actor, postmark);
    assert_eq!(suppression(&entries[3]), &stored[0], "removed whole");
    match &entries[4].record {
        Recorded::Group { group: now, before } => {
            assert_eq!(now.name, "News, weekly");
            assert_eq!(before.as_ref().map(|b| b.name.as_str()), Some("News"));
        }
        other => panic!("expected a group, got {other:?}"),
    }
    assert_eq!(suppression(&entries[5]), &stored[1], "members go first");
    match &entries[6].record {
        Recorded::Group { group: gone, .. } => assert_eq!(gone.id, group.id),
        other => panic!("expected a group, got {other:?}"),
    }
    // Another tenant's journal is its own.
    assert!(journal(&backend, &tenant("t2")).await.is_empty());
}

/// Reads filter by address, time and door, and page by cursor both ways.
pub async fn journal_reads_filter_and_page(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    let sendpost = Actor::new(Door::SENDPOST).with_key("sendpost#1");
    for n in 0..5 {
        let address = format!("user{n}@x.com");
        let row = item(
            &address,
            Scope::Global,
            Kind::Unsubscribe,
            Origin::Recipient,
            n,
        );
        let actor = if n % 2 == 0 {
            tester()
        } else {
            sendpost.clone()
        };
        backend.add(&t, vec![row], &actor).await.unwrap();
    }
    backend
        .add(
            &tenant("t2"),
            vec![item(
                "user1@x.com",
                Scope::Global,
                Kind::Manual,
                Origin::Admin,
                1,
            )],
            &tester(),
        )
        .await
        .unwrap();
    let all = journal(&backend, &t).await;
    assert_eq!(all.len(), 5);

    let newest = backend
        .journal(&t, &JournalQuery::newest_first(2))
        .await
        .unwrap();
    assert_eq!(newest, vec![all[4].clone(), all[3].clone()]);
    let next = backend
        .journal(
            &t,
            &JournalQuery {
                cursor: Some(newest[1].position),
                ..JournalQuery::newest_first(10)
            },
        )
        .await
        .unwrap();
    assert_eq!(next, vec![all[2].clone(), all[1].clone(), all[0].clone()]);
    let onward = backend
        .journal(
            &t,
            &JournalQuery {
                cursor: Some(all[1].position),
                ..everything(2)
            },
        )
        .await
        .unwrap();
    assert_eq!(onward, vec![all[2].clone(), all[3].clone()]);

    let by_address = backend
        .journal(
            &t,
            &JournalQuery {
                email: Some(email("user1@x.com")),
                ..JournalQuery::newest_first(10)
            },
        )
        .await
        .unwrap();
    assert_eq!(by_address, vec![all[1].clone()], "one tenant only");
    let by_door = backend
        .journal(
            &t,
            &JournalQuery {
                door: Some("sendpost".into()),
                ..everything(10)
            },
        )
        .await
        .unwrap();
    assert_eq!(by_door, vec![all[1].clone(), all[3].clone()]);
    let window = backend
        .journal(
            &t,
            &JournalQuery {
                since: Some(all[1].at),
                until: Some(all[3].at),
                ..everything(10)
            },
        )
        .await
        .unwrap();
    assert!(window.contains(&all[2]));
    assert!(
        window
            .iter()
            .all(|e| e.at >= all[1].at && e.at <= all[3].at)
    );
}

/// A bulk delete restored is what was there, field by field and id by id;
/// the dry run before it changes nothing; the restore is journaled.
pub async fn engine_restores_a_bulk_delete_exactly(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    let engine = Engine::new(Arc::clone(&backend));
    let group = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    let mut items = Vec::new();
    for (n, kind) in kinds().into_iter().enumerate() {
        let n = i64::try_from(n).unwrap();
        items.push(item(
            &format!("k{n}@x.com"),
            Scope::Global,
            kind,
            Origin::from_code(n % 3).unwrap(),
            1_600_000_000 + n,
        ));
    }
    items.push(item(
        "k0@x.com",
        Scope::Group(group.id),
        Kind::Unsubscribe,
        Origin::Recipient,
        1_600_000_100,
    ));
    add_all(&backend, &t, items).await;
    let every = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    let before: Vec<Suppression> = engine
        .list(&t, &every, super::page(100, 0))
        .await
        .unwrap()
        .items;
    assert_eq!(before.len(), 6);

    let since = Engine::now();
    let v3 = Actor::new(Door::V3).with_key("v3#1");
    assert_eq!(engine.remove_all(&t, &every, &v3).await.unwrap(), 6);
    let until = Engine::now();
    // Written after the window: a restore of the window leaves it alone.
    add_all(
        &backend,
        &t,
        vec![item(
            "late@x.com",
            Scope::Global,
            Kind::Manual,
            Origin::Admin,
            5,
        )],
    )
    .await;
    let window = RestoreWindow {
        since,
        until,
        email: None,
    };
    let restorer = Actor::new(Door::RESTORE).with_key("ops");
    let dry = engine.restore(&t, &window, true, &restorer).await.unwrap();
    assert_eq!((dry.restored, dry.removed), (6, 0));
    assert_eq!(
        engine.count(&t, &every).await.unwrap(),
        1,
        "a dry run changes nothing"
    );
    let journaled = journal(&backend, &t).await.len();

    let done = engine.restore(&t, &window, false, &restorer).await.unwrap();
    assert_eq!((done.restored, done.removed), (6, 0));
    let mut after: Vec<Suppression> = engine
        .list(&t, &every, super::page(100, 0))
        .await
        .unwrap()
        .items;
    after.retain(|s| s.email.as_str() != "late@x.com");
    assert_eq!(after, before, "every field, ids included");

    let entries = journal(&backend, &t).await;
    let undone = &entries[journaled..];
    assert_eq!(undone.len(), 6);
    assert!(
        undone
            .iter()
            .all(|e| e.operation == Operation::Added && e.actor == restorer)
    );
    // Restoring again finds every entry back already.
    let twice = engine.restore(&t, &window, false, &restorer).await.unwrap();
    assert_eq!((twice.restored, twice.removed), (0, 0));
}

/// A restore removes what the window added, reverts group changes and puts
/// deleted groups back with their ids and members.
pub async fn engine_restore_undoes_adds_and_group_changes(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    let engine = Engine::new(Arc::clone(&backend));
    let kept = backend
        .create_group(&t, new_group("kept", "Kept"), &tester())
        .await
        .unwrap();
    let doomed = backend
        .create_group(&t, new_group("doomed", "Doomed"), &tester())
        .await
        .unwrap();
    let member = add_all(
        &backend,
        &t,
        vec![item(
            "m@x.com",
            Scope::Group(doomed.id),
            Kind::Unsubscribe,
            Origin::Recipient,
            3,
        )],
    )
    .await;

    let since = Engine::now();
    add_all(
        &backend,
        &t,
        vec![item(
            "new@x.com",
            Scope::Global,
            Kind::Manual,
            Origin::Customer,
            9,
        )],
    )
    .await;
    let renamed = GroupChanges {
        name: Some("Renamed".into()),
        archived_at: Some(Some(at(50))),
        ..GroupChanges::default()
    };
    backend
        .update_group(&t, kept.id, renamed, &tester())
        .await
        .unwrap();
    assert!(
        backend
            .delete_group(&t, doomed.id, &tester())
            .await
            .unwrap()
    );
    let created = backend
        .create_group(&t, new_group("fresh", "Fresh"), &tester())
        .await
        .unwrap();
    let window = RestoreWindow {
        since,
        until: Engine::now(),
        email: None,
    };
    let restorer = Actor::new(Door::RESTORE);
    let dry = engine.restore(&t, &window, true, &restorer).await.unwrap();
    let done = engine.restore(&t, &window, false, &restorer).await.unwrap();
    assert_eq!(dry, done, "the dry run foretells the restore");
    // Put back: the member and the doomed group; reverted: the rename.
    // Removed: the new address and the fresh group.
    assert_eq!((done.restored, done.removed), (3, 2));
    assert!(
        backend
            .entries(&t, &email("new@x.com"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(backend.group(&t, created.id).await.unwrap().is_none());
    assert_eq!(
        backend.group(&t, kept.id).await.unwrap().unwrap().name,
        "Kept"
    );
    assert_eq!(
        backend
            .group(&t, kept.id)
            .await
            .unwrap()
            .unwrap()
            .archived_at,
        None
    );
    assert_eq!(backend.group(&t, doomed.id).await.unwrap(), Some(doomed));
    assert_eq!(
        backend.entries(&t, &email("m@x.com")).await.unwrap(),
        member,
        "back in its group, with its id"
    );
}

/// A restore limited to one address touches no other.
pub async fn engine_restores_one_address(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    let engine = Engine::new(Arc::clone(&backend));
    add_all(
        &backend,
        &t,
        vec![
            item(
                "a@x.com",
                Scope::Global,
                Kind::Unsubscribe,
                Origin::Recipient,
                1,
            ),
            item(
                "b@x.com",
                Scope::Global,
                Kind::Unsubscribe,
                Origin::Recipient,
                2,
            ),
        ],
    )
    .await;
    let since = Engine::now();
    let every = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    engine.remove_all(&t, &every, &tester()).await.unwrap();
    let window = RestoreWindow {
        since,
        until: Engine::now(),
        email: Some(email("b@x.com")),
    };
    let done = engine
        .restore(&t, &window, false, &Actor::new(Door::RESTORE))
        .await
        .unwrap();
    assert_eq!(done.restored, 1);
    assert!(
        backend
            .entries(&t, &email("a@x.com"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        backend.entries(&t, &email("b@x.com")).await.unwrap().len(),
        1
    );
}

/// Pruning deletes only entries older than the cut, a bounded step at a
/// time.
pub async fn journal_prunes_old_entries_in_bounded_steps(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    for n in 0..5 {
        let row = item(
            &format!("old{n}@x.com"),
            Scope::Global,
            Kind::Manual,
            Origin::Admin,
            n,
        );
        add_all(&backend, &t, vec![row]).await;
    }
    let cut = Engine::now();
    add_all(
        &backend,
        &t,
        vec![item(
            "new@x.com",
            Scope::Global,
            Kind::Manual,
            Origin::Admin,
            9,
        )],
    )
    .await;
    assert_eq!(backend.prune_journal(cut, 2).await.unwrap(), 2, "bounded");
    assert_eq!(journal(&backend, &t).await.len(), 4);
    let engine = Engine::new(Arc::clone(&backend));
    assert_eq!(engine.prune_journal(cut).await.unwrap(), 3);
    let left = journal(&backend, &t).await;
    assert_eq!(left.len(), 1);
    assert_eq!(suppression(&left[0]).email.as_str(), "new@x.com");
    assert_eq!(
        backend.prune_journal(Timestamp::MIN, 10).await.unwrap(),
        0,
        "nothing is older than the beginning"
    );
}

/// Entries appended (what `hush copy` carries) keep their time, actor and
/// record, in order, after what the store held.
pub async fn journal_appends_carried_entries_in_order(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    add_all(
        &backend,
        &t,
        vec![item(
            "here@x.com",
            Scope::Global,
            Kind::Manual,
            Origin::Admin,
            1,
        )],
    )
    .await;
    let carried: Vec<JournalEntry> = (0..3)
        .map(|n| JournalEntry {
            position: hush_model::Position(900 + n),
            tenant: t.clone(),
            at: Timestamp::from_nanos(1_000 + n),
            operation: Operation::Removed,
            actor: Actor::new(Door::webhook("ses")).with_event_id(format!("ev-{n}")),
            record: Recorded::Suppression(Suppression {
                id: hush_model::SuppressionId(77 + n),
                tenant: t.clone(),
                email: email(&format!("gone{n}@x.com")),
                scope: Scope::Global,
                kind: Kind::Unsubscribe,
                origin: Origin::Recipient,
                created_at: Timestamp::from_nanos(5),
            }),
        })
        .collect();
    backend.append_journal(carried.clone()).await.unwrap();
    let entries = journal(&backend, &t).await;
    assert_eq!(entries.len(), 4);
    for (got, want) in entries[1..].iter().zip(&carried) {
        assert!(got.position > entries[0].position);
        assert_eq!(
            (&got.tenant, got.at, got.operation, &got.actor, &got.record),
            (
                &want.tenant,
                want.at,
                want.operation,
                &want.actor,
                &want.record
            )
        );
    }
    let all = backend.journal_all(None, 100).await.unwrap();
    assert_eq!(all, entries);
    assert_eq!(
        backend
            .journal_all(Some(entries[1].position), 2)
            .await
            .unwrap(),
        entries[2..4].to_vec()
    );
    assert!(matches!(
        backend
            .journal(&t, &JournalQuery::newest_first(1))
            .await
            .map(|e| e.len()),
        Ok(1)
    ));
}

/// An entry put back with an id the store has not handed out yet (one
/// carried by `hush copy` from another store) never collides with the ids
/// the store hands out next.
pub async fn put_back_ids_stay_ahead_of_new_ones(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    let first = add_all(
        &backend,
        &t,
        vec![item(
            "first@x.com",
            Scope::Global,
            Kind::Manual,
            Origin::Admin,
            1,
        )],
    )
    .await;
    let mut carried = first[0].clone();
    carried.id = hush_model::SuppressionId(first[0].id.0 + 1);
    carried.email = email("carried@x.com");
    let put = backend
        .put_back(&t, vec![carried.clone()], &tester())
        .await
        .unwrap();
    assert_eq!(put, vec![true]);
    let next = add_all(
        &backend,
        &t,
        vec![item(
            "next@x.com",
            Scope::Global,
            Kind::Manual,
            Origin::Admin,
            2,
        )],
    )
    .await;
    assert!(
        next[0].id > carried.id,
        "{:?} after {:?}",
        next[0].id,
        carried.id
    );
    assert_eq!(
        backend.entries(&t, &email("carried@x.com")).await.unwrap(),
        vec![carried]
    );
}

/// An address's history is every entry of every suppression it has had:
/// the ones it holds now, the ones removed, put back or re-added under a
/// new id, in other scopes, and entries carried from another store, and
/// nothing of another address that took an id one of those carried.
pub async fn journal_finds_every_entry_of_an_address(backend: Arc<dyn Backend>) {
    if !keeps_journal(&backend) {
        return;
    }
    let t = tenant("t1");
    let group = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    let first = add_all(
        &backend,
        &t,
        vec![
            item("a@x.com", Scope::Global, Kind::Manual, Origin::Admin, 1),
            item("b@x.com", Scope::Global, Kind::Manual, Origin::Admin, 1),
            item(
                "a@x.com",
                Scope::Group(group.id),
                Kind::Unsubscribe,
                Origin::Recipient,
                2,
            ),
        ],
    )
    .await;
    assert_eq!(
        backend
            .remove_ids(&t, &[first[0].id], &tester())
            .await
            .unwrap(),
        1
    );
    let again = add_all(
        &backend,
        &t,
        vec![item(
            "a@x.com",
            Scope::Global,
            Kind::Manual,
            Origin::Admin,
            3,
        )],
    )
    .await;
    assert_ne!(again[0].id, first[0].id, "a new id");
    assert_eq!(
        backend
            .remove_ids(&t, &[again[0].id], &tester())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        backend
            .put_back(&t, vec![first[0].clone()], &tester())
            .await
            .unwrap(),
        vec![true]
    );
    // Carried from another store: an address this store never held, under
    // an id it has not handed out; then another address put back with that
    // very id.
    let mut carried = first[1].clone();
    carried.id = hush_model::SuppressionId(again[0].id.0 + 100);
    carried.email = email("carried@x.com");
    backend
        .append_journal(vec![JournalEntry {
            position: hush_model::Position(0),
            tenant: t.clone(),
            at: Timestamp::from_nanos(7),
            operation: Operation::Added,
            actor: Actor::new(Door::COPY),
            record: Recorded::Suppression(carried.clone()),
        }])
        .await
        .unwrap();
    let mut taker = carried.clone();
    taker.email = email("taker@x.com");
    assert_eq!(
        backend
            .put_back(&t, vec![taker.clone()], &tester())
            .await
            .unwrap(),
        vec![true]
    );

    let history = |address: &'static str| {
        let backend = Arc::clone(&backend);
        let t = t.clone();
        async move {
            let entries = backend
                .journal(
                    &t,
                    &JournalQuery {
                        email: Some(email(address)),
                        ..JournalQuery::newest_first(100)
                    },
                )
                .await
                .unwrap();
            entries
                .iter()
                .map(|e| (e.operation.as_str(), suppression(e).id))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        history("a@x.com").await,
        vec![
            ("added", first[0].id),
            ("removed", again[0].id),
            ("added", again[0].id),
            ("removed", first[0].id),
            ("added", first[2].id),
            ("added", first[0].id),
        ],
        "newest first, every id it has had"
    );
    assert_eq!(history("b@x.com").await, vec![("added", first[1].id)]);
    assert_eq!(history("carried@x.com").await, vec![("added", carried.id)]);
    assert_eq!(history("taker@x.com").await, vec![("added", taker.id)]);
    let oldest_two = backend
        .journal(
            &t,
            &JournalQuery {
                email: Some(email("a@x.com")),
                ..everything(2)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        oldest_two
            .iter()
            .map(|e| (e.operation, suppression(e).id))
            .collect::<Vec<_>>(),
        vec![
            (Operation::Added, first[0].id),
            (Operation::Added, first[2].id)
        ]
    );
    let after = backend
        .journal(
            &t,
            &JournalQuery {
                email: Some(email("a@x.com")),
                cursor: Some(oldest_two[1].position),
                ..everything(100)
            },
        )
        .await
        .unwrap();
    assert_eq!(after.len(), 4, "the cursor pages an address's history");
}
