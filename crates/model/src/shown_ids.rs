//! The ids clients see: per tenant, and telling nothing of other tenants.
//!
//! Stores number groups and suppressions from one sequence for every
//! tenant, so ids shown as stored would let one tenant watch another's
//! activity (its group ids and SendPost ids jump by what others created in
//! between). Shown ids are a keyed permutation of the stored ones, one per
//! tenant: still integers (SendGrid's group ids, SendPost's ids), unique
//! within the tenant, and mapped back exactly, but each tenant's look
//! random. The key lives with the data, so every instance and every
//! restart shows the same ids.

use sha2::{Digest as _, Sha256};

use crate::{GroupId, SuppressionId, TenantId};

/// Opaque group ids are `GROUP_OPAQUE_BASE + permutation(id - 1)` over 30
/// bits: from 2^30 to 2^31 - 1, positive in a 32-bit signed integer, which
/// every SendGrid SDK reads a group id into.
const GROUP_BITS: u32 = 30;
const GROUP_OPAQUE_BASE: i64 = 1 << GROUP_BITS;
/// SendPost ids are `1 + permutation(id - 1)` over 52 bits: exact in a
/// JavaScript number too.
const SUPPRESSION_BITS: u32 = 52;
const ROUNDS: u8 = 4;

#[derive(Clone, Copy)]
enum Domain {
    Group = 1,
    Suppression = 2,
}

/// A store's key for shown ids, and the group ids it showed as stored
/// before ids were opaque.
#[derive(Clone, PartialEq, Eq)]
pub struct ShownIds {
    key: [u8; 32],
    /// Groups up to this stored id keep showing it: clients configured
    /// with them (a SendGrid `asm.group_id` in every send) keep working.
    legacy_groups_up_to: i64,
}

impl std::fmt::Debug for ShownIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShownIds")
            .field("legacy_groups_up_to", &self.legacy_groups_up_to)
            .finish_non_exhaustive()
    }
}

impl ShownIds {
    pub fn new(key: [u8; 32], legacy_groups_up_to: i64) -> Self {
        Self {
            key,
            legacy_groups_up_to,
        }
    }

    /// The id a tenant sees for one of its groups.
    pub fn group(&self, tenant: &TenantId, id: GroupId) -> i64 {
        let Some(index) = index_of(id.0, GROUP_BITS) else {
            return id.0;
        };
        if id.0 <= self.legacy_groups_up_to {
            return id.0;
        }
        GROUP_OPAQUE_BASE + self.permute(tenant, Domain::Group, GROUP_BITS, index, true) as i64
    }

    /// The group a shown id names, or `None` when it names none this
    /// tenant could have been shown.
    pub fn group_of(&self, tenant: &TenantId, shown: i64) -> Option<GroupId> {
        if (1..=self.legacy_groups_up_to).contains(&shown) {
            return Some(GroupId(shown));
        }
        let index = u64::try_from(shown.checked_sub(GROUP_OPAQUE_BASE)?).ok()?;
        if index >= 1 << GROUP_BITS {
            return None;
        }
        let stored = self.permute(tenant, Domain::Group, GROUP_BITS, index, false) as i64 + 1;
        (stored > self.legacy_groups_up_to).then_some(GroupId(stored))
    }

    /// The id a tenant sees for one of its suppressions (SendPost's `id`).
    pub fn suppression(&self, tenant: &TenantId, id: SuppressionId) -> i64 {
        match index_of(id.0, SUPPRESSION_BITS) {
            Some(index) => {
                1 + self.permute(tenant, Domain::Suppression, SUPPRESSION_BITS, index, true) as i64
            }
            None => id.0,
        }
    }

    /// A balanced Feistel network of [`ROUNDS`] rounds over `bits` bits,
    /// its round function SHA-256 of the key, the tenant, the round and
    /// the half: a permutation of `0..2^bits` for each tenant, run
    /// backwards to invert it.
    fn permute(
        &self,
        tenant: &TenantId,
        domain: Domain,
        bits: u32,
        value: u64,
        forward: bool,
    ) -> u64 {
        let half = bits / 2;
        let mask = (1_u64 << half) - 1;
        let (mut left, mut right) = (value >> half, value & mask);
        let round = |r: u8, input: u64| {
            let mut hash = Sha256::new();
            hash.update(self.key);
            hash.update([domain as u8, r]);
            hash.update(tenant.as_str().as_bytes());
            hash.update([0]);
            hash.update(input.to_le_bytes());
            let digest = hash.finalize();
            let mut first = [0_u8; 8];
            first.copy_from_slice(&digest[..8]);
            u64::from_le_bytes(first) & mask
        };
        if forward {
            for r in 0..ROUNDS {
                (left, right) = (right, left ^ round(r, right));
            }
        } else {
            for r in (0..ROUNDS).rev() {
                (left, right) = (right ^ round(r, left), left);
            }
        }
        (left << half) | right
    }
}

/// `id - 1` when it fits the permutation's domain. Stored ids start at 1;
/// one past the domain (over a billion groups, four quadrillion entries)
/// is shown as stored.
fn index_of(id: i64, bits: u32) -> Option<u64> {
    let index = u64::try_from(id.checked_sub(1)?).ok()?;
    (index < 1 << bits).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ids(legacy: i64) -> ShownIds {
        ShownIds::new([7; 32], legacy)
    }

    #[test]
    fn consecutive_groups_do_not_look_consecutive_and_differ_per_tenant() {
        let shown = ids(0);
        let (a, b) = (tenant("a"), tenant("b"));
        let first = shown.group(&a, GroupId(41));
        let next = shown.group(&a, GroupId(42));
        assert!((GROUP_OPAQUE_BASE..=i64::from(i32::MAX)).contains(&first));
        assert!((next - first).abs() > 1_000, "{first} {next}");
        assert_ne!(shown.group(&b, GroupId(41)), first);
        assert_eq!(shown.group_of(&a, first), Some(GroupId(41)));
    }

    #[test]
    fn legacy_groups_keep_their_ids() {
        let shown = ids(12);
        let t = tenant("a");
        assert_eq!(shown.group(&t, GroupId(12)), 12);
        assert_eq!(shown.group_of(&t, 12), Some(GroupId(12)));
        assert!(shown.group(&t, GroupId(13)) >= GROUP_OPAQUE_BASE);
        assert_eq!(shown.group_of(&t, 13), None, "13 was never shown");
        assert_eq!(shown.group_of(&t, 0), None);
        assert_eq!(shown.group_of(&t, -5), None);
        assert_eq!(shown.group_of(&t, i64::MAX), None);
    }

    proptest! {
        #[test]
        fn shown_group_ids_map_back_exactly(id in 1_i64..(1 << 30), legacy in 0_i64..1_000, name in "[a-z][a-z0-9-]{0,20}") {
            let shown = ids(legacy);
            let t = tenant(&name);
            let seen = shown.group(&t, GroupId(id));
            prop_assert!((1..=i64::from(i32::MAX)).contains(&seen));
            prop_assert_eq!(shown.group_of(&t, seen), Some(GroupId(id)));
        }

        #[test]
        fn shown_suppression_ids_are_distinct_and_js_safe(a in 1_i64..(1 << 40), b in 1_i64..(1 << 40)) {
            let shown = ids(0);
            let t = tenant("t");
            let (x, y) = (shown.suppression(&t, SuppressionId(a)), shown.suppression(&t, SuppressionId(b)));
            prop_assert!((1..=1 << 52).contains(&x));
            prop_assert_eq!(x == y, a == b);
        }
    }
}
