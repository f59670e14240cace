//! `hush copy`: stores copied whole and unchanged, idempotently, resumably.
//! SQLite to SQLite always; SQLite → PostgreSQL → SQLite with a server.

use std::path::Path;
use std::process::Command;

use hush_engine::Backend;
use hush_model::{
    BounceClass, Email, GroupChanges, GroupKey, Kind, KindSet, ListFilter, NewGroup,
    NewSuppression, Origin, Scope, ScopeFilter, StreamType, TenantId, Timestamp,
    UnsubscribeHandling,
};
use hush_store::{SqliteBackend, SqliteOptions};

use crate::support::HUSH;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn new_group(key: &str, stream_type: StreamType, is_default: bool, at: i64) -> NewGroup {
    NewGroup {
        key: GroupKey::parse(key).unwrap(),
        name: format!("The {key} stream"),
        description: format!("{key} mail"),
        is_default,
        stream_type,
        unsubscribe_handling: UnsubscribeHandling::default_for(stream_type),
        created_at: Timestamp::from_nanos(at),
    }
}

fn kind(i: usize) -> Kind {
    match i % 7 {
        0 => Kind::Bounce {
            class: BounceClass::Hard,
            status: Some("5.1.1".into()),
            reason: Some(format!("550 5.1.1 no user {i}")),
        },
        1 => Kind::Bounce {
            class: BounceClass::Soft,
            status: Some("4.2.2".into()),
            reason: None,
        },
        2 => Kind::Bounce {
            class: BounceClass::Block,
            status: None,
            reason: None,
        },
        3 => Kind::Invalid {
            reason: Some("no MX".into()),
        },
        4 => Kind::SpamComplaint {
            source: Some("feedback_loop".into()),
        },
        5 => Kind::Unsubscribe,
        _ => Kind::Manual,
    }
}

/// `entries` suppressions over two tenants, groups (one archived, one
/// default), every kind and origin, nanosecond times with ties.
pub async fn fill(backend: &dyn Backend, entries: usize) {
    let (alpha, beta) = (tenant("alpha"), tenant("beta"));
    let outbound = backend
        .create_group(
            &alpha,
            new_group("outbound", StreamType::Transactional, true, 1),
            &crate::support::seeder(),
        )
        .await
        .unwrap();
    let news = backend
        .create_group(
            &alpha,
            new_group("news", StreamType::Broadcasts, false, 2),
            &crate::support::seeder(),
        )
        .await
        .unwrap();
    let old = backend
        .create_group(
            &alpha,
            new_group("old", StreamType::Broadcasts, false, 3),
            &crate::support::seeder(),
        )
        .await
        .unwrap();
    backend
        .update_group(
            &alpha,
            old.id,
            GroupChanges {
                archived_at: Some(Some(Timestamp::from_nanos(1_700_000_000_987_654_321))),
                updated_at: Some(Timestamp::from_nanos(1_700_000_000_987_654_321)),
                ..GroupChanges::default()
            },
            &crate::support::seeder(),
        )
        .await
        .unwrap();
    backend
        .create_group(
            &beta,
            new_group("outbound", StreamType::Transactional, true, 4),
            &crate::support::seeder(),
        )
        .await
        .unwrap();
    let origins = [Origin::Recipient, Origin::Customer, Origin::Admin];
    let mut batches: [Vec<NewSuppression>; 2] = [Vec::new(), Vec::new()];
    for i in 0..entries {
        let in_beta = i % 5 == 0;
        let scope = match (in_beta, i % 4) {
            (false, 0) => Scope::Group(news.id),
            (false, 1) => Scope::Group(old.id),
            (false, 2) => Scope::Group(outbound.id),
            _ => Scope::Global,
        };
        batches[usize::from(in_beta)].push(NewSuppression {
            email: Email::parse(&format!("user{i}@d{}.example", i % 13)).unwrap(),
            scope,
            kind: kind(i),
            origin: origins[i % 3],
            // Runs of four share a time, to the nanosecond.
            created_at: Timestamp::from_nanos(
                1_700_000_000_000_000_000 + i64::try_from(i / 4).unwrap() * 1_000_000_007,
            ),
        });
    }
    for (t, items) in [(alpha, &batches[0]), (beta, &batches[1])] {
        for chunk in items.chunks(1000) {
            backend
                .add(&t, chunk.to_vec(), &crate::support::seeder())
                .await
                .unwrap();
        }
    }
}

/// Everything a client could see, with group ids replaced by keys: the
/// groups by key, and every entry in listing order (newest first, ties as
/// the store orders them).
pub async fn snapshot(backend: &dyn Backend) -> Vec<String> {
    let mut out = Vec::new();
    for t in [tenant("alpha"), tenant("beta")] {
        let groups = backend.groups(&t).await.unwrap();
        let key_of = |scope: Scope| match scope {
            Scope::Global => "global".to_owned(),
            Scope::Group(id) => groups
                .iter()
                .find(|g| g.id == id)
                .map(|g| g.key.as_str().to_owned())
                .unwrap(),
        };
        for g in &groups {
            out.push(format!(
                "{t} group {} {:?} {:?} {} {:?} {:?} {:?} {:?} {:?}",
                g.key.as_str(),
                g.name,
                g.description,
                g.is_default,
                g.stream_type,
                g.unsubscribe_handling,
                g.archived_at,
                g.created_at,
                g.updated_at
            ));
        }
        let filter = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
        let mut after = None;
        loop {
            let page = backend.scan(&t, &filter, after, 700).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(hush_model::ScanCursor::after(last));
            for s in &page {
                out.push(format!(
                    "{t} {} {} {:?} {:?} {}",
                    s.email,
                    key_of(s.scope),
                    s.kind,
                    s.origin,
                    s.created_at.as_nanos()
                ));
            }
        }
    }
    out
}

/// Runs `hush copy`; returns its stdout, failing with its stderr.
pub fn run_copy(from: &str, to: &str, batch: u32) -> String {
    let output = Command::new(HUSH)
        .args(["copy", "--from", from, "--to", to, "--batch"])
        .arg(batch.to_string())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hush copy failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

pub fn open_sqlite(path: &Path) -> SqliteBackend {
    SqliteBackend::open(SqliteOptions::new(path)).unwrap()
}

#[tokio::test]
async fn sqlite_to_sqlite_is_whole_unchanged_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.db"), dir.path().join("dst.db"));
    let source = open_sqlite(&src);
    fill(&source, 700).await;
    let expected = snapshot(&source).await;
    assert_eq!(expected.len(), 700 + 4, "every entry and group is compared");
    drop(source);
    let (from, to) = (
        format!("sqlite:{}", src.display()),
        format!("sqlite:{}", dst.display()),
    );
    let out = run_copy(&from, &to, 128);
    assert!(out.contains("2 tenant(s)"), "{out}");
    assert!(out.contains("groups: 4 created, 0 already there"), "{out}");
    assert!(
        out.contains("suppressions: 700 copied, 0 already there"),
        "{out}"
    );
    assert_eq!(snapshot(&open_sqlite(&dst)).await, expected);
    let again = run_copy(&from, &to, 128);
    assert!(
        again.contains("groups: 0 created, 4 already there"),
        "{again}"
    );
    assert!(
        again.contains("suppressions: 0 copied, 700 already there"),
        "{again}"
    );
    assert_eq!(snapshot(&open_sqlite(&dst)).await, expected);
}

#[test]
fn a_missing_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let output = Command::new(HUSH)
        .args(["copy", "--from"])
        .arg(format!("sqlite:{}", missing.display()))
        .arg("--to")
        .arg(format!("sqlite:{}", dir.path().join("dst.db").display()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no such file"), "{stderr}");
    assert!(!missing.exists(), "the source was not created");
    let output = Command::new(HUSH)
        .args(["copy", "--from", "mysql://x", "--to", "sqlite:x.db"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "a bad store spec is a usage error"
    );
}

#[cfg(hush_postgres_tests)]
mod with_server {
    use super::*;
    use crate::pg::TempDatabase;
    use hush_store::{PostgresBackend, PostgresOptions};

    /// SQLite → PostgreSQL → SQLite: unchanged; re-runs copy nothing; a
    /// destination that already holds part of the data (an interrupted
    /// copy) is completed.
    #[tokio::test]
    async fn sqlite_to_postgres_and_back_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = TempDatabase::create().await;
        let (src, back) = (dir.path().join("src.db"), dir.path().join("back.db"));
        let source = open_sqlite(&src);
        fill(&source, 3000).await;
        let expected = snapshot(&source).await;
        assert_eq!(
            expected.len(),
            3000 + 4,
            "every entry and group is compared"
        );
        drop(source);

        // An interrupted earlier copy: part of the data is already there.
        let pg = PostgresBackend::connect(PostgresOptions::from_url(&db.url).unwrap())
            .await
            .unwrap();
        let partial = dir.path().join("partial.db");
        fill(&open_sqlite(&partial), 1000).await;
        let out = run_copy(&format!("sqlite:{}", partial.display()), &db.url, 300);
        assert!(out.contains("suppressions: 1000 copied"), "{out}");

        let from = format!("sqlite:{}", src.display());
        let to = format!("postgres:{}", db.url);
        let out = run_copy(&from, &to, 500);
        assert!(out.contains("groups: 0 created, 4 already there"), "{out}");
        assert!(
            out.contains("suppressions: 2000 copied, 1000 already there"),
            "{out}"
        );
        assert_eq!(snapshot(&pg).await, expected, "PostgreSQL holds the source");
        let again = run_copy(&from, &to, 500);
        assert!(
            again.contains("suppressions: 0 copied, 3000 already there"),
            "{again}"
        );

        let back_spec = format!("sqlite:{}", back.display());
        let out = run_copy(&to, &back_spec, 777);
        assert!(
            out.contains("suppressions: 3000 copied, 0 already there"),
            "{out}"
        );
        assert_eq!(
            snapshot(&open_sqlite(&back)).await,
            expected,
            "back in SQLite, unchanged"
        );
        let again = run_copy(&to, &back_spec, 777);
        assert!(
            again.contains("suppressions: 0 copied, 3000 already there"),
            "{again}"
        );
    }

    /// Text with a NUL character, stored in SQLite before hush refused it
    /// at its edges, is copied to PostgreSQL (whose `text` cannot hold
    /// one) without the NUL and reported, and the rest of the copy goes on.
    #[tokio::test]
    async fn nul_characters_are_cleaned_and_counted_on_the_way_to_postgres() {
        use hush_engine::Backend as _;
        use hush_model::{BounceClass, Email, Kind, NewSuppression, Origin, Scope, Timestamp};

        let dir = tempfile::tempdir().unwrap();
        let db = TempDatabase::create().await;
        let src = dir.path().join("src.db");
        let source = open_sqlite(&src);
        let t = tenant("t1");
        let items = (0..200)
            .map(|n| NewSuppression {
                email: Email::parse(&format!("n{n}@example.com")).unwrap(),
                scope: Scope::Global,
                kind: Kind::Bounce {
                    class: BounceClass::Hard,
                    status: Some("5.1.1".into()),
                    reason: Some(if n == 7 {
                        "550\0 nul".into()
                    } else {
                        "550 ok".into()
                    }),
                },
                origin: Origin::Recipient,
                created_at: Timestamp::from_nanos(1_700_000_000_000_000_000 + n),
            })
            .collect();
        source
            .add(&t, items, &crate::support::seeder())
            .await
            .unwrap();
        drop(source);
        let out = run_copy(&format!("sqlite:{}", src.display()), &db.url, 64);
        assert!(out.contains("suppressions: 200 copied"), "{out}");
        assert!(
            out.contains("1 entr(ies) or group(s) copied with NUL characters removed"),
            "{out}"
        );
        let pg = PostgresBackend::connect(PostgresOptions::from_url(&db.url).unwrap())
            .await
            .unwrap();
        let entries = pg
            .entries(&t, &Email::parse("n7@example.com").unwrap())
            .await
            .unwrap();
        match &entries[0].kind {
            Kind::Bounce { reason, .. } => assert_eq!(reason.as_deref(), Some("550 nul")),
            other => panic!("{other:?}"),
        }
    }
}

/// The source's history goes along, with its times, doors, keys and
/// records; the copy's own writes are journaled as `copy`; a re-run carries
/// nothing twice.
#[tokio::test]
async fn the_journal_goes_along_once() {
    use hush_model::{Actor, Door, JournalOrder, JournalQuery, Operation, Recorded};
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.db"), dir.path().join("dst.db"));
    let source = open_sqlite(&src);
    fill(&source, 20).await;
    let alpha = tenant("alpha");
    let every = ListFilter::new(KindSet::ALL, ScopeFilter::Any);
    let gone = source
        .scan(&alpha, &every, None, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect::<Vec<_>>();
    let v3 = Actor::new(Door::V3)
        .with_key("billing")
        .with_request_id("r-9");
    assert_eq!(source.remove_ids(&alpha, &gone, &v3).await.unwrap(), 2);
    let oldest_first = JournalQuery {
        order: JournalOrder::OldestFirst,
        ..JournalQuery::newest_first(u32::MAX)
    };
    let history = source.journal(&alpha, &oldest_first).await.unwrap();
    drop(source);
    let (from, to) = (
        format!("sqlite:{}", src.display()),
        format!("sqlite:{}", dst.display()),
    );
    let out = run_copy(&from, &to, 8);
    assert!(out.contains("journal:"), "{out}");

    let destination = open_sqlite(&dst);
    let carried = destination.journal(&alpha, &oldest_first).await.unwrap();
    let mine: Vec<_> = carried
        .iter()
        .filter(|e| e.actor.door != Door::COPY)
        .collect();
    assert_eq!(mine.len(), history.len(), "every source entry, once");
    for (got, want) in mine.iter().zip(&history) {
        assert_eq!(
            (got.at, got.operation, &got.actor),
            (want.at, want.operation, &want.actor)
        );
        if let (Recorded::Suppression(g), Recorded::Suppression(w)) = (&got.record, &want.record) {
            assert_eq!(
                (&g.email, &g.kind, g.created_at),
                (&w.email, &w.kind, w.created_at)
            );
        }
    }
    let removals: Vec<_> = mine
        .iter()
        .filter(|e| e.operation == Operation::Removed)
        .collect();
    assert_eq!(removals.len(), 2);
    assert!(removals.iter().all(|e| e.actor == v3));
    assert!(
        carried
            .iter()
            .any(|e| e.actor.door == Door::COPY && e.operation == Operation::Added),
        "the copy's own adds are journaled"
    );
    drop(destination);
    let again = run_copy(&from, &to, 8);
    assert!(!again.contains("journal:"), "{again}");
    let after = open_sqlite(&dst)
        .journal(&alpha, &oldest_first)
        .await
        .unwrap();
    assert_eq!(after.len(), carried.len(), "a re-run carries nothing again");
}
