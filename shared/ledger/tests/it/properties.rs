//! Property tests: random transaction sequences over a test network (the central bank and four
//! commercial banks, retail customers with shared holders across banks, linked wallets, merchants
//! and wallets opened later), with the ledger's rules checked after every transaction and every
//! block.
//!
//! Each transaction is first executed on its own with [`execute`] on a copy of the state (a
//! rejection must change nothing; a commit must conserve money, post exactly what it changed and
//! respect every limit at that moment), then the same candidates go through
//! [`Ledger::build_block`], which must agree outcome for outcome and byte for byte. After every
//! block the world-wide invariants are checked, and at the end the chain is replayed from genesis
//! on a fresh ledger and re-verified.
//!
//! Policy updates never touch tiers here, so every limit a holder was admitted under still holds
//! when it is checked later. `CBDC_PROPTEST_CASES=<n>` runs `n` cases per property (soak runs);
//! a failure prints the shrunk sequence of steps, which replays deterministically.

use cbdc_ledger::block::execute_all;
use cbdc_ledger::execute::execute;
use cbdc_ledger::testkit::{ChainBuilder, TestBank, TestNet, holder, key, tx_id, wallet_id};
use cbdc_ledger::tx::MAX_LEGS;
use cbdc_ledger::{
    Amount, BankId, BankStatus, Block, BlockContext, BlockEnv, Decode, Digest, Encode, HolderRef,
    KycTier, Ledger, Leg, PolicyUpdate, Posting, PostingReason, Rejection, Signature,
    SignedTransaction, SigningKey, State, TxBody, TxId, TxKind, TxOutcome, TxSignature, Wallet,
    WalletClass, WalletId, WalletStatus, verify_chain,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Cases of the full chain property (build, apply, replay, verify).
const CHAIN_CASES: u32 = 1_500;
/// Cases of the transaction-by-transaction property (no block building, no signature checks).
const ATOMIC_CASES: u32 = 8_500;

const COMMERCIAL_BANKS: u32 = 4;
const DAY_MS: u64 = 86_400_000;
/// The bank that operations may admit; its keys are known but it is not in the genesis.
const NEW_BANK: u32 = COMMERCIAL_BANKS + 1;
/// Bank ids run up to one that never exists.
const MAX_BANK_PICK: u32 = NEW_BANK + 1;

fn cases(default: u32) -> u32 {
    std::env::var("CBDC_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A wallet of the test world, opened at setup or by a generated `OpenWallet`.
#[derive(Debug)]
struct AccountSpec {
    label: &'static str,
    bank: u32,
    class: WalletClass,
    holder: &'static str,
    tier: u8,
    linked: bool,
    /// `Some`: opened in the setup blocks and paid this much from the bank's float, in table
    /// order (holding limits depend on it); `None`: opened only by a generated `OpenWallet`.
    setup_funding: Option<u64>,
}

const fn account(
    label: &'static str,
    bank: u32,
    class: WalletClass,
    holder: &'static str,
    tier: u8,
    linked: bool,
    setup_funding: Option<u64>,
) -> AccountSpec {
    AccountSpec { label, bank, class, holder, tier, linked, setup_funding }
}

use WalletClass::{Merchant, Retail};

const ACCOUNTS: &[AccountSpec] = &[
    account("alice-1", 1, Retail, "alice", 0, false, Some(50_000)),
    account("alice-2", 2, Retail, "alice", 1, true, Some(100_000)),
    account("bob", 1, Retail, "bob", 2, false, Some(1_000_000)),
    account("carol", 3, Retail, "carol", 0, true, Some(80_000)),
    account("dave-3", 3, Retail, "dave", 1, false, Some(100_000)),
    account("dave-4", 4, Retail, "dave", 1, true, Some(50_000)),
    account("erin", 4, Retail, "erin", 0, false, Some(20_000)),
    account("frank-2", 2, Retail, "frank", 0, false, Some(30_000)),
    account("frank-4", 4, Retail, "frank", 2, true, Some(600_000)),
    account("grace", 1, Retail, "grace", 1, true, Some(250_000)),
    account("shop-2", 2, Merchant, "shop-2", 0, false, Some(10_000)),
    account("shop-3", 3, Merchant, "shop-3", 0, false, Some(0)),
    account("alice-3", 1, Retail, "alice", 0, false, None),
    account("heidi", 2, Retail, "heidi", 2, true, None),
    account("shop-1", 1, Merchant, "shop-1", 0, false, None),
];

/// Wallet slots operations pick from: the accounts, the floats of banks 0..=NEW_BANK, and a
/// wallet that never exists.
const SLOTS: usize = ACCOUNTS.len() + NEW_BANK as usize + 2;

#[derive(Debug)]
struct Slot {
    id: WalletId,
    key: SigningKey,
    bank: BankId,
    /// The `OpenWallet` that creates it (accounts only).
    open: Option<TxKind>,
}

/// The network, its keys, and the ledger after the setup blocks; built once per test binary.
#[derive(Debug)]
struct World {
    net: TestNet,
    new_bank: TestBank,
    stranger: SigningKey,
    slots: Vec<Slot>,
    holders: Vec<HolderRef>,
    base: Ledger,
    /// The setup blocks applied with `apply_block` to a fresh ledger from genesis: where every
    /// case's replay starts.
    replayed_base: Ledger,
    base_blocks: Vec<Block>,
    base_roots: Vec<Digest>,
}

static WORLD: LazyLock<World> = LazyLock::new(World::new);

/// Block 1 opens the setup accounts and mints to every bank; block 2 funds the accounts.
fn setup_chain(net: &TestNet, slots: &[Slot]) -> (Ledger, Vec<Block>, Vec<Digest>) {
    let mut chain = ChainBuilder::new(net);
    let mut n = 0;
    let mut next_id = || {
        n += 1;
        tx_id(n)
    };
    let mut opening = Vec::new();
    let mut payments = Vec::new();
    for (a, slot) in ACCOUNTS.iter().zip(slots) {
        let Some(amount) = a.setup_funding else { continue };
        let kind = slot.open.clone().unwrap();
        opening.push(net.by_bank(next_id(), 50, a.bank, kind));
        if amount > 0 {
            let float = net.bank(a.bank);
            let pay = net.pay(next_id(), 50, &float.float_key, float.float_wallet, slot.id, amount);
            payments.push(pay);
        }
    }
    opening.push(net.mint(next_id(), 50, 0, 5_000_000));
    for b in 1..=COMMERCIAL_BANKS {
        opening.push(net.mint(next_id(), 50, b, 50_000_000));
    }
    let mut roots = Vec::new();
    for block in [opening, payments] {
        let outcomes = chain.push(&block);
        assert!(outcomes.iter().all(TxOutcome::is_committed), "setup failed: {outcomes:?}");
        roots.push(chain.ledger.state_root());
    }
    (chain.ledger, chain.blocks, roots)
}

fn test_bank(i: u32) -> TestBank {
    TestBank {
        id: BankId(i),
        admin: key(&format!("bank-{i}-admin")),
        validator: key(&format!("bank-{i}-validator")),
        float_key: key(&format!("bank-{i}-float")),
        float_wallet: wallet_id(&format!("bank-{i}-float")),
    }
}

impl World {
    fn new() -> World {
        let net = TestNet::new(COMMERCIAL_BANKS);
        let mut slots = Vec::with_capacity(SLOTS);
        for a in ACCOUNTS {
            let wallet = wallet_id(&format!("account-{}", a.label));
            let signing = key(&format!("account-{}", a.label));
            let open = TxKind::OpenWallet {
                bank: BankId(a.bank),
                wallet,
                public_key: signing.public_key(),
                class: a.class,
                tier: KycTier(a.tier),
                holder: holder(a.holder),
                linked: a.linked,
            };
            slots.push(Slot { id: wallet, key: signing, bank: BankId(a.bank), open: Some(open) });
        }
        for i in 0..=NEW_BANK {
            let b = test_bank(i);
            slots.push(Slot { id: b.float_wallet, key: b.float_key, bank: b.id, open: None });
        }
        slots.push(Slot {
            id: wallet_id("nobody"),
            key: key("nobody"),
            bank: BankId(1),
            open: None,
        });
        assert_eq!(slots.len(), SLOTS);
        let setup = ACCOUNTS.iter().take_while(|a| a.setup_funding.is_some()).count();
        assert_eq!(setup, SETUP_ACCOUNTS);
        assert!(ACCOUNTS[setup..].iter().all(|a| a.setup_funding.is_none()));
        let mut holders: Vec<HolderRef> =
            ACCOUNTS.iter().filter(|a| a.class == Retail).map(|a| holder(a.holder)).collect();
        holders.sort();
        holders.dedup();
        let (base, base_blocks, base_roots) = setup_chain(&net, &slots);
        let mut replayed_base = Ledger::from_genesis(&net.genesis).unwrap();
        for block in &base_blocks {
            replayed_base.apply_block(block).expect("setup blocks apply");
        }
        assert_eq!(replayed_base.state_root(), base.state_root());
        World {
            net,
            new_bank: test_bank(NEW_BANK),
            stranger: key("stranger"),
            slots,
            holders,
            base,
            replayed_base,
            base_blocks,
            base_roots,
        }
    }

    fn admin(&self, bank: u32) -> &SigningKey {
        match bank {
            b if b <= COMMERCIAL_BANKS => &self.net.bank(b).admin,
            NEW_BANK => &self.new_bank.admin,
            _ => &self.stranger,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generated operations.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigMode {
    Good,
    /// A byte of the first signature is flipped.
    Corrupt,
    /// The first required key is replaced by a stranger's.
    WrongKey,
    /// A stranger signs as well.
    Extra,
    /// The first key signs twice.
    Duplicate,
    /// Nobody signs.
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpiryMode {
    /// Expires this many blocks after the block it is proposed in (ids expire within a run).
    Soon(u64),
    Long,
    Expired,
    TooFar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminAction {
    Freeze,
    Unfreeze,
    SetTier(u8),
    SetLinked(bool),
    Close,
}

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        legs: Vec<(usize, usize, u64)>,
    },
    Mint {
        bank: u32,
        amount: u64,
        approvals: usize,
    },
    Burn {
        bank: u32,
        amount: u64,
        approvals: usize,
    },
    /// A bank float pays the central bank's issuance wallet, then the officers burn it.
    Redeem {
        bank: u32,
        amount: u64,
    },
    /// Freeze an account, try to pay from and to it, unfreeze it.
    FreezeCycle {
        account: usize,
        other: usize,
        amount: u64,
    },
    /// `wallet: None` administers the wallet of the previous `Admin` or `Open` again, so
    /// freezes meet unfreezes and openings meet closings.
    Admin {
        wallet: Option<usize>,
        wrong_bank: Option<u32>,
        action: AdminAction,
    },
    Open {
        account: usize,
        wrong_bank: Option<u32>,
    },
    SupplyCap {
        cap: u64,
    },
    BankQuota {
        bank: u32,
        quota: u64,
    },
    AdmitBank {
        bank: u32,
        name_len: usize,
        duplicate_validator: bool,
        quota: u64,
    },
    SuspendBank {
        bank: u32,
    },
    /// One wallet pays again and again in one block (reaches the daily outflow limits).
    Spree {
        from: usize,
        to: usize,
        amounts: Vec<u64>,
    },
    /// The exact bytes of an earlier transaction again.
    Resubmit {
        back: Index,
    },
    /// A new transfer under an earlier transaction's id.
    ReuseId {
        back: Index,
        from: usize,
        to: usize,
        amount: u64,
    },
    EndBlock {
        next_day: bool,
    },
}

#[derive(Debug, Clone)]
struct Step {
    op: Op,
    sig: SigMode,
    expiry: ExpiryMode,
}

/// Accounts opened at setup come first in [`ACCOUNTS`].
const SETUP_ACCOUNTS: usize = 12;

/// A wallet slot, mostly an open account, sometimes a float, an unopened or unknown wallet.
fn slot() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![
        10 => 0..SETUP_ACCOUNTS,
        1 => SETUP_ACCOUNTS..ACCOUNTS.len(),
        3 => ACCOUNTS.len()..SLOTS - 1,
        1 => Just(SLOTS - 1),
    ]
}

fn amount_minor() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0),
        8 => 1..30_000u64,
        6 => 30_000..160_000u64,
        3 => 160_000..1_200_000u64,
        1 => 1_200_000..200_000_000u64,
        1 => Just(Amount::MAX_MINOR),
    ]
}

/// Mint, burn and quota amounts: ordinary, around a bank's quota, around the supply cap, absurd.
fn issuance_minor() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0),
        6 => 1..50_000_000u64,
        1 => 99_000_000_000..101_000_000_000u64,
        1 => 999_000_000_000..1_001_000_000_000u64,
        1 => Just(Amount::MAX_MINOR),
    ]
}

fn bank_pick() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 1..=COMMERCIAL_BANKS, 1 => Just(0), 1 => NEW_BANK..=MAX_BANK_PICK]
}

fn approvals() -> impl Strategy<Value = usize> {
    prop_oneof![8 => Just(2), 2 => Just(3), 1 => Just(1), 1 => Just(0)]
}

fn wrong_bank() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![6 => Just(None), 1 => (0..=MAX_BANK_PICK).prop_map(Some)]
}

fn admin_action() -> impl Strategy<Value = AdminAction> {
    prop_oneof![
        2 => Just(AdminAction::Freeze),
        2 => Just(AdminAction::Unfreeze),
        3 => (0u8..=4).prop_map(AdminAction::SetTier),
        2 => any::<bool>().prop_map(AdminAction::SetLinked),
        1 => Just(AdminAction::Close),
    ]
}

fn legs(range: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Op> {
    prop::collection::vec((slot(), slot(), amount_minor()), range)
        .prop_map(|legs| Op::Transfer { legs })
}

fn money_op() -> BoxedStrategy<Op> {
    prop_oneof![
        10 => legs(1..=2),
        3 => legs(0..=MAX_LEGS as usize),
        3 => (bank_pick(), issuance_minor(), approvals())
            .prop_map(|(bank, amount, approvals)| Op::Mint { bank, amount, approvals }),
        1 => (bank_pick(), issuance_minor(), approvals())
            .prop_map(|(bank, amount, approvals)| Op::Burn { bank, amount, approvals }),
        2 => (0..=COMMERCIAL_BANKS, amount_minor())
            .prop_map(|(bank, amount)| Op::Redeem { bank, amount }),
        2 => (0..ACCOUNTS.len(), slot(), prop::collection::vec(20_000..310_000u64, 2..=5))
            .prop_map(|(from, to, amounts)| Op::Spree { from, to, amounts }),
        3 => any::<Index>().prop_map(|back| Op::Resubmit { back }),
        2 => (any::<Index>(), slot(), slot(), amount_minor())
            .prop_map(|(back, from, to, amount)| Op::ReuseId { back, from, to, amount }),
    ]
    .boxed()
}

fn admin_op() -> BoxedStrategy<Op> {
    let cap = prop_oneof![
        Just(1_000_000u64),
        Just(1_000_000_000),
        Just(1_000_000_000_000),
        Just(Amount::MAX_MINOR)
    ];
    let name_len = prop_oneof![8 => Just(12usize), 1 => Just(0), 1 => Just(65)];
    prop_oneof![
        8 => (prop_oneof![2 => slot().prop_map(Some), 1 => Just(None)], wrong_bank(), admin_action())
            .prop_map(|(wallet, wrong_bank, action)| Op::Admin { wallet, wrong_bank, action }),
        3 => (0..ACCOUNTS.len(), wrong_bank())
            .prop_map(|(account, wrong_bank)| Op::Open { account, wrong_bank }),
        2 => (0..SETUP_ACCOUNTS, slot(), amount_minor())
            .prop_map(|(account, other, amount)| Op::FreezeCycle { account, other, amount }),
        1 => cap.prop_map(|cap| Op::SupplyCap { cap }),
        1 => (0..=MAX_BANK_PICK, issuance_minor())
            .prop_map(|(bank, quota)| Op::BankQuota { bank, quota }),
        1 => (prop_oneof![3 => Just(NEW_BANK), 1 => 0..=COMMERCIAL_BANKS], name_len,
              prop::bool::weighted(0.2), issuance_minor())
            .prop_map(|(bank, name_len, duplicate_validator, quota)| {
                Op::AdmitBank { bank, name_len, duplicate_validator, quota }
            }),
        1 => (0..=MAX_BANK_PICK).prop_map(|bank| Op::SuspendBank { bank }),
    ]
    .boxed()
}

fn step() -> BoxedStrategy<Step> {
    let op = prop_oneof![
        12 => money_op(),
        5 => admin_op(),
        3 => prop::bool::weighted(0.25).prop_map(|next_day| Op::EndBlock { next_day }),
    ];
    let sig = prop_oneof![
        30 => Just(SigMode::Good),
        1 => Just(SigMode::Corrupt),
        1 => Just(SigMode::WrongKey),
        1 => Just(SigMode::Extra),
        1 => Just(SigMode::Duplicate),
        1 => Just(SigMode::Missing),
    ];
    let expiry = prop_oneof![
        16 => (0u64..4).prop_map(ExpiryMode::Soon),
        2 => Just(ExpiryMode::Long),
        1 => Just(ExpiryMode::Expired),
        1 => Just(ExpiryMode::TooFar),
    ];
    (op.boxed(), sig.boxed(), expiry.boxed())
        .prop_map(|(op, sig, expiry)| Step { op, sig, expiry })
        .boxed()
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 5..=40)
}

// ---------------------------------------------------------------------------------------------
// Turning operations into signed transactions.

/// A candidate transaction and what the generator knows about it.
#[derive(Debug, Clone)]
struct Planned {
    tx: SignedTransaction,
    /// Whether its signatures verify (what the block's batch verification will find).
    sig_ok: bool,
    /// Whatever the state, it must be rejected (bad signatures or signers, too few approvals,
    /// expired, an invalid admission).
    must_fail: bool,
    /// The rejection it must get, when the generator knows it.
    expect: Option<Rejection>,
}

fn minor(m: u64) -> Amount {
    Amount::from_minor(m).unwrap_or(Amount::MAX)
}

struct Gen<'w> {
    w: &'w World,
    /// Real signatures; without, each signature names its signer over zero bytes, which is all
    /// `execute` looks at (verification happens per block, before it).
    sign: bool,
    /// Height of the block being assembled.
    height: u64,
    next_id: u64,
    history: Vec<Planned>,
    last_administered: usize,
}

impl<'w> Gen<'w> {
    fn new(w: &'w World, sign: bool, height: u64) -> Self {
        Gen { w, sign, height, next_id: 1_000_000, history: Vec::new(), last_administered: 0 }
    }

    fn fresh_id(&mut self) -> TxId {
        self.next_id += 1;
        tx_id(self.next_id)
    }

    fn expiry(&self, mode: ExpiryMode) -> (u64, Option<Rejection>) {
        let window = self.w.net.genesis.policy.max_expiry_blocks;
        match mode {
            ExpiryMode::Soon(d) => (self.height + d, None),
            ExpiryMode::Long => (self.height + window - 10, None),
            ExpiryMode::Expired => (self.height - 1, Some(Rejection::Expired)),
            ExpiryMode::TooFar => (self.height + window + 1, Some(Rejection::ExpiryTooFar)),
        }
    }

    /// Signs `kind` as `step` says; `inherent_fail` marks kinds that can never commit.
    fn seal(
        &mut self,
        id: Option<TxId>,
        kind: TxKind,
        mut keys: Vec<&'w SigningKey>,
        step: &Step,
        inherent_fail: bool,
    ) -> Planned {
        let w = self.w;
        let id = id.unwrap_or_else(|| self.fresh_id());
        let (expiry_height, expect) = self.expiry(step.expiry);
        let mut must_fail = inherent_fail || expect.is_some();
        let mut corrupt = false;
        match step.sig {
            SigMode::Good => {}
            SigMode::Corrupt => corrupt = !keys.is_empty(),
            SigMode::WrongKey => {
                if let Some(first) = keys.first_mut() {
                    *first = &w.stranger;
                    must_fail = true;
                }
            }
            SigMode::Extra => {
                keys.push(&w.stranger);
                must_fail = true;
            }
            SigMode::Duplicate => {
                if let Some(&first) = keys.first() {
                    keys.push(first);
                    must_fail = true;
                }
            }
            SigMode::Missing => {
                keys.clear();
                must_fail = true;
            }
        }
        let body = TxBody { id, expiry_height, kind };
        let mut tx = if self.sign {
            body.sign(w.net.chain_id(), &keys)
        } else {
            let unsigned = |k: &&SigningKey| TxSignature {
                signer: k.public_key(),
                signature: Signature([0; 64]),
            };
            SignedTransaction { body, signatures: keys.iter().map(unsigned).collect() }
        };
        if corrupt {
            tx.signatures[0].signature.0[17] ^= 0x20;
            must_fail = true;
        }
        let planned = Planned { tx, sig_ok: !corrupt, must_fail, expect };
        self.history.push(planned.clone());
        planned
    }

    fn officers(&self, approvals: usize) -> Vec<&'w SigningKey> {
        self.w.net.officers.iter().take(approvals).collect()
    }

    fn transfer(&mut self, id: Option<TxId>, legs: &[(usize, usize, u64)], step: &Step) -> Planned {
        let w = self.w;
        let mut keys: Vec<&'w SigningKey> = Vec::new();
        for &(from, _, _) in legs {
            let k = &w.slots[from].key;
            if !keys.iter().any(|s| s.public_key() == k.public_key()) {
                keys.push(k);
            }
        }
        let legs = legs
            .iter()
            .map(|&(f, t, a)| Leg { from: w.slots[f].id, to: w.slots[t].id, amount: minor(a) })
            .collect();
        self.seal(id, TxKind::Transfer { legs }, keys, step, false)
    }

    fn emit(&mut self, step: &Step, out: &mut Vec<Planned>) {
        let w = self.w;
        let officers_kind = |kind: TxKind, approvals: usize, inherent: bool, g: &mut Self| {
            let keys = g.officers(approvals);
            g.seal(None, kind, keys, step, inherent || approvals < 2)
        };
        let planned = match &step.op {
            Op::Transfer { legs } => self.transfer(None, legs, step),
            Op::Mint { bank, amount, approvals } => {
                let kind = TxKind::Mint { bank: BankId(*bank), amount: minor(*amount) };
                officers_kind(kind, *approvals, false, self)
            }
            Op::Burn { bank, amount, approvals } => {
                let kind = TxKind::Burn { bank: BankId(*bank), amount: minor(*amount) };
                officers_kind(kind, *approvals, false, self)
            }
            Op::Redeem { bank, amount } => {
                let good =
                    Step { op: step.op.clone(), sig: SigMode::Good, expiry: ExpiryMode::Soon(2) };
                let float = ACCOUNTS.len() + *bank as usize;
                out.push(self.transfer(None, &[(float, ACCOUNTS.len(), *amount)], &good));
                let kind = TxKind::Burn { bank: BankId(*bank), amount: minor(*amount) };
                officers_kind(kind, 2, false, self)
            }
            Op::FreezeCycle { account, other, amount } => {
                let slot = &w.slots[*account];
                let (bank, wallet) = (slot.bank, slot.id);
                let good = Step { sig: SigMode::Good, ..step.clone() };
                let freeze = TxKind::Freeze { bank, wallet };
                out.push(self.seal(None, freeze, vec![w.admin(bank.0)], &good, false));
                for (from, to) in [(*account, *other), (*other, *account)] {
                    out.push(self.transfer(None, &[(from, to, *amount)], step));
                }
                let unfreeze = TxKind::Unfreeze { bank, wallet };
                self.seal(None, unfreeze, vec![w.admin(bank.0)], step, false)
            }
            Op::Admin { wallet, wrong_bank, action } => {
                let wallet = wallet.unwrap_or(self.last_administered);
                self.last_administered = wallet;
                let slot = &w.slots[wallet];
                let bank = BankId(wrong_bank.unwrap_or(slot.bank.0));
                let wallet = slot.id;
                let kind = match *action {
                    AdminAction::Freeze => TxKind::Freeze { bank, wallet },
                    AdminAction::Unfreeze => TxKind::Unfreeze { bank, wallet },
                    AdminAction::SetTier(t) => TxKind::SetTier { bank, wallet, tier: KycTier(t) },
                    AdminAction::SetLinked(linked) => TxKind::SetLinked { bank, wallet, linked },
                    AdminAction::Close => TxKind::CloseWallet { bank, wallet },
                };
                self.seal(None, kind, vec![w.admin(bank.0)], step, false)
            }
            Op::Open { account, wrong_bank } => {
                self.last_administered = *account;
                let mut kind = w.slots[*account].open.clone().unwrap();
                if let (TxKind::OpenWallet { bank, .. }, Some(other)) = (&mut kind, wrong_bank) {
                    *bank = BankId(*other);
                }
                let TxKind::OpenWallet { bank, .. } = kind else { unreachable!() };
                self.seal(None, kind, vec![w.admin(bank.0)], step, false)
            }
            Op::SupplyCap { cap } => {
                let kind = TxKind::SetPolicy(PolicyUpdate::SupplyCap { cap: minor(*cap) });
                officers_kind(kind, 2, false, self)
            }
            Op::BankQuota { bank, quota } => {
                let update = PolicyUpdate::BankQuota { bank: BankId(*bank), quota: minor(*quota) };
                officers_kind(TxKind::SetPolicy(update), 2, false, self)
            }
            Op::AdmitBank { bank, name_len, duplicate_validator, quota } => {
                let nb = &w.new_bank;
                let validator = if *duplicate_validator {
                    w.net.bank(1).validator.public_key()
                } else {
                    nb.validator.public_key()
                };
                let kind = TxKind::AdmitBank {
                    bank: BankId(*bank),
                    name: "b".repeat(*name_len),
                    admin_key: nb.admin.public_key(),
                    validator_key: validator,
                    endpoint: format!("bank-{}.example:7000", bank),
                    float_wallet: nb.float_wallet,
                    float_key: nb.float_key.public_key(),
                    quota: minor(*quota),
                };
                let invalid =
                    *bank != NEW_BANK || *name_len == 0 || *name_len > 64 || *duplicate_validator;
                officers_kind(kind, 2, invalid, self)
            }
            Op::SuspendBank { bank } => {
                let kind = TxKind::SuspendBank { bank: BankId(*bank) };
                officers_kind(kind, 2, *bank == 0 || *bank == MAX_BANK_PICK, self)
            }
            Op::Spree { from, to, amounts } => {
                let (last, init) = amounts.split_last().expect("a spree has payments");
                for amount in init {
                    out.push(self.transfer(None, &[(*from, *to, *amount)], step));
                }
                self.transfer(None, &[(*from, *to, *last)], step)
            }
            Op::Resubmit { back } => {
                if self.history.is_empty() {
                    return;
                }
                let earlier = self.history[back.index(self.history.len())].clone();
                // Only the failures that no later state can cure carry over.
                let expired = earlier.expect == Some(Rejection::Expired);
                let sticky = earlier.must_fail && earlier.expect != Some(Rejection::ExpiryTooFar);
                Planned {
                    must_fail: sticky,
                    expect: if expired { Some(Rejection::Expired) } else { None },
                    ..earlier
                }
            }
            Op::ReuseId { back, from, to, amount } => {
                let id = (!self.history.is_empty())
                    .then(|| self.history[back.index(self.history.len())].tx.body.id);
                self.transfer(id, &[(*from, *to, *amount)], step)
            }
            Op::EndBlock { .. } => return,
        };
        out.push(planned);
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// What the checks remember across transactions about each holder's limits.
#[derive(Debug, Clone, Default)]
struct Tracker {
    /// The retail wallet whose credit (of a positive kept amount) last raised the holder's
    /// holdings: its tier admitted the current holdings, and a tier is only lowered to one whose
    /// limit still covers them.
    last_kept_credit: BTreeMap<HolderRef, WalletId>,
    /// The daily outflow limit the holder's last debit was checked against.
    last_debit_daily: BTreeMap<HolderRef, Amount>,
}

impl Tracker {
    /// Seeds the tracker from the setup state: each holder's highest-tier wallet admits its
    /// holdings (setup funds holders in an order the limits allow).
    fn seeded(state: &State) -> Tracker {
        let mut t = Tracker::default();
        for h in &WORLD.holders {
            let best = retail_wallets(state, h).max_by_key(|w| holding_limit(state, w));
            if let Some(w) = best {
                t.last_kept_credit.insert(*h, w.id);
            }
        }
        t
    }
}

fn retail_wallets<'s>(state: &'s State, h: &HolderRef) -> impl Iterator<Item = &'s Wallet> {
    let h = *h;
    state.wallets().filter(move |w| w.class == Retail && w.holder == h)
}

fn holding_limit(state: &State, w: &Wallet) -> Amount {
    state.policy().tier(w.tier).expect("wallets only ever have valid tiers").holding_minor
}

fn u(a: Amount) -> u128 {
    u128::from(a.minor())
}

/// Invariants of the whole state, checked after every block.
fn check_world(state: &State, day: u64, tracker: &Tracker) {
    assert_eq!(state.check_invariants(), Ok(()));
    let supply = state.supply();
    let outstanding = u(supply.minted) - u(supply.burned);
    let balances: u128 = state.wallets().map(|w| u(w.balance)).sum();
    assert_eq!(balances, outstanding, "sum of balances must equal minted - burned");
    let issued: u128 = state.banks().map(|b| u(b.issued)).sum();
    assert_eq!(issued, outstanding, "what banks were issued, net of redemptions, is the supply");
    assert!(outstanding <= u(state.policy().supply_cap_minor), "supply above the cap");
    for h in &WORLD.holders {
        let wallets: Vec<&Wallet> = retail_wallets(state, h).collect();
        let Some(rec) = state.holder(h) else {
            assert!(wallets.is_empty(), "retail wallets without a holder record");
            continue;
        };
        let sum: u128 = wallets.iter().map(|w| u(w.balance)).sum();
        assert_eq!(u(rec.holdings), sum, "holdings must be the sum of the retail balances");
        // Any status counts: freezing a wallet does not move its money, so holdings admitted
        // under a frozen wallet's tier may exceed the limits of the holder's active wallets.
        let max_limit = wallets.iter().map(|w| holding_limit(state, w)).max();
        assert!(rec.holdings <= max_limit.unwrap_or(Amount::ZERO), "holding limit exceeded");
        if let Some(id) = tracker.last_kept_credit.get(h) {
            let w = state.wallet(id).expect("credited wallet exists");
            assert!(rec.holdings <= holding_limit(state, w), "holdings exceed the admitting tier");
        }
        if let Some(daily) = tracker.last_debit_daily.get(h) {
            assert!(rec.outflow <= *daily, "outflow exceeds the limit it was checked against");
        } else {
            assert!(rec.outflow.is_zero(), "outflow without a retail debit");
        }
        assert!(rec.outflow_day <= day, "outflow counted on a future day");
    }
}

/// Every wallet's balance changed by exactly its postings, and no wallet vanished.
fn check_postings_match_balances(before: &State, after: &State, postings: &[Posting]) {
    let mut net: BTreeMap<WalletId, i128> = BTreeMap::new();
    for p in postings {
        assert!(!p.amount.is_zero(), "zero posting {p:?}");
        let signed = i128::from(p.amount.minor());
        *net.entry(p.wallet).or_default() += if p.credit { signed } else { -signed };
    }
    for w in after.wallets() {
        let prev = before.wallet(&w.id).map_or(0, |b| i128::from(b.balance.minor()));
        let delta = i128::from(w.balance.minor()) - prev;
        assert_eq!(delta, net.get(&w.id).copied().unwrap_or(0), "balance of {:?}", w.id);
    }
    assert!(net.keys().all(|id| after.wallet(id).is_some()), "posting to a missing wallet");
    assert!(before.wallets().all(|w| after.wallet(&w.id).is_some()), "a wallet vanished");
}

/// Every wallet but `id` is unchanged; returns `id` before (if it existed) and after.
fn only_wallet_changed<'a>(
    before: &'a State,
    after: &'a State,
    id: WalletId,
) -> (Option<&'a Wallet>, &'a Wallet) {
    let others_before = before.wallets().filter(|w| w.id != id);
    let others_after = after.wallets().filter(|w| w.id != id);
    assert!(others_before.eq(others_after), "a transaction changed another wallet");
    (before.wallet(&id), after.wallet(&id).expect("the administered wallet exists"))
}

fn check_wallet_admin(before: &State, after: &State, kind: &TxKind) {
    assert!(before.banks().eq(after.banks()), "wallet administration changed a bank");
    assert_eq!(before.policy(), after.policy());
    match kind {
        TxKind::OpenWallet { bank, wallet, public_key, class, tier, holder, linked } => {
            let (prev, w) = only_wallet_changed(before, after, *wallet);
            assert!(prev.is_none());
            let expected = Wallet {
                id: *wallet,
                bank: *bank,
                public_key: *public_key,
                class: *class,
                tier: *tier,
                holder: *holder,
                status: WalletStatus::Active,
                linked: *linked,
                balance: Amount::ZERO,
            };
            assert_eq!(w, &expected);
        }
        TxKind::SetTier { wallet, tier, .. } => {
            let (prev, w) = only_wallet_changed(before, after, *wallet);
            assert_eq!(&Wallet { tier: *tier, ..prev.unwrap().clone() }, w);
            if w.class == Retail {
                let holdings = after.holder(&w.holder).unwrap().holdings;
                assert!(holdings <= holding_limit(after, w), "tier lowered below holdings");
            }
        }
        TxKind::Freeze { wallet, .. } | TxKind::Unfreeze { wallet, .. } => {
            let (prev, w) = only_wallet_changed(before, after, *wallet);
            let (from, to) = if matches!(kind, TxKind::Freeze { .. }) {
                (WalletStatus::Active, WalletStatus::Frozen)
            } else {
                (WalletStatus::Frozen, WalletStatus::Active)
            };
            let prev = prev.unwrap();
            assert_eq!(prev.status, from);
            assert_eq!(&Wallet { status: to, ..prev.clone() }, w);
        }
        TxKind::CloseWallet { wallet, .. } => {
            let (prev, w) = only_wallet_changed(before, after, *wallet);
            let prev = prev.unwrap();
            assert!(prev.balance.is_zero(), "closed a wallet holding money");
            assert_ne!(prev.status, WalletStatus::Closed);
            assert_eq!(&Wallet { status: WalletStatus::Closed, ..prev.clone() }, w);
        }
        TxKind::SetLinked { wallet, linked, .. } => {
            let (prev, w) = only_wallet_changed(before, after, *wallet);
            assert_eq!(w.class, Retail);
            assert_eq!(&Wallet { linked: *linked, ..prev.unwrap().clone() }, w);
        }
        _ => unreachable!("not wallet administration"),
    }
    if let TxKind::OpenWallet { bank, .. }
    | TxKind::SetTier { bank, .. }
    | TxKind::Freeze { bank, .. }
    | TxKind::Unfreeze { bank, .. }
    | TxKind::CloseWallet { bank, .. }
    | TxKind::SetLinked { bank, .. } = kind
    {
        let b = before.bank(*bank).expect("the administering bank exists");
        assert_eq!(b.status, BankStatus::Active, "a suspended bank administered a wallet");
        let w = after.wallets().find(|w| w.id == admin_target(kind)).unwrap();
        assert_eq!(w.bank, *bank, "a bank administered another bank's wallet");
    }
}

fn admin_target(kind: &TxKind) -> WalletId {
    match kind {
        TxKind::OpenWallet { wallet, .. }
        | TxKind::SetTier { wallet, .. }
        | TxKind::Freeze { wallet, .. }
        | TxKind::Unfreeze { wallet, .. }
        | TxKind::CloseWallet { wallet, .. }
        | TxKind::SetLinked { wallet, .. } => *wallet,
        _ => unreachable!("not wallet administration"),
    }
}

fn is_float(state: &State, id: &WalletId) -> bool {
    state.banks().any(|b| b.float_wallet == *id)
}

/// The transfer's postings are its legs plus waterfalls, and every limit held at each leg.
fn check_transfer(
    before: &State,
    after: &State,
    env: &BlockEnv,
    legs: &[Leg],
    postings: &[Posting],
    tracker: &mut Tracker,
) {
    let payments: Vec<&Posting> =
        postings.iter().filter(|p| p.reason == PostingReason::Payment).collect();
    assert_eq!(payments.len(), 2 * legs.len());
    for (leg, pair) in legs.iter().zip(payments.chunks(2)) {
        let debit = Posting {
            wallet: leg.from,
            credit: false,
            amount: leg.amount,
            reason: PostingReason::Payment,
        };
        assert_eq!(*pair[0], debit);
        assert_eq!(*pair[1], Posting { wallet: leg.to, credit: true, ..debit });
    }
    for p in postings {
        let w = before.wallet(&p.wallet).unwrap();
        let customer_side = w.class == Retail && w.linked;
        match (p.reason, p.credit) {
            (PostingReason::Payment, _) => {}
            (PostingReason::Waterfall, false) | (PostingReason::ReverseWaterfall, true) => {
                assert!(customer_side, "waterfall on an unlinked wallet: {p:?}");
            }
            (PostingReason::Waterfall, true) | (PostingReason::ReverseWaterfall, false) => {
                assert!(is_float(before, &p.wallet), "waterfall to a non-float: {p:?}");
            }
            (PostingReason::Mint | PostingReason::Burn, _) => panic!("issuance in a transfer"),
        }
    }
    // Payer side: the per-payment and daily limits of the paying wallet's tier, per holder.
    let day = env.day();
    let mut paid: BTreeMap<HolderRef, u128> = BTreeMap::new();
    for leg in legs {
        let payer = before.wallet(&leg.from).unwrap();
        assert_eq!(payer.status, WalletStatus::Active);
        assert_eq!(before.wallet(&leg.to).unwrap().status, WalletStatus::Active);
        if payer.class != Retail {
            continue;
        }
        let limits = before.policy().tier(payer.tier).unwrap();
        let total = paid.entry(payer.holder).or_default();
        *total += u(leg.amount);
        assert!(*total <= u(limits.per_payment_minor), "per-payment limit exceeded");
        let earlier = before.holder(&payer.holder).filter(|h| h.outflow_day == day);
        let base = earlier.map_or(0, |h| u(h.outflow));
        assert!(base + *total <= u(limits.daily_outflow_minor), "daily outflow exceeded");
        tracker.last_debit_daily.insert(payer.holder, limits.daily_outflow_minor);
    }
    for h in &WORLD.holders {
        let (Some(b), Some(a)) = (before.holder(h), after.holder(h)) else { continue };
        match paid.get(h) {
            Some(total) => {
                let base = if b.outflow_day == day { u(b.outflow) } else { 0 };
                assert_eq!(a.outflow_day, day);
                assert_eq!(u(a.outflow), base + total, "outflow must count every payment");
            }
            None => assert_eq!((a.outflow_day, a.outflow), (b.outflow_day, b.outflow)),
        }
    }
    // Payee side: a credit kept (not swept by a waterfall) was within the payee tier's limit.
    let mut last: BTreeMap<HolderRef, WalletId> = BTreeMap::new();
    for (i, p) in postings.iter().enumerate() {
        let w = before.wallet(&p.wallet).unwrap();
        if p.reason != PostingReason::Payment || !p.credit || w.class != Retail {
            continue;
        }
        let swept = postings
            .get(i + 1)
            .filter(|q| q.wallet == p.wallet && q.reason == PostingReason::Waterfall && !q.credit)
            .map_or(0, |q| u(q.amount));
        assert!(swept <= u(p.amount));
        if u(p.amount) > swept {
            last.insert(w.holder, w.id);
        }
    }
    for (h, id) in last {
        let w = after.wallet(&id).unwrap();
        let holdings = after.holder(&h).unwrap().holdings;
        assert!(holdings <= holding_limit(after, w), "holding limit exceeded on credit");
        tracker.last_kept_credit.insert(h, id);
    }
}

fn check_issuance(before: &State, after: &State, kind: &TxKind, postings: &[Posting]) {
    let (b, a) = (before.supply(), after.supply());
    let (bank, amount, mint) = match kind {
        TxKind::Mint { bank, amount } => (*bank, *amount, true),
        TxKind::Burn { bank, amount } => (*bank, *amount, false),
        _ => unreachable!(),
    };
    let issued_before = u(before.bank(bank).unwrap().issued);
    let issued_after = u(after.bank(bank).unwrap().issued);
    let (wallet, reason) = if mint {
        assert_eq!(u(a.minted), u(b.minted) + u(amount));
        assert_eq!(a.burned, b.burned);
        assert_eq!(u(a.outstanding()), u(b.outstanding()) + u(amount));
        assert_eq!(issued_after, issued_before + u(amount));
        assert!(issued_after <= u(after.bank(bank).unwrap().quota), "mint above quota");
        assert!(a.outstanding() <= after.policy().supply_cap_minor, "mint above the cap");
        (before.bank(bank).unwrap().float_wallet, PostingReason::Mint)
    } else {
        assert_eq!(a.minted, b.minted);
        assert_eq!(u(a.burned), u(b.burned) + u(amount));
        assert_eq!(u(a.outstanding()) + u(amount), u(b.outstanding()));
        assert_eq!(issued_after + u(amount), issued_before);
        (before.bank(BankId::CENTRAL_BANK).unwrap().float_wallet, PostingReason::Burn)
    };
    assert_eq!(postings, [Posting { wallet, credit: mint, amount, reason }]);
}

/// Checks a committed transaction against the state before and after it.
fn check_committed(
    before: &State,
    after: &State,
    env: &BlockEnv,
    tx: &SignedTransaction,
    postings: &[Posting],
    tracker: &mut Tracker,
) {
    let name = tx.body.kind.name();
    assert_eq!(after.check_invariants(), Ok(()), "after a committed {name}");
    check_postings_match_balances(before, after, postings);
    let credits: u128 = postings.iter().filter(|p| p.credit).map(|p| u(p.amount)).sum();
    let debits: u128 = postings.iter().filter(|p| !p.credit).map(|p| u(p.amount)).sum();
    match &tx.body.kind {
        TxKind::Transfer { legs } => {
            assert_eq!(credits, debits, "a transfer's postings must net to zero");
            assert_eq!(before.supply(), after.supply());
            check_transfer(before, after, env, legs, postings, tracker);
        }
        kind @ (TxKind::Mint { .. } | TxKind::Burn { .. }) => {
            check_issuance(before, after, kind, postings);
        }
        kind => {
            assert!(postings.is_empty(), "{name} moved money");
            assert_eq!(before.supply(), after.supply());
            if matches!(
                kind,
                TxKind::SetPolicy(_) | TxKind::AdmitBank { .. } | TxKind::SuspendBank { .. }
            ) {
                let new_float = match kind {
                    TxKind::AdmitBank { float_wallet, .. } => Some(*float_wallet),
                    _ => None,
                };
                let old: Vec<&Wallet> = before.wallets().collect();
                let kept: Vec<&Wallet> =
                    after.wallets().filter(|w| Some(w.id) != new_float).collect();
                assert_eq!(old, kept, "{name} changed a wallet");
            } else {
                check_wallet_admin(before, after, kind);
            }
        }
    }
    assert!(before.recent_tx(&tx.body.id).is_none(), "an id committed twice");
    let recent = after.recent_tx(&tx.body.id).expect("a committed id is remembered");
    assert_eq!(recent.digest, tx.body.digest());
    assert_eq!(recent.expiry_height, tx.body.expiry_height);
    assert!(env.height <= tx.body.expiry_height, "an expired transaction committed");
}

/// Counts of what the generated sequences did, to keep the properties from passing vacuously.
#[derive(Debug, Default)]
struct Coverage {
    committed: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<Rejection, u64>,
    postings: BTreeMap<String, u64>,
}

/// Executes one block's candidates one at a time on `state` (already pruned for the block),
/// checking each, and returns their outcomes.
fn execute_one_by_one(
    state: &mut State,
    env: &BlockEnv,
    planned: &[Planned],
    tracker: &mut Tracker,
    coverage: &mut Coverage,
) -> Vec<TxOutcome> {
    let mut outcomes = Vec::with_capacity(planned.len());
    for p in planned {
        let before = state.clone();
        match execute(state, env, &p.tx, p.sig_ok) {
            Err(rejection) => {
                assert_eq!(
                    *state,
                    before,
                    "a rejected {} changed the state",
                    p.tx.body.kind.name()
                );
                if let Some(expected) = p.expect {
                    assert_eq!(rejection, expected);
                }
                *coverage.rejected.entry(rejection).or_default() += 1;
                outcomes.push(TxOutcome::Rejected(rejection));
            }
            Ok(postings) => {
                assert!(!p.must_fail, "must have been rejected: {:?}", p.tx);
                check_committed(&before, state, env, &p.tx, &postings, tracker);
                *coverage.committed.entry(p.tx.body.kind.name()).or_default() += 1;
                for posting in &postings {
                    *coverage.postings.entry(format!("{:?}", posting.reason)).or_default() += 1;
                }
                outcomes.push(TxOutcome::Committed(postings));
            }
        }
    }
    outcomes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Transactions one by one, blocks built and applied, the chain replayed and verified.
    Chain,
    /// Transactions one by one only (fast; no signature verification).
    Atomic,
}

fn run(steps: &[Step], mode: Mode, coverage: &mut Coverage) {
    let w = &*WORLD;
    let mut ledger = w.base.clone();
    let mut state = ledger.state().clone();
    let mut blocks = w.base_blocks.clone();
    let mut roots = w.base_roots.clone();
    let mut tracker = Tracker::seeded(&state);
    check_world(&state, 0, &tracker);
    let mut generator = Gen::new(w, mode == Mode::Chain, ledger.height() + 1);
    let mut height = ledger.height();
    let mut time_ms = ledger.tip().timestamp_ms;
    let mut pending: Vec<Planned> = Vec::new();
    let end =
        Step { op: Op::EndBlock { next_day: false }, sig: SigMode::Good, expiry: ExpiryMode::Long };
    for step in steps.iter().chain(std::iter::once(&end)) {
        let Op::EndBlock { next_day } = step.op else {
            generator.emit(step, &mut pending);
            continue;
        };
        time_ms += if next_day { DAY_MS } else { 1_000 };
        height += 1;
        let env = BlockEnv { height, timestamp_ms: time_ms };
        // Prunes expired ids exactly as a block does before its first transaction.
        execute_all(&mut state, &env, &[]);
        let outcomes = execute_one_by_one(&mut state, &env, &pending, &mut tracker, coverage);
        check_world(&state, env.day(), &tracker);
        if mode == Mode::Chain {
            let proposer = w.net.bank(0).validator.public_key();
            let candidates: Vec<SignedTransaction> = pending.iter().map(|p| p.tx.clone()).collect();
            let built =
                ledger.build_block(BlockContext { timestamp_ms: time_ms, proposer }, &candidates);
            assert_eq!(
                built.outcomes, outcomes,
                "a block must execute as its transactions do alone"
            );
            assert_eq!(built.ledger.state(), &state);
            assert_eq!(built.block.header.height, height);
            let committed = candidates.iter().zip(&outcomes).filter(|(_, o)| o.is_committed());
            assert!(committed.map(|(t, _)| t).eq(built.block.transactions.iter()));
            let encoded = built.block.encode();
            assert_eq!(Block::decode(&encoded).as_ref(), Ok(&built.block), "block round trip");
            ledger = built.ledger;
            roots.push(ledger.state_root());
            blocks.push(built.block);
        }
        pending.clear();
        generator.height = height + 1;
    }
    if mode == Mode::Chain {
        check_replay(&ledger, &blocks, &roots);
    }
}

/// Replays the chain on a fresh ledger, re-verifies it, and restores the final snapshot.
fn check_replay(ledger: &Ledger, blocks: &[Block], roots: &[Digest]) {
    let w = &*WORLD;
    let genesis = &w.net.genesis;
    // The setup prefix is the same in every case and was replayed from genesis once.
    let setup = w.base_blocks.len();
    let mut fresh = w.replayed_base.clone();
    for (block, root) in blocks.iter().zip(roots).skip(setup) {
        assert_eq!(&block.header.state_root, root);
        let outcome = fresh.apply_block(block).expect("a built block applies");
        assert_eq!(&outcome.state_root, root, "replay diverged at height {}", outcome.height);
        assert!(outcome.outcomes.iter().all(TxOutcome::is_committed));
    }
    assert_eq!(fresh.state(), ledger.state());
    assert_eq!(fresh.tip(), ledger.tip());
    // `verify_chain` is `from_genesis` plus the `apply_block` loop above, whole chain again;
    // a pseudo-random quarter of the cases (by final root) keeps the run time down.
    if ledger.state_root()[0].is_multiple_of(4) {
        let verified = verify_chain(genesis, blocks).expect("the chain verifies");
        assert_eq!(verified.state_root(), ledger.state_root());
        assert_eq!(verified.tip(), ledger.tip());
    }
    let restored = Ledger::restore(genesis, &ledger.snapshot()).expect("snapshot restores");
    assert_eq!(restored.state(), ledger.state());
    assert_eq!(restored.state_root(), ledger.state_root());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(CHAIN_CASES), ..ProptestConfig::default() })]

    /// Full property: per-transaction atomicity and limits, build = one-by-one execution,
    /// world invariants after every block, deterministic replay, chain verification.
    #[test]
    fn chain_invariants_hold_after_every_block(steps in steps()) {
        run(&steps, Mode::Chain, &mut Coverage::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(ATOMIC_CASES), ..ProptestConfig::default() })]

    /// The per-transaction and per-block checks alone, on many more sequences.
    #[test]
    fn transactions_are_atomic_conserving_and_within_limits(steps in steps()) {
        run(&steps, Mode::Atomic, &mut Coverage::default());
    }
}

/// Guards against vacuous properties: a fixed-seed sample of the generator must commit every
/// kind it generates and reach the interesting rejections.
#[test]
fn generator_reaches_commits_and_rejections_of_every_kind() {
    let mut runner = TestRunner::new_with_rng(
        Config { cases: 400, ..Config::default() },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = steps();
    let mut coverage = Coverage::default();
    for _ in 0..400 {
        let steps =
            proptest::strategy::ValueTree::current(&strategy.new_tree(&mut runner).unwrap());
        run(&steps, Mode::Atomic, &mut coverage);
    }
    let kinds = [
        "transfer",
        "open_wallet",
        "set_tier",
        "freeze",
        "unfreeze",
        "close_wallet",
        "set_linked",
        "mint",
        "burn",
        "admit_bank",
        "suspend_bank",
        "set_policy",
    ];
    for kind in kinds {
        assert!(coverage.committed.get(kind).copied().unwrap_or(0) > 0, "no {kind} committed");
    }
    for reason in ["Waterfall", "ReverseWaterfall"] {
        assert!(coverage.postings.contains_key(reason), "no {reason} posting: {coverage:?}");
    }
    let rejections = [
        Rejection::Expired,
        Rejection::ExpiryTooFar,
        Rejection::AlreadyCommitted,
        Rejection::IdReused,
        Rejection::BadSignature,
        Rejection::WrongSigner,
        Rejection::DuplicateSignature,
        Rejection::NotAnOfficer,
        Rejection::DuplicateApproval,
        Rejection::TooFewApprovals,
        Rejection::ForeignWallet,
        Rejection::UnknownWallet,
        Rejection::UnknownBank,
        Rejection::WalletExists,
        Rejection::WalletFrozen,
        Rejection::StatusUnchanged,
        Rejection::ClassNotAllowed,
        Rejection::InvalidTier,
        Rejection::TierBelowHoldings,
        Rejection::BalanceNotZero,
        Rejection::ZeroAmount,
        Rejection::AmountOverflow,
        Rejection::SameWallet,
        Rejection::EmptyTransfer,
        Rejection::InsufficientFunds,
        Rejection::HoldingLimitExceeded,
        Rejection::PaymentLimitExceeded,
        Rejection::DailyOutflowExceeded,
        Rejection::SupplyCapExceeded,
        Rejection::QuotaExceeded,
        Rejection::BurnExceedsIssued,
        Rejection::InvalidPolicy,
        Rejection::InvalidBankName,
        Rejection::DuplicateValidatorKey,
        Rejection::CannotSuspendCentralBank,
        Rejection::BankExists,
    ];
    for r in rejections {
        assert!(coverage.rejected.get(&r).copied().unwrap_or(0) > 0, "never rejected as {r:?}");
    }
}
