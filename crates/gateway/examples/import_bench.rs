//! Benchmark of the v3 CSV import: generates a CSV file, starts a release
//! `hush` on its own SQLite file, uploads the file over a plain socket and
//! reports rows per second and the gateway's peak RSS (`VmHWM` from
//! `/proc/<pid>/status`, Linux only).
//!
//! ```text
//! cargo build --release -p hush
//! cargo run --release -p hush --example import_bench -- 100000 1000000
//! ```
//!
//! Each row count runs against a fresh gateway, so the peaks can be
//! compared: streaming means the peak does not grow with the file. Not part
//! of `cargo test`: it takes minutes and measures the machine.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, BufWriter, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "SG.bench";

fn main() {
    let counts: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("row counts are numbers"))
        .collect();
    let counts = if counts.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        counts
    };
    let hush = release_binary();
    println!("| rows | file size | seconds | rows/s | peak RSS before | peak RSS after |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for rows in counts {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("import.csv");
        let size = write_csv(&csv, rows);
        let mut gateway = start(&hush, dir.path());
        let before = peak_rss_kib(gateway.child.id());
        let started = Instant::now();
        let answer = upload(gateway.port, &csv, size);
        let seconds = started.elapsed().as_secs_f64();
        let after = peak_rss_kib(gateway.child.id());
        assert!(
            answer.contains(&format!("\"imported\":{rows}")),
            "unexpected answer: {answer}"
        );
        println!(
            "| {rows} | {:.1} MiB | {seconds:.1} | {:.0} | {:.1} MiB | {:.1} MiB |",
            size as f64 / 1_048_576.0,
            rows as f64 / seconds,
            before as f64 / 1024.0,
            after as f64 / 1024.0,
        );
        gateway.child.kill().unwrap();
        gateway.child.wait().unwrap();
    }
}

fn release_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/hush");
    assert!(
        path.exists(),
        "build it first: cargo build --release -p hush ({} is missing)",
        path.display()
    );
    path
}

/// `email,reason` rows with a header, CRLF line ends and quoted reasons, as
/// exports from other providers look. Returns the size in bytes.
fn write_csv(path: &Path, rows: u64) -> u64 {
    let mut file = BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(b"email,reason\r\n").unwrap();
    for n in 0..rows {
        write!(
            file,
            "user{n}@bench.example.com,\"550 5.1.1 <user{n}@bench.example.com>: Recipient address rejected, user unknown\"\r\n"
        )
        .unwrap();
    }
    file.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

struct Gateway {
    child: Child,
    port: u16,
}

fn start(hush: &Path, dir: &Path) -> Gateway {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("hush.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nmax_import_bytes = 4294967296\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n[log]\nlevel = \"warn\"\n[[tenants]]\nid = \"bench\"\n  [[tenants.keys]]\n  api = \"v3\"\n  token = \"{TOKEN}\"\n",
            dir.join("hush.db").display()
        ),
    )
    .unwrap();
    let child = Command::new(hush)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "hush did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Gateway { child, port }
}

/// Streams the file as the request body and returns the response body.
fn upload(port: u16, csv: &Path, size: u64) -> String {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        socket,
        "POST /v3/suppression/bounces/import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: text/csv\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    std::io::copy(&mut std::fs::File::open(csv).unwrap(), &mut socket).unwrap();
    socket.flush().unwrap();
    let mut reader = BufReader::new(socket);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    rest.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

/// The process's peak resident set, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
