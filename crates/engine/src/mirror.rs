//! Mirrors: pushing a tenant's journal out to a provider the tenant still
//! sends through (docs/mirrors.md). The journal is the outbox: a mirror's
//! position is the last entry it has dealt with, kept in the store
//! (`Backend::save_mirror`), and each step pushes the entries after it, in
//! journal order, with the provider's upstream client (a `Backend` that
//! speaks the provider's API).
//!
//! - Consecutive `added` entries go in one add call, which the upstream
//!   batches as its provider allows (Postmark 50 per call, v3 lists).
//! - An add of what is there and a removal of what is gone succeed at every
//!   provider, so pushing an entry twice (a step retried after a crash
//!   before its position was saved) changes nothing: at least once.
//! - A temporary failure (the provider unreachable, timing out, answering
//!   429 or 5xx) ends the step with the position at the last entry pushed;
//!   the caller backs off and tries again.
//! - A permanent one (the provider refuses that change) is recorded with
//!   the provider's message, and the mirror moves on.
//! - What the provider cannot hold (a group it does not have, groups at
//!   all) is skipped and counted.
//! - No echo: an entry a webhook of the mirror's own provider made is not
//!   pushed back to it.

use std::collections::HashMap;
use std::sync::Arc;

use hush_model::{
    Actor, Door, GroupId, JournalEntry, JournalOrder, JournalQuery, KindSet, ListFilter,
    MirrorFailure, MirrorName, MirrorState, NewSuppression, Operation, Position, Recorded, Scope,
    ScopeFilter, Suppression, TenantId,
};

use crate::{AddOutcome, Backend, Engine, EngineError};

/// Where a tenant's changes go: a mirror's name, its provider (as webhook
/// doors name it: `postmark`, `sendpost`, `sendgrid` for v3) and the
/// provider's upstream client.
#[derive(Debug, Clone)]
pub struct MirrorTarget {
    pub name: MirrorName,
    /// The door of this provider's webhooks: entries with it are not
    /// pushed back (no echo).
    pub echo_door: Door,
    pub backend: Arc<dyn Backend>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MirrorStep {
    /// Entries the provider took.
    pub pushed: u64,
    /// Entries the provider refused for good (recorded).
    pub refused: u64,
    /// Entries it cannot hold, and echoes of its own webhooks.
    pub skipped: u64,
    /// Whether the step reached the end of the journal.
    pub caught_up: bool,
}

/// What a retry of a mirror's recorded refusals did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MirrorRetry {
    /// Refusals tried again.
    pub retried: u64,
    /// Taken by the provider (or now skipped), and forgotten.
    pub pushed: u64,
    /// Refused again, and kept.
    pub refused: u64,
    /// Whose journal entry is gone (pruned), forgotten.
    pub gone: u64,
}

/// What a resync found, and with `dry_run` off, did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MirrorResync {
    /// Addresses hush suppresses (in a scope the provider can hold) of
    /// which the provider holds nothing.
    pub missing: u64,
    /// Addresses the provider holds of which hush holds nothing.
    pub extra: u64,
    /// Entries pushed to the provider for the missing addresses.
    pub added: u64,
    /// Addresses removed at the provider.
    pub removed: u64,
    /// Changes the provider refused (not recorded: a resync is not the
    /// journal's).
    pub refused: u64,
}

/// Entries read a page at a time by a resync.
const RESYNC_PAGE: u32 = 1_000;
/// Entries one resync add call carries.
const RESYNC_BATCH: usize = 500;

/// Refusals one retry tries at most.
const RETRY_LIMIT: u32 = 10_000;

/// Whether a failure may pass if the call is tried again later.
pub fn is_temporary(err: &EngineError) -> bool {
    match err {
        EngineError::Unavailable { .. } | EngineError::UpstreamTimeout { .. } => true,
        EngineError::Upstream { status, .. } => {
            status.is_none_or(|s| s == 408 || s == 429 || s >= 500)
        }
        // A fault of hush's own store or code: the change is not at fault.
        EngineError::Internal { .. } => true,
        _ => false,
    }
}

/// What became of one entry.
enum Fate {
    Pushed,
    Refused(String),
    Skipped,
}

impl Engine {
    /// Where a mirror of the tenant stands.
    pub async fn mirror_state(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
    ) -> Result<MirrorState, EngineError> {
        self.require_journal(tenant)?;
        self.backend().mirror_state(tenant, mirror).await
    }

    /// Up to `limit` refusals of a mirror, newest first.
    pub async fn mirror_failures(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        limit: u32,
    ) -> Result<Vec<MirrorFailure>, EngineError> {
        self.require_journal(tenant)?;
        self.backend().mirror_failures(tenant, mirror, limit).await
    }

    /// Takes or renews a mirror's lease for `holder` (see
    /// `Backend::lease_mirror`).
    pub async fn lease_mirror(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, EngineError> {
        self.backend()
            .lease_mirror(tenant, mirror, holder, ttl)
            .await
    }

    /// How many entries the mirror has yet to deal with, up to `limit`, and
    /// when the oldest of them was made.
    pub async fn mirror_lag(
        &self,
        tenant: &TenantId,
        mirror: &MirrorName,
        limit: u32,
    ) -> Result<(u64, Option<hush_model::Timestamp>), EngineError> {
        let state = self.mirror_state(tenant, mirror).await?;
        let behind = self.entries_after(tenant, state.position, limit).await?;
        Ok((behind.len() as u64, behind.first().map(|e| e.at)))
    }

    async fn entries_after(
        &self,
        tenant: &TenantId,
        after: Option<Position>,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, EngineError> {
        let query = JournalQuery {
            order: JournalOrder::OldestFirst,
            cursor: after,
            ..JournalQuery::newest_first(limit)
        };
        self.backend().journal(tenant, &query).await
    }

    /// Pushes up to `limit` entries after the mirror's position and saves
    /// where it got to. A temporary failure saves the position reached and
    /// the error, then returns the error.
    pub async fn mirror_step(
        &self,
        tenant: &TenantId,
        target: &MirrorTarget,
        limit: u32,
    ) -> Result<MirrorStep, EngineError> {
        self.require_journal(tenant)?;
        let mut state = self.backend().mirror_state(tenant, &target.name).await?;
        let entries = self.entries_after(tenant, state.position, limit).await?;
        let mut step = MirrorStep {
            caught_up: entries.len() < limit as usize,
            ..MirrorStep::default()
        };
        // Nothing to push and nothing to clear: an idle mirror, stepping
        // twice a second, writes nothing.
        if entries.is_empty() && state.last_error.is_none() {
            return Ok(step);
        }
        let mut failures = Vec::new();
        let mut pusher = Pusher::new(self, tenant, target);
        let mut at = 0;
        let mut halted = None;
        while at < entries.len() {
            // A run of adds goes in one call.
            let run = entries[at..]
                .iter()
                .take_while(|e| e.operation == Operation::Added && !pusher.is_echo(e))
                .count()
                .max(1);
            let chunk = &entries[at..at + run];
            match pusher.push(chunk).await {
                Ok(fates) => {
                    for (entry, fate) in chunk.iter().zip(fates) {
                        match fate {
                            Fate::Pushed => step.pushed += 1,
                            Fate::Skipped => step.skipped += 1,
                            Fate::Refused(message) => {
                                step.refused += 1;
                                failures.push(MirrorFailure {
                                    position: entry.position,
                                    at: Engine::now(),
                                    change: describe(entry),
                                    message,
                                });
                            }
                        }
                    }
                    state.position = chunk.last().map(|e| e.position);
                    at += run;
                }
                Err(err) => {
                    halted = Some(err);
                    break;
                }
            }
        }
        state.failed += step.refused;
        state.skipped += step.skipped;
        let labels = [
            ("tenant", tenant.as_str().to_owned()),
            ("mirror", target.name.as_str().to_owned()),
        ];
        for (outcome, changes) in [
            ("pushed", step.pushed),
            ("refused", step.refused),
            ("skipped", step.skipped),
        ] {
            let mut labels = labels.to_vec();
            labels.push(("outcome", outcome.to_owned()));
            metrics::counter!("hush_mirror_changes_total", &labels).increment(changes);
        }
        if halted.is_some() {
            metrics::counter!("hush_mirror_step_failures_total", &labels).increment(1);
        }
        if let Some(position) = state.position {
            #[allow(clippy::cast_precision_loss)] // positions stay far below 2^53
            metrics::gauge!("hush_mirror_position", &labels).set(position.0 as f64);
        }
        match &halted {
            None => {
                state.last_success = Some(Engine::now());
                state.last_error = None;
            }
            Some(err) => {
                step.caught_up = false;
                if at > 0 {
                    state.last_success = Some(Engine::now());
                }
                state.last_error = Some(err.to_string());
            }
        }
        self.backend()
            .save_mirror(tenant, &target.name, &state, &failures)
            .await?;
        match halted {
            Some(err) => Err(err),
            None => Ok(step),
        }
    }
}

impl Engine {
    /// Pushes a mirror's recorded refusals again, oldest first (the
    /// provider may take now what it refused: a complaint lifted there by
    /// hand, say). Taken ones are forgotten; refused ones stay. A
    /// temporary failure stops it, having forgotten what went through.
    pub async fn mirror_retry(
        &self,
        tenant: &TenantId,
        target: &MirrorTarget,
    ) -> Result<MirrorRetry, EngineError> {
        self.require_journal(tenant)?;
        let failures = self
            .backend()
            .mirror_failures(tenant, &target.name, RETRY_LIMIT)
            .await?;
        let mut report = MirrorRetry::default();
        let mut forgotten = Vec::new();
        let mut pusher = Pusher::new(self, tenant, target);
        let mut halted = None;
        for failure in failures.iter().rev() {
            report.retried += 1;
            let query = JournalQuery {
                order: JournalOrder::OldestFirst,
                cursor: Some(Position(failure.position.0 - 1)),
                ..JournalQuery::newest_first(1)
            };
            let entry = self
                .backend()
                .journal(tenant, &query)
                .await?
                .into_iter()
                .find(|e| e.position == failure.position);
            let Some(entry) = entry else {
                report.gone += 1;
                forgotten.push(failure.position);
                continue;
            };
            match pusher.push(std::slice::from_ref(&entry)).await {
                Ok(fates) => match fates.first() {
                    Some(Fate::Refused(_)) => report.refused += 1,
                    _ => {
                        report.pushed += 1;
                        forgotten.push(failure.position);
                    }
                },
                Err(err) => {
                    halted = Some(err);
                    break;
                }
            }
        }
        self.backend()
            .clear_mirror_failures(tenant, &target.name, &forgotten)
            .await?;
        match halted {
            Some(err) => Err(err),
            None => Ok(report),
        }
    }
}

/// Every entry of a tenant, read a page at a time.
async fn every_entry(
    backend: &dyn Backend,
    tenant: &TenantId,
) -> Result<Vec<Suppression>, EngineError> {
    let filter = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = backend.scan(tenant, &filter, cursor, RESYNC_PAGE).await?;
        cursor = page.last().map(hush_model::ScanCursor::after);
        let done = page.len() < RESYNC_PAGE as usize;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

impl Engine {
    /// Compares the tenant with what the provider holds, address by
    /// address, and with `dry_run` off pushes the difference: every entry
    /// of an address the provider lacks, and the removal of every address
    /// hush does not hold. For a mirror configured after the fact, or a
    /// provider changed by hand; the mirror's position is left as it is.
    /// Addresses, not kinds or scopes, are compared: providers fold kinds
    /// and scopes together (docs/mirrors.md), and an address the provider
    /// holds in some form is suppressed there.
    pub async fn mirror_resync(
        &self,
        tenant: &TenantId,
        target: &MirrorTarget,
        dry_run: bool,
    ) -> Result<MirrorResync, EngineError> {
        self.require_journal(tenant)?;
        let ours = every_entry(self.backend(), tenant).await?;
        let theirs: std::collections::HashSet<hush_model::Email> =
            every_entry(&*target.backend, tenant)
                .await?
                .into_iter()
                .map(|s| s.email)
                .collect();
        let mut pusher = Pusher::new(self, tenant, target);
        let held: std::collections::HashSet<&hush_model::Email> =
            ours.iter().map(|s| &s.email).collect();
        let mut to_add = Vec::new();
        let mut missing = std::collections::HashSet::new();
        for suppression in &ours {
            if theirs.contains(&suppression.email) {
                continue;
            }
            if let Some(scope) = pusher.scope(suppression.scope).await? {
                missing.insert(&suppression.email);
                to_add.push(new_suppression(suppression, scope));
            }
        }
        let mut extra: Vec<&hush_model::Email> =
            theirs.iter().filter(|e| !held.contains(e)).collect();
        extra.sort();
        let mut report = MirrorResync {
            missing: missing.len() as u64,
            extra: extra.len() as u64,
            ..MirrorResync::default()
        };
        if dry_run {
            return Ok(report);
        }
        let actor = pusher.actor.clone();
        let mut pending = to_add.into_iter().peekable();
        while pending.peek().is_some() {
            let batch: Vec<NewSuppression> = pending.by_ref().take(RESYNC_BATCH).collect();
            for outcome in target.backend.add(tenant, batch, &actor).await? {
                match outcome {
                    AddOutcome::Added { .. } => report.added += 1,
                    AddOutcome::Refused { .. } => report.refused += 1,
                    AddOutcome::UnknownGroup(_) => {}
                }
            }
        }
        for email in extra {
            let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
            filter.email = Some(hush_model::EmailMatch::Exact(email.clone()));
            match target
                .backend
                .remove_matching(tenant, &filter, &actor)
                .await
            {
                Ok(_) => report.removed += 1,
                Err(err) if is_temporary(&err) => return Err(err),
                Err(_) => report.refused += 1,
            }
        }
        Ok(report)
    }
}

/// `"<operation> <address or group key>"`, for a refusal's record.
fn describe(entry: &JournalEntry) -> String {
    match &entry.record {
        Recorded::Suppression(s) => format!("{} {}", entry.operation.as_str(), s.email),
        Recorded::Group { group, .. } => format!("{} {}", entry.operation.as_str(), group.key),
    }
}

/// Pushes entries to one mirror, knowing its groups by key.
struct Pusher<'a> {
    engine: &'a Engine,
    tenant: &'a TenantId,
    target: &'a MirrorTarget,
    actor: Actor,
    /// hush's group id → the provider's, or `None` when it has no such
    /// group.
    groups: HashMap<GroupId, Option<GroupId>>,
}

impl<'a> Pusher<'a> {
    fn new(engine: &'a Engine, tenant: &'a TenantId, target: &'a MirrorTarget) -> Self {
        Self {
            engine,
            tenant,
            target,
            actor: Actor::new(Door::MIRROR).with_key(target.name.as_str()),
            groups: HashMap::new(),
        }
    }

    fn is_echo(&self, entry: &JournalEntry) -> bool {
        entry.actor.door == self.target.echo_door
    }

    /// The provider's scope for one of hush's, when it has it. A group is
    /// matched by its key (a Postmark stream's id, a v3 group's name-made
    /// key): hush's ids are not the provider's.
    async fn scope(&mut self, scope: Scope) -> Result<Option<Scope>, EngineError> {
        let Scope::Group(id) = scope else {
            return Ok(Some(Scope::Global));
        };
        if let Some(known) = self.groups.get(&id) {
            return Ok(known.map(Scope::Group));
        }
        let theirs = match self.engine.backend().group(self.tenant, id).await? {
            Some(ours) => match self
                .target
                .backend
                .group_by_key(self.tenant, &ours.key)
                .await
            {
                Ok(found) => found.map(|g| g.id),
                Err(err) if is_temporary(&err) => return Err(err),
                Err(_) => None,
            },
            // Deleted since: nothing at the provider to change.
            None => None,
        };
        self.groups.insert(id, theirs);
        Ok(theirs.map(Scope::Group))
    }

    /// Pushes a run of adds, or one other entry; a temporary failure is an
    /// error, anything else a fate per entry.
    async fn push(&mut self, chunk: &[JournalEntry]) -> Result<Vec<Fate>, EngineError> {
        let [first, ..] = chunk else {
            return Ok(Vec::new());
        };
        if self.is_echo(first) {
            return Ok(vec![Fate::Skipped]);
        }
        match (&first.operation, &first.record) {
            (Operation::Added, Recorded::Suppression(_)) => self.add(chunk).await,
            (Operation::Removed, Recorded::Suppression(s)) => Ok(vec![self.remove(s).await?]),
            // Groups are the provider's own business: a Postmark stream or
            // a v3 group is made there by whoever sends through it. Members
            // of a group the provider has are mirrored; groups are not.
            _ => Ok(vec![Fate::Skipped]),
        }
    }

    async fn add(&mut self, chunk: &[JournalEntry]) -> Result<Vec<Fate>, EngineError> {
        let mut fates: Vec<Option<Fate>> = Vec::with_capacity(chunk.len());
        let mut items = Vec::new();
        let mut sent = Vec::new();
        for (n, entry) in chunk.iter().enumerate() {
            let Recorded::Suppression(s) = &entry.record else {
                fates.push(Some(Fate::Skipped));
                continue;
            };
            match self.scope(s.scope).await? {
                Some(scope) => {
                    items.push(new_suppression(s, scope));
                    sent.push(n);
                    fates.push(None);
                }
                None => fates.push(Some(Fate::Skipped)),
            }
        }
        if !items.is_empty() {
            match self
                .target
                .backend
                .add(self.tenant, items, &self.actor)
                .await
            {
                Ok(outcomes) => {
                    for (n, outcome) in sent.iter().zip(outcomes) {
                        fates[*n] = Some(match outcome {
                            AddOutcome::Added { .. } => Fate::Pushed,
                            AddOutcome::UnknownGroup(_) => Fate::Skipped,
                            AddOutcome::Refused { message } => Fate::Refused(message),
                        });
                    }
                }
                Err(err) if is_temporary(&err) => return Err(err),
                Err(err) => {
                    let message = err.to_string();
                    for n in sent {
                        fates[n] = Some(Fate::Refused(message.clone()));
                    }
                }
            }
        }
        Ok(fates
            .into_iter()
            .map(|fate| fate.unwrap_or(Fate::Skipped))
            .collect())
    }

    /// Removes at the provider what the removal took away. Providers fold
    /// kinds together (Postmark holds a v3 unsubscribe as a
    /// `ManualSuppression`), so the kind removed may be held there under
    /// another. While hush still suppresses the address in that scope,
    /// only the removed kind goes (the provider keeps suppressing it, as
    /// hush does); once hush holds nothing there, everything of the
    /// address in that scope goes. This reads hush as it is now, not as it
    /// was at the entry: a later change of the address is pushed after
    /// this one, so the provider ends where hush is.
    async fn remove(&mut self, removed: &Suppression) -> Result<Fate, EngineError> {
        let Some(scope) = self.scope(removed.scope).await? else {
            return Ok(Fate::Skipped);
        };
        let scope = match scope {
            Scope::Global => ScopeFilter::Global,
            Scope::Group(id) => ScopeFilter::Group(id),
        };
        let still_held = self
            .engine
            .backend()
            .entries(self.tenant, &removed.email)
            .await?
            .iter()
            .any(|held| held.scope == removed.scope);
        let kinds = if still_held {
            KindSet::family(removed.kind.family())
        } else {
            KindSet::ALL
        };
        let mut filter = ListFilter::new(kinds, scope);
        filter.email = Some(hush_model::EmailMatch::Exact(removed.email.clone()));
        match self
            .target
            .backend
            .remove_matching(self.tenant, &filter, &self.actor)
            .await
        {
            Ok(0) => self.kept(&filter, &removed.email).await,
            Ok(_) => Ok(Fate::Pushed),
            Err(err) if is_temporary(&err) => Err(err),
            Err(err) => Ok(Fate::Refused(err.to_string())),
        }
    }

    /// After a removal that removed nothing: nothing there to remove is the
    /// same success, but a provider may also refuse one address and answer
    /// the call (Postmark's `Failed` for a spam complaint, which its client
    /// logs and counts as not removed). So the provider is asked what it
    /// still holds.
    async fn kept(
        &self,
        filter: &ListFilter,
        email: &hush_model::Email,
    ) -> Result<Fate, EngineError> {
        match self.target.backend.entries(self.tenant, email).await {
            Ok(held)
                if held
                    .iter()
                    .any(|s| filter.scope.matches(s.scope) && filter.kinds.contains(&s.kind)) =>
            {
                Ok(Fate::Refused(format!(
                    "the provider still holds {email} after the removal: it refused it (its client's log has the provider's reason)"
                )))
            }
            Ok(_) => Ok(Fate::Pushed),
            Err(err) if is_temporary(&err) => Err(err),
            // A provider that cannot say what it holds: the removal went
            // through without complaint.
            Err(_) => Ok(Fate::Pushed),
        }
    }
}

fn new_suppression(s: &Suppression, scope: Scope) -> NewSuppression {
    NewSuppression {
        email: s.email.clone(),
        scope,
        kind: s.kind.clone(),
        origin: s.origin,
        created_at: s.created_at,
    }
}
