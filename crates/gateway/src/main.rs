//! `hush`: the suppression gateway.

mod config;
mod server;
mod telemetry;
mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
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
    telemetry::init(&config.log);
    let runtime = actix_web::rt::System::new();
    match runtime.block_on(server::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "hush stopped with an error");
            eprintln!("hush: {err:#}");
            ExitCode::FAILURE
        }
    }
}
