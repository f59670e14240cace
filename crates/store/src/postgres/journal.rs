//! The journal's SQL (`schema`, migration 6): one row per committed change,
//! written by the change's own transaction, and the reads of it.
//!
//! # Why readers see commit order
//!
//! A position comes from the table's identity sequence when the row is
//! inserted, so before its transaction commits, and transactions commit in
//! any order. Unordered, writer A could take position 10 and writer B 11, B
//! commit first, a reader read 11 and move its cursor past it, and A's 10
//! commit afterwards below the cursor: that reader never sees it (a mirror
//! would skip a change, a restore by position would miss one).
//!
//! So every writer takes the tenant's journal lock, `pg_advisory_xact_lock
//! (JOURNAL, hashtext(tenant))`, in the statement that inserts its rows,
//! before the rows take their positions ([`LOCK_THEN_INSERT`]), and holds
//! it until its transaction ends. The next writer of the tenant takes its
//! positions only once it has the lock, that is once the previous writer
//! has committed or rolled back; and PostgreSQL makes a commit visible to
//! new snapshots before it releases the transaction's locks
//! (`CommitTransaction`: the proc array is updated, then locks are
//! released). Every snapshot that sees the later writer's rows therefore
//! sees the earlier writer's too: within a tenant, positions increase in
//! commit order, and a reader that has read a tenant's entries up to P
//! never later finds one of them below P. (Positions a rolled-back writer
//! drew are gaps, never filled.)
//!
//! The order is per tenant, which is what every reader of a tenant's
//! history reads ([`read`]). Across tenants, positions are not in commit
//! order: see [`read_all`].
//!
//! The insert is a writing transaction's last statement (the version bump
//! comes before it), so the lock is held only through that statement and
//! the commit, and its holder waits for no other lock: it adds no deadlock
//! cycle. Its cost is that one tenant's writes commit one after another
//! (other tenants' writes do not wait), which is why it is held for as
//! short a time as can be. Two tenants whose names hash alike merely share
//! a lock.

use hush_engine::Engine;
use hush_model::{
    Actor, Change, Door, JournalEntry, JournalOrder, JournalQuery, Operation, Position, Recorded,
    TenantId, Timestamp,
};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row as _};

use super::StoreError;
use super::sql::{Clause, Param};

/// Advisory-lock class of a tenant's journal writes ("jnl"), beside the
/// classes of `sql` ("add", "grp").
const JOURNAL_LOCK_SPACE: i32 = 0x006a_6e6c;

/// Rows one insert writes at most: a bulk delete journals one per removed
/// entry, and one statement of a million would be one message of hundreds
/// of MB.
const INSERT_CHUNK: usize = 5_000;

const COLUMNS: &str = "position, tenant, at, op, door, key_name, request_id, event_id, record";

/// Takes the journal lock of every tenant in `$11` (see the module's
/// documentation), then inserts the rows of `$1`…`$9` in array order.
///
/// The locks come first because every row's position (the identity's
/// `nextval`) is drawn as the row reaches the insert, and no row of the
/// join with `locked` exists before `locked`'s one row does, which is only
/// once every lock is held (whichever way the planner joins). One
/// statement rather than a `SELECT` of the lock and then the insert: one
/// round trip less while the tenant's writers queue. Several tenants are
/// locked in the order of their hashes, so that two transactions locking
/// several (`append`) take them in the same order.
const LOCK_THEN_INSERT: &str = "\
WITH locked AS MATERIALIZED ( \
    SELECT count(pg_advisory_xact_lock($10, h)) AS held \
    FROM (SELECT DISTINCT hashtext(t) AS h FROM unnest($11::text[]) AS t ORDER BY h) AS hashes \
) \
INSERT INTO hush_journal \
    (tenant, at, op, door, key_name, request_id, event_id, email, subject, record) \
SELECT u.tenant, u.at, u.op, u.door, u.key_name, u.request_id, u.event_id, u.email, \
       u.subject, u.record \
FROM locked, \
     UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
            $7::text[], $8::text[], $12::int8[], $9::text[]) WITH ORDINALITY \
     AS u(tenant, at, op, door, key_name, request_id, event_id, email, subject, record, n) \
ORDER BY u.n";

/// Rows for the journal, column by column, in the order they get their
/// positions.
#[derive(Default)]
struct Rows {
    tenant: Vec<String>,
    at: Vec<i64>,
    op: Vec<&'static str>,
    door: Vec<String>,
    key_name: Vec<Option<String>>,
    request_id: Vec<Option<String>>,
    event_id: Vec<Option<String>>,
    email: Vec<Option<String>>,
    subject: Vec<Option<i64>>,
    record: Vec<String>,
}

/// How a row is found in an address's history (schema, migration 7).
#[derive(Clone, Copy)]
enum Found {
    /// A change made here: a live add by its suppression's id, which only
    /// increases, anything else by its address.
    Live,
    /// An entry `hush copy` brought, whose id need not be one of this
    /// store's: by its address.
    ByAddress,
}

impl Rows {
    fn push(
        &mut self,
        tenant: &TenantId,
        at: Timestamp,
        operation: Operation,
        actor: &Actor,
        record: &Recorded,
        found: Found,
    ) {
        self.tenant.push(tenant.as_str().to_owned());
        self.at.push(at.as_nanos());
        self.op.push(operation.as_str());
        self.door.push(actor.door.as_str().to_owned());
        self.key_name.push(actor.key.clone());
        self.request_id.push(actor.request_id.clone());
        self.event_id.push(actor.event_id.clone());
        let by_id = matches!((found, operation), (Found::Live, Operation::Added));
        self.email.push(if by_id {
            None
        } else {
            record.email().map(|e| e.as_str().to_owned())
        });
        self.subject.push(record.suppression_id().map(|id| id.0));
        self.record.push(record.to_stored());
    }

    /// One statement ([`LOCK_THEN_INSERT`]) that first locks the journal
    /// of every tenant in `lock` (again for a later chunk of the same
    /// transaction, which costs nothing).
    async fn insert(self, conn: &mut PgConnection, lock: &[&str]) -> Result<(), StoreError> {
        sqlx::query(LOCK_THEN_INSERT)
            .bind(self.tenant)
            .bind(self.at)
            .bind(self.op)
            .bind(self.door)
            .bind(self.key_name)
            .bind(self.request_id)
            .bind(self.event_id)
            .bind(self.email)
            .bind(self.record)
            .bind(JOURNAL_LOCK_SPACE)
            .bind(lock)
            .bind(self.subject)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Journals a transaction's changes of one tenant, in order, as `actor`'s:
/// the last thing a writing transaction does before it commits (see the
/// module's documentation for why last). The time is read just before, so
/// it may be a lock wait earlier than the tenant's entry before it.
pub(super) async fn write(
    conn: &mut PgConnection,
    tenant: &TenantId,
    changes: Vec<Change>,
    actor: &Actor,
) -> Result<(), StoreError> {
    let at = Engine::now();
    for chunk in changes.chunks(INSERT_CHUNK) {
        let mut rows = Rows::default();
        for change in chunk {
            rows.push(
                tenant,
                at,
                change.operation,
                actor,
                &change.record,
                Found::Live,
            );
        }
        rows.insert(conn, &[tenant.as_str()]).await?;
    }
    Ok(())
}

/// Appends entries written elsewhere (`hush copy`), in the order given,
/// each with a new position and otherwise as it was.
pub(super) async fn append(
    conn: &mut PgConnection,
    entries: &[JournalEntry],
) -> Result<(), StoreError> {
    let mut tenants: Vec<&str> = entries.iter().map(|e| e.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    for chunk in entries.chunks(INSERT_CHUNK) {
        let mut rows = Rows::default();
        for e in chunk {
            rows.push(
                &e.tenant,
                e.at,
                e.operation,
                &e.actor,
                &e.record,
                Found::ByAddress,
            );
        }
        // Every tenant at the first chunk: a lock taken for a later chunk
        // would come after positions the earlier ones drew.
        rows.insert(conn, &tenants).await?;
    }
    Ok(())
}

fn entry_from_row(row: &PgRow) -> Result<JournalEntry, StoreError> {
    let tenant: String = row.try_get("tenant")?;
    let tenant = TenantId::parse(&tenant)
        .map_err(|e| StoreError::Corrupt(format!("journal tenant {tenant:?}: {e}")))?;
    let op: String = row.try_get("op")?;
    let operation = Operation::parse(&op)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown journal operation {op:?}")))?;
    let record: String = row.try_get("record")?;
    let record =
        Recorded::from_stored(&tenant, &record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let door: String = row.try_get("door")?;
    Ok(JournalEntry {
        position: Position(row.try_get("position")?),
        tenant,
        at: Timestamp::from_nanos(row.try_get("at")?),
        operation,
        actor: Actor {
            door: Door::from_stored(&door),
            key: row.try_get("key_name")?,
            request_id: row.try_get("request_id")?,
            event_id: row.try_get("event_id")?,
        },
        record,
    })
}

/// A page of one tenant's journal: every filter is a condition of the
/// query, walked along `hush_journal_by_tenant` from the cursor; one
/// address's few rows are found along `hush_journal_by_email` and
/// `hush_journal_by_subject`.
///
/// Without an address, the tenant is a range of one value and the order is
/// `(tenant, position)`, which only `hush_journal_by_tenant` yields. With
/// `tenant = $1` PostgreSQL orders by `position` alone, which the primary
/// key yields too, and a generic plan (a prepared statement run a few
/// times) guesses that every tenant is an even share of the journal and
/// walks the primary key backwards, filtering: every newer entry of every
/// other tenant is read, all of the journal for a tenant that has been
/// quiet (measured: 55 ms for a tenant's newest 50 of 500,000 entries,
/// against 0.07 ms along its own index, which a range on its leading
/// column still lets the cursor position).
pub(super) async fn read(
    conn: &mut PgConnection,
    tenant: &TenantId,
    query: &JournalQuery,
) -> Result<Vec<JournalEntry>, StoreError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let (sql, clause) = read_statement(tenant, query);
    let rows = clause.query(sql).fetch_all(conn).await?;
    rows.iter().map(entry_from_row).collect()
}

/// The statement of [`read`] and its parameters.
fn read_statement(tenant: &TenantId, query: &JournalQuery) -> (String, Clause) {
    let mut clause = match &query.email {
        Some(_) => Clause::new(tenant),
        None => Clause::tenant_range(tenant),
    };
    let address = query
        .email
        .as_ref()
        .map(|email| clause.push(Param::Text(email.as_str().to_owned())));
    let mut filters = String::new();
    if let Some(since) = query.since {
        let p = clause.push(Param::Int(since.as_nanos()));
        filters.push_str(&format!(" AND at >= {p}"));
    }
    if let Some(until) = query.until {
        let p = clause.push(Param::Int(until.as_nanos()));
        filters.push_str(&format!(" AND at <= {p}"));
    }
    if let Some(door) = &query.door {
        let p = clause.push(Param::Text(door.clone()));
        filters.push_str(&format!(" AND door = {p}"));
    }
    let (past, direction) = match query.order {
        JournalOrder::NewestFirst => ("<", "DESC"),
        JournalOrder::OldestFirst => (">", "ASC"),
    };
    if let Some(cursor) = query.cursor {
        let p = clause.push(Param::Int(cursor.0));
        filters.push_str(&format!(" AND position {past} {p}"));
    }
    let limit = clause.push(Param::Int(i64::from(query.limit)));
    let sql = match address {
        None => format!(
            "SELECT {COLUMNS} FROM hush_journal WHERE {}{filters} \
             ORDER BY tenant {direction}, position {direction} LIMIT {limit}",
            clause.sql
        ),
        // The address's own rows, then the live adds of the ids it has had:
        // those it holds now and those its removals recorded (schema,
        // migration 7), a handful of rows to sort. The adds are checked
        // against the record's address: `hush copy` appends entries with
        // the source's ids, which this store may hand out again.
        Some(e) => format!(
            "SELECT {COLUMNS} FROM hush_journal \
             WHERE email IS NOT NULL AND {tenant} AND email = {e}{filters} \
             UNION ALL \
             SELECT {COLUMNS} FROM hush_journal \
             WHERE email IS NULL AND subject IS NOT NULL AND subject IN ( \
                 SELECT id FROM suppressions WHERE {tenant} AND email = {e} \
                 UNION ALL \
                 SELECT subject FROM hush_journal \
                 WHERE email IS NOT NULL AND {tenant} AND email = {e}) \
             AND {tenant} AND (record::json ->> 'email') = {e}{filters} \
             ORDER BY position {direction} LIMIT {limit}",
            tenant = clause.sql
        ),
    };
    (sql, clause)
}

/// The statements the backend runs to read a page of a tenant's journal
/// and to prune, each with its parameters in placeholder order: for tests
/// that EXPLAIN them to see which indexes serve them.
#[doc(hidden)]
pub fn journal_statements(
    tenant: &TenantId,
    query: &JournalQuery,
    before: Timestamp,
    limit: u32,
) -> Vec<(String, Vec<Param>)> {
    let (read, clause) = read_statement(tenant, query);
    vec![
        (read, clause.params().to_vec()),
        (
            PRUNE.to_owned(),
            vec![Param::Int(before.as_nanos()), Param::Int(i64::from(limit))],
        ),
    ]
}

/// Up to `limit` entries of every tenant after `after`, by position.
///
/// Positions follow commit order only within a tenant (see the module's
/// documentation): while other tenants are written, an entry of tenant A
/// below one of tenant B that was read may still commit afterwards. A walk
/// of everything by position (`hush copy`) is therefore complete only over
/// a store that no one writes meanwhile.
pub(super) async fn read_all(
    conn: &mut PgConnection,
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<JournalEntry>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM hush_journal WHERE position > $1 ORDER BY position LIMIT $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(after.map_or(0, |p| p.0))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.iter().map(entry_from_row).collect()
}

const PRUNE: &str = "\
DELETE FROM hush_journal WHERE position = ANY (ARRAY( \
    SELECT position FROM ( \
        SELECT position, bool_and(at < $1) OVER (ORDER BY position) AS old \
        FROM (SELECT position, at FROM hush_journal ORDER BY position LIMIT $2) AS head \
    ) AS walked WHERE old))";

/// Deletes up to `limit` of the oldest entries, stopping at the first one
/// written at or after `before` (as the memory store does: a walk from the
/// oldest that ends where retention begins); returns how many went. One
/// short statement on the oldest rows, which no writer touches, and no
/// journal lock: writers go on meanwhile. The positions are an array, so
/// that the delete looks each one up in the primary key (as `IN (SELECT …)`
/// the planner joined them by hash with a scan of the whole journal).
pub(super) async fn prune(
    conn: &mut PgConnection,
    before: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    let deleted = sqlx::query(PRUNE)
        .bind(before.as_nanos())
        .bind(i64::from(limit))
        .execute(conn)
        .await?
        .rows_affected();
    Ok(deleted)
}
