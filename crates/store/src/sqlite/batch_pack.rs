//! One packed journal row for the adds of many commands of one group
//! commit.
//!
//! A single-address write is a command of its own, and the writer commits
//! hundreds of them per fsync (`writer`). Journaled one row per command,
//! each paid a B-tree insert and, inside its savepoint, a copy of the
//! journal's leaf page into the statement journal: the journal took a
//! fifth of the durable write rate (docs/benchmarks.md, "With the
//! journal"). So while the writer runs a batch, a command's adds are not
//! written when the command finishes ([`super::sql::Journal`]) but kept
//! here, and consecutive commands' adds of one tenant and one actor (save
//! the request id) become one row, written before anything else takes a
//! position and at the latest just before the batch commits: commit order
//! stays position order.
//!
//! The entries of such a row share its time, the time of its first
//! command: they commit in one transaction, at one instant. Their request
//! ids, which differ, are kept in the row's `record` column as runs
//! (`[[request id, entries], …]`); a row of one run keeps it in the
//! `request_id` column alone, as every row did before.
//!
//! A command that fails is rolled back to its savepoint by the writer,
//! which then calls [`command_failed`]: its adds are dropped from what is
//! kept, and if a row written inside its savepoint held earlier commands'
//! adds (that row is rolled back too), those are kept again.
//!
//! The state is per thread: the writer thread is the only one that writes
//! a given file, and only it turns batching on ([`begin_batch`]). Outside
//! a batch (tests that call `sql` directly, migrations) nothing is kept.

use std::cell::RefCell;

use hush_model::{Actor, TenantId};
use rusqlite::{Connection, params};

use super::StoreError;
use super::sql::{MAX_PACK, Runs, take_positions};

/// A pack's request ids, run by run: each with how many entries in a row
/// it was the request of.
pub(super) type RequestRuns = Vec<(Option<String>, usize)>;

/// Who and when, shared by every entry of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    tenant: String,
    door: String,
    key: Option<String>,
    event_id: Option<String>,
    at: i64,
}

impl Head {
    fn same_row(&self, tenant: &TenantId, actor: &Actor) -> bool {
        self.tenant == tenant.as_str()
            && self.door == actor.door.as_str()
            && self.key == actor.key
            && self.event_id == actor.event_id
    }
}

/// Adds not yet written: the ids in order, and each run of them with
/// one request id.
#[derive(Debug, Clone, Default)]
struct Open {
    head: Option<Head>,
    ids: Vec<i64>,
    requests: RequestRuns,
}

impl Open {
    /// The first `ids` ids and the runs that hold them.
    fn truncate(&mut self, ids: usize) {
        self.ids.truncate(ids);
        let mut left = ids;
        let mut keep = 0;
        for (_, entries) in &mut self.requests {
            if left == 0 {
                break;
            }
            *entries = (*entries).min(left);
            left -= *entries;
            keep += 1;
        }
        self.requests.truncate(keep);
        if self.ids.is_empty() {
            self.head = None;
        }
    }
}

#[derive(Debug, Default)]
struct State {
    batching: bool,
    open: Open,
    /// How many ids were open when the running command started.
    command_start: usize,
    /// What was open when the running command started, if a row written
    /// inside its savepoint took it.
    taken_in_command: Option<Open>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// The writer starts a batch: adds are kept until [`finish_batch`].
pub(super) fn begin_batch() {
    STATE.with(|state| {
        *state.borrow_mut() = State {
            batching: true,
            ..State::default()
        };
    });
}

/// The writer is about to run a command in its savepoint.
pub(super) fn command_started() {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        state.command_start = state.open.ids.len();
        state.taken_in_command = None;
    });
}

/// The running command was rolled back to its savepoint.
pub(super) fn command_failed() {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        let start = state.command_start;
        if let Some(taken) = state.taken_in_command.take() {
            state.open = taken;
        }
        state.open.truncate(start);
    });
}

/// Writes what is kept; the batch's last statement before COMMIT. Batching
/// ends whether or not the write succeeds (a failure fails the batch).
pub(super) fn finish_batch(conn: &Connection) -> Result<(), StoreError> {
    let written = write_open(conn);
    end_batch();
    written
}

/// Ends batching without writing (a batch that failed).
pub(super) fn end_batch() {
    STATE.with(|state| *state.borrow_mut() = State::default());
}

/// Keeps one command's adds for the batch's row; `false` outside a batch,
/// when the caller must write them itself.
pub(super) fn keep(
    conn: &Connection,
    tenant: &TenantId,
    actor: &Actor,
    at: i64,
    ids: &[i64],
) -> Result<bool, StoreError> {
    let (batching, other_row) = STATE.with(|state| {
        let state = state.borrow();
        let other_row = state
            .open
            .head
            .as_ref()
            .is_some_and(|head| !head.same_row(tenant, actor));
        (state.batching, other_row)
    });
    if !batching {
        return Ok(false);
    }
    if other_row {
        write_open(conn)?;
    }
    let full = STATE.with(|state| {
        let mut state = state.borrow_mut();
        let open = &mut state.open;
        open.head.get_or_insert_with(|| Head {
            tenant: tenant.as_str().to_owned(),
            door: actor.door.as_str().to_owned(),
            key: actor.key.clone(),
            event_id: actor.event_id.clone(),
            at,
        });
        open.ids.extend_from_slice(ids);
        match open.requests.last_mut() {
            Some((request_id, entries)) if *request_id == actor.request_id => *entries += ids.len(),
            _ => open.requests.push((actor.request_id.clone(), ids.len())),
        }
        open.ids.len() as i64 >= MAX_PACK
    });
    if full {
        write_open(conn)?;
    }
    Ok(true)
}

/// Writes what is kept before a row that takes a position of its own, so
/// that the kept adds, which came first, come first in the journal.
pub(super) fn write_before_other_rows(conn: &Connection) -> Result<(), StoreError> {
    write_open(conn)
}

fn write_open(conn: &Connection) -> Result<(), StoreError> {
    let open = STATE.with(|state| {
        let mut state = state.borrow_mut();
        let open = std::mem::take(&mut state.open);
        if open.head.is_some() && state.taken_in_command.is_none() {
            let mut before = open.clone();
            before.truncate(state.command_start);
            state.taken_in_command = Some(before);
        }
        open
    });
    let Some(head) = open.head else {
        return Ok(());
    };
    let Some(&first) = open.ids.first() else {
        return Ok(());
    };
    let entries = open.ids.len() as i64;
    let position = take_positions(conn, entries)?;
    let request_id = open.requests.first().and_then(|(id, _)| id.clone());
    // One run: the `request_id` column says it all, as in every row
    // written before batches shared rows.
    let requests = if open.requests.len() > 1 {
        request_runs(&open.requests)
    } else {
        String::new()
    };
    conn.prepare_cached(
        "INSERT INTO journal \
         (tenant, position, at, operation, email, subject, door, key_name, request_id, \
          event_id, record, entries, ids) \
         VALUES (?1, ?2, ?3, 'added', NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        head.tenant,
        position,
        head.at,
        first,
        head.door,
        head.key,
        request_id,
        head.event_id,
        requests,
        entries,
        Runs::of(&open.ids).to_string(),
    ])?;
    Ok(())
}

/// A pack's request ids as stored in its `record` column.
fn request_runs(requests: &[(Option<String>, usize)]) -> String {
    let runs: Vec<serde_json::Value> = requests
        .iter()
        .map(|(id, entries)| serde_json::json!([id, entries]))
        .collect();
    serde_json::Value::Array(runs).to_string()
}

/// The request id of each entry of a pack whose `record` column is
/// `stored`: `None` when the row's `request_id` column holds every
/// entry's.
pub(super) fn parse_request_runs(stored: &str) -> Result<Option<RequestRuns>, String> {
    if stored.is_empty() {
        return Ok(None);
    }
    let runs: RequestRuns = serde_json::from_str(stored)
        .map_err(|e| format!("bad request ids of a pack {stored:?}: {e}"))?;
    Ok(Some(runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncating_keeps_the_runs_of_the_first_ids() {
        let mut open = Open {
            head: None,
            ids: vec![1, 2, 3, 4, 5],
            requests: vec![(Some("a".into()), 2), (None, 1), (Some("c".into()), 2)],
        };
        open.truncate(4);
        assert_eq!(open.ids, vec![1, 2, 3, 4]);
        assert_eq!(
            open.requests,
            vec![(Some("a".into()), 2), (None, 1), (Some("c".into()), 1)]
        );
        open.truncate(2);
        assert_eq!(open.requests, vec![(Some("a".into()), 2)]);
    }

    #[test]
    fn request_runs_read_back() {
        let runs = vec![
            (Some("r-1".to_owned()), 3),
            (None, 1),
            (Some("x\",y".to_owned()), 2),
        ];
        assert_eq!(parse_request_runs(&request_runs(&runs)), Ok(Some(runs)));
        assert_eq!(parse_request_runs(""), Ok(None));
    }
}
