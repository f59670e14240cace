//! `hush`: the suppression gateway.

mod config;
mod copy;
mod guard;
mod log_lines;
mod metrics;
mod mirror_config;
mod operator;
mod server;
mod telemetry;
mod upstream;
mod webhook_config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: under the lookup benchmark
/// glibc's per-thread arenas grew and trimmed their heaps with an `mprotect`
/// for every other request, and allocation was three times the baseline's
/// share of a request (docs/benchmarks.md). Built with `no_thp`: mimalloc
/// otherwise asks for transparent huge pages on its arenas, and each 2 MiB
/// page counts whole in RSS however little of it is used; the 1,000,000-
/// entry dump's peak went from 143–158 MiB to 95 MiB without them, the
/// import's from 118 to 72, lookups unchanged (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "hush",
    version,
    about = "A suppression gateway: one engine, three wire-compatible APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The config file; without it, config/hush.toml is read if present.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Copy every group and suppression of every tenant from one store to
    /// another. Idempotent: re-run it to complete an interrupted copy.
    Copy {
        /// The source: sqlite:PATH, postgres:URL or upstream:PROVIDER.
        #[arg(long, value_name = "STORE")]
        from: copy::StoreSpec,
        /// The destination: sqlite:PATH or postgres:URL (created or
        /// migrated as needed), or upstream:PROVIDER.
        #[arg(long, value_name = "STORE")]
        to: copy::StoreSpec,
        /// The config naming the upstream (`[storage.upstream]`) and its
        /// tenants' credentials; read only for upstream:PROVIDER. Without
        /// it, config/hush.toml is read if present.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Suppressions read and written per transaction.
        #[arg(long, default_value_t = 5_000)]
        batch: u32,
    },
    /// Print a tenant's journal, newest first, one JSON object a line.
    History {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long)]
        tenant: String,
        /// Only this address's changes.
        #[arg(long)]
        email: Option<String>,
        /// RFC 3339: changes at or after this time.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339: changes at or before this time.
        #[arg(long)]
        until: Option<String>,
        /// Only changes through this door (v3, postmark, import, restore…).
        #[arg(long)]
        door: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// A tenant's mirrors (docs/mirrors.md).
    Mirror {
        #[command(subcommand)]
        action: MirrorAction,
    },
    /// Undo every change of a tenant in a time window, newest first.
    Restore {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long)]
        tenant: String,
        /// RFC 3339: undo changes at or after this time.
        #[arg(long)]
        since: String,
        /// RFC 3339; defaults to now.
        #[arg(long)]
        until: Option<String>,
        /// Only this address's changes.
        #[arg(long)]
        email: Option<String>,
        /// Count what would be undone, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MirrorAction {
    /// Print where each of the tenant's mirrors stands, one JSON object a
    /// line, as the admin API shows it.
    Status {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long)]
        tenant: String,
    },
    /// Compare the tenant with the mirror's provider, address by address,
    /// and push the difference. Run it with --dry-run first.
    Resync {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        mirror: String,
        /// Count the difference, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Push a mirror's recorded refusals again; forget those it takes.
    Retry {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        mirror: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Copy {
            from,
            to,
            batch,
            config,
        } => copy_stores(from, to, batch, config.as_deref()),
        Command::History {
            config,
            tenant,
            email,
            since,
            until,
            door,
            limit,
        } => operate("history", config.as_deref(), |config| {
            Box::pin(operator::history(
                config,
                operator::HistoryArgs {
                    tenant,
                    email,
                    since,
                    until,
                    door,
                    limit,
                },
            ))
        }),
        Command::Mirror {
            action: MirrorAction::Status { config, tenant },
        } => operate("mirror status", config.as_deref(), |config| {
            Box::pin(operator::mirror_status(config, tenant))
        }),
        Command::Mirror {
            action:
                MirrorAction::Retry {
                    config,
                    tenant,
                    mirror,
                },
        } => operate("mirror retry", config.as_deref(), |config| {
            Box::pin(operator::mirror_retry(config, tenant, mirror))
        }),
        Command::Mirror {
            action:
                MirrorAction::Resync {
                    config,
                    tenant,
                    mirror,
                    dry_run,
                },
        } => operate("mirror resync", config.as_deref(), |config| {
            Box::pin(operator::mirror_resync(config, tenant, mirror, dry_run))
        }),
        Command::Restore {
            config,
            tenant,
            since,
            until,
            email,
            dry_run,
        } => operate("restore", config.as_deref(), |config| {
            Box::pin(operator::restore(
                config,
                operator::RestoreArgs {
                    tenant,
                    since,
                    until,
                    email,
                    dry_run,
                },
            ))
        }),
    }
}

/// The runtime of a one-shot command (`copy`, `history`, `restore`);
/// `None`, said on stderr, when it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(err) => {
            eprintln!("hush: cannot start the runtime: {err}");
            None
        }
    }
}

type Work<'a> = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// Runs an operator command on the config's store.
fn operate(
    name: &str,
    file: Option<&std::path::Path>,
    work: impl for<'a> FnOnce(&'a config::Config) -> Work<'a>,
) -> ExitCode {
    let config = match config::Config::load(file) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("hush {name}: {err}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(work(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hush {name}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn copy_stores(
    from: copy::StoreSpec,
    to: copy::StoreSpec,
    batch: u32,
    file: Option<&std::path::Path>,
) -> ExitCode {
    let config = if from.is_upstream() || to.is_upstream() {
        match config::Config::load(file) {
            Ok(config) => Some(config),
            Err(err) => {
                eprintln!("hush copy: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(copy::run(from, to, batch, config.as_ref())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hush copy: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(file: Option<&std::path::Path>) -> ExitCode {
    let config = match config::Config::load(file) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("hush: {err}");
            return ExitCode::from(2);
        }
    };
    let log = telemetry::init(&config.log);
    let runtime = actix_web::rt::System::new();
    let code = match runtime.block_on(server::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "hush stopped with an error");
            eprintln!("hush: {err:#}");
            ExitCode::FAILURE
        }
    };
    // Every queued log line is written before the process exits.
    drop(log);
    code
}
