//! Staff accounts of the central bank service (`cb_users`): who may sign in, and in which role.
//!
//! The store keeps what the service gives it and decides nothing about access: what a role may do
//! is the service's business. It does refuse what must never be stored: a password hash that is
//! not an argon2id PHC string (so a plaintext password cannot be written by mistake; hashing is
//! the caller's), a role outside [`USER_ROLES`], and an officer key on a user who is not an
//! officer. One key belongs to one user, because approvals are counted per key. Users are never
//! deleted, only disabled, so the audit log's actors keep their meaning.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::connection::on_backend;
use crate::convert::{Column, check_len, to_i64};
use crate::schema::cb_users;
use crate::{Store, StoreError};

/// The longest [`UserRecord::username`], in bytes (at least one byte of `[a-z0-9._-]`).
pub const MAX_USERNAME_BYTES: u32 = 64;
/// The longest [`UserRecord::password_hash`], in bytes.
pub const MAX_PASSWORD_HASH_BYTES: u32 = 256;
/// The most users one [`Store::users`] call returns.
pub const MAX_USERS_PAGE: u32 = 1_000;
/// The role of an officer, the only role that may hold an officer key.
pub const OFFICER_ROLE: &str = "cb_officer";
/// Every role a user may have.
pub const USER_ROLES: [&str; 5] =
    [OFFICER_ROLE, "cb_admin", "regulator", "bank_operator", "customer"];

/// How every argon2id PHC string begins (`$argon2id$v=19$m=...`).
const PASSWORD_HASH_PREFIX: &str = "$argon2id$";

/// A member of the central bank's staff.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// 1 to [`MAX_USERNAME_BYTES`] bytes of `[a-z0-9._-]`.
    pub username: String,
    /// An argon2id PHC string (`$argon2id$...`), at most [`MAX_PASSWORD_HASH_BYTES`].
    pub password_hash: String,
    /// One of [`USER_ROLES`].
    pub role: String,
    /// The Ed25519 public key an officer signs approvals with; only for [`OFFICER_ROLE`].
    pub officer_key: Option<[u8; 32]>,
    /// A disabled user may not sign in; the row is kept.
    pub disabled: bool,
    pub created_at_ms: u64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password hash is left out: it is offline-crackable and has no place in logs.
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("officer_key", &self.officer_key)
            .field("disabled", &self.disabled)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = cb_users)]
struct UserRow {
    username: String,
    password_hash: String,
    role: String,
    officer_key: Option<Vec<u8>>,
    disabled: bool,
    created_at_ms: i64,
}

#[derive(Insertable)]
#[diesel(table_name = cb_users)]
#[diesel(treat_none_as_default_value = false)]
struct NewUser<'a> {
    username: &'a str,
    password_hash: &'a str,
    role: &'a str,
    officer_key: Option<&'a [u8]>,
    disabled: bool,
    created_at_ms: i64,
}

const RECORD: &str = "user";

fn check_username(username: &str) -> Result<(), StoreError> {
    check_len(RECORD, "username", username.len(), (1, MAX_USERNAME_BYTES))?;
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
    if username.bytes().all(allowed) {
        Ok(())
    } else {
        Err(StoreError::InvalidField {
            record: RECORD,
            field: "username",
            reason: "has a character outside [a-z0-9._-]",
        })
    }
}

fn check_password_hash(password_hash: &str) -> Result<(), StoreError> {
    check_len(RECORD, "password_hash", password_hash.len(), (1, MAX_PASSWORD_HASH_BYTES))?;
    if password_hash.starts_with(PASSWORD_HASH_PREFIX) {
        Ok(())
    } else {
        Err(StoreError::InvalidField {
            record: RECORD,
            field: "password_hash",
            reason: "is not an argon2id PHC string",
        })
    }
}

fn check_role(role: &str, officer_key: Option<&[u8; 32]>) -> Result<(), StoreError> {
    if !USER_ROLES.contains(&role) {
        return Err(StoreError::InvalidField {
            record: RECORD,
            field: "role",
            reason: "is unknown",
        });
    }
    if officer_key.is_some() && role != OFFICER_ROLE {
        return Err(StoreError::InvalidField {
            record: RECORD,
            field: "officer_key",
            reason: "is only for the cb_officer role",
        });
    }
    Ok(())
}

impl<'a> NewUser<'a> {
    fn from_record(record: &'a UserRecord) -> Result<NewUser<'a>, StoreError> {
        check_username(&record.username)?;
        check_password_hash(&record.password_hash)?;
        check_role(&record.role, record.officer_key.as_ref())?;
        Ok(NewUser {
            username: &record.username,
            password_hash: &record.password_hash,
            role: &record.role,
            officer_key: record.officer_key.as_ref().map(<[u8; 32]>::as_slice),
            disabled: record.disabled,
            created_at_ms: to_i64("created_at_ms", record.created_at_ms)?,
        })
    }
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<UserRecord, StoreError> {
        let column = |name| Column::new("cb_users", name);
        let officer_key =
            row.officer_key.map(|key| column("officer_key").array::<32>(&key)).transpose()?;
        // The checks made before writing hold after reading, or the row was damaged.
        if check_role(&row.role, officer_key.as_ref()).is_err() {
            return Err(
                column("role").corrupt(format!("role `{}` with this officer_key", row.role))
            );
        }
        Ok(UserRecord {
            username: row.username,
            password_hash: row.password_hash,
            role: row.role,
            officer_key,
            disabled: row.disabled,
            created_at_ms: column("created_at_ms").u64(row.created_at_ms)?,
        })
    }
}

impl Store {
    /// Creates a user.
    ///
    /// A taken username is [`StoreError::UserExists`] and an officer key already held by another
    /// user is [`StoreError::OfficerKeyInUse`]; the stored users are then unchanged. A field out
    /// of bounds is [`StoreError::FieldLength`] or [`StoreError::InvalidField`].
    pub fn create_user(&mut self, record: &UserRecord) -> Result<(), StoreError> {
        let new = NewUser::from_record(record)?;
        // The conflict target is the username only: a taken officer key still fails, below.
        let inserted = on_backend!(&mut self.conn, conn => {
            diesel::insert_into(cb_users::table)
                .values(&new)
                .on_conflict(cb_users::username)
                .do_nothing()
                .execute(conn)
        });
        match inserted {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::UserExists { username: record.username.clone() }),
            // The only unique constraint left is cb_users_officer_key_unique.
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(StoreError::OfficerKeyInUse)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The user named `username`, if there is one.
    pub fn user(&mut self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = cb_users::table
            .select(UserRow::as_select())
            .filter(cb_users::username.eq(username))
            .first(&mut self.conn)
            .optional()?;
        row.map(UserRecord::try_from).transpose()
    }

    /// Users in username order, at most `min(limit, MAX_USERS_PAGE)`.
    pub fn users(&mut self, limit: u32) -> Result<Vec<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = cb_users::table
            .select(UserRow::as_select())
            .order(cb_users::username.asc())
            .limit(i64::from(limit.min(MAX_USERS_PAGE)))
            .load(&mut self.conn)?;
        rows.into_iter().map(UserRecord::try_from).collect()
    }

    /// Disables or re-enables a user; `Ok(false)` if there is no such user.
    pub fn set_user_disabled(
        &mut self,
        username: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let updated = diesel::update(cb_users::table.filter(cb_users::username.eq(username)))
            .set(cb_users::disabled.eq(disabled))
            .execute(&mut self.conn)?;
        Ok(updated == 1)
    }

    /// Replaces a user's password hash (an argon2id PHC string); `Ok(false)` if there is no
    /// such user.
    pub fn set_password_hash(
        &mut self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        check_password_hash(password_hash)?;
        let updated = diesel::update(cb_users::table.filter(cb_users::username.eq(username)))
            .set(cb_users::password_hash.eq(password_hash))
            .execute(&mut self.conn)?;
        Ok(updated == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercase_ascii_with_dots_dashes_and_underscores() {
        for valid in ["a", "ops.admin-2_x", "0", &"z".repeat(64)] {
            assert!(check_username(valid).is_ok(), "{valid}");
        }
        for invalid in ["Admin", "a b", "a/b", "é", "a@b", "a\0"] {
            assert!(
                matches!(
                    check_username(invalid),
                    Err(StoreError::InvalidField { field: "username", .. })
                ),
                "{invalid:?}"
            );
        }
        assert!(matches!(check_username(""), Err(StoreError::FieldLength { len: 0, .. })));
        let long = "z".repeat(65);
        assert!(matches!(check_username(&long), Err(StoreError::FieldLength { len: 65, .. })));
    }

    #[test]
    fn only_argon2id_hashes_are_accepted() {
        assert!(check_password_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").is_ok());
        for invalid in ["hunter2", "$argon2i$v=19$x", "$ARGON2ID$x", " $argon2id$x"] {
            assert!(
                matches!(
                    check_password_hash(invalid),
                    Err(StoreError::InvalidField { field: "password_hash", .. })
                ),
                "{invalid}"
            );
        }
    }

    #[test]
    fn the_debug_form_leaves_the_password_hash_out() {
        let user = UserRecord {
            username: "alice".to_owned(),
            password_hash: "$argon2id$secret-material".to_owned(),
            role: "cb_admin".to_owned(),
            officer_key: None,
            disabled: false,
            created_at_ms: 1,
        };
        let debug = format!("{user:?}");
        assert!(debug.contains("alice"), "{debug}");
        assert!(!debug.contains("secret-material"), "{debug}");
    }
}
