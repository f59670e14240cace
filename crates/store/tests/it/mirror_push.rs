//! `Engine::mirror_step` against a provider stand-in: a memory store that
//! counts the calls it gets, and can be made unreachable or made to refuse
//! one address. The journal read from is each embedded store's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hush_engine::{AddOutcome, Backend, Engine, EngineError, MirrorTarget};
use hush_model::{
    Actor, Door, Email, EmailMatch, Group, GroupChanges, GroupId, GroupKey, Kind, KindSet,
    ListFilter, MirrorName, NewGroup, NewSuppression, Origin, Page, PageRequest, ScanCursor, Scope,
    StreamType, Suppression, SuppressionId, TenantId, Timestamp, UnsubscribeHandling,
};
use hush_store::MemoryBackend;

/// What the stand-in was asked: `add <n>` or `remove <address>`.
#[derive(Debug, Default)]
struct Provider {
    store: MemoryBackend,
    calls: Mutex<Vec<String>>,
    down: AtomicBool,
    refuse: Mutex<Option<String>>,
}

impl Provider {
    fn calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn check_up(&self) -> Result<(), EngineError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(EngineError::UpstreamTimeout {
                backend: "stand-in",
                detail: "no answer".into(),
            });
        }
        Ok(())
    }

    async fn holds(&self, tenant: &TenantId, address: &str) -> bool {
        !self
            .store
            .entries(tenant, &Email::parse(address).unwrap())
            .await
            .unwrap()
            .is_empty()
    }
}

#[async_trait]
impl Backend for Provider {
    fn name(&self) -> &'static str {
        "stand-in"
    }

    async fn ready(&self) -> Result<(), EngineError> {
        Ok(())
    }

    async fn add(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        actor: &Actor,
    ) -> Result<Vec<AddOutcome>, EngineError> {
        self.check_up()?;
        self.calls
            .lock()
            .unwrap()
            .push(format!("add {}", items.len()));
        let refused = self.refuse.lock().unwrap().clone();
        let mut outcomes = Vec::new();
        for item in items {
            if refused.as_deref() == Some(item.email.as_str()) {
                outcomes.push(AddOutcome::Refused {
                    message: "You cannot suppress this address".into(),
                });
                continue;
            }
            outcomes.extend(self.store.add(tenant, vec![item], actor).await?);
        }
        Ok(outcomes)
    }

    async fn entries(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.store.entries(tenant, email).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        page: PageRequest,
    ) -> Result<Page<Suppression>, EngineError> {
        self.store.list(tenant, filter, page).await
    }

    async fn count(&self, tenant: &TenantId, filter: &ListFilter) -> Result<u64, EngineError> {
        self.store.count(tenant, filter).await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        after: Option<ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Suppression>, EngineError> {
        self.store.scan(tenant, filter, after, limit).await
    }

    async fn remove_matching(
        &self,
        tenant: &TenantId,
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.check_up()?;
        let address = match &filter.email {
            Some(EmailMatch::Exact(email)) => email.to_string(),
            other => format!("{other:?}"),
        };
        self.calls.lock().unwrap().push(format!("remove {address}"));
        self.store.remove_matching(tenant, filter, actor).await
    }

    async fn remove_ids(
        &self,
        tenant: &TenantId,
        ids: &[SuppressionId],
        actor: &Actor,
    ) -> Result<u64, EngineError> {
        self.store.remove_ids(tenant, ids, actor).await
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewGroup,
        actor: &Actor,
    ) -> Result<Group, EngineError> {
        self.store.create_group(tenant, group, actor).await
    }

    async fn group(&self, tenant: &TenantId, id: GroupId) -> Result<Option<Group>, EngineError> {
        self.store.group(tenant, id).await
    }

    async fn group_by_key(
        &self,
        tenant: &TenantId,
        key: &GroupKey,
    ) -> Result<Option<Group>, EngineError> {
        self.store.group_by_key(tenant, key).await
    }

    async fn groups(&self, tenant: &TenantId) -> Result<Vec<Group>, EngineError> {
        self.store.groups(tenant).await
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        changes: GroupChanges,
        actor: &Actor,
    ) -> Result<Option<Group>, EngineError> {
        self.store.update_group(tenant, id, changes, actor).await
    }

    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: GroupId,
        actor: &Actor,
    ) -> Result<bool, EngineError> {
        self.store.delete_group(tenant, id, actor).await
    }

    async fn apply_events(
        &self,
        tenant: &TenantId,
        hook: &str,
        events: Vec<hush_engine::ReceivedEvent>,
        actor: &Actor,
    ) -> Result<Vec<bool>, EngineError> {
        self.store.apply_events(tenant, hook, events, actor).await
    }

    async fn prune_receipts(&self, before: Timestamp) -> Result<u64, EngineError> {
        self.store.prune_receipts(before).await
    }

    async fn events_seen(
        &self,
        tenant: &TenantId,
        hook: &str,
        keys: &[String],
    ) -> Result<Vec<bool>, EngineError> {
        self.store.events_seen(tenant, hook, keys).await
    }
}

fn unsubscribe(address: &str, scope: Scope) -> NewSuppression {
    NewSuppression {
        email: Email::parse(address).unwrap(),
        scope,
        kind: Kind::Unsubscribe,
        origin: Origin::Customer,
        created_at: Timestamp::from_unix_seconds(1_700_000_000),
    }
}

fn news() -> NewGroup {
    NewGroup {
        key: GroupKey::parse("news").unwrap(),
        name: "News".into(),
        description: String::new(),
        is_default: false,
        stream_type: StreamType::Broadcasts,
        unsubscribe_handling: UnsubscribeHandling::Custom,
        created_at: Timestamp::from_unix_seconds(1_700_000_000),
    }
}

async fn remove(engine: &Engine, t: &TenantId, address: &str, actor: &Actor) {
    let email = Email::parse(address).unwrap();
    let gone = engine
        .remove(t, &email, Scope::Global, KindSet::ALL, actor)
        .await
        .unwrap();
    assert_eq!(gone, 1);
}

/// Adds in a row go in one call, in journal order with the removals
/// between them; an echo of the provider's own webhook is not pushed; a
/// group the provider lacks is skipped; a refusal is recorded once and
/// passed; an unreachable provider holds the position, and the next step
/// after it is back sends nothing twice.
async fn pushes_in_order(source: Arc<dyn Backend>) {
    let engine = Engine::new(source.clone());
    let t = TenantId::parse("t").unwrap();
    let me = Actor::new(Door::V3).with_key("app");
    let provider = Arc::new(Provider::default());
    let target = MirrorTarget {
        name: MirrorName::parse("pm").unwrap(),
        echo_door: Door::webhook("postmark"),
        backend: provider.clone(),
    };
    let name = target.name.clone();
    let group = source.create_group(&t, news(), &me).await.unwrap();
    engine
        .add(
            &t,
            vec![
                unsubscribe("a@x.io", Scope::Global),
                unsubscribe("b@x.io", Scope::Global),
            ],
            &me,
        )
        .await
        .unwrap();
    engine
        .add(&t, vec![unsubscribe("c@x.io", Scope::Group(group.id))], &me)
        .await
        .unwrap();
    engine
        .add(
            &t,
            vec![unsubscribe("echo@x.io", Scope::Global)],
            &Actor::new(Door::webhook("postmark")),
        )
        .await
        .unwrap();
    remove(&engine, &t, "a@x.io", &me).await;
    engine
        .add(&t, vec![unsubscribe("refused@x.io", Scope::Global)], &me)
        .await
        .unwrap();
    *provider.refuse.lock().unwrap() = Some("refused@x.io".into());

    let step = engine.mirror_step(&t, &target, 100).await.unwrap();
    assert!(step.caught_up);
    // group_created, c (no such group at the provider) and the echo.
    assert_eq!(
        (step.pushed, step.refused, step.skipped),
        (3, 1, 3),
        "{step:?}"
    );
    assert_eq!(
        provider.calls(),
        vec!["add 2", "remove a@x.io", "add 1"],
        "a and b in one call; c and the echo never sent"
    );
    assert!(provider.holds(&t, "b@x.io").await);
    assert!(!provider.holds(&t, "a@x.io").await);
    assert!(!provider.holds(&t, "echo@x.io").await);
    let state = engine.mirror_state(&t, &name).await.unwrap();
    assert_eq!((state.failed, state.skipped), (1, 3));
    assert!(state.last_error.is_none() && state.last_success.is_some());
    let failures = engine.mirror_failures(&t, &name, 10).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].change, "added refused@x.io");
    assert_eq!(failures[0].message, "You cannot suppress this address");
    assert_eq!(
        engine.mirror_lag(&t, &name, 100).await.unwrap(),
        (0, None),
        "nothing left behind"
    );

    // Still refused: a retry keeps it. Taken: a retry forgets it.
    let retry = engine.mirror_retry(&t, &target).await.unwrap();
    assert_eq!((retry.retried, retry.pushed, retry.refused), (1, 0, 1));
    assert_eq!(
        engine.mirror_failures(&t, &name, 10).await.unwrap().len(),
        1
    );
    provider.calls();
    *provider.refuse.lock().unwrap() = None;
    let retry = engine.mirror_retry(&t, &target).await.unwrap();
    assert_eq!((retry.retried, retry.pushed, retry.refused), (1, 1, 0));
    assert!(
        engine
            .mirror_failures(&t, &name, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(provider.holds(&t, "refused@x.io").await);
    assert_eq!(provider.calls(), vec!["add 1"]);

    // Nothing new: a step sends nothing.
    engine.mirror_step(&t, &target, 100).await.unwrap();
    assert!(provider.calls().is_empty());

    // Down: the step fails, the position holds, and the error is kept.
    engine
        .add(&t, vec![unsubscribe("later@x.io", Scope::Global)], &me)
        .await
        .unwrap();
    remove(&engine, &t, "b@x.io", &me).await;
    provider.down.store(true, Ordering::SeqCst);
    let before = engine.mirror_state(&t, &name).await.unwrap().position;
    let err = engine.mirror_step(&t, &target, 100).await.unwrap_err();
    assert!(hush_engine::is_temporary(&err), "{err}");
    let held = engine.mirror_state(&t, &name).await.unwrap();
    assert_eq!(held.position, before);
    assert!(
        held.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer"))
    );
    assert_eq!(engine.mirror_lag(&t, &name, 100).await.unwrap().0, 2);

    // Back: the two changes arrive, once each, in order.
    provider.down.store(false, Ordering::SeqCst);
    let step = engine.mirror_step(&t, &target, 100).await.unwrap();
    assert_eq!((step.pushed, step.refused, step.skipped), (2, 0, 0));
    assert_eq!(provider.calls(), vec!["add 1", "remove b@x.io"]);
    assert!(provider.holds(&t, "later@x.io").await);
    assert!(!provider.holds(&t, "b@x.io").await);
    let state = engine.mirror_state(&t, &name).await.unwrap();
    assert!(state.last_error.is_none());
    assert!(
        engine
            .mirror_failures(&t, &name, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Once the provider has the group (by key), its members are pushed into
/// the provider's own group.
async fn groups_are_matched_by_key(source: Arc<dyn Backend>) {
    let engine = Engine::new(source.clone());
    let t = TenantId::parse("t").unwrap();
    let me = Actor::new(Door::V3);
    let provider = Arc::new(Provider::default());
    // The provider made other groups first: its ids are not hush's.
    for key in ["first", "second"] {
        let mut other = news();
        other.key = GroupKey::parse(key).unwrap();
        other.name = key.into();
        provider.store.create_group(&t, other, &me).await.unwrap();
    }
    let theirs = provider.store.create_group(&t, news(), &me).await.unwrap();
    let ours = source.create_group(&t, news(), &me).await.unwrap();
    assert_ne!(ours.id, theirs.id);
    engine
        .add(
            &t,
            vec![unsubscribe("member@x.io", Scope::Group(ours.id))],
            &me,
        )
        .await
        .unwrap();
    let target = MirrorTarget {
        name: MirrorName::parse("v3").unwrap(),
        echo_door: Door::webhook("sendgrid"),
        backend: provider.clone(),
    };
    engine.mirror_step(&t, &target, 100).await.unwrap();
    let held = provider
        .store
        .entries(&t, &Email::parse("member@x.io").unwrap())
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].scope, Scope::Group(theirs.id));
}

/// The store keeps a mirror's state and refusals; a refusal saved twice
/// (a step retried) is one.
async fn state_is_kept(source: Arc<dyn Backend>) {
    let t = TenantId::parse("t").unwrap();
    let name = MirrorName::parse("m").unwrap();
    assert_eq!(
        source.mirror_state(&t, &name).await.unwrap(),
        hush_model::MirrorState::default()
    );
    let state = hush_model::MirrorState {
        position: Some(hush_model::Position(7)),
        last_success: Some(Timestamp::from_unix_seconds(1_700_000_000)),
        last_error: Some("boom".into()),
        failed: 1,
        skipped: 2,
    };
    let failure = hush_model::MirrorFailure {
        position: hush_model::Position(5),
        at: Timestamp::from_unix_seconds(1_700_000_000),
        change: "removed x@y.io".into(),
        message: "no".into(),
    };
    for _ in 0..2 {
        source
            .save_mirror(&t, &name, &state, std::slice::from_ref(&failure))
            .await
            .unwrap();
    }
    assert_eq!(source.mirror_state(&t, &name).await.unwrap(), state);
    assert_eq!(
        source.mirror_failures(&t, &name, 10).await.unwrap(),
        vec![failure]
    );
    let other = TenantId::parse("u").unwrap();
    assert!(
        source
            .mirror_failures(&other, &name, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        source
            .lease_mirror(&t, &name, "me", std::time::Duration::from_secs(5))
            .await
            .unwrap()
    );
}

/// A removal takes at the provider only the removed kind while hush still
/// suppresses the address there, and everything of the address once hush
/// holds nothing (a provider may hold the kind under another: Postmark
/// keeps a v3 unsubscribe as a manual suppression).
async fn removals_follow_what_hush_still_holds(source: Arc<dyn Backend>) {
    let engine = Engine::new(source);
    let t = TenantId::parse("t").unwrap();
    let me = Actor::new(Door::V3);
    let provider = Arc::new(Provider::default());
    let target = MirrorTarget {
        name: MirrorName::parse("pm").unwrap(),
        echo_door: Door::webhook("postmark"),
        backend: provider.clone(),
    };
    let bounce = NewSuppression {
        kind: Kind::Bounce {
            class: hush_model::BounceClass::Hard,
            status: None,
            reason: None,
        },
        ..unsubscribe("both@x.io", Scope::Global)
    };
    engine
        .add(
            &t,
            vec![bounce, unsubscribe("both@x.io", Scope::Global)],
            &me,
        )
        .await
        .unwrap();
    // The provider folded one of them into a manual suppression.
    let manual = NewSuppression {
        kind: Kind::Manual,
        ..unsubscribe("folded@x.io", Scope::Global)
    };
    provider.store.add(&t, vec![manual], &me).await.unwrap();
    engine
        .add(&t, vec![unsubscribe("folded@x.io", Scope::Global)], &me)
        .await
        .unwrap();
    engine.mirror_step(&t, &target, 100).await.unwrap();
    let email = Email::parse("both@x.io").unwrap();
    engine
        .remove(
            &t,
            &email,
            Scope::Global,
            KindSet::family(hush_model::KindFamily::Unsubscribe),
            &me,
        )
        .await
        .unwrap();
    remove(&engine, &t, "folded@x.io", &me).await;
    engine.mirror_step(&t, &target, 100).await.unwrap();
    let kept = provider.store.entries(&t, &email).await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(matches!(kept[0].kind, Kind::Bounce { .. }));
    assert!(!provider.holds(&t, "folded@x.io").await);
}

#[tokio::test]
async fn memory_removals_follow_what_hush_still_holds() {
    removals_follow_what_hush_still_holds(memory()).await;
}

#[tokio::test]
async fn sqlite_removals_follow_what_hush_still_holds() {
    removals_follow_what_hush_still_holds(sqlite()).await;
}

/// A resync compares addresses: it adds what the provider lacks (not what
/// it cannot hold), removes what hush does not hold, and a dry run only
/// counts.
async fn resync_pushes_the_difference(source: Arc<dyn Backend>) {
    let engine = Engine::new(source.clone());
    let t = TenantId::parse("t").unwrap();
    let me = Actor::new(Door::ADMIN);
    let provider = Arc::new(Provider::default());
    let target = MirrorTarget {
        name: MirrorName::parse("late").unwrap(),
        echo_door: Door::webhook("postmark"),
        backend: provider.clone(),
    };
    let group = source.create_group(&t, news(), &me).await.unwrap();
    engine
        .add(
            &t,
            vec![
                unsubscribe("both@x.io", Scope::Global),
                unsubscribe("ours@x.io", Scope::Global),
                unsubscribe("grouped@x.io", Scope::Group(group.id)),
            ],
            &me,
        )
        .await
        .unwrap();
    provider
        .store
        .add(
            &t,
            vec![
                unsubscribe("both@x.io", Scope::Global),
                unsubscribe("theirs@x.io", Scope::Global),
            ],
            &me,
        )
        .await
        .unwrap();
    let counted = engine.mirror_resync(&t, &target, true).await.unwrap();
    assert_eq!(
        (
            counted.missing,
            counted.extra,
            counted.added,
            counted.removed
        ),
        (1, 1, 0, 0)
    );
    assert!(
        provider.holds(&t, "theirs@x.io").await,
        "a dry run changes nothing"
    );
    let done = engine.mirror_resync(&t, &target, false).await.unwrap();
    assert_eq!(
        (done.missing, done.extra, done.added, done.removed),
        (1, 1, 1, 1)
    );
    assert!(provider.holds(&t, "ours@x.io").await);
    assert!(!provider.holds(&t, "theirs@x.io").await);
    assert!(
        !provider.holds(&t, "grouped@x.io").await,
        "no such group there"
    );
    let again = engine.mirror_resync(&t, &target, true).await.unwrap();
    assert_eq!((again.missing, again.extra), (0, 0));
    assert_eq!(
        engine.mirror_state(&t, &target.name).await.unwrap(),
        hush_model::MirrorState::default(),
        "a resync leaves the position alone"
    );
}

#[tokio::test]
async fn memory_resync_pushes_the_difference() {
    resync_pushes_the_difference(memory()).await;
}

#[tokio::test]
async fn sqlite_resync_pushes_the_difference() {
    resync_pushes_the_difference(sqlite()).await;
}

fn memory() -> Arc<dyn Backend> {
    Arc::new(MemoryBackend::new())
}

fn sqlite() -> Arc<dyn Backend> {
    Arc::new(crate::support::TempSqlite::new())
}

#[tokio::test]
async fn memory_pushes_in_order() {
    pushes_in_order(memory()).await;
}

#[tokio::test]
async fn sqlite_pushes_in_order() {
    pushes_in_order(sqlite()).await;
}

#[tokio::test]
async fn memory_matches_groups_by_key() {
    groups_are_matched_by_key(memory()).await;
}

#[tokio::test]
async fn sqlite_matches_groups_by_key() {
    groups_are_matched_by_key(sqlite()).await;
}

#[tokio::test]
async fn memory_keeps_mirror_state() {
    state_is_kept(memory()).await;
}

#[tokio::test]
async fn sqlite_keeps_mirror_state() {
    state_is_kept(sqlite()).await;
}

#[cfg(hush_postgres_tests)]
mod postgres {
    use std::time::Duration;

    use hush_engine::Backend as _;
    use hush_model::{MirrorName, TenantId};

    #[tokio::test]
    async fn pushes_in_order() {
        super::pushes_in_order(crate::postgres::fresh().await).await;
    }

    #[tokio::test]
    async fn matches_groups_by_key() {
        super::groups_are_matched_by_key(crate::postgres::fresh().await).await;
    }

    #[tokio::test]
    async fn keeps_mirror_state() {
        super::state_is_kept(crate::postgres::fresh().await).await;
    }

    /// Two instances on one database: one holds a mirror's lease while it
    /// renews it; once it stops, the other takes it when it lapses.
    #[tokio::test]
    async fn one_instance_holds_a_mirror_until_its_lease_lapses() {
        let database = crate::postgres::TempDatabase::create().await;
        let (first, second) = (database.backend().await, database.backend().await);
        let t = TenantId::parse("t").unwrap();
        let m = MirrorName::parse("m").unwrap();
        let ttl = Duration::from_millis(600);
        assert!(first.lease_mirror(&t, &m, "first", ttl).await.unwrap());
        assert!(!second.lease_mirror(&t, &m, "second", ttl).await.unwrap());
        // Renewed: still the first's past the first lease's end.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(first.lease_mirror(&t, &m, "first", ttl).await.unwrap());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!second.lease_mirror(&t, &m, "second", ttl).await.unwrap());
        // The first stops renewing: the second takes over once it lapses,
        // and then the first cannot take it back.
        tokio::time::sleep(ttl).await;
        assert!(second.lease_mirror(&t, &m, "second", ttl).await.unwrap());
        assert!(!first.lease_mirror(&t, &m, "first", ttl).await.unwrap());
        // Leases do not touch the mirror's state.
        assert_eq!(
            second.mirror_state(&t, &m).await.unwrap(),
            hush_model::MirrorState::default()
        );
    }
}
