//! Deterministic keys, a test network genesis and transaction builders, for tests, simulations
//! and benchmarks (feature `testkit`). Never for production keys: every seed is derivable from
//! its label.
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test support: out-of-range test inputs should fail loudly"
)]

use crate::block::{Block, BlockContext, Ledger};
use crate::crypto::{SigningKey, hash_parts};
use crate::execute::TxOutcome;
use crate::genesis::{Genesis, GenesisBank};
use crate::policy::{Policy, TierLimits};
use crate::tx::{Leg, SignedTransaction, TxBody, TxKind};
use crate::types::{Amount, BankId, HolderRef, KycTier, PublicKey, TxId, WalletClass, WalletId};

/// The deterministic 32-byte Ed25519 seed behind [`key`].
pub fn seed(label: &str) -> [u8; 32] {
    hash_parts(b"cbdc.testkit.key", &[label.as_bytes()])
}

/// A deterministic signing key for a label.
pub fn key(label: &str) -> SigningKey {
    let seed = seed(label);
    match SigningKey::from_seed(&seed) {
        Ok(k) => k,
        Err(_) => unreachable!("every 32-byte seed is a valid Ed25519 seed"),
    }
}

/// A deterministic wallet id for a label.
pub fn wallet_id(label: &str) -> WalletId {
    let d = hash_parts(b"cbdc.testkit.wallet", &[label.as_bytes()]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    WalletId(id)
}

/// A deterministic holder reference for a label (stands in for the keyed hash of an identity).
pub fn holder(label: &str) -> HolderRef {
    HolderRef(hash_parts(b"cbdc.testkit.holder", &[label.as_bytes()]))
}

/// Transaction id `n`.
pub fn tx_id(n: u64) -> TxId {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    TxId(id)
}

/// Amount in minor units; panics on out-of-range literals (tests only).
pub fn amt(minor: u64) -> Amount {
    Amount::from_minor(minor).unwrap_or(Amount::MAX)
}

/// A bank of the test network.
#[derive(Debug)]
pub struct TestBank {
    pub id: BankId,
    pub admin: SigningKey,
    pub validator: SigningKey,
    pub float_key: SigningKey,
    pub float_wallet: WalletId,
}

/// A customer wallet created by [`TestNet::open_customer`].
#[derive(Debug)]
pub struct Customer {
    pub bank: BankId,
    pub key: SigningKey,
    pub wallet: WalletId,
    pub holder: HolderRef,
}

/// Default tier limits of the test network, in minor units:
/// tier 0 holds 1,000.00 (pays 500.00, 1,000.00 a day); tier 1 holds 3,000.00 (pays 3,000.00,
/// 5,000.00 a day); tier 2 holds 1,000,000.00 with matching payment limits.
pub fn test_tiers() -> Vec<TierLimits> {
    vec![
        TierLimits {
            holding_minor: amt(100_000),
            per_payment_minor: amt(50_000),
            daily_outflow_minor: amt(100_000),
        },
        TierLimits {
            holding_minor: amt(300_000),
            per_payment_minor: amt(300_000),
            daily_outflow_minor: amt(500_000),
        },
        TierLimits {
            holding_minor: amt(100_000_000),
            per_payment_minor: amt(100_000_000),
            daily_outflow_minor: amt(100_000_000),
        },
    ]
}

/// A test network: the central bank (bank 0) and `n` commercial banks, three officers with k = 2.
#[derive(Debug)]
pub struct TestNet {
    pub genesis: Genesis,
    pub officers: Vec<SigningKey>,
    pub banks: Vec<TestBank>,
}

impl TestNet {
    pub fn new(commercial_banks: u32) -> TestNet {
        let officers: Vec<SigningKey> = (0..3).map(|i| key(&format!("officer-{i}"))).collect();
        let mut officer_keys: Vec<PublicKey> = officers.iter().map(|k| k.public_key()).collect();
        officer_keys.sort();
        let banks: Vec<TestBank> = (0..=commercial_banks)
            .map(|i| TestBank {
                id: BankId(i),
                admin: key(&format!("bank-{i}-admin")),
                validator: key(&format!("bank-{i}-validator")),
                float_key: key(&format!("bank-{i}-float")),
                float_wallet: wallet_id(&format!("bank-{i}-float")),
            })
            .collect();
        let genesis = Genesis {
            chain_id: "cbdc-test".to_string(),
            genesis_time_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            policy: Policy {
                officers: officer_keys,
                threshold: 2,
                supply_cap_minor: amt(1_000_000_000_000),
                tiers: test_tiers(),
                max_expiry_blocks: 1_000,
            },
            banks: banks
                .iter()
                .map(|b| GenesisBank {
                    id: b.id,
                    name: if b.id == BankId::CENTRAL_BANK {
                        "Central Bank".to_string()
                    } else {
                        format!("Bank {}", b.id.0)
                    },
                    admin_key: b.admin.public_key(),
                    validator_key: b.validator.public_key(),
                    endpoint: format!("127.0.0.1:{}", 30_000 + b.id.0),
                    float_wallet: b.float_wallet,
                    float_key: b.float_key.public_key(),
                    quota_minor: amt(100_000_000_000),
                })
                .collect(),
        };
        TestNet { genesis, officers, banks }
    }

    pub fn chain_id(&self) -> &str {
        &self.genesis.chain_id
    }

    pub fn bank(&self, id: u32) -> &TestBank {
        &self.banks[id as usize]
    }

    /// Signs a body with the given keys.
    pub fn sign(&self, body: TxBody, keys: &[&SigningKey]) -> SignedTransaction {
        body.sign(self.chain_id(), keys)
    }

    /// A k-of-n transaction approved by the first `approvals` officers.
    pub fn by_officers(
        &self,
        id: TxId,
        expiry: u64,
        kind: TxKind,
        approvals: usize,
    ) -> SignedTransaction {
        let keys: Vec<&SigningKey> = self.officers.iter().take(approvals).collect();
        self.sign(TxBody { id, expiry_height: expiry, kind }, &keys)
    }

    pub fn mint(&self, id: TxId, expiry: u64, bank: u32, amount: u64) -> SignedTransaction {
        self.by_officers(id, expiry, TxKind::Mint { bank: BankId(bank), amount: amt(amount) }, 2)
    }

    /// A transaction signed by bank `bank`'s admin key.
    pub fn by_bank(&self, id: TxId, expiry: u64, bank: u32, kind: TxKind) -> SignedTransaction {
        self.sign(TxBody { id, expiry_height: expiry, kind }, &[&self.bank(bank).admin])
    }

    /// A single-leg transfer signed by `payer`.
    pub fn pay(
        &self,
        id: TxId,
        expiry: u64,
        payer: &SigningKey,
        from: WalletId,
        to: WalletId,
        amount: u64,
    ) -> SignedTransaction {
        let kind = TxKind::Transfer { legs: vec![Leg { from, to, amount: amt(amount) }] };
        self.sign(TxBody { id, expiry_height: expiry, kind }, &[payer])
    }

    /// A customer of `bank` (keys and ids derived from `label`) and the transaction opening it.
    pub fn open_customer(
        &self,
        id: TxId,
        expiry: u64,
        bank: u32,
        label: &str,
        tier: u8,
        linked: bool,
    ) -> (Customer, SignedTransaction) {
        let customer = Customer {
            bank: BankId(bank),
            key: key(&format!("customer-{label}")),
            wallet: wallet_id(&format!("customer-{label}")),
            holder: holder(label),
        };
        let tx = self.open_wallet(id, expiry, &customer, WalletClass::Retail, tier, linked);
        (customer, tx)
    }

    /// Opens a wallet for an existing customer record (e.g. the same holder at another bank).
    pub fn open_wallet(
        &self,
        id: TxId,
        expiry: u64,
        c: &Customer,
        class: WalletClass,
        tier: u8,
        linked: bool,
    ) -> SignedTransaction {
        let kind = TxKind::OpenWallet {
            bank: c.bank,
            wallet: c.wallet,
            public_key: c.key.public_key(),
            class,
            tier: KycTier(tier),
            holder: c.holder,
            linked,
        };
        self.by_bank(id, expiry, c.bank.0, kind)
    }
}

/// Builds a chain block by block on a [`Ledger`], one second of block time apart.
#[derive(Debug)]
pub struct ChainBuilder {
    pub ledger: Ledger,
    pub blocks: Vec<Block>,
    proposer: PublicKey,
}

impl ChainBuilder {
    pub fn new(net: &TestNet) -> ChainBuilder {
        let ledger = match Ledger::from_genesis(&net.genesis) {
            Ok(l) => l,
            Err(e) => unreachable!("test genesis is valid: {e}"),
        };
        ChainBuilder { ledger, blocks: Vec::new(), proposer: net.bank(0).validator.public_key() }
    }

    /// Height the next block will have.
    pub fn next_height(&self) -> u64 {
        self.ledger.height() + 1
    }

    /// Builds and applies a block from `candidates`; returns each candidate's outcome.
    pub fn push(&mut self, candidates: &[SignedTransaction]) -> Vec<TxOutcome> {
        let ctx = BlockContext {
            timestamp_ms: self.ledger.tip().timestamp_ms + 1_000,
            proposer: self.proposer,
        };
        let built = self.ledger.build_block(ctx, candidates);
        self.ledger = built.ledger;
        self.blocks.push(built.block);
        built.outcomes
    }
}
