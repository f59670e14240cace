//! Where each mirror stands, and which instance pushes it (`schema`,
//! migration 9).
//!
//! The lease is a row's `holder` and `held_until`: an instance takes a
//! mirror when nobody holds it or the holder let it lapse, and renews it
//! while it pushes. One that dies stops renewing, and another takes the
//! mirror over once `held_until` passes. A holder that lost the lease
//! while a push was in flight may push a change twice; the providers'
//! adds and removes are idempotent, so that is at least once, not wrong.

use std::time::Duration;

use hush_model::{MirrorFailure, MirrorName, MirrorState, Position, TenantId, Timestamp};
use sqlx::{PgConnection, Row as _};

use super::StoreError;

pub(super) async fn state(
    conn: &mut PgConnection,
    tenant: &TenantId,
    mirror: &MirrorName,
) -> Result<MirrorState, StoreError> {
    let row = sqlx::query(
        "SELECT position, last_success, last_error, failed, skipped FROM hush_mirror_state \
         WHERE tenant = $1 AND mirror = $2",
    )
    .bind(tenant.as_str())
    .bind(mirror.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(MirrorState::default());
    };
    Ok(MirrorState {
        position: row.try_get::<Option<i64>, _>(0)?.map(Position),
        last_success: row.try_get::<Option<i64>, _>(1)?.map(Timestamp::from_nanos),
        last_error: row.try_get(2)?,
        failed: row.try_get::<i64, _>(3)?.try_into().unwrap_or(0),
        skipped: row.try_get::<i64, _>(4)?.try_into().unwrap_or(0),
    })
}

pub(super) async fn save(
    conn: &mut PgConnection,
    tenant: &TenantId,
    mirror: &MirrorName,
    state: &MirrorState,
    failures: &[MirrorFailure],
) -> Result<(), StoreError> {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO hush_mirror_state \
         (tenant, mirror, position, last_success, last_error, failed, skipped) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant, mirror) DO UPDATE SET position = excluded.position, \
         last_success = excluded.last_success, last_error = excluded.last_error, \
         failed = excluded.failed, skipped = excluded.skipped",
    )
    .bind(tenant.as_str())
    .bind(mirror.as_str())
    .bind(state.position.map(|p| p.0))
    .bind(state.last_success.map(Timestamp::as_nanos))
    .bind(state.last_error.as_deref())
    .bind(count(state.failed))
    .bind(count(state.skipped))
    .execute(&mut *conn)
    .await?;
    if failures.is_empty() {
        return Ok(());
    }
    let positions: Vec<i64> = failures.iter().map(|f| f.position.0).collect();
    let ats: Vec<i64> = failures.iter().map(|f| f.at.as_nanos()).collect();
    let changes: Vec<&str> = failures.iter().map(|f| f.change.as_str()).collect();
    let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
    sqlx::query(
        "INSERT INTO hush_mirror_failures (tenant, mirror, position, at, change, message) \
         SELECT $1, $2, * FROM UNNEST($3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(mirror.as_str())
    .bind(positions)
    .bind(ats)
    .bind(changes)
    .bind(messages)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn failures(
    conn: &mut PgConnection,
    tenant: &TenantId,
    mirror: &MirrorName,
    limit: u32,
) -> Result<Vec<MirrorFailure>, StoreError> {
    let rows = sqlx::query(
        "SELECT position, at, change, message FROM hush_mirror_failures \
         WHERE tenant = $1 AND mirror = $2 ORDER BY position DESC LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(mirror.as_str())
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(MirrorFailure {
                position: Position(row.try_get(0)?),
                at: Timestamp::from_nanos(row.try_get(1)?),
                change: row.try_get(2)?,
                message: row.try_get(3)?,
            })
        })
        .collect()
}

/// Takes or renews the lease; `true` when `holder` has it.
pub(super) async fn lease(
    conn: &mut PgConnection,
    tenant: &TenantId,
    mirror: &MirrorName,
    holder: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let taken = sqlx::query(
        "INSERT INTO hush_mirror_state (tenant, mirror, holder, held_until) \
         VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 millisecond') \
         ON CONFLICT (tenant, mirror) DO UPDATE \
         SET holder = excluded.holder, held_until = excluded.held_until \
         WHERE hush_mirror_state.holder IS NULL \
            OR hush_mirror_state.holder = excluded.holder \
            OR hush_mirror_state.held_until < clock_timestamp() \
         RETURNING holder",
    )
    .bind(tenant.as_str())
    .bind(mirror.as_str())
    .bind(holder)
    .bind(millis)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(taken.is_some())
}

pub(super) async fn clear(
    conn: &mut PgConnection,
    tenant: &TenantId,
    mirror: &MirrorName,
    positions: &[Position],
) -> Result<(), StoreError> {
    let positions: Vec<i64> = positions.iter().map(|p| p.0).collect();
    sqlx::query(
        "DELETE FROM hush_mirror_failures WHERE tenant = $1 AND mirror = $2 \
         AND position = ANY($3::BIGINT[])",
    )
    .bind(tenant.as_str())
    .bind(mirror.as_str())
    .bind(positions)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
