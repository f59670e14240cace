#!/usr/bin/env bash
# The hush benchmark (docs/benchmarks.md): installs wrk if it is missing,
# builds the release binaries, then runs every case next to its baseline
# and prints one table. Knobs: BENCH_ROWS, BENCH_SECONDS, BENCH_CONNECTIONS,
# BENCH_WORKERS (see bench/src/main.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "# installing wrk (Debian package)"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq wrk
fi
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

cargo build --release -p hush -p hush-bench
exec target/release/hush-bench
