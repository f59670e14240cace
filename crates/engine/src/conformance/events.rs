//! Webhook events (`Backend::apply_events`): applied once per hook and key,
//! in one transaction, each change journaled with its event's id.

use std::sync::Arc;

use hush_model::{
    Actor, Door, JournalQuery, Kind, KindFamily, KindSet, ListFilter, Origin, Scope, ScopeFilter,
    Timestamp,
};

use super::{email, item, new_group, tenant, tester};
use crate::{Backend, Engine, EventChange, ReceivedEvent};

fn event(key: &str, changes: Vec<EventChange>) -> ReceivedEvent {
    ReceivedEvent {
        key: key.to_owned(),
        changes,
    }
}

fn lift(address: &str, scope: ScopeFilter, family: KindFamily) -> EventChange {
    let mut filter = ListFilter::new(KindSet::family(family), scope);
    filter.email = Some(hush_model::EmailMatch::Exact(email(address)));
    EventChange::Remove(filter)
}

/// A delivery applies each new event's changes in order, journaled with
/// the event's id; a redelivery, whole or in part, changes nothing, even
/// after the entry it made was removed meanwhile; keys are per hook and
/// per tenant; pruned keys are forgotten.
pub async fn webhook_events_apply_once_per_key(backend: Arc<dyn Backend>) {
    if !backend.capabilities().journal {
        return;
    }
    let t = tenant("t1");
    let group = backend
        .create_group(&t, new_group("news", "News"), &tester())
        .await
        .unwrap();
    let hook = "sendgrid/main";
    let actor = Actor::new(Door::webhook("sendgrid")).with_request_id("req-9");
    let bounce = Kind::Bounce {
        class: hush_model::BounceClass::Hard,
        status: Some("5.1.1".into()),
        reason: Some("550 no such user".into()),
    };
    let delivery = vec![
        event(
            "ev-1",
            vec![EventChange::Add(item(
                "a@x.com",
                Scope::Global,
                bounce.clone(),
                Origin::Recipient,
                1,
            ))],
        ),
        event(
            "ev-2",
            vec![EventChange::Add(item(
                "b@x.com",
                Scope::Group(group.id),
                Kind::Unsubscribe,
                Origin::Recipient,
                2,
            ))],
        ),
        event(
            "ev-3",
            vec![lift(
                "b@x.com",
                ScopeFilter::Group(group.id),
                KindFamily::Unsubscribe,
            )],
        ),
        event("ev-4", Vec::new()),
    ];
    let applied = backend
        .apply_events(&t, hook, delivery.clone(), &actor)
        .await
        .unwrap();
    assert_eq!(applied, vec![true; 4]);
    assert_eq!(
        backend.entries(&t, &email("a@x.com")).await.unwrap().len(),
        1
    );
    assert!(
        backend
            .entries(&t, &email("b@x.com"))
            .await
            .unwrap()
            .is_empty(),
        "added, then lifted by the next event"
    );
    let journal = backend
        .journal(&t, &JournalQuery::newest_first(100))
        .await
        .unwrap();
    let by_events: Vec<(&str, Option<&str>, Option<&str>)> = journal
        .iter()
        .rev()
        .filter(|e| e.actor.door == Door::webhook("sendgrid"))
        .map(|e| {
            (
                e.operation.as_str(),
                e.actor.event_id.as_deref(),
                e.actor.request_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        by_events,
        vec![
            ("added", Some("ev-1"), Some("req-9")),
            ("added", Some("ev-2"), Some("req-9")),
            ("removed", Some("ev-3"), Some("req-9")),
        ]
    );

    let keys: Vec<String> = ["ev-1", "ev-4", "ev-9"].map(String::from).to_vec();
    assert_eq!(
        backend.events_seen(&t, hook, &keys).await.unwrap(),
        vec![true, true, false]
    );
    assert_eq!(
        backend
            .events_seen(&t, "mailgun/main", &keys)
            .await
            .unwrap(),
        vec![false; 3],
        "keys are the hook's"
    );

    // Redelivered whole: nothing changes.
    let again = backend
        .apply_events(&t, hook, delivery.clone(), &actor)
        .await
        .unwrap();
    assert_eq!(again, vec![false; 4]);
    let after = backend
        .journal(&t, &JournalQuery::newest_first(100))
        .await
        .unwrap();
    assert_eq!(after, journal, "a redelivery journals nothing");

    // The bounce removed through an API, then ev-1 redelivered with a new
    // event: the removal stands, the new event applies.
    let a = backend.entries(&t, &email("a@x.com")).await.unwrap();
    backend.remove_ids(&t, &[a[0].id], &tester()).await.unwrap();
    let mixed = vec![
        delivery[0].clone(),
        event(
            "ev-5",
            vec![EventChange::Add(item(
                "c@x.com",
                Scope::Global,
                Kind::SpamComplaint { source: None },
                Origin::Recipient,
                3,
            ))],
        ),
    ];
    assert_eq!(
        backend
            .apply_events(&t, hook, mixed.clone(), &actor)
            .await
            .unwrap(),
        vec![false, true]
    );
    assert!(
        backend
            .entries(&t, &email("a@x.com"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        backend.entries(&t, &email("c@x.com")).await.unwrap().len(),
        1
    );

    // Keys are the hook's and the tenant's: the same key elsewhere is new.
    assert_eq!(
        backend
            .apply_events(&t, "postmark/main", vec![delivery[3].clone()], &actor)
            .await
            .unwrap(),
        vec![true]
    );
    assert_eq!(
        backend
            .apply_events(&tenant("t2"), hook, vec![delivery[3].clone()], &actor)
            .await
            .unwrap(),
        vec![true]
    );

    // Nothing is forgotten before its time; then it is.
    let past = Timestamp::from_nanos(Engine::now().as_nanos() - 3_600_000_000_000);
    assert_eq!(backend.prune_receipts(past).await.unwrap(), 0);
    let future = Timestamp::from_nanos(Engine::now().as_nanos() + 1_000_000_000);
    assert_eq!(backend.prune_receipts(future).await.unwrap(), 7);
    assert_eq!(
        backend
            .apply_events(&t, hook, vec![delivery[3].clone()], &actor)
            .await
            .unwrap(),
        vec![true]
    );
}
