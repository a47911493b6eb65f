//! Maker-checker requests and approvals: idempotent creation, cursor listing, one approval per
//! officer key, and state moves by compare-and-set that concurrent workers cannot both win.

use std::sync::Barrier;

use cbdc_store::{
    ApprovalRecord, MAX_ACTOR_BYTES, MAX_APPROVALS_PER_REQUEST, MAX_REJECTION_CODE_BYTES,
    MAX_REQUEST_BODY_BYTES, MAX_REQUEST_KIND_BYTES, MAX_REQUEST_PAGE, MAX_REQUEST_REASON_BYTES,
    MAX_REQUEST_SUMMARY_BYTES, RequestRecord, RequestState, Store, StoreError,
};

use crate::support::{TestDb, on_both_backends};

on_both_backends!(
    requests_round_trip,
    a_repeated_id_is_refused,
    requests_list_newest_first_with_a_cursor,
    the_request_page_is_capped,
    each_officer_approves_once,
    the_approval_cap_holds_under_concurrency,
    states_move_by_compare_and_set,
    two_workers_cannot_both_submit,
    out_of_bounds_requests_are_refused,
);

fn id(n: u8) -> [u8; 16] {
    let mut id = [0xa0; 16];
    id[15] = n;
    id
}

fn request(n: u8, created_at_ms: u64) -> RequestRecord {
    RequestRecord {
        id: id(n),
        kind: "mint".to_owned(),
        summary: format!(r#"{{"amount_minor":{n}00}}"#),
        reason: "quarterly issuance".to_owned(),
        created_by: "maker.mia".to_owned(),
        created_at_ms,
        body: vec![n; 48],
        expiry_height: 1_000 + u64::from(n),
        state: RequestState::Pending,
        rejection: None,
        committed_height: None,
        updated_at_ms: created_at_ms,
    }
}

fn approval(request: u8, officer: u8, at_ms: u64) -> ApprovalRecord {
    ApprovalRecord {
        request_id: id(request),
        officer_key: [officer; 32],
        signature: [officer.wrapping_add(request); 64],
        approved_by: format!("officer-{officer}"),
        at_ms,
    }
}

fn ids(records: &[RequestRecord]) -> Vec<u8> {
    records.iter().map(|record| record.id[15]).collect()
}

fn requests_round_trip(db: &TestDb) {
    let created = [
        request(1, 100),
        RequestRecord {
            kind: "admit_bank".to_owned(),
            summary: String::new(),
            reason: String::new(),
            ..request(2, 200)
        },
        RequestRecord {
            state: RequestState::Committed,
            committed_height: Some(42),
            updated_at_ms: 250,
            ..request(3, 210)
        },
        RequestRecord {
            state: RequestState::Rejected,
            rejection: Some("insufficient_approvals".to_owned()),
            ..request(4, 220)
        },
        RequestRecord { state: RequestState::Expired, ..request(5, 230) },
    ];
    {
        let mut store = Store::open(&db.url).unwrap();
        assert_eq!(store.request(&id(1)).unwrap(), None);
        for record in &created {
            store.create_request(record).unwrap();
        }
        for record in &created {
            assert_eq!(store.request(&record.id).unwrap().as_ref(), Some(record));
        }
        assert_eq!(store.request(&id(9)).unwrap(), None);
    }
    let mut store = Store::open(&db.url).unwrap();
    for record in &created {
        assert_eq!(store.request(&record.id).unwrap().as_ref(), Some(record), "after a restart");
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_requests"), 5);
}

fn a_repeated_id_is_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let first = request(1, 100);
    store.create_request(&first).unwrap();
    store
        .update_request_state(
            &id(1),
            RequestState::Pending,
            RequestState::Approved,
            None,
            None,
            150,
        )
        .unwrap();
    let stored = store.request(&id(1)).unwrap().unwrap();

    // The same payload, stamped later and whatever state the retry claims: an identical retry.
    let retries =
        [first.clone(), RequestRecord { created_at_ms: 900, updated_at_ms: 900, ..first.clone() }];
    for retry in &retries {
        let error = store.create_request(retry).unwrap_err();
        assert!(matches!(error, StoreError::RequestExists { id } if id == first.id), "{error:?}");
        assert!(error.to_string().contains("a0a0a0a0a0a0a0a0a0a0a0a0a0a0a001"), "{error}");
    }
    // Any difference in the payload is a conflict.
    let conflicts = [
        RequestRecord { kind: "burn".to_owned(), ..first.clone() },
        RequestRecord { summary: "{}".to_owned(), ..first.clone() },
        RequestRecord { reason: "other".to_owned(), ..first.clone() },
        RequestRecord { created_by: "maker.max".to_owned(), ..first.clone() },
        RequestRecord { body: vec![9; 48], ..first.clone() },
        RequestRecord { expiry_height: 7, ..first.clone() },
    ];
    for conflict in &conflicts {
        let error = store.create_request(conflict).unwrap_err();
        assert!(
            matches!(error, StoreError::ConflictingRequest { id } if id == first.id),
            "{conflict:?}: {error:?}"
        );
    }
    assert_eq!(store.request(&id(1)).unwrap(), Some(stored), "the stored request is unchanged");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_requests"), 1);
    store.create_request(&request(2, 100)).unwrap();
}

fn requests_list_newest_first_with_a_cursor(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert!(store.requests(None, None, 10).unwrap().is_empty());
    // Created out of order; 4 and 5 in the same millisecond (ordered by id among themselves).
    for (n, at) in [(1, 100), (2, 300), (3, 200), (5, 400), (4, 400), (6, 500), (7, 50)] {
        store.create_request(&request(n, at)).unwrap();
    }
    for n in [2, 4, 7] {
        store
            .update_request_state(
                &id(n),
                RequestState::Pending,
                RequestState::Approved,
                None,
                None,
                600,
            )
            .unwrap();
    }
    let all = store.requests(None, None, 10).unwrap();
    assert_eq!(ids(&all), [6, 5, 4, 2, 3, 1, 7]);
    assert_eq!(ids(&store.requests(None, None, 3).unwrap()), [6, 5, 4]);
    assert_eq!(ids(&store.requests(None, Some(400), 3).unwrap()), [2, 3, 1]);
    assert_eq!(ids(&store.requests(None, Some(100), 3).unwrap()), [7]);
    assert!(store.requests(None, Some(50), 3).unwrap().is_empty());
    assert!(store.requests(None, Some(0), 3).unwrap().is_empty());

    let approved = Some(RequestState::Approved);
    assert_eq!(ids(&store.requests(approved, None, 10).unwrap()), [4, 2, 7]);
    assert_eq!(ids(&store.requests(approved, Some(400), 10).unwrap()), [2, 7]);
    let pending = Some(RequestState::Pending);
    assert_eq!(ids(&store.requests(pending, None, 2).unwrap()), [6, 5]);
    assert!(store.requests(Some(RequestState::Committed), None, 10).unwrap().is_empty());

    // The worker's queue: oldest first.
    assert_eq!(ids(&store.requests_in_state(RequestState::Approved, 10).unwrap()), [7, 2, 4]);
    assert_eq!(ids(&store.requests_in_state(RequestState::Pending, 2).unwrap()), [1, 3]);
    assert_eq!(ids(&store.requests_in_state(RequestState::Pending, 10).unwrap()), [1, 3, 5, 6]);
    assert!(store.requests_in_state(RequestState::Submitted, 10).unwrap().is_empty());
    assert!(store.requests_in_state(RequestState::Pending, 0).unwrap().is_empty());

    let error = store.requests(None, Some(1 << 63), 1).unwrap_err();
    assert!(
        matches!(error, StoreError::ValueOutOfRange { field: "before_created_at_ms", .. }),
        "{error:?}"
    );
}

fn the_request_page_is_capped(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let rows = i64::from(MAX_REQUEST_PAGE) + 1;
    db.execute(
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO cb_requests (id, kind, summary, reason, created_by, created_at_ms,
                                      body, expiry_height, state, updated_at_ms)
             SELECT CAST(printf('%016d', i) AS BLOB), 'mint', '', '', 'bulk', i, X'00', 0,
                    'submitted', i
             FROM n;"
        ),
        &format!(
            "INSERT INTO cb_requests (id, kind, summary, reason, created_by, created_at_ms,
                                      body, expiry_height, state, updated_at_ms)
             SELECT convert_to(lpad(i::text, 16, '0'), 'UTF8'), 'mint', '', '', 'bulk', i,
                    '\\x00'::bytea, 0, 'submitted', i
             FROM generate_series(1, {rows}) AS i;"
        ),
    );
    let newest = store.requests(None, None, u32::MAX).unwrap();
    assert_eq!(newest.len(), 200);
    assert_eq!((newest[0].created_at_ms, newest[199].created_at_ms), (201, 2), "oldest left off");
    let oldest = store.requests_in_state(RequestState::Submitted, u32::MAX).unwrap();
    assert_eq!(oldest.len(), 200);
    assert_eq!((oldest[0].created_at_ms, oldest[199].created_at_ms), (1, 200), "newest left off");
    assert_eq!(store.requests(Some(RequestState::Submitted), Some(2), 10).unwrap().len(), 1);
}

fn each_officer_approves_once(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    store.create_request(&request(1, 100)).unwrap();
    store.create_request(&request(2, 100)).unwrap();
    assert!(store.approvals(&id(1)).unwrap().is_empty());

    let first = approval(1, 7, 500);
    assert!(store.add_approval(&first).unwrap(), "new");
    assert!(!store.add_approval(&first).unwrap(), "the same approval again");
    // The same officer again, with another signature, name and time: still the first counts.
    let again = ApprovalRecord {
        signature: [1; 64],
        approved_by: "x".to_owned(),
        at_ms: 1,
        ..first.clone()
    };
    assert!(!store.add_approval(&again).unwrap());
    assert_eq!(store.approvals(&id(1)).unwrap(), vec![first.clone()]);

    // Ordered by time, then key; another request's approvals are its own.
    let others = [approval(1, 3, 600), approval(1, 9, 400), approval(1, 5, 600), approval(2, 7, 1)];
    for other in &others {
        assert!(store.add_approval(other).unwrap(), "{other:?}");
    }
    let keys: Vec<u8> = store.approvals(&id(1)).unwrap().iter().map(|a| a.officer_key[0]).collect();
    assert_eq!(keys, [9, 7, 3, 5]);
    assert_eq!(store.approvals(&id(2)).unwrap(), vec![others[3].clone()]);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_approvals"), 5);

    let error = store.add_approval(&approval(9, 7, 1)).unwrap_err();
    assert!(
        matches!(error, StoreError::RequestNotFound { id: found } if found == id(9)),
        "{error:?}"
    );
    assert!(store.approvals(&id(9)).unwrap().is_empty());

    // The cap: new approvals beyond it are refused and not stored; repeats still answer false.
    let max = u8::try_from(MAX_APPROVALS_PER_REQUEST).unwrap();
    for officer in 100..100 + max - 1 {
        assert!(store.add_approval(&approval(2, officer, 2)).unwrap());
    }
    assert_eq!(store.approvals(&id(2)).unwrap().len(), usize::from(max));
    let error = store.add_approval(&approval(2, 250, 3)).unwrap_err();
    assert!(matches!(error, StoreError::TooManyApprovals { max: 32, .. }), "{error:?}");
    assert!(!store.add_approval(&approval(2, 7, 3)).unwrap(), "a repeat at the cap");
    assert_eq!(store.approvals(&id(2)).unwrap().len(), usize::from(max));
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_approvals"), 4 + i64::from(max));
}

fn the_approval_cap_holds_under_concurrency(db: &TestDb) {
    const WRITERS: u8 = 8;
    const EACH: u8 = 5;
    Store::open(&db.url).unwrap().create_request(&request(1, 100)).unwrap();
    // Opened before the barrier: a failure to open fails the test rather than hanging it.
    let stores: Vec<Store> = (0..WRITERS).map(|_| Store::open(&db.url).unwrap()).collect();
    let start = Barrier::new(usize::from(WRITERS));
    let outcomes: Vec<Result<bool, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .zip(stores)
            .map(|(writer, mut store)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    (0..EACH)
                        .map(|i| store.add_approval(&approval(1, writer * EACH + i, 10)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|handle| handle.join().unwrap()).collect()
    });
    let added = outcomes.iter().filter(|outcome| matches!(outcome, Ok(true))).count();
    let refused = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(StoreError::TooManyApprovals { .. })))
        .count();
    let cap = usize::try_from(MAX_APPROVALS_PER_REQUEST).unwrap();
    assert_eq!((added, refused), (cap, usize::from(WRITERS * EACH) - cap), "{outcomes:?}");
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM cb_approvals"),
        i64::from(MAX_APPROVALS_PER_REQUEST)
    );
}

fn states_move_by_compare_and_set(db: &TestDb) {
    use RequestState::*;
    let mut store = Store::open(&db.url).unwrap();
    let created = request(1, 100);
    store.create_request(&created).unwrap();

    assert!(store.update_request_state(&id(1), Pending, Approved, None, None, 200).unwrap());
    assert!(
        !store.update_request_state(&id(1), Pending, Approved, None, None, 201).unwrap(),
        "not pending any more"
    );
    assert!(!store.update_request_state(&id(1), Submitted, Committed, None, Some(9), 202).unwrap());
    assert_eq!(
        store.request(&id(1)).unwrap(),
        Some(RequestRecord { state: Approved, updated_at_ms: 200, ..created.clone() }),
        "failed moves change nothing, not even the time"
    );
    assert!(store.update_request_state(&id(1), Approved, Submitted, None, None, 300).unwrap());
    assert!(store.update_request_state(&id(1), Submitted, Committed, None, Some(77), 400).unwrap());
    let committed = RequestRecord {
        state: Committed,
        committed_height: Some(77),
        updated_at_ms: 400,
        ..created.clone()
    };
    assert_eq!(store.request(&id(1)).unwrap().as_ref(), Some(&committed));

    // Committed without a known height: the ledger said the transaction is already committed.
    store.create_request(&RequestRecord { state: Approved, ..request(3, 100) }).unwrap();
    assert!(store.update_request_state(&id(3), Approved, Committed, None, None, 450).unwrap());
    let stored = store.request(&id(3)).unwrap().unwrap();
    assert_eq!((stored.state, stored.committed_height), (Committed, None));

    // The columns must agree with the target state; a refused move changes nothing.
    store.create_request(&request(2, 100)).unwrap();
    let cases = [
        ("committed_height", Committed, None, Some(0)),
        ("committed_height", Submitted, None, Some(5)),
        ("rejection", Approved, Some("expired_tx"), None),
        ("rejection", Rejected, Some(""), None),
    ];
    for (field, to, rejection, height) in cases {
        let error =
            store.update_request_state(&id(2), Pending, to, rejection, height, 500).unwrap_err();
        let got = match error {
            StoreError::InvalidField { field, .. } | StoreError::FieldLength { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(got, field, "{to} {rejection:?} {height:?}");
    }
    assert_eq!(store.request(&id(2)).unwrap(), Some(request(2, 100)));

    let code = "r".repeat(usize::try_from(MAX_REJECTION_CODE_BYTES).unwrap());
    assert!(store.update_request_state(&id(2), Pending, Rejected, Some(&code), None, 600).unwrap());
    let rejected = store.request(&id(2)).unwrap().unwrap();
    assert_eq!((rejected.state, rejected.rejection.as_deref()), (Rejected, Some(code.as_str())));
    assert!(
        !store.update_request_state(&id(9), Pending, Approved, None, None, 1).unwrap(),
        "unknown id"
    );
    assert_eq!(store.request(&id(9)).unwrap(), None);
    let error =
        store.update_request_state(&id(2), Rejected, Expired, None, None, 1 << 63).unwrap_err();
    assert!(
        matches!(error, StoreError::ValueOutOfRange { field: "updated_at_ms", .. }),
        "{error:?}"
    );
}

fn two_workers_cannot_both_submit(db: &TestDb) {
    const REQUESTS: u8 = 20;
    {
        let mut store = Store::open(&db.url).unwrap();
        for n in 0..REQUESTS {
            store
                .create_request(&RequestRecord { state: RequestState::Approved, ..request(n, 100) })
                .unwrap();
        }
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
                    (0..REQUESTS)
                        .map(|n| {
                            store
                                .update_request_state(
                                    &id(n),
                                    RequestState::Approved,
                                    RequestState::Submitted,
                                    None,
                                    None,
                                    1_000 + worker,
                                )
                                .unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    let mut store = Store::open(&db.url).unwrap();
    for n in 0..REQUESTS {
        let index = usize::from(n);
        assert!(wins[0][index] != wins[1][index], "request {n}: exactly one worker wins");
        let stored = store.request(&id(n)).unwrap().unwrap();
        assert_eq!(stored.state, RequestState::Submitted);
        let winner = if wins[0][index] { 1_000 } else { 1_001 };
        assert_eq!(stored.updated_at_ms, winner, "request {n}: the winner's write");
    }
    assert_eq!(store.requests_in_state(RequestState::Submitted, 100).unwrap().len(), 20);
}

fn field_of(error: &StoreError) -> Option<(&'static str, &'static str)> {
    match error {
        StoreError::FieldLength { record, field, .. }
        | StoreError::InvalidField { record, field, .. } => Some((record, field)),
        _ => None,
    }
}

fn out_of_bounds_requests_are_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let max = |bytes: u32| usize::try_from(bytes).unwrap();
    let largest = RequestRecord {
        kind: "k".repeat(max(MAX_REQUEST_KIND_BYTES)),
        summary: "é".repeat(max(MAX_REQUEST_SUMMARY_BYTES) / 2),
        reason: "r".repeat(max(MAX_REQUEST_REASON_BYTES)),
        created_by: "c".repeat(max(MAX_ACTOR_BYTES)),
        body: vec![1; max(MAX_REQUEST_BODY_BYTES)],
        created_at_ms: i64::MAX as u64,
        expiry_height: i64::MAX as u64,
        updated_at_ms: i64::MAX as u64,
        ..request(1, 0)
    };
    store.create_request(&largest).unwrap();
    assert_eq!(store.request(&id(1)).unwrap(), Some(largest));

    let cases = [
        ("kind", RequestRecord { kind: "k".repeat(33), ..request(2, 1) }),
        ("kind", RequestRecord { kind: String::new(), ..request(2, 1) }),
        ("summary", RequestRecord { summary: "é".repeat(513), ..request(2, 1) }),
        ("reason", RequestRecord { reason: "r".repeat(1_025), ..request(2, 1) }),
        ("created_by", RequestRecord { created_by: "c".repeat(129), ..request(2, 1) }),
        ("created_by", RequestRecord { created_by: String::new(), ..request(2, 1) }),
        ("body", RequestRecord { body: vec![1; 65_537], ..request(2, 1) }),
        ("body", RequestRecord { body: Vec::new(), ..request(2, 1) }),
        ("rejection", RequestRecord { rejection: Some("x".to_owned()), ..request(2, 1) }),
        ("committed_height", RequestRecord { committed_height: Some(3), ..request(2, 1) }),
        (
            "committed_height",
            RequestRecord {
                state: RequestState::Expired,
                committed_height: Some(1),
                ..request(2, 1)
            },
        ),
        (
            "committed_height",
            RequestRecord {
                state: RequestState::Committed,
                committed_height: Some(0),
                ..request(2, 1)
            },
        ),
    ];
    for (field, bad) in &cases {
        let error = store.create_request(bad).unwrap_err();
        assert_eq!(field_of(&error), Some(("request", *field)), "{error:?}");
    }
    for (field, bad) in [
        ("created_at_ms", RequestRecord { created_at_ms: 1 << 63, ..request(2, 1) }),
        ("expiry_height", RequestRecord { expiry_height: 1 << 63, ..request(2, 1) }),
        ("updated_at_ms", RequestRecord { updated_at_ms: 1 << 63, ..request(2, 1) }),
    ] {
        let error = store.create_request(&bad).unwrap_err();
        assert!(
            matches!(&error, StoreError::ValueOutOfRange { field: f, .. } if *f == field),
            "{error:?}"
        );
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_requests"), 1, "only the valid one");

    let longest =
        ApprovalRecord { approved_by: "a".repeat(max(MAX_ACTOR_BYTES)), ..approval(1, 1, 1) };
    assert!(store.add_approval(&longest).unwrap());
    let error = store
        .add_approval(&ApprovalRecord { approved_by: "a".repeat(129), ..approval(1, 2, 1) })
        .unwrap_err();
    assert_eq!(field_of(&error), Some(("approval", "approved_by")), "{error:?}");
    let error = store
        .add_approval(&ApprovalRecord { approved_by: String::new(), ..approval(1, 2, 1) })
        .unwrap_err();
    assert_eq!(field_of(&error), Some(("approval", "approved_by")), "{error:?}");
    let error = store.add_approval(&approval(1, 2, 1 << 63)).unwrap_err();
    assert!(matches!(error, StoreError::ValueOutOfRange { field: "at_ms", .. }), "{error:?}");
    assert_eq!(store.approvals(&id(1)).unwrap(), vec![longest]);

    // The schema refuses inconsistent rows on its own, for writers other than this crate.
    for sql in [
        "UPDATE cb_requests SET committed_height = 0, state = 'committed'",
        "UPDATE cb_requests SET committed_height = 5",
        "UPDATE cb_requests SET rejection = 'x'",
        "UPDATE cb_requests SET state = 'done'",
    ] {
        assert!(db.try_execute(sql, sql).is_err(), "{sql}");
    }
}
