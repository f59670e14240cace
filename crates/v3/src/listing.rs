//! The query parameters every v3 suppression list shares: `limit` 1–500
//! (default 50), `offset`, `start_time` and `end_time` in inclusive unix
//! seconds, and `email` (seed 001; specs/sendgrid-v3.md §1.7, §1.9).

use hush_model::{EmailMatch, KindSet, ListFilter, PageRequest, ScopeFilter, Timestamp};

use crate::V3Error;
use crate::extract::QueryPairs;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Clone)]
pub struct ListParams {
    pub limit: u32,
    pub offset: u64,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub email: Option<String>,
}

impl ListParams {
    pub fn parse(query: &QueryPairs) -> Result<Self, V3Error> {
        let limit = query
            .integer("limit", 1, MAX_LIMIT)?
            .unwrap_or(DEFAULT_LIMIT);
        let offset = query.integer("offset", 0, i64::MAX)?.unwrap_or(0);
        let start_time = query.integer("start_time", 0, i64::MAX)?;
        let end_time = query.integer("end_time", 0, i64::MAX)?;
        if let (Some(start), Some(end)) = (start_time, end_time)
            && start > end
        {
            return Err(V3Error::bad_request(
                "start_time",
                format!("start_time ({start}) is after end_time ({end})"),
            ));
        }
        let email = query
            .get("email")
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned);
        Ok(Self {
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            offset: u64::try_from(offset).unwrap_or(0),
            start_time,
            end_time,
            email,
        })
    }

    /// The filter over global entries of the given kinds. `email` is a
    /// prefix match: SendGrid's own semantics (specs/sendgrid-v3.md §2.1),
    /// of which an exact address is the common case.
    pub fn filter(&self, kinds: KindSet) -> ListFilter {
        let mut filter = ListFilter::new(kinds, ScopeFilter::Global);
        filter.email = self.email.as_deref().map(EmailMatch::prefix);
        filter.created_from = self.start_time.map(Timestamp::from_unix_seconds);
        filter.created_to = self.end_time.map(Timestamp::end_of_unix_second);
        filter
    }

    pub fn page(&self) -> PageRequest {
        PageRequest {
            limit: self.limit,
            offset: self.offset,
        }
    }
}
