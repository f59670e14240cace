//! Listings kept for the scans that walk them.
//!
//! A provider's listing cannot be resumed from hush's `(created_at, id)`
//! cursor (Postmark's dump has no paging at all: its Suppressions API docs
//! give it no `count` or `offset`; v3 lists are offset-paged and several of
//! them merge into one order), so a scan reads the listing once when it
//! starts and pages through that snapshot; without it every batch would read
//! the whole listing again and a walk (`hush copy`, a dump through hush)
//! would cost calls quadratic in its size. The snapshots are bounded in
//! number, and one left unread for a while (an abandoned scan) is dropped, so
//! memory comes back; reading on from a cursor after that reads the listing
//! again.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hush_model::{ListFilter, Suppression, TenantId};

#[derive(Debug)]
struct Kept {
    tenant: TenantId,
    filter: ListFilter,
    rows: Arc<Vec<Suppression>>,
    used: Instant,
}

/// At most `max` snapshots, one per tenant and filter, each dropped after
/// `idle` unread; a further one evicts the least recently read.
#[derive(Debug)]
pub struct Snapshots {
    max: usize,
    idle: Duration,
    kept: Mutex<Vec<Kept>>,
}

impl Snapshots {
    pub fn new(max: usize, idle: Duration) -> Self {
        Self {
            max: max.max(1),
            idle,
            kept: Mutex::new(Vec::new()),
        }
    }

    fn kept(&self) -> MutexGuard<'_, Vec<Kept>> {
        // The list holds no invariant a panic elsewhere could break.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The snapshot of `filter` for `tenant`, if one is kept.
    pub fn get(&self, tenant: &TenantId, filter: &ListFilter) -> Option<Arc<Vec<Suppression>>> {
        let mut kept = self.kept();
        let now = Instant::now();
        kept.retain(|k| now.duration_since(k.used) < self.idle);
        let found = kept
            .iter_mut()
            .find(|k| &k.tenant == tenant && &k.filter == filter)?;
        found.used = now;
        Some(Arc::clone(&found.rows))
    }

    /// Keeps `rows` as the snapshot of `filter`, in place of an older one.
    pub fn put(&self, tenant: &TenantId, filter: &ListFilter, rows: Arc<Vec<Suppression>>) {
        let mut kept = self.kept();
        let now = Instant::now();
        kept.retain(|k| {
            now.duration_since(k.used) < self.idle && !(&k.tenant == tenant && &k.filter == filter)
        });
        if kept.len() >= self.max
            && let Some(oldest) = kept
                .iter()
                .enumerate()
                .min_by_key(|(_, k)| k.used)
                .map(|(at, _)| at)
        {
            kept.swap_remove(oldest);
        }
        kept.push(Kept {
            tenant: tenant.clone(),
            filter: filter.clone(),
            rows,
            used: now,
        });
    }

    /// Drops the snapshot of `filter`, once its walk has ended.
    pub fn forget(&self, tenant: &TenantId, filter: &ListFilter) {
        self.kept()
            .retain(|k| !(&k.tenant == tenant && &k.filter == filter));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use hush_model::{KindSet, ScopeFilter};

    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    fn filter() -> ListFilter {
        ListFilter::new(KindSet::ALL, ScopeFilter::Any)
    }

    #[test]
    fn keeps_at_most_max_and_evicts_the_least_recently_read() {
        let snapshots = Snapshots::new(2, Duration::from_secs(600));
        let rows = Arc::new(Vec::new());
        snapshots.put(&tenant("a"), &filter(), Arc::clone(&rows));
        snapshots.put(&tenant("b"), &filter(), Arc::clone(&rows));
        assert!(snapshots.get(&tenant("a"), &filter()).is_some());
        snapshots.put(&tenant("c"), &filter(), Arc::clone(&rows));
        assert!(
            snapshots.get(&tenant("a"), &filter()).is_some(),
            "read last"
        );
        assert!(snapshots.get(&tenant("b"), &filter()).is_none(), "evicted");
        assert!(snapshots.get(&tenant("c"), &filter()).is_some());
        snapshots.forget(&tenant("c"), &filter());
        assert!(snapshots.get(&tenant("c"), &filter()).is_none());
    }

    #[test]
    fn an_unread_snapshot_is_dropped() {
        let snapshots = Snapshots::new(4, Duration::ZERO);
        snapshots.put(&tenant("a"), &filter(), Arc::new(Vec::new()));
        assert!(snapshots.get(&tenant("a"), &filter()).is_none());
    }
}
