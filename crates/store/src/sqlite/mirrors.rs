//! Where each mirror stands (`schema`, migration 10).

use hush_model::{MirrorFailure, MirrorName, MirrorState, Position, TenantId, Timestamp};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::StoreError;

pub(super) fn state(
    conn: &Connection,
    tenant: &TenantId,
    mirror: &MirrorName,
) -> Result<MirrorState, StoreError> {
    let state = conn
        .prepare_cached(
            "SELECT position, last_success, last_error, failed, skipped FROM mirror_state \
             WHERE tenant = ?1 AND mirror = ?2",
        )?
        .query_row(params![tenant.as_str(), mirror.as_str()], |row| {
            Ok(MirrorState {
                position: row.get::<_, Option<i64>>(0)?.map(Position),
                last_success: row.get::<_, Option<i64>>(1)?.map(Timestamp::from_nanos),
                last_error: row.get(2)?,
                failed: row.get::<_, i64>(3)?.try_into().unwrap_or(0),
                skipped: row.get::<_, i64>(4)?.try_into().unwrap_or(0),
            })
        })
        .optional()?;
    Ok(state.unwrap_or_default())
}

/// The state and the refusals of one step, on the writer's transaction.
/// A refusal recorded before (a step retried after its reply was lost)
/// stays as first recorded.
pub(super) fn save(
    conn: &Connection,
    tenant: &TenantId,
    mirror: &MirrorName,
    state: &MirrorState,
    failures: &[MirrorFailure],
) -> Result<(), StoreError> {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO mirror_state (tenant, mirror, position, last_success, last_error, failed, skipped) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (tenant, mirror) DO UPDATE SET position = excluded.position, \
         last_success = excluded.last_success, last_error = excluded.last_error, \
         failed = excluded.failed, skipped = excluded.skipped",
    )?
    .execute(params![
        tenant.as_str(),
        mirror.as_str(),
        state.position.map(|p| p.0),
        state.last_success.map(Timestamp::as_nanos),
        state.last_error,
        count(state.failed),
        count(state.skipped),
    ])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO mirror_failures (tenant, mirror, position, at, change, message) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    )?;
    for failure in failures {
        insert.execute(params![
            tenant.as_str(),
            mirror.as_str(),
            failure.position.0,
            failure.at.as_nanos(),
            failure.change,
            failure.message,
        ])?;
    }
    Ok(())
}

pub(super) fn failures(
    conn: &Connection,
    tenant: &TenantId,
    mirror: &MirrorName,
    limit: u32,
) -> Result<Vec<MirrorFailure>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT position, at, change, message FROM mirror_failures \
             WHERE tenant = ?1 AND mirror = ?2 ORDER BY position DESC LIMIT ?3",
        )?
        .query_map(params![tenant.as_str(), mirror.as_str(), limit], |row| {
            Ok(MirrorFailure {
                position: Position(row.get(0)?),
                at: Timestamp::from_nanos(row.get(1)?),
                change: row.get(2)?,
                message: row.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn clear(
    conn: &Connection,
    tenant: &TenantId,
    mirror: &MirrorName,
    positions: &[Position],
) -> Result<(), StoreError> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM mirror_failures WHERE tenant = ?1 AND mirror = ?2 AND position = ?3",
    )?;
    for position in positions {
        delete.execute(params![tenant.as_str(), mirror.as_str(), position.0])?;
    }
    Ok(())
}
