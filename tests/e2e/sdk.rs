//! The real SDKs, installed from their registries (PyPI, npm) by the test
//! itself, run as scripts against a running gateway.
//!
//! Environments are kept under Cargo's per-target temporary folder and
//! reused while the package list is unchanged, so only the first run on a
//! machine downloads anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Folder of the SDK scripts.
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk")
}

fn env_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk-envs")
}

/// One installer at a time: pip and npm caches are shared.
fn install_lock() -> &'static Mutex<()> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| Mutex::new(()))
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Python virtual environment named `name` with exactly these pinned
/// packages; returns its interpreter.
pub fn python_env(name: &str, packages: &[&str]) -> PathBuf {
    let _guard = install_lock()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = env_root().join(format!("py-{name}"));
    let python = dir.join("bin/python");
    let stamp = dir.join("hush-packages.txt");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(env_root()).unwrap();
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&dir),
        "python3 -m venv",
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages),
        &format!("pip install {wanted}"),
    );
    std::fs::write(&stamp, wanted).unwrap();
    python
}

/// An npm folder named `name` with exactly these pinned packages; returns
/// its `node_modules`, for `NODE_PATH`.
pub fn node_env(name: &str, packages: &[&str]) -> PathBuf {
    let _guard = install_lock()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = env_root().join(format!("node-{name}"));
    let modules = dir.join("node_modules");
    let stamp = dir.join("hush-packages.txt");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && modules.exists()
    {
        return modules;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("package.json"), "{\"private\":true}").unwrap();
    run(
        Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .args(packages),
        &format!("npm install {wanted}"),
    );
    std::fs::write(&stamp, wanted).unwrap();
    modules
}

/// Runs an SDK script (`python` or `node` and a file under `tests/sdk`) with
/// the gateway's address in `HUSH_URL` plus `env`; fails the test with the
/// script's output if it exits non-zero. Returns its stdout.
pub fn run_script(program: &Path, script: &str, base_url: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(program);
    command
        .arg(scripts().join(script))
        .env("HUSH_URL", base_url);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{script}: cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
