//! Who may change which suppression. An API whose deletes are guarded by the
//! origin of an entry (Postmark: docs/mapping.md, "Deletes", after the rules
//! Postmark's Suppressions API and postmark-php document) asks the engine to
//! change an address under an [`Authority`]; the engine looks at every entry
//! the caller can see and either changes all of them or none.

use std::collections::{HashMap, HashSet};

use hush_model::{
    Actor, Email, KindFamily, NewSuppression, Origin, ScopeFilter, Suppression, SuppressionId,
    TenantId,
};

use crate::{AddOutcome, Engine, EngineError};

/// On whose word a change is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The tenant, through an API that guards deletes by origin (Postmark).
    /// It may remove what it put there itself (Customer-origin unsubscribes
    /// and manual blocks) and reactivate bounces and invalid addresses of
    /// Recipient or Customer origin. It may not touch spam complaints,
    /// unsubscribes or manual blocks the recipient made, or anything the
    /// operator made.
    Customer,
    /// The gateway's operator: may change anything.
    Operator,
}

impl Authority {
    /// Whether this authority may remove (or override) one entry.
    pub fn may_change(self, entry: &Suppression) -> bool {
        match self {
            Self::Operator => true,
            Self::Customer => match (entry.kind.family(), entry.origin) {
                (_, Origin::Admin) | (KindFamily::Spam, _) => false,
                (
                    KindFamily::Bounce | KindFamily::Invalid,
                    Origin::Recipient | Origin::Customer,
                ) => true,
                (KindFamily::Unsubscribe | KindFamily::Manual, origin) => {
                    origin == Origin::Customer
                }
            },
        }
    }
}

/// What a guarded removal did to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardedRemoval {
    /// Every visible entry is gone; `removed` may be 0 when there was none
    /// (Postmark answers `Deleted` for an address that was not suppressed).
    Removed { removed: u64 },
    /// At least one visible entry is beyond the caller's authority; nothing
    /// was removed. `protected` is the first such entry, newest first.
    ///
    /// Also when the store itself kept an entry it was told to remove: an
    /// upstream provider may refuse one item of a batch (Postmark answers
    /// `Failed` per item: Postmark API docs, "Suppressions API"). The
    /// provider is then the authority that said no; `protected` is the entry
    /// still there, and the address's other entries may be gone.
    Refused { protected: Box<Suppression> },
}

/// What a guarded add did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardedAdd {
    /// Stored (or already there: adds are idempotent).
    Added(AddOutcome),
    /// The address already holds an entry the caller may not change (a spam
    /// complaint, for Postmark); nothing was stored.
    Refused { protected: Box<Suppression> },
}

impl Engine {
    /// The entries of an address that a caller seeing `visible` sees, newest
    /// first.
    pub async fn visible_entries(
        &self,
        tenant: &TenantId,
        email: &Email,
        visible: ScopeFilter,
    ) -> Result<Vec<Suppression>, EngineError> {
        let mut entries = self.entries(tenant, email).await?;
        entries.retain(|e| visible.matches(e.scope));
        Ok(entries)
    }

    /// For each address, removes every entry within `visible` if
    /// `authority` may change all of them, and otherwise removes none. An
    /// address keeps being suppressed while any entry stays, so removing
    /// only some would report a reactivation that did not happen. One
    /// outcome per address, in order; the removals are one store call.
    /// When the store removes fewer entries than it was given (an upstream
    /// provider refused some), each address is read again, and one that
    /// still holds an entry it was to lose is `Refused`, not `Removed`.
    pub async fn remove_with_authority(
        &self,
        tenant: &TenantId,
        emails: &[Email],
        visible: ScopeFilter,
        authority: Authority,
        actor: &Actor,
    ) -> Result<Vec<GuardedRemoval>, EngineError> {
        let mut outcomes = Vec::with_capacity(emails.len());
        let mut ids = Vec::new();
        for email in emails {
            let entries = self.visible_entries(tenant, email, visible).await?;
            if let Some(protected) = entries.iter().find(|e| !authority.may_change(e)) {
                outcomes.push(GuardedRemoval::Refused {
                    protected: Box::new(protected.clone()),
                });
            } else {
                ids.extend(entries.iter().map(|e| e.id));
                outcomes.push(GuardedRemoval::Removed {
                    removed: entries.len() as u64,
                });
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let removed = self.remove_ids(tenant, &ids, actor).await?;
        if removed < ids.len() as u64 {
            self.find_kept(tenant, emails, visible, &ids, &mut outcomes)
                .await?;
        }
        Ok(outcomes)
    }

    /// Turns into `Refused` the outcome of each address that still holds,
    /// after a removal, an entry among `doomed`. Each address is read once.
    async fn find_kept(
        &self,
        tenant: &TenantId,
        emails: &[Email],
        visible: ScopeFilter,
        doomed: &[SuppressionId],
        outcomes: &mut [GuardedRemoval],
    ) -> Result<(), EngineError> {
        let doomed: HashSet<&SuppressionId> = doomed.iter().collect();
        let mut kept: HashMap<&Email, Option<Suppression>> = HashMap::new();
        for (email, outcome) in emails.iter().zip(outcomes.iter_mut()) {
            if !matches!(outcome, GuardedRemoval::Removed { removed } if *removed > 0) {
                continue;
            }
            if !kept.contains_key(email) {
                let entries = self.visible_entries(tenant, email, visible).await?;
                let left = entries.into_iter().find(|e| doomed.contains(&e.id));
                kept.insert(email, left);
            }
            if let Some(Some(left)) = kept.get(email) {
                *outcome = GuardedRemoval::Refused {
                    protected: Box::new(left.clone()),
                };
            }
        }
        Ok(())
    }

    /// Adds each item unless its address already holds, within `visible`,
    /// an entry that `authority` may not change: a customer cannot turn a
    /// spam complaint into its own manual block (Postmark's create answers
    /// `Failed` for one: Postmark API docs, "Suppressions API").
    /// One outcome per item, in order; the adds are one store call.
    pub async fn add_with_authority(
        &self,
        tenant: &TenantId,
        items: Vec<NewSuppression>,
        visible: ScopeFilter,
        authority: Authority,
        actor: &Actor,
    ) -> Result<Vec<GuardedAdd>, EngineError> {
        let mut refusals = Vec::with_capacity(items.len());
        let mut allowed = Vec::with_capacity(items.len());
        for item in items {
            let entries = self.visible_entries(tenant, &item.email, visible).await?;
            match entries.into_iter().find(|e| !authority.may_change(e)) {
                Some(protected) => refusals.push(Some(Box::new(protected))),
                None => {
                    refusals.push(None);
                    allowed.push(item);
                }
            }
        }
        let added = if allowed.is_empty() {
            Vec::new()
        } else {
            self.add(tenant, allowed, actor).await?
        };
        let mut added = added.into_iter();
        refusals
            .into_iter()
            .map(|refusal| match refusal {
                Some(protected) => Ok(GuardedAdd::Refused { protected }),
                None => added.next().map(GuardedAdd::Added).ok_or_else(|| {
                    EngineError::internal(self.backend_name(), "an add returned too few outcomes")
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use hush_model::{BounceClass, Kind, Scope, SuppressionId, Timestamp};

    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("demo").unwrap()
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn entry(kind: Kind, origin: Origin) -> Suppression {
        Suppression {
            id: SuppressionId(1),
            tenant: tenant(),
            email: email("a@example.com"),
            scope: Scope::Global,
            kind,
            origin,
            created_at: Timestamp::from_unix_seconds(1),
        }
    }

    fn bounce() -> Kind {
        Kind::Bounce {
            class: BounceClass::Soft,
            status: None,
            reason: None,
        }
    }

    #[test]
    fn the_customer_rules_of_design_md() {
        let customer = Authority::Customer;
        let spam = Kind::SpamComplaint { source: None };
        let invalid = Kind::Invalid { reason: None };
        let cases = [
            (Kind::Manual, Origin::Customer, true),
            (Kind::Unsubscribe, Origin::Customer, true),
            (bounce(), Origin::Recipient, true),
            (bounce(), Origin::Customer, true),
            (invalid.clone(), Origin::Recipient, true),
            (invalid, Origin::Admin, false),
            (spam.clone(), Origin::Recipient, false),
            (spam.clone(), Origin::Customer, false),
            (Kind::Unsubscribe, Origin::Recipient, false),
            (Kind::Manual, Origin::Recipient, false),
            (Kind::Manual, Origin::Admin, false),
            (bounce(), Origin::Admin, false),
        ];
        for (kind, origin, allowed) in cases {
            let e = entry(kind, origin);
            assert_eq!(customer.may_change(&e), allowed, "{e:?}");
            assert!(Authority::Operator.may_change(&e), "{e:?}");
        }
    }
}

/// Engine-level checks of the guarded changes, run against every backend by
/// [`crate::backend_conformance!`].
#[cfg(feature = "conformance")]
pub mod conformance {
    #![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

    use std::sync::Arc;

    use hush_model::{
        BounceClass, GroupId, GroupKey, Kind, KindSet, ListFilter, Scope, StreamType, Timestamp,
    };

    use super::*;
    use crate::conformance::actor;
    use crate::{Backend, GroupSpec};

    fn tenant() -> TenantId {
        TenantId::parse("demo").unwrap()
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn bounce() -> Kind {
        Kind::Bounce {
            class: BounceClass::Soft,
            status: None,
            reason: None,
        }
    }

    async fn engine_with_stream(backend: Arc<dyn Backend>) -> (Engine, GroupId, GroupId) {
        let engine = Engine::new(backend);
        engine.bootstrap_tenant(&tenant()).await.unwrap();
        let outbound = engine
            .group_by_key(&tenant(), &GroupKey::parse("outbound").unwrap())
            .await
            .unwrap()
            .unwrap()
            .id;
        let broadcast = engine
            .create_group(
                &tenant(),
                GroupSpec {
                    key: Some(GroupKey::parse("broadcast").unwrap()),
                    name: "Broadcast".into(),
                    description: String::new(),
                    is_default: false,
                    stream_type: StreamType::Broadcasts,
                    unsubscribe_handling: None,
                },
                &actor(),
            )
            .await
            .unwrap()
            .id;
        (engine, outbound, broadcast)
    }

    fn new(address: &str, scope: Scope, kind: Kind, origin: Origin) -> NewSuppression {
        NewSuppression {
            email: email(address),
            scope,
            kind,
            origin,
            created_at: Timestamp::from_unix_seconds(100),
        }
    }

    pub async fn engine_guards_removal_by_authority(backend: Arc<dyn Backend>) {
        let (engine, outbound, broadcast) = engine_with_stream(backend).await;
        let t = tenant();
        engine
            .add(
                &t,
                vec![
                    new("b@x.com", Scope::Global, bounce(), Origin::Recipient),
                    new(
                        "b@x.com",
                        Scope::Group(outbound),
                        Kind::Manual,
                        Origin::Customer,
                    ),
                    new(
                        "b@x.com",
                        Scope::Group(broadcast),
                        Kind::Manual,
                        Origin::Customer,
                    ),
                    new(
                        "s@x.com",
                        Scope::Global,
                        Kind::SpamComplaint { source: None },
                        Origin::Recipient,
                    ),
                    new(
                        "s@x.com",
                        Scope::Group(outbound),
                        Kind::Manual,
                        Origin::Customer,
                    ),
                ],
                &actor(),
            )
            .await
            .unwrap();
        let in_outbound = ScopeFilter::GlobalAndGroup(outbound);

        let outcomes = engine
            .remove_with_authority(
                &t,
                &[
                    email("b@x.com"),
                    email("s@x.com"),
                    email("none@x.com"),
                    email("b@x.com"),
                ],
                in_outbound,
                Authority::Customer,
                &actor(),
            )
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 4);
        assert_eq!(outcomes[0], GuardedRemoval::Removed { removed: 2 });
        // Nothing to delete is a removal of nothing.
        assert_eq!(outcomes[2], GuardedRemoval::Removed { removed: 0 });
        // A repeated address was seen before the removal: same answer.
        assert_eq!(outcomes[3], GuardedRemoval::Removed { removed: 2 });
        let GuardedRemoval::Refused { protected } = &outcomes[1] else {
            panic!("spam must be refused: {outcomes:?}");
        };
        assert_eq!(protected.kind.family(), KindFamily::Spam);
        // The entry in another stream stays.
        let left = engine.entries(&t, &email("b@x.com")).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].scope, Scope::Group(broadcast));

        // Refused means untouched: the complaint and the manual entry beside it.
        assert_eq!(
            engine.entries(&t, &email("s@x.com")).await.unwrap().len(),
            2
        );

        let operator = engine
            .remove_with_authority(
                &t,
                &[email("s@x.com")],
                in_outbound,
                Authority::Operator,
                &actor(),
            )
            .await
            .unwrap();
        assert_eq!(operator, vec![GuardedRemoval::Removed { removed: 2 }]);
        assert!(
            engine
                .entries(&t, &email("s@x.com"))
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn engine_guards_adds_by_authority(backend: Arc<dyn Backend>) {
        let (engine, outbound, broadcast) = engine_with_stream(backend).await;
        let t = tenant();
        engine
            .add(
                &t,
                vec![new(
                    "s@x.com",
                    Scope::Group(broadcast),
                    Kind::SpamComplaint { source: None },
                    Origin::Recipient,
                )],
                &actor(),
            )
            .await
            .unwrap();
        let manual = |address: &str, group| {
            new(address, Scope::Group(group), Kind::Manual, Origin::Customer)
        };

        let outcomes = engine
            .add_with_authority(
                &t,
                vec![manual("s@x.com", broadcast), manual("ok@x.com", broadcast)],
                ScopeFilter::GlobalAndGroup(broadcast),
                Authority::Customer,
                &actor(),
            )
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 2);
        assert!(
            matches!(outcomes[0], GuardedAdd::Refused { .. }),
            "{outcomes:?}"
        );
        let GuardedAdd::Added(AddOutcome::Added {
            suppression,
            new: true,
        }) = &outcomes[1]
        else {
            panic!("expected an add: {outcomes:?}");
        };
        assert_eq!(suppression.email, email("ok@x.com"));
        assert_eq!(
            engine.entries(&t, &email("s@x.com")).await.unwrap().len(),
            1
        );

        // The complaint lives in another stream: outbound may add.
        let mut added = engine
            .add_with_authority(
                &t,
                vec![manual("s@x.com", outbound)],
                ScopeFilter::GlobalAndGroup(outbound),
                Authority::Customer,
                &actor(),
            )
            .await
            .unwrap();
        let Some(GuardedAdd::Added(AddOutcome::Added { suppression, new })) = added.pop() else {
            panic!("expected an add: {added:?}");
        };
        assert!(new);
        assert_eq!(suppression.scope, Scope::Group(outbound));
        let filter = ListFilter::new(KindSet::ALL, ScopeFilter::Group(outbound));
        assert_eq!(engine.count(&t, &filter).await.unwrap(), 1);
    }
}
