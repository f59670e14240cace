//! The SQL of every operation, and the mapping between rows and the model.
//! Writes take the writer's connection (inside its batch transaction);
//! reads take a pooled read-only connection.

use hush_engine::{AddOutcome, Engine};
use hush_model::{
    Actor, BounceClass, Door, Email, EmailMatch, Group, GroupChanges, GroupId, GroupKey,
    JournalEntry, JournalOrder, JournalQuery, Kind, KindFamily, KindSet, ListFilter, NewGroup,
    NewSuppression, Operation, Origin, Page, PageRequest, Position, Recorded, ScanCursor, Scope,
    ScopeFilter, StreamType, Suppression, SuppressionId, TenantId, Timestamp, UnsubscribeHandling,
};
use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension as _, Row, params, params_from_iter};

use super::{StoreError, batch_pack};

// ---------------------------------------------------------------------------
// Column encodings

/// A bounce class as stored in `suppressions.class`.
pub(crate) fn class_code(class: BounceClass) -> i64 {
    match class {
        BounceClass::Hard => 0,
        BounceClass::Soft => 1,
        BounceClass::Block => 2,
    }
}

pub(crate) fn class_from_code(code: i64) -> Option<BounceClass> {
    [BounceClass::Hard, BounceClass::Soft, BounceClass::Block]
        .into_iter()
        .find(|c| class_code(*c) == code)
}

/// `suppressions.group_id`: 0 is Global.
pub(crate) fn group_column(scope: Scope) -> i64 {
    match scope {
        Scope::Global => 0,
        Scope::Group(id) => id.0,
    }
}

/// The `class`, `status`, `reason` and `source` columns of a kind.
pub(crate) fn kind_columns(kind: &Kind) -> (Option<i64>, Option<&str>, Option<&str>, Option<&str>) {
    match kind {
        Kind::Bounce {
            class,
            status,
            reason,
        } => (
            Some(class_code(*class)),
            status.as_deref(),
            reason.as_deref(),
            None,
        ),
        Kind::Invalid { reason } => (None, None, reason.as_deref(), None),
        Kind::SpamComplaint { source } => (None, None, None, source.as_deref()),
        Kind::Unsubscribe | Kind::Manual => (None, None, None, None),
    }
}

fn bad_column(
    index: usize,
    kind: Type,
    why: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, kind, why.into())
}

const SUPPRESSION_COLUMNS: &str =
    "id, email, group_id, family, class, status, reason, source, origin, created_at";

fn suppression_from_row(row: &Row<'_>, tenant: &TenantId) -> rusqlite::Result<Suppression> {
    suppression_at(row, tenant, 0)
}

/// The suppression whose [`SUPPRESSION_COLUMNS`] start at column `at`.
fn suppression_at(row: &Row<'_>, tenant: &TenantId, at: usize) -> rusqlite::Result<Suppression> {
    let col = |i: usize| at + i;
    let email: String = row.get(col(1))?;
    let email = Email::parse(&email).map_err(|e| bad_column(col(1), Type::Text, e))?;
    let scope = match row.get::<_, i64>(col(2))? {
        0 => Scope::Global,
        id => Scope::Group(GroupId(id)),
    };
    let family_code: i64 = row.get(col(3))?;
    let family = KindFamily::from_code(family_code).ok_or_else(|| {
        bad_column(
            col(3),
            Type::Integer,
            format!("unknown kind family {family_code}"),
        )
    })?;
    let kind = kind_from_columns(
        family,
        row.get(col(4))?,
        row.get(col(5))?,
        row.get(col(6))?,
        row.get(col(7))?,
    )
    .map_err(|why| bad_column(col(4), Type::Integer, why))?;
    let origin_code: i64 = row.get(col(8))?;
    let origin = Origin::from_code(origin_code).ok_or_else(|| {
        bad_column(
            col(8),
            Type::Integer,
            format!("unknown origin {origin_code}"),
        )
    })?;
    Ok(Suppression {
        id: SuppressionId(row.get(col(0))?),
        tenant: tenant.clone(),
        email,
        scope,
        kind,
        origin,
        created_at: Timestamp::from_nanos(row.get(col(9))?),
    })
}

/// A kind from its columns (`kind_columns` backwards); the error says what
/// is wrong with them.
pub(crate) fn kind_from_columns(
    family: KindFamily,
    class: Option<i64>,
    status: Option<String>,
    reason: Option<String>,
    source: Option<String>,
) -> Result<Kind, String> {
    Ok(match family {
        KindFamily::Bounce => Kind::Bounce {
            class: class
                .and_then(class_from_code)
                .ok_or_else(|| format!("bad bounce class {class:?}"))?,
            status,
            reason,
        },
        KindFamily::Invalid => Kind::Invalid { reason },
        KindFamily::Spam => Kind::SpamComplaint { source },
        KindFamily::Unsubscribe => Kind::Unsubscribe,
        KindFamily::Manual => Kind::Manual,
    })
}

const GROUP_COLUMNS: &str = "id, key, name, description, is_default, stream_type, \
     unsubscribe_handling, archived_at, created_at, updated_at";

fn group_from_row(row: &Row<'_>, tenant: &TenantId) -> rusqlite::Result<Group> {
    let key: String = row.get(1)?;
    let key = GroupKey::parse(&key).map_err(|e| bad_column(1, Type::Text, e))?;
    let stream_type: String = row.get(5)?;
    let stream_type = StreamType::parse(&stream_type).ok_or_else(|| {
        bad_column(
            5,
            Type::Text,
            format!("unknown stream type {stream_type:?}"),
        )
    })?;
    let handling: String = row.get(6)?;
    let unsubscribe_handling = UnsubscribeHandling::parse(&handling).ok_or_else(|| {
        bad_column(
            6,
            Type::Text,
            format!("unknown unsubscribe handling {handling:?}"),
        )
    })?;
    Ok(Group {
        id: GroupId(row.get(0)?),
        tenant: tenant.clone(),
        key,
        name: row.get(2)?,
        description: row.get(3)?,
        is_default: row.get(4)?,
        stream_type,
        unsubscribe_handling,
        archived_at: row.get::<_, Option<i64>>(7)?.map(Timestamp::from_nanos),
        created_at: Timestamp::from_nanos(row.get(8)?),
        updated_at: row.get::<_, Option<i64>>(9)?.map(Timestamp::from_nanos),
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

/// A `WHERE` clause and its parameters, in order.
#[derive(Debug)]
struct Clause {
    sql: String,
    params: Vec<Value>,
}

impl Clause {
    fn new(tenant: &TenantId) -> Self {
        Self {
            sql: "tenant = ?".to_owned(),
            params: vec![Value::Text(tenant.as_str().to_owned())],
        }
    }

    fn and(&mut self, sql: &str, params: impl IntoIterator<Item = Value>) {
        self.sql.push_str(" AND ");
        self.sql.push_str(sql);
        self.params.extend(params);
    }

    fn filter(tenant: &TenantId, filter: &ListFilter) -> Self {
        let mut clause = Self::new(tenant);
        if let Some(kinds) = kinds_sql(filter.kinds) {
            clause.and(&kinds, []);
        }
        match filter.scope {
            ScopeFilter::Any => {}
            ScopeFilter::Global => clause.and("group_id = 0", []),
            ScopeFilter::Group(id) => clause.and("group_id = ?", [Value::Integer(id.0)]),
            ScopeFilter::GlobalAndGroup(id) => {
                clause.and("group_id IN (0, ?)", [Value::Integer(id.0)]);
            }
        }
        match &filter.email {
            None => {}
            Some(EmailMatch::Exact(email)) => {
                clause.and("email = ?", [Value::Text(email.as_str().to_owned())]);
            }
            // A range on the binary collation, so nothing in the needle is a
            // wildcard and the address index can serve it.
            Some(EmailMatch::Prefix(prefix)) => match prefix_end(prefix) {
                Some(end) => clause.and(
                    "email >= ? AND email < ?",
                    [Value::Text(prefix.clone()), Value::Text(end)],
                ),
                None => clause.and("email >= ?", [Value::Text(prefix.clone())]),
            },
            Some(EmailMatch::Contains(needle)) => {
                clause.and("instr(email, ?) > 0", [Value::Text(needle.clone())]);
            }
            // LIKE with every part escaped, so only the pattern's own `%`s
            // are wildcards. LIKE ignores ASCII case, which changes nothing
            // here: addresses and parts are both lowercase.
            Some(EmailMatch::Pattern(parts)) => {
                clause.and(
                    "email LIKE ? ESCAPE '\\'",
                    [Value::Text(like_pattern(parts))],
                );
            }
        }
        if let Some(origin) = filter.origin {
            clause.and("origin = ?", [Value::Integer(origin.code())]);
        }
        if let Some(from) = filter.created_from {
            clause.and("created_at >= ?", [Value::Integer(from.as_nanos())]);
        }
        if let Some(to) = filter.created_to {
            clause.and("created_at <= ?", [Value::Integer(to.as_nanos())]);
        }
        clause
    }

    /// The filter's clause and, with [`ListFilter::per_address`], the
    /// condition that keeps only the newest matching entry of each address
    /// and scope: no entry of the same address and scope that the filter
    /// matches is newer. The probe names the identity index, which starts
    /// `(tenant, email, group_id)`, so it costs one index seek per row
    /// however long the list (without statistics the planner might walk a
    /// time index instead).
    fn listing(tenant: &TenantId, filter: &ListFilter) -> Self {
        let mut clause = Self::filter(tenant, filter);
        if filter.per_address {
            // Unqualified columns in the subquery are `newer`'s; the outer
            // row is `suppressions`.
            let newer = Self::filter(tenant, filter);
            clause.and(
                &format!(
                    "NOT EXISTS (SELECT 1 FROM suppressions AS newer \
                     INDEXED BY suppressions_identity WHERE {} \
                     AND newer.email = suppressions.email \
                     AND newer.group_id = suppressions.group_id \
                     AND (newer.created_at, newer.id) > (suppressions.created_at, suppressions.id))",
                    newer.sql
                ),
                newer.params,
            );
        }
        clause
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
        return Some("0".to_owned());
    }
    Some(format!("({})", partial.join(" OR ")))
}

/// A LIKE operand matching `text` literally, with a backslash as the escape.
/// A LIKE pattern (escape character `\\`) matching an
/// [`EmailMatch::Pattern`]: the parts in order, literally, with anything
/// between and after them. Both SQL stores use it.
pub(crate) fn like_pattern(parts: &[String]) -> String {
    let mut like = parts
        .iter()
        .map(|part| escape_like(part))
        .collect::<Vec<_>>()
        .join("%");
    like.push('%');
    like
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The least string greater than every string that starts with `prefix`
/// (UTF-8 orders bytes as code points, as the binary collation compares
/// them); `None` when there is none.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

const NEWEST_FIRST: &str = "ORDER BY created_at DESC, id DESC";

// ---------------------------------------------------------------------------
// Reads

/// Built once: a lookup is the hot path and the text is the statement
/// cache's key.
static ENTRIES_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions INDEXED BY suppressions_identity \
         WHERE tenant = ?1 AND email = ?2 {NEWEST_FIRST}"
    )
});

fn entries_sql() -> &'static str {
    &ENTRIES_SQL
}

pub(super) fn entries(
    conn: &Connection,
    tenant: &TenantId,
    email: &Email,
) -> Result<Vec<Suppression>, StoreError> {
    let mut stmt = conn.prepare_cached(entries_sql())?;
    let rows = stmt.query_map(params![tenant.as_str(), email.as_str()], |row| {
        suppression_from_row(row, tenant)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn select(
    conn: &Connection,
    tenant: &TenantId,
    mut clause: Clause,
    limit: u32,
    offset: u64,
) -> Result<Vec<Suppression>, StoreError> {
    let mut sql = format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE {} {NEWEST_FIRST} LIMIT ?",
        clause.sql
    );
    clause.params.push(Value::Integer(i64::from(limit)));
    if offset > 0 {
        sql.push_str(" OFFSET ?");
        clause.params.push(Value::Integer(to_i64(offset)));
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(clause.params), |row| {
        suppression_from_row(row, tenant)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn count_where(conn: &Connection, clause: Clause) -> Result<u64, StoreError> {
    count_sql(
        conn,
        &format!("SELECT count(*) FROM suppressions WHERE {}", clause.sql),
        clause.params,
    )
}

fn count_sql(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached(sql)?
        .query_row(params_from_iter(params), |row| row.get(0))?;
    Ok(to_u64(count))
}

/// How many entries, or with [`ListFilter::per_address`] how many addresses
/// (per scope), the filter matches: the number of rows its listing has.
fn count_filter(
    conn: &Connection,
    tenant: &TenantId,
    filter: &ListFilter,
) -> Result<u64, StoreError> {
    let clause = Clause::filter(tenant, filter);
    if !filter.per_address {
        return count_where(conn, clause);
    }
    let sql = match filter.scope {
        ScopeFilter::Global | ScopeFilter::Group(_) => format!(
            "SELECT count(DISTINCT email) FROM suppressions WHERE {}",
            clause.sql
        ),
        ScopeFilter::Any | ScopeFilter::GlobalAndGroup(_) => format!(
            "SELECT count(*) FROM (SELECT DISTINCT group_id, email FROM suppressions WHERE {})",
            clause.sql
        ),
    };
    count_sql(conn, &sql, clause.params)
}

/// The page and the total are read in one transaction, so they agree.
pub(super) fn list(
    conn: &mut Connection,
    tenant: &TenantId,
    filter: &ListFilter,
    page: PageRequest,
) -> Result<Page<Suppression>, StoreError> {
    let tx = conn.transaction()?;
    let total = count_filter(&tx, tenant, filter)?;
    let items = if page.limit == 0 || page.offset >= total {
        Vec::new()
    } else {
        select(
            &tx,
            tenant,
            Clause::listing(tenant, filter),
            page.limit,
            page.offset,
        )?
    };
    tx.commit()?;
    Ok(Page { items, total })
}

pub(super) fn count(
    conn: &Connection,
    tenant: &TenantId,
    filter: &ListFilter,
) -> Result<u64, StoreError> {
    count_filter(conn, tenant, filter)
}

pub(super) fn scan(
    conn: &Connection,
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
        clause.and(
            "(created_at, id) < (?, ?)",
            [
                Value::Integer(cursor.created_at.as_nanos()),
                Value::Integer(cursor.id.0),
            ],
        );
    }
    select(conn, tenant, clause, limit, 0)
}

pub(super) fn group(
    conn: &Connection,
    tenant: &TenantId,
    id: GroupId,
) -> Result<Option<Group>, StoreError> {
    let sql =
        format!("SELECT {GROUP_COLUMNS} FROM suppression_groups WHERE tenant = ?1 AND id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![tenant.as_str(), id.0], |row| {
            group_from_row(row, tenant)
        })
        .optional()?)
}

pub(super) fn group_by_key(
    conn: &Connection,
    tenant: &TenantId,
    key: &GroupKey,
) -> Result<Option<Group>, StoreError> {
    let sql =
        format!("SELECT {GROUP_COLUMNS} FROM suppression_groups WHERE tenant = ?1 AND key = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![tenant.as_str(), key.as_str()], |row| {
            group_from_row(row, tenant)
        })
        .optional()?)
}

pub(super) fn groups(conn: &Connection, tenant: &TenantId) -> Result<Vec<Group>, StoreError> {
    let sql =
        format!("SELECT {GROUP_COLUMNS} FROM suppression_groups WHERE tenant = ?1 ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![tenant.as_str()], |row| group_from_row(row, tenant))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every tenant with a suppression or a group, in order.
/// The file's key and legacy bound for shown ids (`hush_meta`).
pub(super) fn shown_ids(conn: &Connection) -> Result<hush_model::ShownIds, StoreError> {
    let value = |name: &str| -> Result<String, StoreError> {
        Ok(conn.query_row(
            "SELECT value FROM hush_meta WHERE name = ?1",
            [name],
            |row| row.get(0),
        )?)
    };
    crate::shown_ids_from(&value("shown_ids_key")?, &value("legacy_groups_up_to")?)
        .map_err(StoreError::Setup)
}

/// How much a readiness probe writes: enough pages (4 KiB each) that it
/// needs room a full disk or a full file does not have.
pub(crate) const PROBE_BYTES: i64 = 64 * 1024;

/// Writes and deletes a row of [`PROBE_BYTES`] in the current transaction:
/// committed, it proves that a write of that size fits again.
pub(super) fn probe_write(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO hush_write_probe (id, filler) VALUES (1, zeroblob(?1))")?
        .execute([PROBE_BYTES])?;
    conn.prepare_cached("DELETE FROM hush_write_probe")?
        .execute([])?;
    Ok(())
}

/// Puts every stored address in `Email::parse`'s normal form: an IDN
/// domain in one spelling, NFC, invisible characters dropped
/// (`Email::parse_stored`). An entry whose normal form already has an
/// entry of the same identity is the same suppression twice, and goes (the
/// other stays). Only rows that can differ are read: non-ASCII, or an
/// `xn--` label. One that no longer parses at all (an `xn--` label that is
/// not punycode, which the old rules let through) could never be read or
/// matched again: it moves to `hush_quarantine`, and is logged.
pub(super) fn normalize_addresses(conn: &Connection) -> Result<(), StoreError> {
    let rows: Vec<(i64, String)> = conn
        .prepare(
            "SELECT id, email FROM suppressions WHERE email GLOB '*[^ -~]*' OR email LIKE '%xn--%'",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let (mut changed, mut merged) = (0_u64, 0_u64);
    for (id, stored) in rows {
        let normal = match Email::parse_stored(&stored) {
            Ok(email) if email.as_str() != stored => email,
            Ok(_) => continue,
            Err(err) => {
                conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS hush_quarantine AS SELECT * FROM suppressions WHERE 0",
                )?;
                conn.execute(
                    "INSERT INTO hush_quarantine SELECT * FROM suppressions WHERE id = ?1",
                    [id],
                )?;
                conn.execute("DELETE FROM suppressions WHERE id = ?1", [id])?;
                tracing::warn!(id, %err, "a stored address no longer parses; moved to hush_quarantine");
                continue;
            }
        };
        match conn.execute(
            "UPDATE suppressions SET email = ?1 WHERE id = ?2",
            rusqlite::params![normal.as_str(), id],
        ) {
            Ok(_) => changed += 1,
            Err(err)
                if err.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                conn.execute("DELETE FROM suppressions WHERE id = ?1", [id])?;
                merged += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
    if changed + merged > 0 {
        tracing::info!(changed, merged, "stored addresses put in their normal form");
    }
    Ok(())
}

pub(super) fn tenants(conn: &Connection) -> Result<Vec<TenantId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant FROM suppression_groups UNION SELECT tenant FROM suppressions ORDER BY 1",
    )?;
    let rows = stmt.query_map([], |row| {
        let raw: String = row.get(0)?;
        TenantId::parse(&raw).map_err(|e| bad_column(0, Type::Text, e))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---------------------------------------------------------------------------
// Writes (on the writer's connection, inside its batch transaction)

fn group_exists(conn: &Connection, tenant: &TenantId, id: GroupId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM suppression_groups WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![tenant.as_str(), id.0], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn add(
    conn: &Connection,
    tenant: &TenantId,
    items: Vec<NewSuppression>,
    actor: &Actor,
) -> Result<Vec<AddOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(items.len());
    let mut journal = Journal::new(conn, tenant, actor);
    let mut known_groups: Vec<(GroupId, bool)> = Vec::new();
    // Prepared (taken from the cache) once per command, not per row: the
    // cache lookup hashes the whole statement text. No `RETURNING id`: it
    // made each insert 2.6 times as slow (an ephemeral table per row;
    // docs/benchmarks.md); the new row's id is the connection's last rowid.
    let mut insert = conn.prepare_cached(
        "INSERT INTO suppressions \
         (tenant, email, group_id, family, class, status, reason, source, origin, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (tenant, email, group_id, family) DO NOTHING",
    )?;
    for item in items {
        if let Scope::Group(id) = item.scope {
            let exists = match known_groups.iter().find(|(g, _)| *g == id) {
                Some((_, exists)) => *exists,
                None => {
                    let exists = group_exists(conn, tenant, id)?;
                    known_groups.push((id, exists));
                    exists
                }
            };
            if !exists {
                outcomes.push(AddOutcome::UnknownGroup(id));
                continue;
            }
        }
        let group_id = group_column(item.scope);
        let family = item.kind.family().code();
        let (class, status, reason, source) = kind_columns(&item.kind);
        let changed = insert.execute(params![
            tenant.as_str(),
            item.email.as_str(),
            group_id,
            family,
            class,
            status,
            reason,
            source,
            item.origin.code(),
            item.created_at.as_nanos(),
        ])?;
        // One row changed: inserted, with the id SQLite just assigned; none:
        // the identity was already there (ON CONFLICT DO NOTHING).
        let inserted = (changed == 1).then(|| conn.last_insert_rowid());
        let outcome = match inserted {
            Some(id) => AddOutcome::Added {
                suppression: journal.added(Suppression {
                    id: SuppressionId(id),
                    tenant: tenant.clone(),
                    email: item.email,
                    scope: item.scope,
                    kind: item.kind,
                    origin: item.origin,
                    created_at: item.created_at,
                })?,
                new: true,
            },
            None => {
                let sql = format!(
                    "SELECT {SUPPRESSION_COLUMNS} FROM suppressions \
                     INDEXED BY suppressions_identity WHERE tenant = ?1 AND email = ?2 AND group_id = ?3 AND family = ?4"
                );
                let existing = conn.prepare_cached(&sql)?.query_row(
                    params![tenant.as_str(), item.email.as_str(), group_id, family],
                    |row| suppression_from_row(row, tenant),
                )?;
                AddOutcome::Added {
                    suppression: existing,
                    new: false,
                }
            }
        };
        outcomes.push(outcome);
    }
    journal.finish()?;
    Ok(outcomes)
}

/// What a removal took out: each entry's address and id, so that the
/// lookup index can follow (index.rs). The journal has the entries whole.
pub(super) type Removed = Vec<(String, SuppressionId)>;

/// Runs a `DELETE … RETURNING` of whole suppressions and journals each
/// entry it removed as `removed`, as the rows come: only addresses and ids
/// are kept, so that removing a million entries does not hold a million
/// suppressions. The entries are journaled in the order SQLite removed
/// them; within one command that order means nothing (they share their
/// time and actor, and a restore puts them back together).
fn delete_journaled(
    delete: &mut rusqlite::Statement<'_>,
    journal: &mut Journal<'_, '_>,
    tenant: &TenantId,
    params: impl rusqlite::Params,
) -> Result<Removed, StoreError> {
    let mut rows = delete.query(params)?;
    let mut removed = Vec::new();
    while let Some(row) = rows.next()? {
        let gone = journal.suppression(Operation::Removed, suppression_from_row(row, tenant)?)?;
        removed.push((gone.email.as_str().to_owned(), gone.id));
    }
    Ok(removed)
}

pub(super) fn remove_matching(
    conn: &Connection,
    tenant: &TenantId,
    filter: &ListFilter,
    actor: &Actor,
) -> Result<Removed, StoreError> {
    let clause = Clause::filter(tenant, filter);
    let sql = format!(
        "DELETE FROM suppressions WHERE {} RETURNING {SUPPRESSION_COLUMNS}",
        clause.sql
    );
    let mut journal = Journal::new(conn, tenant, actor);
    let mut delete = conn.prepare_cached(&sql)?;
    let removed = delete_journaled(
        &mut delete,
        &mut journal,
        tenant,
        params_from_iter(clause.params),
    )?;
    journal.finish()?;
    Ok(removed)
}

/// What one delivery of webhook events changed, in order, for the lookup
/// index to follow.
#[derive(Debug, Default)]
pub(super) struct EventsApplied {
    pub(super) fresh: Vec<bool>,
    pub(super) changes: Vec<Applied>,
}

/// One change of [`EventsApplied`].
#[derive(Debug)]
pub(super) enum Applied {
    Added(Suppression),
    Removed(String, SuppressionId),
}

/// One delivery of a webhook's events (`Backend::apply_events`), in the
/// writer's transaction: an event whose key `webhook_receipts` holds for
/// the hook is skipped, the others' changes are made and journaled with
/// the event's key as event id, and their keys kept.
pub(super) fn apply_events(
    conn: &Connection,
    tenant: &TenantId,
    hook: &str,
    events: Vec<hush_engine::ReceivedEvent>,
    actor: &Actor,
) -> Result<EventsApplied, StoreError> {
    let mut applied = EventsApplied::default();
    let now = Engine::now().as_nanos();
    let mut receipt = conn.prepare_cached(
        "INSERT INTO webhook_receipts (tenant, hook, key, at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT DO NOTHING",
    )?;
    for event in events {
        let fresh = receipt.execute(params![tenant.as_str(), hook, event.key, now])? == 1;
        applied.fresh.push(fresh);
        if !fresh {
            continue;
        }
        let actor = actor.clone().with_event_id(event.key);
        for change in event.changes {
            match change {
                hush_engine::EventChange::Add(item) => {
                    for outcome in add(conn, tenant, vec![item], &actor)? {
                        if let AddOutcome::Added {
                            suppression,
                            new: true,
                        } = outcome
                        {
                            applied.changes.push(Applied::Added(suppression));
                        }
                    }
                }
                hush_engine::EventChange::Remove(filter) => {
                    let removed = remove_matching(conn, tenant, &filter, &actor)?;
                    applied.changes.extend(
                        removed
                            .into_iter()
                            .map(|(email, id)| Applied::Removed(email, id)),
                    );
                }
            }
        }
    }
    Ok(applied)
}

/// Per key, whether `webhook_receipts` holds it for the tenant and hook.
pub(super) fn events_seen(
    conn: &Connection,
    tenant: &TenantId,
    hook: &str,
    keys: &[String],
) -> Result<Vec<bool>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM webhook_receipts WHERE tenant = ?1 AND hook = ?2 AND key = ?3",
    )?;
    let mut seen = Vec::with_capacity(keys.len());
    for key in keys {
        seen.push(stmt.exists(params![tenant.as_str(), hook, key])?);
    }
    Ok(seen)
}

/// Forgets the webhook event keys kept before `before`.
pub(super) fn prune_receipts(conn: &Connection, before: Timestamp) -> Result<u64, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM webhook_receipts WHERE at < ?1")?
        .execute([before.as_nanos()])?;
    Ok(to_u64(deleted))
}

/// Removes entries by id, in the order given (the backend sorts them, as
/// the memory store does).
pub(super) fn remove_ids(
    conn: &Connection,
    tenant: &TenantId,
    ids: &[SuppressionId],
    actor: &Actor,
) -> Result<Removed, StoreError> {
    let sql = format!(
        "DELETE FROM suppressions WHERE tenant = ?1 AND id = ?2 RETURNING {SUPPRESSION_COLUMNS}"
    );
    // Taken from the cache once per command, not per id.
    let mut delete = conn.prepare_cached(&sql)?;
    let mut journal = Journal::new(conn, tenant, actor);
    let mut removed = Vec::new();
    for id in ids {
        removed.extend(delete_journaled(
            &mut delete,
            &mut journal,
            tenant,
            params![tenant.as_str(), id.0],
        )?);
    }
    journal.finish()?;
    Ok(removed)
}

fn key_taken(conn: &Connection, tenant: &TenantId, key: &GroupKey) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM suppression_groups WHERE tenant = ?1 AND key = ?2")?
        .query_row(params![tenant.as_str(), key.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

fn name_taken(
    conn: &Connection,
    tenant: &TenantId,
    name: &str,
    except: Option<GroupId>,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM suppression_groups WHERE tenant = ?1 AND name = ?2 AND id <> ?3",
        )?
        .query_row(
            params![tenant.as_str(), name, except.map_or(0, |g| g.0)],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Takes the default flag off every group of the tenant but `except`, and
/// journals each loss of it as `group_changed`.
fn clear_default(
    conn: &Connection,
    journal: &mut Journal<'_, '_>,
    tenant: &TenantId,
    except: GroupId,
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE suppression_groups SET is_default = 0 \
         WHERE tenant = ?1 AND id <> ?2 AND is_default <> 0 RETURNING {GROUP_COLUMNS}"
    );
    let changed: Vec<Group> = conn
        .prepare_cached(&sql)?
        .query_map(params![tenant.as_str(), except.0], |row| {
            group_from_row(row, tenant)
        })?
        .collect::<Result<_, _>>()?;
    for after in changed {
        // Only the flag changed: the group before is the group after with
        // the flag still set.
        let before = Group {
            is_default: true,
            ..after.clone()
        };
        journal.group(Operation::GroupChanged, after, Some(before))?;
    }
    Ok(())
}

/// Maps a violated UNIQUE constraint of the groups table to the engine's
/// error, should one get past the checks before the write.
fn group_conflict(err: rusqlite::Error, key: &GroupKey, name: &str) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(code, Some(message))
            if code.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            if message.contains("suppression_groups.key") {
                StoreError::KeyTaken(key.as_str().to_owned())
            } else if message.contains("suppression_groups.name") {
                StoreError::NameTaken(name.to_owned())
            } else {
                StoreError::Sqlite(err)
            }
        }
        _ => StoreError::Sqlite(err),
    }
}

pub(super) fn create_group(
    conn: &Connection,
    tenant: &TenantId,
    group: NewGroup,
    actor: &Actor,
) -> Result<Group, StoreError> {
    if key_taken(conn, tenant, &group.key)? {
        return Err(StoreError::KeyTaken(group.key.as_str().to_owned()));
    }
    if name_taken(conn, tenant, &group.name, None)? {
        return Err(StoreError::NameTaken(group.name));
    }
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO suppression_groups \
             (tenant, key, name, description, is_default, stream_type, unsubscribe_handling, \
              archived_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, NULL) RETURNING id",
        )?
        .query_row(
            params![
                tenant.as_str(),
                group.key.as_str(),
                group.name,
                group.description,
                group.is_default,
                group.stream_type.as_str(),
                group.unsubscribe_handling.as_str(),
                group.created_at.as_nanos(),
            ],
            |row| row.get(0),
        )
        .map_err(|e| group_conflict(e, &group.key, &group.name))?;
    let id = GroupId(id);
    let mut journal = Journal::new(conn, tenant, actor);
    if group.is_default {
        clear_default(conn, &mut journal, tenant, id)?;
    }
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
    journal.group(Operation::GroupCreated, created.clone(), None)?;
    journal.finish()?;
    Ok(created)
}

pub(super) fn update_group(
    conn: &Connection,
    tenant: &TenantId,
    id: GroupId,
    changes: GroupChanges,
    actor: &Actor,
) -> Result<Option<Group>, StoreError> {
    let Some(mut group) = group(conn, tenant, id)? else {
        return Ok(None);
    };
    let before = group.clone();
    if let Some(name) = &changes.name
        && *name != group.name
        && name_taken(conn, tenant, name, Some(id))?
    {
        return Err(StoreError::NameTaken(name.clone()));
    }
    let becomes_default = changes.is_default == Some(true);
    group.apply(changes);
    conn.prepare_cached(
        "UPDATE suppression_groups SET name = ?3, description = ?4, is_default = ?5, \
         unsubscribe_handling = ?6, archived_at = ?7, updated_at = ?8 \
         WHERE tenant = ?1 AND id = ?2",
    )?
    .execute(params![
        tenant.as_str(),
        id.0,
        group.name,
        group.description,
        group.is_default,
        group.unsubscribe_handling.as_str(),
        group.archived_at.map(Timestamp::as_nanos),
        group.updated_at.map(Timestamp::as_nanos),
    ])
    .map_err(|e| group_conflict(e, &group.key, &group.name))?;
    let mut journal = Journal::new(conn, tenant, actor);
    if becomes_default {
        clear_default(conn, &mut journal, tenant, id)?;
    }
    journal.group(Operation::GroupChanged, group.clone(), Some(before))?;
    journal.finish()?;
    Ok(Some(group))
}

/// `None` when there is no such group; else the entries it took with it.
/// The members are journaled as `removed` before the group's
/// `group_deleted`, so that a restore, undoing newest first, puts the group
/// back before them.
pub(super) fn delete_group(
    conn: &Connection,
    tenant: &TenantId,
    id: GroupId,
    actor: &Actor,
) -> Result<Option<Removed>, StoreError> {
    let sql = format!(
        "DELETE FROM suppression_groups WHERE tenant = ?1 AND id = ?2 RETURNING {GROUP_COLUMNS}"
    );
    let Some(deleted) = conn
        .prepare_cached(&sql)?
        .query_row(params![tenant.as_str(), id.0], |row| {
            group_from_row(row, tenant)
        })
        .optional()?
    else {
        return Ok(None);
    };
    let sql = format!(
        "DELETE FROM suppressions WHERE tenant = ?1 AND group_id = ?2 \
         RETURNING {SUPPRESSION_COLUMNS}"
    );
    let mut journal = Journal::new(conn, tenant, actor);
    let mut delete = conn.prepare_cached(&sql)?;
    let removed = delete_journaled(
        &mut delete,
        &mut journal,
        tenant,
        params![tenant.as_str(), id.0],
    )?;
    journal.group(Operation::GroupDeleted, deleted, None)?;
    journal.finish()?;
    Ok(Some(removed))
}

/// What a put-back stored: per item whether it went in, and the entries
/// that did, for the lookup index.
#[derive(Debug)]
pub(super) struct PutBack {
    pub(super) outcomes: Vec<bool>,
    pub(super) put: Vec<Suppression>,
}

/// Puts suppressions back exactly as they were, ids included (a restore).
/// One goes in when it is the tenant's, its id and its identity are free,
/// and its group is there; `INSERT OR IGNORE` leaves out one whose id or
/// identity is taken.
pub(super) fn put_back(
    conn: &Connection,
    tenant: &TenantId,
    items: Vec<Suppression>,
    actor: &Actor,
) -> Result<PutBack, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO suppressions \
         (id, tenant, email, group_id, family, class, status, reason, source, origin, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut journal = Journal::new(conn, tenant, actor);
    let mut outcomes = Vec::with_capacity(items.len());
    let mut put = Vec::new();
    for item in items {
        let group_there = match item.scope {
            Scope::Global => true,
            Scope::Group(id) => group_exists(conn, tenant, id)?,
        };
        if &item.tenant != tenant || !group_there {
            outcomes.push(false);
            continue;
        }
        let (class, status, reason, source) = kind_columns(&item.kind);
        let inserted = insert.execute(params![
            item.id.0,
            tenant.as_str(),
            item.email.as_str(),
            group_column(item.scope),
            item.kind.family().code(),
            class,
            status,
            reason,
            source,
            item.origin.code(),
            item.created_at.as_nanos(),
        ])? == 1;
        if inserted {
            put.push(journal.suppression(Operation::Added, item)?);
        }
        outcomes.push(inserted);
    }
    journal.finish()?;
    Ok(PutBack { outcomes, put })
}

/// Puts a deleted group back with its id (a restore); false when a group
/// has its id, or it is another tenant's.
pub(super) fn put_back_group(
    conn: &Connection,
    tenant: &TenantId,
    group: Group,
    actor: &Actor,
) -> Result<bool, StoreError> {
    // Ids are one sequence over every tenant, so an id held by another
    // tenant's group is as taken as one of this tenant's.
    let id_taken = conn
        .prepare_cached("SELECT 1 FROM suppression_groups WHERE id = ?1")?
        .query_row([group.id.0], |_| Ok(()))
        .optional()?
        .is_some();
    if &group.tenant != tenant || id_taken {
        return Ok(false);
    }
    if key_taken(conn, tenant, &group.key)? {
        return Err(StoreError::KeyTaken(group.key.as_str().to_owned()));
    }
    if name_taken(conn, tenant, &group.name, None)? {
        return Err(StoreError::NameTaken(group.name));
    }
    conn.prepare_cached(
        "INSERT INTO suppression_groups \
         (id, tenant, key, name, description, is_default, stream_type, unsubscribe_handling, \
          archived_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        group.id.0,
        tenant.as_str(),
        group.key.as_str(),
        group.name,
        group.description,
        group.is_default,
        group.stream_type.as_str(),
        group.unsubscribe_handling.as_str(),
        group.archived_at.map(Timestamp::as_nanos),
        group.created_at.as_nanos(),
        group.updated_at.map(Timestamp::as_nanos),
    ])
    .map_err(|e| group_conflict(e, &group.key, &group.name))?;
    let mut journal = Journal::new(conn, tenant, actor);
    if group.is_default {
        clear_default(conn, &mut journal, tenant, group.id)?;
    }
    journal.group(Operation::GroupCreated, group, None)?;
    journal.finish()?;
    Ok(true)
}

// ---------------------------------------------------------------------------
// The journal

/// Most entries one INSERT of a command's journal writes. One statement
/// per entry cost the import as much again as the entry's own B-tree work;
/// a multi-row INSERT pays that once per [`JOURNAL_CHUNK`] entries.
const JOURNAL_CHUNK: usize = 64;

/// Most entries one packed row holds (`schema`, migration 8). A read that
/// starts inside a pack looks this far back for its first row.
pub(super) const MAX_PACK: i64 = 4096;

/// The `sqlite_sequence` row that keeps the last journal position given
/// once pruning may have deleted the row that held it (`schema`, migration
/// 9): [`prune_journal`] writes it before it deletes.
const POSITION_COUNTER: &str = "hush_journal_position";

thread_local! {
    /// The next journal position of each database file this thread writes
    /// (a `SqliteBackend`'s writes all run on its writer thread), once
    /// read: so that a write reads and writes no counter. A command rolled
    /// back after taking positions leaves a gap, never a position given
    /// twice.
    static NEXT_POSITIONS: std::cell::RefCell<std::collections::HashMap<std::path::PathBuf, i64>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The last position given: the counter's, or the last of any tenant's
/// rows (a seek per tenant).
fn last_position(conn: &Connection) -> Result<i64, StoreError> {
    let counter: Option<i64> = conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = ?1")?
        .query_row([POSITION_COUNTER], |row| row.get(0))
        .optional()?;
    let mut last = counter.unwrap_or(0);
    let mut of_tenant = conn.prepare_cached(
        "SELECT position + entries - 1 FROM journal WHERE tenant = ?1 \
         ORDER BY position DESC LIMIT 1",
    )?;
    for tenant in journal_tenants(conn)? {
        last = last.max(of_tenant.query_row([&tenant], |row| row.get::<_, i64>(0))?);
    }
    Ok(last)
}

/// `count` journal positions in a row; the first. Nothing is written:
/// the rows hold the last position given, and [`POSITION_COUNTER`] once
/// pruning has deleted it.
pub(super) fn take_positions(conn: &Connection, count: i64) -> Result<i64, StoreError> {
    // An in-memory database (tests of single statements) has no path; its
    // positions are cached under "" like any file's.
    let path = std::path::PathBuf::from(conn.path().unwrap_or_default());
    let cached = NEXT_POSITIONS.with(|next| next.borrow().get(&path).copied());
    let first = match cached {
        Some(next) => next,
        None => last_position(conn)? + 1,
    };
    NEXT_POSITIONS.with(|next| next.borrow_mut().insert(path, first + count));
    Ok(first)
}

/// Parameters of each row of [`journal_insert`] after the shared ones.
const JOURNAL_ROW_PARAMS: usize = 5;

/// A multi-row INSERT of `rows` entries of one command: `?1` … `?6` are the
/// tenant, time and actor every row shares, then each row's position,
/// operation, address, suppression id and record.
fn journal_insert(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO journal \
         (tenant, position, at, operation, email, subject, door, key_name, request_id, \
          event_id, record) VALUES ",
    );
    for row in 0..rows {
        let first = 7 + JOURNAL_ROW_PARAMS * row;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(?1, ?{first}, ?2, ?{}, ?{}, ?{}, ?3, ?4, ?5, ?6, ?{})",
            first + 1,
            first + 2,
            first + 3,
            first + 4
        ));
    }
    sql
}

/// An entry waiting for its command's next INSERT.
struct PendingEntry {
    position: i64,
    operation: Operation,
    email: Option<String>,
    subject: Option<i64>,
    record: String,
}

/// Writes one command's journal entries on the writer's connection, inside
/// the command's own transaction (or savepoint), so that an entry commits
/// or rolls back with its change. Every entry of a command has the same
/// time and actor, as in the memory store.
///
/// The suppressions an add makes go into packed rows ([`Journal::added`]):
/// one row holds up to [`MAX_PACK`] of them by id, and their records are
/// read from `suppressions` (or from their removal) when the journal is
/// read. Every other entry is a row of its own, written [`JOURNAL_CHUNK`]
/// at a time. Positions come from [`take_positions`]: a pack takes as many as it
/// holds entries. A command must call [`Journal::finish`] before it
/// returns.
pub(super) struct Journal<'conn, 'a> {
    conn: &'conn Connection,
    tenant: &'a TenantId,
    actor: &'a Actor,
    at: i64,
    pending: Vec<PendingEntry>,
    /// Ids of suppressions just added, in order, for the next pack.
    packed: Vec<i64>,
}

impl<'conn, 'a> Journal<'conn, 'a> {
    pub(super) fn new(conn: &'conn Connection, tenant: &'a TenantId, actor: &'a Actor) -> Self {
        Self {
            conn,
            tenant,
            actor,
            at: Engine::now().as_nanos(),
            pending: Vec::new(),
            packed: Vec::new(),
        }
    }

    fn write(&mut self, operation: Operation, record: &Recorded) -> Result<(), StoreError> {
        self.write_pack()?;
        batch_pack::write_before_other_rows(self.conn)?;
        let position = take_positions(self.conn, 1)?;
        self.pending.push(PendingEntry {
            position,
            operation,
            email: record.email().map(|e| e.as_str().to_owned()),
            subject: record.suppression_id().map(|id| id.0),
            record: record.to_stored(),
        });
        if self.pending.len() == JOURNAL_CHUNK {
            self.insert(JOURNAL_CHUNK)?;
        }
        Ok(())
    }

    /// Writes the first `rows` pending entries in one INSERT.
    fn insert(&mut self, rows: usize) -> Result<(), StoreError> {
        let sql = journal_insert(rows);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        stmt.raw_bind_parameter(1, self.tenant.as_str())?;
        stmt.raw_bind_parameter(2, self.at)?;
        stmt.raw_bind_parameter(3, self.actor.door.as_str())?;
        stmt.raw_bind_parameter(4, self.actor.key.as_deref())?;
        stmt.raw_bind_parameter(5, self.actor.request_id.as_deref())?;
        stmt.raw_bind_parameter(6, self.actor.event_id.as_deref())?;
        for (row, entry) in self.pending.drain(..rows).enumerate() {
            let first = 7 + JOURNAL_ROW_PARAMS * row;
            stmt.raw_bind_parameter(first, entry.position)?;
            stmt.raw_bind_parameter(first + 1, entry.operation.as_str())?;
            stmt.raw_bind_parameter(first + 2, entry.email)?;
            stmt.raw_bind_parameter(first + 3, entry.subject)?;
            stmt.raw_bind_parameter(first + 4, entry.record)?;
        }
        stmt.raw_execute()?;
        Ok(())
    }

    /// Writes what is pending: in INSERTs of 32, 16, … 1 rows, so that
    /// few statement texts serve every remainder.
    fn write_pending(&mut self) -> Result<(), StoreError> {
        let mut rows = JOURNAL_CHUNK;
        while !self.pending.is_empty() {
            rows /= 2;
            if self.pending.len() >= rows {
                self.insert(rows)?;
            }
        }
        Ok(())
    }

    /// Journals a suppression an add just made, into the current pack, and
    /// hands it back.
    fn added(&mut self, suppression: Suppression) -> Result<Suppression, StoreError> {
        self.write_pending()?;
        self.packed.push(suppression.id.0);
        if self.packed.len() as i64 == MAX_PACK {
            self.write_pack()?;
        }
        Ok(suppression)
    }

    /// Writes the current pack: one row, its ids as runs (`Runs`); in a
    /// batch of the writer, the batch's row (`batch_pack`).
    fn write_pack(&mut self) -> Result<(), StoreError> {
        let Some(&first) = self.packed.first() else {
            return Ok(());
        };
        if batch_pack::keep(self.conn, self.tenant, self.actor, self.at, &self.packed)? {
            self.packed.clear();
            return Ok(());
        }
        let runs = Runs::of(&self.packed).to_string();
        let entries = self.packed.len() as i64;
        self.packed.clear();
        let position = take_positions(self.conn, entries)?;
        self.conn
            .prepare_cached(
                "INSERT INTO journal \
                 (tenant, position, at, operation, email, subject, door, key_name, request_id, \
                  event_id, record, entries, ids) \
                 VALUES (?1, ?2, ?3, 'added', NULL, ?4, ?5, ?6, ?7, ?8, '', ?9, ?10)",
            )?
            .execute(params![
                self.tenant.as_str(),
                position,
                self.at,
                first,
                self.actor.door.as_str(),
                self.actor.key.as_deref(),
                self.actor.request_id.as_deref(),
                self.actor.event_id.as_deref(),
                entries,
                runs,
            ])?;
        Ok(())
    }

    /// Writes what is pending.
    pub(super) fn finish(mut self) -> Result<(), StoreError> {
        self.write_pending()?;
        self.write_pack()
    }

    /// Journals a change to a suppression and hands the suppression back,
    /// so that callers need not copy it.
    fn suppression(
        &mut self,
        operation: Operation,
        suppression: Suppression,
    ) -> Result<Suppression, StoreError> {
        let record = Recorded::Suppression(suppression);
        self.write(operation, &record)?;
        match record {
            Recorded::Suppression(suppression) => Ok(suppression),
            Recorded::Group { .. } => unreachable!("recorded as a suppression above"),
        }
    }

    fn group(
        &mut self,
        operation: Operation,
        group: Group,
        before: Option<Group>,
    ) -> Result<(), StoreError> {
        self.write(operation, &Recorded::Group { group, before })
    }
}

/// The ids of a pack, as runs of consecutive ids: `first:len,first:len`.
/// An add's new ids come from one counter in one transaction, so a pack is
/// almost always one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Runs(Vec<(i64, i64)>);

impl Runs {
    pub(super) fn of(ids: &[i64]) -> Self {
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for &id in ids {
            match runs.last_mut() {
                Some((first, len)) if *first + *len == id => *len += 1,
                _ => runs.push((id, 1)),
            }
        }
        Self(runs)
    }

    fn parse(text: &str) -> Option<Self> {
        text.split(',')
            .map(|run| {
                let (first, len) = run.split_once(':')?;
                Some((first.parse().ok()?, len.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    /// The ids, in order.
    fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().flat_map(|&(first, len)| first..first + len)
    }

    /// Where `id` is in the pack.
    fn index_of(&self, id: i64) -> Option<i64> {
        let mut before = 0;
        for &(first, len) in &self.0 {
            if (first..first + len).contains(&id) {
                return Some(before + id - first);
            }
            before += len;
        }
        None
    }
}

impl std::fmt::Display for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, (first, len)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{first}:{len}")?;
        }
        Ok(())
    }
}

const JOURNAL_COLUMNS: &str = "position, tenant, at, operation, door, key_name, request_id, \
     event_id, record, entries, ids";

/// A journal row as stored: one entry, or a pack of `added` entries whose
/// records are read from `suppressions` (or their removal) when expanded.
struct JournalRow {
    position: i64,
    tenant: TenantId,
    at: Timestamp,
    operation: Operation,
    actor: Actor,
    /// One entry's record; `None` for a pack.
    record: Option<Recorded>,
    /// A pack's ids.
    ids: Option<Runs>,
    /// A pack's request ids, entry by entry, when they differ
    /// (`batch_pack`); otherwise `actor` has every entry's.
    requests: Option<batch_pack::RequestRuns>,
}

fn journal_row(row: &Row<'_>) -> rusqlite::Result<JournalRow> {
    let tenant: String = row.get(1)?;
    let tenant = TenantId::parse(&tenant).map_err(|e| bad_column(1, Type::Text, e))?;
    let operation: String = row.get(3)?;
    let operation = Operation::parse(&operation)
        .ok_or_else(|| bad_column(3, Type::Text, format!("unknown operation {operation:?}")))?;
    let door: String = row.get(4)?;
    let ids: Option<String> = row.get(10)?;
    let record: String = row.get(8)?;
    let (record, ids, requests) = match ids {
        Some(ids) => {
            let runs = Runs::parse(&ids)
                .ok_or_else(|| bad_column(10, Type::Text, format!("bad pack {ids:?}")))?;
            let requests = batch_pack::parse_request_runs(&record)
                .map_err(|e| bad_column(8, Type::Text, e))?;
            (None, Some(runs), requests)
        }
        None => {
            let record = Recorded::from_stored(&tenant, &record)
                .map_err(|e| bad_column(8, Type::Text, e))?;
            (Some(record), None, None)
        }
    };
    Ok(JournalRow {
        position: row.get(0)?,
        tenant,
        at: Timestamp::from_nanos(row.get(2)?),
        operation,
        actor: Actor {
            door: Door::from_stored(&door),
            key: row.get(5)?,
            request_id: row.get(6)?,
            event_id: row.get(7)?,
        },
        record,
        ids,
        requests,
    })
}

impl JournalRow {
    fn entry(&self, position: i64, record: Recorded) -> JournalEntry {
        let mut actor = self.actor.clone();
        if let Some(requests) = &self.requests {
            let mut before = self.position;
            actor.request_id = requests
                .iter()
                .find_map(|(request_id, entries)| {
                    before += to_i64(*entries);
                    (position < before).then(|| request_id.clone())
                })
                .flatten();
        }
        JournalEntry {
            position: Position(position),
            tenant: self.tenant.clone(),
            at: self.at,
            operation: self.operation,
            actor,
            record,
        }
    }

    /// Up to `max` of the row's entries whose positions `keep` admits, in
    /// `order`; only those have their records read.
    fn expand(
        self,
        conn: &Connection,
        order: JournalOrder,
        max: usize,
        keep: impl Fn(i64) -> bool,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let Some(ids) = &self.ids else {
            let Some(record) = self.record.clone() else {
                return Ok(Vec::new());
            };
            return Ok(if keep(self.position) && max > 0 {
                vec![self.entry(self.position, record)]
            } else {
                Vec::new()
            });
        };
        let members: Vec<(i64, i64)> = (self.position..).zip(ids.ids()).collect();
        let chosen: Vec<(i64, i64)> = match order {
            JournalOrder::OldestFirst => members
                .into_iter()
                .filter(|(position, _)| keep(*position))
                .take(max)
                .collect(),
            JournalOrder::NewestFirst => members
                .into_iter()
                .rev()
                .filter(|(position, _)| keep(*position))
                .take(max)
                .collect(),
        };
        let mut entries = Vec::with_capacity(chosen.len());
        for (position, id) in chosen {
            let record = packed_record(conn, &self.tenant, id, self.position)?;
            entries.push(self.entry(position, record));
        }
        Ok(entries)
    }
}

/// The record of a packed `added` entry: the suppression as it is now, or,
/// once removed, as its removal recorded it. A suppression is never
/// changed in place, and an id is never handed out twice, so both are the
/// suppression as added.
/// The removal that recorded a packed suppression whole.
const REMOVAL_OF: &str = "SELECT record FROM journal INDEXED BY journal_removed_by_subject \
     WHERE email IS NOT NULL AND subject = ?1 AND operation = 'removed' \
     AND tenant = ?2 AND position > ?3 ORDER BY position LIMIT 1";

fn packed_record(
    conn: &Connection,
    tenant: &TenantId,
    id: i64,
    added_at: i64,
) -> Result<Recorded, StoreError> {
    let sql =
        format!("SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE id = ?1 AND tenant = ?2");
    let held = conn
        .prepare_cached(&sql)?
        .query_row(params![id, tenant.as_str()], |row| {
            suppression_from_row(row, tenant)
        })
        .optional()?;
    if let Some(suppression) = held {
        return Ok(Recorded::Suppression(suppression));
    }
    let removal: Option<String> = conn
        .prepare_cached(REMOVAL_OF)?
        .query_row(params![id, tenant.as_str(), added_at], |row| row.get(0))
        .optional()?;
    let removal = removal.ok_or_else(|| {
        bad_column(
            10,
            Type::Text,
            format!("suppression {id} of a pack is neither held nor recorded as removed"),
        )
    })?;
    Recorded::from_stored(tenant, &removal)
        .map_err(|e| StoreError::from(bad_column(8, Type::Text, e)))
}

/// A page of one tenant's journal. A tenant's history walks
/// `journal_by_tenant` in position order, so that a page costs the rows it
/// walks past, never a sort of the whole history; an address's is found by
/// its ids and its removals (see `schema`), a handful of rows, then
/// sorted.
pub(super) fn journal(
    conn: &Connection,
    tenant: &TenantId,
    query: &JournalQuery,
) -> Result<Vec<JournalEntry>, StoreError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    if let Some(email) = &query.email {
        return address_journal(conn, tenant, email, query);
    }
    let (sql, params) = journal_select(tenant, query);
    let rows: Vec<JournalRow> = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(params), journal_row)?
        .collect::<Result<_, _>>()?;
    let limit = query.limit as usize;
    let mut entries = Vec::new();
    for row in rows {
        let room = limit - entries.len();
        entries.extend(row.expand(conn, query.order, room, |p| {
            query.cursor.is_none_or(|c| past(query.order, p, c.0))
        })?);
        if entries.len() == limit {
            break;
        }
    }
    Ok(entries)
}

/// Whether an entry at `position` is past `cursor` in `order`.
fn past(order: JournalOrder, position: i64, cursor: i64) -> bool {
    match order {
        JournalOrder::NewestFirst => position < cursor,
        JournalOrder::OldestFirst => position > cursor,
    }
}

/// The row-level conditions of a journal read: time, door, and the rows
/// that hold an entry past the cursor.
fn journal_filters(query: &JournalQuery) -> Vec<(&'static str, Vec<Value>)> {
    let mut filters: Vec<(&str, Vec<Value>)> = Vec::new();
    if let Some(since) = query.since {
        filters.push(("at >= ?", vec![Value::Integer(since.as_nanos())]));
    }
    if let Some(until) = query.until {
        filters.push(("at <= ?", vec![Value::Integer(until.as_nanos())]));
    }
    if let Some(door) = &query.door {
        filters.push(("door = ?", vec![Value::Text(door.clone())]));
    }
    if let Some(cursor) = query.cursor {
        let cursor = cursor.0;
        match query.order {
            JournalOrder::NewestFirst => {
                filters.push(("position < ?", vec![Value::Integer(cursor)]));
            }
            // A pack that starts before the cursor may end after it: the
            // index range reaches back by the largest pack, and the rows
            // that end before the cursor are filtered out.
            JournalOrder::OldestFirst => filters.push((
                "position > ? AND position + entries > ?",
                vec![
                    Value::Integer(cursor.saturating_sub(MAX_PACK)),
                    Value::Integer(cursor.saturating_add(1)),
                ],
            )),
        }
    }
    filters
}

/// The statement of a tenant's journal read, and its parameters. Its
/// `LIMIT` counts rows, each holding at least one entry.
fn journal_select(tenant: &TenantId, query: &JournalQuery) -> (String, Vec<Value>) {
    let direction = match query.order {
        JournalOrder::NewestFirst => "DESC",
        JournalOrder::OldestFirst => "ASC",
    };
    let mut clause = Clause::new(tenant);
    for (sql, values) in journal_filters(query) {
        clause.and(sql, values);
    }
    clause.params.push(Value::Integer(i64::from(query.limit)));
    let sql = format!(
        "SELECT {JOURNAL_COLUMNS} FROM journal WHERE {} \
         ORDER BY position {direction} LIMIT ?",
        clause.sql
    );
    (sql, clause.params)
}

/// One address's history: the rows that carry its address (removals,
/// put-backs, entries `hush copy` brought), and the `added` entries of the
/// ids it has had, found in the rows that journal live adds by id (packs,
/// and migration 6's rows of one entry), whose id ranges never overlap.
fn address_journal(
    conn: &Connection,
    tenant: &TenantId,
    email: &Email,
    query: &JournalQuery,
) -> Result<Vec<JournalEntry>, StoreError> {
    let mut clause = Clause::new(tenant);
    clause.and(
        "email IS NOT NULL AND email = ?",
        [Value::Text(email.as_str().to_owned())],
    );
    let sql = format!(
        "SELECT {JOURNAL_COLUMNS} FROM journal INDEXED BY journal_by_email WHERE {}",
        clause.sql
    );
    let own: Vec<JournalRow> = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(clause.params), journal_row)?
        .collect::<Result<_, _>>()?;
    let mut ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM suppressions INDEXED BY suppressions_identity \
             WHERE tenant = ?1 AND email = ?2",
        )?
        .query_map(params![tenant.as_str(), email.as_str()], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut entries = Vec::new();
    for row in own {
        if let Some(Recorded::Suppression(s)) = &row.record {
            ids.push(s.id.0);
        }
        entries.extend(row.expand(conn, JournalOrder::OldestFirst, usize::MAX, |_| true)?);
    }
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        if let Some(entry) = live_add(conn, tenant, id)?
            && entry.record.email() == Some(email)
        {
            entries.push(entry);
        }
    }
    let admits = |e: &JournalEntry| {
        query.since.is_none_or(|since| e.at >= since)
            && query.until.is_none_or(|until| e.at <= until)
            && query
                .door
                .as_deref()
                .is_none_or(|door| e.actor.door.as_str() == door)
            && query
                .cursor
                .is_none_or(|c| past(query.order, e.position.0, c.0))
    };
    entries.retain(admits);
    entries.sort_by_key(|e| e.position);
    if query.order == JournalOrder::NewestFirst {
        entries.reverse();
    }
    entries.truncate(query.limit as usize);
    Ok(entries)
}

/// The first live add row of a tenant at or after a position: its
/// position and first id.
const LIVE_ADD_FROM: &str = "SELECT position, subject FROM journal \
     WHERE tenant = ?1 AND position >= ?2 AND email IS NULL AND subject IS NOT NULL \
     ORDER BY position LIMIT 1";

/// The `added` entry of a live add of suppression `id`, if the journal
/// holds one. A tenant's live add rows (packs, and migration 6's rows of
/// one entry) take their ids and positions from one writer in the same
/// order, so their first ids increase with their positions: the row that
/// holds `id` is the last one whose first id is at or below it, found by
/// bisecting the tenant's positions, one seek of the primary key a step.
fn live_add(
    conn: &Connection,
    tenant: &TenantId,
    id: i64,
) -> Result<Option<JournalEntry>, StoreError> {
    let mut first_from = conn.prepare_cached(LIVE_ADD_FROM)?;
    let mut first = |from: i64| -> Result<Option<(i64, i64)>, StoreError> {
        Ok(first_from
            .query_row(params![tenant.as_str(), from], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?)
    };
    let Some((mut low, subject)) = first(i64::MIN)? else {
        return Ok(None);
    };
    if subject > id {
        return Ok(None);
    }
    // `low` is a live row at or below `id`; no live row from `high` on is.
    let mut high = conn
        .prepare_cached("SELECT max(position) FROM journal WHERE tenant = ?1")?
        .query_row([tenant.as_str()], |row| row.get::<_, i64>(0))?
        .saturating_add(1);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        match first(middle)? {
            Some((position, subject)) if subject <= id => low = position,
            _ => high = middle,
        }
    }
    let sql = format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE tenant = ?1 AND position = ?2");
    let Some(row) = conn
        .prepare_cached(&sql)?
        .query_row(params![tenant.as_str(), low], journal_row)
        .optional()?
    else {
        return Ok(None);
    };
    let position = match &row.ids {
        Some(runs) => match runs.index_of(id) {
            Some(index) => row.position + index,
            None => return Ok(None),
        },
        None => match &row.record {
            Some(Recorded::Suppression(s)) if s.id.0 == id => row.position,
            _ => return Ok(None),
        },
    };
    Ok(row
        .expand(conn, JournalOrder::OldestFirst, 1, |p| p == position)?
        .pop())
}

/// Every tenant that has journal rows, in order: one seek of the primary
/// key each.
fn journal_tenants(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut next = conn
        .prepare_cached("SELECT tenant FROM journal WHERE tenant > ?1 ORDER BY tenant LIMIT 1")?;
    let mut tenants = Vec::new();
    let mut after = String::new();
    while let Some(tenant) = next
        .query_row([&after], |row| row.get::<_, String>(0))
        .optional()?
    {
        after.clone_from(&tenant);
        tenants.push(tenant);
    }
    Ok(tenants)
}

/// Up to `limit` entries of every tenant after `after`, oldest first: each
/// tenant's next ones, merged by position.
pub(super) fn journal_all(
    conn: &Connection,
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<JournalEntry>, StoreError> {
    let mut entries = Vec::new();
    for tenant in journal_tenants(conn)? {
        let tenant = TenantId::parse(&tenant).map_err(|e| bad_column(0, Type::Text, e))?;
        let query = JournalQuery {
            order: JournalOrder::OldestFirst,
            cursor: after,
            ..JournalQuery::newest_first(limit)
        };
        entries.extend(journal(conn, &tenant, &query)?);
    }
    entries.sort_by_key(|e| e.position);
    entries.truncate(limit as usize);
    Ok(entries)
}

/// Appends entries written elsewhere (`hush copy`), in order, each with a
/// new position and otherwise as given.
pub(super) fn append_journal(
    conn: &Connection,
    entries: &[JournalEntry],
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO journal \
         (tenant, position, at, operation, email, subject, door, key_name, request_id, \
          event_id, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    batch_pack::write_before_other_rows(conn)?;
    for entry in entries {
        insert.execute(params![
            entry.tenant.as_str(),
            take_positions(conn, 1)?,
            entry.at.as_nanos(),
            entry.operation.as_str(),
            entry.record.email().map(Email::as_str),
            entry.record.suppression_id().map(|id| id.0),
            entry.actor.door.as_str(),
            entry.actor.key,
            entry.actor.request_id,
            entry.actor.event_id,
            entry.record.to_stored(),
        ])?;
    }
    Ok(())
}

/// Deletes up to `limit` rows of the oldest entries, tenant by tenant,
/// each tenant's stopping at its first entry written at or after `before`;
/// returns how many entries went (a pack holds many). A step reads at most
/// `limit` rows of each tenant's start, however much is old or young.
pub(super) fn prune_journal(
    conn: &Connection,
    before: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    // The rows about to go may hold the last position given.
    let last = last_position(conn)?;
    let changed = conn
        .prepare_cached("UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1")?
        .execute(params![POSITION_COUNTER, last])?;
    if changed == 0 {
        conn.prepare_cached("INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)")?
            .execute(params![POSITION_COUNTER, last])?;
    }
    let mut rows_left = i64::from(limit);
    let mut pruned = 0;
    for tenant in journal_tenants(conn)? {
        if rows_left == 0 {
            break;
        }
        let oldest: Vec<(i64, i64, i64)> = conn
            .prepare_cached(
                "SELECT position, at, entries FROM journal WHERE tenant = ?1 \
                 ORDER BY position LIMIT ?2",
            )?
            .query_map(params![tenant, rows_left], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let old: Vec<&(i64, i64, i64)> = oldest
            .iter()
            .take_while(|(_, at, _)| *at < before.as_nanos())
            .collect();
        let Some((last, _, _)) = old.last() else {
            continue;
        };
        conn.prepare_cached("DELETE FROM journal WHERE tenant = ?1 AND position <= ?2")?
            .execute(params![tenant, last])?;
        rows_left -= old.len() as i64;
        pruned += old
            .iter()
            .map(|(_, _, entries)| to_u64(*entries))
            .sum::<u64>();
    }
    Ok(pruned)
}

/// Fills the lookup index from the file: every entry, in id order (the
/// table's own order, read sequentially), applied a batch at a time.
pub(super) fn fill_index(
    conn: &Connection,
    index: &crate::lookup_index::LookupIndex,
) -> Result<(), StoreError> {
    const BATCH: usize = 10_000;
    let mut stmt = conn.prepare(&format!(
        "SELECT tenant, {SUPPRESSION_COLUMNS} FROM suppressions ORDER BY id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut batch: Vec<Suppression> = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<Suppression>| {
        batch.sort_by(|a, b| a.tenant.as_str().cmp(b.tenant.as_str()));
        for tenant_rows in batch.chunk_by(|a, b| a.tenant == b.tenant) {
            let changes: Vec<crate::lookup_index::Change<'_>> = tenant_rows
                .iter()
                .map(crate::lookup_index::Change::Added)
                .collect();
            index.apply(&tenant_rows[0].tenant, &changes);
        }
        batch.clear();
    };
    while let Some(row) = rows.next()? {
        let tenant: String = row.get(0)?;
        let tenant = TenantId::parse(&tenant).map_err(|e| bad_column(0, Type::Text, e))?;
        match suppression_at(row, &tenant, 1) {
            Ok(entry) => batch.push(entry),
            // A row the index cannot hold keeps the gateway from nothing:
            // its tenant is served from SQLite, which reports the row when
            // a read reaches it.
            Err(err) => {
                tracing::warn!(%tenant, error = %err, "a row does not decode; this tenant's lookups read SQLite");
                index.drop_tenant(&tenant);
            }
        }
        if batch.len() == BATCH {
            flush(&mut batch);
        }
    }
    flush(&mut batch);
    index.compact_all();
    Ok(())
}

/// The filter of every address the file holds (addresses.rs), read from the
/// identity index, which covers `(tenant, email)` in order.
pub(super) fn address_filter(
    conn: &Connection,
) -> Result<super::addresses::AddressFilter, StoreError> {
    let rows: i64 = conn.query_row("SELECT count(*) FROM suppressions", [], |row| row.get(0))?;
    // Room for twice what is there before the filter grows a layer.
    let filter = super::addresses::AddressFilter::with_capacity(
        usize::try_from(rows).unwrap_or(0).saturating_mul(2),
    );
    let mut stmt = conn.prepare(
        "SELECT tenant, email FROM suppressions INDEXED BY suppressions_identity \
         ORDER BY tenant, email",
    )?;
    let mut rows = stmt.query([])?;
    // Read in place, not copied out row by row: this runs at every start
    // over every entry. An address with several entries is one address.
    let mut last = (String::new(), String::new());
    while let Some(row) = rows.next()? {
        let text = |at: usize| {
            row.get_ref(at)?
                .as_str()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at, Type::Text, Box::new(e)))
        };
        let (tenant, email) = (text(0)?, text(1)?);
        if (tenant, email) != (last.0.as_str(), last.1.as_str()) {
            filter.insert_raw(tenant, email);
            last.0.replace_range(.., tenant);
            last.1.replace_range(.., email);
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn plan(conn: &Connection, sql: &str, params: usize) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params_from_iter(vec![Value::Integer(1); params]), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    }

    #[test]
    fn lookups_by_address_use_the_identity_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let detail = plan(&conn, entries_sql(), 2);
        assert!(
            detail.contains("suppressions_identity (tenant=? AND email=?)"),
            "{detail}"
        );
        let tenant = TenantId::parse("t").unwrap();
        let mut filter = ListFilter::new(KindSet::ALL, ScopeFilter::Global);
        filter.email = Some(EmailMatch::prefix("sales").expect("a usable filter"));
        let clause = Clause::filter(&tenant, &filter);
        let sql = format!("SELECT id FROM suppressions WHERE {}", clause.sql);
        let detail = plan(&conn, &sql, clause.params.len());
        assert!(detail.contains("suppressions_identity"), "{detail}");
    }

    #[test]
    fn journal_reads_walk_an_index_in_position_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let tenant = TenantId::parse("t").unwrap();
        let every_filter = JournalQuery {
            email: None,
            since: Some(Timestamp::from_nanos(1)),
            until: Some(Timestamp::from_nanos(2)),
            door: Some("v3".into()),
            cursor: Some(Position(9)),
            order: JournalOrder::NewestFirst,
            limit: 10,
        };
        let of_address = JournalQuery {
            email: Some(Email::parse("a@x.com").unwrap()),
            order: JournalOrder::OldestFirst,
            ..every_filter.clone()
        };
        for (query, index) in [
            (JournalQuery::newest_first(10), "PRIMARY KEY (tenant=?)"),
            (every_filter, "PRIMARY KEY (tenant=? AND position<?)"),
        ] {
            let (sql, params) = journal_select(&tenant, &query);
            let detail = plan(&conn, &sql, params.len());
            assert!(detail.contains(index), "{detail}");
            assert!(!detail.contains("TEMP B-TREE"), "no sort: {detail}");
        }
        // Reading on from inside a pack reaches back by one pack at most.
        let (sql, params) = journal_select(&tenant, &of_address);
        let detail = plan(&conn, &sql, params.len());
        assert!(
            detail.contains("PRIMARY KEY (tenant=? AND position>?)"),
            "{detail}"
        );
        // An address's few rows, and a pack's records, are each looked up,
        // never found by a scan.
        for (sql, params, index) in [
            (
                format!(
                    "SELECT {JOURNAL_COLUMNS} FROM journal INDEXED BY journal_by_email \
                     WHERE tenant = ? AND email IS NOT NULL AND email = ?"
                ),
                2,
                "journal_by_email (tenant=? AND email=?)",
            ),
            (
                LIVE_ADD_FROM.to_owned(),
                2,
                "PRIMARY KEY (tenant=? AND position>?)",
            ),
            (
                REMOVAL_OF.to_owned(),
                3,
                "journal_removed_by_subject (subject=?",
            ),
        ] {
            let detail = plan(&conn, &sql, params);
            assert!(detail.contains(index), "{index}: {detail}");
            assert!(!detail.contains("SCAN"), "{detail}");
        }
        let detail = plan(
            &conn,
            "SELECT position, at, entries FROM journal WHERE tenant = ?1 \
             ORDER BY position LIMIT ?2",
            2,
        );
        assert!(!detail.contains("TEMP B-TREE"), "no sort: {detail}");
        assert!(detail.contains("PRIMARY KEY (tenant=?)"), "{detail}");
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }

    #[test]
    fn kind_conditions() {
        assert_eq!(kinds_sql(KindSet::ALL), None);
        assert_eq!(kinds_sql(KindSet::NONE).as_deref(), Some("0"));
        assert_eq!(
            kinds_sql(KindSet::family(KindFamily::Bounce)).as_deref(),
            Some("(family IN (0))")
        );
        let mixed = KindSet::bounce_class(BounceClass::Soft)
            .with(KindSet::bounce_class(BounceClass::Block))
            .with(KindSet::family(KindFamily::Spam));
        assert_eq!(
            kinds_sql(mixed).as_deref(),
            Some("(family IN (2) OR (family = 0 AND class IN (1, 2)))")
        );
    }
}
