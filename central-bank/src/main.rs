//! `central-bank`: runs the central bank's validator node, creates networks, runs a local devnet.

use anyhow::{Result, bail};
use cbdc_service::config::Role;
use cbdc_service::{devnet, init, validator};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "central-bank", version, about = "The central bank's node of the CBDC network")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a network: genesis, every key, one configuration file per node.
    Init(init::InitArgs),
    /// Run this central bank's validator node from its configuration file.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Create (first time) and run a local network: the central bank and the intermediaries.
    Devnet(devnet::DevnetArgs),
}

#[allow(clippy::print_stdout, reason = "init reports what it created")]
fn main() -> Result<()> {
    cbdc_service::init_logging();
    match Cli::parse().command {
        Command::Init(args) => {
            let nodes = init::init(&args)?;
            println!("created {} nodes in {}", nodes.len(), args.dir.display());
            for n in nodes {
                println!("  {:<14} {}", n.name, n.config.display());
            }
            Ok(())
        }
        Command::Run { config } => validator::run_as(Role::CentralBank, &config),
        Command::Devnet(args) => {
            let me = std::env::current_exe()?;
            let intermediary = me.with_file_name("intermediary");
            if !intermediary.exists() {
                bail!(
                    "{} not found: build it with `cargo build -p intermediary`",
                    intermediary.display()
                );
            }
            devnet::run(&args, &me, &intermediary)
        }
    }
}
