//! A small funded network shared by the scenario tests.

use cbdc_ledger::testkit::{ChainBuilder, Customer, TestNet, amt, tx_id};
use cbdc_ledger::{BlockContext, SignedTransaction, State, TxId, TxOutcome};

/// Expiry height used by fixture transactions.
pub const EXP: u64 = 500;

/// Central bank + 2 banks; alice (bank 1, tier 0, 60,000), bob (bank 2, tier 0, 20,000),
/// carol (bank 1, tier 0, linked to a deposit account, 0). Each bank has 10,000,000 minted.
pub struct Fx {
    pub net: TestNet,
    pub ch: ChainBuilder,
    pub alice: Customer,
    pub bob: Customer,
    pub carol: Customer,
    next: u64,
}

impl Fx {
    pub fn new() -> Fx {
        let net = TestNet::new(2);
        let ch = ChainBuilder::new(&net);
        let (alice, open_a) = net.open_customer(tx_id(3), EXP, 1, "alice", 0, false);
        let (bob, open_b) = net.open_customer(tx_id(4), EXP, 2, "bob", 0, false);
        let (carol, open_c) = net.open_customer(tx_id(5), EXP, 1, "carol", 0, true);
        let mut fx = Fx { net, ch, alice, bob, carol, next: 100 };
        let mints =
            [fx.net.mint(tx_id(1), EXP, 1, 10_000_000), fx.net.mint(tx_id(2), EXP, 2, 10_000_000)];
        fx.commit(&mints);
        fx.commit(&[open_a, open_b, open_c]);
        let fund_a = fx.fund(1, fx.alice.wallet, 60_000);
        let fund_b = fx.fund(2, fx.bob.wallet, 20_000);
        fx.commit(&[fund_a, fund_b]);
        fx
    }

    /// A fresh transaction id.
    pub fn id(&mut self) -> TxId {
        self.next += 1;
        tx_id(self.next)
    }

    /// Bank `bank`'s float pays `to`.
    pub fn fund(&mut self, bank: u32, to: cbdc_ledger::WalletId, amount: u64) -> SignedTransaction {
        let id = self.id();
        let b = self.net.bank(bank);
        self.net.pay(id, EXP, &b.float_key, b.float_wallet, to, amount)
    }

    /// Pushes a block and asserts every transaction committed.
    pub fn commit(&mut self, txs: &[SignedTransaction]) -> Vec<TxOutcome> {
        let outcomes = self.ch.push(txs);
        for (i, o) in outcomes.iter().enumerate() {
            assert!(o.is_committed(), "setup transaction {i} was rejected: {o:?}");
        }
        outcomes
    }

    /// Builds a block at an explicit time and applies it; returns the outcomes.
    pub fn push_at(&mut self, timestamp_ms: u64, txs: &[SignedTransaction]) -> Vec<TxOutcome> {
        let proposer = self.net.bank(0).validator.public_key();
        let built = self.ch.ledger.build_block(BlockContext { timestamp_ms, proposer }, txs);
        self.ch.ledger = built.ledger;
        self.ch.blocks.push(built.block);
        built.outcomes
    }

    pub fn state(&self) -> &State {
        self.ch.ledger.state()
    }

    pub fn balance(&self, wallet: cbdc_ledger::WalletId) -> u64 {
        self.state().wallet(&wallet).map(|w| w.balance.minor()).unwrap_or_default()
    }

    pub fn outstanding(&self) -> u64 {
        self.state().supply().outstanding().minor()
    }
}

/// Shorthand for an amount in tests.
pub fn a(minor: u64) -> cbdc_ledger::Amount {
    amt(minor)
}
