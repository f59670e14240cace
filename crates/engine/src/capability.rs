//! What a backend cannot serve, decided once for every API: a listing that
//! needs a distinction the backend does not keep is refused with
//! [`EngineError::Unsupported`] instead of answering something subtly wrong.
//!
//! Adds are not refused on kind grounds: a backend without bounce classes or
//! invalid entries stores the nearest kind it has (docs/backends.md lists
//! each approximation), just as the provider itself would.

use hush_model::{KindFamily, ListFilter};

use crate::{Capabilities, EngineError};

/// The first thing a filter asks that the backend cannot tell apart.
pub(crate) fn filter_refusal(
    backend: &'static str,
    caps: Capabilities,
    filter: &ListFilter,
) -> Result<(), EngineError> {
    let kinds = filter.kinds;
    let refuse = |operation| Err(EngineError::Unsupported { backend, operation });
    if !caps.soft_and_block_bounces
        && kinds.touches_family(KindFamily::Bounce)
        && !kinds.covers_family(KindFamily::Bounce)
    {
        return refuse("list bounces by class (hard, soft, block)");
    }
    if !caps.invalid_emails
        && kinds.touches_family(KindFamily::Invalid)
        && !kinds.touches_family(KindFamily::Bounce)
    {
        return refuse("list invalid emails apart from bounces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_model::{BounceClass, KindSet, ScopeFilter};

    const NONE: Capabilities = Capabilities {
        groups: false,
        soft_and_block_bounces: false,
        created_time_filter: false,
        origins: false,
        invalid_emails: false,
        cheap_removal_by_id: false,
        journal: false,
    };

    fn filter(kinds: KindSet) -> ListFilter {
        ListFilter::new(kinds, ScopeFilter::Global)
    }

    #[test]
    fn a_backend_without_classes_refuses_a_class_listing() {
        let blocks = filter(KindSet::bounce_class(BounceClass::Block));
        let err = filter_refusal("upstream-sendpost", NONE, &blocks).expect_err("refused");
        assert!(matches!(
            err,
            EngineError::Unsupported { backend: "upstream-sendpost", operation } if operation.contains("class")
        ));
        assert!(filter_refusal("full", Capabilities::FULL, &blocks).is_ok());
    }

    #[test]
    fn whole_families_are_served_by_every_backend() {
        for kinds in [
            KindSet::ALL,
            KindSet::family(KindFamily::Bounce),
            KindSet::family(KindFamily::Bounce).with(KindSet::family(KindFamily::Invalid)),
            KindSet::family(KindFamily::Spam),
        ] {
            assert!(
                filter_refusal("b", NONE, &filter(kinds)).is_ok(),
                "{kinds:?}"
            );
        }
    }

    #[test]
    fn invalid_alone_needs_the_capability() {
        let invalid = filter(KindSet::family(KindFamily::Invalid));
        assert!(filter_refusal("b", NONE, &invalid).is_err());
        assert!(filter_refusal("b", Capabilities::FULL, &invalid).is_ok());
    }
}
