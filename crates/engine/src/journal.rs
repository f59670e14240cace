//! Reading the journal and undoing what it records (docs/operations.md,
//! "History and restore").

use std::collections::HashMap;

use hush_model::{
    Actor, DEFAULT_STREAM_KEY, Email, Group, GroupChanges, JournalEntry, JournalOrder,
    JournalQuery, Operation, Recorded, Suppression, SuppressionId, TenantId, Timestamp,
};

use crate::{Engine, EngineError};

/// Entries a restore reads at a time, and suppressions it puts back or
/// removes in one store call.
const RESTORE_PAGE: u32 = 1_000;
/// Journal entries one pruning step deletes: small enough that the step's
/// transaction never holds writes up for long.
pub const PRUNE_STEP: u32 = 5_000;

/// What a restore undoes: every change in a time window, or only those of
/// one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreWindow {
    pub since: Timestamp,
    pub until: Timestamp,
    pub email: Option<Email>,
}

/// What a restore did, or with `dry_run` would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Restored {
    /// Suppressions and groups put back, and group changes reverted.
    pub restored: u64,
    /// Suppressions and groups removed because the window added them.
    pub removed: u64,
}

impl Engine {
    /// A page of a tenant's journal.
    pub async fn history(
        &self,
        tenant: &TenantId,
        query: &JournalQuery,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        self.require_journal(tenant)?;
        self.backend().journal(tenant, query).await
    }

    /// Undoes every change in the window, newest first: puts back what was
    /// removed (exactly, ids included), removes what was added, reverts
    /// group changes, and puts back deleted groups with their ids. The
    /// undoing is journaled as `actor`'s (door `restore`). Changes made
    /// while the restore runs are not touched: it reads only entries below
    /// the newest it saw when it started.
    pub async fn restore(
        &self,
        tenant: &TenantId,
        window: &RestoreWindow,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<Restored, EngineError> {
        self.require_journal(tenant)?;
        let mut query = JournalQuery {
            email: window.email.clone(),
            since: Some(window.since),
            until: Some(window.until),
            door: None,
            cursor: None,
            order: JournalOrder::NewestFirst,
            limit: RESTORE_PAGE,
        };
        let mut undo = Undo {
            engine: self,
            tenant,
            actor,
            dry_run,
            done: Restored::default(),
            seen: HashMap::new(),
        };
        loop {
            let page = self.backend().journal(tenant, &query).await?;
            let Some(last) = page.last() else { break };
            let full = page.len() == RESTORE_PAGE as usize;
            query.cursor = Some(last.position);
            undo.entries(page).await?;
            if !full {
                break;
            }
        }
        Ok(undo.done)
    }

    /// Deletes journal entries older than `before`, a bounded step at a
    /// time, until none is left; returns how many went. Each step is its own
    /// short transaction, so writes go on between them.
    pub async fn prune_journal(&self, before: Timestamp) -> Result<u64, EngineError> {
        let mut pruned = 0;
        loop {
            let step = self.backend().prune_journal(before, PRUNE_STEP).await?;
            pruned += step;
            if step < u64::from(PRUNE_STEP) {
                return Ok(pruned);
            }
            tokio::task::yield_now().await;
        }
    }

    pub(crate) fn require_journal(&self, tenant: &TenantId) -> Result<(), EngineError> {
        if self.backend().capabilities_for(tenant).journal {
            Ok(())
        } else {
            Err(EngineError::Unsupported {
                backend: self.backend().name_for(tenant),
                operation: "keep a journal",
            })
        }
    }
}

/// One restore's undoing, run of entries by run of entries.
struct Undo<'a> {
    engine: &'a Engine,
    tenant: &'a TenantId,
    actor: &'a Actor,
    dry_run: bool,
    done: Restored,
    /// A dry run's view of each address it touched: what the address would
    /// hold after the undoing so far, so that its counts are what the real
    /// restore would do.
    seen: HashMap<Email, Vec<Suppression>>,
}

impl Undo<'_> {
    /// Undoes a page of entries, newest first. Consecutive entries of the
    /// same kind go to the store together (a bulk delete is put back
    /// a thousand at a time); order between runs is kept, since undoing an
    /// add and a removal of one address in the wrong order would leave the
    /// wrong one.
    async fn entries(&mut self, page: Vec<JournalEntry>) -> Result<(), EngineError> {
        let mut run: Vec<Suppression> = Vec::new();
        let mut run_op = None;
        for entry in page {
            let op = entry.operation;
            match entry.record {
                Recorded::Suppression(s) => {
                    if run_op != Some(op) {
                        self.flush(run_op, std::mem::take(&mut run)).await?;
                        run_op = Some(op);
                    }
                    run.push(s);
                }
                Recorded::Group { group, before } => {
                    self.flush(run_op.take(), std::mem::take(&mut run)).await?;
                    self.group(op, group, before).await?;
                }
            }
        }
        self.flush(run_op, run).await
    }

    async fn flush(
        &mut self,
        op: Option<Operation>,
        run: Vec<Suppression>,
    ) -> Result<(), EngineError> {
        if run.is_empty() {
            return Ok(());
        }
        let backend = self.engine.backend();
        match op {
            Some(Operation::Removed) if self.dry_run => {
                for s in run {
                    let held = self.held(&s.email).await?;
                    let free = !held.iter().any(|h| {
                        h.id == s.id || (h.scope == s.scope && h.kind.family() == s.kind.family())
                    });
                    if free {
                        held.push(s);
                        self.done.restored += 1;
                    }
                }
            }
            Some(Operation::Removed) => {
                let put = backend.put_back(self.tenant, run, self.actor).await?;
                self.done.restored += put.iter().filter(|p| **p).count() as u64;
            }
            Some(Operation::Added) if self.dry_run => {
                for s in run {
                    let held = self.held(&s.email).await?;
                    let before = held.len();
                    held.retain(|h| h.id != s.id);
                    self.done.removed += (before - held.len()) as u64;
                }
            }
            Some(Operation::Added) => {
                let ids: Vec<SuppressionId> = run.iter().map(|s| s.id).collect();
                self.done.removed += backend.remove_ids(self.tenant, &ids, self.actor).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// What a dry run takes an address to hold now.
    async fn held(&mut self, email: &Email) -> Result<&mut Vec<Suppression>, EngineError> {
        if !self.seen.contains_key(email) {
            let now = self.engine.entries(self.tenant, email).await?;
            self.seen.insert(email.clone(), now);
        }
        self.seen
            .get_mut(email)
            .ok_or_else(|| EngineError::internal(self.engine.backend_name(), "address not seen"))
    }

    async fn group(
        &mut self,
        op: Operation,
        group: Group,
        before: Option<Group>,
    ) -> Result<(), EngineError> {
        let backend = self.engine.backend();
        let current = backend.group(self.tenant, group.id).await?;
        match op {
            // Every tenant's default stream is hush's; a restore never takes
            // it away.
            Operation::GroupCreated if group.key.as_str() == DEFAULT_STREAM_KEY => {}
            Operation::GroupCreated => {
                if current.is_some()
                    && (self.dry_run
                        || backend
                            .delete_group(self.tenant, group.id, self.actor)
                            .await?)
                {
                    self.done.removed += 1;
                }
            }
            Operation::GroupChanged => {
                if let (Some(current), Some(before)) = (current, before)
                    && current != before
                {
                    if !self.dry_run {
                        let changes = GroupChanges {
                            name: Some(before.name),
                            description: Some(before.description),
                            is_default: Some(before.is_default),
                            unsubscribe_handling: Some(before.unsubscribe_handling),
                            archived_at: Some(before.archived_at),
                            updated_at: Some(Engine::now()),
                        };
                        backend
                            .update_group(self.tenant, group.id, changes, self.actor)
                            .await?;
                    }
                    self.done.restored += 1;
                }
            }
            Operation::GroupDeleted => {
                if current.is_none() {
                    let put = self.dry_run
                        || match backend
                            .put_back_group(self.tenant, group.clone(), self.actor)
                            .await
                        {
                            Ok(put) => put,
                            // A group made since took its key or name: the
                            // old one stays deleted, and its members cannot
                            // come back either.
                            Err(EngineError::GroupKeyTaken(_) | EngineError::GroupNameTaken(_)) => {
                                tracing::warn!(tenant = %self.tenant, group = group.id.0, "a restore could not put a group back: its key or name is taken");
                                false
                            }
                            Err(other) => return Err(other),
                        };
                    if put {
                        self.done.restored += 1;
                    }
                }
            }
            Operation::Added | Operation::Removed => {}
        }
        Ok(())
    }
}
