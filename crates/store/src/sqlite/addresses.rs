//! Which addresses the file may hold: a Bloom filter over every
//! `(tenant, address)` that has ever had an entry, so that a lookup of an
//! address with no entry (most send checks) is answered without touching
//! SQLite.
//!
//! It is exact where it answers: a Bloom filter has no false negatives, so
//! "not held" is certain; "maybe held" goes to SQLite, which decides. It
//! stays exact because every write to the file goes through this process
//! (the backend holds the file's serving lock, `SqliteBackend::open`) and
//! an address is put in the filter before its add is sent to the writer: a
//! reader can see "maybe" for a row not yet committed, never "no" for a
//! committed one. Removals leave the address in the filter; it then costs
//! one SQLite read, as before.
//!
//! The filter is built at open from the identity index and grows by layers
//! (a scalable Bloom filter): when a layer holds as many addresses as it was
//! sized for, the next one is twice as large, so the false-positive rate
//! stays near [`FALSE_POSITIVE_RATE`] per layer however much the store
//! grows. At 1,000,000 addresses it takes about 2.5 MB.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

use fastbloom::AtomicBloomFilter;
use hush_model::{Email, TenantId};

/// The false-positive rate each layer is sized for: one lookup in a
/// hundred of an absent address still reads SQLite.
const FALSE_POSITIVE_RATE: f64 = 0.01;
/// The smallest layer, in addresses.
const MIN_LAYER: usize = 1 << 16;

struct Layer {
    bloom: AtomicBloomFilter,
    capacity: usize,
    inserted: AtomicUsize,
}

impl Layer {
    fn new(capacity: usize) -> Self {
        Self {
            bloom: AtomicBloomFilter::with_false_pos(FALSE_POSITIVE_RATE).expected_items(capacity),
            capacity,
            inserted: AtomicUsize::new(0),
        }
    }

    fn is_full(&self) -> bool {
        self.inserted.load(Ordering::Relaxed) >= self.capacity
    }
}

pub(super) struct AddressFilter {
    layers: RwLock<Vec<Layer>>,
}

impl AddressFilter {
    /// An empty filter whose first layer is sized for `expected` addresses.
    pub(super) fn with_capacity(expected: usize) -> Self {
        Self {
            layers: RwLock::new(vec![Layer::new(expected.max(MIN_LAYER))]),
        }
    }

    /// Notes that `tenant` may hold entries for `email`.
    pub(super) fn insert(&self, tenant: &TenantId, email: &Email) {
        self.insert_raw(tenant.as_str(), email.as_str());
    }

    pub(super) fn insert_raw(&self, tenant: &str, email: &str) {
        let item = (tenant, email);
        {
            let layers = self.layers.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(last) = layers.last().filter(|l| !l.is_full()) {
                // `insert` says whether the item was already there (up to a
                // false positive): only new addresses fill the layer.
                if !last.bloom.insert(&item) {
                    last.inserted.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
        let mut layers = self.layers.write().unwrap_or_else(PoisonError::into_inner);
        if layers.last().is_none_or(Layer::is_full) {
            let next = layers.last().map_or(MIN_LAYER, |l| l.capacity * 2);
            layers.push(Layer::new(next));
        }
        if let Some(last) = layers.last()
            && !last.bloom.insert(&item)
        {
            last.inserted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// False only if `tenant` has never held an entry for `email` in this
    /// file since the filter was built.
    pub(super) fn may_hold(&self, tenant: &TenantId, email: &Email) -> bool {
        let item = (tenant.as_str(), email.as_str());
        self.layers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|layer| layer.bloom.contains(&item))
    }
}

impl fmt::Debug for AddressFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layers = self.layers.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("AddressFilter")
            .field("layers", &layers.len())
            .field(
                "addresses",
                &layers
                    .iter()
                    .map(|l| l.inserted.load(Ordering::Relaxed))
                    .sum::<usize>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(n: usize) -> Email {
        Email::parse(&format!("user{n}@example.com")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn never_forgets_an_address_as_it_grows_by_layers() {
        let tenant = TenantId::parse("t").unwrap_or_else(|e| panic!("{e}"));
        let filter = AddressFilter::with_capacity(0);
        let n = MIN_LAYER * 3 + 17;
        for i in 0..n {
            filter.insert(&tenant, &email(i));
        }
        assert!(
            filter
                .layers
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
                >= 2
        );
        assert!((0..n).all(|i| filter.may_hold(&tenant, &email(i))));
        // Mostly "no" for addresses never inserted, and per tenant.
        let other = TenantId::parse("u").unwrap_or_else(|e| panic!("{e}"));
        let misses = (0..10_000)
            .filter(|i| !filter.may_hold(&other, &email(*i)))
            .count();
        assert!(
            misses > 9_000,
            "{misses} of 10000 absent addresses ruled out"
        );
    }
}
