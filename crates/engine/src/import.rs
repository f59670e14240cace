//! Bulk imports (v3 CSV imports, later `hush copy`): rows arrive one at a
//! time from a stream of unknown length and are committed in bounded
//! batches, so memory does not grow with the input and a cut-off input
//! keeps every batch committed before the cut.

use hush_model::{Actor, NewSuppression, TenantId};

use crate::{ADD_BATCH, AddOutcome, Engine, EngineError};

/// Collects rows and commits them `batch` at a time through
/// [`Engine::add`]. Each commit is atomic and durable before the next row
/// is taken, so `committed` is always the number of rows that are stored.
#[derive(Debug)]
pub struct Importer {
    engine: Engine,
    tenant: TenantId,
    actor: Actor,
    batch: usize,
    pending: Vec<NewSuppression>,
    committed: u64,
    unknown_groups: u64,
    refused: u64,
}

impl Engine {
    /// An importer for one tenant committing [`ADD_BATCH`] rows at a time.
    /// Every row is journaled as added by `actor`.
    pub fn importer(&self, tenant: TenantId, actor: Actor) -> Importer {
        self.importer_with_batch(tenant, actor, ADD_BATCH)
    }

    /// An importer with a chosen batch size (at least 1, at most
    /// [`ADD_BATCH`]).
    pub fn importer_with_batch(&self, tenant: TenantId, actor: Actor, batch: usize) -> Importer {
        let batch = batch.clamp(1, ADD_BATCH);
        Importer {
            engine: self.clone(),
            tenant,
            actor,
            batch,
            pending: Vec::with_capacity(batch),
            committed: 0,
            unknown_groups: 0,
            refused: 0,
        }
    }
}

impl Importer {
    /// Queues a row, committing the batch once it is full.
    pub async fn push(&mut self, item: NewSuppression) -> Result<(), EngineError> {
        self.pending.push(item);
        if self.pending.len() >= self.batch {
            self.flush().await?;
        }
        Ok(())
    }

    /// Commits the queued rows.
    pub async fn flush(&mut self) -> Result<(), EngineError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(self.batch));
        let outcomes = self.engine.add(&self.tenant, batch, &self.actor).await?;
        for outcome in outcomes {
            match outcome {
                AddOutcome::Added { .. } => self.committed += 1,
                AddOutcome::UnknownGroup(_) => self.unknown_groups += 1,
                AddOutcome::Refused { message } => {
                    tracing::warn!(%message, "an upstream refused an imported row");
                    self.refused += 1;
                }
            }
        }
        Ok(())
    }

    /// Rows stored so far (an address already listed counts: adds are
    /// idempotent).
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Rows queued but not yet committed.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Rows refused because their group vanished during the import.
    /// Rows an upstream provider refused one by one.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    pub fn unknown_groups(&self) -> u64 {
        self.unknown_groups
    }

    /// Commits what is left and returns the number of rows stored.
    pub async fn finish(mut self) -> Result<u64, EngineError> {
        self.flush().await?;
        Ok(self.committed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use hush_model::{
        Email, Group, GroupChanges, GroupId, GroupKey, Kind, ListFilter, NewGroup, Origin, Page,
        PageRequest, ScanCursor, Scope, Suppression, SuppressionId, Timestamp,
    };

    use super::*;
    use crate::Backend;

    /// Records the size of every add, to prove batching.
    #[derive(Debug, Default)]
    struct Recorder {
        calls: std::sync::Mutex<Vec<usize>>,
        next_id: AtomicUsize,
    }

    #[async_trait]
    impl Backend for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        async fn ready(&self) -> Result<(), EngineError> {
            Ok(())
        }
        async fn add(
            &self,
            tenant: &TenantId,
            items: Vec<NewSuppression>,
            _actor: &Actor,
        ) -> Result<Vec<AddOutcome>, EngineError> {
            self.calls
                .lock()
                .map_err(|e| EngineError::internal("recorder", e))?
                .push(items.len());
            Ok(items
                .into_iter()
                .map(|item| AddOutcome::Added {
                    suppression: Suppression {
                        id: SuppressionId(
                            i64::try_from(self.next_id.fetch_add(1, Ordering::Relaxed))
                                .unwrap_or(0),
                        ),
                        tenant: tenant.clone(),
                        email: item.email,
                        scope: item.scope,
                        kind: item.kind,
                        origin: item.origin,
                        created_at: item.created_at,
                    },
                    new: true,
                })
                .collect())
        }
        async fn entries(&self, _: &TenantId, _: &Email) -> Result<Vec<Suppression>, EngineError> {
            Ok(Vec::new())
        }
        async fn list(
            &self,
            _: &TenantId,
            _: &ListFilter,
            _: PageRequest,
        ) -> Result<Page<Suppression>, EngineError> {
            Ok(Page {
                items: Vec::new(),
                total: 0,
            })
        }
        async fn count(&self, _: &TenantId, _: &ListFilter) -> Result<u64, EngineError> {
            Ok(0)
        }
        async fn scan(
            &self,
            _: &TenantId,
            _: &ListFilter,
            _: Option<ScanCursor>,
            _: u32,
        ) -> Result<Vec<Suppression>, EngineError> {
            Ok(Vec::new())
        }
        async fn remove_matching(
            &self,
            _: &TenantId,
            _: &ListFilter,
            _actor: &Actor,
        ) -> Result<u64, EngineError> {
            Ok(0)
        }
        async fn remove_ids(
            &self,
            _: &TenantId,
            _: &[SuppressionId],
            _actor: &Actor,
        ) -> Result<u64, EngineError> {
            Ok(0)
        }
        async fn create_group(
            &self,
            _: &TenantId,
            _: NewGroup,
            _actor: &Actor,
        ) -> Result<Group, EngineError> {
            Err(EngineError::internal("recorder", "no groups"))
        }
        async fn group(&self, _: &TenantId, _: GroupId) -> Result<Option<Group>, EngineError> {
            Ok(None)
        }
        async fn group_by_key(
            &self,
            _: &TenantId,
            _: &GroupKey,
        ) -> Result<Option<Group>, EngineError> {
            Ok(None)
        }
        async fn groups(&self, _: &TenantId) -> Result<Vec<Group>, EngineError> {
            Ok(Vec::new())
        }
        async fn update_group(
            &self,
            _: &TenantId,
            _: GroupId,
            _: GroupChanges,
            _actor: &Actor,
        ) -> Result<Option<Group>, EngineError> {
            Ok(None)
        }
        async fn delete_group(
            &self,
            _: &TenantId,
            _: GroupId,
            _actor: &Actor,
        ) -> Result<bool, EngineError> {
            Ok(false)
        }

        async fn apply_events(
            &self,
            tenant: &TenantId,
            _hook: &str,
            events: Vec<crate::ReceivedEvent>,
            actor: &Actor,
        ) -> Result<Vec<bool>, EngineError> {
            crate::apply_events_one_by_one(self, tenant, events, actor).await
        }

        async fn prune_receipts(&self, _before: Timestamp) -> Result<u64, EngineError> {
            Ok(0)
        }

        async fn events_seen(
            &self,
            _tenant: &TenantId,
            _hook: &str,
            keys: &[String],
        ) -> Result<Vec<bool>, EngineError> {
            Ok(vec![false; keys.len()])
        }
    }

    fn row(n: usize) -> NewSuppression {
        NewSuppression {
            email: Email::parse(&format!("user{n}@example.com")).expect("email"),
            scope: Scope::Global,
            kind: Kind::Unsubscribe,
            origin: Origin::Recipient,
            created_at: Timestamp::from_unix_seconds(1),
        }
    }

    #[tokio::test]
    async fn commits_in_bounded_batches_as_rows_arrive() {
        let recorder = Arc::new(Recorder::default());
        let engine = Engine::new(recorder.clone());
        let mut importer = engine.importer_with_batch(
            TenantId::parse("t").expect("tenant"),
            Actor::new(hush_model::Door::IMPORT),
            3,
        );
        for n in 0..7 {
            importer.push(row(n)).await.expect("push");
        }
        assert_eq!(importer.committed(), 6, "two full batches are stored");
        assert_eq!(importer.pending(), 1);
        assert_eq!(importer.finish().await.expect("finish"), 7);
        assert_eq!(*recorder.calls.lock().expect("lock"), vec![3, 3, 1]);
    }

    #[tokio::test]
    async fn the_batch_size_is_bounded() {
        let engine = Engine::new(Arc::new(Recorder::default()));
        let importer = engine.importer_with_batch(
            TenantId::parse("t").expect("tenant"),
            Actor::new(hush_model::Door::IMPORT),
            0,
        );
        assert_eq!(importer.batch, 1);
        let importer = engine.importer(
            TenantId::parse("t").expect("tenant"),
            Actor::new(hush_model::Door::IMPORT),
        );
        assert_eq!(importer.batch, ADD_BATCH);
    }
}
