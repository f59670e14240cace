//! The SQL of every operation, and the mapping between rows and the model.
//!
//! Every statement is a runtime query with bound parameters (no compile-time
//! macros), so building hush needs no database. The only SQL made at run
//! time is the shape of a filter, assembled from fixed fragments and the
//! stores' own integer codes; every value is a bound parameter.

use std::collections::{HashMap, HashSet};

use hush_engine::{AddOutcome, Engine, EventChange, ReceivedEvent};
use hush_model::{
    Actor, Change, Email, EmailMatch, Group, GroupChanges, GroupId, GroupKey, Kind, KindFamily,
    KindSet, ListFilter, NewGroup, NewSuppression, Operation, Origin, Page, PageRequest,
    ScanCursor, Scope, ScopeFilter, StreamType, Suppression, SuppressionId, TenantId, Timestamp,
    UnsubscribeHandling,
};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Row as _};

use super::{StoreError, journal};
use crate::sqlite::sql::{class_code, class_from_code, like_pattern, prefix_end};

// ---------------------------------------------------------------------------
// Column encodings (the same codes as the SQLite store)

fn small(code: i64) -> i16 {
    // Every code is a small enum discriminant; the fallback is unreachable
    // and would be refused by the decoder on the way back.
    i16::try_from(code).unwrap_or(i16::MAX)
}

/// `suppressions.group_id`: 0 is Global.
fn group_column(scope: Scope) -> i64 {
    match scope {
        Scope::Global => 0,
        Scope::Group(id) => id.0,
    }
}

/// The `class`, `status`, `reason` and `source` columns of a kind.
fn kind_columns(kind: &Kind) -> (Option<i16>, Option<String>, Option<String>, Option<String>) {
    match kind {
        Kind::Bounce {
            class,
            status,
            reason,
        } => (
            Some(small(class_code(*class))),
            status.clone(),
            reason.clone(),
            None,
        ),
        Kind::Invalid { reason } => (None, None, reason.clone(), None),
        Kind::SpamComplaint { source } => (None, None, None, source.clone()),
        Kind::Unsubscribe | Kind::Manual => (None, None, None, None),
    }
}

const SUPPRESSION_COLUMNS: &str =
    "id, email, group_id, family, class, status, reason, source, origin, created_at";

fn suppression_from_row(row: &PgRow, tenant: &TenantId) -> Result<Suppression, StoreError> {
    let email: String = row.try_get("email")?;
    let email = Email::parse(&email)
        .map_err(|e| StoreError::Corrupt(format!("stored address {email:?}: {e}")))?;
    let scope = match row.try_get::<i64, _>("group_id")? {
        0 => Scope::Global,
        id => Scope::Group(GroupId(id)),
    };
    let family_code: i16 = row.try_get("family")?;
    let family = KindFamily::from_code(i64::from(family_code))
        .ok_or_else(|| StoreError::Corrupt(format!("unknown kind family {family_code}")))?;
    let kind = match family {
        KindFamily::Bounce => {
            let code: Option<i16> = row.try_get("class")?;
            let class = code
                .and_then(|c| class_from_code(i64::from(c)))
                .ok_or_else(|| StoreError::Corrupt(format!("bad bounce class {code:?}")))?;
            Kind::Bounce {
                class,
                status: row.try_get("status")?,
                reason: row.try_get("reason")?,
            }
        }
        KindFamily::Invalid => Kind::Invalid {
            reason: row.try_get("reason")?,
        },
        KindFamily::Spam => Kind::SpamComplaint {
            source: row.try_get("source")?,
        },
        KindFamily::Unsubscribe => Kind::Unsubscribe,
        KindFamily::Manual => Kind::Manual,
    };
    let origin_code: i16 = row.try_get("origin")?;
    let origin = Origin::from_code(i64::from(origin_code))
        .ok_or_else(|| StoreError::Corrupt(format!("unknown origin {origin_code}")))?;
    Ok(Suppression {
        id: SuppressionId(row.try_get("id")?),
        tenant: tenant.clone(),
        email,
        scope,
        kind,
        origin,
        created_at: Timestamp::from_nanos(row.try_get("created_at")?),
    })
}

fn suppressions_from_rows(
    rows: &[PgRow],
    tenant: &TenantId,
) -> Result<Vec<Suppression>, StoreError> {
    rows.iter()
        .map(|row| suppression_from_row(row, tenant))
        .collect()
}

const GROUP_COLUMNS: &str = "id, key, name, description, is_default, stream_type, \
     unsubscribe_handling, archived_at, created_at, updated_at";

fn group_from_row(row: &PgRow, tenant: &TenantId) -> Result<Group, StoreError> {
    let key: String = row.try_get("key")?;
    let key = GroupKey::parse(&key)
        .map_err(|e| StoreError::Corrupt(format!("stored group key {key:?}: {e}")))?;
    let stream_type: String = row.try_get("stream_type")?;
    let stream_type = StreamType::parse(&stream_type)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown stream type {stream_type:?}")))?;
    let handling: String = row.try_get("unsubscribe_handling")?;
    let unsubscribe_handling = UnsubscribeHandling::parse(&handling)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown unsubscribe handling {handling:?}")))?;
    Ok(Group {
        id: GroupId(row.try_get("id")?),
        tenant: tenant.clone(),
        key,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        is_default: row.try_get("is_default")?,
        stream_type,
        unsubscribe_handling,
        archived_at: row
            .try_get::<Option<i64>, _>("archived_at")?
            .map(Timestamp::from_nanos),
        created_at: Timestamp::from_nanos(row.try_get("created_at")?),
        updated_at: row
            .try_get::<Option<i64>, _>("updated_at")?
            .map(Timestamp::from_nanos),
    })
}

fn to_u64(n: impl TryInto<u64>) -> u64 {
    n.try_into().unwrap_or(u64::MAX)
}

fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------
// Filters

/// A value bound to a numbered placeholder. Public (hidden) only so that
/// tests can bind the parameters of [`list_statements`].
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
    Small(i16),
}

/// A `WHERE` clause and its parameters; placeholder `$n` is `params[n-1]`.
#[derive(Debug, Clone)]
pub(super) struct Clause {
    pub(super) sql: String,
    params: Vec<Param>,
}

impl Clause {
    pub(super) fn new(tenant: &TenantId) -> Self {
        Self {
            sql: "tenant = $1".to_owned(),
            params: vec![Param::Text(tenant.as_str().to_owned())],
        }
    }

    /// `tenant` as a range of one value instead of an equality, for a
    /// query that orders by `tenant` too: PostgreSQL drops a column equal
    /// to a constant from the order, and so may serve what remains of it
    /// from another index (`journal::read` says where that hurts).
    pub(super) fn tenant_range(tenant: &TenantId) -> Self {
        Self {
            sql: "tenant >= $1 AND tenant <= $1".to_owned(),
            params: vec![Param::Text(tenant.as_str().to_owned())],
        }
    }

    /// The parameters, `$1` first.
    pub(super) fn params(&self) -> &[Param] {
        &self.params
    }

    /// The placeholder the next parameter will take.
    pub(super) fn push(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    pub(super) fn and(&mut self, sql: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(sql);
    }

    fn filter(tenant: &TenantId, filter: &ListFilter) -> Self {
        let mut clause = Self::new(tenant);
        if let Some(kinds) = kinds_sql(filter.kinds) {
            clause.and(&kinds);
        }
        match filter.scope {
            ScopeFilter::Any => {}
            ScopeFilter::Global => clause.and("group_id = 0"),
            ScopeFilter::Group(id) => {
                let p = clause.push(Param::Int(id.0));
                clause.and(&format!("group_id = {p}"));
            }
            ScopeFilter::GlobalAndGroup(id) => {
                let p = clause.push(Param::Int(id.0));
                clause.and(&format!("group_id IN (0, {p})"));
            }
        }
        match &filter.email {
            None => {}
            Some(EmailMatch::Exact(email)) => {
                let p = clause.push(Param::Text(email.as_str().to_owned()));
                clause.and(&format!("email = {p}"));
            }
            // A range in the "C" collation rather than LIKE: nothing in the
            // needle is a wildcard, and the identity index serves it.
            Some(EmailMatch::Prefix(prefix)) => {
                let from = clause.push(Param::Text(prefix.clone()));
                match prefix_end(prefix) {
                    Some(end) => {
                        let to = clause.push(Param::Text(end));
                        clause.and(&format!("email >= {from} AND email < {to}"));
                    }
                    None => clause.and(&format!("email >= {from}")),
                }
            }
            Some(EmailMatch::Contains(needle)) => {
                let p = clause.push(Param::Text(needle.clone()));
                clause.and(&format!("strpos(email, {p}) > 0"));
            }
            // SendGrid's `%` wildcard (its `EmailPartialMatch`); the parts
            // themselves are literal.
            Some(EmailMatch::Pattern(parts)) => {
                let p = clause.push(Param::Text(like_pattern(parts)));
                clause.and(&format!("email LIKE {p} ESCAPE '\\'"));
            }
        }
        if let Some(origin) = filter.origin {
            let p = clause.push(Param::Small(small(origin.code())));
            clause.and(&format!("origin = {p}"));
        }
        if let Some(from) = filter.created_from {
            let p = clause.push(Param::Int(from.as_nanos()));
            clause.and(&format!("created_at >= {p}"));
        }
        if let Some(to) = filter.created_to {
            let p = clause.push(Param::Int(to.as_nanos()));
            clause.and(&format!("created_at <= {p}"));
        }
        clause
    }

    /// The filter's clause and, with [`ListFilter::per_address`], the
    /// condition that keeps only the newest matching entry of each address
    /// and scope: no entry of the same address and scope that the filter
    /// matches is newer. The probe is an equality on the identity index's
    /// leading `(tenant, email, group_id)`, so it costs one index seek per
    /// row however long the list. The subquery reuses the filter's
    /// placeholders; its unqualified columns are `newer`'s.
    fn listing(tenant: &TenantId, filter: &ListFilter) -> Self {
        let mut clause = Self::filter(tenant, filter);
        if filter.per_address {
            let newer = clause.sql.clone();
            clause.and(&format!(
                "NOT EXISTS (SELECT 1 FROM suppressions AS newer WHERE {newer} \
                 AND newer.email = suppressions.email \
                 AND newer.group_id = suppressions.group_id \
                 AND (newer.created_at, newer.id) > (suppressions.created_at, suppressions.id))"
            ));
        }
        clause
    }

    /// A query of `sql` (which uses this clause's placeholders) with the
    /// parameters bound.
    pub(super) fn query(&self, sql: String) -> Query<'static, Postgres, PgArguments> {
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for param in &self.params {
            query = match param {
                Param::Text(text) => query.bind(text.clone()),
                Param::Int(n) => query.bind(*n),
                Param::Small(n) => query.bind(*n),
            };
        }
        query
    }
}

/// The condition for a set of kinds; `None` when every kind is selected.
/// The numbers are the stores' own codes, so they are written inline.
fn kinds_sql(kinds: KindSet) -> Option<String> {
    if kinds == KindSet::ALL {
        return None;
    }
    let mut whole = Vec::new();
    let mut partial = Vec::new();
    for family in KindFamily::ALL {
        if kinds.covers_family(family) {
            whole.push(family.code().to_string());
        } else if kinds.touches_family(family) {
            // Only bounces have more than one kind in a family.
            let classes: Vec<String> = kinds
                .bounce_classes()
                .map(|c| class_code(c).to_string())
                .collect();
            partial.push(format!(
                "(family = {} AND class IN ({}))",
                family.code(),
                classes.join(", ")
            ));
        }
    }
    if !whole.is_empty() {
        partial.insert(0, format!("family IN ({})", whole.join(", ")));
    }
    if partial.is_empty() {
        return Some("FALSE".to_owned());
    }
    Some(format!("({})", partial.join(" OR ")))
}

const NEWEST_FIRST: &str = "ORDER BY created_at DESC, id DESC";

// ---------------------------------------------------------------------------
// Reads

pub(super) async fn entries(
    conn: &mut PgConnection,
    tenant: &TenantId,
    email: &Email,
) -> Result<Vec<Suppression>, StoreError> {
    let sql = format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions \
         WHERE tenant = $1 AND email = $2 {NEWEST_FIRST}"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(email.as_str())
        .fetch_all(conn)
        .await?;
    suppressions_from_rows(&rows, tenant)
}

// ---------------------------------------------------------------------------
// The lookup mirror's reads (`mirror.rs`)

/// Every address changed since the held snapshot (a `pg_snapshot`), with
/// what it holds now, all read in this statement's snapshot, which comes
/// back in every row as `now`. A change is in the log as the transaction
/// that made it (`schema`, migration 3). `rebuild` is true when the log
/// cannot say what changed: pruning has deleted past the held snapshot's
/// xmin (a missing horizon row counts as that), or the server's transaction
/// counter is behind it (a restore); the rest of the statement then reads
/// nothing.
///
/// One row for the snapshot when nothing changed; for a changed address,
/// one row per entry, or one with a NULL `id` when it has none left.
/// Ordered by address, so an address's rows come together. `started` is
/// the server's start time: a different one (a restart, a failover to
/// another server, a restore) means the log may not be the one the held
/// snapshot was read against, and the mirror rebuilds.
///
/// The transactions the held snapshot did not see are exactly those from
/// its xmax on and those it lists as running (`xip`); everything else below
/// its xmax had ended, seen or rolled back. Two index scans on `xid` find
/// them, however old the oldest running transaction is.
///
/// `held` is the snapshot as SQL (a parameter or a checked literal), and
/// `limit` caps the log rows read. Why the cap: prepared once and run with
/// any snapshot, the statement gets PostgreSQL's generic plan, which
/// guesses that a third of the log is new; on a log of millions that plan
/// joins by hash over the whole table, in parallel, JIT-compiled: 20 ms a
/// step where 0.1 ms will do (measured on the benchmark's 2,000,000 rows).
/// With the cap the guess is the cap; in `xid` order, so that the plan is
/// the index on `xid` (with a bare `LIMIT` the planner expected to find
/// its rows early in a scan of the whole log, and read all of it: 100 ms
/// for a million rows when nothing had changed). A step that reaches it
/// (`overflow`) reads again with the snapshot as a literal and no cap,
/// planned for what is there ([`changes_since_unbounded`]).
fn changes_since(held: &str, limit: &str) -> String {
    format!(
        "WITH snap AS ( \
             SELECT pg_current_snapshot() AS now, pg_postmaster_start_time()::text AS started, \
                 coalesce((SELECT pruned_below FROM hush_change_horizon) \
                     > pg_snapshot_xmin({held}), TRUE) \
                 OR pg_snapshot_xmax(pg_current_snapshot()) < pg_snapshot_xmax({held}) \
                 AS rebuild \
         ), logged AS MATERIALIZED ( \
             (SELECT tenant, email FROM hush_changes \
              WHERE xid >= pg_snapshot_xmax({held}) AND NOT (SELECT rebuild FROM snap) \
              {limit}) \
             UNION ALL \
             (SELECT tenant, email FROM hush_changes \
              WHERE xid = ANY (ARRAY(SELECT pg_snapshot_xip({held}))) \
                AND NOT (SELECT rebuild FROM snap) \
              {limit}) \
         ), changed AS (SELECT DISTINCT tenant, email FROM logged) \
         SELECT snap.now::text AS now, snap.started, snap.rebuild, \
             (SELECT count(*) FROM logged) >= {STEP_LOG_CAP} AS overflow, \
             c.tenant AS changed_tenant, c.email AS changed_email, \
             s.id, s.email, s.group_id, s.family, s.class, s.status, s.reason, s.source, \
             s.origin, s.created_at \
         FROM snap LEFT JOIN ( \
             changed AS c LEFT JOIN LATERAL ( \
                 SELECT * FROM suppressions AS s \
                 WHERE s.tenant = c.tenant AND s.email = c.email OFFSET 0 \
             ) AS s ON TRUE \
         ) ON TRUE \
         ORDER BY c.tenant, c.email"
    )
}

/// Log rows a prepared step reads at most, from each of its two scans
/// (see [`changes_since`]); reading this many in all counts as overflow.
pub(super) const STEP_LOG_CAP: usize = 1_000;

/// The prepared step: `$1` is the held snapshot as text.
pub(super) fn changes_since_prepared() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        changes_since(
            "$1::text::pg_snapshot",
            &format!("ORDER BY xid LIMIT {STEP_LOG_CAP}"),
        )
    });
    SQL.as_str()
}

/// The step without a cap, planned for `held` itself: `None` when `held`
/// is not a snapshot's text (`xmin:xmax:xip,…`: digits and separators), so
/// that nothing else reaches the SQL.
pub(super) fn changes_since_unbounded(held: &str) -> Option<AssertSqlSafe<String>> {
    let plain = !held.is_empty()
        && held
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b':' || b == b',');
    plain.then(|| AssertSqlSafe(changes_since(&format!("'{held}'::pg_snapshot"), "")))
}

/// Every entry of every tenant and the snapshot they were read in (`now`,
/// in every row; one row with a NULL `id` for an empty table): what the
/// mirror is built from.
pub(super) const EVERYTHING: &str = "\
SELECT snap.now::text AS now, pg_postmaster_start_time()::text AS started, \
    s.tenant AS changed_tenant, s.id, s.email, s.group_id, s.family, s.class, s.status, s.reason, s.source, s.origin, \
    s.created_at \
FROM (SELECT pg_current_snapshot() AS now) AS snap LEFT JOIN suppressions AS s ON TRUE";

/// Log rows one prune deletes at most: a prune runs between steps, and
/// lookups wait for it.
pub(super) const PRUNE_CHUNK: i64 = 10_000;

/// Deletes up to [`PRUNE_CHUNK`] rows of the change log below `$1` (an xid,
/// as text) and raises the horizon to it, in one statement and so one
/// transaction: a reader sees both or neither. The horizon says what may be
/// gone, so raising it past rows still there only costs a rebuild to an
/// instance behind it. `$1` is clamped to the xmin of the statement's own
/// snapshot: an xid from before a restore must not pin the horizon above
/// every xid the restored server hands out. Returns the rows deleted.
pub(super) async fn prune_changes(conn: &mut PgConnection, below: &str) -> Result<u64, StoreError> {
    let deleted: i64 = sqlx::query(
        "WITH bound AS (SELECT least($1::text::xid8, pg_snapshot_xmin(pg_current_snapshot())) AS below), \
         gone AS (DELETE FROM hush_changes WHERE ctid = ANY (ARRAY( \
             SELECT ctid FROM hush_changes WHERE xid < (SELECT below FROM bound) LIMIT $2)) \
             RETURNING 1), \
         moved AS (UPDATE hush_change_horizon \
             SET pruned_below = greatest(pruned_below, (SELECT below FROM bound))) \
         SELECT count(*) FROM gone",
    )
    .bind(below)
    .bind(PRUNE_CHUNK)
    .fetch_one(conn)
    .await?
    .try_get(0)?;
    Ok(to_u64(deleted))
}

/// One entry of a mirror read, or `None` for a row without one.
pub(super) fn mirrored_entry(
    row: &PgRow,
    tenant: &TenantId,
) -> Result<Option<Suppression>, StoreError> {
    if row.try_get::<Option<i64>, _>("id")?.is_none() {
        return Ok(None);
    }
    suppression_from_row(row, tenant).map(Some)
}

/// The page query of `clause`, and the clause with its paging parameters.
fn select_statement(mut clause: Clause, limit: u32, offset: u64) -> (String, Clause) {
    let limit_param = clause.push(Param::Int(i64::from(limit)));
    let mut sql = format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE {} {NEWEST_FIRST} LIMIT {limit_param}",
        clause.sql
    );
    if offset > 0 {
        let offset_param = clause.push(Param::Int(to_i64(offset)));
        sql.push_str(&format!(" OFFSET {offset_param}"));
    }
    (sql, clause)
}

async fn select(
    conn: &mut PgConnection,
    tenant: &TenantId,
    clause: Clause,
    limit: u32,
    offset: u64,
) -> Result<Vec<Suppression>, StoreError> {
    let (sql, clause) = select_statement(clause, limit, offset);
    let rows = clause.query(sql).fetch_all(conn).await?;
    suppressions_from_rows(&rows, tenant)
}

/// The count query of `clause` (the filter's own clause).
fn count_statement(filter: &ListFilter, clause: &Clause) -> String {
    let counted = match (filter.per_address, filter.scope) {
        (false, _) => "count(*)",
        (true, ScopeFilter::Global | ScopeFilter::Group(_)) => "count(DISTINCT email)",
        (true, ScopeFilter::Any | ScopeFilter::GlobalAndGroup(_)) => {
            "count(DISTINCT (group_id, email))"
        }
    };
    format!("SELECT {counted} FROM suppressions WHERE {}", clause.sql)
}

/// How many entries, or with [`ListFilter::per_address`] how many addresses
/// (per scope), the filter matches: the number of rows its listing has.
async fn count_where(
    conn: &mut PgConnection,
    filter: &ListFilter,
    clause: &Clause,
) -> Result<u64, StoreError> {
    let sql = count_statement(filter, clause);
    let count: i64 = clause.query(sql).fetch_one(conn).await?.try_get(0)?;
    Ok(to_u64(count))
}

/// The caller runs this in one REPEATABLE READ transaction, so the page and
/// the total agree.
pub(super) async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &ListFilter,
    page: PageRequest,
) -> Result<Page<Suppression>, StoreError> {
    let total = count_where(conn, filter, &Clause::filter(tenant, filter)).await?;
    let items = if page.limit == 0 || page.offset >= total {
        Vec::new()
    } else {
        let clause = Clause::listing(tenant, filter);
        select(conn, tenant, clause, page.limit, page.offset).await?
    };
    Ok(Page { items, total })
}

/// The statements [`list`] runs for a page of `filter`, each with its
/// parameters in placeholder order: the count, then the page (asked for
/// even when the count would make it unnecessary). For tests that EXPLAIN
/// the backend's own SQL to see which indexes serve a filter.
#[doc(hidden)]
pub fn list_statements(
    tenant: &TenantId,
    filter: &ListFilter,
    page: PageRequest,
) -> Vec<(String, Vec<Param>)> {
    let count = Clause::filter(tenant, filter);
    let (page_sql, page_clause) =
        select_statement(Clause::listing(tenant, filter), page.limit, page.offset);
    vec![
        (count_statement(filter, &count), count.params),
        (page_sql, page_clause.params),
    ]
}

pub(super) async fn count(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &ListFilter,
) -> Result<u64, StoreError> {
    count_where(conn, filter, &Clause::filter(tenant, filter)).await
}

/// Keyset paging: the row comparison `(created_at, id) < (…)` walks the
/// time indexes from the cursor on, so a page costs the same at any depth.
pub(super) async fn scan(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &ListFilter,
    after: Option<ScanCursor>,
    limit: u32,
) -> Result<Vec<Suppression>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // The collapse looks at every entry of an address, not only those after
    // the cursor: one whose newest entry came before the cursor was shown.
    let mut clause = Clause::listing(tenant, filter);
    if let Some(cursor) = after {
        let at = clause.push(Param::Int(cursor.created_at.as_nanos()));
        let id = clause.push(Param::Int(cursor.id.0));
        clause.and(&format!("(created_at, id) < ({at}, {id})"));
    }
    select(conn, tenant, clause, limit, 0).await
}

pub(super) async fn group(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: GroupId,
) -> Result<Option<Group>, StoreError> {
    let sql =
        format!("SELECT {GROUP_COLUMNS} FROM suppression_groups WHERE tenant = $1 AND id = $2");
    sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(id.0)
        .fetch_optional(conn)
        .await?
        .map(|row| group_from_row(&row, tenant))
        .transpose()
}

pub(super) async fn group_by_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    key: &GroupKey,
) -> Result<Option<Group>, StoreError> {
    let sql =
        format!("SELECT {GROUP_COLUMNS} FROM suppression_groups WHERE tenant = $1 AND key = $2");
    sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_optional(conn)
        .await?
        .map(|row| group_from_row(&row, tenant))
        .transpose()
}

pub(super) async fn groups(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<Group>, StoreError> {
    let sql =
        format!("SELECT {GROUP_COLUMNS} FROM suppression_groups WHERE tenant = $1 ORDER BY id");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_all(conn)
        .await?;
    rows.iter().map(|row| group_from_row(row, tenant)).collect()
}

/// Every tenant with a suppression or a group, in order.
pub(super) async fn tenants(conn: &mut PgConnection) -> Result<Vec<TenantId>, StoreError> {
    let rows = sqlx::query(
        "SELECT tenant FROM suppression_groups UNION SELECT tenant FROM suppressions ORDER BY 1",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let raw: String = row.try_get(0)?;
            TenantId::parse(&raw)
                .map_err(|e| StoreError::Corrupt(format!("stored tenant {raw:?}: {e}")))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Writes (each inside the caller's transaction)

/// The identity of a suppression as its columns: address, group, family.
type Identity = (String, i64, i16);

fn identity(item: &NewSuppression) -> Identity {
    (
        item.email.as_str().to_owned(),
        group_column(item.scope),
        small(item.kind.family().code()),
    )
}

fn stored_identity(s: &Suppression) -> Identity {
    (
        s.email.as_str().to_owned(),
        group_column(s.scope),
        small(s.kind.family().code()),
    )
}

/// Which of the groups the items name exist, locked `FOR KEY SHARE` until
/// the transaction ends: a concurrent `delete_group` (which takes the row
/// for delete) then either finished before, and the group is unknown here,
/// or waits until these adds are committed and removes them with the group.
/// Updates of a group's other columns do not conflict with the lock.
async fn lock_groups(
    conn: &mut PgConnection,
    tenant: &TenantId,
    scopes: impl Iterator<Item = Scope>,
) -> Result<HashSet<i64>, StoreError> {
    let mut wanted: Vec<i64> = scopes
        .filter_map(|scope| match scope {
            Scope::Group(id) => Some(id.0),
            Scope::Global => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(HashSet::new());
    }
    wanted.sort_unstable();
    wanted.dedup();
    let rows = sqlx::query(
        "SELECT id FROM suppression_groups WHERE tenant = $1 AND id = ANY($2) \
         ORDER BY id FOR KEY SHARE",
    )
    .bind(tenant.as_str())
    .bind(wanted)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| row.try_get::<i64, _>(0).map_err(StoreError::from))
        .collect()
}

/// Suppressions as one array per column but the id and tenant, in order,
/// for an insert that unnests them (`insert_new`, `put_back`).
#[derive(Default)]
struct ColumnArrays {
    emails: Vec<String>,
    group_ids: Vec<i64>,
    families: Vec<i16>,
    classes: Vec<Option<i16>>,
    statuses: Vec<Option<String>>,
    reasons: Vec<Option<String>>,
    sources: Vec<Option<String>>,
    origins: Vec<i16>,
    created: Vec<i64>,
}

impl ColumnArrays {
    fn push(&mut self, email: &Email, scope: Scope, kind: &Kind, origin: Origin, at: Timestamp) {
        let (class, status, reason, source) = kind_columns(kind);
        self.emails.push(email.as_str().to_owned());
        self.group_ids.push(group_column(scope));
        self.families.push(small(kind.family().code()));
        self.classes.push(class);
        self.statuses.push(status);
        self.reasons.push(reason);
        self.sources.push(source);
        self.origins.push(small(origin.code()));
        self.created.push(at.as_nanos());
    }

    /// Binds the arrays as the query's next nine parameters, typed
    /// `text[], int8[], int2[], int2[], text[], text[], text[], int2[],
    /// int8[]` in this order.
    fn bind(self, query: Query<'_, Postgres, PgArguments>) -> Query<'_, Postgres, PgArguments> {
        query
            .bind(self.emails)
            .bind(self.group_ids)
            .bind(self.families)
            .bind(self.classes)
            .bind(self.statuses)
            .bind(self.reasons)
            .bind(self.sources)
            .bind(self.origins)
            .bind(self.created)
    }
}

/// Inserts the items in one multi-row statement (arrays unnested in request
/// order, so ids increase in request order), skipping every identity that
/// exists — also one an earlier item of the same call just made. Returns the
/// id of each identity it inserted.
async fn insert_new(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: &[&NewSuppression],
) -> Result<HashMap<Identity, i64>, StoreError> {
    let mut columns = ColumnArrays::default();
    for item in items {
        columns.push(
            &item.email,
            item.scope,
            &item.kind,
            item.origin,
            item.created_at,
        );
    }
    let query = sqlx::query(
        "INSERT INTO suppressions \
         (tenant, email, group_id, family, class, status, reason, source, origin, created_at) \
         SELECT $1, u.email, u.group_id, u.family, u.class, u.status, u.reason, u.source, \
                u.origin, u.created_at \
         FROM UNNEST($2::text[], $3::int8[], $4::int2[], $5::int2[], $6::text[], $7::text[], \
                     $8::text[], $9::int2[], $10::int8[]) WITH ORDINALITY \
              AS u(email, group_id, family, class, status, reason, source, origin, created_at, n) \
         ORDER BY u.n \
         ON CONFLICT (tenant, email, group_id, family) DO NOTHING \
         RETURNING id, email, group_id, family",
    )
    .bind(tenant.as_str());
    let rows = columns.bind(query).fetch_all(conn).await?;
    rows.iter().map(inserted_row).collect()
}

/// The identity and id of a row an insert returned (`RETURNING id, email,
/// group_id, family`).
fn inserted_row(row: &PgRow) -> Result<(Identity, i64), StoreError> {
    Ok((
        (
            row.try_get("email")?,
            row.try_get("group_id")?,
            row.try_get("family")?,
        ),
        row.try_get("id")?,
    ))
}

/// The stored entries of some identities, by identity.
///
/// Selects by address only (`email = ANY(…)`) and keeps the wanted
/// identities here: with the group and family in the condition, a planner
/// without statistics yet (a table that just grew from empty by a bulk
/// import) may walk `suppressions_by_scope` through every entry of a scope
/// for each address instead of the identity index. An address has at most a
/// handful of entries, so the extra rows cost nothing.
async fn existing(
    conn: &mut PgConnection,
    tenant: &TenantId,
    wanted: &[Identity],
) -> Result<HashMap<Identity, Suppression>, StoreError> {
    let mut emails: Vec<&str> = wanted.iter().map(|(e, _, _)| e.as_str()).collect();
    emails.sort_unstable();
    emails.dedup();
    let wanted: HashSet<&Identity> = wanted.iter().collect();
    let sql = format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE tenant = $1 AND email = ANY($2)"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(emails)
        .fetch_all(conn)
        .await?;
    let mut found = HashMap::with_capacity(wanted.len());
    for row in &rows {
        let suppression = suppression_from_row(row, tenant)?;
        let identity = stored_identity(&suppression);
        if wanted.contains(&identity) {
            found.insert(identity, suppression);
        }
    }
    Ok(found)
}

/// How often an add retries the identities that vanished between its insert
/// and its read (deleted by another instance in that instant) before giving
/// up.
const VANISHED_RETRIES: usize = 5;

/// Advisory-lock namespace of a tenant's adds that are being retried
/// ("add").
const ADD_RETRY_LOCK_SPACE: i32 = 0x0061_6464;

/// Idempotent add under concurrent writers: `INSERT … ON CONFLICT DO
/// NOTHING` waits for a concurrent insert of the same identity to commit and
/// then skips it; the existing row is then read back in a new statement
/// (READ COMMITTED: a fresh snapshot), which sees it. Should it have been
/// deleted meanwhile, the item is inserted again.
///
/// Rows are inserted in request order, so that ids follow it as in the
/// other stores. Two adds of overlapping identities in different orders can
/// then deadlock; PostgreSQL aborts one, and its `retry` first takes a
/// per-tenant advisory lock, so retried adds of a tenant run one at a time
/// and cannot deadlock again with each other. Adds that never conflicted
/// stay fully concurrent.
pub(super) async fn add(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: &[NewSuppression],
    retry: bool,
    actor: &Actor,
) -> Result<Vec<AddOutcome>, StoreError> {
    let (outcomes, made) = add_unrecorded(conn, tenant, items, retry).await?;
    record_changes(conn, tenant, made, actor).await?;
    Ok(outcomes)
}

/// [`add`] without the end of the transaction ([`record_changes`]): the
/// outcomes, and the changes to journal.
async fn add_unrecorded(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: &[NewSuppression],
    retry: bool,
) -> Result<(Vec<AddOutcome>, Vec<Change>), StoreError> {
    if retry {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(ADD_RETRY_LOCK_SPACE)
            .bind(tenant.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let groups = lock_groups(conn, tenant, items.iter().map(|i| i.scope)).await?;
    let known = |item: &NewSuppression| match item.scope {
        Scope::Group(id) => groups.contains(&id.0),
        Scope::Global => true,
    };
    // The entry each identity resolves to, and whether this call made it.
    let mut resolved: HashMap<Identity, (Suppression, bool)> = HashMap::new();
    let mut pending: Vec<&NewSuppression> = items.iter().filter(|i| known(i)).collect();
    for _ in 0..=VANISHED_RETRIES {
        if pending.is_empty() {
            break;
        }
        let inserted = insert_new(conn, tenant, &pending).await?;
        let mut others = Vec::new();
        for item in &pending {
            let identity = identity(item);
            if resolved.contains_key(&identity) {
                continue;
            }
            match inserted.get(&identity) {
                Some(id) => {
                    let suppression = Suppression {
                        id: SuppressionId(*id),
                        tenant: tenant.clone(),
                        email: item.email.clone(),
                        scope: item.scope,
                        kind: item.kind.clone(),
                        origin: item.origin,
                        created_at: item.created_at,
                    };
                    resolved.insert(identity, (suppression, true));
                }
                None => others.push(identity),
            }
        }
        let mut found = if others.is_empty() {
            HashMap::new()
        } else {
            existing(conn, tenant, &others).await?
        };
        for identity in others {
            if let Some(suppression) = found.remove(&identity) {
                resolved.insert(identity, (suppression, false));
            }
        }
        pending.retain(|item| !resolved.contains_key(&identity(item)));
    }
    if !pending.is_empty() {
        return Err(StoreError::Contention(format!(
            "{} entries were deleted as fast as they were added",
            pending.len()
        )));
    }
    // In request order: the first item of an identity that this call made
    // is new, every later one is the same entry, not new.
    let mut reported: HashSet<Identity> = HashSet::new();
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        if !known(item) {
            if let Scope::Group(id) = item.scope {
                outcomes.push(AddOutcome::UnknownGroup(id));
            }
            continue;
        }
        let identity = identity(item);
        let Some((suppression, made_here)) = resolved.get(&identity) else {
            return Err(StoreError::Corrupt(format!(
                "no entry resolved for {}",
                item.email
            )));
        };
        let first = reported.insert(identity);
        outcomes.push(AddOutcome::Added {
            suppression: suppression.clone(),
            new: *made_here && first,
        });
    }
    // Each new entry once, in request order, as the memory store journals.
    let made = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            AddOutcome::Added {
                suppression,
                new: true,
            } => Some(Change::added(suppression.clone())),
            _ => None,
        })
        .collect();
    Ok((outcomes, made))
}

/// The `removed` changes of deleted rows (`DELETE … RETURNING` the
/// suppression's columns), by id as the memory store journals them: each
/// whole, so that a restore can put it back exactly.
fn removed(rows: &[PgRow], tenant: &TenantId) -> Result<Vec<Change>, StoreError> {
    let mut gone = suppressions_from_rows(rows, tenant)?;
    gone.sort_unstable_by_key(|s| s.id);
    Ok(gone.into_iter().map(Change::removed).collect())
}

pub(super) async fn remove_matching(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &ListFilter,
    actor: &Actor,
) -> Result<u64, StoreError> {
    let gone = remove_matching_unrecorded(conn, tenant, filter).await?;
    let removed = to_u64(gone.len());
    record_changes(conn, tenant, gone, actor).await?;
    Ok(removed)
}

/// [`remove_matching`] without the end of the transaction: the changes to
/// journal.
async fn remove_matching_unrecorded(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &ListFilter,
) -> Result<Vec<Change>, StoreError> {
    let clause = Clause::filter(tenant, filter);
    let sql = format!(
        "DELETE FROM suppressions WHERE {} RETURNING {SUPPRESSION_COLUMNS}",
        clause.sql
    );
    let rows = clause.query(sql).fetch_all(&mut *conn).await?;
    removed(&rows, tenant)
}

/// One delivery of a webhook's events (`Backend::apply_events`), in the
/// caller's transaction. An event's key goes into `hush_webhook_receipts`
/// first: a key there already (committed, or being committed by a
/// concurrent delivery of the same event, whose insert this one waits for)
/// skips the event. The changes of the new events are journaled at the
/// end, each event's as its own actor's, after one version bump: the
/// journal's lock is still the transaction's last (`journal`).
pub(super) async fn apply_events(
    conn: &mut PgConnection,
    tenant: &TenantId,
    hook: &str,
    events: &[ReceivedEvent],
    retry: bool,
    actor: &Actor,
) -> Result<Vec<bool>, StoreError> {
    let mut applied = Vec::with_capacity(events.len());
    let mut journaled: Vec<(Actor, Vec<Change>)> = Vec::new();
    for event in events {
        let fresh = sqlx::query(
            "INSERT INTO hush_webhook_receipts (tenant, hook, key, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(hook)
        .bind(&event.key)
        .bind(Engine::now().as_nanos())
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        applied.push(fresh);
        if !fresh {
            continue;
        }
        let mut changes = Vec::new();
        for change in &event.changes {
            match change {
                EventChange::Add(item) => {
                    let items = std::slice::from_ref(item);
                    changes.extend(add_unrecorded(conn, tenant, items, retry).await?.1);
                }
                EventChange::Remove(filter) => {
                    changes.extend(remove_matching_unrecorded(conn, tenant, filter).await?);
                }
            }
        }
        if !changes.is_empty() {
            journaled.push((actor.clone().with_event_id(event.key.clone()), changes));
        }
    }
    if !journaled.is_empty() {
        bump_version(conn, tenant).await?;
        for (actor, changes) in journaled {
            journal::write(conn, tenant, changes, &actor).await?;
        }
    }
    Ok(applied)
}

/// Per key, whether `hush_webhook_receipts` holds it for the tenant and
/// hook.
pub(super) async fn events_seen(
    conn: &mut PgConnection,
    tenant: &TenantId,
    hook: &str,
    keys: &[String],
) -> Result<Vec<bool>, StoreError> {
    let held: HashSet<String> = sqlx::query(
        "SELECT key FROM hush_webhook_receipts WHERE tenant = $1 AND hook = $2 AND key = ANY($3)",
    )
    .bind(tenant.as_str())
    .bind(hook)
    .bind(keys)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| row.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    Ok(keys.iter().map(|key| held.contains(key)).collect())
}

/// Forgets the webhook event keys remembered before `before`.
pub(super) async fn prune_receipts(
    conn: &mut PgConnection,
    before: Timestamp,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM hush_webhook_receipts WHERE at < $1")
            .bind(before.as_nanos())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

pub(super) async fn remove_ids(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[SuppressionId],
    actor: &Actor,
) -> Result<u64, StoreError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let sql = format!(
        "DELETE FROM suppressions WHERE tenant = $1 AND id = ANY($2) \
         RETURNING {SUPPRESSION_COLUMNS}"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    record_changes(conn, tenant, removed(&rows, tenant)?, actor).await?;
    Ok(to_u64(rows.len()))
}

/// Puts suppressions back exactly as they were, ids included (a restore):
/// each goes in if its id and identity are free and its group is there,
/// and is journaled as `added`. The ids come from the table's own
/// sequence, which has handed them out already, so the sequence stays
/// ahead of them.
pub(super) async fn put_back(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: &[Suppression],
    actor: &Actor,
) -> Result<Vec<bool>, StoreError> {
    let groups = lock_groups(conn, tenant, items.iter().map(|s| s.scope)).await?;
    let fits: Vec<bool> = items
        .iter()
        .map(|s| {
            &s.tenant == tenant
                && match s.scope {
                    Scope::Group(id) => groups.contains(&id.0),
                    Scope::Global => true,
                }
        })
        .collect();
    let candidates: Vec<&Suppression> = items
        .iter()
        .zip(&fits)
        .filter_map(|(s, fits)| fits.then_some(s))
        .collect();
    let ids: Vec<i64> = candidates.iter().map(|s| s.id.0).collect();
    let mut columns = ColumnArrays::default();
    for s in &candidates {
        columns.push(&s.email, s.scope, &s.kind, s.origin, s.created_at);
    }
    // In item order, so that of two items with one id or one identity the
    // first goes in, as in the memory store; any unique index (the id's or
    // the identity's) that holds a row already skips the item.
    let query = sqlx::query(
        "INSERT INTO suppressions \
         (id, tenant, email, group_id, family, class, status, reason, source, origin, created_at) \
         SELECT u.id, $1, u.email, u.group_id, u.family, u.class, u.status, u.reason, u.source, \
                u.origin, u.created_at \
         FROM UNNEST($2::int8[], $3::text[], $4::int8[], $5::int2[], $6::int2[], $7::text[], \
                     $8::text[], $9::text[], $10::int2[], $11::int8[]) WITH ORDINALITY \
              AS u(id, email, group_id, family, class, status, reason, source, origin, \
                   created_at, n) \
         ORDER BY u.n \
         ON CONFLICT DO NOTHING \
         RETURNING id, email, group_id, family",
    )
    .bind(tenant.as_str())
    .bind(ids);
    let rows = columns.bind(query).fetch_all(&mut *conn).await?;
    let mut inserted: HashSet<(Identity, i64)> =
        rows.iter().map(inserted_row).collect::<Result<_, _>>()?;
    let mut changes = Vec::with_capacity(inserted.len());
    let mut outcomes = Vec::with_capacity(items.len());
    for (item, fits) in items.iter().zip(fits) {
        // Taken out of the set, so that a later item of the same id and
        // identity, which the insert skipped, is not counted too.
        let went_in = fits && inserted.remove(&(stored_identity(item), item.id.0));
        if went_in {
            changes.push(Change::added(item.clone()));
        }
        outcomes.push(went_in);
    }
    if let Some(highest) = changes
        .iter()
        .filter_map(|c| match &c.record {
            hush_model::Recorded::Suppression(s) => Some(s.id.0),
            hush_model::Recorded::Group { .. } => None,
        })
        .max()
    {
        keep_ids_ahead(conn, "suppressions", highest).await?;
    }
    record_changes(conn, tenant, changes, actor).await?;
    Ok(outcomes)
}

/// Ends a writing transaction that changed something: bumps the tenant's
/// version, then journals the changes as `actor`'s, the last statement
/// before the commit: the journal's lock orders one tenant's writers
/// through their commits, so it is taken as late as can be (`journal`).
/// A write that changed nothing does neither.
async fn record_changes(
    conn: &mut PgConnection,
    tenant: &TenantId,
    changes: Vec<Change>,
    actor: &Actor,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    bump_version(conn, tenant).await?;
    journal::write(conn, tenant, changes, actor).await
}

/// Shards of a tenant's version (`schema`, migration 2): how many writers
/// of one tenant can commit at once without waiting for each other.
const VERSION_SHARDS: i32 = 16;

/// Marks a change of the tenant's data for the lookup cache of the previous
/// release, which trusted a cached answer while this version stood still:
/// kept so that such instances stay exact while they share the database
/// with upgraded ones during a rolling upgrade (docs/operations.md). This
/// release reads the change log instead (`mirror.rs`). At the end of every
/// write transaction that changed something, right before its journal
/// rows (`record_changes`), so that the version and the change commit
/// together (a reader that sees version V sees every write up to V) and the
/// row lock it takes is held only while the transaction journals and
/// commits. The one lock taken after it is the journal's, whose holder
/// waits for no lock, so it adds no deadlock cycle. The shard is
/// the connection's (its server process id), so concurrent writers on
/// different connections bump different rows: one row would make every
/// write of a tenant wait for the previous one's commit (fsync), which
/// halved the rate of concurrent single-address writes. A write that
/// changed nothing (every item already there, nothing matched) skips it:
/// what `entries` returns is the same, and cached answers stay valid.
pub(super) async fn bump_version(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO hush_tenant_versions (tenant, shard, version) \
         VALUES ($1, pg_backend_pid() % $2, 1) \
         ON CONFLICT (tenant, shard) DO UPDATE SET version = hush_tenant_versions.version + 1",
    )
    .bind(tenant.as_str())
    .bind(VERSION_SHARDS)
    .execute(conn)
    .await?;
    Ok(())
}

/// Advisory-lock namespace of a tenant's group writes ("grp").
const GROUP_LOCK_SPACE: i32 = 0x0067_7270;

/// Serialises one tenant's group writes across every instance until the
/// transaction ends, so that "is the name free" and "who is the default"
/// are answered and acted on without a race. Group writes are rare; adds and
/// reads never take this lock.
pub(super) async fn lock_tenant_groups(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(GROUP_LOCK_SPACE)
        .bind(tenant.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

async fn key_taken(
    conn: &mut PgConnection,
    tenant: &TenantId,
    key: &GroupKey,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT 1 FROM suppression_groups WHERE tenant = $1 AND key = $2")
            .bind(tenant.as_str())
            .bind(key.as_str())
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

async fn name_taken(
    conn: &mut PgConnection,
    tenant: &TenantId,
    name: &str,
    except: Option<GroupId>,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query(
            "SELECT 1 FROM suppression_groups WHERE tenant = $1 AND name = $2 AND id <> $3",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(except.map_or(0, |g| g.0))
        .fetch_optional(conn)
        .await?
        .is_some(),
    )
}

/// Takes the default flag off every group but `except`; the changes, by
/// id, for the journal.
async fn clear_default(
    conn: &mut PgConnection,
    tenant: &TenantId,
    except: GroupId,
) -> Result<Vec<Change>, StoreError> {
    let sql = format!(
        "UPDATE suppression_groups SET is_default = FALSE \
         WHERE tenant = $1 AND id <> $2 AND is_default RETURNING {GROUP_COLUMNS}"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(except.0)
        .fetch_all(conn)
        .await?;
    let mut changed = rows
        .iter()
        .map(|row| group_from_row(row, tenant))
        .collect::<Result<Vec<_>, _>>()?;
    changed.sort_unstable_by_key(|g| g.id);
    Ok(changed
        .into_iter()
        .map(|after| {
            let before = Group {
                is_default: true,
                ..after.clone()
            };
            Change::group(Operation::GroupChanged, after, Some(before))
        })
        .collect())
}

/// Maps a violated unique constraint of the groups table, by its name, to
/// the engine's error, should one get past the checks before the write.
fn group_conflict(err: sqlx::Error, key: &GroupKey, name: &str) -> StoreError {
    let constraint = err
        .as_database_error()
        .filter(|db| db.is_unique_violation())
        .and_then(|db| db.constraint().map(str::to_owned));
    match constraint.as_deref() {
        Some("suppression_groups_key_unique") => StoreError::KeyTaken(key.as_str().to_owned()),
        Some("suppression_groups_name_unique") => StoreError::NameTaken(name.to_owned()),
        _ => StoreError::Postgres(err),
    }
}

pub(super) async fn create_group(
    conn: &mut PgConnection,
    tenant: &TenantId,
    group: NewGroup,
    actor: &Actor,
) -> Result<Group, StoreError> {
    lock_tenant_groups(conn, tenant).await?;
    if key_taken(conn, tenant, &group.key).await? {
        return Err(StoreError::KeyTaken(group.key.as_str().to_owned()));
    }
    if name_taken(conn, tenant, &group.name, None).await? {
        return Err(StoreError::NameTaken(group.name));
    }
    let id: i64 = sqlx::query(
        "INSERT INTO suppression_groups \
         (tenant, key, name, description, is_default, stream_type, unsubscribe_handling, \
          archived_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, NULL) RETURNING id",
    )
    .bind(tenant.as_str())
    .bind(group.key.as_str())
    .bind(&group.name)
    .bind(&group.description)
    .bind(group.is_default)
    .bind(group.stream_type.as_str())
    .bind(group.unsubscribe_handling.as_str())
    .bind(group.created_at.as_nanos())
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| group_conflict(e, &group.key, &group.name))?
    .try_get(0)?;
    let id = GroupId(id);
    let mut changes = if group.is_default {
        clear_default(conn, tenant, id).await?
    } else {
        Vec::new()
    };
    let created = Group {
        id,
        tenant: tenant.clone(),
        key: group.key,
        name: group.name,
        description: group.description,
        is_default: group.is_default,
        stream_type: group.stream_type,
        unsubscribe_handling: group.unsubscribe_handling,
        archived_at: None,
        created_at: group.created_at,
        updated_at: None,
    };
    changes.push(Change::group(
        Operation::GroupCreated,
        created.clone(),
        None,
    ));
    record_changes(conn, tenant, changes, actor).await?;
    Ok(created)
}

/// Puts back a deleted group with its id (a restore), as `create_group`
/// would have made it: false when a group has that id. Group ids come from
/// the table's sequence, which has handed this one out already.
pub(super) async fn put_back_group(
    conn: &mut PgConnection,
    tenant: &TenantId,
    group: Group,
    actor: &Actor,
) -> Result<bool, StoreError> {
    lock_tenant_groups(conn, tenant).await?;
    // Any tenant's: ids are one sequence, and the key is the table's.
    let id_taken = sqlx::query("SELECT 1 FROM suppression_groups WHERE id = $1")
        .bind(group.id.0)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    if id_taken {
        return Ok(false);
    }
    if key_taken(conn, tenant, &group.key).await? {
        return Err(StoreError::KeyTaken(group.key.as_str().to_owned()));
    }
    if name_taken(conn, tenant, &group.name, None).await? {
        return Err(StoreError::NameTaken(group.name));
    }
    sqlx::query(
        "INSERT INTO suppression_groups \
         (id, tenant, key, name, description, is_default, stream_type, unsubscribe_handling, \
          archived_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(group.id.0)
    .bind(tenant.as_str())
    .bind(group.key.as_str())
    .bind(&group.name)
    .bind(&group.description)
    .bind(group.is_default)
    .bind(group.stream_type.as_str())
    .bind(group.unsubscribe_handling.as_str())
    .bind(group.archived_at.map(Timestamp::as_nanos))
    .bind(group.created_at.as_nanos())
    .bind(group.updated_at.map(Timestamp::as_nanos))
    .execute(&mut *conn)
    .await
    .map_err(|e| group_conflict(e, &group.key, &group.name))?;
    keep_ids_ahead(conn, "suppression_groups", group.id.0).await?;
    let mut changes = if group.is_default {
        clear_default(conn, tenant, group.id).await?
    } else {
        Vec::new()
    };
    let restored = Group {
        tenant: tenant.clone(),
        ..group
    };
    changes.push(Change::group(Operation::GroupCreated, restored, None));
    record_changes(conn, tenant, changes, actor).await?;
    Ok(true)
}

pub(super) async fn update_group(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: GroupId,
    changes: GroupChanges,
    actor: &Actor,
) -> Result<Option<Group>, StoreError> {
    lock_tenant_groups(conn, tenant).await?;
    let Some(mut group) = group(conn, tenant, id).await? else {
        return Ok(None);
    };
    let before = group.clone();
    if let Some(name) = changes.name {
        if name != group.name && name_taken(conn, tenant, &name, Some(id)).await? {
            return Err(StoreError::NameTaken(name));
        }
        group.name = name;
    }
    if let Some(description) = changes.description {
        group.description = description;
    }
    if let Some(is_default) = changes.is_default {
        group.is_default = is_default;
    }
    if let Some(handling) = changes.unsubscribe_handling {
        group.unsubscribe_handling = handling;
    }
    if let Some(archived_at) = changes.archived_at {
        group.archived_at = archived_at;
    }
    if let Some(updated_at) = changes.updated_at {
        group.updated_at = Some(updated_at);
    }
    sqlx::query(
        "UPDATE suppression_groups SET name = $3, description = $4, is_default = $5, \
         unsubscribe_handling = $6, archived_at = $7, updated_at = $8 \
         WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id.0)
    .bind(&group.name)
    .bind(&group.description)
    .bind(group.is_default)
    .bind(group.unsubscribe_handling.as_str())
    .bind(group.archived_at.map(Timestamp::as_nanos))
    .bind(group.updated_at.map(Timestamp::as_nanos))
    .execute(&mut *conn)
    .await
    .map_err(|e| group_conflict(e, &group.key, &group.name))?;
    let mut journaled = if changes.is_default == Some(true) {
        clear_default(conn, tenant, id).await?
    } else {
        Vec::new()
    };
    journaled.push(Change::group(
        Operation::GroupChanged,
        group.clone(),
        Some(before),
    ));
    record_changes(conn, tenant, journaled, actor).await?;
    Ok(Some(group))
}

/// Journals each member as `removed` and then the group as
/// `group_deleted`, so that undoing newest first puts the group back
/// before its members.
pub(super) async fn delete_group(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: GroupId,
    actor: &Actor,
) -> Result<bool, StoreError> {
    lock_tenant_groups(conn, tenant).await?;
    let sql = format!(
        "DELETE FROM suppression_groups WHERE tenant = $1 AND id = $2 RETURNING {GROUP_COLUMNS}"
    );
    let Some(row) = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(false);
    };
    let deleted = group_from_row(&row, tenant)?;
    // A new statement, so a fresh snapshot: it also sees adds to the group
    // that committed while this transaction waited for their group lock.
    let sql = format!(
        "DELETE FROM suppressions WHERE tenant = $1 AND group_id = $2 \
         RETURNING {SUPPRESSION_COLUMNS}"
    );
    let members = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
    let mut changes = removed(&members, tenant)?;
    changes.push(Change::group(Operation::GroupDeleted, deleted, None));
    record_changes(conn, tenant, changes, actor).await?;
    Ok(true)
}

/// Moves a table's id sequence past `id`, which a put-back inserted as it
/// was: ids carried by `hush copy` come from another store, and may be
/// ahead of this one's sequence, which would otherwise hand them out again.
/// Only ever forwards, and only when needed (a restore of this store's own
/// entries never is).
async fn keep_ids_ahead(
    conn: &mut PgConnection,
    table: &'static str,
    id: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT setval(seq, $2) \
         FROM (SELECT pg_get_serial_sequence($1, 'id')::regclass AS seq) s \
         WHERE $2 > coalesce(pg_sequence_last_value(seq), 0)",
    )
    .bind(table)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_conditions() {
        assert_eq!(kinds_sql(KindSet::ALL), None);
        assert_eq!(kinds_sql(KindSet::NONE).as_deref(), Some("FALSE"));
        assert_eq!(
            kinds_sql(KindSet::family(KindFamily::Bounce)).as_deref(),
            Some("(family IN (0))")
        );
    }

    #[test]
    fn filters_number_their_placeholders_in_order() {
        let tenant = TenantId::parse("t").unwrap_or_else(|e| panic!("{e}"));
        let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::GlobalAndGroup(GroupId(7)));
        filter.email = Some(EmailMatch::prefix("a").expect("a usable filter"));
        filter.origin = Some(Origin::Admin);
        let clause = Clause::filter(&tenant, &filter);
        assert_eq!(
            clause.sql,
            "tenant = $1 AND group_id IN (0, $2) AND email >= $3 AND email < $4 AND origin = $5"
        );
        assert_eq!(clause.params.len(), 5);
    }
}
