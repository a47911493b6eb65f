//! `central-bank`: runs the central bank's validator node and its API, creates networks, runs
//! a local devnet, and gives officers their signing command.

use anyhow::{Context, Result, bail};
use cbdc_service::config::{NodeFile, Role};
use cbdc_service::{devnet, init, validator};
use central_bank::{officer, run::start_api, setup};
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
    /// Create a network: genesis, every key, one configuration file per node, the central
    /// bank's CA and certificates, and its first staff accounts.
    Init(init::InitArgs),
    /// Run this central bank's validator node and API from its configuration file.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Create (first time) and run a local network: the central bank and the intermediaries.
    Devnet(devnet::DevnetArgs),
    /// Officer commands: sign a request's transaction with your own key, on your machine.
    #[command(subcommand)]
    Officer(officer::OfficerCommand),
    /// Audit log commands.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify the hash chain of the audit log in the central bank's database.
    Verify {
        #[arg(long)]
        config: PathBuf,
    },
}

#[allow(clippy::print_stdout, reason = "commands report what they did")]
fn main() -> Result<()> {
    cbdc_service::init_logging();
    match Cli::parse().command {
        Command::Init(args) => {
            let nodes = init::init(&args)?;
            setup::init_central_bank(&args.dir, &nodes, args.officers)?;
            println!("created {} nodes in {}", nodes.len(), args.dir.display());
            for n in nodes {
                println!("  {:<14} {}", n.name, n.config.display());
            }
            println!("  staff passwords in {}", args.dir.join("credentials").display());
            Ok(())
        }
        Command::Run { config } => {
            validator::run_as_with(Role::CentralBank, &config, Some(Box::new(start_api)))
        }
        Command::Devnet(args) => {
            let me = std::env::current_exe()?;
            let intermediary = me.with_file_name("intermediary");
            if !intermediary.exists() {
                bail!(
                    "{} not found: build it with `cargo build -p intermediary`",
                    intermediary.display()
                );
            }
            devnet::run(&args, &me, &intermediary, &|dir, nodes| {
                setup::init_central_bank(dir, nodes, 3)
            })
        }
        Command::Officer(cmd) => officer::run(cmd),
        Command::Audit(AuditCommand::Verify { config }) => {
            let file = NodeFile::load(&config)?;
            let mut store = cbdc_store::Store::open(&file.node.database_url)
                .context("opening the central bank's database")?;
            match store.verify_audit()? {
                cbdc_store::AuditVerification::Intact { entries, head } => {
                    println!("audit log intact: {entries} entries, head {}", hex::encode(head));
                    Ok(())
                }
                cbdc_store::AuditVerification::Broken { seq, reason } => {
                    bail!("audit log broken at entry {seq}: {reason}")
                }
            }
        }
    }
}
