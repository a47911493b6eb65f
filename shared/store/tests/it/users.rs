//! Staff accounts: created once per username, one officer key per user, disabled rather than
//! deleted, bounded fields, and only argon2id hashes.

use cbdc_store::{MAX_USERS_PAGE, Store, StoreError, UserRecord};

use crate::support::{TestDb, on_both_backends};

on_both_backends!(
    users_round_trip_in_username_order,
    a_taken_username_is_refused,
    an_officer_key_belongs_to_one_user,
    users_are_disabled_and_rehashed,
    invalid_users_are_refused,
    the_user_page_is_capped,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

fn officer(username: &str, key: u8) -> UserRecord {
    UserRecord {
        username: username.to_owned(),
        password_hash: HASH.to_owned(),
        role: "cb_officer".to_owned(),
        officer_key: Some([key; 32]),
        disabled: false,
        created_at_ms: 1_700_000_000_000 + u64::from(key),
    }
}

fn staff(username: &str, role: &str) -> UserRecord {
    UserRecord { role: role.to_owned(), officer_key: None, ..officer(username, 0) }
}

fn users_round_trip_in_username_order(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.user("alice").unwrap(), None);
    assert!(store.users(10).unwrap().is_empty());
    let users = [
        officer("olga", 1),
        staff("adam", "cb_admin"),
        staff("rita.reg-1_x", "regulator"),
        UserRecord { officer_key: None, ..officer("oscar", 2) },
        UserRecord { disabled: true, ..staff("zed", "cb_admin") },
    ];
    for user in &users {
        store.create_user(user).unwrap();
    }
    for user in &users {
        assert_eq!(store.user(&user.username).unwrap().as_ref(), Some(user));
    }
    let names: Vec<String> = store.users(10).unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["adam", "olga", "oscar", "rita.reg-1_x", "zed"]);
    assert_eq!(store.users(2).unwrap(), vec![users[1].clone(), users[0].clone()]);
    assert!(store.users(0).unwrap().is_empty());
    assert_eq!(store.user("Olga").unwrap(), None, "usernames are exact");
    assert_eq!(store.user("").unwrap(), None);
    drop(store);
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.users(u32::MAX).unwrap().len(), 5, "kept across a restart");
    assert_eq!(store.user("olga").unwrap().as_ref(), Some(&users[0]));
}

fn a_taken_username_is_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let first = officer("olga", 1);
    store.create_user(&first).unwrap();
    // Another role, hash and key under the same name: refused, whatever the payload.
    let again = UserRecord { password_hash: format!("{HASH}x"), ..staff("olga", "cb_admin") };
    for duplicate in [&first, &again, &officer("olga", 9)] {
        let error = store.create_user(duplicate).unwrap_err();
        assert!(
            matches!(&error, StoreError::UserExists { username } if username == "olga"),
            "{error:?}"
        );
        assert!(error.to_string().contains("user `olga` already exists"), "{error}");
    }
    assert_eq!(store.user("olga").unwrap(), Some(first), "the first user is unchanged");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_users"), 1);
    // The connection is still usable after the refusals.
    store.create_user(&staff("adam", "cb_admin")).unwrap();
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_users"), 2);
}

fn an_officer_key_belongs_to_one_user(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    store.create_user(&officer("olga", 1)).unwrap();
    let error = store.create_user(&officer("otto", 1)).unwrap_err();
    assert!(matches!(error, StoreError::OfficerKeyInUse), "{error:?}");
    assert_eq!(store.user("otto").unwrap(), None);
    // Officers without a key, any number of them, do not collide.
    for name in ["o1", "o2"] {
        store.create_user(&UserRecord { officer_key: None, ..officer(name, 0) }).unwrap();
    }
    store.create_user(&officer("otto", 2)).unwrap();
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_users"), 4);
}

fn users_are_disabled_and_rehashed(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let olga = officer("olga", 1);
    store.create_user(&olga).unwrap();
    store.create_user(&staff("adam", "cb_admin")).unwrap();

    assert!(store.set_user_disabled("olga", true).unwrap());
    assert!(store.user("olga").unwrap().unwrap().disabled);
    assert!(!store.user("adam").unwrap().unwrap().disabled, "only the named user");
    assert!(store.set_user_disabled("olga", true).unwrap(), "found, already disabled");
    assert!(!store.set_user_disabled("nobody", true).unwrap());
    assert_eq!(store.user("nobody").unwrap(), None, "not created by the update");

    let new_hash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA";
    assert!(store.set_password_hash("olga", new_hash).unwrap());
    assert!(!store.set_password_hash("nobody", new_hash).unwrap());
    let error = store.set_password_hash("olga", "plaintext-password").unwrap_err();
    assert!(matches!(error, StoreError::InvalidField { field: "password_hash", .. }), "{error:?}");
    drop(store);

    let mut store = Store::open(&db.url).unwrap();
    let stored = store.user("olga").unwrap().unwrap();
    let expected =
        UserRecord { disabled: true, password_hash: new_hash.to_owned(), ..olga.clone() };
    assert_eq!(stored, expected, "kept across a restart; the refused hash was not written");
    assert!(store.set_user_disabled("olga", false).unwrap());
    assert_eq!(store.user("olga").unwrap(), Some(UserRecord { disabled: false, ..expected }));
}

fn invalid_field(error: &StoreError) -> Option<&'static str> {
    match error {
        StoreError::InvalidField { record: "user", field, .. } => Some(field),
        StoreError::FieldLength { record: "user", field, .. } => Some(field),
        _ => None,
    }
}

fn invalid_users_are_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let longest = officer(&"o".repeat(64), 1);
    store.create_user(&longest).unwrap();
    let longest_hash = format!("{HASH}{}", "a".repeat(256 - HASH.len()));
    store.create_user(&UserRecord { password_hash: longest_hash, ..officer("o.2", 2) }).unwrap();

    let cases = [
        ("username", officer(&"o".repeat(65), 3)),
        ("username", officer("", 3)),
        ("username", officer("Olga", 3)),
        ("username", officer("olga smith", 3)),
        ("username", officer("ölga", 3)),
        ("username", officer("olga@cb", 3)),
        ("password_hash", UserRecord { password_hash: "hunter2".to_owned(), ..officer("a", 3) }),
        ("password_hash", UserRecord { password_hash: String::new(), ..officer("a", 3) }),
        (
            "password_hash",
            UserRecord { password_hash: format!("{HASH}{}", "a".repeat(257)), ..officer("a", 3) },
        ),
        (
            "password_hash",
            UserRecord { password_hash: "$argon2i$v=19$x".into(), ..officer("a", 3) },
        ),
        ("role", UserRecord { role: "root".to_owned(), ..staff("a", "x") }),
        ("role", UserRecord { role: "CB_ADMIN".to_owned(), ..staff("a", "x") }),
        ("officer_key", UserRecord { role: "cb_admin".to_owned(), ..officer("a", 3) }),
        ("officer_key", UserRecord { role: "regulator".to_owned(), ..officer("a", 3) }),
    ];
    for (field, user) in &cases {
        let error = store.create_user(user).unwrap_err();
        assert_eq!(invalid_field(&error), Some(*field), "{user:?}: {error:?}");
    }
    let error = store.create_user(&UserRecord { created_at_ms: 1 << 63, ..officer("a", 3) });
    assert!(
        matches!(error, Err(StoreError::ValueOutOfRange { field: "created_at_ms", .. })),
        "{error:?}"
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_users"), 2, "only the valid two");

    // The schema refuses the same rows on its own, for writers other than this crate.
    for (sqlite, postgres) in [
        (
            "INSERT INTO cb_users VALUES ('Bad', '$argon2id$x', 'cb_admin', NULL, 0, 1)",
            "INSERT INTO cb_users VALUES ('Bad', '$argon2id$x', 'cb_admin', NULL, false, 1)",
        ),
        (
            "INSERT INTO cb_users VALUES ('plain', 'hunter2', 'cb_admin', NULL, 0, 1)",
            "INSERT INTO cb_users VALUES ('plain', 'hunter2', 'cb_admin', NULL, false, 1)",
        ),
        (
            "INSERT INTO cb_users VALUES ('k', '$argon2id$x', 'cb_admin', zeroblob(32), 0, 1)",
            "INSERT INTO cb_users VALUES ('k', '$argon2id$x', 'cb_admin', \
             decode(repeat('00', 32), 'hex'), false, 1)",
        ),
    ] {
        assert!(db.try_execute(sqlite, postgres).is_err(), "{sqlite}");
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM cb_users"), 2);
}

fn the_user_page_is_capped(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let rows = i64::from(MAX_USERS_PAGE) + 1;
    db.execute(
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO cb_users (username, password_hash, role, created_at_ms)
             SELECT printf('u%05d', i), '$argon2id$x', 'regulator', i FROM n;"
        ),
        &format!(
            "INSERT INTO cb_users (username, password_hash, role, created_at_ms)
             SELECT 'u' || lpad(i::text, 5, '0'), '$argon2id$x', 'regulator', i
             FROM generate_series(1, {rows}) AS i;"
        ),
    );
    let page = store.users(u32::MAX).unwrap();
    assert_eq!(page.len(), 1_000);
    assert_eq!(page.first().map(|u| u.username.as_str()), Some("u00001"));
    assert_eq!(page.last().map(|u| u.username.as_str()), Some("u01000"), "the last is left off");
    assert!(page.iter().all(|u| !u.disabled && u.officer_key.is_none()), "the default applies");
    assert_eq!(store.users(999).unwrap().len(), 999);
}
