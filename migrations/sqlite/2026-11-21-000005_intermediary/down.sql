DROP TABLE bank_payment_requests;
DROP TABLE bank_payments;
DROP TABLE bank_wallets;
DROP TABLE bank_customers;
-- Back to the roles of 000004; fails while a user has one of the newer roles.
CREATE TABLE cb_users_roles (
    username TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    officer_key BLOB,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    CONSTRAINT cb_users_username_length CHECK (length(CAST(username AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT cb_users_username_charset CHECK (username NOT GLOB '*[^a-z0-9._-]*'),
    CONSTRAINT cb_users_password_hash_argon2id
        CHECK (substr(password_hash, 1, 10) = '$argon2id$'),
    CONSTRAINT cb_users_password_hash_length CHECK (length(CAST(password_hash AS BLOB)) <= 256),
    CONSTRAINT cb_users_role_known CHECK (role IN ('cb_officer', 'cb_admin', 'regulator')),
    CONSTRAINT cb_users_officer_key_length CHECK (officer_key IS NULL OR length(officer_key) = 32),
    CONSTRAINT cb_users_officer_key_only_officers
        CHECK (officer_key IS NULL OR role = 'cb_officer'),
    CONSTRAINT cb_users_disabled_boolean CHECK (disabled IN (0, 1)),
    CONSTRAINT cb_users_created_at_non_negative CHECK (created_at_ms >= 0),
    CONSTRAINT cb_users_officer_key_unique UNIQUE (officer_key)
) STRICT;
INSERT INTO cb_users_roles SELECT * FROM cb_users;
DROP TABLE cb_users;
ALTER TABLE cb_users_roles RENAME TO cb_users;
