//! `central-bank`: runs the central bank's validator node and its API, creates networks, runs
//! a local devnet, gives officers their signing command, and lets regulators verify a node's
//! block log from the genesis alone.

use anyhow::{Context, Result, bail};
use cbdc_service::config::{NodeFile, Role};
use cbdc_service::{devnet, init, validator};
use central_bank::{officer, run::start_api, setup};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: about 8 % less CPU per transfer under load
/// (`docs/BENCHMARKS.md`); a node allocates and frees every transaction several times.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Re-check a node's block log from the genesis, trusting no node: every finalization
    /// certificate, transaction signature, execution, state commitment and the supply. Prints
    /// a JSON report on stdout and a one-line summary on stderr; exits 0 when the log checks
    /// out, 1 when a block does not (the report names the first), 2 when it cannot be read.
    Verify {
        /// The node's database: `sqlite://path/to/node.db` or a PostgreSQL URL. Only read.
        #[arg(long)]
        database: String,
        /// The network's genesis file.
        #[arg(long)]
        genesis: PathBuf,
    },
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
fn main() -> Result<ExitCode> {
    cbdc_service::init_logging();
    let done: Result<()> = match Cli::parse().command {
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
        Command::Verify { database, genesis } => return Ok(verify(&database, &genesis)),
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// `verify`: the exit code; the JSON report on stdout, one line for people on stderr.
#[allow(clippy::print_stdout, clippy::print_stderr, reason = "the command's report")]
fn verify(database: &str, genesis: &std::path::Path) -> ExitCode {
    let verified = cbdc_service::init::load_genesis(genesis).and_then(|genesis| {
        // Opening a SQLite path creates the file: a mistyped path must not verify as an empty
        // log that "checks out".
        let postgres = database.starts_with("postgres://") || database.starts_with("postgresql://");
        let path = database.strip_prefix("sqlite://").or_else(|| database.strip_prefix("sqlite:"));
        let path = path.unwrap_or(database);
        if !postgres && !std::path::Path::new(path).is_file() {
            bail!("no SQLite database at {path}");
        }
        // `Store::open` applies only migrations a current node's database already has; the
        // verification itself only reads.
        let mut store = cbdc_store::Store::open(database).context("opening the block log")?;
        Ok(cbdc_node::verify_store(&mut store, &genesis, &mut cbdc_node::verify::os_rng()))
    });
    let (document, code) = match verified {
        Ok(Ok(report)) => {
            eprintln!(
                "block log checks out: {} blocks to height {}, {} transactions, {} certificates \
                 ({} uncertified at the tip), outstanding supply {} minor units",
                report.blocks_checked,
                report.final_height,
                report.transactions,
                report.certificates_checked,
                report.uncertified_tail,
                report.supply.outstanding().minor(),
            );
            (json!({ "ok": true, "report": report_json(&report) }), 0)
        }
        Ok(Err(cbdc_node::VerifyError::Failed(f))) => {
            eprintln!("block log does NOT check out: {f}");
            let failure = json!({
                "height": f.height,
                "hash": f.hash.map(hex::encode),
                "reason": f.reason.code(),
                "detail": f.detail,
            });
            (json!({ "ok": false, "failure": failure, "verified": report_json(&f.verified) }), 1)
        }
        Ok(Err(error)) => {
            eprintln!("cannot verify the block log: {error}");
            (json!({ "ok": false, "error": error.to_string() }), 2)
        }
        Err(error) => {
            eprintln!("cannot verify the block log: {error:#}");
            (json!({ "ok": false, "error": format!("{error:#}") }), 2)
        }
    };
    println!("{document:#}");
    ExitCode::from(code)
}

fn report_json(r: &cbdc_node::VerifyReport) -> Value {
    let epochs: Vec<Value> = r
        .epochs
        .iter()
        .map(|e| {
            json!({
                "epoch": e.epoch,
                "first_height": e.first_height,
                "last_height": e.last_height,
                "certificates": e.certificates,
                "validators": e.validators.iter().map(|k| k.to_hex()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "chain_id": r.chain_id,
        "genesis_hash": hex::encode(r.genesis_hash),
        "blocks_checked": r.blocks_checked,
        "transactions": r.transactions,
        "final_height": r.final_height,
        "final_hash": hex::encode(r.final_hash),
        "state_root": hex::encode(r.state_root),
        "supply_minted_minor": r.supply.minted.minor(),
        "supply_burned_minor": r.supply.burned.minor(),
        "supply_outstanding_minor": r.supply.outstanding().minor(),
        "certificates_checked": r.certificates_checked,
        "certified_by_descendant": r.certified_by_descendant,
        "last_certified_height": r.last_certified_height,
        "uncertified_tail": r.uncertified_tail,
        "epochs": epochs,
    })
}
