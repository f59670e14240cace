//! Starting and stopping `hush` processes for tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const HUSH: &str = env!("CARGO_BIN_EXE_hush");

/// The repository root, for the shipped `config/hush.toml`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A loopback port nobody listens on, for tests of an unreachable
/// upstream. Gateways never use it: they bind port 0 and report the port
/// they got ([`Gateway::start`]), so no other process can take it between.
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config with one tenant `demo` and the v3 keys of the default config,
/// storing in `dir`, listening on a port the system picks.
pub fn config_toml(dir: &Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_timeout_secs = 5
[storage]
backend = "sqlite"
path = "{db}"
[log]
format = "json"
[[tenants]]
id = "demo"
  [[tenants.keys]]
  api = "v3"
  token = "demo-v3-key"
  [[tenants.keys]]
  api = "v3"
  token = "demo-v3-readonly"
  scopes = ["suppressions.read"]
[[tenants]]
id = "other"
  [[tenants.keys]]
  api = "v3"
  token_sha256 = "{other}"
"#,
        db = dir.join("hush.db").display(),
        other = "27c05ce3f2f50102dce55afe0f1b96f1a354c6d2b80a6e54bbe4b3bc02b954de",
    )
}

/// A gateway on its own SQLite file and port, with the tenants given as
/// TOML (`[[tenants]]` tables). The folder is removed when dropped.
#[derive(Debug)]
pub struct TestGateway {
    pub gateway: Gateway,
    /// Holds the SQLite file and config; removed on drop.
    _dir: tempfile::TempDir,
}

impl TestGateway {
    pub async fn spawn(tenants_toml: &str) -> Self {
        Self::spawn_in(tempfile::tempdir().unwrap(), tenants_toml).await
    }

    /// Like [`Self::spawn`], in a folder the test has prepared (a
    /// `hush.db` written beforehand, for data no API can create).
    pub async fn spawn_in(dir: tempfile::TempDir, tenants_toml: &str) -> Self {
        let config = dir.path().join("hush.toml");
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n[log]\nformat = \"json\"\n{tenants_toml}",
            dir.path().join("hush.db").display()
        );
        std::fs::write(&config, toml).unwrap();
        let gateway = Gateway::start(&config, &[]).await;
        Self { gateway, _dir: dir }
    }

    pub fn base(&self) -> &str {
        &self.gateway.base
    }

    /// The config file the gateway was started with.
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("hush.toml")
    }

    /// SIGTERM, then the same config and store started again.
    pub async fn restart(mut self) -> Self {
        self.gateway.terminate();
        let config = self._dir.path().join("hush.toml");
        self.gateway = Gateway::start(&config, &[]).await;
        self
    }
}

/// A running gateway. Killed when dropped.
#[derive(Debug)]
pub struct Gateway {
    pub child: Child,
    pub base: String,
    pub stderr_path: PathBuf,
}

impl Gateway {
    /// Starts `hush serve --config FILE` with extra environment, and waits
    /// until `/healthz` answers. The config's listen port is 0 (or set so
    /// through the environment): hush binds a port the system picks and
    /// logs it, and the test reads it from there.
    pub async fn start(config: &Path, env: &[(&str, &str)]) -> Self {
        // Logs go to Cargo's scratch folder, never beside the config: the
        // shipped config lives in the repository.
        let stderr_path = tempfile::Builder::new()
            .prefix("hush-")
            .suffix(".log")
            .tempfile_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .into_temp_path()
            .keep()
            .unwrap();
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut command = Command::new(HUSH);
        command
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        let mut gateway = Self {
            child,
            base: String::new(),
            stderr_path,
        };
        gateway.base = format!("http://{}", gateway.bound_addr().await);
        gateway.wait_healthy().await;
        gateway
    }

    /// The address hush bound, from its `listening` line (JSON or text);
    /// loopback when it listens on every address.
    async fn bound_addr(&mut self) -> std::net::SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.stderr();
            let addr = log
                .lines()
                .filter(|l| l.contains("listening"))
                .find_map(
                    |line| match serde_json::from_str::<serde_json::Value>(line) {
                        Ok(json) => json["addr"].as_str().map(str::to_owned),
                        Err(_) => line
                            .split_whitespace()
                            .find_map(|w| w.strip_prefix("addr="))
                            .map(str::to_owned),
                    },
                );
            if let Some(mut addr) = addr.and_then(|a| a.parse::<std::net::SocketAddr>().ok()) {
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                return addr;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("hush exited with {status} before listening: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "hush did not listen in time: {log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(res) = client.get(format!("{}/healthz", self.base)).send().await
                && res.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "hush exited with {status} before answering: {}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "hush did not answer in time: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The log once it holds `needle`, or as it is after 10 s. hush writes
    /// its log from a thread of its own, so a line may land just after the
    /// response that it describes.
    pub async fn log_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.stderr();
            if log.contains(needle) || Instant::now() >= deadline {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "hush ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `hush serve` expecting it to refuse to start; returns the exit code
/// and stderr.
pub fn refused_start(config: Option<&Path>, env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(HUSH);
    command.arg("serve");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.env_remove("RUST_LOG").output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// One tenant `demo` with a key for each API: `v3-key`, `pm-token`,
/// `sp-key`.
pub const ONE_TENANT_THREE_APIS: &str = r#"
[[tenants]]
id = "demo"
  [[tenants.keys]]
  api = "v3"
  token = "v3-key"
  [[tenants.keys]]
  api = "postmark"
  token = "pm-token"
  [[tenants.keys]]
  api = "sendpost"
  token = "sp-key"
"#;

pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// Who a test's direct writes to a store are journaled as.
pub fn seeder() -> hush_model::Actor {
    hush_model::Actor::new(hush_model::Door::ADMIN).with_key("e2e-seed")
}

/// A Postmark dump's body as address → (reason, origin).
pub fn dump_rows(body: &serde_json::Value) -> std::collections::BTreeMap<String, (String, String)> {
    body["Suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap().to_owned();
            (
                field("EmailAddress"),
                (field("SuppressionReason"), field("Origin")),
            )
        })
        .collect()
}

/// A SendPost listing's body as address → its reasons, sorted.
pub fn sendpost_rows(body: &serde_json::Value) -> std::collections::BTreeMap<String, Vec<i64>> {
    let mut rows: std::collections::BTreeMap<String, Vec<i64>> = std::collections::BTreeMap::new();
    for row in body.as_array().unwrap() {
        rows.entry(row["email"].as_str().unwrap().to_owned())
            .or_default()
            .push(row["reason"].as_i64().unwrap());
    }
    rows.values_mut().for_each(|r| r.sort_unstable());
    rows
}
