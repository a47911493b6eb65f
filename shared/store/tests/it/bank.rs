//! The intermediary's records: customers unique per login and per person, wallets with sealed
//! keys capped per customer, payments idempotent per principal and key under concurrency and
//! settled once, payment requests paid once, and the receipt and restore reads.

use std::sync::Barrier;

use cbdc_store::{
    BankWalletRecord, Custody, CustomerRecord, CustomerStatus, Direction, HistoryRow,
    MAX_CUSTOMERS_PAGE, MAX_WALLETS_PER_CUSTOMER, PaymentInsert, PaymentRecord,
    PaymentRequestRecord, PaymentRequestState, PaymentState, ProjectionBatch, Sealed, Store,
    StoreError, StoredSnapshot, UserRecord,
};

use crate::support::{TestDb, chain, on_both_backends};

on_both_backends!(
    customers_round_trip_and_page_by_id,
    the_customer_page_is_capped,
    a_taken_username_or_person_is_a_duplicate,
    invalid_customers_are_refused,
    customers_sign_in_as_users_with_the_customer_role,
    wallets_round_trip_in_creation_order,
    wallet_custody_and_ownership_are_enforced,
    a_customer_has_a_bounded_number_of_wallets,
    payments_are_idempotent_per_principal_and_key,
    concurrent_inserts_of_one_key_insert_once,
    payments_settle_once,
    invalid_payments_are_refused,
    payment_requests_are_paid_once,
    history_of_a_transaction_is_found_across_projections,
    the_snapshot_at_or_below_a_height_is_the_newest_such,
    damaged_rows_are_corrupt_rows,
);

fn customer_id(n: u8) -> String {
    format!("{:032x}", 0xc0ff_ee00_u128 + u128::from(n))
}

fn customer(n: u8) -> CustomerRecord {
    CustomerRecord {
        customer_id: customer_id(n),
        username: format!("customer-{n}"),
        holder_ref: [n; 32],
        tier: n % 8,
        status: CustomerStatus::Active,
        pii_nonce: [n.wrapping_add(1); 12],
        pii_ciphertext: vec![n; 40 + usize::from(n)],
        created_ms: 1_700_000_000_000 + u64::from(n),
    }
}

fn sealed(tag: u8, len: usize) -> Sealed {
    Sealed { nonce: [tag; 12], ciphertext: vec![tag; len] }
}

fn wallet(n: u8, owner: u8, created_ms: u64) -> BankWalletRecord {
    BankWalletRecord {
        wallet_id: [n; 16],
        customer_id: customer_id(owner),
        custody: Custody::Custodial,
        class: 1,
        public_key: [n.wrapping_add(100); 32],
        key: Some(sealed(n, 48)),
        account: None,
        created_ms,
    }
}

fn self_custody(n: u8, owner: u8, created_ms: u64) -> BankWalletRecord {
    BankWalletRecord { custody: Custody::SelfCustody, key: None, ..wallet(n, owner, created_ms) }
}

fn tx_id(n: u8) -> [u8; 16] {
    let mut id = [0x7a; 16];
    id[15] = n;
    id
}

fn payment(n: u8, principal: &str, key: &str, created_ms: u64) -> PaymentRecord {
    PaymentRecord {
        tx_id: tx_id(n),
        principal: principal.to_owned(),
        idempotency_key: key.to_owned(),
        body_hash: [n; 32],
        from_wallet: [1; 16],
        to_wallet: [2; 16],
        amount_minor: 100 + u64::from(n),
        expiry_height: 50,
        transaction: vec![n; 120],
        state: PaymentState::Pending,
        height: None,
        timestamp_ms: None,
        rejection: None,
        created_ms,
    }
}

fn payment_request(n: u8) -> PaymentRequestRecord {
    PaymentRequestRecord {
        request_id: [n; 16],
        wallet_id: [2; 16],
        amount_minor: 2_500,
        reference: format!("invoice {n}"),
        state: PaymentRequestState::Open,
        paid_tx_id: None,
        created_ms: 1_700_000_000_000,
    }
}

fn ids(customers: &[CustomerRecord]) -> Vec<String> {
    customers.iter().map(|c| c.customer_id.clone()).collect()
}

fn customers_round_trip_and_page_by_id(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.customer(&customer_id(1)).unwrap(), None);
    assert!(store.customers(None, 10).unwrap().is_empty());
    let created: Vec<CustomerRecord> = [5, 1, 3, 2, 4].map(customer).to_vec();
    for record in &created {
        store.create_customer(record).unwrap();
    }
    let closed = CustomerRecord { status: CustomerStatus::Closed, ..customer(6) };
    store.create_customer(&closed).unwrap();
    for record in created.iter().chain([&closed]) {
        assert_eq!(store.customer(&record.customer_id).unwrap().as_ref(), Some(record));
        assert_eq!(store.customer_by_username(&record.username).unwrap().as_ref(), Some(record));
        assert_eq!(store.customer_by_holder(&record.holder_ref).unwrap().as_ref(), Some(record));
    }
    assert_eq!(store.customer_by_username("nobody").unwrap(), None);
    assert_eq!(store.customer_by_holder(&[0xee; 32]).unwrap(), None);

    let all: Vec<String> = (1..=6).map(customer_id).collect();
    assert_eq!(ids(&store.customers(None, 100).unwrap()), all);
    let first = store.customers(None, 2).unwrap();
    assert_eq!(ids(&first), all[..2]);
    let after = first.last().map(|c| c.customer_id.as_str());
    assert_eq!(ids(&store.customers(after, 3).unwrap()), all[2..5]);
    assert_eq!(ids(&store.customers(Some(&all[4]), 3).unwrap()), all[5..]);
    assert!(store.customers(Some(&all[5]), 3).unwrap().is_empty());
    assert!(store.customers(None, 0).unwrap().is_empty());

    assert!(store.set_customer_tier(&customer_id(1), 7).unwrap());
    assert!(store.set_customer_status(&customer_id(1), CustomerStatus::Closed).unwrap());
    assert!(!store.set_customer_tier(&customer_id(99), 1).unwrap());
    assert!(!store.set_customer_status(&customer_id(99), CustomerStatus::Closed).unwrap());
    let error = store.set_customer_tier(&customer_id(1), 8).unwrap_err();
    assert!(matches!(error, StoreError::InvalidField { field: "tier", .. }), "{error:?}");
    drop(store);

    let mut store = Store::open(&db.url).unwrap();
    let expected = CustomerRecord { tier: 7, status: CustomerStatus::Closed, ..customer(1) };
    assert_eq!(store.customer(&customer_id(1)).unwrap(), Some(expected), "kept across a restart");
    assert_eq!(store.customer(&customer_id(2)).unwrap(), Some(customer(2)), "only the named one");
}

fn the_customer_page_is_capped(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let count = u8::try_from(MAX_CUSTOMERS_PAGE).unwrap() + 1;
    for n in 0..count {
        store.create_customer(&customer(n)).unwrap();
    }
    let page = store.customers(None, u32::MAX).unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page.last().map(|c| c.customer_id.clone()), Some(customer_id(99)));
    let rest = store.customers(Some(&customer_id(99)), u32::MAX).unwrap();
    assert_eq!(ids(&rest), [customer_id(100)], "the one left off");
}

fn a_taken_username_or_person_is_a_duplicate(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let first = customer(1);
    store.create_customer(&first).unwrap();
    let cases = [
        ("username", CustomerRecord { username: first.username.clone(), ..customer(2) }),
        ("holder_ref", CustomerRecord { holder_ref: first.holder_ref, ..customer(2) }),
        ("customer_id", CustomerRecord { customer_id: first.customer_id.clone(), ..customer(2) }),
        ("username", first.clone()),
    ];
    for (taken, record) in &cases {
        let error = store.create_customer(record).unwrap_err();
        assert!(
            matches!(&error, StoreError::Duplicate { what } if what == taken),
            "{taken}: {error:?}"
        );
    }
    assert_eq!(store.customer(&first.customer_id).unwrap(), Some(first), "unchanged");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_customers"), 1);
    // The connection is still usable after the refusals.
    store.create_customer(&customer(2)).unwrap();
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_customers"), 2);
}

fn field_of(error: &StoreError) -> Option<(&'static str, &'static str)> {
    match error {
        StoreError::InvalidField { record, field, .. }
        | StoreError::FieldLength { record, field, .. } => Some((record, field)),
        StoreError::ValueOutOfRange { field, .. } => Some(("", field)),
        _ => None,
    }
}

fn invalid_customers_are_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let largest = CustomerRecord { pii_ciphertext: vec![1; 16_384], ..customer(1) };
    store.create_customer(&largest).unwrap();
    let cases = [
        ("customer_id", CustomerRecord { customer_id: "ABCD".repeat(8), ..customer(2) }),
        ("customer_id", CustomerRecord { customer_id: "0".repeat(31), ..customer(2) }),
        ("customer_id", CustomerRecord { customer_id: "0".repeat(33), ..customer(2) }),
        ("username", CustomerRecord { username: String::new(), ..customer(2) }),
        ("username", CustomerRecord { username: "Alice".to_owned(), ..customer(2) }),
        ("username", CustomerRecord { username: "a".repeat(65), ..customer(2) }),
        ("tier", CustomerRecord { tier: 8, ..customer(2) }),
        ("pii_ciphertext", CustomerRecord { pii_ciphertext: Vec::new(), ..customer(2) }),
        ("pii_ciphertext", CustomerRecord { pii_ciphertext: vec![1; 16_385], ..customer(2) }),
        ("created_ms", CustomerRecord { created_ms: 1 << 63, ..customer(2) }),
    ];
    for (field, record) in &cases {
        let error = store.create_customer(record).unwrap_err();
        assert_eq!(field_of(&error).map(|(_, f)| f), Some(*field), "{error:?}");
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_customers"), 1, "only the valid one");
    // The schema refuses such rows on its own, for writers other than this crate.
    let id = customer_id(3);
    for (id, tier, status) in [(id.as_str(), 8, 1), (id.as_str(), 1, 3), ("C0FFEE", 1, 1)] {
        let (sqlite, postgres) = raw_customer_insert(id, tier, status);
        assert!(db.try_execute(&sqlite, &postgres).is_err(), "{sqlite}");
    }
    let (sqlite, postgres) = raw_customer_insert(&id, 1, 1);
    db.execute(&sqlite, &postgres);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_customers"), 2, "a valid raw row is taken");
}

/// The INSERT of a raw customer row, in SQLite's and PostgreSQL's text.
fn raw_customer_insert(id: &str, tier: u8, status: u8) -> (String, String) {
    let sql = |blob: &dyn Fn(usize) -> String| {
        format!(
            "INSERT INTO bank_customers VALUES ('{id}', 'c3', {}, {tier}, {status}, {}, {}, 1)",
            blob(32),
            blob(12),
            blob(1)
        )
    };
    let sqlite = sql(&|len| format!("zeroblob({len})"));
    let postgres = sql(&|len| format!("'\\x{}'::bytea", "00".repeat(len)));
    (sqlite, postgres)
}

fn customers_sign_in_as_users_with_the_customer_role(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    for (username, role) in [("customer-1", "customer"), ("operator", "bank_operator")] {
        let user = UserRecord {
            username: username.to_owned(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
            role: role.to_owned(),
            officer_key: None,
            disabled: false,
            created_at_ms: 1,
        };
        store.create_user(&user).unwrap();
        assert_eq!(store.user(username).unwrap(), Some(user));
    }
    store.create_customer(&customer(1)).unwrap();
}

fn wallets_round_trip_in_creation_order(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    store.create_customer(&customer(1)).unwrap();
    store.create_customer(&customer(2)).unwrap();
    assert!(store.wallets_of_customer(&customer_id(1)).unwrap().is_empty());
    assert_eq!(store.count_wallets_of_customer(&customer_id(1)).unwrap(), 0);
    let wallets = [
        wallet(3, 1, 300),
        BankWalletRecord { account: Some(sealed(9, 1_024)), ..self_custody(2, 1, 200) },
        wallet(5, 1, 200),
        BankWalletRecord { key: Some(sealed(4, 256)), class: 255, ..wallet(4, 2, 100) },
    ];
    for record in &wallets {
        store.create_bank_wallet(record).unwrap();
    }
    for record in &wallets {
        assert_eq!(store.bank_wallet(&record.wallet_id).unwrap().as_ref(), Some(record));
    }
    assert_eq!(store.bank_wallet(&[0xee; 16]).unwrap(), None);
    let of_first = store.wallets_of_customer(&customer_id(1)).unwrap();
    let order: Vec<u8> = of_first.iter().map(|w| w.wallet_id[0]).collect();
    assert_eq!(order, [2, 5, 3], "by created_ms, then wallet_id");
    assert_eq!(store.count_wallets_of_customer(&customer_id(1)).unwrap(), 3);
    assert_eq!(store.count_wallets_of_customer(&customer_id(2)).unwrap(), 1);
    assert_eq!(store.count_wallets_of_customer(&customer_id(9)).unwrap(), 0);

    let account = sealed(7, 30);
    assert!(store.set_wallet_account(&[3; 16], Some(&account)).unwrap());
    assert!(store.set_wallet_account(&[2; 16], None).unwrap());
    assert!(!store.set_wallet_account(&[0xee; 16], Some(&account)).unwrap());
    let error = store.set_wallet_account(&[3; 16], Some(&sealed(7, 1_025))).unwrap_err();
    assert_eq!(field_of(&error), Some(("bank_wallet", "account")), "{error:?}");
    drop(store);

    let mut store = Store::open(&db.url).unwrap();
    let linked = BankWalletRecord { account: Some(account), ..wallets[0].clone() };
    assert_eq!(store.bank_wallet(&[3; 16]).unwrap(), Some(linked), "kept across a restart");
    let unlinked = BankWalletRecord { account: None, ..wallets[1].clone() };
    assert_eq!(store.bank_wallet(&[2; 16]).unwrap(), Some(unlinked));
}

fn wallet_custody_and_ownership_are_enforced(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    store.create_customer(&customer(1)).unwrap();
    let cases = [
        ("key", BankWalletRecord { key: None, ..wallet(1, 1, 1) }),
        ("key", BankWalletRecord { key: Some(sealed(1, 48)), ..self_custody(1, 1, 1) }),
        ("key", BankWalletRecord { key: Some(sealed(1, 0)), ..wallet(1, 1, 1) }),
        ("key", BankWalletRecord { key: Some(sealed(1, 257)), ..wallet(1, 1, 1) }),
        ("account", BankWalletRecord { account: Some(sealed(1, 0)), ..wallet(1, 1, 1) }),
        ("customer_id", wallet(1, 9, 1)),
        ("customer_id", BankWalletRecord { customer_id: "x".to_owned(), ..wallet(1, 1, 1) }),
    ];
    for (field, record) in &cases {
        let error = store.create_bank_wallet(record).unwrap_err();
        assert_eq!(field_of(&error), Some(("bank_wallet", *field)), "{error:?}");
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_wallets"), 0);

    store.create_bank_wallet(&wallet(1, 1, 1)).unwrap();
    store.create_customer(&customer(2)).unwrap();
    let error = store.create_bank_wallet(&self_custody(1, 2, 2)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { what: "wallet_id" }), "{error:?}");
    assert_eq!(store.bank_wallet(&[1; 16]).unwrap(), Some(wallet(1, 1, 1)), "unchanged");

    // The schema refuses a custodial wallet without a key, and a key on a self-custody one.
    let id = customer_id(1);
    for (custody, key) in [(1, "NULL"), (2, "X'00'")] {
        let postgres_key = if key == "NULL" { "NULL" } else { "'\\x00'::bytea" };
        let sqlite = format!(
            "INSERT INTO bank_wallets VALUES (zeroblob(16), '{id}', {custody}, 0, zeroblob(32), \
             {key}, {key}, NULL, NULL, 1)"
        );
        let postgres = format!(
            "INSERT INTO bank_wallets VALUES ('\\x{}'::bytea, '{id}', {custody}, 0, \
             '\\x{}'::bytea, {postgres_key}, {postgres_key}, NULL, NULL, 1)",
            "00".repeat(16),
            "00".repeat(32)
        );
        assert!(db.try_execute(&sqlite, &postgres).is_err(), "{sqlite}");
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_wallets"), 1);
}

fn a_customer_has_a_bounded_number_of_wallets(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    store.create_customer(&customer(1)).unwrap();
    store.create_customer(&customer(2)).unwrap();
    let max = u8::try_from(MAX_WALLETS_PER_CUSTOMER).unwrap();
    for n in 0..max {
        store.create_bank_wallet(&wallet(n, 1, u64::from(n))).unwrap();
    }
    let error = store.create_bank_wallet(&wallet(max, 1, 99)).unwrap_err();
    assert!(
        matches!(&error, StoreError::TooManyWallets { customer_id, max: 32 }
            if *customer_id == self::customer_id(1)),
        "{error:?}"
    );
    assert_eq!(store.count_wallets_of_customer(&customer_id(1)).unwrap(), 32);
    assert_eq!(store.wallets_of_customer(&customer_id(1)).unwrap().len(), 32, "all of them");
    store.create_bank_wallet(&wallet(max, 2, 99)).unwrap();
}

fn payments_are_idempotent_per_principal_and_key(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let first = payment(1, "alice", "key-1", 300);
    assert_eq!(store.insert_payment(&first).unwrap(), PaymentInsert::Inserted);
    assert_eq!(store.payment(&tx_id(1)).unwrap().as_ref(), Some(&first));
    assert_eq!(store.payment_by_key("alice", "key-1").unwrap().as_ref(), Some(&first));
    assert_eq!(store.payment_by_key("bob", "key-1").unwrap(), None);
    assert_eq!(store.payment(&tx_id(9)).unwrap(), None);

    // A retry under the same key returns the stored payment, whatever the new body.
    let retry = PaymentRecord {
        body_hash: [0xff; 32],
        amount_minor: 1,
        ..payment(2, "alice", "key-1", 400)
    };
    for again in [&first, &retry] {
        assert_eq!(store.insert_payment(again).unwrap(), PaymentInsert::Existing(first.clone()));
    }
    assert_eq!(store.payment(&tx_id(2)).unwrap(), None, "the retry stored nothing");
    // The key is per principal.
    let bobs = payment(3, "bob", "key-1", 200);
    assert_eq!(store.insert_payment(&bobs).unwrap(), PaymentInsert::Inserted);
    // A new key with a stored transaction id is another payment under a taken id.
    let error = store.insert_payment(&payment(1, "alice", "key-2", 500)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { what: "tx_id" }), "{error:?}");
    assert_eq!(store.payment_by_key("alice", "key-2").unwrap(), None);
    let third = payment(4, "alice", "key-2", 300);
    assert_eq!(store.insert_payment(&third).unwrap(), PaymentInsert::Inserted);

    let pending = store.pending_payments(10).unwrap();
    let order: Vec<u8> = pending.iter().map(|p| p.tx_id[15]).collect();
    assert_eq!(order, [3, 1, 4], "oldest first, then by tx_id");
    assert_eq!(store.pending_payments(1).unwrap(), vec![bobs]);
    assert!(store.pending_payments(0).unwrap().is_empty());
    drop(store);
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.payment(&tx_id(1)).unwrap(), Some(first), "kept across a restart");
}

fn concurrent_inserts_of_one_key_insert_once(db: &TestDb) {
    const THREADS: u8 = 8;
    const ROUNDS: u8 = 5;
    let stores: Vec<Store> = (0..THREADS).map(|_| Store::open(&db.url).unwrap()).collect();
    let start = Barrier::new(usize::from(THREADS));
    // outcomes[thread][round]. An error is kept, not unwrapped in the thread: a thread that
    // panicked would leave the others waiting at the barrier for ever.
    let outcomes: Vec<Vec<Result<PaymentInsert, StoreError>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .zip(stores)
            .map(|(thread, mut store)| {
                let start = &start;
                scope.spawn(move || {
                    (0..ROUNDS)
                        .map(|round| {
                            let key = format!("key-{round}");
                            let record = payment(round * THREADS + thread, "alice", &key, 1);
                            start.wait();
                            store.insert_payment(&record)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    let mut store = Store::open(&db.url).unwrap();
    for round in 0..ROUNDS {
        let key = format!("key-{round}");
        let stored = store.payment_by_key("alice", &key).unwrap().unwrap();
        let round_outcomes: Vec<&PaymentInsert> = outcomes
            .iter()
            .map(|per_thread| per_thread[usize::from(round)].as_ref().unwrap())
            .collect();
        let inserted =
            round_outcomes.iter().filter(|o| matches!(o, PaymentInsert::Inserted)).count();
        assert_eq!(inserted, 1, "round {round}: exactly one insert");
        for outcome in round_outcomes {
            if let PaymentInsert::Existing(existing) = outcome {
                assert_eq!(existing, &stored, "round {round}: the others see the winner's row");
            }
        }
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_payments"), i64::from(ROUNDS));
}

fn payments_settle_once(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    for n in 1..=3 {
        store.insert_payment(&payment(n, "alice", &format!("k{n}"), u64::from(n))).unwrap();
    }
    let committed = (PaymentState::Committed, Some(7), Some(1_700_000_000_777), None);
    let (state, height, at, rejection) = committed;
    assert!(store.settle_payment(&tx_id(1), state, height, at, rejection).unwrap());
    assert!(!store.settle_payment(&tx_id(1), state, height, at, rejection).unwrap(), "once");
    let failed = PaymentState::Failed;
    assert!(!store.settle_payment(&tx_id(1), failed, None, None, Some("x")).unwrap());
    assert!(store.settle_payment(&tx_id(2), failed, None, None, Some("expired")).unwrap());
    assert!(!store.settle_payment(&tx_id(9), failed, None, None, None).unwrap(), "unknown");

    let invalid = [
        store.settle_payment(&tx_id(3), PaymentState::Pending, None, None, None),
        store.settle_payment(&tx_id(3), failed, Some(3), None, None),
        store.settle_payment(&tx_id(3), failed, None, Some(3), None),
        store.settle_payment(&tx_id(3), state, Some(0), None, None),
        store.settle_payment(&tx_id(3), state, Some(3), None, Some("x")),
        store.settle_payment(&tx_id(3), failed, None, None, Some(&"r".repeat(65))),
    ];
    for outcome in invalid {
        assert!(field_of(&outcome.unwrap_err()).is_some());
    }
    let stored = store.payment(&tx_id(1)).unwrap().unwrap();
    let expected = PaymentRecord {
        state,
        height: Some(7),
        timestamp_ms: Some(1_700_000_000_777),
        ..payment(1, "alice", "k1", 1)
    };
    assert_eq!(stored, expected, "the first settlement, unchanged");
    let stored = store.payment(&tx_id(2)).unwrap().unwrap();
    assert_eq!((stored.state, stored.rejection.as_deref()), (failed, Some("expired")));
    let pending: Vec<u8> =
        store.pending_payments(10).unwrap().iter().map(|p| p.tx_id[15]).collect();
    assert_eq!(pending, [3], "refused settlements changed nothing");

    // Two workers settling the same payments: each is settled by exactly one.
    const PAYMENTS: u8 = 20;
    for n in 10..10 + PAYMENTS {
        store.insert_payment(&payment(n, "bob", &format!("k{n}"), 10)).unwrap();
    }
    let stores: Vec<Store> = (0..2).map(|_| Store::open(&db.url).unwrap()).collect();
    let start = Barrier::new(2);
    let wins: Vec<Vec<bool>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2_u64)
            .zip(stores)
            .map(|(worker, mut store)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    (10..10 + PAYMENTS)
                        .map(|n| {
                            let at = Some(worker);
                            store.settle_payment(&tx_id(n), state, Some(9), at, None).unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for n in 10..10 + PAYMENTS {
        let index = usize::from(n - 10);
        assert!(wins[0][index] != wins[1][index], "payment {n}: exactly one worker settles it");
        let stored = store.payment(&tx_id(n)).unwrap().unwrap();
        let winner = if wins[0][index] { 0 } else { 1 };
        assert_eq!(stored.timestamp_ms, Some(winner), "payment {n}: the winner's write");
    }
}

fn invalid_payments_are_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let base = || payment(1, "alice", "k", 1);
    let largest = PaymentRecord {
        transaction: vec![1; 65_536],
        ..payment(2, &"p".repeat(128), &"k".repeat(64), 1)
    };
    assert_eq!(store.insert_payment(&largest).unwrap(), PaymentInsert::Inserted);
    let cases = [
        ("principal", PaymentRecord { principal: String::new(), ..base() }),
        ("principal", PaymentRecord { principal: "p".repeat(129), ..base() }),
        ("idempotency_key", PaymentRecord { idempotency_key: String::new(), ..base() }),
        ("idempotency_key", PaymentRecord { idempotency_key: "k".repeat(65), ..base() }),
        ("amount_minor", PaymentRecord { amount_minor: 0, ..base() }),
        ("amount_minor", PaymentRecord { amount_minor: 1 << 63, ..base() }),
        ("transaction", PaymentRecord { transaction: Vec::new(), ..base() }),
        ("transaction", PaymentRecord { transaction: vec![1; 65_537], ..base() }),
        ("height", PaymentRecord { height: Some(4), ..base() }),
        ("timestamp_ms", PaymentRecord { timestamp_ms: Some(4), ..base() }),
        ("rejection", PaymentRecord { rejection: Some("x".to_owned()), ..base() }),
    ];
    for (field, record) in &cases {
        let error = store.insert_payment(record).unwrap_err();
        assert_eq!(field_of(&error).map(|(_, f)| f), Some(*field), "{error:?}");
    }
    // A payment may be stored already settled, consistently.
    let settled = PaymentRecord {
        state: PaymentState::Failed,
        rejection: Some("insufficient_funds".to_owned()),
        ..payment(3, "alice", "k3", 1)
    };
    assert_eq!(store.insert_payment(&settled).unwrap(), PaymentInsert::Inserted);
    assert_eq!(store.payment(&tx_id(3)).unwrap(), Some(settled));
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_payments"), 2);
    // The schema refuses such rows on its own (the same text on both backends).
    for sql in ["UPDATE bank_payments SET amount_minor = 0", "UPDATE bank_payments SET height = 5"]
    {
        assert!(db.try_execute(sql, sql).is_err(), "{sql}");
    }
}

fn payment_requests_are_paid_once(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.payment_request(&[1; 16]).unwrap(), None);
    let open = payment_request(1);
    store.create_payment_request(&open).unwrap();
    let paid = PaymentRequestRecord {
        state: PaymentRequestState::Paid,
        paid_tx_id: Some(tx_id(5)),
        reference: "r".repeat(140),
        ..payment_request(2)
    };
    store.create_payment_request(&paid).unwrap();
    assert_eq!(store.payment_request(&[1; 16]).unwrap().as_ref(), Some(&open));
    assert_eq!(store.payment_request(&[2; 16]).unwrap().as_ref(), Some(&paid));
    let error = store.create_payment_request(&payment_request(1)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { what: "request_id" }), "{error:?}");

    assert!(store.mark_request_paid(&[1; 16], &tx_id(7)).unwrap());
    assert!(!store.mark_request_paid(&[1; 16], &tx_id(8)).unwrap(), "only once");
    assert!(!store.mark_request_paid(&[2; 16], &tx_id(8)).unwrap(), "already paid");
    assert!(!store.mark_request_paid(&[9; 16], &tx_id(8)).unwrap(), "unknown");
    let expected = PaymentRequestRecord {
        state: PaymentRequestState::Paid,
        paid_tx_id: Some(tx_id(7)),
        ..open
    };
    assert_eq!(store.payment_request(&[1; 16]).unwrap(), Some(expected));

    let cases = [
        ("amount_minor", PaymentRequestRecord { amount_minor: 0, ..payment_request(3) }),
        ("reference", PaymentRequestRecord { reference: "r".repeat(141), ..payment_request(3) }),
        ("paid_tx_id", PaymentRequestRecord { paid_tx_id: Some([1; 16]), ..payment_request(3) }),
        (
            "paid_tx_id",
            PaymentRequestRecord { state: PaymentRequestState::Paid, ..payment_request(3) },
        ),
    ];
    for (field, record) in &cases {
        let error = store.create_payment_request(record).unwrap_err();
        assert_eq!(field_of(&error), Some(("payment_request", *field)), "{error:?}");
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM bank_payment_requests"), 2);
}

fn history_row(tx: u8, wallet: u8, direction: Direction) -> HistoryRow {
    HistoryRow {
        tx_id: tx_id(tx),
        wallet_id: [wallet; 16],
        counterparty_wallet_id: Some([wallet ^ 1; 16]),
        amount_minor: 500,
        direction,
        kind: 3,
        timestamp_ms: 1_700_000_000_000,
    }
}

fn history_of_a_transaction_is_found_across_projections(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert!(store.history_of_tx(&tx_id(1)).unwrap().is_empty());
    let debit = history_row(1, 2, Direction::Debit);
    let credit = history_row(1, 3, Direction::Credit);
    let other = history_row(2, 2, Direction::Debit);
    let bank = ProjectionBatch {
        projection: "bank".to_owned(),
        history: vec![other.clone(), debit.clone(), credit.clone()],
        ..ProjectionBatch::default()
    };
    store.write_projection(4, &bank).unwrap();
    let central = ProjectionBatch {
        projection: "central".to_owned(),
        history: vec![credit.clone()],
        ..ProjectionBatch::default()
    };
    store.write_projection(4, &central).unwrap();
    let found = store.history_of_tx(&tx_id(1)).unwrap();
    let rows: Vec<&HistoryRow> = found.iter().map(|entry| &entry.row).collect();
    assert_eq!(rows, [&debit, &credit, &credit], "in id order, from every projection");
    assert!(found.iter().all(|entry| entry.height == 4));
    assert!(found.windows(2).all(|pair| pair[0].id < pair[1].id));
    assert_eq!(store.history_of_tx(&tx_id(2)).unwrap().len(), 1);
    assert!(store.history_of_tx(&tx_id(9)).unwrap().is_empty());
}

fn the_snapshot_at_or_below_a_height_is_the_newest_such(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.snapshot_at_or_below(u64::MAX).unwrap(), None);
    for block in &chain(8) {
        store.append_block(block).unwrap();
    }
    let snapshot = |height: u8| StoredSnapshot {
        height: u64::from(height),
        state_root: [height; 32],
        data: vec![height; 10],
    };
    for height in [2, 5, 7] {
        store.put_snapshot(&snapshot(height)).unwrap();
    }
    let at = |store: &mut Store, height: u64| {
        store.snapshot_at_or_below(height).unwrap().map(|s| s.height)
    };
    assert_eq!(at(&mut store, 0), None);
    assert_eq!(at(&mut store, 1), None);
    assert_eq!(at(&mut store, 2), Some(2));
    assert_eq!(at(&mut store, 4), Some(2));
    assert_eq!(at(&mut store, 5), Some(5));
    assert_eq!(at(&mut store, 6), Some(5));
    assert_eq!(at(&mut store, 7), Some(7));
    assert_eq!(at(&mut store, u64::MAX), Some(7), "a bound beyond any height");
    assert_eq!(store.snapshot_at_or_below(6).unwrap(), Some(snapshot(5)), "the whole snapshot");
}

fn is_corrupt(error: &StoreError, want_table: &str, want_column: &str) -> bool {
    matches!(error, StoreError::CorruptRow { table, column, .. }
        if *table == want_table && *column == want_column)
}

fn damaged_rows_are_corrupt_rows(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    store.create_customer(&customer(1)).unwrap();
    store.create_bank_wallet(&wallet(1, 1, 1)).unwrap();
    store.insert_payment(&payment(1, "alice", "k", 1)).unwrap();
    store.create_payment_request(&payment_request(1)).unwrap();
    // The schema refuses such rows; the damage has to switch its checks off first.
    db.execute(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE bank_customers SET tier = 9;
         UPDATE bank_wallets SET key_nonce = NULL, key_ciphertext = NULL;
         UPDATE bank_payments SET state = 4;
         UPDATE bank_payment_requests SET paid_tx_id = X'01';",
        "ALTER TABLE bank_customers DROP CONSTRAINT bank_customers_tier_range;
         ALTER TABLE bank_wallets DROP CONSTRAINT bank_wallets_key_iff_custodial;
         ALTER TABLE bank_payments DROP CONSTRAINT bank_payments_state_known;
         ALTER TABLE bank_payment_requests DROP CONSTRAINT bank_payment_requests_paid_iff_tx;
         ALTER TABLE bank_payment_requests
             DROP CONSTRAINT bank_payment_requests_paid_tx_id_length;
         UPDATE bank_customers SET tier = 9;
         UPDATE bank_wallets SET key_nonce = NULL, key_ciphertext = NULL;
         UPDATE bank_payments SET state = 4;
         UPDATE bank_payment_requests SET paid_tx_id = '\\x01'::bytea;",
    );
    let error = store.customer(&customer_id(1)).unwrap_err();
    assert!(is_corrupt(&error, "bank_customers", "tier"), "{error:?}");
    let error = store.customers(None, 10).unwrap_err();
    assert!(is_corrupt(&error, "bank_customers", "tier"), "{error:?}");
    let error = store.bank_wallet(&[1; 16]).unwrap_err();
    assert!(is_corrupt(&error, "bank_wallets", "key"), "{error:?}");
    let error = store.payment(&tx_id(1)).unwrap_err();
    assert!(is_corrupt(&error, "bank_payments", "state"), "{error:?}");
    let error = store.payment_request(&[1; 16]).unwrap_err();
    assert!(is_corrupt(&error, "bank_payment_requests", "paid_tx_id"), "{error:?}");
}
