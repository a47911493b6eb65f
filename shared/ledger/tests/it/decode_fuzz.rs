//! Malformed input never panics (STYLE rule 10): every decoder of bytes from the network, a user
//! or the disk either returns a typed error or a value whose re-encoding is exactly its input.
//!
//! For each decodable type: every truncation of a valid encoding must be an error; every
//! single-byte flip (three masks per byte) must not panic and, if it decodes, must be canonical;
//! random and spliced byte strings (proptest) likewise. Hostile length prefixes must fail fast
//! without allocating for the claimed size. The genesis JSON parser gets malformed and
//! inconsistent files and must answer with a typed `GenesisError`.

use crate::golden::{sample_chain, sample_transactions};
use cbdc_ledger::codec::Writer;
use cbdc_ledger::testkit::{ChainBuilder, TestNet, amt, tx_id, wallet_id};
use cbdc_ledger::tx::MAX_LEGS;
use cbdc_ledger::{
    Block, BlockContext, BlockHeader, Decode, DecodeError, Encode, Genesis, GenesisError, Ledger,
    Leg, Policy, PolicyUpdate, Rejection, SignedTransaction, SnapshotError, State, TxBody, TxKind,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

/// Runs `f` on `bytes`, turning a panic into a failure that names the input.
fn no_panic<R>(what: &str, bytes: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    match catch_unwind(AssertUnwindSafe(|| f(bytes))) {
        Ok(r) => r,
        Err(_) => panic!("decoding {what} panicked on input {}", hex::encode(bytes)),
    }
}

/// Decodes `bytes` as `T`; a success must be canonical. Returns whether it decoded.
fn decodes_canonically<T: Decode + Encode>(what: &str, bytes: &[u8]) -> bool {
    match no_panic(what, bytes, T::decode) {
        Ok(v) => {
            assert_eq!(v.encode(), bytes, "{what} decoded from non-canonical bytes");
            true
        }
        Err(_) => false,
    }
}

type Check = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// One decoder under test: a name, a valid encoding, and a check of arbitrary bytes that returns
/// whether they were accepted (and asserts canonicity when they were).
struct Target {
    name: &'static str,
    valid: Vec<u8>,
    check: Check,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({}, {} bytes)", self.name, self.valid.len())
    }
}

fn target<T: Decode + Encode + 'static>(name: &'static str, valid: Vec<u8>) -> Target {
    assert!(decodes_canonically::<T>(name, &valid), "{name}: sample does not decode");
    Target { name, valid, check: Box::new(move |b| decodes_canonically::<T>(name, b)) }
}

static TARGETS: LazyLock<Vec<Target>> = LazyLock::new(|| {
    let net = TestNet::new(2);
    let mut targets = Vec::new();
    for (name, tx) in sample_transactions(&net) {
        targets.push(target::<SignedTransaction>(name, tx.encode()));
        if matches!(name, "transfer" | "admit_bank" | "open_wallet") {
            targets.push(target::<TxBody>("body", tx.body.encode()));
        }
        if let TxKind::SetPolicy(update) = &tx.body.kind {
            targets.push(target::<PolicyUpdate>("policy update", update.encode()));
        }
    }
    targets.push(target::<Policy>("policy", net.genesis.policy.encode()));
    targets.push(target::<Rejection>("rejection", Rejection::TierBelowHoldings.encode()));
    let (net, chain) = sample_chain();
    for block in &chain.blocks {
        targets.push(target::<Block>("block", block.encode()));
        targets.push(target::<BlockHeader>("block header", block.header.encode()));
    }
    targets.push(target::<State>("state", chain.ledger.state().encode()));
    let genesis = net.genesis.clone();
    let snapshot = chain.ledger.snapshot();
    assert!(Ledger::restore(&genesis, &snapshot).is_ok());
    let check =
        move |bytes: &[u8]| match no_panic("snapshot", bytes, |b| Ledger::restore(&genesis, b)) {
            Ok(ledger) => {
                assert_eq!(ledger.snapshot(), bytes, "snapshot restored from non-canonical bytes");
                true
            }
            Err(_) => false,
        };
    targets.push(Target { name: "snapshot", valid: snapshot, check: Box::new(check) });
    targets
});

#[test]
fn every_truncation_is_an_error() {
    for t in TARGETS.iter() {
        for n in 0..t.valid.len() {
            assert!(!(t.check)(&t.valid[..n]), "{}: a {n}-byte prefix decoded", t.name);
        }
    }
}

#[test]
fn truncated_snapshots_are_typed_decode_errors() {
    let (net, chain) = sample_chain();
    let snapshot = chain.ledger.snapshot();
    for n in 0..snapshot.len() {
        match Ledger::restore(&net.genesis, &snapshot[..n]) {
            Err(SnapshotError::Decode(
                DecodeError::UnexpectedEnd(_) | DecodeError::TooLong { .. },
            )) => {}
            other => panic!("{n}-byte snapshot prefix: {other:?}"),
        }
    }
    let mut longer = snapshot.clone();
    longer.push(0);
    assert!(matches!(
        Ledger::restore(&net.genesis, &longer),
        Err(SnapshotError::Decode(DecodeError::TrailingBytes(1)))
    ));
    let other = TestNet::new(3).genesis;
    assert!(matches!(Ledger::restore(&other, &snapshot), Err(SnapshotError::WrongChain)));
}

#[test]
fn single_byte_flips_never_panic_and_stay_canonical() {
    for t in TARGETS.iter() {
        for i in 0..t.valid.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bytes = t.valid.clone();
                bytes[i] ^= mask;
                (t.check)(&bytes);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    /// Random bytes, with a plausible first byte and length for each decoder.
    #[test]
    fn random_bytes_never_panic(
        which in any::<prop::sample::Index>(),
        bytes in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let t = &TARGETS[which.index(TARGETS.len())];
        (t.check)(&bytes);
    }

    /// A valid encoding with a random slice overwritten, inserted or removed: reaches the
    /// decoders' deeper paths than pure noise does.
    #[test]
    fn spliced_encodings_never_panic(
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..12,
        insert in prop::collection::vec(any::<u8>(), 0..12),
    ) {
        let t = &TARGETS[which.index(TARGETS.len())];
        let start = at.index(t.valid.len() + 1);
        let end = (start + cut).min(t.valid.len());
        let mut bytes = t.valid[..start].to_vec();
        bytes.extend_from_slice(&insert);
        bytes.extend_from_slice(&t.valid[end..]);
        (t.check)(&bytes);
    }
}

#[test]
fn hostile_counts_fail_fast_without_allocating() {
    // Legs: a u32::MAX count is over the per-field bound.
    let net = TestNet::new(1);
    let tx = &sample_transactions(&net)[0].1;
    let mut bytes = tx.encode();
    let legs_at = 16 + 8 + 1; // id, expiry height, kind tag
    bytes[legs_at..legs_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        SignedTransaction::decode(&bytes),
        Err(DecodeError::TooLong { what: "legs", len: u32::MAX.into(), max: MAX_LEGS.into() })
    );
    // Wallets: a count under the bound (2^28 - 1 wallets, ~25 GiB if it were allocated) must be
    // refused by the remaining-bytes check before any allocation; an allocation of that size
    // would abort the test process.
    let mut w = Writer::new();
    w.var_bytes(b"cbdc-test");
    net.genesis.policy.encode_to(&mut w);
    w.u64(0);
    w.u64(0);
    w.u64(0);
    w.u32(0);
    w.u32((1 << 28) - 1);
    w.fixed(&[0; 256]);
    assert_eq!(State::decode(w.as_bytes()), Err(DecodeError::UnexpectedEnd("wallets")));
    // Block transactions: at the bound and beyond it.
    let (_, chain) = sample_chain();
    let header = chain.blocks[0].header.encode();
    for (count, want) in [
        (
            u32::MAX,
            DecodeError::TooLong { what: "block transactions", len: u32::MAX.into(), max: 65_536 },
        ),
        (65_536, DecodeError::UnexpectedEnd("block transactions")),
    ] {
        let mut bytes = header.clone();
        bytes.extend_from_slice(&count.to_be_bytes());
        bytes.extend_from_slice(&[0; 64]);
        assert_eq!(Block::decode(&bytes), Err(want));
    }
    // A bank name longer than its bound.
    let admit = &sample_transactions(&net)[9].1;
    assert!(matches!(admit.body.kind, TxKind::AdmitBank { .. }));
    let mut bytes = admit.encode();
    let name_at = 16 + 8 + 1 + 4; // id, expiry, tag, bank id
    bytes[name_at..name_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        SignedTransaction::decode(&bytes),
        Err(DecodeError::TooLong { what: "bank name", .. })
    ));
}

/// Execution must not commit what the codec cannot carry: every block `build_block` produces
/// has to decode on the other validators. A transfer with more than `MAX_LEGS` legs encodes, so
/// it must be rejected by execution, not discovered by peers failing to decode the block.
#[test]
fn every_block_the_ledger_builds_decodes() {
    let net = TestNet::new(2);
    let mut chain = ChainBuilder::new(&net);
    let (alice, open_a) = net.open_customer(tx_id(1), 100, 1, "alice", 2, false);
    let (bob, open_b) = net.open_customer(tx_id(2), 100, 2, "bob", 2, false);
    let float = net.bank(1);
    let fund = net.pay(tx_id(4), 100, &float.float_key, float.float_wallet, alice.wallet, 1_000);
    chain.push(&[open_a, open_b, net.mint(tx_id(3), 100, 1, 1_000_000)]);
    assert!(chain.push(&[fund]).iter().all(|o| o.is_committed()));
    let legs = (0..=MAX_LEGS).map(|_| Leg { from: alice.wallet, to: bob.wallet, amount: amt(1) });
    let kind = TxKind::Transfer { legs: legs.collect() };
    let tx = net.sign(TxBody { id: tx_id(5), expiry_height: 100, kind }, &[&alice.key]);
    let ctx = BlockContext {
        timestamp_ms: chain.ledger.tip().timestamp_ms + 1_000,
        proposer: net.bank(0).validator.public_key(),
    };
    let built = chain.ledger.build_block(ctx, &[tx]);
    let decoded = Block::decode(&built.block.encode());
    assert_eq!(
        decoded.as_ref(),
        Ok(&built.block),
        "a block built with a {}-leg transfer (committed: {}) does not decode",
        MAX_LEGS + 1,
        built.outcomes[0].is_committed()
    );
}

/// A snapshot that restores must be safe to run on (STYLE rules 10 and 12: bytes never cause a
/// panic; assert after loading). Here bank 1's float wallet id is pointed at a retail wallet:
/// supply and holder totals still add up, so `restore` accepts it, and the next mint credits a
/// retail wallet behind its holder's back and trips the post-block invariant assertion.
#[test]
fn a_restored_snapshot_never_crashes_the_next_block() {
    let (net, chain) = sample_chain();
    let mut bytes = chain.ledger.snapshot();
    let float = net.bank(1).float_wallet.0;
    // The first occurrence is bank 1's record: banks precede wallets in the state encoding.
    let at = bytes.windows(16).position(|w| w == float).unwrap();
    bytes[at..at + 16].copy_from_slice(&wallet_id("customer-alice").0);
    let Ok(ledger) = Ledger::restore(&net.genesis, &bytes) else {
        return; // Refusing the snapshot is the right answer.
    };
    let ctx = BlockContext {
        timestamp_ms: ledger.tip().timestamp_ms + 1_000,
        proposer: net.bank(0).validator.public_key(),
    };
    let mint = net.mint(tx_id(50), 100, 1, 1_000);
    let built = catch_unwind(AssertUnwindSafe(|| ledger.build_block(ctx, &[mint])));
    assert!(
        built.is_ok(),
        "restore accepted a snapshot whose bank float is a retail wallet, and the next block panicked"
    );
}

// ---------------------------------------------------------------------------------------------
// Genesis JSON.

fn genesis_json() -> Value {
    serde_json::from_str(&TestNet::new(2).genesis.to_json()).unwrap()
}

fn parse(v: &Value) -> Result<Genesis, GenesisError> {
    let text = v.to_string();
    no_panic("genesis", text.as_bytes(), |_| Genesis::from_json(&text))
}

fn expect_err(v: &Value, what: &str, ok: impl Fn(&GenesisError) -> bool) {
    match parse(v) {
        Err(e) if ok(&e) => {}
        other => panic!("{what}: unexpected {other:?}"),
    }
}

#[test]
fn genesis_json_round_trips() {
    let g = TestNet::new(2).genesis;
    assert_eq!(parse(&genesis_json()).unwrap(), g);
    assert_eq!(Genesis::from_json(&g.to_json()).unwrap().hash(), g.hash());
}

#[test]
fn malformed_genesis_json_is_a_typed_error() {
    for text in ["", "{", "null", "[]", "{}", "42", "\"genesis\"", "{\"chain_id\": 1}"] {
        assert!(matches!(Genesis::from_json(text), Err(GenesisError::Json(_))), "{text:?}");
    }
    let is_json = |e: &GenesisError| matches!(e, GenesisError::Json(_));
    let mut v = genesis_json();
    v["surprise"] = json!(1);
    expect_err(&v, "unknown top-level field", is_json);
    let mut v = genesis_json();
    v["banks"][1]["surprise"] = json!(true);
    expect_err(&v, "unknown bank field", is_json);
    let mut v = genesis_json();
    v["policy"]["surprise"] = json!([]);
    expect_err(&v, "unknown policy field", is_json);
    let mut v = genesis_json();
    v["policy"]["tiers"][0]["surprise"] = json!(0);
    expect_err(&v, "unknown tier field", is_json);
    let mut v = genesis_json();
    v["banks"][1]["admin_key"] = json!("zz".repeat(32));
    expect_err(&v, "non-hex key", is_json);
    let mut v = genesis_json();
    v["banks"][1]["float_wallet"] = json!("ab".repeat(17));
    expect_err(&v, "wrong-length wallet id", is_json);
    let mut v = genesis_json();
    v["banks"][1]["quota_minor"] = json!(u64::MAX);
    expect_err(&v, "amount above i64::MAX", is_json);
    let mut v = genesis_json();
    v["banks"][1]["quota_minor"] = json!(-1);
    expect_err(&v, "negative amount", is_json);
    let mut v = genesis_json();
    v["policy"].as_object_mut().unwrap().remove("threshold");
    expect_err(&v, "missing field", is_json);
}

#[test]
fn inconsistent_genesis_is_a_typed_error() {
    use cbdc_ledger::policy::PolicyError;
    let policy =
        |p: PolicyError| move |e: &GenesisError| matches!(e, GenesisError::Policy(x) if *x == p);
    let mut v = genesis_json();
    let bank = v["banks"][1].clone();
    v["banks"].as_array_mut().unwrap().push(bank);
    expect_err(&v, "duplicate bank", |e| matches!(e, GenesisError::DuplicateBank(_)));
    let mut v = genesis_json();
    v["banks"][2]["float_wallet"] = v["banks"][1]["float_wallet"].clone();
    expect_err(&v, "shared float wallet", |e| matches!(e, GenesisError::DuplicateBank(_)));
    let mut v = genesis_json();
    v["banks"][2]["validator_key"] = v["banks"][1]["validator_key"].clone();
    expect_err(&v, "shared validator key", |e| matches!(e, GenesisError::DuplicateBank(_)));
    let mut v = genesis_json();
    v["banks"].as_array_mut().unwrap().remove(0);
    expect_err(&v, "no central bank", |e| matches!(e, GenesisError::Banks));
    let mut v = genesis_json();
    v["banks"] = json!([]);
    expect_err(&v, "no banks", |e| matches!(e, GenesisError::Banks));
    let mut v = genesis_json();
    v["banks"][1]["name"] = json!("");
    expect_err(&v, "empty bank name", |e| matches!(e, GenesisError::BankName(_)));
    let mut v = genesis_json();
    v["banks"][1]["name"] = json!("n".repeat(65));
    expect_err(&v, "long bank name", |e| matches!(e, GenesisError::BankName(_)));
    for id in ["", "has space", "é", &"c".repeat(65)] {
        let mut v = genesis_json();
        v["chain_id"] = json!(id);
        expect_err(&v, "bad chain id", |e| matches!(e, GenesisError::ChainId));
    }
    let mut v = genesis_json();
    v["policy"]["officers"].as_array_mut().unwrap().reverse();
    // Typed, though the variant (DuplicateOfficer) does not say "unsorted".
    expect_err(&v, "unsorted officers", |e| matches!(e, GenesisError::Policy(_)));
    let mut v = genesis_json();
    let first = v["policy"]["officers"][0].clone();
    v["policy"]["officers"][1] = first;
    expect_err(&v, "duplicate officer", policy(PolicyError::DuplicateOfficer));
    for threshold in [0, 4, 65_535] {
        let mut v = genesis_json();
        v["policy"]["threshold"] = json!(threshold);
        expect_err(&v, "threshold", policy(PolicyError::Threshold));
    }
    let mut v = genesis_json();
    v["policy"]["threshold"] = json!(65_536);
    expect_err(&v, "threshold beyond u16", |e| matches!(e, GenesisError::Json(_)));
    let mut v = genesis_json();
    v["policy"]["officers"] = json!([]);
    expect_err(&v, "no officers", policy(PolicyError::OfficerCount));
    let mut v = genesis_json();
    v["policy"]["tiers"] = json!([]);
    expect_err(&v, "no tiers", policy(PolicyError::TierCount));
    for window in [0, 100_001] {
        let mut v = genesis_json();
        v["policy"]["max_expiry_blocks"] = json!(window);
        expect_err(&v, "expiry window", policy(PolicyError::ExpiryWindow));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    /// Arbitrary edits of a valid genesis file parse or fail with a typed error, never panic.
    #[test]
    fn edited_genesis_json_never_panics(
        at in any::<prop::sample::Index>(),
        cut in 0usize..8,
        insert in "[\\[\\]{}\",:0-9a-f -]{0,6}",
    ) {
        let text = TestNet::new(2).genesis.to_json();
        let start = at.index(text.len() + 1);
        let end = (start + cut).min(text.len());
        let edited = format!("{}{}{}", &text[..start], insert, &text[end..]);
        if let Ok(g) = no_panic("genesis", edited.as_bytes(), |_| Genesis::from_json(&edited)) {
            prop_assert!(g.validate().is_ok());
        }
    }
}
