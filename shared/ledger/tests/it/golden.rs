//! Frozen formats: the golden SHA-256 and length of every canonical encoding that is signed,
//! hashed or stored (STYLE rule 23).
//!
//! Every value here is deterministic (testkit keys, fixed ids and amounts). A changed encoding
//! invalidates signatures, block and state hashes, and stored snapshots, so changing a golden is
//! a deliberate act: run `CBDC_BLESS=1 cargo test -p cbdc-ledger --test it golden -- --nocapture`,
//! paste the printed table over [`GOLDEN`], and say in the commit why the format changed.
//!
//! The sample values are shared with `decode_fuzz`, which mutates their encodings.

use cbdc_ledger::crypto::hash_parts;
use cbdc_ledger::testkit::{ChainBuilder, TestNet, amt, holder, key, tx_id, wallet_id};
use cbdc_ledger::{
    Amount, BankId, BankStatus, Block, BlockHeader, Decode, Encode, Genesis, KycTier, Ledger, Leg,
    PolicyUpdate, Rejection, SignedTransaction, State, TierLimits, TxBody, TxKind, TxSignature,
    WalletClass, WalletStatus, merkle_root,
};
use std::fmt::Debug;

/// `(name, encoding length in bytes, hex of hash_parts(b"golden", [encoding]))`.
const GOLDEN: &[(&str, usize, &str)] = &[
    ("tx/transfer", 209, "c55897f977854c2560c136c83d932f79eb01701e6375d24dabfe4d3e5f379d8f"),
    ("body/transfer", 109, "2fbc66b6c1aad73f8eef449c0807f565d4a14af7d13be95647e26d05c2c8d6ca"),
    ("payload/transfer", 147, "f48ac31b4cbe478539fe99acaf12b122d5971fe8cc37f01e3e0eaa689df384da"),
    ("tx_hash/transfer", 32, "41ba5e0be8c0e46059e91c40f4bfb5db30b33c581999719fca20bb01f57689a0"),
    ("tx/open_wallet", 212, "3dc508d3ab7857714617e35bf57b644e9e4d862b30e485c58b25fdd7ae699609"),
    ("body/open_wallet", 112, "b2d981d30b9734b966e2b4e44e9c775e64ab7fc59444dc62b86ea4f47147bcd4"),
    (
        "payload/open_wallet",
        153,
        "c0c58ce7aadd79689cf4b1f9c755d29ba0f3c6662a389988a013113cf537a4fd",
    ),
    ("tx_hash/open_wallet", 32, "7d52d75b49c5700b601ffb07982c41a2e2c81d9280a67ba03e091a01d0536594"),
    ("tx/set_tier", 146, "074d14b7d07e42824ceefca973cc6fd129a1f71d463707cccac33bb6794f4c95"),
    ("body/set_tier", 46, "2701e989a03828c5310a5fb368ff08c2bde67bfe2977a4590ce16f9a2b2953b9"),
    ("payload/set_tier", 84, "402a057c8997a924fbc94279f09e349b565a80f0fe46f4596f8e0e151ff31a11"),
    ("tx_hash/set_tier", 32, "72d3531cd7d36fdb10be268c225c348ff04f3ff5c44e4cbbbb163bbdff6b23d7"),
    ("tx/freeze", 145, "8bff96bfa50e7bfb6a383312e5eeeb7321b4318648156a782921ac9b97f60436"),
    ("body/freeze", 45, "2f95582bbce41f609ba49f19b734a7404897dd27099bcdb734707381bf030fa3"),
    ("payload/freeze", 81, "8cf7be8dc5f4462dddbadb4e90bf1d4089c758c314462b505046c351deb43ff1"),
    ("tx_hash/freeze", 32, "c7c0c5a176bb5c9b296bc2d44f88fd869cbcc7b33b080dbf9d53e1a150e166f7"),
    ("tx/unfreeze", 145, "7cb588bb9e62cc4c5fb10f6b2bc862c0c12da38e4446dac9a0eb223e5f826609"),
    ("body/unfreeze", 45, "b25314be43108eed4f7f9d44d3f431f6a3135b49293d7e7e36c3ed7bd57f48e3"),
    ("payload/unfreeze", 83, "81509537dea9eabb1c1b1598b49da84d61dd43882cf22cecb9110cfbd3e2b6ce"),
    ("tx_hash/unfreeze", 32, "9f48e3c7732c1c6f2355f127da3f02fa936561b65e022fab4e3cc80111ca1400"),
    ("tx/close_wallet", 145, "ca5b3fafa92fcb8d2e5d478b4a5dd9fd41bd7ffce5e8bbce421b98061d401e4e"),
    ("body/close_wallet", 45, "c7cbf823a0b0f82359443f4632b31c4ec84b702d282ec7524c9f414823154466"),
    (
        "payload/close_wallet",
        87,
        "68904998bba1b6e83e37f44f217f96e91e2aef236412386bfdf1caf3589d4ecd",
    ),
    (
        "tx_hash/close_wallet",
        32,
        "ba92f17a671303be394dd41152b7238d03c951b0715a84e41cc933ef7bbdce90",
    ),
    ("tx/set_linked", 146, "d2151523b733376a430a711a3e83217bf8d1131701710b6e04278a08bbfe6dfc"),
    ("body/set_linked", 46, "664f391f0e7846e2add0a7e8c0c5e44b6afc1e1f5254cfc6102051b79ed1147e"),
    ("payload/set_linked", 86, "0433ce4d2f40f79edf8dfc4f1e11e7806d3d40f7a4c3ea7b2a9b5afb248acb6c"),
    ("tx_hash/set_linked", 32, "453127843811a0015a38f3a3cd64ecdd297cbe0367fe9b6369e97b3fc6a10c11"),
    ("tx/mint", 233, "f8deb35ae03f74f28f7976b90a6c2499830ddee2a3240959d043889b2b1c14f6"),
    ("body/mint", 37, "68e65fbffb24b81c66ced1bc9537837b0b415281f582950ce2de91cc187e4640"),
    ("payload/mint", 71, "656eb3ae2f87a8c22aa9bd2e24dc60c553e8aec6dfac24b5314eb0201ba14838"),
    ("tx_hash/mint", 32, "1b92a2dcdd145ff79edeb18fdba140e9b4d312dc261e29f02adf8f82f970a6cf"),
    ("tx/burn", 233, "8b23b35b7ed806b2cc38db2e57b0c5982443156afa8467ffe9796b9ca8de55cb"),
    ("body/burn", 37, "29464ef91807d57c859d5d00b2a5bc2ed2bf15d588cce19b29617ca44c82b674"),
    ("payload/burn", 71, "804511467c93d6296ac202d90e987054066f8065a21e48910666ffc5c9448007"),
    ("tx_hash/burn", 32, "fb657182289a8e961c138b994f76403a9097ff47bcf6535554b9f73a0b21f86c"),
    ("tx/admit_bank", 381, "c52cea56ebadf2f96f588c0243aee7b769d8444aad4b0f6388106ff580030f70"),
    ("body/admit_bank", 185, "78079af566f87157b79ab5cce9c9da3ea2ffaa1ffadf5cc5664abad794bd86a6"),
    ("payload/admit_bank", 225, "7c37a0a7573c76c58f487969d21a670c7c78db49280bd477d005bec69ceb0557"),
    ("tx_hash/admit_bank", 32, "f6cca2c338c07e4eec6ab8d9c3bc4358867e6c2cf4e52cb9e9bfce9f86bee871"),
    ("tx/suspend_bank", 225, "5e9f04db1f6837ea8ed83e080b3f2d8a22b6e3401513c25df45ab52b5a694b36"),
    ("body/suspend_bank", 29, "41055dada05ec237d7b6b20e3a12c1f61f102375e564f498a48940f311e3a683"),
    (
        "payload/suspend_bank",
        71,
        "ec73fcd87237fc2d174850dc98fc635c4b26097d2b15b76a787cd3fe84737cf5",
    ),
    (
        "tx_hash/suspend_bank",
        32,
        "a5cd4d8f0a0afc2596db2061ffc70c73adab9418d25480219a94352137fde666",
    ),
    (
        "tx/set_policy/officers",
        324,
        "71edd9945012ea5f7b56f85f3f1932da619ca1abd3660042fcd1c61c40c18f56",
    ),
    (
        "body/set_policy/officers",
        128,
        "d0cef964dbbf01d88e9efefce091eb2c8635b6e5132b11b126f5d7bd660252a4",
    ),
    (
        "payload/set_policy/officers",
        168,
        "4fea3b1673c88dcbc937f56a8208b8a992e4c62896597fc8be9fc126d9533dac",
    ),
    (
        "tx_hash/set_policy/officers",
        32,
        "b8fd69cc6762668615f8d70377227229c6f2ad2889542c12ef1326da2565c66b",
    ),
    (
        "policy_update/set_policy/officers",
        103,
        "df8a3b48ee7ff36c31b044ee6b97a2435f61e4309e406da8bd56dfe703f1e4f8",
    ),
    (
        "tx/set_policy/supply_cap",
        230,
        "7c7a8e4f4a2888166d28c6dd06c7c4b55e18a85b28710ad3b7be702499a18264",
    ),
    (
        "body/set_policy/supply_cap",
        34,
        "7b988eafafb045541709f9aa38eb4fd870cf8f601330b76cb861828a65afeff8",
    ),
    (
        "payload/set_policy/supply_cap",
        74,
        "c5f835ad5d36ce5eedfac7d1f66a679968e18048df7f2241bff926c0f185b726",
    ),
    (
        "tx_hash/set_policy/supply_cap",
        32,
        "30b9580bda36e1dd16d5e3df73888b8a131c9c050b9deaab3acb0e23e3bb2141",
    ),
    (
        "policy_update/set_policy/supply_cap",
        9,
        "700a397ecd15fac7707cd9a056c66bcf21c781ba225328459a2cc630250d43d2",
    ),
    ("tx/set_policy/tier", 247, "ffd218e494ac892c0adf34cc06bef4303c7bab7c18decc873c08e16cc8c5443a"),
    (
        "body/set_policy/tier",
        51,
        "d7b3714667f62261754eac56c11c9d55782d8bfaa09fbc5b32c3c54022b974bf",
    ),
    (
        "payload/set_policy/tier",
        91,
        "f6b4370cf22d9dc5de28fec2b938293cb03baf2d621e67eecc2dafaeda8f6479",
    ),
    (
        "tx_hash/set_policy/tier",
        32,
        "14b51e186636e5f2e73720417b482d17c752100b1e0ec4b0774f78d5161f559c",
    ),
    (
        "policy_update/set_policy/tier",
        26,
        "f22467cae4355df92c9feac5a54c9bdfa8c1ba91be8ef9c35cc73a122bb122a9",
    ),
    (
        "tx/set_policy/bank_quota",
        234,
        "74bee9fcb75bbcbac8b8cbe627b26fdf8d9c2b86d0a070da3d0a238da6e6c452",
    ),
    (
        "body/set_policy/bank_quota",
        38,
        "c70f4475970bc625eb73357fffd680c64f91f0f157240e0855c1ebd6de54b4f1",
    ),
    (
        "payload/set_policy/bank_quota",
        78,
        "477e55342d46f4e73843ce294d3a31a4a183a08764cf6e4465e1efe8ef61dcb8",
    ),
    (
        "tx_hash/set_policy/bank_quota",
        32,
        "f92b0de7aa343f64c93c9fbe57354e9e5c56593170e0932747bacd6f23281317",
    ),
    (
        "policy_update/set_policy/bank_quota",
        13,
        "76a9aacad6f4bc644f550c3a379fdad3701c7f4a243a4ad48d34ca65cd4daabf",
    ),
    ("amount/zero", 8, "ab259f087728f6de075c15fc4a41763294da096127b4d11df3de56fcc3bed2ad"),
    ("amount/one", 8, "9524460501eccaedcba249d64504af2ff52bddd9288fada328e0e5628b72b8ed"),
    ("amount/max", 8, "222f5d4613640315a755e55ac3ffe2dadb3f2f2b33a710fef24d39e9bab8774b"),
    ("wallet_id", 16, "cf2d36ebdd7e7ca09d9c802228fc512beef32f2e0fc3c2cc13ca761a407cac95"),
    ("tx_id", 16, "58847faab73b42c635c38d4e38178a304f67197049cdc0e29a74baf83b0015ed"),
    ("holder_ref", 32, "294cbb754a42a0da749783adea6e52708564ec86f8cfe4bc4af9639ec188fe20"),
    ("public_key", 32, "dba30f52453a79b1fe1c66fc02d1ec0ac8c52c5770d9b38b934cb7ddb2a70d42"),
    ("bank_id", 4, "03235f934ceecb20c22e93150ff845dce122f13a58076429ec381c8d139ec2c1"),
    ("kyc_tier", 1, "23c55e81be2e4d09376d2939435359374cabd92c8477d478101b222bc90a2528"),
    ("wallet_class/all", 4, "7f8a46c80ea4970fa715815e6ed403ffe3bb5840f04c91d6bf2f8393b1cde21a"),
    ("wallet_status/all", 3, "83a4a77b1c1a2d59232ea2e4958150267356ec2d6f79787adafd95499adb9ec1"),
    ("bank_status/all", 2, "1b2c8460e9bcf37d87f21f8ae1f9b8ed54a015dea8064fc73a18d15843ba7d28"),
    (
        "rejection/all_tags_and_codes",
        722,
        "f148d74edd10df6d5ef57ba5d478d13516d3a6414bbaecb93ebb2f8762fec75c",
    ),
    ("leg", 40, "69c6303476c243b354ef58ee97ed2232ba5d83af1533c5f10f563ebbb297819b"),
    (
        "signature/deterministic",
        64,
        "8a65006754a03a79ac065bfda3bbb9f863c112bc3f85f8d105173cd9c6765a63",
    ),
    ("tx_signature", 96, "e1e7018850eaae62869c983cc3e610d28345e2abf079cff4a315c74abeb6862e"),
    ("tier_limits", 24, "8c38d34f934c77acd0bf4ec18b3791f65e01db0192145aea69bf571cc963387d"),
    ("policy/genesis", 194, "8cfd5d4b3df2bcfbffc13296714cee540bbe052fb57e0300a9fda3a9adffdfc7"),
    ("genesis/hash", 32, "35f400f0f8bfbacc19bcf7e11b8777e4a7e1d45ab05bddc8802d94377d4c59e9"),
    ("genesis/json", 2184, "b886fc99f957814be9c4981074c39229b02af8d44ade4f237a115121f1e0e3d0"),
    ("block/1/header", 148, "0ca21ae243554ddcfb17bb8c27836f5a371444be213b8f74fa50ea26b982f5b0"),
    ("block/1", 1021, "18cdc33a3e99c37421c7c9dd31bb91abf43bee07462d2f1272e9583c6478480b"),
    ("block/1/hash", 32, "d24c58619684d5e1af3b0bf1e55b04324a3780e353f1e94ddbe0582247e5fc98"),
    ("block/2/header", 148, "24dcabe785cfbf32d6fdeaea2d78fc48ac703be7f894b0c531494bb29fd00544"),
    ("block/2", 804, "ba9de1628a36179b3f01bffa0e67020f5a4357202e07a60abc039339e56d8be7"),
    ("block/2/hash", 32, "433fe28827e6d8b80e50f98e7cd9ec3cc730f4af544c2ca3e9b62e05b73070e2"),
    ("merkle_root/0", 32, "c0f276ba3a2cc37a114ba35cc729b6cf09de8014264d948908552db30d505444"),
    ("merkle_root/1", 32, "91003e086c5ba576295074ec87b8bac3456c95bbd8fff0f1d8aff0e637013a78"),
    ("merkle_root/2", 32, "6e4782d5a75de294fd0c097387c14dd08e761b3f5fda9509bf4fe569a8d19623"),
    ("merkle_root/3", 32, "056707a5f6473f6acc7401bae70a616bf9e04a23dbbbc0b9e39c4b609ad2e2b0"),
    ("state/height_2", 1835, "04ca74f663bbf56fa3837e8d1b323cfa45bf5064e42854d6e57fdd60631637dc"),
    ("state_root/height_2", 32, "81e289efc291ff327443b6ef4eba4c193fbe773762dacf4ae72609949fc35bfc"),
    ("snapshot/height_2", 1915, "eb09f096d91e149ba73b780b210c3bbafc665e74b7e2a317a12d61bb96eddbec"),
];

/// The golden hash of an encoding.
fn golden_hash(bytes: &[u8]) -> String {
    hex::encode(hash_parts(b"golden", &[bytes]))
}

/// One sample of every transaction kind, and of every policy update inside `SetPolicy`.
pub(crate) fn sample_kinds(net: &TestNet) -> Vec<(&'static str, TxKind)> {
    let alice = wallet_id("customer-alice");
    let bob = wallet_id("customer-bob");
    let updates = [
        (
            "set_policy/officers",
            PolicyUpdate::Officers { officers: net.genesis.policy.officers.clone(), threshold: 3 },
        ),
        ("set_policy/supply_cap", PolicyUpdate::SupplyCap { cap: amt(2_000_000_000_000) }),
        (
            "set_policy/tier",
            PolicyUpdate::Tier {
                tier: KycTier(3),
                limits: TierLimits {
                    holding_minor: amt(5_000_000),
                    per_payment_minor: amt(1_000_000),
                    daily_outflow_minor: amt(2_500_000),
                },
            },
        ),
        ("set_policy/bank_quota", PolicyUpdate::BankQuota { bank: BankId(2), quota: amt(7_777) }),
    ];
    let mut kinds = vec![
        (
            "transfer",
            TxKind::Transfer {
                legs: vec![
                    Leg { from: alice, to: bob, amount: amt(12_345) },
                    Leg { from: alice, to: wallet_id("bank-1-float"), amount: amt(1) },
                ],
            },
        ),
        (
            "open_wallet",
            TxKind::OpenWallet {
                bank: BankId(1),
                wallet: alice,
                public_key: key("customer-alice").public_key(),
                class: WalletClass::Retail,
                tier: KycTier(1),
                holder: holder("alice"),
                linked: true,
            },
        ),
        ("set_tier", TxKind::SetTier { bank: BankId(1), wallet: alice, tier: KycTier(2) }),
        ("freeze", TxKind::Freeze { bank: BankId(1), wallet: alice }),
        ("unfreeze", TxKind::Unfreeze { bank: BankId(1), wallet: alice }),
        ("close_wallet", TxKind::CloseWallet { bank: BankId(1), wallet: alice }),
        ("set_linked", TxKind::SetLinked { bank: BankId(1), wallet: alice, linked: false }),
        ("mint", TxKind::Mint { bank: BankId(1), amount: amt(1_000_000) }),
        ("burn", TxKind::Burn { bank: BankId(2), amount: amt(250_000) }),
        (
            "admit_bank",
            TxKind::AdmitBank {
                bank: BankId(9),
                name: "Bank Nine".to_string(),
                admin_key: key("bank-9-admin").public_key(),
                validator_key: key("bank-9-validator").public_key(),
                endpoint: "bank-9.example:7000".into(),
                float_wallet: wallet_id("bank-9-float"),
                float_key: key("bank-9-float").public_key(),
                quota: amt(900_000_000),
            },
        ),
        ("suspend_bank", TxKind::SuspendBank { bank: BankId(2) }),
    ];
    kinds.extend(updates.into_iter().map(|(name, u)| (name, TxKind::SetPolicy(u))));
    kinds
}

/// Fails to compile when a kind is added without a golden sample above.
fn kind_is_sampled(kind: &TxKind) -> bool {
    match kind {
        TxKind::Transfer { .. }
        | TxKind::OpenWallet { .. }
        | TxKind::SetTier { .. }
        | TxKind::Freeze { .. }
        | TxKind::Unfreeze { .. }
        | TxKind::CloseWallet { .. }
        | TxKind::SetLinked { .. }
        | TxKind::Mint { .. }
        | TxKind::Burn { .. }
        | TxKind::AdmitBank { .. }
        | TxKind::SuspendBank { .. } => true,
        TxKind::SetPolicy(
            PolicyUpdate::Officers { .. }
            | PolicyUpdate::SupplyCap { .. }
            | PolicyUpdate::Tier { .. }
            | PolicyUpdate::BankQuota { .. },
        ) => true,
    }
}

/// Each sample kind in a signed transaction, with the signers its authority asks for.
pub(crate) fn sample_transactions(net: &TestNet) -> Vec<(&'static str, SignedTransaction)> {
    sample_kinds(net)
        .into_iter()
        .enumerate()
        .map(|(i, (name, kind))| {
            let body = TxBody { id: tx_id(0x0100 + i as u64), expiry_height: 77, kind };
            let tx = match &body.kind {
                TxKind::Transfer { .. } => net.sign(body, &[&key("customer-alice")]),
                TxKind::Mint { .. }
                | TxKind::Burn { .. }
                | TxKind::AdmitBank { .. }
                | TxKind::SuspendBank { .. }
                | TxKind::SetPolicy(_) => net.sign(body, &[&net.officers[0], &net.officers[2]]),
                _ => net.sign(body, &[&net.bank(1).admin]),
            };
            (name, tx)
        })
        .collect()
}

/// A two-block chain on `TestNet::new(2)`: customers opened and money minted, then payments,
/// a freeze and a waterfall.
pub(crate) fn sample_chain() -> (TestNet, ChainBuilder) {
    let net = TestNet::new(2);
    let mut chain = ChainBuilder::new(&net);
    let (alice, open_a) = net.open_customer(tx_id(1), 100, 1, "alice", 0, false);
    let (bob, open_b) = net.open_customer(tx_id(2), 100, 2, "bob", 0, true);
    let (carol, open_c) = net.open_customer(tx_id(3), 100, 1, "carol", 1, false);
    let first = [open_a, open_b, open_c, net.mint(tx_id(4), 100, 1, 5_000_000)];
    assert!(chain.push(&first).iter().all(|o| o.is_committed()));
    let float = net.bank(1);
    let second = [
        net.pay(tx_id(5), 100, &float.float_key, float.float_wallet, alice.wallet, 90_000),
        net.pay(tx_id(6), 100, &alice.key, alice.wallet, bob.wallet, 40_000),
        net.pay(tx_id(7), 100, &float.float_key, float.float_wallet, bob.wallet, 80_000),
        net.by_bank(tx_id(8), 100, 1, TxKind::Freeze { bank: BankId(1), wallet: carol.wallet }),
    ];
    let outcomes = chain.push(&second);
    assert!(outcomes.iter().all(|o| o.is_committed()), "{outcomes:?}");
    (net, chain)
}

/// Every golden item: a name and its canonical bytes.
fn encodings() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>| out.push((name.to_string(), bytes));
    let net = TestNet::new(2);
    for (name, tx) in sample_transactions(&net) {
        put(&format!("tx/{name}"), tx.encode());
        put(&format!("body/{name}"), tx.body.encode());
        put(&format!("payload/{name}"), tx.body.signing_payload(net.chain_id()));
        put(&format!("tx_hash/{name}"), tx.hash().to_vec());
        if let TxKind::SetPolicy(update) = &tx.body.kind {
            put(&format!("policy_update/{name}"), update.encode());
        }
    }
    put("amount/zero", Amount::ZERO.encode());
    put("amount/one", amt(1).encode());
    put("amount/max", Amount::MAX.encode());
    put("wallet_id", wallet_id("golden").encode());
    put("tx_id", tx_id(0x0102_0304_0506_0708).encode());
    put("holder_ref", holder("golden").encode());
    put("public_key", key("golden").public_key().encode());
    put("bank_id", BankId(0xdead_beef).encode());
    put("kyc_tier", KycTier(7).encode());
    let classes = [
        WalletClass::Retail,
        WalletClass::Merchant,
        WalletClass::BankFloat,
        WalletClass::CentralBankIssuance,
    ];
    put("wallet_class/all", classes.iter().flat_map(Encode::encode).collect());
    let statuses = [WalletStatus::Active, WalletStatus::Frozen, WalletStatus::Closed];
    put("wallet_status/all", statuses.iter().flat_map(Encode::encode).collect());
    let banks = [BankStatus::Active, BankStatus::Suspended];
    put("bank_status/all", banks.iter().flat_map(Encode::encode).collect());
    let mut rejections = Vec::new();
    for r in Rejection::ALL {
        rejections.extend(r.encode());
        rejections.extend(r.code().as_bytes());
        rejections.push(b'\n');
    }
    put("rejection/all_tags_and_codes", rejections);
    put("leg", Leg { from: wallet_id("a"), to: wallet_id("b"), amount: amt(5) }.encode());
    let signer = key("golden-signer");
    let signature = signer.sign(b"cbdc golden message");
    put("signature/deterministic", signature.encode());
    put("tx_signature", TxSignature { signer: signer.public_key(), signature }.encode());
    put("tier_limits", net.genesis.policy.tiers[1].encode());
    put("policy/genesis", net.genesis.policy.encode());
    put("genesis/hash", net.genesis.hash().to_vec());
    put("genesis/json", net.genesis.to_json().into_bytes());
    let (_, chain) = sample_chain();
    for (i, block) in chain.blocks.iter().enumerate() {
        let h = i + 1;
        put(&format!("block/{h}/header"), block.header.encode());
        put(&format!("block/{h}"), block.encode());
        put(&format!("block/{h}/hash"), block.hash().to_vec());
    }
    let txs = &chain.blocks[1].transactions;
    for n in [0, 1, 2, 3] {
        put(&format!("merkle_root/{n}"), merkle_root(&txs[..n]).to_vec());
    }
    put("state/height_2", chain.ledger.state().encode());
    put("state_root/height_2", chain.ledger.state_root().to_vec());
    put("snapshot/height_2", chain.ledger.snapshot());
    out
}

#[test]
fn encodings_are_frozen() {
    let actual = encodings();
    if std::env::var_os("CBDC_BLESS").is_some() {
        eprintln!("const GOLDEN: &[(&str, usize, &str)] = &[");
        for (name, bytes) in &actual {
            eprintln!("    ({name:?}, {}, {:?}),", bytes.len(), golden_hash(bytes));
        }
        eprintln!("];");
        return;
    }
    let mut problems = Vec::new();
    for (name, bytes) in &actual {
        let want = GOLDEN.iter().find(|(n, _, _)| n == name);
        let got = (bytes.len(), golden_hash(bytes));
        match want {
            None => problems.push(format!("{name}: no golden value")),
            Some((_, len, hash)) if (*len, *hash) != (got.0, got.1.as_str()) => {
                problems.push(format!("{name}: {len} bytes {hash} -> {} bytes {}", got.0, got.1));
            }
            Some(_) => {}
        }
    }
    for (name, _, _) in GOLDEN {
        if !actual.iter().any(|(n, _)| n == name) {
            problems.push(format!("{name}: golden value no longer produced"));
        }
    }
    assert!(
        problems.is_empty(),
        "frozen encodings changed; this breaks signatures, block/state hashes and stored \
         snapshots. If the change is deliberate, re-bless with `CBDC_BLESS=1 cargo test -p \
         cbdc-ledger --test it golden -- --nocapture`, paste the table and explain the format \
         change in the commit:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_kind_and_policy_update_has_a_golden_sample() {
    let net = TestNet::new(2);
    let kinds = sample_kinds(&net);
    assert!(kinds.iter().all(|(_, k)| kind_is_sampled(k)));
    let mut tags: Vec<u8> = kinds.iter().map(|(_, k)| k.tag()).collect();
    tags.dedup();
    assert_eq!(tags, (1..=12).collect::<Vec<u8>>(), "one sample per kind, in tag order");
    let updates = kinds.iter().filter(|(_, k)| matches!(k, TxKind::SetPolicy(_))).count();
    assert_eq!(updates, 4);
    assert_eq!(Rejection::ALL.len(), 41, "a new rejection needs a re-blessed golden");
    for (i, r) in Rejection::ALL.iter().enumerate() {
        assert_eq!(usize::from(r.tag()), i + 1, "rejection tags are dense and ordered");
    }
}

fn round_trip<T: Encode + Decode + PartialEq + Debug>(value: &T) {
    let bytes = value.encode();
    assert_eq!(T::decode(&bytes).as_ref(), Ok(value));
}

#[test]
fn every_encoding_decodes_to_its_value() {
    let net = TestNet::new(2);
    for (_, tx) in sample_transactions(&net) {
        round_trip(&tx);
        round_trip(&tx.body);
        round_trip(&tx.body.kind);
        for sig in &tx.signatures {
            round_trip(sig);
        }
        if let TxKind::SetPolicy(update) = &tx.body.kind {
            round_trip(update);
        }
        if let TxKind::Transfer { legs } = &tx.body.kind {
            legs.iter().for_each(round_trip);
        }
    }
    for a in [Amount::ZERO, amt(1), Amount::MAX] {
        round_trip(&a);
    }
    round_trip(&wallet_id("golden"));
    round_trip(&tx_id(42));
    round_trip(&holder("golden"));
    round_trip(&key("golden").public_key());
    round_trip(&BankId(u32::MAX));
    round_trip(&KycTier(u8::MAX));
    for c in [WalletClass::Retail, WalletClass::Merchant, WalletClass::BankFloat] {
        round_trip(&c);
    }
    round_trip(&WalletClass::CentralBankIssuance);
    for s in [WalletStatus::Active, WalletStatus::Frozen, WalletStatus::Closed] {
        round_trip(&s);
    }
    round_trip(&BankStatus::Suspended);
    Rejection::ALL.iter().for_each(round_trip);
    round_trip(&key("golden-signer").sign(b"cbdc golden message"));
    round_trip(&net.genesis.policy);
    net.genesis.policy.tiers.iter().for_each(round_trip);
    let (net, chain) = sample_chain();
    for block in &chain.blocks {
        round_trip(block);
        round_trip(&block.header);
    }
    let state = chain.ledger.state();
    round_trip(state);
    let restored = Ledger::restore(&net.genesis, &chain.ledger.snapshot()).unwrap();
    assert_eq!(restored.state(), state);
    assert_eq!(restored.tip(), chain.ledger.tip());
    assert_eq!(restored.state_root(), chain.ledger.state_root());
    assert_eq!(restored.snapshot(), chain.ledger.snapshot());
    assert_eq!(Genesis::from_json(&net.genesis.to_json()).unwrap(), net.genesis);
}

#[test]
fn ed25519_signatures_are_deterministic() {
    let message = b"cbdc golden message";
    let a = key("golden-signer").sign(message);
    let b = key("golden-signer").sign(message);
    assert_eq!(a, b, "the same key and message must give the same signature (RFC 8032)");
    assert_ne!(a, key("golden-signer").sign(b"another message"));
    assert_ne!(a, key("other-signer").sign(message));
    // The golden value itself is frozen in GOLDEN as "signature/deterministic".
    let want = GOLDEN.iter().find(|(n, _, _)| *n == "signature/deterministic");
    if std::env::var_os("CBDC_BLESS").is_none() {
        assert_eq!(want.map(|(_, _, h)| *h), Some(golden_hash(&a.encode()).as_str()));
    }
}

/// A snapshot taken at genesis (or of any state with few holders and remembered ids) must
/// restore: a node that snapshots right after starting a chain has to be able to come back.
#[test]
fn a_fresh_chains_snapshot_restores() {
    for banks in 1..=4 {
        let net = TestNet::new(banks);
        let ledger = Ledger::from_genesis(&net.genesis).unwrap();
        let restored = Ledger::restore(&net.genesis, &ledger.snapshot());
        let restored = restored.unwrap_or_else(|e| {
            panic!("genesis snapshot with {banks} commercial banks does not restore: {e}")
        });
        assert_eq!(restored.state(), ledger.state());
        assert_eq!(State::decode(&ledger.state().encode()).as_ref(), Ok(ledger.state()));
    }
}

/// Guards the header field order independently of the hashes above.
#[test]
fn block_header_layout_is_fixed_width() {
    let header = BlockHeader {
        height: 1,
        parent_hash: [2; 32],
        timestamp_ms: 3,
        proposer: key("p").public_key(),
        tx_root: [4; 32],
        state_root: [5; 32],
        tx_count: 6,
    };
    let bytes = header.encode();
    assert_eq!(bytes.len(), 8 + 32 + 8 + 32 + 32 + 32 + 4);
    assert_eq!(&bytes[..8], &1u64.to_be_bytes());
    assert_eq!(&bytes[8..40], &[2; 32]);
    assert_eq!(&bytes[40..48], &3u64.to_be_bytes());
    assert_eq!(&bytes[bytes.len() - 4..], &6u32.to_be_bytes());
    let block = Block { header: BlockHeader { tx_count: 0, ..header }, transactions: vec![] };
    assert_eq!(block.encode().len(), bytes.len() + 4);
}
