//! Scenarios over several blocks: waterfalls, redemption, admission, day boundaries, and
//! verification of a whole chain (honest and tampered).

use crate::fixture::{EXP, Fx, a};
use cbdc_ledger::testkit::{key, wallet_id};
use cbdc_ledger::{
    BankId, BlockError, Ledger, Leg, PostingReason, Rejection, TxBody, TxKind, TxOutcome,
    verify_chain,
};

#[test]
fn waterfall_sends_the_excess_to_the_payees_bank() {
    let mut fx = Fx::new();
    let (carol, float1) = (fx.carol.wallet, fx.net.bank(1).float_wallet);
    let float_before = fx.balance(float1);
    let tx = fx.fund(1, carol, 150_000);
    let outcomes = fx.commit(&[tx]);
    assert_eq!(fx.balance(carol), 100_000, "carol keeps exactly her holding limit");
    assert_eq!(fx.balance(float1), float_before - 100_000, "the excess returned to bank 1");
    let TxOutcome::Committed(postings) = &outcomes[0] else { unreachable!() };
    assert!(postings.iter().any(|p| p.reason == PostingReason::Waterfall && p.amount == a(50_000)));
}

#[test]
fn reverse_waterfall_tops_up_a_linked_payer() {
    let mut fx = Fx::new();
    let (bob, float1) = (fx.bob.wallet, fx.net.bank(1).float_wallet);
    let float_before = fx.balance(float1);
    let id = fx.id();
    let tx = fx.net.pay(id, EXP, &fx.carol.key, fx.carol.wallet, bob, 30_000);
    fx.commit(&[tx]);
    assert_eq!(fx.balance(fx.carol.wallet), 0);
    assert_eq!(fx.balance(bob), 50_000);
    assert_eq!(fx.balance(float1), float_before - 30_000);
    // An unlinked payer gets no top-up.
    let id = fx.id();
    let tx = fx.net.pay(id, EXP, &fx.bob.key, bob, fx.alice.wallet, 50_001);
    assert_eq!(fx.ch.push(&[tx]), vec![TxOutcome::Rejected(Rejection::InsufficientFunds)]);
}

#[test]
fn multi_leg_transfer_is_atomic() {
    let mut fx = Fx::new();
    let (alice, bob, carol) = (fx.alice.wallet, fx.bob.wallet, fx.carol.wallet);
    let legs = vec![
        Leg { from: alice, to: carol, amount: a(10_000) },
        Leg { from: bob, to: alice, amount: a(25_000) }, // bob has only 20,000
    ];
    let id = fx.id();
    let body = TxBody { id, expiry_height: EXP, kind: TxKind::Transfer { legs: legs.clone() } };
    let tx = fx.net.sign(body, &[&fx.alice.key, &fx.bob.key]);
    assert_eq!(fx.ch.push(&[tx]), vec![TxOutcome::Rejected(Rejection::InsufficientFunds)]);
    assert_eq!((fx.balance(alice), fx.balance(bob), fx.balance(carol)), (60_000, 20_000, 0));

    let mut legs = legs;
    legs[1].amount = a(15_000);
    let id = fx.id();
    let body = TxBody { id, expiry_height: EXP, kind: TxKind::Transfer { legs } };
    let tx = fx.net.sign(body, &[&fx.bob.key, &fx.alice.key]);
    fx.commit(&[tx]);
    assert_eq!((fx.balance(alice), fx.balance(bob), fx.balance(carol)), (65_000, 5_000, 10_000));
}

#[test]
fn redemption_burns_from_the_issuance_wallet() {
    let mut fx = Fx::new();
    let issuance = fx.net.bank(0).float_wallet;
    let before = fx.outstanding();
    let give_back = fx.fund(2, issuance, 5_000);
    let id = fx.id();
    let burn = fx.net.by_officers(id, EXP, TxKind::Burn { bank: BankId(2), amount: a(5_000) }, 2);
    fx.commit(&[give_back, burn]);
    assert_eq!(fx.outstanding(), before - 5_000);
    assert_eq!(fx.state().supply().burned, a(5_000));
    assert_eq!(fx.state().bank(BankId(2)).map(|b| b.issued), Some(a(10_000_000 - 5_000)));
    assert_eq!(fx.balance(issuance), 0);
}

#[test]
fn admission_and_suspension_change_the_validator_set() {
    let mut fx = Fx::new();
    let validator = key("bank-3-validator").public_key();
    let kind = TxKind::AdmitBank {
        bank: BankId(3),
        name: "Bank 3".into(),
        admin_key: key("bank-3-admin").public_key(),
        validator_key: validator,
        endpoint: "bank-9.example:7000".into(),
        float_wallet: wallet_id("bank-3-float"),
        float_key: key("bank-3-float").public_key(),
        quota: a(1_000_000),
    };
    assert_eq!(fx.ch.ledger.epoch(), 0);
    let id = fx.id();
    let admit = fx.net.by_officers(id, EXP, kind, 2);
    fx.commit(&[admit]);
    assert!(fx.ch.ledger.validators().contains(&validator));
    assert_eq!(fx.ch.ledger.validators().len(), 4);
    assert_eq!(fx.ch.ledger.epoch(), 1, "the admission ends epoch 0");
    assert_eq!(
        fx.state().bank(BankId(3)).map(|b| b.endpoint.as_str()),
        Some("bank-9.example:7000")
    );
    let id = fx.id();
    let mint = fx.net.by_officers(id, EXP, TxKind::Mint { bank: BankId(3), amount: a(1_000) }, 2);
    fx.commit(&[mint]);
    assert_eq!(fx.balance(wallet_id("bank-3-float")), 1_000);
    assert_eq!(fx.ch.ledger.epoch(), 1, "a block that keeps the validators keeps the epoch");

    let id = fx.id();
    let suspend = fx.net.by_officers(id, EXP, TxKind::SuspendBank { bank: BankId(3) }, 2);
    fx.commit(&[suspend]);
    assert!(!fx.ch.ledger.validators().contains(&validator));
    assert_eq!(fx.ch.ledger.epoch(), 2);
}

#[test]
fn admitting_and_suspending_in_one_block_counts_two_epochs() {
    let mut fx = Fx::new();
    let kind = TxKind::AdmitBank {
        bank: BankId(3),
        name: "Bank 3".into(),
        admin_key: key("bank-3-admin").public_key(),
        validator_key: key("bank-3-validator").public_key(),
        endpoint: "bank-3.example:7000".into(),
        float_wallet: wallet_id("bank-3-float"),
        float_key: key("bank-3-float").public_key(),
        quota: a(1_000_000),
    };
    let before = fx.ch.ledger.validators();
    let id = fx.id();
    let admit = fx.net.by_officers(id, EXP, kind, 2);
    let id = fx.id();
    let suspend = fx.net.by_officers(id, EXP, TxKind::SuspendBank { bank: BankId(3) }, 2);
    fx.commit(&[admit, suspend]);
    assert_eq!(fx.ch.ledger.validators(), before);
    assert_eq!(fx.ch.ledger.epoch(), 2, "one epoch per admission or suspension");
}

#[test]
fn daily_outflow_resets_at_the_utc_day_boundary() {
    let mut fx = Fx::new();
    let (alice, bob, carol) = (fx.alice.wallet, fx.bob.wallet, fx.carol.wallet);
    let top_up = fx.fund(1, alice, 40_000);
    fx.commit(&[top_up]);
    let id1 = fx.id();
    let id2 = fx.id();
    let p1 = fx.net.pay(id1, EXP, &fx.alice.key, alice, bob, 50_000);
    let p2 = fx.net.pay(id2, EXP, &fx.alice.key, alice, carol, 50_000);
    let refill = fx.fund(1, alice, 10_000);
    fx.commit(&[p1, p2, refill]);
    let id = fx.id();
    let again = fx.net.pay(id, EXP, &fx.alice.key, alice, carol, 1_000);
    assert_eq!(
        fx.ch.push(std::slice::from_ref(&again)),
        vec![TxOutcome::Rejected(Rejection::DailyOutflowExceeded)]
    );
    let next_day = (fx.ch.ledger.tip().timestamp_ms / 86_400_000 + 1) * 86_400_000;
    let outcomes = fx.push_at(next_day, &[again]);
    assert!(outcomes[0].is_committed(), "a new UTC day allows payments again: {outcomes:?}");
}

#[test]
fn an_honest_chain_verifies_and_snapshots_restore_it() {
    let fx = Fx::new();
    let replayed = verify_chain(&fx.net.genesis, &fx.ch.blocks).expect("honest chain verifies");
    assert_eq!(replayed.state_root(), fx.ch.ledger.state_root());
    assert_eq!(replayed.tip(), fx.ch.ledger.tip());
    let restored = Ledger::restore(&fx.net.genesis, &fx.ch.ledger.snapshot()).expect("restores");
    assert_eq!(restored.state_root(), fx.ch.ledger.state_root());
    assert_eq!(restored.state(), fx.ch.ledger.state());
}

fn first_bad_block(fx: &Fx, blocks: &[cbdc_ledger::Block]) -> (u64, BlockError) {
    let err = verify_chain(&fx.net.genesis, blocks).expect_err("tampered chain must not verify");
    match err {
        cbdc_ledger::VerifyChainError::Block(e) => (e.height, e.error),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn a_tampered_chain_names_its_first_bad_block() {
    let fx = Fx::new();
    // An altered amount in block 3 (the funding transfers).
    let mut blocks = fx.ch.blocks.clone();
    let TxKind::Transfer { legs } = &mut blocks[2].transactions[0].body.kind else {
        unreachable!()
    };
    legs[0].amount = a(59_999);
    assert_eq!(first_bad_block(&fx, &blocks), (3, BlockError::TxRootMismatch));

    // A forged state commitment.
    let mut blocks = fx.ch.blocks.clone();
    blocks[1].header.state_root[0] ^= 1;
    assert_eq!(first_bad_block(&fx, &blocks), (2, BlockError::StateRootMismatch));

    // A block that skips a height, and one proposed by a stranger.
    let blocks = vec![fx.ch.blocks[1].clone()];
    assert_eq!(first_bad_block(&fx, &blocks), (2, BlockError::WrongHeight { expected: 1, got: 2 }));
    let mut blocks = fx.ch.blocks.clone();
    blocks[0].header.proposer = key("stranger").public_key();
    assert_eq!(first_bad_block(&fx, &blocks), (1, BlockError::UnknownProposer));
}

#[test]
fn a_block_carrying_a_rejected_transaction_is_invalid() {
    let mut fx = Fx::new();
    // A proposer includes an overspend and recomputes the roots so only execution can catch it.
    let id = fx.id();
    let overspend = fx.net.pay(id, EXP, &fx.bob.key, fx.bob.wallet, fx.alice.wallet, 20_001);
    let honest = fx.ch.ledger.build_block(
        cbdc_ledger::BlockContext {
            timestamp_ms: fx.ch.ledger.tip().timestamp_ms + 1,
            proposer: fx.net.bank(1).validator.public_key(),
        },
        &[],
    );
    let mut bad = honest.block.clone();
    bad.transactions.push(overspend);
    bad.header.tx_count = 1;
    bad.header.tx_root = cbdc_ledger::merkle_root(&bad.transactions);
    let before = fx.ch.ledger.state_root();
    let err = fx.ch.ledger.apply_block(&bad).expect_err("overspend must not apply");
    assert_eq!(
        err,
        BlockError::RejectedTransaction { index: 0, rejection: Rejection::InsufficientFunds }
    );
    assert_eq!(fx.ch.ledger.state_root(), before, "a failed block changes nothing");
    fx.ch.ledger.apply_block(&honest.block).expect("the honest block still applies");
}

#[test]
fn a_block_writing_the_same_entries_many_times_commits_what_a_rebuild_commits() {
    // The set hashes are settled once per changed entry at the end of a block: wallets,
    // holders and floats written several times in one block (a ring of payments, a wallet paid
    // back to its starting balance, a waterfall into a float, a reverse waterfall out of it)
    // must commit exactly what recomputing the sums from the entries gives.
    let mut fx = Fx::new();
    let ids: Vec<_> = (0..5).map(|_| fx.id()).collect();
    let (alice, bob, carol) = (&fx.alice, &fx.bob, &fx.carol);
    let mut txs: Vec<_> = [
        (alice, bob, 1_000),
        (bob, carol, 1_500),
        (carol, alice, 700),
        (alice, bob, 300),
        (bob, alice, 600),
    ]
    .into_iter()
    .zip(ids)
    .map(|((from, to, amount), id)| fx.net.pay(id, EXP, &from.key, from.wallet, to.wallet, amount))
    .collect();
    let (alice, carol) = (fx.alice.wallet, fx.carol.wallet);
    let before = fx.balance(alice);
    let funded = fx.fund(1, carol, 150_000);
    txs.push(funded);
    fx.commit(&txs);
    assert_eq!(fx.balance(alice), before, "alice was paid back to where she started");
    fx.state().check_invariants().expect("every invariant, including the set hashes");
    let restored = Ledger::restore(&fx.net.genesis, &fx.ch.ledger.snapshot()).expect("restores");
    assert_eq!(restored.state_root(), fx.ch.ledger.state_root());
    // Checking the block from the parent (another validator's path) gives the same root.
    let replayed = verify_chain(&fx.net.genesis, &fx.ch.blocks).expect("the chain verifies");
    assert_eq!(replayed.state_root(), fx.ch.ledger.state_root());
}

#[test]
fn the_incremental_state_root_equals_one_rebuilt_from_the_entries() {
    let mut fx = Fx::new();
    // Payments, a waterfall, a reverse waterfall and a burn, then enough empty blocks for the
    // remembered ids to expire and be pruned.
    let id = fx.id();
    let pay = fx.net.pay(id, EXP, &fx.alice.key, fx.alice.wallet, fx.bob.wallet, 1_234);
    let funded = fx.fund(1, fx.carol.wallet, 5);
    fx.commit(&[pay, funded]);
    for _ in 0..3 {
        let restored =
            Ledger::restore(&fx.net.genesis, &fx.ch.ledger.snapshot()).expect("restores");
        assert_eq!(restored.state_root(), fx.ch.ledger.state_root());
        fx.state().check_invariants().expect("every invariant, including the set hashes");
        fx.ch.push(&[]);
    }
    let remembered = fx.state().recent_len();
    assert!(remembered > 0);
    while fx.ch.ledger.height() <= EXP + 1 {
        fx.ch.push(&[]);
    }
    assert_eq!(fx.state().recent_len(), 0, "every id past its expiry is forgotten");
    let restored = Ledger::restore(&fx.net.genesis, &fx.ch.ledger.snapshot()).expect("restores");
    assert_eq!(restored.state_root(), fx.ch.ledger.state_root());
    assert_eq!(restored.state(), fx.state());
}

#[test]
fn a_final_block_applies_without_signature_checks_but_with_every_other() {
    let mut fx = Fx::new();
    let id = fx.id();
    let pay = fx.net.pay(id, EXP, &fx.alice.key, fx.alice.wallet, fx.bob.wallet, 700);
    let ctx = cbdc_ledger::BlockContext {
        timestamp_ms: fx.ch.ledger.tip().timestamp_ms + 1,
        proposer: fx.net.bank(1).validator.public_key(),
    };
    let built = fx.ch.ledger.build_block(ctx, std::slice::from_ref(&pay));
    let (checked, outcome) = fx.ch.ledger.check_block(&built.block).expect("valid");
    let (trusted, trusted_outcome) = fx.ch.ledger.check_final_block(&built.block).expect("valid");
    assert_eq!(checked.state_root(), trusted.state_root());
    assert_eq!(outcome, trusted_outcome);
    assert_eq!(
        fx.ch.ledger.dry_run(ctx.timestamp_ms, std::slice::from_ref(&pay), &|_| false),
        built.outcomes
    );

    // A forged signature is only caught by the full check (which is why only blocks this
    // process verified itself may skip it) ...
    let mut forged = built.block.clone();
    forged.transactions[0].signatures[0].signature.0[0] ^= 1;
    forged.header.tx_root = cbdc_ledger::merkle_root(&forged.transactions);
    assert!(matches!(
        fx.ch.ledger.check_block(&forged),
        Err(BlockError::RejectedTransaction { index: 0, rejection: Rejection::BadSignature })
    ));
    // A mempool's knowledge spares verification only of the very transaction it admitted.
    let admitted = built.block.transactions[0].clone();
    let known = |t: &cbdc_ledger::SignedTransaction| *t == admitted;
    assert!(fx.ch.ledger.check_block_known(&built.block, &known).is_ok());
    assert!(matches!(
        fx.ch.ledger.check_block_known(&forged, &known),
        Err(BlockError::RejectedTransaction { index: 0, rejection: Rejection::BadSignature })
    ));
    // ... while roots, execution and the state commitment are still checked.
    let mut bad_root = built.block.clone();
    bad_root.header.state_root[0] ^= 1;
    assert_eq!(
        fx.ch.ledger.check_final_block(&bad_root).map(|_| ()),
        Err(BlockError::StateRootMismatch)
    );
    let mut bad_amount = built.block.clone();
    let TxKind::Transfer { legs } = &mut bad_amount.transactions[0].body.kind else {
        unreachable!()
    };
    legs[0].amount = a(701);
    assert_eq!(
        fx.ch.ledger.check_final_block(&bad_amount).map(|_| ()),
        Err(BlockError::TxRootMismatch)
    );
}
