//! The query parameters every v3 suppression list shares: `limit` 1–500
//! (default 50), `offset`, `start_time` and `end_time` in inclusive unix
//! seconds, and `email` (docs/api/v3.md).

use actix_web::HttpRequest;
use hush_model::{EmailMatch, KindSet, ListFilter, PageRequest, ScopeFilter, Timestamp};

use crate::extract::QueryPairs;
use crate::{Shape, V3Error};

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
    /// prefix match, of which an exact address is the common case. The
    /// seed shape's reference says only "filter by email": every character
    /// is literal (docs/api/v3.md). In SendGrid's shape `%` matches any run
    /// of characters, SendGrid's own documented semantics (its
    /// `EmailPartialMatch`), bounded in length and wildcards; `_` is literal
    /// in both.
    pub fn filter(&self, kinds: KindSet, shape: Shape) -> Result<ListFilter, V3Error> {
        let mut filter = ListFilter::new(kinds, ScopeFilter::Global);
        filter.email = self
            .email
            .as_deref()
            .map(|raw| match shape {
                Shape::Seed => EmailMatch::prefix(raw),
                Shape::Sendgrid => EmailMatch::pattern(raw),
            })
            .transpose()
            .map_err(|err| V3Error::bad_request("email", err.to_string()))?;
        filter.created_from = self.start_time.map(Timestamp::from_unix_seconds);
        filter.created_to = self.end_time.map(Timestamp::end_of_unix_second);
        Ok(filter)
    }

    pub fn page(&self) -> PageRequest {
        PageRequest {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

/// `page` (from 1) and `page_size` (1–500, default 50) of a group's
/// suppressions (docs/api/v3.md).
pub fn group_page(query: &QueryPairs) -> Result<PageRequest, V3Error> {
    let page = query.integer("page", 1, i64::from(u32::MAX))?.unwrap_or(1);
    let size = query
        .integer("page_size", 1, MAX_LIMIT)?
        .unwrap_or(DEFAULT_LIMIT);
    Ok(PageRequest {
        limit: u32::try_from(size).unwrap_or(u32::MAX),
        offset: u64::try_from((page - 1) * size).unwrap_or(0),
    })
}

/// SendGrid's pagination header (SendGrid docs, "Responses"; a live one in
/// sendgrid/docs#6413): links to the next, previous, last and first pages,
/// each with its 1-based page number as `title`, built from the request's own
/// scheme, host, path and query. `next` is left out on the last page; on the
/// first, `prev` is the first page, as SendGrid does.
pub fn link_header(req: &HttpRequest, page: PageRequest, total: u64) -> String {
    let info = req.connection_info();
    let base = format!("{}://{}{}", info.scheme(), info.host(), req.path());
    let kept: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "limit" && k != "offset")
        .collect();
    let limit = u64::from(page.limit.max(1));
    let link = |offset: u64, rel: &str| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            query.append_pair(k, v);
        }
        query.append_pair("limit", &limit.to_string());
        query.append_pair("offset", &offset.to_string());
        format!(
            "<{base}?{}>; rel=\"{rel}\"; title=\"{}\"",
            query.finish(),
            offset / limit + 1
        )
    };
    let last = total.saturating_sub(1) / limit * limit;
    let mut links = Vec::with_capacity(4);
    if page.offset + limit < total {
        links.push(link(page.offset + limit, "next"));
    }
    links.push(link(page.offset.saturating_sub(limit), "prev"));
    links.push(link(last, "last"));
    links.push(link(0, "first"));
    links.join(", ")
}
