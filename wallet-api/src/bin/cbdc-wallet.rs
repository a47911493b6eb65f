//! `cbdc-wallet`: a command-line wallet for self-custody keys, over a bank's wallet API.
//!
//! The signing key (an Ed25519 seed, hex, mode 0600) stays on this machine: payments are built
//! and signed here and sent as signed transactions. The access token from `login` is kept in a
//! file (mode 0600) that the other commands read. Answers are JSON on stdout; errors go to
//! stderr with a non-zero exit status. Secrets (seed, password, token) are never printed, and
//! the password is never taken from the command line.

use anyhow::{Context, Result, anyhow, bail};
use cbdc_ledger::{Amount, Leg, WalletId};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wallet_api::client::{ClientError, WalletClient, derived_tx_id, signed_transfer};
use wallet_api::model::{Custody, OpenWalletRequest, WalletClass};

/// Longest password or token file read, in bytes.
const MAX_SECRET_FILE_BYTES: u64 = 16 * 1024;
/// Longest CA file read, in bytes.
const MAX_CA_FILE_BYTES: u64 = 256 * 1024;
/// Where `login` looks for the password when no file is given.
const PASSWORD_ENV: &str = "CBDC_WALLET_PASSWORD";

/// A self-custody wallet for a bank's CBDC wallet API.
#[derive(Debug, Parser)]
#[command(name = "cbdc-wallet", version, about, long_about = None)]
struct Cli {
    /// The bank's wallet API, `http://host:port` or `https://host:port`.
    #[arg(long, global = true, env = "CBDC_WALLET_API")]
    api: Option<String>,
    /// PEM of the CA that issued the bank's server certificate (for `https`).
    #[arg(long, global = true, env = "CBDC_WALLET_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Where `login` stores the access token (mode 0600) and the other commands read it.
    #[arg(
        long,
        global = true,
        env = "CBDC_WALLET_TOKEN_FILE",
        default_value = "cbdc-wallet.token"
    )]
    token_file: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generates a signing key (Ed25519 seed, mode 0600; never overwrites) and prints its
    /// public key.
    Keygen {
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Logs in and stores the access token in the token file. The password comes from
    /// `--password-file` or the CBDC_WALLET_PASSWORD environment variable.
    Login {
        #[arg(long)]
        username: String,
        /// A file holding the password (one trailing newline is ignored).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Registers the key as a new self-custody wallet and prints the wallet.
    Register {
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long, value_enum, default_value_t = Class::Retail)]
        class: Class,
    },
    /// Lists your wallets at this bank.
    Wallets,
    /// Shows a wallet's balance and remaining limits.
    Balance {
        #[arg(long)]
        wallet: String,
    },
    /// Signs a payment locally and submits it; prints the receipt.
    Pay {
        #[arg(long)]
        key_file: PathBuf,
        /// The paying wallet (yours, registered with this key).
        #[arg(long)]
        from: String,
        /// The payee's wallet.
        #[arg(long)]
        to: String,
        /// In minor units (cents).
        #[arg(long)]
        amount: u64,
        /// Makes a retry safe: the same key never pays twice. Default: the transaction id.
        /// With a key given, the transaction id is derived from it and the paying wallet.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Shows a payment's receipt (to follow a pending one).
    Payment {
        #[arg(long)]
        tx_id: String,
    },
    /// Lists a wallet's movements, newest first.
    History {
        #[arg(long)]
        wallet: String,
        #[arg(long)]
        limit: Option<u32>,
        /// The `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Class {
    Retail,
    Merchant,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cbdc-wallet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Keygen { key_file } => {
            let seed = cbdc_service::keys::generate(key_file)?;
            let key = cbdc_ledger::SigningKey::from_seed(&seed)
                .map_err(|_| anyhow!("the generated seed is not an Ed25519 seed"))?;
            emit(&serde_json::json!({
                "key_file": key_file,
                "public_key": key.public_key().to_hex(),
            }))
        }
        Command::Login { username, password_file } => {
            let password = password(password_file.as_deref())?;
            let mut client = client(&cli, false)?;
            let token = client.login(username, &password)?;
            write_private(&cli.token_file, format!("{}\n", token.access_token).as_bytes())?;
            emit(&serde_json::json!({
                "username": username,
                "role": token.role,
                "expires_in": token.expires_in,
                "token_file": cli.token_file,
            }))
        }
        Command::Register { key_file, class } => {
            let key = cbdc_service::keys::signing_key(key_file)?;
            let class = match class {
                Class::Retail => WalletClass::Retail,
                Class::Merchant => WalletClass::Merchant,
            };
            let request = OpenWalletRequest {
                custody: Custody::SelfCustody,
                public_key: Some(key.public_key().to_hex()),
                class: Some(class),
            };
            emit(&client(&cli, true)?.open_wallet(&request)?)
        }
        Command::Wallets => emit(&client(&cli, true)?.wallets()?),
        Command::Balance { wallet } => emit(&client(&cli, true)?.balance(wallet)?),
        Command::Pay { key_file, from, to, amount, idempotency_key } => {
            pay(&cli, key_file, from, to, *amount, idempotency_key.as_deref())
        }
        Command::Payment { tx_id } => emit(&client(&cli, true)?.payment(tx_id)?),
        Command::History { wallet, limit, cursor } => {
            emit(&client(&cli, true)?.history(wallet, *limit, cursor.as_deref())?)
        }
    }
}

fn pay(
    cli: &Cli,
    key_file: &Path,
    from: &str,
    to: &str,
    amount: u64,
    idempotency_key: Option<&str>,
) -> Result<()> {
    let key = cbdc_service::keys::signing_key(key_file)?;
    let from = WalletId::from_hex(from).map_err(|_| anyhow!("--from is not a wallet id"))?;
    let to = WalletId::from_hex(to).map_err(|_| anyhow!("--to is not a wallet id"))?;
    let amount = Amount::from_minor(amount).map_err(|_| anyhow!("--amount is too large"))?;
    if amount.is_zero() {
        bail!("--amount must be positive");
    }
    let client = client(cli, true)?;
    let network = client.network()?;
    let (id, idempotency_key) = match idempotency_key {
        Some(k) => (derived_tx_id(from, k), k.to_string()),
        None => {
            let id = cbdc_ledger::TxId(cbdc_service::keys::random_bytes::<16>()?);
            (id, id.to_hex())
        }
    };
    let request = signed_transfer(&key, &network, id, Leg { from, to, amount });
    match client.pay_signed(&idempotency_key, &request) {
        Ok((_, receipt)) => emit(&receipt),
        // A retry signed at a later height is another body under the same key: the bank
        // refuses it, and the first attempt's receipt (same derived id) is the answer.
        Err(error @ ClientError::Problem { status: 409, .. }) => {
            let receipt = client.payment(&id.to_hex()).map_err(|_| error)?;
            let same = receipt.from_wallet == from.to_hex()
                && receipt.to_wallet == to.to_hex()
                && receipt.amount_minor == amount.minor();
            if !same {
                bail!("{idempotency_key:?} was used for another payment ({})", receipt.tx_id);
            }
            emit(&receipt)
        }
        Err(error) => Err(error.into()),
    }
}

/// A client of `--api`, with the stored token when `authenticated`.
fn client(cli: &Cli, authenticated: bool) -> Result<WalletClient> {
    let api = cli.api.as_deref().context("give --api or set CBDC_WALLET_API")?;
    let ca = match &cli.ca_file {
        Some(path) => Some(read_bounded(path, MAX_CA_FILE_BYTES)?),
        None => None,
    };
    let mut client = WalletClient::new(api, ca.as_deref())?;
    if authenticated {
        let token = read_bounded(&cli.token_file, MAX_SECRET_FILE_BYTES)
            .with_context(|| "no token: run `cbdc-wallet login` first")?;
        let token = token.trim();
        if token.is_empty() {
            bail!("{} is empty: run `cbdc-wallet login`", cli.token_file.display());
        }
        client.set_token(token);
    }
    Ok(client)
}

/// The password, from a file or the environment, never from the command line.
fn password(file: Option<&Path>) -> Result<String> {
    let password = match file {
        Some(path) => {
            let text = read_bounded(path, MAX_SECRET_FILE_BYTES)?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            text.strip_suffix('\r').unwrap_or(text).to_string()
        }
        None => std::env::var(PASSWORD_ENV)
            .map_err(|_| anyhow!("give --password-file or set {PASSWORD_ENV}"))?,
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// Reads a UTF-8 file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > max {
        bail!("{} is larger than {max} bytes", path.display());
    }
    Ok(text)
}

/// Writes `contents` to `path`, readable by its owner only, replacing what was there.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    // An existing file keeps its mode on open: tighten it before the secret goes in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

#[allow(clippy::print_stdout, reason = "the command's answer is its JSON on stdout")]
fn emit<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn there_is_no_password_option() {
        let login = Cli::command().find_subcommand("login").cloned().unwrap();
        assert!(login.get_arguments().all(|a| a.get_id() != "password"));
    }
}
