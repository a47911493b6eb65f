//! The genesis file: the chain id, the officers and their threshold, the initial banks (bank 0 is
//! the central bank) with their keys and quotas, and policy. The initial validators are the
//! validator keys of the genesis banks. JSON on disk; its hash is over the canonical binary
//! encoding, so formatting of the JSON does not change the chain's identity.

use crate::codec::{Encode, Writer, encode_seq};
use crate::crypto::{domain, hash_parts};
use crate::execute::float_wallet_record;
use crate::policy::{Policy, PolicyError};
use crate::state::{Bank, MAX_CHAIN_ID_BYTES, State};
use crate::tx::MAX_BANK_NAME_BYTES;
use crate::types::{Amount, BankId, BankStatus, Digest, PublicKey, WalletId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// At most this many banks in a genesis file.
pub const MAX_GENESIS_BANKS: usize = 256;

/// Why a genesis file is unusable.
#[derive(Debug, Error)]
pub enum GenesisError {
    #[error("genesis is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("chain id must be 1 to {MAX_CHAIN_ID_BYTES} printable ASCII characters")]
    ChainId,
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    #[error(
        "genesis must list 1 to {MAX_GENESIS_BANKS} banks, including bank 0 (the central bank)"
    )]
    Banks,
    #[error("bank {0} appears twice, or shares a float wallet or validator key with another")]
    DuplicateBank(BankId),
    #[error("bank {0} has an empty or over-long name")]
    BankName(BankId),
    #[error("bank {0} has an endpoint that is not a well-formed host:port")]
    Endpoint(BankId),
}

/// A bank present from the start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisBank {
    pub id: BankId,
    pub name: String,
    pub admin_key: PublicKey,
    pub validator_key: PublicKey,
    /// Where the bank's validator accepts peer connections (`host:port`); may be empty when
    /// every node's configuration lists the peers' addresses.
    #[serde(default)]
    pub endpoint: String,
    pub float_wallet: WalletId,
    pub float_key: PublicKey,
    pub quota_minor: Amount,
}

/// The genesis of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: String,
    /// Block time of height 0, in milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    pub policy: Policy,
    pub banks: Vec<GenesisBank>,
}

impl Genesis {
    pub fn from_json(json: &str) -> Result<Genesis, GenesisError> {
        let g: Genesis = serde_json::from_str(json)?;
        g.validate()?;
        Ok(g)
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The chain's identity: the parent hash of block 1.
    pub fn hash(&self) -> Digest {
        let mut w = Writer::new();
        w.var_bytes(self.chain_id.as_bytes());
        w.u64(self.genesis_time_ms);
        self.policy.encode_to(&mut w);
        encode_seq(&mut w, &self.banks);
        hash_parts(domain::GENESIS, &[w.as_bytes()])
    }

    pub fn validate(&self) -> Result<(), GenesisError> {
        let id_ok = !self.chain_id.is_empty()
            && self.chain_id.len() <= MAX_CHAIN_ID_BYTES as usize
            && self.chain_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(GenesisError::ChainId);
        }
        let normalized = self.policy.clone().normalized()?;
        if normalized != self.policy {
            // Officers must be listed sorted so the encoding is canonical.
            return Err(GenesisError::Policy(PolicyError::DuplicateOfficer));
        }
        if self.banks.is_empty() || self.banks.len() > MAX_GENESIS_BANKS {
            return Err(GenesisError::Banks);
        }
        if !self.banks.iter().any(|b| b.id == BankId::CENTRAL_BANK) {
            return Err(GenesisError::Banks);
        }
        let (mut ids, mut floats, mut validators) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for b in &self.banks {
            if b.name.is_empty() || b.name.len() > MAX_BANK_NAME_BYTES as usize {
                return Err(GenesisError::BankName(b.id));
            }
            if !b.endpoint.is_empty() && !crate::tx::valid_endpoint(&b.endpoint) {
                return Err(GenesisError::Endpoint(b.id));
            }
            if !ids.insert(b.id)
                || !floats.insert(b.float_wallet)
                || !validators.insert(b.validator_key)
            {
                return Err(GenesisError::DuplicateBank(b.id));
            }
        }
        Ok(())
    }

    /// The state at height 0.
    pub(crate) fn initial_state(&self) -> Result<State, GenesisError> {
        self.validate()?;
        let mut banks = BTreeMap::new();
        let mut wallets = Vec::new();
        for b in &self.banks {
            banks.insert(
                b.id,
                Bank {
                    id: b.id,
                    name: b.name.clone(),
                    admin_key: b.admin_key,
                    validator_key: b.validator_key,
                    endpoint: b.endpoint.clone(),
                    float_wallet: b.float_wallet,
                    status: BankStatus::Active,
                    quota: b.quota_minor,
                    issued: Amount::ZERO,
                },
            );
            wallets.push(float_wallet_record(b.float_wallet, b.id, b.float_key));
        }
        Ok(State::new(self.chain_id.clone(), self.policy.clone(), banks, wallets))
    }
}

impl Encode for GenesisBank {
    fn encode_to(&self, w: &mut Writer) {
        self.id.encode_to(w);
        w.var_bytes(self.name.as_bytes());
        self.admin_key.encode_to(w);
        self.validator_key.encode_to(w);
        w.var_bytes(self.endpoint.as_bytes());
        self.float_wallet.encode_to(w);
        self.float_key.encode_to(w);
        self.quota_minor.encode_to(w);
    }
}
