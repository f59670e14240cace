//! Opening connections and keeping the schema current.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;

/// Schema migrations, applied in order at open. `PRAGMA user_version` holds
/// how many have been applied. Append new ones; never edit or reorder one
/// that has shipped.
///
/// - `suppressions.group_id` is 0 for a global entry, else the group's id,
///   so that the identity `(tenant, email, group_id, family)` can be one
///   UNIQUE constraint (NULLs never conflict in SQLite).
/// - `family` is `KindFamily::code`, `origin` is `Origin::code`, `class` is
///   a bounce class ([`super::sql::class_code`]), `created_at` is nanoseconds.
/// - `reason` holds a bounce's or an invalid entry's reason; `source` a spam
///   complaint's source.
/// - `suppressions_identity` is the identity and serves lookups by address
///   (queries name it with `INDEXED BY`: without statistics the planner
///   would rather walk `suppressions_by_time` to skip a sort). The two
///   others serve listings newest first, by scope and kind or over
///   everything.
/// - `hush_meta` holds the key of the ids shown to clients
///   (`hush_model::ShownIds`), drawn once per file, and the last group id
///   stored before shown ids were opaque, which keeps showing as stored.
/// - `journal` records every committed change (`hush_model::Recorded`;
///   docs/operations.md, "History and restore"), written in the change's
///   own transaction. Since migration 9 it is one B-tree keyed by
///   `(tenant, position)`, which is a tenant's history in order: with single
///   durable writes, each further B-tree (the table by rowid, an index by
///   tenant, one by id) was one more page to write and sync per group
///   commit. The writer is the only one, so commit order is position order.
///   `at` is nanoseconds; `operation` is `Operation::as_str`; `door`,
///   `key_name`, `request_id` and `event_id` are the actor; `record` is
///   `Recorded::to_stored`'s JSON; `subject` is the suppression's id and
///   `email` its address (both NULL for a group's entry).
/// - Positions are never given twice, even once pruning has emptied the
///   journal: `hush copy`, readers and mirrors page by them. The writer
///   keeps the next one in memory (`sql::take_positions`), seeded from each
///   tenant's last row and from the `sqlite_sequence` row
///   `hush_journal_position`, which pruning writes before it deletes.
/// - What an add makes is journaled packed (migration 8): one row per
///   command (up to `sql::MAX_PACK` entries) with `ids`, the new
///   suppressions' ids as runs (`first:len,…`), `entries` their number,
///   `subject` the first, `email` NULL and `record` empty. The pack takes
///   `entries` positions from `position` on. Its entries' records are read
///   from `suppressions`, or once removed from their removal's record
///   (`journal_removed_by_subject`): a suppression is never changed in
///   place and its id never handed out again. A row per entry (JSON, two
///   index inserts) cost imports a third of their rate (docs/benchmarks.md,
///   "With the journal"). Every other entry of a suppression is a row of
///   its own with its `email` and id.
/// - Within one group commit, consecutive commands' adds of one tenant,
///   door, key and event share one such row (`batch_pack`), with the
///   first command's time; when their request ids differ, `record` holds
///   them as runs (`[[request id, entries], …]`), and is empty otherwise.
///   Single durable writes paid a row each (docs/benchmarks.md).
/// - An address's history: the rows with its `email` (`journal_by_email`),
///   and for each id it has had (the ones `suppressions` holds for it, and
///   the ones its rows recorded) the row that journals that id's add. A
///   tenant's live add rows take ids and positions from one writer in the
///   same order, so the row holding an id is found by bisecting the
///   tenant's positions (`sql::live_add`). Migration 6 first moved the
///   adds off an address index: its `journal_by_address` took one insert
///   at a random place per entry.
/// - `mirror_state` holds where each mirror of a tenant stands (migration
///   10; `hush_model::MirrorState`), `mirror_failures` the changes its
///   provider refused, by journal position. Both are written in one
///   transaction per step (`sql::save_mirror`).
/// - `webhook_receipts` holds the key of every webhook event applied, by
///   tenant and hook (`provider/name`), with when (nanoseconds), so that a
///   redelivered event changes nothing (`sql::apply_events`); pruned by
///   age.
/// - `hush_write_probe` stays empty: after a write failed for lack of
///   space, readiness writes a row of [`super::sql::PROBE_BYTES`] there
///   and deletes it in one committed transaction, to learn whether writes
///   fit again.
pub(super) const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE suppression_groups (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant               TEXT    NOT NULL,
    key                  TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    description          TEXT    NOT NULL,
    is_default           INTEGER NOT NULL,
    stream_type          TEXT    NOT NULL,
    unsubscribe_handling TEXT    NOT NULL,
    archived_at          INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER,
    UNIQUE (tenant, key),
    UNIQUE (tenant, name)
);

CREATE TABLE suppressions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    group_id   INTEGER NOT NULL DEFAULT 0,
    family     INTEGER NOT NULL,
    class      INTEGER,
    status     TEXT,
    reason     TEXT,
    source     TEXT,
    origin     INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE UNIQUE INDEX suppressions_identity
    ON suppressions (tenant, email, group_id, family);

CREATE INDEX suppressions_by_scope
    ON suppressions (tenant, group_id, family, created_at DESC, id DESC);

CREATE INDEX suppressions_by_time
    ON suppressions (tenant, created_at DESC, id DESC);
",
    r"
CREATE TABLE hush_write_probe (
    id     INTEGER PRIMARY KEY,
    filler BLOB    NOT NULL
);
",
    r"
-- Addresses in their one normal form: a Rust step (ADDRESSES_NORMALIZED).
",
    r"
CREATE TABLE hush_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO hush_meta (name, value) VALUES ('shown_ids_key', hex(randomblob(32)));
INSERT INTO hush_meta (name, value)
    SELECT 'legacy_groups_up_to', CAST(coalesce(max(id), 0) AS TEXT) FROM suppression_groups;
",
    r"
CREATE TABLE journal (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    operation  TEXT    NOT NULL,
    email      TEXT,
    door       TEXT    NOT NULL,
    key_name   TEXT,
    request_id TEXT,
    event_id   TEXT,
    record     TEXT    NOT NULL
);

CREATE INDEX journal_by_tenant ON journal (tenant, position);

CREATE INDEX journal_by_address ON journal (tenant, email, position);
",
    r"
ALTER TABLE journal ADD COLUMN subject INTEGER;

UPDATE journal SET subject = json_extract(record, '$.id') WHERE email IS NOT NULL;

DROP INDEX journal_by_address;

CREATE INDEX journal_by_email ON journal (tenant, email) WHERE email IS NOT NULL;

CREATE INDEX journal_by_subject ON journal (subject) WHERE email IS NULL AND subject IS NOT NULL;
",
    r"
CREATE TABLE webhook_receipts (
    tenant TEXT    NOT NULL,
    hook   TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (tenant, hook, key)
) WITHOUT ROWID;

CREATE INDEX webhook_receipts_by_time ON webhook_receipts (at);
",
    r"
ALTER TABLE journal ADD COLUMN entries INTEGER NOT NULL DEFAULT 1;

ALTER TABLE journal ADD COLUMN ids TEXT;

CREATE INDEX journal_removed_by_subject ON journal (subject)
    WHERE email IS NOT NULL AND subject IS NOT NULL;
",
    r"
CREATE TABLE journal_by_tenant_position (
    tenant     TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    operation  TEXT    NOT NULL,
    email      TEXT,
    door       TEXT    NOT NULL,
    key_name   TEXT,
    request_id TEXT,
    event_id   TEXT,
    record     TEXT    NOT NULL,
    subject    INTEGER,
    entries    INTEGER NOT NULL DEFAULT 1,
    ids        TEXT,
    PRIMARY KEY (tenant, position)
) WITHOUT ROWID;

INSERT INTO journal_by_tenant_position
    (tenant, position, at, operation, email, door, key_name, request_id, event_id, record,
     subject, entries, ids)
SELECT tenant, position, at, operation, email, door, key_name, request_id, event_id, record,
       subject, entries, ids
FROM journal;

INSERT INTO sqlite_sequence (name, seq)
SELECT 'hush_journal_position', max(
    coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'journal'), 0),
    coalesce((SELECT max(position + entries - 1) FROM journal), 0));

DROP TABLE journal;

ALTER TABLE journal_by_tenant_position RENAME TO journal;

CREATE INDEX journal_by_email ON journal (tenant, email) WHERE email IS NOT NULL;

CREATE INDEX journal_removed_by_subject ON journal (subject)
    WHERE email IS NOT NULL AND subject IS NOT NULL;
",
    r"
CREATE TABLE mirror_state (
    tenant       TEXT    NOT NULL,
    mirror       TEXT    NOT NULL,
    position     INTEGER,
    last_success INTEGER,
    last_error   TEXT,
    failed       INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, mirror)
) WITHOUT ROWID;

CREATE TABLE mirror_failures (
    tenant   TEXT    NOT NULL,
    mirror   TEXT    NOT NULL,
    position INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    change   TEXT    NOT NULL,
    message  TEXT    NOT NULL,
    PRIMARY KEY (tenant, mirror, position)
) WITHOUT ROWID;
",
];

/// The migration after which stored addresses are in `Email::parse`'s
/// normal form (IDNA, NFC, no invisible characters): [`migrate`] runs
/// `sql::normalize_addresses` in its transaction.
const ADDRESSES_NORMALIZED: usize = 3;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const STATEMENT_CACHE: usize = 64;
/// Page cache of each read connection, in KiB (SQLite takes a negative
/// `cache_size` as KiB): SQLite's default, 2 MiB.
const READER_CACHE_KIB: i64 = -2048;

/// The one connection that writes. Acknowledged writes must survive a crash
/// of the process and of the machine, so the WAL is synced on every commit
/// (`synchronous=FULL`); group commit is what makes that affordable.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Setup(format!(
            "the database could not be put in WAL mode (journal_mode is {mode:?})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    keep_plans(&conn)?;
    Ok(conn)
}

/// A connection that only reads, for the read pool.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // 8 MiB per reader kept the interior pages of both B-trees cached for
    // lookups that read SQLite (docs/benchmarks.md). Lookups now come from
    // the lookup index, and those 24 MiB more over four readers were most
    // of what the 1,000,000-entry dump's peak RSS ranged over (130 to 158
    // MiB against the benchmark's limit of 150); a tenant over the index's budget
    // pays the `pread`s again.
    conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    keep_plans(&conn)?;
    Ok(conn)
}

/// The bundled SQLite is built with `SQLITE_ENABLE_STAT4`, under which a
/// cached statement whose plan might depend on a bound value is prepared
/// again each time it is bound anew: a profile of the lookup benchmark
/// showed every lookup parsing and planning its SELECT again
/// (`sqlite3Reprepare` under `sqlite3_step`). hush's queries name their
/// index where it matters and keep no statistics, so the plan never depends
/// on the values; the query planner stability guarantee keeps the first.
fn keep_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Applies the migrations the file lacks, each in its own transaction
/// together with the bump of `user_version`. The version is read inside the
/// write transaction, so two processes opening one file at once do not both
/// apply a migration.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let applied = usize::try_from(version)
            .map_err(|_| StoreError::Setup(format!("invalid schema version {version}")))?;
        if applied > known {
            return Err(StoreError::Setup(format!(
                "the database has schema version {applied}, newer than the {known} this build knows; \
                 use a newer hush"
            )));
        }
        let Some(sql) = MIGRATIONS.get(applied) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        if applied + 1 == ADDRESSES_NORMALIZED {
            super::sql::normalize_addresses(&tx)?;
        }
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::info!(version = version + 1, "applied sqlite schema migration");
    }
}
