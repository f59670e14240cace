//! The journal: every committed change writes one entry in its own
//! transaction, and a restore puts back exactly what was removed. Each check
//! runs against the SQLite store and against the memory store, which is the
//! reference: the two must write the same entries.

use std::sync::Arc;

use hush_engine::{AddOutcome, Backend, Engine, EngineError, RestoreWindow};
use hush_model::{
    Actor, BounceClass, Door, Email, EmailMatch, Group, GroupChanges, GroupId, GroupKey,
    JournalEntry, JournalOrder, JournalQuery, Kind, KindSet, ListFilter, NewGroup, NewSuppression,
    Operation, Origin, Position, Recorded, Scope, ScopeFilter, StreamType, Suppression,
    SuppressionId, TenantId, Timestamp, UnsubscribeHandling,
};

/// One `#[tokio::test]` per check and store.
macro_rules! on_every_store {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let backend = std::sync::Arc::new(crate::support::TempSqlite::new());
                    super::$check(backend).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    let backend = std::sync::Arc::new(hush_store::MemoryBackend::new());
                    super::$check(backend).await;
                }
            )*
        }
    };
}

on_every_store!(
    every_change_is_journaled_with_its_actor,
    an_add_that_finds_its_entry_writes_nothing,
    a_bulk_change_journals_every_entry_in_order,
    a_removal_records_the_whole_entry_and_put_back_restores_it,
    put_back_refuses_what_does_not_fit,
    deleting_a_group_journals_its_members_before_the_group,
    a_deleted_group_is_put_back_with_its_id,
    moving_the_default_flag_journals_both_groups,
    history_filters_by_address_time_and_door,
    history_pages_by_cursor_both_ways,
    pruning_deletes_only_old_entries_a_bounded_step_at_a_time,
    appended_entries_keep_their_order_and_get_new_positions,
    a_refused_change_journals_nothing,
    a_restore_puts_back_what_a_bulk_delete_took,
);

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("tenant")
}

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("email")
}

fn api_actor() -> Actor {
    Actor::new(Door::V3)
        .with_key("billing")
        .with_request_id("req-1")
}

fn admin() -> Actor {
    Actor::new(Door::ADMIN).with_key("ops")
}

fn item(address: &str, scope: Scope, kind: Kind, created: i64) -> NewSuppression {
    NewSuppression {
        email: email(address),
        scope,
        kind,
        origin: Origin::Customer,
        created_at: Timestamp::from_nanos(created),
    }
}

fn hard(address: &str, created: i64) -> NewSuppression {
    item(
        address,
        Scope::Global,
        Kind::Bounce {
            class: BounceClass::Hard,
            status: Some("5.1.1".into()),
            reason: Some("550 user unknown".into()),
        },
        created,
    )
}

fn new_group(key: &str, name: &str, is_default: bool) -> NewGroup {
    NewGroup {
        key: GroupKey::parse(key).expect("key"),
        name: name.into(),
        description: format!("the {name} stream"),
        is_default,
        stream_type: StreamType::Broadcasts,
        unsubscribe_handling: UnsubscribeHandling::Postmark,
        created_at: Timestamp::from_unix_seconds(1_700_000_000),
    }
}

async fn add(
    backend: &Arc<dyn Backend>,
    t: &TenantId,
    items: Vec<NewSuppression>,
) -> Vec<Suppression> {
    backend
        .add(t, items, &api_actor())
        .await
        .expect("add")
        .into_iter()
        .map(|outcome| match outcome {
            AddOutcome::Added { suppression, .. } => suppression,
            other => panic!("not added: {other:?}"),
        })
        .collect()
}

/// Every entry of a tenant, oldest first.
async fn history(backend: &Arc<dyn Backend>, t: &TenantId) -> Vec<JournalEntry> {
    let mut query = JournalQuery::newest_first(10_000);
    query.order = JournalOrder::OldestFirst;
    backend.journal(t, &query).await.expect("journal")
}

fn operations(entries: &[JournalEntry]) -> Vec<Operation> {
    entries.iter().map(|e| e.operation).collect()
}

fn suppression_of(entry: &JournalEntry) -> &Suppression {
    match &entry.record {
        Recorded::Suppression(s) => s,
        Recorded::Group { .. } => panic!("a group's entry: {entry:?}"),
    }
}

fn group_of(entry: &JournalEntry) -> (&Group, Option<&Group>) {
    match &entry.record {
        Recorded::Group { group, before } => (group, before.as_ref()),
        Recorded::Suppression(_) => panic!("a suppression's entry: {entry:?}"),
    }
}

fn by_address(address: &str) -> ListFilter {
    let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    filter.email = Some(EmailMatch::Exact(email(address)));
    filter
}

pub async fn every_change_is_journaled_with_its_actor(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let before = Engine::now();
    let added = add(&backend, &t, vec![hard("a@x.com", 10), hard("b@x.com", 11)]).await;
    let group = backend
        .create_group(&t, new_group("news", "News", false), &admin())
        .await
        .expect("create");
    let changes = GroupChanges {
        description: Some("weekly".into()),
        ..GroupChanges::default()
    };
    let changed = backend
        .update_group(&t, group.id, changes, &admin())
        .await
        .expect("update")
        .expect("there");
    let webhook = Actor::new(Door::webhook("ses")).with_event_id("evt-9");
    assert_eq!(
        backend
            .remove_matching(&t, &by_address("a@x.com"), &webhook)
            .await
            .expect("remove"),
        1
    );
    assert_eq!(
        backend
            .remove_ids(&t, &[added[1].id, added[1].id], &admin())
            .await
            .expect("remove"),
        1
    );
    let after = Engine::now();

    let entries = history(&backend, &t).await;
    assert_eq!(
        operations(&entries),
        [
            Operation::Added,
            Operation::Added,
            Operation::GroupCreated,
            Operation::GroupChanged,
            Operation::Removed,
            Operation::Removed,
        ]
    );
    assert!(
        entries.windows(2).all(|w| w[0].position < w[1].position),
        "positions increase: {entries:?}"
    );
    for entry in &entries {
        assert_eq!(entry.tenant, t);
        assert!(before <= entry.at && entry.at <= after, "{entry:?}");
    }
    assert_eq!(entries[0].actor, api_actor());
    assert_eq!(suppression_of(&entries[0]), &added[0]);
    assert_eq!(suppression_of(&entries[1]), &added[1]);
    assert_eq!(entries[2].actor, admin());
    assert_eq!(group_of(&entries[2]), (&group, None));
    assert_eq!(group_of(&entries[3]), (&changed, Some(&group)));
    assert_eq!(entries[4].actor, webhook);
    assert_eq!(suppression_of(&entries[4]), &added[0]);
    assert_eq!(entries[5].actor, admin());
    assert_eq!(suppression_of(&entries[5]), &added[1]);
    // Another tenant's history is its own.
    assert!(history(&backend, &tenant("other")).await.is_empty());
}

pub async fn an_add_that_finds_its_entry_writes_nothing(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    add(&backend, &t, vec![hard("a@x.com", 10)]).await;
    let again = backend
        .add(&t, vec![hard("a@x.com", 99)], &admin())
        .await
        .expect("add");
    assert!(matches!(again[0], AddOutcome::Added { new: false, .. }));
    // An item of a group that does not exist is refused, and journals
    // nothing either.
    let refused = backend
        .add(
            &t,
            vec![item("c@x.com", Scope::Group(GroupId(999)), Kind::Manual, 1)],
            &admin(),
        )
        .await
        .expect("add");
    assert!(matches!(refused[0], AddOutcome::UnknownGroup(_)));
    assert_eq!(operations(&history(&backend, &t).await), [Operation::Added]);
}

pub async fn a_bulk_change_journals_every_entry_in_order(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    // Sizes around the SQLite store's INSERT of 64 entries at a time, with
    // remainders of every width.
    let mut expected = Vec::new();
    for size in [131, 64, 127, 1] {
        let start = expected.len();
        let items = (start..start + size)
            .map(|n| hard(&format!("bulk{n}@x.com"), i64::try_from(n).expect("small")))
            .collect();
        expected.extend(add(&backend, &t, items).await);
    }
    let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    let removed = backend
        .remove_matching(&t, &everything, &admin())
        .await
        .expect("remove");
    assert_eq!(removed, 323);
    let entries = history(&backend, &t).await;
    assert_eq!(entries.len(), 2 * 323);
    assert!(entries.windows(2).all(|w| w[0].position < w[1].position));
    let (adds, removals) = entries.split_at(323);
    for (entry, suppression) in adds.iter().zip(&expected) {
        assert_eq!(entry.operation, Operation::Added);
        assert_eq!(suppression_of(entry), suppression);
    }
    assert!(
        removals
            .iter()
            .all(|e| e.operation == Operation::Removed && e.actor == admin())
    );
    let mut removed: Vec<&Suppression> = removals.iter().map(suppression_of).collect();
    removed.sort_by_key(|s| s.id);
    assert_eq!(removed, expected.iter().collect::<Vec<_>>());
}

/// One entry of every kind, with every detail a kind can carry.
fn one_of_each(group: GroupId) -> Vec<NewSuppression> {
    let mut spam = item(
        "spam@x.com",
        Scope::Global,
        Kind::SpamComplaint {
            source: Some("feedback_loop".into()),
        },
        3,
    );
    spam.origin = Origin::Recipient;
    let mut manual = item("manual@x.com", Scope::Group(group), Kind::Manual, 6);
    manual.origin = Origin::Admin;
    vec![
        hard("hard@x.com", 1_700_000_000_123_456_789),
        item(
            "soft@x.com",
            Scope::Global,
            Kind::Bounce {
                class: BounceClass::Soft,
                status: None,
                reason: Some("mailbox full, \"try later\"".into()),
            },
            2,
        ),
        spam,
        item(
            "invalid@x.com",
            Scope::Global,
            Kind::Invalid {
                reason: Some("no MX".into()),
            },
            4,
        ),
        item(
            "unsub@exämple.com",
            Scope::Group(group),
            Kind::Unsubscribe,
            5,
        ),
        manual,
    ]
}

pub async fn a_removal_records_the_whole_entry_and_put_back_restores_it(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let group = backend
        .create_group(&t, new_group("news", "News", false), &admin())
        .await
        .expect("create");
    let mut originals = add(&backend, &t, one_of_each(group.id)).await;
    let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    assert_eq!(
        backend
            .remove_matching(&t, &everything, &admin())
            .await
            .expect("remove"),
        6
    );
    let mut removed: Vec<Suppression> = history(&backend, &t)
        .await
        .iter()
        .filter(|e| e.operation == Operation::Removed)
        .map(|e| suppression_of(e).clone())
        .collect();
    // The entries of one removal share their time and actor; their order
    // among themselves is the store's.
    removed.sort_by_key(|s| s.id);
    originals.sort_by_key(|s| s.id);
    assert_eq!(removed, originals, "each removal records its entry whole");

    let restorer = Actor::new(Door::RESTORE).with_key("ops");
    let put = backend
        .put_back(&t, removed.clone(), &restorer)
        .await
        .expect("put back");
    assert_eq!(put, vec![true; 6]);
    for original in &originals {
        let now = backend.entries(&t, &original.email).await.expect("entries");
        assert_eq!(now, vec![original.clone()], "put back as it was");
    }
    let entries = history(&backend, &t).await;
    let put_back: Vec<&JournalEntry> = entries.iter().rev().take(6).collect();
    for entry in &put_back {
        assert_eq!(entry.operation, Operation::Added);
        assert_eq!(entry.actor, restorer);
    }
    // Putting back twice puts nothing back, and journals nothing.
    let again = backend
        .put_back(&t, removed, &restorer)
        .await
        .expect("put back");
    assert_eq!(again, vec![false; 6]);
    assert_eq!(history(&backend, &t).await.len(), entries.len());
    // An add of an identity put back finds it, id and all.
    let found = backend
        .add(&t, vec![hard("hard@x.com", 1)], &admin())
        .await
        .expect("add");
    let AddOutcome::Added { suppression, new } = &found[0] else {
        panic!("{found:?}");
    };
    assert!(!new);
    assert_eq!(suppression, &originals[0]);
}

pub async fn put_back_refuses_what_does_not_fit(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let group = backend
        .create_group(&t, new_group("news", "News", false), &admin())
        .await
        .expect("create");
    let gone = add(
        &backend,
        &t,
        vec![
            hard("taken@x.com", 1),
            item("member@x.com", Scope::Group(group.id), Kind::Unsubscribe, 2),
            hard("free@x.com", 3),
        ],
    )
    .await;
    let ids: Vec<SuppressionId> = gone.iter().map(|s| s.id).collect();
    backend
        .remove_ids(&t, &ids, &admin())
        .await
        .expect("remove");
    // The identity is taken again, by a newer entry.
    add(&backend, &t, vec![hard("taken@x.com", 9)]).await;
    // The group is gone.
    backend
        .delete_group(&t, group.id, &admin())
        .await
        .expect("delete");
    let mut elsewhere = gone[2].clone();
    elsewhere.tenant = tenant("other");
    let journaled = history(&backend, &t).await.len();
    let put = backend
        .put_back(
            &t,
            vec![gone[0].clone(), gone[1].clone(), elsewhere, gone[2].clone()],
            &admin(),
        )
        .await
        .expect("put back");
    assert_eq!(put, [false, false, false, true]);
    let entries = history(&backend, &t).await;
    assert_eq!(
        entries.len(),
        journaled + 1,
        "only what went in is journaled"
    );
    assert_eq!(suppression_of(&entries[journaled]), &gone[2]);
    // An id in use is refused even for another address.
    let mut same_id = gone[2].clone();
    same_id.email = email("someone-else@x.com");
    let put = backend
        .put_back(&t, vec![same_id], &admin())
        .await
        .expect("put back");
    assert_eq!(put, [false]);
}

pub async fn deleting_a_group_journals_its_members_before_the_group(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let group = backend
        .create_group(&t, new_group("news", "News", false), &admin())
        .await
        .expect("create");
    let members = add(
        &backend,
        &t,
        vec![
            item("a@x.com", Scope::Group(group.id), Kind::Unsubscribe, 1),
            item("b@x.com", Scope::Group(group.id), Kind::Manual, 2),
            hard("global@x.com", 3),
        ],
    )
    .await;
    let deleter = Actor::new(Door::POSTMARK).with_request_id("r-7");
    assert!(
        backend
            .delete_group(&t, group.id, &deleter)
            .await
            .expect("delete")
    );
    let entries = history(&backend, &t).await;
    let tail = &entries[entries.len() - 3..];
    assert_eq!(
        operations(tail),
        [
            Operation::Removed,
            Operation::Removed,
            Operation::GroupDeleted
        ]
    );
    let mut removed = [suppression_of(&tail[0]), suppression_of(&tail[1])];
    removed.sort_by_key(|s| s.id);
    assert_eq!(removed, [&members[0], &members[1]]);
    assert_eq!(group_of(&tail[2]), (&group, None));
    assert!(tail.iter().all(|e| e.actor == deleter));
    // Deleting what is not there journals nothing.
    assert!(
        !backend
            .delete_group(&t, group.id, &deleter)
            .await
            .expect("delete")
    );
    assert_eq!(history(&backend, &t).await.len(), entries.len());
}

pub async fn a_deleted_group_is_put_back_with_its_id(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let news = backend
        .create_group(&t, new_group("news", "News", false), &admin())
        .await
        .expect("create");
    let archived = GroupChanges {
        archived_at: Some(Some(Timestamp::from_unix_seconds(1_800_000_000))),
        updated_at: Some(Timestamp::from_unix_seconds(1_800_000_001)),
        ..GroupChanges::default()
    };
    let news = backend
        .update_group(&t, news.id, archived, &admin())
        .await
        .expect("update")
        .expect("there");
    backend
        .delete_group(&t, news.id, &admin())
        .await
        .expect("delete");
    let journaled = history(&backend, &t).await.len();
    let restorer = Actor::new(Door::RESTORE);
    assert!(
        backend
            .put_back_group(&t, news.clone(), &restorer)
            .await
            .expect("put back")
    );
    assert_eq!(
        backend.group(&t, news.id).await.expect("read"),
        Some(news.clone()),
        "put back as it was, archive and update times too"
    );
    let entries = history(&backend, &t).await;
    assert_eq!(entries.len(), journaled + 1);
    assert_eq!(entries[journaled].operation, Operation::GroupCreated);
    assert_eq!(group_of(&entries[journaled]), (&news, None));
    assert_eq!(entries[journaled].actor, restorer);
    // Its id is taken now.
    assert!(
        !backend
            .put_back_group(&t, news.clone(), &restorer)
            .await
            .expect("put back")
    );
    // Another group with its key or its name keeps it out.
    backend
        .delete_group(&t, news.id, &admin())
        .await
        .expect("delete");
    let same_key = backend
        .create_group(&t, new_group("news", "Other name", false), &admin())
        .await
        .expect("create");
    let refused = backend.put_back_group(&t, news.clone(), &restorer).await;
    assert!(
        matches!(refused, Err(EngineError::GroupKeyTaken(_))),
        "{refused:?}"
    );
    backend
        .delete_group(&t, same_key.id, &admin())
        .await
        .expect("delete");
    backend
        .create_group(&t, new_group("other-key", "News", false), &admin())
        .await
        .expect("create");
    let journaled = history(&backend, &t).await.len();
    let refused = backend.put_back_group(&t, news.clone(), &restorer).await;
    assert!(
        matches!(refused, Err(EngineError::GroupNameTaken(_))),
        "{refused:?}"
    );
    assert_eq!(history(&backend, &t).await.len(), journaled);
}

pub async fn moving_the_default_flag_journals_both_groups(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let first = backend
        .create_group(&t, new_group("first", "First", true), &admin())
        .await
        .expect("create");
    let second = backend
        .create_group(&t, new_group("second", "Second", true), &admin())
        .await
        .expect("create");
    let entries = history(&backend, &t).await;
    assert_eq!(
        operations(&entries),
        [
            Operation::GroupCreated,
            Operation::GroupChanged,
            Operation::GroupCreated
        ]
    );
    let first_now = Group {
        is_default: false,
        ..first.clone()
    };
    assert_eq!(group_of(&entries[1]), (&first_now, Some(&first)));
    assert_eq!(group_of(&entries[2]), (&second, None));

    // The flag moves back by an update: the second's loss, then the
    // first's change.
    let flag = GroupChanges {
        is_default: Some(true),
        ..GroupChanges::default()
    };
    let first_again = backend
        .update_group(&t, first.id, flag, &admin())
        .await
        .expect("update")
        .expect("there");
    let entries = history(&backend, &t).await;
    assert_eq!(entries.len(), 5);
    let second_now = Group {
        is_default: false,
        ..second.clone()
    };
    assert_eq!(group_of(&entries[3]), (&second_now, Some(&second)));
    assert_eq!(group_of(&entries[4]), (&first_again, Some(&first_now)));

    // A default put back takes the flag too, and says so.
    backend
        .delete_group(&t, first.id, &admin())
        .await
        .expect("delete");
    let flag = GroupChanges {
        is_default: Some(true),
        ..GroupChanges::default()
    };
    let second_default = backend
        .update_group(&t, second.id, flag, &admin())
        .await
        .expect("update")
        .expect("there");
    assert!(
        backend
            .put_back_group(&t, first_again.clone(), &admin())
            .await
            .expect("put back")
    );
    let entries = history(&backend, &t).await;
    let tail = &entries[entries.len() - 2..];
    assert_eq!(
        group_of(&tail[0]),
        (
            &Group {
                is_default: false,
                ..second_default.clone()
            },
            Some(&second_default)
        )
    );
    assert_eq!(group_of(&tail[1]), (&first_again, None));
    let groups = backend.groups(&t).await.expect("groups");
    let defaults: Vec<GroupId> = groups
        .iter()
        .filter(|g| g.is_default)
        .map(|g| g.id)
        .collect();
    assert_eq!(defaults, [first.id]);
}

/// An entry as `hush copy` would bring it: its time and actor as given.
fn copied(t: &TenantId, at: i64, door: Door, address: Option<&str>) -> JournalEntry {
    let record = match address {
        Some(address) => Recorded::Suppression(Suppression {
            id: SuppressionId(at),
            tenant: t.clone(),
            email: email(address),
            scope: Scope::Global,
            kind: Kind::Manual,
            origin: Origin::Customer,
            created_at: Timestamp::from_nanos(at - 1),
        }),
        None => Recorded::Group {
            group: Group {
                id: GroupId(at),
                tenant: t.clone(),
                key: GroupKey::parse("news").expect("key"),
                name: "News".into(),
                description: String::new(),
                is_default: false,
                stream_type: StreamType::Broadcasts,
                unsubscribe_handling: UnsubscribeHandling::Postmark,
                archived_at: None,
                created_at: Timestamp::from_nanos(at - 1),
                updated_at: None,
            },
            before: None,
        },
    };
    JournalEntry {
        position: Position(0),
        tenant: t.clone(),
        at: Timestamp::from_nanos(at),
        operation: if address.is_some() {
            Operation::Added
        } else {
            Operation::GroupCreated
        },
        actor: Actor::new(door).with_request_id(format!("r{at}")),
        record,
    }
}

fn times(entries: &[JournalEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.at.as_nanos()).collect()
}

/// acme's entries at 100 … 500 and one of another tenant's between them.
async fn five_entries(backend: &Arc<dyn Backend>) -> TenantId {
    let t = tenant("acme");
    let other = tenant("other");
    backend
        .append_journal(vec![
            copied(&t, 100, Door::V3, Some("a@x.com")),
            copied(&t, 200, Door::POSTMARK, Some("b@x.com")),
            copied(&other, 250, Door::V3, Some("a@x.com")),
            copied(&t, 300, Door::webhook("ses"), Some("a@x.com")),
            copied(&t, 400, Door::ADMIN, None),
            copied(&t, 500, Door::V3, Some("a@x.com")),
        ])
        .await
        .expect("append");
    t
}

pub async fn history_filters_by_address_time_and_door(backend: Arc<dyn Backend>) {
    let t = five_entries(&backend).await;
    let read = |query: JournalQuery| {
        let backend = Arc::clone(&backend);
        let t = t.clone();
        async move { times(&backend.journal(&t, &query).await.expect("journal")) }
    };
    let all = JournalQuery::newest_first(100);
    assert_eq!(read(all.clone()).await, [500, 400, 300, 200, 100]);
    let of_a = JournalQuery {
        email: Some(email("A@x.com")),
        ..all.clone()
    };
    assert_eq!(read(of_a.clone()).await, [500, 300, 100]);
    let window = JournalQuery {
        since: Some(Timestamp::from_nanos(200)),
        until: Some(Timestamp::from_nanos(400)),
        ..all.clone()
    };
    assert_eq!(
        read(window.clone()).await,
        [400, 300, 200],
        "both ends count"
    );
    let v3 = JournalQuery {
        door: Some("v3".into()),
        ..all.clone()
    };
    assert_eq!(read(v3).await, [500, 100]);
    let webhook = JournalQuery {
        door: Some("webhook:ses".into()),
        ..of_a.clone()
    };
    assert_eq!(read(webhook).await, [300]);
    let a_since = JournalQuery {
        since: Some(Timestamp::from_nanos(150)),
        until: Some(Timestamp::from_nanos(450)),
        ..of_a.clone()
    };
    assert_eq!(read(a_since).await, [300]);
    assert_eq!(read(JournalQuery::newest_first(2)).await, [500, 400]);
    let oldest = JournalQuery {
        order: JournalOrder::OldestFirst,
        limit: 2,
        ..all.clone()
    };
    assert_eq!(read(oldest).await, [100, 200]);
    assert!(read(JournalQuery::newest_first(0)).await.is_empty());
    // Entries read back as they were appended, actor and record whole.
    let newest = backend
        .journal(&t, &JournalQuery::newest_first(1))
        .await
        .expect("journal");
    let expected = copied(&t, 500, Door::V3, Some("a@x.com"));
    assert_eq!(
        JournalEntry {
            position: newest[0].position,
            ..expected
        },
        newest[0]
    );
    let other = backend
        .journal(&tenant("other"), &all)
        .await
        .expect("journal");
    assert_eq!(times(&other), [250]);
}

/// Reads every page of `query`, each `page` long, following the cursor.
async fn walk(backend: &Arc<dyn Backend>, t: &TenantId, mut query: JournalQuery) -> Vec<i64> {
    let mut seen = Vec::new();
    loop {
        let page = backend.journal(t, &query).await.expect("journal");
        seen.extend(times(&page));
        match page.last() {
            Some(last) if page.len() == query.limit as usize => {
                query.cursor = Some(last.position);
            }
            _ => return seen,
        }
    }
}

pub async fn history_pages_by_cursor_both_ways(backend: Arc<dyn Backend>) {
    let t = five_entries(&backend).await;
    let newest = JournalQuery::newest_first(2);
    assert_eq!(
        walk(&backend, &t, newest.clone()).await,
        [500, 400, 300, 200, 100]
    );
    let oldest = JournalQuery {
        order: JournalOrder::OldestFirst,
        ..newest.clone()
    };
    assert_eq!(
        walk(&backend, &t, oldest.clone()).await,
        [100, 200, 300, 400, 500]
    );
    let of_a = JournalQuery {
        email: Some(email("a@x.com")),
        limit: 1,
        ..newest.clone()
    };
    assert_eq!(walk(&backend, &t, of_a.clone()).await, [500, 300, 100]);
    let of_a_oldest = JournalQuery {
        order: JournalOrder::OldestFirst,
        ..of_a
    };
    assert_eq!(walk(&backend, &t, of_a_oldest).await, [100, 300, 500]);
    // A cursor is strictly past its entry, whichever way the walk goes.
    let all = backend
        .journal(&t, &JournalQuery::newest_first(100))
        .await
        .expect("journal");
    let middle = all[2].position;
    let below = JournalQuery {
        cursor: Some(middle),
        ..JournalQuery::newest_first(100)
    };
    assert_eq!(
        times(&backend.journal(&t, &below).await.expect("journal")),
        [200, 100]
    );
    let above = JournalQuery {
        order: JournalOrder::OldestFirst,
        ..below
    };
    assert_eq!(
        times(&backend.journal(&t, &above).await.expect("journal")),
        [400, 500]
    );
}

pub async fn pruning_deletes_only_old_entries_a_bounded_step_at_a_time(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let mut entries: Vec<JournalEntry> = (100..110)
        .map(|at| copied(&t, at, Door::V3, Some("a@x.com")))
        .collect();
    // Written later but stamped earlier (a clock set back): pruning goes
    // oldest first by position and stops at the first young entry, as the
    // memory store does, so this one waits for the entries before it.
    entries.push(copied(&t, 50, Door::V3, Some("b@x.com")));
    backend.append_journal(entries).await.expect("append");
    let before = Timestamp::from_nanos(105);
    assert_eq!(backend.prune_journal(before, 3).await.expect("prune"), 3);
    assert_eq!(backend.prune_journal(before, 100).await.expect("prune"), 2);
    assert_eq!(backend.prune_journal(before, 100).await.expect("prune"), 0);
    assert_eq!(
        backend
            .prune_journal(Timestamp::from_nanos(1_000), 0)
            .await
            .expect("prune"),
        0
    );
    let left = backend.journal_all(None, 100).await.expect("journal");
    assert_eq!(times(&left), [105, 106, 107, 108, 109, 50]);
    // Pruning everything leaves positions to go on increasing.
    let last = left.last().expect("entries").position;
    assert_eq!(
        backend
            .prune_journal(Timestamp::from_nanos(1_000), 100)
            .await
            .expect("prune"),
        6
    );
    add(&backend, &t, vec![hard("c@x.com", 1)]).await;
    let after = backend.journal_all(None, 100).await.expect("journal");
    assert_eq!(after.len(), 1);
    assert!(after[0].position > last, "{after:?} after {last:?}");
}

pub async fn appended_entries_keep_their_order_and_get_new_positions(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let other = tenant("other");
    add(&backend, &t, vec![hard("live@x.com", 1)]).await;
    let live = backend.journal_all(None, 10).await.expect("journal");
    assert_eq!(live.len(), 1);
    let copies = vec![
        copied(&t, 300, Door::COPY, Some("a@x.com")),
        copied(&other, 100, Door::V3, None),
        copied(&t, 200, Door::webhook("mailgun"), Some("b@x.com")),
    ];
    backend
        .append_journal(copies.clone())
        .await
        .expect("append");
    let all = backend.journal_all(None, 10).await.expect("journal");
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(all[0], live[0]);
    for (read, written) in all[1..].iter().zip(&copies) {
        assert_eq!(
            read,
            &JournalEntry {
                position: read.position,
                ..written.clone()
            }
        );
    }
    // journal_all pages by position over every tenant.
    let page = backend
        .journal_all(Some(all[1].position), 1)
        .await
        .expect("journal");
    assert_eq!(page, [all[2].clone()]);
    assert!(
        backend
            .journal_all(Some(all[3].position), 10)
            .await
            .expect("journal")
            .is_empty()
    );
}

pub async fn a_refused_change_journals_nothing(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let news = backend
        .create_group(&t, new_group("news", "News", true), &admin())
        .await
        .expect("create");
    backend
        .create_group(&t, new_group("promo", "Promo", false), &admin())
        .await
        .expect("create");
    let journaled = history(&backend, &t).await;
    // A new default whose key is taken: the old default keeps its flag, and
    // no entry says otherwise.
    let taken = backend
        .create_group(&t, new_group("news", "Other", true), &admin())
        .await;
    assert!(
        matches!(taken, Err(EngineError::GroupKeyTaken(_))),
        "{taken:?}"
    );
    let renamed = GroupChanges {
        name: Some("News".into()),
        is_default: Some(true),
        ..GroupChanges::default()
    };
    let promo = backend
        .group_by_key(&t, &GroupKey::parse("promo").expect("key"))
        .await
        .expect("read")
        .expect("there");
    let taken = backend.update_group(&t, promo.id, renamed, &admin()).await;
    assert!(
        matches!(taken, Err(EngineError::GroupNameTaken(_))),
        "{taken:?}"
    );
    assert_eq!(
        backend
            .update_group(&t, GroupId(9_999), GroupChanges::default(), &admin())
            .await
            .expect("update"),
        None
    );
    assert_eq!(
        backend
            .remove_ids(&t, &[SuppressionId(9_999)], &admin())
            .await
            .expect("remove"),
        0
    );
    assert_eq!(
        backend
            .remove_matching(&t, &by_address("nobody@x.com"), &admin())
            .await
            .expect("remove"),
        0
    );
    assert_eq!(history(&backend, &t).await, journaled);
    let news_now = backend.group(&t, news.id).await.expect("read");
    assert_eq!(news_now, Some(news));
}

pub async fn a_restore_puts_back_what_a_bulk_delete_took(backend: Arc<dyn Backend>) {
    let t = tenant("acme");
    let engine = Engine::new(Arc::clone(&backend));
    let group = backend
        .create_group(&t, new_group("news", "News", false), &admin())
        .await
        .expect("create");
    let originals = add(&backend, &t, one_of_each(group.id)).await;
    let since = Engine::now();
    let everything = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    backend
        .remove_matching(&t, &everything, &api_actor())
        .await
        .expect("remove");
    let window = RestoreWindow {
        since,
        until: Engine::now(),
        email: None,
    };
    let restorer = Actor::new(Door::RESTORE).with_key("ops");
    let dry = engine
        .restore(&t, &window, true, &restorer)
        .await
        .expect("dry run");
    assert_eq!((dry.restored, dry.removed), (6, 0));
    assert_eq!(backend.count(&t, &everything).await.expect("count"), 0);
    let done = engine
        .restore(&t, &window, false, &restorer)
        .await
        .expect("restore");
    assert_eq!(done, dry);
    for original in &originals {
        let now = backend.entries(&t, &original.email).await.expect("entries");
        assert_eq!(now, vec![original.clone()]);
    }
    let restored: Vec<JournalEntry> = history(&backend, &t)
        .await
        .into_iter()
        .filter(|e| e.actor == restorer)
        .collect();
    assert_eq!(restored.len(), 6);
    assert!(restored.iter().all(|e| e.operation == Operation::Added));
}

// What only the SQLite store promises: the journal is in the file, and
// a command that fails inside a group-committed batch takes its entries
// with it.

fn open(path: &std::path::Path) -> hush_store::SqliteBackend {
    hush_store::SqliteBackend::open(hush_store::SqliteOptions::new(path)).expect("open")
}

#[tokio::test]
async fn the_journal_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("hush.db");
    let t = tenant("acme");
    let written = {
        let backend: Arc<dyn Backend> = Arc::new(open(&path));
        let group = backend
            .create_group(&t, new_group("news", "News", true), &admin())
            .await
            .expect("create");
        let added = add(&backend, &t, one_of_each(group.id)).await;
        backend
            .remove_ids(&t, &[added[0].id], &api_actor())
            .await
            .expect("remove");
        backend.journal_all(None, 100).await.expect("journal")
    };
    assert_eq!(written.len(), 8);
    let backend: Arc<dyn Backend> = Arc::new(open(&path));
    assert_eq!(
        backend.journal_all(None, 100).await.expect("journal"),
        written
    );
    // New entries go on after the old ones.
    add(&backend, &t, vec![hard("later@x.com", 1)]).await;
    let last = backend
        .journal(&t, &JournalQuery::newest_first(1))
        .await
        .expect("journal");
    assert!(last[0].position > written[7].position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_in_a_batch_leaves_no_entry() {
    let dir = tempfile::tempdir().expect("dir");
    let backend = Arc::new(open(&dir.path().join("hush.db")));
    let t = tenant("acme");
    backend
        .create_group(&t, new_group("news", "News", true), &admin())
        .await
        .expect("create");
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..64 {
        let backend = Arc::clone(&backend);
        let t = t.clone();
        tasks.spawn(async move {
            if n % 4 == 0 {
                // The key is taken: this command rolls back alone, in a
                // batch with the adds around it.
                let taken = backend
                    .create_group(&t, new_group("news", &format!("Other {n}"), true), &admin())
                    .await;
                assert!(
                    matches!(taken, Err(EngineError::GroupKeyTaken(_))),
                    "{taken:?}"
                );
            } else {
                add_one(&backend, &t, n).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    let entries = backend.journal_all(None, 1_000).await.expect("journal");
    assert_eq!(
        operations(&entries),
        [vec![Operation::GroupCreated], vec![Operation::Added; 48]].concat()
    );
    let mut addresses: Vec<&str> = entries[1..]
        .iter()
        .map(|e| suppression_of(e).email.as_str())
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), 48, "one entry per add");
}

async fn add_one(backend: &hush_store::SqliteBackend, t: &TenantId, n: usize) {
    let outcome = backend
        .add(t, vec![hard(&format!("r{n}@x.com"), 1)], &api_actor())
        .await
        .expect("add");
    assert!(matches!(outcome[0], AddOutcome::Added { new: true, .. }));
}

/// Each address's history, newest first, as operations and ids.
async fn address_histories(
    backend: &Arc<dyn Backend>,
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

/// A file journaled by the release with migration 5 (a row per entry,
/// every suppression's found by its address) reads the same after
/// migrations 6 to 8, and the changes made afterwards, packed, join it.
#[tokio::test]
async fn a_journal_from_migration_5_keeps_every_address_history() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("hush.db");
    let t = tenant("acme");
    let addresses = ["a@x.com", "b@x.com"];
    let (first, before, entries) = {
        let backend: Arc<dyn Backend> = Arc::new(open(&path));
        let first = add(&backend, &t, vec![hard("a@x.com", 1), hard("b@x.com", 1)]).await;
        backend
            .remove_ids(&t, &[first[0].id], &admin())
            .await
            .expect("remove");
        add(&backend, &t, vec![hard("a@x.com", 2)]).await;
        let before = address_histories(&backend, &t, &addresses).await;
        assert_eq!(before[0].len(), 3, "{before:?}");
        (first, before, history(&backend, &t).await)
    };
    let conn = rusqlite::Connection::open(&path).expect("file");
    // Migration 5's table, holding the same entries as that release wrote
    // them: one row each, with its address and whole record.
    conn.execute_batch(
        "DROP TABLE journal; DROP TABLE webhook_receipts; DROP TABLE mirror_state; DROP TABLE mirror_failures; \
         CREATE TABLE journal (\
             position INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, \
             at INTEGER NOT NULL, operation TEXT NOT NULL, email TEXT, door TEXT NOT NULL, \
             key_name TEXT, request_id TEXT, event_id TEXT, record TEXT NOT NULL); \
         CREATE INDEX journal_by_tenant ON journal (tenant, position); \
         CREATE INDEX journal_by_address ON journal (tenant, email, position); \
         PRAGMA user_version = 5;",
    )
    .expect("back to migration 5");
    for entry in &entries {
        conn.execute(
            "INSERT INTO journal (position, tenant, at, operation, email, door, key_name, \
             request_id, event_id, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                entry.position.0,
                entry.tenant.as_str(),
                entry.at.as_nanos(),
                entry.operation.as_str(),
                entry.record.email().map(Email::as_str),
                entry.actor.door.as_str(),
                entry.actor.key,
                entry.actor.request_id,
                entry.actor.event_id,
                entry.record.to_stored(),
            ],
        )
        .expect("an entry as migration 5 stored it");
    }
    drop(conn);
    let backend: Arc<dyn Backend> = Arc::new(open(&path));
    assert_eq!(address_histories(&backend, &t, &addresses).await, before);
    backend
        .remove_ids(&t, &[first[1].id], &admin())
        .await
        .expect("remove b");
    add(&backend, &t, vec![hard("b@x.com", 3)]).await;
    let after = address_histories(&backend, &t, &addresses).await;
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1].len(), 3, "{after:?}");
    assert_eq!(
        after[1][1..],
        [
            (Operation::Removed, first[1].id),
            (Operation::Added, first[1].id)
        ]
    );
}

/// Reads a tenant's whole journal in pages of `page`, both ways, by cursor.
async fn paged(
    backend: &Arc<dyn Backend>,
    t: &TenantId,
    order: JournalOrder,
    page: u32,
) -> Vec<JournalEntry> {
    let mut all: Vec<JournalEntry> = Vec::new();
    loop {
        let query = JournalQuery {
            order,
            cursor: all.last().map(|e| e.position),
            ..JournalQuery::newest_first(page)
        };
        let got = backend.journal(t, &query).await.expect("journal");
        let done = got.len() < page as usize;
        all.extend(got);
        if done {
            return all;
        }
    }
}

/// An add's entries are journaled packed, several packs for a large add:
/// each entry reads back as it was added, with a position of its own, by
/// every way of reading (pages both ways from inside a pack, one address,
/// the copy's walk); one removed from the middle of a pack still reads
/// back whole; pruning everything never lets a position be given again.
#[tokio::test]
async fn packed_adds_read_back_entry_by_entry() {
    let dir = tempfile::tempdir().expect("dir");
    let backend: Arc<dyn Backend> = Arc::new(open(&dir.path().join("hush.db")));
    let t = tenant("acme");
    let items: Vec<NewSuppression> = (0..9_000)
        .map(|n| hard(&format!("user{n}@x.com"), n))
        .collect();
    let added = add(&backend, &t, items).await;
    let all = history(&backend, &t).await;
    assert_eq!(all.len(), 9_000);
    let records: Vec<&Suppression> = all.iter().map(suppression_of).collect();
    assert_eq!(records, added.iter().collect::<Vec<_>>());
    assert!(all.iter().all(|e| e.operation == Operation::Added));
    assert!(
        all.windows(2)
            .all(|w| w[1].position.0 == w[0].position.0 + 1),
        "one position each, in order"
    );
    for page in [97, 4_096, 5_000] {
        assert_eq!(
            paged(&backend, &t, JournalOrder::OldestFirst, page).await,
            all
        );
        let mut newest = paged(&backend, &t, JournalOrder::NewestFirst, page).await;
        newest.reverse();
        assert_eq!(newest, all, "newest first in pages of {page}");
    }
    let mut walked = Vec::new();
    loop {
        let got = backend
            .journal_all(walked.last().map(|e: &JournalEntry| e.position), 333)
            .await
            .expect("journal_all");
        let done = got.len() < 333;
        walked.extend(got);
        if done {
            break;
        }
    }
    assert_eq!(walked, all, "the copy's walk");

    // One entry of the middle of the first pack removed.
    let middle = &added[1_234];
    backend
        .remove_ids(&t, &[middle.id], &admin())
        .await
        .expect("remove");
    let again = history(&backend, &t).await;
    assert_eq!(&again[..9_000], &all[..], "the pack reads back the same");
    assert_eq!(again[9_000].operation, Operation::Removed);
    let of_middle = backend
        .journal(
            &t,
            &JournalQuery {
                email: Some(middle.email.clone()),
                ..JournalQuery::newest_first(10)
            },
        )
        .await
        .expect("history of one address");
    assert_eq!(of_middle, vec![again[9_000].clone(), all[1_234].clone()]);
    let of_last = backend
        .journal(
            &t,
            &JournalQuery {
                email: Some(added[8_999].email.clone()),
                ..JournalQuery::newest_first(10)
            },
        )
        .await
        .expect("history of one address");
    assert_eq!(of_last, vec![all[8_999].clone()]);

    // Everything pruned: the next entry still comes after every one given.
    let last = again.last().expect("entries").position;
    let future = Timestamp::from_nanos(Engine::now().as_nanos() + 1_000_000_000);
    let mut pruned = 0;
    loop {
        let step = backend.prune_journal(future, 5_000).await.expect("prune");
        if step == 0 {
            break;
        }
        pruned += step;
    }
    assert_eq!(pruned, 9_001, "entries, not rows");
    assert!(history(&backend, &t).await.is_empty());
    add(&backend, &t, vec![hard("late@x.com", 1)]).await;
    let late = history(&backend, &t).await;
    assert_eq!(late.len(), 1);
    assert!(
        late[0].position > last,
        "{:?} after {last:?}",
        late[0].position
    );

    // And across a restart of the file, once everything is pruned again.
    assert!(backend.prune_journal(future, 5_000).await.expect("prune") > 0);
    drop(backend);
    let backend: Arc<dyn Backend> = Arc::new(open(&dir.path().join("hush.db")));
    add(&backend, &t, vec![hard("later@x.com", 1)]).await;
    let later = history(&backend, &t).await;
    assert_eq!(later.len(), 1);
    assert!(
        later[0].position > late[0].position,
        "{later:?} after {late:?}"
    );
}
