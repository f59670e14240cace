//! The hush benchmark: every case next to its baseline, in one run, one
//! table. Run it with `bench/run.sh` (which installs wrk and builds the
//! release binaries first); see docs/benchmarks.md.
//!
//! It starts a release `hush` on a fresh SQLite file and the lookup baseline
//! (`bench-baseline`) on loopback, loads `BENCH_ROWS` (default 1,000,000)
//! bounces and as many global unsubscribes for one tenant through the v3
//! CSV imports, drives the lookups and writes with wrk, and stops both
//! processes at the end (or when it fails).
//!
//! Knobs (environment): `BENCH_ROWS`, `BENCH_SECONDS` (per wrk run, default
//! 10), `BENCH_CONNECTIONS` (default 64), `BENCH_WORKERS` (HTTP workers of
//! hush and of the baseline; default 0 = one per core), `BENCH_HUSH` (the
//! hush binary to measure; default `target/release/hush`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, BufWriter, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hush_model::{KindFamily, Origin};
use hush_store::{SqliteBackend, SqliteOptions};

const V3_TOKEN: &str = "SG.bench";
const POSTMARK_TOKEN: &str = "bench-postmark-server";
const RSS_LIMIT_MIB: f64 = 150.0;
/// Rows per transaction of the import baseline: the batch size of hush's
/// importer (crates/engine/src/import.rs), so both make as many durable
/// commits.
const BASELINE_BATCH: u64 = 5_000;

struct Options {
    rows: u64,
    seconds: u64,
    connections: u32,
    workers: usize,
    /// A PostgreSQL server on which the bench may create a database, for
    /// the PostgreSQL lookup case.
    postgres_url: String,
}

impl Options {
    fn from_env() -> Self {
        let var = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
                .unwrap_or(default)
        };
        Self {
            rows: var("BENCH_ROWS", 1_000_000),
            seconds: var("BENCH_SECONDS", 10),
            connections: u32::try_from(var("BENCH_CONNECTIONS", 64)).unwrap(),
            workers: usize::try_from(var("BENCH_WORKERS", 0)).unwrap(),
            postgres_url: std::env::var("BENCH_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        }
    }
}

/// One line of the table.
struct Row {
    case: String,
    hush: String,
    baseline: String,
    ratio: Option<f64>,
    target: &'static str,
    met: Option<bool>,
}

fn main() {
    let options = Options::from_env();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let release = root.join("target/release");
    // `BENCH_HUSH` measures another build (an older commit's, say) against
    // the same baselines.
    let hush_bin =
        std::env::var_os("BENCH_HUSH").map_or_else(|| binary(&release, "hush"), PathBuf::from);
    let baseline_bin = binary(&release, "bench-baseline");
    let wrk = which("wrk");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut rows = Vec::new();
    let rows_n = options.rows;

    say(&format!(
        "load: {} (uptime)",
        String::from_utf8_lossy(&Command::new("uptime").output().unwrap().stdout).trim()
    ));
    say(&format!("writing two CSV files of {rows_n} rows"));
    let bounces_csv = dir.path().join("bounces.csv");
    let bounces_size = write_bounces_csv(&bounces_csv, rows_n);
    let global_csv = dir.path().join("global.csv");
    let global_size = write_global_csv(&global_csv, rows_n);

    // Import: the baseline first, into its own file, then hush.
    say("import baseline: bulk insert straight into SQLite");
    let baseline_rate = import_baseline(&dir.path().join("baseline.db"), rows_n);
    say(&format!("  {baseline_rate:.0} rows/s"));

    let mut hush = Hush::start(&hush_bin, dir.path(), options.workers, &Store::Sqlite);
    say("import: POST /v3/suppression/bounces/import");
    hush.reset_peak_rss();
    let seconds = hush.import(
        "/v3/suppression/bounces/import",
        &bounces_csv,
        bounces_size,
        rows_n,
    );
    let import_rate = rows_n as f64 / seconds;
    let import_rss = hush.peak_rss_mib();
    say(&format!(
        "  {seconds:.1} s, {import_rate:.0} rows/s, peak RSS {import_rss:.1} MiB"
    ));
    let ratio = import_rate / baseline_rate;
    rows.push(Row {
        case: format!("Import {rows_n}-row CSV, POST /v3/suppression/bounces/import"),
        hush: format!("{import_rate:.0} rows/s ({seconds:.1} s), peak RSS {import_rss:.0} MiB"),
        baseline: format!("{baseline_rate:.0} rows/s"),
        ratio: Some(ratio),
        target: "≥ 0.4×, peak RSS ≤ 150 MiB",
        met: Some(ratio >= 0.4 && import_rss <= RSS_LIMIT_MIB),
    });
    say("loading global unsubscribes: POST /v3/asm/suppressions/global/import");
    let seconds = hush.import(
        "/v3/asm/suppressions/global/import",
        &global_csv,
        global_size,
        rows_n,
    );
    say(&format!("  {seconds:.1} s"));

    // Lookups, each case against the baseline in turn.
    let lookups = Lookups {
        wrk: &wrk,
        script: &root.join("bench/lookup.lua"),
        options: &options,
        baseline: &baseline_bin,
    };
    rows.extend(lookups.measure(hush.port, "", 0.7, true));

    // The Postmark dump of the default stream: its bounces are the rows
    // imported above.
    say("dump: GET /message-streams/outbound/suppressions/dump?SuppressionReason=HardBounce");
    hush.reset_peak_rss();
    let (seconds, entries) = hush.dump(dir.path());
    let dump_rss = hush.peak_rss_mib();
    say(&format!(
        "  {entries} entries in {seconds:.2} s, peak RSS {dump_rss:.1} MiB"
    ));
    assert_eq!(entries, rows_n, "the dump must list every imported bounce");
    rows.push(Row {
        case: format!("Postmark dump of a stream with {entries} entries"),
        hush: format!("{seconds:.2} s, peak RSS {dump_rss:.0} MiB"),
        baseline: "—".into(),
        ratio: None,
        target: "≤ 3 s, peak RSS ≤ 150 MiB",
        met: Some(seconds <= 3.0 && dump_rss <= RSS_LIMIT_MIB),
    });

    // Single-address writes; then hush is killed outright and the file is
    // opened cold: every acknowledged write must be in it.
    say("writes: POST /v3/asm/suppressions/global, one address each");
    let writes = wrk_run(
        &wrk,
        &root.join("bench/write.lua"),
        hush.port,
        options.seconds,
        options.connections,
        &[],
    );
    say(&format!("  {}", writes.describe()));
    hush.kill();
    let acknowledged = writes.requests - writes.non2xx;
    let stored = count_written(&hush.db);
    say(&format!(
        "  after kill -9: {stored} written addresses in the file, {acknowledged} acknowledged"
    ));
    rows.push(Row {
        case: format!(
            "POST /v3/asm/suppressions/global, one address, {} clients",
            options.connections
        ),
        hush: format!(
            "{} ({acknowledged} acknowledged, {stored} in the file after kill -9)",
            writes.describe()
        ),
        baseline: "—".into(),
        ratio: None,
        target: "≥ 10,000 writes/s, each durable",
        met: Some(
            writes.rate() >= 10_000.0
                && writes.non2xx == 0
                && writes.socket_errors == 0
                && stored >= acknowledged,
        ),
    });
    drop(hush);

    // The same lookups on PostgreSQL: a database of its own on the server
    // at BENCH_POSTGRES_URL, loaded through the same two imports.
    match PostgresDatabase::create(&options.postgres_url) {
        Ok(database) => {
            let mut hush = Hush::start(
                &hush_bin,
                &dir.path().join("pg"),
                options.workers,
                &Store::Postgres(database.url.clone()),
            );
            say("PostgreSQL: loading the same rows through the two imports");
            let seconds = hush.import(
                "/v3/suppression/bounces/import",
                &bounces_csv,
                bounces_size,
                rows_n,
            );
            let rate = rows_n as f64 / seconds;
            say(&format!("  bounces: {seconds:.1} s, {rate:.0} rows/s"));
            rows.push(Row {
                case: format!(
                    "Import {rows_n}-row CSV on PostgreSQL, POST /v3/suppression/bounces/import"
                ),
                hush: format!("{rate:.0} rows/s ({seconds:.1} s)"),
                baseline: "—".into(),
                ratio: None,
                target: "stated beside SQLite's",
                met: None,
            });
            let seconds = hush.import(
                "/v3/asm/suppressions/global/import",
                &global_csv,
                global_size,
                rows_n,
            );
            say(&format!(
                "  global unsubscribes: {seconds:.1} s, {:.0} rows/s",
                rows_n as f64 / seconds
            ));
            rows.extend(lookups.measure(hush.port, " on PostgreSQL", 0.5, false));
            hush.kill();
        }
        Err(why) => rows.push(Row {
            case: "The same lookups on PostgreSQL".into(),
            hush: format!("not measured: {why}"),
            baseline: "—".into(),
            ratio: None,
            target: "≥ 0.5×",
            met: None,
        }),
    }

    println!();
    print_table(&rows);
    println!();
    println!(
        "{} rows, {} s per wrk run, {} connections, finished in {:.0} s",
        rows_n,
        options.seconds,
        options.connections,
        started.elapsed().as_secs_f64()
    );
}

/// The lookup cases: each path, hush against the baseline (started for the
/// cases and stopped after them) in the same run.
struct Lookups<'a> {
    wrk: &'a Path,
    script: &'a Path,
    options: &'a Options,
    baseline: &'a Path,
}

impl Lookups<'_> {
    /// One row per lookup path. `target` is the least ratio to the baseline;
    /// the p99 bound applies where `p99_bound` says so (set for the SQLite
    /// cases, docs/benchmarks.md).
    fn measure(&self, hush: u16, on: &str, target: f64, p99_bound: bool) -> Vec<Row> {
        let paths = [
            (
                "GET /v3/asm/suppressions/global/{email}",
                "/v3/asm/suppressions/global/",
            ),
            (
                "GET /v3/suppression/bounces/{email}",
                "/v3/suppression/bounces/",
            ),
        ];
        let rows = self.options.rows.to_string();
        let mut baseline = Baseline::start(self.baseline, self.options.rows, self.options.workers);
        let mut out = Vec::new();
        for (case, path) in paths {
            let run = |port: u16, seconds: u64| {
                wrk_run(
                    self.wrk,
                    self.script,
                    port,
                    seconds,
                    self.options.connections,
                    &[("BENCH_PATH", path), ("BENCH_ROWS", &rows)],
                )
            };
            // A short warm-up of each, so neither pays for cold caches.
            run(baseline.port, 2);
            run(hush, 2);
            say(&format!("lookup{on}: {case}"));
            let base = run(baseline.port, self.options.seconds);
            say(&format!("  baseline {}", base.describe()));
            let ours = run(hush, self.options.seconds);
            say(&format!("  hush     {}", ours.describe()));
            let ratio = ours.rate() / base.rate();
            let p99_ok = !p99_bound || ours.p99_ms() <= 5.0;
            out.push(Row {
                case: format!(
                    "{case}{on}, random, ~50% hits, {} connections",
                    self.options.connections
                ),
                hush: ours.describe(),
                baseline: base.describe(),
                ratio: Some(ratio),
                target: if p99_bound {
                    "≥ 0.7×, p99 ≤ 5 ms"
                } else {
                    "≥ 0.5×"
                },
                met: Some(ratio >= target && p99_ok && ours.socket_errors == 0),
            });
        }
        baseline.stop();
        out
    }
}

/// A database of the bench's own on a PostgreSQL server, dropped at the
/// end. Made with `psql`, so the bench needs no PostgreSQL client library.
struct PostgresDatabase {
    server: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    fn create(server: &str) -> Result<Self, String> {
        let name = format!("hush_bench_{}", std::process::id());
        let (base, _) = server
            .rsplit_once('/')
            .ok_or_else(|| format!("BENCH_POSTGRES_URL {server} names no database"))?;
        Self::psql(server, &format!("DROP DATABASE IF EXISTS {name}"))?;
        Self::psql(server, &format!("CREATE DATABASE {name}"))?;
        Ok(Self {
            server: server.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    fn psql(server: &str, sql: &str) -> Result<(), String> {
        let out = Command::new("psql")
            .args([server, "-qAtc", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "PostgreSQL at {server}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = Self::psql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn say(line: &str) {
    println!("# {line}");
}

fn print_table(rows: &[Row]) {
    println!("| case | hush | baseline (same run) | ratio | target | met |");
    println!("|---|---|---|---:|---|---|");
    for row in rows {
        let ratio = row.ratio.map_or_else(|| "—".into(), |r| format!("{r:.2}×"));
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "—",
        };
        println!(
            "| {} | {} | {} | {ratio} | {} | {met} |",
            row.case, row.hush, row.baseline, row.target
        );
    }
}

fn binary(release: &Path, name: &str) -> PathBuf {
    let path = release.join(name);
    assert!(
        path.exists(),
        "{} is missing: run bench/run.sh, which builds it",
        path.display()
    );
    path
}

fn which(program: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{program} is missing: run bench/run.sh, which installs it"
    );
    PathBuf::from(String::from_utf8(found.stdout).unwrap().trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bounce_reason(n: u64) -> String {
    format!("550 5.1.1 <user{n}@bench.example.com>: Recipient address rejected, user unknown")
}

/// `email,reason` rows with a header, CRLF line ends and quoted reasons, as
/// exports from other providers look. Returns the size in bytes.
fn write_bounces_csv(path: &Path, rows: u64) -> u64 {
    let mut file = BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(b"email,reason\r\n").unwrap();
    for n in 0..rows {
        write!(
            file,
            "user{n}@bench.example.com,\"{}\"\r\n",
            bounce_reason(n)
        )
        .unwrap();
    }
    file.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn write_global_csv(path: &Path, rows: u64) -> u64 {
    let mut file = BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(b"email\r\n").unwrap();
    for n in 0..rows {
        write!(file, "user{n}@bench.example.com\r\n").unwrap();
    }
    file.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// The import baseline: the same rows inserted straight into a SQLite file
/// with hush's schema (created by opening it as a hush store) and pragmas
/// (WAL, `synchronous=FULL`), with one prepared statement and one commit
/// per [`BASELINE_BATCH`] rows. Returns rows per second.
fn import_baseline(path: &Path, rows: u64) -> f64 {
    drop(SqliteBackend::open(SqliteOptions::new(path)).unwrap());
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    let started = Instant::now();
    let mut n = 0;
    while n < rows {
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO suppressions \
                     (tenant, email, group_id, family, class, status, reason, source, origin, created_at) \
                     VALUES ('bench', ?1, 0, ?2, 0, '5.1.1', ?3, NULL, ?4, ?5)",
                )
                .unwrap();
            let end = (n + BASELINE_BATCH).min(rows);
            for m in n..end {
                insert
                    .execute(rusqlite::params![
                        format!("user{m}@bench.example.com"),
                        KindFamily::Bounce.code(),
                        bounce_reason(m),
                        Origin::Recipient.code(),
                        1_700_000_000_000_000_000_i64 + i64::try_from(m).unwrap(),
                    ])
                    .unwrap();
            }
            n = end;
        }
        tx.commit().unwrap();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// Rows the write case stored, read from the file after hush is gone.
fn count_written(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    let count: i64 = conn
        .query_row(
            "SELECT count(*) FROM suppressions WHERE email GLOB '*@write.example.com'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    u64::try_from(count).unwrap()
}

/// Where a benchmarked hush keeps its data.
enum Store {
    /// `hush.db` in the run's folder.
    Sqlite,
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

/// A running hush on its own store, logging at its default level (info) to
/// a file.
struct Hush {
    child: Option<Child>,
    port: u16,
    db: PathBuf,
}

impl Hush {
    fn start(bin: &Path, dir: &Path, workers: usize, store: &Store) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let db = dir.join("hush.db");
        let config = dir.join("hush.toml");
        let storage = match store {
            Store::Sqlite => format!("backend = \"sqlite\"\npath = \"{}\"", db.display()),
            Store::Postgres(url) => format!("backend = \"postgres\"\nurl = \"{url}\""),
        };
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nmax_import_bytes = 4294967296\nworkers = {workers}\n\
                 [storage]\n{storage}\n\
                 [[tenants]]\nid = \"bench\"\n\
                 [[tenants.keys]]\napi = \"v3\"\ntoken = \"{V3_TOKEN}\"\n\
                 [[tenants.keys]]\napi = \"postmark\"\ntoken = \"{POSTMARK_TOKEN}\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("hush.log")).unwrap();
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_for(port, "hush");
        Self {
            child: Some(child),
            port,
            db,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Restarts the kernel's count of the peak resident set (`clear_refs`
    /// 5), so that each case reports its own peak.
    fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").unwrap();
    }

    /// `VmHWM` of `/proc/<pid>/status`, in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024.0
    }

    /// Streams a CSV file as the body of an import and checks that every
    /// row was imported. Returns the seconds it took.
    fn import(&self, path: &str, csv: &Path, size: u64, rows: u64) -> f64 {
        let started = Instant::now();
        let mut socket = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            socket,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {V3_TOKEN}\r\nContent-Type: text/csv\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        std::io::copy(&mut std::fs::File::open(csv).unwrap(), &mut socket).unwrap();
        socket.flush().unwrap();
        let mut reader = BufReader::new(socket);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}{rest}");
        assert!(
            rest.contains(&format!("\"imported\":{rows}")),
            "not every row was imported: {rest}"
        );
        seconds
    }

    /// Downloads the dump of the default stream's bounces to a file with
    /// curl; returns the seconds it took and how many entries it holds.
    fn dump(&self, dir: &Path) -> (f64, u64) {
        let out = dir.join("dump.json");
        let started = Instant::now();
        let curl = Command::new("curl")
            .args(["-sS", "--fail", "-o"])
            .arg(&out)
            .arg("-H")
            .arg(format!("X-Postmark-Server-Token: {POSTMARK_TOKEN}"))
            .arg(format!(
                "http://127.0.0.1:{}/message-streams/outbound/suppressions/dump?SuppressionReason=HardBounce",
                self.port
            ))
            .status()
            .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert!(curl.success(), "the dump failed");
        let body = std::fs::read(&out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).expect("the dump is JSON");
        let entries = value["Suppressions"].as_array().map_or(0, Vec::len);
        std::fs::remove_file(&out).unwrap();
        (seconds, entries as u64)
    }

    /// SIGKILL: no shutdown, no flush; what is in the file is what was
    /// durable.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Hush {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Baseline {
    child: Option<Child>,
    port: u16,
}

impl Baseline {
    fn start(bin: &Path, rows: u64, workers: usize) -> Self {
        let port = free_port();
        let child = Command::new(bin)
            .args([port.to_string(), rows.to_string(), workers.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(port, "the baseline");
        Self {
            child: Some(child),
            port,
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What wrk's `done` hook printed.
struct WrkResult {
    requests: u64,
    duration_us: u64,
    p50_us: u64,
    p99_us: u64,
    non2xx: u64,
    socket_errors: u64,
}

impl WrkResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }

    fn p99_ms(&self) -> f64 {
        self.p99_us as f64 / 1000.0
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            self.rate(),
            self.p50_us as f64 / 1000.0,
            self.p99_ms()
        );
        if self.requests > 0 && self.non2xx > 0 {
            write!(
                text,
                ", {:.0}% 404",
                100.0 * self.non2xx as f64 / self.requests as f64
            )
            .unwrap();
        }
        if self.socket_errors > 0 {
            write!(text, ", {} socket errors", self.socket_errors).unwrap();
        }
        text
    }
}

fn wrk_run(
    wrk: &Path,
    script: &Path,
    port: u16,
    seconds: u64,
    connections: u32,
    env: &[(&str, &str)],
) -> WrkResult {
    let output = Command::new(wrk)
        .args(["-t2", "--timeout", "10s"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .env("BENCH_TOKEN", V3_TOKEN)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .unwrap_or_else(|| panic!("wrk printed no summary: {stdout}"));
    let fields: HashMap<&str, u64> = line
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    WrkResult {
        requests: fields["requests"],
        duration_us: fields["duration_us"],
        p50_us: fields["p50_us"],
        p99_us: fields["p99_us"],
        non2xx: fields["non2xx"],
        socket_errors: fields["socket_errors"],
    }
}
