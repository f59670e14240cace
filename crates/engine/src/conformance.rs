//! The backend conformance suite, written once and run against every
//! backend: each backend's tests invoke [`crate::backend_conformance!`] with a
//! factory that makes a fresh, empty backend.
//!
//! Every check asserts what a client of any API would see if the backend got
//! it wrong.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::TryStreamExt as _;
use hush_model::{
    BounceClass, Email, EmailMatch, GroupChanges, GroupKey, Kind, KindFamily, KindSet, ListFilter,
    NewGroup, NewSuppression, Origin, PageRequest, Scope, ScopeFilter, StreamType, Suppression,
    TenantId, Timestamp, UnsubscribeHandling,
};

use crate::{AddOutcome, Backend, Engine, EngineError, GroupSpec};

/// Who the suite's changes are journaled as.
pub fn tester() -> hush_model::Actor {
    hush_model::Actor::new(hush_model::Door::ADMIN).with_key("conformance")
}

mod events;
pub use events::webhook_events_apply_once_per_key;
mod journal;
pub use journal::{
    engine_restore_undoes_adds_and_group_changes, engine_restores_a_bulk_delete_exactly,
    engine_restores_one_address, journal_appends_carried_entries_in_order,
    journal_finds_every_entry_of_an_address, journal_prunes_old_entries_in_bounded_steps,
    journal_reads_filter_and_page, journal_records_each_change_with_its_actor,
    put_back_ids_stay_ahead_of_new_ones,
};

// The guarded changes' checks live beside their rules.
pub use crate::authority::conformance::{
    engine_guards_adds_by_authority, engine_guards_removal_by_authority,
};

/// Generates one `#[tokio::test]` per check for a backend factory: an
/// expression callable as `factory().await` that yields `Arc<dyn Backend>`.
#[macro_export]
macro_rules! backend_conformance {
    ($factory:expr) => {
        $crate::backend_conformance!(@checks $factory;
            add_is_idempotent_and_keeps_id_and_time,
            add_reports_each_item_in_order,
            identity_is_scope_email_and_family,
            kind_details_round_trip,
            ids_increase,
            entries_cover_every_scope_newest_first,
            tenants_never_see_each_other,
            list_filters_by_kind_and_scope,
            list_filters_by_email_origin_and_time,
            list_pages_with_a_stable_order_and_total,
            count_agrees_with_list,
            scan_walks_everything_once,
            remove_matching_removes_only_what_matches,
            remove_ids_removes_chosen_entries,
            groups_are_created_and_read,
            group_keys_and_names_are_unique_per_tenant,
            default_flag_moves,
            groups_update_and_archive,
            deleting_a_group_removes_its_suppressions,
            adding_to_an_unknown_group_is_refused,
            engine_bootstraps_the_default_stream,
            engine_derives_unique_group_keys,
            engine_checks_group_fields,
            engine_may_send,
            engine_splits_large_adds,
            engine_scan_streams_in_batches,
            engine_guards_removal_by_authority,
            engine_guards_adds_by_authority,
            list_matches_email_patterns,
            list_collapses_to_one_row_per_address,
            odd_but_real_addresses_round_trip,
            journal_records_each_change_with_its_actor,
            journal_reads_filter_and_page,
            engine_restores_a_bulk_delete_exactly,
            engine_restore_undoes_adds_and_group_changes,
            engine_restores_one_address,
            journal_prunes_old_entries_in_bounded_steps,
            journal_appends_carried_entries_in_order,
            put_back_ids_stay_ahead_of_new_ones,
            journal_finds_every_entry_of_an_address,
            webhook_events_apply_once_per_key
        );
    };
    (@checks $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let backend: ::std::sync::Arc<dyn $crate::Backend> = ($factory)().await;
                $crate::conformance::$check(backend).await;
            }
        )*
    };
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds)
}

fn item(address: &str, scope: Scope, kind: Kind, origin: Origin, created: i64) -> NewSuppression {
    NewSuppression {
        email: email(address),
        scope,
        kind,
        origin,
        created_at: at(created),
    }
}

fn bounce(address: &str, class: BounceClass, created: i64) -> NewSuppression {
    item(
        address,
        Scope::Global,
        Kind::Bounce {
            class,
            status: Some("5.1.1".into()),
            reason: Some("550 5.1.1 User unknown".into()),
        },
        Origin::Customer,
        created,
    )
}

fn added(outcome: &AddOutcome) -> (&Suppression, bool) {
    match outcome {
        AddOutcome::Added { suppression, new } => (suppression, *new),
        AddOutcome::UnknownGroup(id) => panic!("expected an add, got unknown group {id}"),
        AddOutcome::Refused { message } => panic!("expected an add, got a refusal: {message}"),
    }
}

async fn add_all(
    backend: &Arc<dyn Backend>,
    t: &TenantId,
    items: Vec<NewSuppression>,
) -> Vec<Suppression> {
    backend
        .add(t, items, &tester())
        .await
        .unwrap()
        .iter()
        .map(|o| added(o).0.clone())
        .collect()
}

fn new_group(key: &str, name: &str) -> NewGroup {
    NewGroup {
        key: GroupKey::parse(key).unwrap(),
        name: name.into(),
        description: String::new(),
        is_default: false,
        stream_type: StreamType::Broadcasts,
        unsubscribe_handling: UnsubscribeHandling::Postmark,
        created_at: at(1_700_000_000),
    }
}

fn all_global() -> ListFilter {
    ListFilter::new(KindSet::ALL, ScopeFilter::Global)
}

fn page(limit: u32, offset: u64) -> PageRequest {
    PageRequest { limit, offset }
}

fn emails(items: &[Suppression]) -> Vec<&str> {
    items.iter().map(|s| s.email.as_str()).collect()
}

pub async fn add_is_idempotent_and_keeps_id_and_time(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let first = backend
        .add(
            &t,
            vec![bounce("a@x.com", BounceClass::Hard, 100)],
            &tester(),
        )
        .await
        .unwrap();
    let (stored, new) = added(&first[0]);
    assert!(new, "first add is new");
    assert_eq!(stored.created_at, at(100));
    let again = backend
        .add(
            &t,
            vec![bounce("A@X.com", BounceClass::Hard, 999)],
            &tester(),
        )
        .await
        .unwrap();
    let (second, new) = added(&again[0]);
    assert!(!new, "second add of the same identity is not new");
    assert_eq!(second.id, stored.id, "same id");
    assert_eq!(second.created_at, at(100), "creation time is kept");
    let listed = backend.list(&t, &all_global(), page(10, 0)).await.unwrap();
    assert_eq!(listed.total, 1, "one entry after two adds");
}

pub async fn add_reports_each_item_in_order(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let outcomes = backend
        .add(
            &t,
            vec![
                bounce("b@x.com", BounceClass::Hard, 1),
                bounce("a@x.com", BounceClass::Hard, 2),
                bounce("b@x.com", BounceClass::Soft, 3),
            ],
            &tester(),
        )
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 3);
    let (b, b_new) = added(&outcomes[0]);
    let (a, a_new) = added(&outcomes[1]);
    let (b_again, b_again_new) = added(&outcomes[2]);
    assert_eq!((b.email.as_str(), b_new), ("b@x.com", true));
    assert_eq!((a.email.as_str(), a_new), ("a@x.com", true));
    assert_eq!(
        b_again.id, b.id,
        "a duplicate within one call is the same entry"
    );
    assert!(!b_again_new);
}

pub async fn identity_is_scope_email_and_family(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let g = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    let stored = add_all(
        &backend,
        &t,
        vec![
            bounce("a@x.com", BounceClass::Hard, 1),
            bounce("a@x.com", BounceClass::Block, 2),
            item(
                "a@x.com",
                Scope::Global,
                Kind::SpamComplaint { source: None },
                Origin::Recipient,
                3,
            ),
            item(
                "a@x.com",
                Scope::Global,
                Kind::Unsubscribe,
                Origin::Customer,
                4,
            ),
            item("a@x.com", Scope::Global, Kind::Manual, Origin::Customer, 5),
            item(
                "a@x.com",
                Scope::Global,
                Kind::Invalid { reason: None },
                Origin::Recipient,
                6,
            ),
            item(
                "a@x.com",
                Scope::Group(g.id),
                Kind::Unsubscribe,
                Origin::Customer,
                7,
            ),
        ],
    )
    .await;
    assert_eq!(
        stored[0].id, stored[1].id,
        "bounce classes share one identity"
    );
    let distinct: HashSet<_> = stored.iter().map(|s| s.id).collect();
    assert_eq!(
        distinct.len(),
        6,
        "six identities: bounce, spam, unsub, manual, invalid, group unsub"
    );
    let entries = backend.entries(&t, &email("a@x.com")).await.unwrap();
    assert_eq!(entries.len(), 6);
}

pub async fn kind_details_round_trip(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let kinds = [
        (
            "b@x.com",
            Kind::Bounce {
                class: BounceClass::Soft,
                status: Some("4.2.2".into()),
                reason: Some("mailbox full ".into()),
            },
            Origin::Recipient,
        ),
        (
            "i@x.com",
            Kind::Invalid {
                reason: Some("bad domain".into()),
            },
            Origin::Admin,
        ),
        (
            "s@x.com",
            Kind::SpamComplaint {
                source: Some("feedback_loop".into()),
            },
            Origin::Recipient,
        ),
        ("u@x.com", Kind::Unsubscribe, Origin::Customer),
        ("m@x.com", Kind::Manual, Origin::Admin),
        (
            "n@x.com",
            Kind::Bounce {
                class: BounceClass::Block,
                status: None,
                reason: None,
            },
            Origin::Customer,
        ),
    ];
    let items = kinds
        .iter()
        .map(|(a, k, o)| item(a, Scope::Global, k.clone(), *o, 1_700_000_000))
        .collect();
    add_all(&backend, &t, items).await;
    for (address, kind, origin) in kinds {
        let entries = backend.entries(&t, &email(address)).await.unwrap();
        assert_eq!(entries.len(), 1, "{address}");
        assert_eq!(entries[0].kind, kind, "{address}");
        assert_eq!(entries[0].origin, origin, "{address}");
        assert_eq!(entries[0].tenant, t);
        assert_eq!(entries[0].created_at, at(1_700_000_000));
    }
    // Nanosecond precision survives the store.
    let precise = NewSuppression {
        created_at: Timestamp::from_nanos(1_700_000_000_123_456_789),
        ..bounce("p@x.com", BounceClass::Hard, 0)
    };
    add_all(&backend, &t, vec![precise]).await;
    let entries = backend.entries(&t, &email("p@x.com")).await.unwrap();
    assert_eq!(entries[0].created_at.as_nanos(), 1_700_000_000_123_456_789);
}

pub async fn ids_increase(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let first = add_all(&backend, &t, vec![bounce("a@x.com", BounceClass::Hard, 1)]).await;
    let second = add_all(
        &backend,
        &t,
        vec![
            bounce("b@x.com", BounceClass::Hard, 1),
            bounce("c@x.com", BounceClass::Hard, 1),
        ],
    )
    .await;
    assert!(second[0].id > first[0].id);
    assert!(second[1].id > second[0].id);
}

pub async fn entries_cover_every_scope_newest_first(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let g = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    add_all(
        &backend,
        &t,
        vec![
            item(
                "a@x.com",
                Scope::Group(g.id),
                Kind::Unsubscribe,
                Origin::Customer,
                10,
            ),
            bounce("a@x.com", BounceClass::Hard, 30),
            item(
                "a@x.com",
                Scope::Global,
                Kind::SpamComplaint { source: None },
                Origin::Recipient,
                20,
            ),
            bounce("other@x.com", BounceClass::Hard, 40),
        ],
    )
    .await;
    let entries = backend.entries(&t, &email("a@x.com")).await.unwrap();
    let times: Vec<i64> = entries
        .iter()
        .map(|e| e.created_at.unix_seconds())
        .collect();
    assert_eq!(times, vec![30, 20, 10]);
    assert!(
        backend
            .entries(&t, &email("none@x.com"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn tenants_never_see_each_other(backend: Arc<dyn Backend>) {
    let (one, two) = (tenant("one"), tenant("two"));
    add_all(
        &backend,
        &one,
        vec![bounce("a@x.com", BounceClass::Hard, 1)],
    )
    .await;
    let g = backend
        .create_group(&one, new_group("news", "News"), &tester())
        .await
        .unwrap();
    assert!(
        backend
            .entries(&two, &email("a@x.com"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        backend
            .list(&two, &all_global(), page(10, 0))
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(backend.count(&two, &all_global()).await.unwrap(), 0);
    assert!(backend.group(&two, g.id).await.unwrap().is_none());
    assert!(backend.groups(&two).await.unwrap().is_empty());
    assert!(
        backend
            .update_group(&two, g.id, GroupChanges::default(), &tester())
            .await
            .unwrap()
            .is_none()
    );
    assert!(!backend.delete_group(&two, g.id, &tester()).await.unwrap());
    assert_eq!(
        backend
            .remove_matching(&two, &all_global(), &tester())
            .await
            .unwrap(),
        0
    );
    let ids: Vec<_> = backend
        .entries(&one, &email("a@x.com"))
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(backend.remove_ids(&two, &ids, &tester()).await.unwrap(), 0);
    // The same identity in another tenant is another entry.
    let theirs = add_all(
        &backend,
        &two,
        vec![bounce("a@x.com", BounceClass::Hard, 1)],
    )
    .await;
    assert_ne!(theirs[0].id, ids[0]);
    assert_eq!(
        backend
            .entries(&one, &email("a@x.com"))
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn list_filters_by_kind_and_scope(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let g = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    let h = backend
        .create_group(&t, new_group("promo", "Promo"), &tester())
        .await
        .unwrap();
    add_all(
        &backend,
        &t,
        vec![
            bounce("hard@x.com", BounceClass::Hard, 1),
            bounce("soft@x.com", BounceClass::Soft, 2),
            bounce("block@x.com", BounceClass::Block, 3),
            item(
                "spam@x.com",
                Scope::Global,
                Kind::SpamComplaint { source: None },
                Origin::Recipient,
                4,
            ),
            item(
                "unsub@x.com",
                Scope::Global,
                Kind::Unsubscribe,
                Origin::Recipient,
                5,
            ),
            item(
                "manual@x.com",
                Scope::Global,
                Kind::Manual,
                Origin::Customer,
                6,
            ),
            item(
                "g@x.com",
                Scope::Group(g.id),
                Kind::Unsubscribe,
                Origin::Customer,
                7,
            ),
            item(
                "h@x.com",
                Scope::Group(h.id),
                Kind::Manual,
                Origin::Customer,
                8,
            ),
        ],
    )
    .await;
    let list = |kinds: KindSet, scope: ScopeFilter| {
        let backend = Arc::clone(&backend);
        let t = t.clone();
        async move {
            let page = backend
                .list(&t, &ListFilter::new(kinds, scope), page(50, 0))
                .await
                .unwrap();
            page.items
                .iter()
                .map(|s| s.email.as_str().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(KindSet::family(KindFamily::Bounce), ScopeFilter::Global).await,
        ["block@x.com", "soft@x.com", "hard@x.com"]
    );
    assert_eq!(
        list(
            KindSet::bounce_class(BounceClass::Hard).with(KindSet::bounce_class(BounceClass::Soft)),
            ScopeFilter::Global
        )
        .await,
        ["soft@x.com", "hard@x.com"]
    );
    assert_eq!(
        list(KindSet::family(KindFamily::Spam), ScopeFilter::Global).await,
        ["spam@x.com"]
    );
    let unsub_or_manual =
        KindSet::family(KindFamily::Unsubscribe).with(KindSet::family(KindFamily::Manual));
    assert_eq!(
        list(unsub_or_manual, ScopeFilter::Global).await,
        ["manual@x.com", "unsub@x.com"]
    );
    assert_eq!(
        list(unsub_or_manual, ScopeFilter::Group(g.id)).await,
        ["g@x.com"]
    );
    assert_eq!(
        list(unsub_or_manual, ScopeFilter::GlobalAndGroup(h.id)).await,
        ["h@x.com", "manual@x.com", "unsub@x.com"]
    );
    assert_eq!(list(KindSet::ALL, ScopeFilter::Any).await.len(), 8);
    assert!(list(KindSet::NONE, ScopeFilter::Any).await.is_empty());
}

pub async fn list_filters_by_email_origin_and_time(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    add_all(
        &backend,
        &t,
        vec![
            item(
                "sales@x.com",
                Scope::Global,
                Kind::Manual,
                Origin::Customer,
                100,
            ),
            item(
                "salesdept@y.com",
                Scope::Global,
                Kind::Manual,
                Origin::Recipient,
                200,
            ),
            item(
                "marketing@sales.com",
                Scope::Global,
                Kind::Manual,
                Origin::Admin,
                300,
            ),
            item(
                "100%_odd@x.com",
                Scope::Global,
                Kind::Manual,
                Origin::Admin,
                400,
            ),
        ],
    )
    .await;
    let run = |configure: Box<dyn Fn(&mut ListFilter) + Send>| {
        let backend = Arc::clone(&backend);
        let t = t.clone();
        async move {
            let mut filter = all_global();
            configure(&mut filter);
            let page = backend.list(&t, &filter, page(50, 0)).await.unwrap();
            let count = backend.count(&t, &filter).await.unwrap();
            assert_eq!(page.total, count, "total and count agree for {filter:?}");
            page.items
                .iter()
                .map(|s| s.email.as_str().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        run(Box::new(
            |f| f.email = Some(EmailMatch::prefix("SALES").expect("a usable filter"))
        ))
        .await,
        ["salesdept@y.com", "sales@x.com"]
    );
    assert_eq!(
        run(Box::new(|f| f.email = Some(
            EmailMatch::contains("sales").expect("a usable filter")
        )))
        .await,
        ["marketing@sales.com", "salesdept@y.com", "sales@x.com"]
    );
    assert_eq!(
        run(Box::new(
            |f| f.email = Some(EmailMatch::Exact(email("sales@x.com")))
        ))
        .await,
        ["sales@x.com"]
    );
    // Wildcard characters of SQL LIKE are literal in a match.
    assert_eq!(
        run(Box::new(
            |f| f.email = Some(EmailMatch::prefix("100%_").expect("a usable filter"))
        ))
        .await,
        ["100%_odd@x.com"]
    );
    assert!(
        run(Box::new(
            |f| f.email = Some(EmailMatch::prefix("1_0").expect("a usable filter"))
        ))
        .await
        .is_empty()
    );
    assert!(
        run(Box::new(
            |f| f.email = Some(EmailMatch::contains("%").expect("a usable filter"))
        ))
        .await
        .len()
            == 1
    );
    assert_eq!(
        run(Box::new(|f| f.origin = Some(Origin::Recipient))).await,
        ["salesdept@y.com"]
    );
    assert_eq!(
        run(Box::new(|f| {
            f.created_from = Some(at(200));
            f.created_to = Some(at(300));
        }))
        .await,
        ["marketing@sales.com", "salesdept@y.com"],
        "time bounds are inclusive"
    );
    assert_eq!(
        run(Box::new(
            |f| f.created_to = Some(Timestamp::from_nanos(at(100).as_nanos() - 1))
        ))
        .await,
        Vec::<String>::new()
    );
}

pub async fn list_pages_with_a_stable_order_and_total(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    // Equal creation times: order falls back to id, newest first.
    let items = (0..7)
        .map(|i| bounce(&format!("u{i}@x.com"), BounceClass::Hard, 50))
        .collect();
    add_all(&backend, &t, items).await;
    let mut seen = Vec::new();
    for offset in (0..7).step_by(3) {
        let page = backend
            .list(&t, &all_global(), page(3, offset))
            .await
            .unwrap();
        assert_eq!(page.total, 7);
        seen.extend(page.items.iter().map(|s| s.email.as_str().to_owned()));
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("u{i}@x.com")).collect();
    assert_eq!(seen, expected);
    let beyond = backend.list(&t, &all_global(), page(3, 100)).await.unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 7, "the total is the filter's, not the page's");
}

pub async fn count_agrees_with_list(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let items = (0..12)
        .map(|i| {
            bounce(
                &format!("c{i}@x.com"),
                if i % 2 == 0 {
                    BounceClass::Hard
                } else {
                    BounceClass::Soft
                },
                i,
            )
        })
        .collect();
    add_all(&backend, &t, items).await;
    let filter = ListFilter::new(
        KindSet::bounce_class(BounceClass::Soft),
        ScopeFilter::Global,
    );
    assert_eq!(backend.count(&t, &filter).await.unwrap(), 6);
    assert_eq!(
        backend.list(&t, &filter, page(2, 0)).await.unwrap().total,
        6
    );
}

pub async fn scan_walks_everything_once(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    // Several entries share a creation time, so the cursor must use the id.
    let items = (0..25)
        .map(|i| bounce(&format!("s{i}@x.com"), BounceClass::Hard, i / 4))
        .collect();
    let stored = add_all(&backend, &t, items).await;
    let mut cursor = None;
    let mut walked = Vec::new();
    loop {
        let batch = backend.scan(&t, &all_global(), cursor, 4).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 4);
        cursor = batch.last().map(hush_model::ScanCursor::after);
        walked.extend(batch);
    }
    assert_eq!(walked.len(), 25);
    let listed = backend.list(&t, &all_global(), page(100, 0)).await.unwrap();
    assert_eq!(walked, listed.items, "scan and list agree on order");
    let ids: HashSet<_> = walked.iter().map(|s| s.id).collect();
    assert_eq!(ids, stored.iter().map(|s| s.id).collect());
}

pub async fn remove_matching_removes_only_what_matches(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let g = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    add_all(
        &backend,
        &t,
        vec![
            bounce("a@x.com", BounceClass::Hard, 1),
            item(
                "a@x.com",
                Scope::Global,
                Kind::SpamComplaint { source: None },
                Origin::Recipient,
                2,
            ),
            item(
                "a@x.com",
                Scope::Group(g.id),
                Kind::Unsubscribe,
                Origin::Customer,
                3,
            ),
            bounce("b@x.com", BounceClass::Soft, 4),
        ],
    )
    .await;
    let mut filter = ListFilter::new(KindSet::family(KindFamily::Bounce), ScopeFilter::Global);
    filter.email = Some(EmailMatch::Exact(email("a@x.com")));
    assert_eq!(
        backend
            .remove_matching(&t, &filter, &tester())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        backend
            .remove_matching(&t, &filter, &tester())
            .await
            .unwrap(),
        0,
        "already gone"
    );
    let left = backend.entries(&t, &email("a@x.com")).await.unwrap();
    assert_eq!(left.len(), 2, "spam and group entries stay");
    let bounces = ListFilter::new(KindSet::family(KindFamily::Bounce), ScopeFilter::Global);
    assert_eq!(
        backend
            .remove_matching(&t, &bounces, &tester())
            .await
            .unwrap(),
        1,
        "delete all bounces"
    );
    assert_eq!(
        backend
            .count(&t, &ListFilter::new(KindSet::ALL, ScopeFilter::Any))
            .await
            .unwrap(),
        2
    );
}

pub async fn remove_ids_removes_chosen_entries(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let stored = add_all(
        &backend,
        &t,
        vec![
            bounce("a@x.com", BounceClass::Hard, 1),
            bounce("b@x.com", BounceClass::Hard, 2),
        ],
    )
    .await;
    assert_eq!(
        backend
            .remove_ids(&t, &[stored[0].id], &tester())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        backend
            .remove_ids(&t, &[stored[0].id], &tester())
            .await
            .unwrap(),
        0
    );
    let left = backend.list(&t, &all_global(), page(10, 0)).await.unwrap();
    assert_eq!(emails(&left.items), ["b@x.com"]);
}

pub async fn groups_are_created_and_read(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let mut draft = new_group("news", "News");
    draft.description = "Weekly".into();
    draft.stream_type = StreamType::Transactional;
    draft.unsubscribe_handling = UnsubscribeHandling::None;
    let g = backend.create_group(&t, draft, &tester()).await.unwrap();
    assert_eq!(g.key.as_str(), "news");
    assert_eq!(g.name, "News");
    assert_eq!(g.description, "Weekly");
    assert_eq!(g.stream_type, StreamType::Transactional);
    assert_eq!(g.unsubscribe_handling, UnsubscribeHandling::None);
    assert_eq!(g.created_at, at(1_700_000_000));
    assert_eq!(
        (g.archived_at, g.updated_at, g.is_default),
        (None, None, false)
    );
    assert_eq!(backend.group(&t, g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(
        backend.group_by_key(&t, &g.key).await.unwrap(),
        Some(g.clone())
    );
    let h = backend
        .create_group(&t, new_group("promo", "Promo"), &tester())
        .await
        .unwrap();
    assert!(h.id > g.id);
    let all = backend.groups(&t).await.unwrap();
    assert_eq!(
        all.iter().map(|x| x.key.as_str()).collect::<Vec<_>>(),
        ["news", "promo"]
    );
}

pub async fn group_keys_and_names_are_unique_per_tenant(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    let key_taken = backend
        .create_group(&t, new_group("news", "Other"), &tester())
        .await;
    assert!(
        matches!(key_taken, Err(EngineError::GroupKeyTaken(_))),
        "{key_taken:?}"
    );
    let name_taken = backend
        .create_group(&t, new_group("other", "News"), &tester())
        .await;
    assert!(
        matches!(name_taken, Err(EngineError::GroupNameTaken(_))),
        "{name_taken:?}"
    );
    let h = backend
        .create_group(&t, new_group("promo", "Promo"), &tester())
        .await
        .unwrap();
    let rename = GroupChanges {
        name: Some("News".into()),
        ..GroupChanges::default()
    };
    let renamed = backend.update_group(&t, h.id, rename, &tester()).await;
    assert!(
        matches!(renamed, Err(EngineError::GroupNameTaken(_))),
        "{renamed:?}"
    );
    // Another tenant may use both.
    backend
        .create_group(&tenant("t2"), new_group("news", "News"), &tester())
        .await
        .unwrap();
}

pub async fn default_flag_moves(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let mut first = new_group("a", "A");
    first.is_default = true;
    let a = backend.create_group(&t, first, &tester()).await.unwrap();
    assert!(a.is_default);
    let mut second = new_group("b", "B");
    second.is_default = true;
    let b = backend.create_group(&t, second, &tester()).await.unwrap();
    let defaults = |groups: Vec<hush_model::Group>| {
        groups
            .into_iter()
            .filter(|g| g.is_default)
            .map(|g| g.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(defaults(backend.groups(&t).await.unwrap()), [b.id]);
    let back = GroupChanges {
        is_default: Some(true),
        ..GroupChanges::default()
    };
    backend
        .update_group(&t, a.id, back, &tester())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(defaults(backend.groups(&t).await.unwrap()), [a.id]);
    let off = GroupChanges {
        is_default: Some(false),
        ..GroupChanges::default()
    };
    backend
        .update_group(&t, a.id, off, &tester())
        .await
        .unwrap()
        .unwrap();
    assert!(defaults(backend.groups(&t).await.unwrap()).is_empty());
}

pub async fn groups_update_and_archive(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let g = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    let changes = GroupChanges {
        name: Some("Newsletter".into()),
        description: Some("Monthly".into()),
        unsubscribe_handling: Some(UnsubscribeHandling::Custom),
        updated_at: Some(at(1_800_000_000)),
        ..GroupChanges::default()
    };
    let updated = backend
        .update_group(&t, g.id, changes, &tester())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.description.as_str()),
        ("Newsletter", "Monthly")
    );
    assert_eq!(updated.unsubscribe_handling, UnsubscribeHandling::Custom);
    assert_eq!(updated.updated_at, Some(at(1_800_000_000)));
    assert_eq!(
        (updated.key, updated.created_at),
        (g.key.clone(), g.created_at),
        "key and creation time never change"
    );
    let archive = GroupChanges {
        archived_at: Some(Some(at(1_800_000_001))),
        ..GroupChanges::default()
    };
    let archived = backend
        .update_group(&t, g.id, archive, &tester())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(archived.archived_at, Some(at(1_800_000_001)));
    assert_eq!(archived.name, "Newsletter", "untouched fields stay");
    let unarchive = GroupChanges {
        archived_at: Some(None),
        ..GroupChanges::default()
    };
    let back = backend
        .update_group(&t, g.id, unarchive, &tester())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.archived_at, None);
    assert!(
        backend
            .update_group(
                &t,
                hush_model::GroupId(999_999),
                GroupChanges::default(),
                &tester()
            )
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn deleting_a_group_removes_its_suppressions(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let g = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    add_all(
        &backend,
        &t,
        vec![
            item(
                "a@x.com",
                Scope::Group(g.id),
                Kind::Unsubscribe,
                Origin::Customer,
                1,
            ),
            item(
                "a@x.com",
                Scope::Global,
                Kind::Unsubscribe,
                Origin::Customer,
                2,
            ),
        ],
    )
    .await;
    assert!(backend.delete_group(&t, g.id, &tester()).await.unwrap());
    assert!(
        !backend.delete_group(&t, g.id, &tester()).await.unwrap(),
        "second delete finds nothing"
    );
    assert!(backend.group(&t, g.id).await.unwrap().is_none());
    let left = backend.entries(&t, &email("a@x.com")).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].scope, Scope::Global);
}

pub async fn adding_to_an_unknown_group_is_refused(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let other = backend
        .create_group(&tenant("t2"), new_group("news", "News"), &tester())
        .await
        .unwrap();
    let outcomes = backend
        .add(
            &t,
            vec![
                item(
                    "a@x.com",
                    Scope::Group(other.id),
                    Kind::Unsubscribe,
                    Origin::Customer,
                    1,
                ),
                bounce("b@x.com", BounceClass::Hard, 2),
            ],
            &tester(),
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes[0],
        AddOutcome::UnknownGroup(other.id),
        "another tenant's group is unknown"
    );
    assert!(matches!(outcomes[1], AddOutcome::Added { .. }));
    assert!(
        backend
            .entries(&t, &email("a@x.com"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn engine_bootstraps_the_default_stream(backend: Arc<dyn Backend>) {
    let engine = Engine::new(backend);
    let t = tenant("t1");
    engine.bootstrap_tenant(&t).await.unwrap();
    engine.bootstrap_tenant(&t).await.unwrap();
    let groups = engine.groups(&t).await.unwrap();
    assert_eq!(groups.len(), 1, "bootstrapping twice makes one stream");
    assert_eq!(groups[0].key.as_str(), "outbound");
    assert_eq!(groups[0].stream_type, StreamType::Transactional);
    let deleted = engine.delete_group(&t, groups[0].id, &tester()).await;
    assert!(
        matches!(deleted, Err(EngineError::GroupProtected(_))),
        "{deleted:?}"
    );
}

pub async fn engine_derives_unique_group_keys(backend: Arc<dyn Backend>) {
    let engine = Engine::new(backend);
    let t = tenant("t1");
    let spec = |name: &str| GroupSpec {
        key: None,
        name: name.into(),
        description: String::new(),
        is_default: false,
        stream_type: StreamType::Broadcasts,
        unsubscribe_handling: None,
    };
    let a = engine
        .create_group(&t, spec("Weekly News"), &tester())
        .await
        .unwrap();
    let b = engine
        .create_group(&t, spec("Weekly  News!"), &tester())
        .await
        .unwrap();
    let c = engine
        .create_group(&t, spec("weekly news?"), &tester())
        .await
        .unwrap();
    assert_eq!(a.key.as_str(), "weekly-news");
    assert_eq!(b.key.as_str(), "weekly-news-2");
    assert_eq!(c.key.as_str(), "weekly-news-3");
    assert_eq!(
        a.unsubscribe_handling,
        UnsubscribeHandling::Postmark,
        "broadcasts default to Postmark handling"
    );
    let dup = engine
        .create_group(&t, spec("Weekly News"), &tester())
        .await;
    assert!(
        matches!(dup, Err(EngineError::GroupNameTaken(_))),
        "{dup:?}"
    );
}

pub async fn engine_checks_group_fields(backend: Arc<dyn Backend>) {
    let engine = Engine::new(backend);
    let t = tenant("t1");
    let spec = |name: String, description: String| GroupSpec {
        key: None,
        name,
        description,
        is_default: false,
        stream_type: StreamType::Broadcasts,
        unsubscribe_handling: None,
    };
    let empty = engine
        .create_group(&t, spec("  ".into(), String::new()), &tester())
        .await;
    assert!(
        matches!(empty, Err(EngineError::InvalidGroup { field: "name", .. })),
        "{empty:?}"
    );
    let long = engine
        .create_group(&t, spec("n".repeat(101), String::new()), &tester())
        .await;
    assert!(
        matches!(long, Err(EngineError::InvalidGroup { field: "name", .. })),
        "{long:?}"
    );
    let ok = engine
        .create_group(&t, spec("n".repeat(100), "d".repeat(1000)), &tester())
        .await
        .unwrap();
    let wordy = engine
        .create_group(&t, spec("x".into(), "d".repeat(1001)), &tester())
        .await;
    assert!(
        matches!(
            wordy,
            Err(EngineError::InvalidGroup {
                field: "description",
                ..
            })
        ),
        "{wordy:?}"
    );
    let missing = engine.group(&t, hush_model::GroupId(ok.id.0 + 1000)).await;
    assert!(
        matches!(missing, Err(EngineError::GroupNotFound(_))),
        "{missing:?}"
    );
    let updated = engine
        .update_group(&t, ok.id, GroupChanges::default(), &tester())
        .await
        .unwrap();
    assert!(updated.updated_at.is_some(), "updates are stamped");
}

/// Addresses that real mail servers accept, and so bounce, are stored and
/// found again exactly: doubled and edge dots (Japanese carriers), quoted
/// local parts, UTF-8 and IDN domains, domain literals, and characters
/// that are wildcards to SQL or special in a URL.
pub async fn odd_but_real_addresses_round_trip(backend: Arc<dyn Backend>) {
    let engine = Engine::new(Arc::clone(&backend));
    let t = tenant("t1");
    let odd = [
        "a..b@docomo.ne.jp",
        ".dot@ezweb.ne.jp",
        "dot.@ezweb.ne.jp",
        "\"john doe\"@example.com",
        "\"a@b\"@example.com",
        "bob@münchen.de",
        "bob@[192.0.2.1]",
        "100%_x/y?z#w@example.com",
    ];
    let items = odd
        .iter()
        .zip(1..)
        .map(|(a, n)| item(a, Scope::Global, Kind::Unsubscribe, Origin::Customer, n))
        .collect();
    add_all(&backend, &t, items).await;
    for address in odd {
        let found = backend.entries(&t, &email(address)).await.unwrap();
        assert_eq!(
            found.iter().map(|s| s.email.as_str()).collect::<Vec<_>>(),
            [address],
            "{address} is found by itself"
        );
        assert!(
            !engine.may_send(&t, &email(address), None).await.unwrap(),
            "{address} may not be sent to"
        );
        let mut exact = all_global();
        exact.email = Some(EmailMatch::Exact(email(address)));
        let page = backend.list(&t, &exact, page(50, 0)).await.unwrap();
        assert_eq!(page.total, 1, "{address} lists itself alone");
    }
    assert!(
        engine
            .may_send(&t, &email("ab@docomo.ne.jp"), None)
            .await
            .unwrap(),
        "the dots are part of the address"
    );
    // Every spelling of the IDN address finds the one entry.
    for spelling in [
        "bob@xn--mnchen-3ya.de",
        "BOB@MÜNCHEN.DE",
        "bob@mu\u{308}nchen.de",
    ] {
        let found = backend.entries(&t, &email(spelling)).await.unwrap();
        assert_eq!(found.len(), 1, "{spelling}");
        assert_eq!(found[0].email.as_str(), "bob@münchen.de");
        assert!(!engine.may_send(&t, &email(spelling), None).await.unwrap());
    }
}

pub async fn engine_may_send(backend: Arc<dyn Backend>) {
    let engine = Engine::new(Arc::clone(&backend));
    let t = tenant("t1");
    let g = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    let h = backend
        .create_group(&t, new_group("promo", "Promo"), &tester())
        .await
        .unwrap();
    add_all(
        &backend,
        &t,
        vec![
            item(
                "grouped@x.com",
                Scope::Group(g.id),
                Kind::Unsubscribe,
                Origin::Customer,
                1,
            ),
            bounce("bounced@x.com", BounceClass::Soft, 2),
        ],
    )
    .await;
    let may = |address: &'static str, group| {
        let engine = engine.clone();
        let t = t.clone();
        async move { engine.may_send(&t, &email(address), group).await.unwrap() }
    };
    assert!(may("clean@x.com", Some(g.id)).await);
    assert!(
        !may("bounced@x.com", None).await,
        "a global entry blocks all mail"
    );
    assert!(!may("bounced@x.com", Some(h.id)).await);
    assert!(
        !may("grouped@x.com", Some(g.id)).await,
        "a group entry blocks that group"
    );
    assert!(
        may("grouped@x.com", Some(h.id)).await,
        "but not another group"
    );
    assert!(
        may("grouped@x.com", None).await,
        "nor mail outside any group"
    );
}

pub async fn engine_splits_large_adds(backend: Arc<dyn Backend>) {
    let engine = Engine::new(backend);
    let t = tenant("t1");
    let n = crate::ADD_BATCH + 7;
    let items: Vec<_> = (0..n)
        .map(|i| bounce(&format!("bulk{i}@x.com"), BounceClass::Hard, 1))
        .collect();
    let outcomes = engine.add(&t, items, &tester()).await.unwrap();
    assert_eq!(outcomes.len(), n);
    let last = added(&outcomes[n - 1]).0;
    assert_eq!(
        last.email.as_str(),
        format!("bulk{}@x.com", n - 1),
        "order is kept across batches"
    );
    assert_eq!(engine.count(&t, &all_global()).await.unwrap(), n as u64);
}

pub async fn engine_scan_streams_in_batches(backend: Arc<dyn Backend>) {
    let engine = Engine::new(backend);
    let t = tenant("t1");
    let items: Vec<_> = (0..23)
        .map(|i| bounce(&format!("w{i}@x.com"), BounceClass::Hard, i % 3))
        .collect();
    engine.add(&t, items, &tester()).await.unwrap();
    let walked: Vec<Suppression> = engine
        .scan(t.clone(), all_global(), 5)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(walked.len(), 23);
    let listed = engine.list(&t, &all_global(), page(100, 0)).await.unwrap();
    assert_eq!(walked, listed.items);
    let exact: Vec<Suppression> = engine
        .scan(t, all_global(), 23)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        exact.len(),
        23,
        "a batch size equal to the total ends cleanly"
    );
}

/// v3's `email` filter with SendGrid's `%` wildcard (EmailMatch::Pattern).
pub async fn list_matches_email_patterns(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let addresses = [
        "sales@x.com",
        "salesdept@y.com",
        "marketing@sales.com",
        "100%_odd@x.com",
        "a_b@x.com",
    ];
    let items = addresses
        .iter()
        .zip(1..)
        .map(|(a, n)| item(a, Scope::Global, Kind::Manual, Origin::Customer, n))
        .collect();
    add_all(&backend, &t, items).await;
    let matching = |raw: &'static str| {
        let backend = Arc::clone(&backend);
        let t = t.clone();
        async move {
            let mut filter = all_global();
            filter.email = Some(EmailMatch::pattern(raw).expect("a usable filter"));
            let page = backend.list(&t, &filter, page(50, 0)).await.unwrap();
            assert_eq!(
                page.total,
                backend.count(&t, &filter).await.unwrap(),
                "{raw}"
            );
            let mut found: Vec<String> = page
                .items
                .iter()
                .map(|s| s.email.as_str().to_owned())
                .collect();
            found.sort();
            found
        }
    };
    assert_eq!(matching("SALES%DEPT").await, ["salesdept@y.com"]);
    assert_eq!(
        matching("%sales").await,
        ["marketing@sales.com", "sales@x.com", "salesdept@y.com"]
    );
    assert_eq!(matching("%market%com").await, ["marketing@sales.com"]);
    assert_eq!(matching("s%@x").await, ["sales@x.com"]);
    assert_eq!(matching("100%odd").await, ["100%_odd@x.com"]);
    assert_eq!(matching("a_b%").await, ["a_b@x.com"], "'_' is literal");
    assert!(matching("a%_c").await.is_empty());
    assert!(matching("%y%x").await.is_empty(), "parts match in order");
    assert_eq!(matching("%").await.len(), addresses.len());
    assert_eq!(matching("%%%").await.len(), addresses.len());
    // The most wildcards a pattern may have, and the longest text, run on
    // every backend (SQLite refused long LIKE patterns as too complex).
    assert!(matching("%s%a%l%e%s%d%e%x").await.is_empty());
    let longest: &'static str = format!("%{}%", "_%".repeat(6) + &"_".repeat(240)).leak();
    assert!(matching(longest).await.is_empty());
    assert_eq!(
        EmailMatch::pattern("Sales").expect("a usable filter"),
        EmailMatch::Prefix("sales".into()),
        "without a '%' it is a prefix"
    );
}

/// [`ListFilter::per_address`]: an address with both an Unsubscribe and a
/// Manual entry (a SendPost `manual` and a v3 global POST) is one row of a
/// list of addresses, its newest; paging, totals, counts and scans go by
/// address; removal still takes every entry.
pub async fn list_collapses_to_one_row_per_address(backend: Arc<dyn Backend>) {
    let t = tenant("t1");
    let g = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap()
        .id;
    let unsub =
        |a: &str, scope, created| item(a, scope, Kind::Unsubscribe, Origin::Customer, created);
    let manual = |a: &str, scope, created| item(a, scope, Kind::Manual, Origin::Customer, created);
    let stored = add_all(
        &backend,
        &t,
        vec![
            unsub("a@x.com", Scope::Global, 100),
            manual("a@x.com", Scope::Global, 200),
            unsub("b@x.com", Scope::Global, 150),
            // Equal times: the later id is the newer.
            manual("c@x.com", Scope::Global, 50),
            unsub("c@x.com", Scope::Global, 50),
            // Another kind and other scopes are other rows.
            bounce("a@x.com", BounceClass::Hard, 300),
            unsub("a@x.com", Scope::Group(g), 10),
            manual("a@x.com", Scope::Group(g), 20),
            manual("d@x.com", Scope::Group(g), 30),
        ],
    )
    .await;
    let kinds = KindSet::family(KindFamily::Unsubscribe).with(KindSet::family(KindFamily::Manual));
    let global = ListFilter::new(kinds, ScopeFilter::Global);
    let collapsed = global.clone().one_per_address();

    let all = backend.list(&t, &global, page(10, 0)).await.unwrap();
    assert_eq!(all.total, 5, "without the flag every entry is a row");

    let listed = backend.list(&t, &collapsed, page(10, 0)).await.unwrap();
    assert_eq!(emails(&listed.items), ["a@x.com", "b@x.com", "c@x.com"]);
    assert_eq!(listed.total, 3, "the total counts addresses");
    assert_eq!(
        listed.items[0].id, stored[1].id,
        "a's newest entry, the manual one"
    );
    assert_eq!(listed.items[2].id, stored[4].id, "c's later id");
    assert_eq!(backend.count(&t, &collapsed).await.unwrap(), 3);

    let mut paged = Vec::new();
    for offset in 0..4 {
        let one = backend.list(&t, &collapsed, page(1, offset)).await.unwrap();
        assert_eq!(one.total, 3, "offset {offset}");
        paged.extend(one.items);
    }
    assert_eq!(paged, listed.items, "pages of one address each");

    // The newest entry that the rest of the filter matches stands for the
    // address: with a's manual entry outside the time range, its
    // unsubscribe is shown.
    let mut until = collapsed.clone();
    until.created_to = Some(at(150));
    let bounded = backend.list(&t, &until, page(10, 0)).await.unwrap();
    assert_eq!(emails(&bounded.items), ["b@x.com", "a@x.com", "c@x.com"]);
    assert_eq!(bounded.items[1].id, stored[0].id);
    assert_eq!(bounded.total, 3);
    let mut prefix = collapsed.clone();
    prefix.email = Some(EmailMatch::prefix("a").expect("a usable filter"));
    assert_eq!(backend.count(&t, &prefix).await.unwrap(), 1);

    let group = ListFilter::new(kinds, ScopeFilter::Group(g)).one_per_address();
    let members = backend.list(&t, &group, page(10, 0)).await.unwrap();
    assert_eq!(emails(&members.items), ["d@x.com", "a@x.com"]);
    assert_eq!(members.total, 2);
    assert_eq!(backend.count(&t, &group).await.unwrap(), 2);

    // Across scopes: one row per address in each scope.
    let any = ListFilter::new(kinds, ScopeFilter::Any).one_per_address();
    let everywhere = backend.list(&t, &any, page(10, 0)).await.unwrap();
    assert_eq!(everywhere.total, 5);
    assert_eq!(
        emails(&everywhere.items),
        ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "a@x.com"]
    );
    assert_eq!(backend.count(&t, &any).await.unwrap(), 5);

    // A scan one row at a time yields each address once, as list does.
    let mut cursor = None;
    let mut walked = Vec::new();
    loop {
        let batch = backend.scan(&t, &collapsed, cursor, 1).await.unwrap();
        let Some(last) = batch.last() else { break };
        cursor = Some(hush_model::ScanCursor::after(last));
        walked.extend(batch);
    }
    assert_eq!(walked, listed.items);

    // Removing an address removes every entry the filter matches.
    let mut only_a = collapsed.clone();
    only_a.email = Some(EmailMatch::Exact(email("a@x.com")));
    assert_eq!(
        backend
            .remove_matching(&t, &only_a, &tester())
            .await
            .unwrap(),
        2
    );
    let left = backend.list(&t, &collapsed, page(10, 0)).await.unwrap();
    assert_eq!(emails(&left.items), ["b@x.com", "c@x.com"]);
}
