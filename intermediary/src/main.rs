//! `intermediary`: runs a commercial bank's validator node with its operations and wallet APIs.

use anyhow::Result;
use cbdc_service::config::Role;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// mimalloc instead of glibc's malloc: about 8 % less CPU per transfer under load
/// (`docs/BENCHMARKS.md`); a node allocates and frees every transaction several times.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "intermediary", version, about = "A commercial bank's node of the CBDC network")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run this bank's validator node and its APIs from its configuration file.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> Result<()> {
    cbdc_service::init_logging();
    match Cli::parse().command {
        Command::Run { config } => cbdc_service::validator::run_as_with(
            Role::Intermediary,
            &config,
            Some(Box::new(intermediary::run::start_api)),
        ),
    }
}
