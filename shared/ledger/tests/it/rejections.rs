//! One case per rejection code: the transaction is rejected with exactly that code, and the
//! state is exactly as it was before.

use crate::fixture::{EXP, Fx, a};
use cbdc_ledger::testkit::{key, wallet_id};
use cbdc_ledger::{
    Amount, BankId, KycTier, Leg, PolicyUpdate, Rejection, SignedTransaction, TxBody, TxKind,
    TxOutcome, WalletClass,
};
use std::collections::BTreeSet;

type Case = (&'static str, Rejection, fn(&mut Fx) -> SignedTransaction);

fn pay(fx: &mut Fx, from: &str, to: cbdc_ledger::WalletId, amount: u64) -> SignedTransaction {
    let id = fx.id();
    let c = match from {
        "alice" => &fx.alice,
        "bob" => &fx.bob,
        _ => &fx.carol,
    };
    fx.net.pay(id, EXP, &c.key, c.wallet, to, amount)
}

fn officers(fx: &mut Fx, kind: TxKind) -> SignedTransaction {
    let id = fx.id();
    fx.net.by_officers(id, EXP, kind, 2)
}

fn admin(fx: &mut Fx, bank: u32, kind: TxKind) -> SignedTransaction {
    let id = fx.id();
    fx.net.by_bank(id, EXP, bank, kind)
}

fn admit(name: &str, bank: u32, validator: &str) -> TxKind {
    TxKind::AdmitBank {
        bank: BankId(bank),
        name: name.to_string(),
        admin_key: key("new-admin").public_key(),
        validator_key: key(validator).public_key(),
        endpoint: "new-bank.example:7000".into(),
        float_wallet: wallet_id(&format!("float-{bank}")),
        float_key: key("new-float").public_key(),
        quota: a(1_000),
    }
}

fn cases() -> Vec<Case> {
    vec![
        ("payer balance too low", Rejection::InsufficientFunds, |fx| {
            let to = fx.bob.wallet;
            pay(fx, "alice", to, 60_001)
        }),
        ("payee over holding limit", Rejection::HoldingLimitExceeded, |fx| {
            let to = fx.bob.wallet;
            fx.fund(2, to, 80_001)
        }),
        ("holding limit across two banks", Rejection::HoldingLimitExceeded, |fx| {
            // alice's second wallet, at bank 2, under the same holder reference.
            let second = cbdc_ledger::testkit::Customer {
                bank: BankId(2),
                key: key("alice-second"),
                wallet: wallet_id("alice-second"),
                holder: fx.alice.holder,
            };
            let id = fx.id();
            let open = fx.net.open_wallet(id, EXP, &second, WalletClass::Retail, 0, false);
            fx.commit(&[open]);
            fx.fund(2, second.wallet, 40_001)
        }),
        ("per-payment limit", Rejection::PaymentLimitExceeded, |fx| {
            let to = fx.bob.wallet;
            pay(fx, "alice", to, 50_001)
        }),
        ("daily outflow", Rejection::DailyOutflowExceeded, |fx| {
            let (alice, bob, carol) = (fx.alice.wallet, fx.bob.wallet, fx.carol.wallet);
            let top_up = fx.fund(1, alice, 40_000);
            fx.commit(&[top_up]);
            let p1 = pay(fx, "alice", bob, 50_000);
            let p2 = pay(fx, "alice", carol, 50_000);
            let refill = fx.fund(1, alice, 10_000);
            fx.commit(&[p1, p2, refill]);
            pay(fx, "alice", bob, 1)
        }),
        ("frozen payer", Rejection::WalletFrozen, |fx| {
            let wallet = fx.alice.wallet;
            let freeze = admin(fx, 1, TxKind::Freeze { bank: BankId(1), wallet });
            fx.commit(&[freeze]);
            let to = fx.bob.wallet;
            pay(fx, "alice", to, 1)
        }),
        ("closed payee", Rejection::WalletClosed, |fx| {
            let wallet = fx.carol.wallet;
            let close = admin(fx, 1, TxKind::CloseWallet { bank: BankId(1), wallet });
            fx.commit(&[close]);
            pay(fx, "alice", wallet, 1)
        }),
        ("transfer signed by someone else", Rejection::WrongSigner, |fx| {
            let id = fx.id();
            let kind = TxKind::Transfer {
                legs: vec![Leg { from: fx.alice.wallet, to: fx.bob.wallet, amount: a(1) }],
            };
            fx.net.sign(TxBody { id, expiry_height: EXP, kind }, &[&fx.bob.key])
        }),
        ("bank administers another bank's wallet", Rejection::ForeignWallet, |fx| {
            let wallet = fx.alice.wallet;
            admin(fx, 2, TxKind::Freeze { bank: BankId(2), wallet })
        }),
        ("mint with k-1 approvals", Rejection::TooFewApprovals, |fx| {
            let id = fx.id();
            fx.net.by_officers(id, EXP, TxKind::Mint { bank: BankId(1), amount: a(1) }, 1)
        }),
        ("the same officer approves twice", Rejection::DuplicateApproval, |fx| {
            let id = fx.id();
            let body = TxBody {
                id,
                expiry_height: EXP,
                kind: TxKind::Mint { bank: BankId(1), amount: a(1) },
            };
            let o = &fx.net.officers[0];
            fx.net.sign(body, &[o, o])
        }),
        ("approval by a non-officer key", Rejection::NotAnOfficer, |fx| {
            let id = fx.id();
            let body = TxBody {
                id,
                expiry_height: EXP,
                kind: TxKind::Mint { bank: BankId(1), amount: a(1) },
            };
            let stranger = key("stranger");
            fx.net.sign(body, &[&fx.net.officers[0], &stranger])
        }),
        ("identical resubmission", Rejection::AlreadyCommitted, |fx| {
            let to = fx.bob.wallet;
            let tx = pay(fx, "alice", to, 1);
            fx.commit(std::slice::from_ref(&tx));
            tx
        }),
        ("id reused with another payload", Rejection::IdReused, |fx| {
            let to = fx.bob.wallet;
            let tx = pay(fx, "alice", to, 1);
            fx.commit(std::slice::from_ref(&tx));
            fx.net.pay(tx.body.id, EXP, &fx.alice.key, fx.alice.wallet, to, 2)
        }),
        ("expired", Rejection::Expired, |fx| {
            let id = fx.id();
            let h = fx.ch.ledger.height();
            fx.net.pay(id, h, &fx.alice.key, fx.alice.wallet, fx.bob.wallet, 1)
        }),
        ("expiry beyond the window", Rejection::ExpiryTooFar, |fx| {
            let id = fx.id();
            let far = fx.ch.ledger.height() + 1 + 1_001;
            fx.net.pay(id, far, &fx.alice.key, fx.alice.wallet, fx.bob.wallet, 1)
        }),
        ("mint overflowing the amount range", Rejection::AmountOverflow, |fx| {
            let cap = officers(fx, TxKind::SetPolicy(PolicyUpdate::SupplyCap { cap: Amount::MAX }));
            let quota = officers(
                fx,
                TxKind::SetPolicy(PolicyUpdate::BankQuota { bank: BankId(1), quota: Amount::MAX }),
            );
            fx.commit(&[cap, quota]);
            officers(fx, TxKind::Mint { bank: BankId(1), amount: Amount::MAX })
        }),
        ("zero amount", Rejection::ZeroAmount, |fx| {
            let to = fx.bob.wallet;
            pay(fx, "alice", to, 0)
        }),
        ("unknown payee", Rejection::UnknownWallet, |fx| pay(fx, "alice", wallet_id("nobody"), 1)),
        ("mint over the supply cap", Rejection::SupplyCapExceeded, |fx| {
            let cap = a(fx.outstanding());
            let set = officers(fx, TxKind::SetPolicy(PolicyUpdate::SupplyCap { cap }));
            fx.commit(&[set]);
            officers(fx, TxKind::Mint { bank: BankId(1), amount: a(1) })
        }),
        ("mint over the bank's quota", Rejection::QuotaExceeded, |fx| {
            let quota = a(10_000_000);
            let set =
                officers(fx, TxKind::SetPolicy(PolicyUpdate::BankQuota { bank: BankId(1), quota }));
            fx.commit(&[set]);
            officers(fx, TxKind::Mint { bank: BankId(1), amount: a(1) })
        }),
        ("tampered signature", Rejection::BadSignature, |fx| {
            let to = fx.bob.wallet;
            let mut tx = pay(fx, "alice", to, 1);
            tx.signatures[0].signature.0[5] ^= 1;
            tx
        }),
        ("payer signs twice", Rejection::DuplicateSignature, |fx| {
            let id = fx.id();
            let kind = TxKind::Transfer {
                legs: vec![Leg { from: fx.alice.wallet, to: fx.bob.wallet, amount: a(1) }],
            };
            fx.net.sign(TxBody { id, expiry_height: EXP, kind }, &[&fx.alice.key, &fx.alice.key])
        }),
        ("burn beyond what the bank was issued", Rejection::BurnExceedsIssued, |fx| {
            let issuance = fx.net.bank(0).float_wallet;
            let give_back = fx.fund(2, issuance, 1_000);
            fx.commit(&[give_back]);
            officers(fx, TxKind::Burn { bank: BankId(0), amount: a(1) })
        }),
        ("wallet id taken", Rejection::WalletExists, |fx| {
            let id = fx.id();
            fx.net.open_wallet(id, EXP, &fx.alice, WalletClass::Retail, 0, false)
        }),
        ("bank id taken", Rejection::BankExists, |fx| officers(fx, admit("Again", 1, "v-new"))),
        ("mint to an unknown bank", Rejection::UnknownBank, |fx| {
            officers(fx, TxKind::Mint { bank: BankId(99), amount: a(1) })
        }),
        ("suspended bank administers", Rejection::BankSuspended, |fx| {
            let suspend = officers(fx, TxKind::SuspendBank { bank: BankId(2) });
            fx.commit(&[suspend]);
            let wallet = fx.bob.wallet;
            admin(fx, 2, TxKind::Freeze { bank: BankId(2), wallet })
        }),
        ("unfreeze an active wallet", Rejection::StatusUnchanged, |fx| {
            let wallet = fx.alice.wallet;
            admin(fx, 1, TxKind::Unfreeze { bank: BankId(1), wallet })
        }),
        ("bank opens a second float wallet", Rejection::ClassNotAllowed, |fx| {
            let kind = TxKind::OpenWallet {
                bank: BankId(1),
                wallet: wallet_id("float-2"),
                public_key: key("x").public_key(),
                class: WalletClass::BankFloat,
                tier: KycTier(0),
                holder: Default::default(),
                linked: false,
            };
            admin(fx, 1, kind)
        }),
        ("no such tier", Rejection::InvalidTier, |fx| {
            let wallet = fx.alice.wallet;
            admin(fx, 1, TxKind::SetTier { bank: BankId(1), wallet, tier: KycTier(9) })
        }),
        ("downgrade below holdings", Rejection::TierBelowHoldings, |fx| {
            let wallet = fx.alice.wallet;
            let up = admin(fx, 1, TxKind::SetTier { bank: BankId(1), wallet, tier: KycTier(1) });
            fx.commit(&[up]);
            let more = fx.fund(1, wallet, 100_000);
            fx.commit(&[more]);
            admin(fx, 1, TxKind::SetTier { bank: BankId(1), wallet, tier: KycTier(0) })
        }),
        ("close a funded wallet", Rejection::BalanceNotZero, |fx| {
            let wallet = fx.alice.wallet;
            admin(fx, 1, TxKind::CloseWallet { bank: BankId(1), wallet })
        }),
        ("pay yourself", Rejection::SameWallet, |fx| {
            let to = fx.alice.wallet;
            pay(fx, "alice", to, 1)
        }),
        ("transfer without legs", Rejection::EmptyTransfer, |fx| {
            let id = fx.id();
            let kind = TxKind::Transfer { legs: vec![] };
            fx.net.sign(TxBody { id, expiry_height: EXP, kind }, &[&fx.alice.key])
        }),
        ("threshold above the officer count", Rejection::InvalidPolicy, |fx| {
            let officers_now = fx.state().policy().officers.clone();
            let update = PolicyUpdate::Officers { officers: officers_now, threshold: 4 };
            officers(fx, TxKind::SetPolicy(update))
        }),
        ("empty bank name", Rejection::InvalidBankName, |fx| officers(fx, admit("", 7, "v-7"))),
        ("validator endpoint without a port", Rejection::InvalidEndpoint, |fx| {
            let mut kind = admit("Bank Seven", 7, "v-7");
            if let TxKind::AdmitBank { endpoint, .. } = &mut kind {
                *endpoint = "bank-7.example".into();
            }
            officers(fx, kind)
        }),
        ("validator key already registered", Rejection::DuplicateValidatorKey, |fx| {
            officers(fx, admit("Copycat", 7, "bank-1-validator"))
        }),
        ("suspend the central bank", Rejection::CannotSuspendCentralBank, |fx| {
            officers(fx, TxKind::SuspendBank { bank: BankId(0) })
        }),
        ("more legs than a block can carry", Rejection::TooManyLegs, |fx| {
            let id = fx.id();
            let leg = Leg { from: fx.alice.wallet, to: fx.bob.wallet, amount: a(1) };
            let kind = TxKind::Transfer { legs: vec![leg; cbdc_ledger::tx::MAX_LEGS as usize + 1] };
            fx.net.sign(TxBody { id, expiry_height: EXP, kind }, &[&fx.alice.key])
        }),
        ("more signatures than a block can carry", Rejection::TooManySignatures, |fx| {
            let id = fx.id();
            let body = TxBody {
                id,
                expiry_height: EXP,
                kind: TxKind::Mint { bank: BankId(1), amount: a(1) },
            };
            let keys: Vec<_> =
                (0..=cbdc_ledger::tx::MAX_SIGNATURES).map(|i| key(&format!("k{i}"))).collect();
            let refs: Vec<_> = keys.iter().collect();
            fx.net.sign(body, &refs)
        }),
    ]
}

#[test]
fn every_rejection_code_has_a_case_and_changes_nothing() {
    let mut covered = BTreeSet::new();
    for (name, expected, make) in cases() {
        let mut fx = Fx::new();
        let tx = make(&mut fx);
        let before = fx.state().clone();
        let outcomes = fx.ch.push(std::slice::from_ref(&tx));
        assert_eq!(outcomes, vec![TxOutcome::Rejected(expected)], "case `{name}`");
        assert_eq!(fx.state(), &before, "case `{name}`: a rejected transaction changed the state");
        let block = fx.ch.blocks.last().map(|b| b.transactions.len());
        assert_eq!(block, Some(0), "case `{name}`: a rejected transaction entered the block");
        covered.insert(expected);
    }
    let missing: Vec<&str> =
        Rejection::ALL.iter().filter(|r| !covered.contains(r)).map(|r| r.code()).collect();
    assert!(missing.is_empty(), "rejection codes without a case: {missing:?}");
}
