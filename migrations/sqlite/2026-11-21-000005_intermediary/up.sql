-- The intermediary's (commercial bank's) own records: its customers, their wallets, the payments
-- it submitted for them (idempotent by principal and key) and payment requests.
-- SQLite dialect; keep in step with ../../postgres/ (same tables, columns and constraints).
-- length() of TEXT counts characters: byte limits use length(CAST(x AS BLOB)).

-- Customers sign in as cb_users with the roles bank_operator and customer (cbdc_store::USER_ROLES),
-- which the role check of 000004 predates. SQLite cannot alter a CHECK: the table is rebuilt
-- (nothing references it).
CREATE TABLE cb_users_roles (
    -- 1 to 64 of [a-z0-9._-]; the NOT GLOB refuses any other character.
    username TEXT PRIMARY KEY NOT NULL,
    -- An argon2id PHC string, hashed by the service; never a password.
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    -- An officer's 32-byte Ed25519 public key, the key that signs approvals.
    officer_key BLOB,
    -- 0 or 1 (STRICT tables have no BOOLEAN).
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    CONSTRAINT cb_users_username_length CHECK (length(CAST(username AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT cb_users_username_charset CHECK (username NOT GLOB '*[^a-z0-9._-]*'),
    CONSTRAINT cb_users_password_hash_argon2id
        CHECK (substr(password_hash, 1, 10) = '$argon2id$'),
    CONSTRAINT cb_users_password_hash_length CHECK (length(CAST(password_hash AS BLOB)) <= 256),
    CONSTRAINT cb_users_role_known CHECK (
        role IN ('cb_officer', 'cb_admin', 'regulator', 'bank_operator', 'customer')
    ),
    CONSTRAINT cb_users_officer_key_length CHECK (officer_key IS NULL OR length(officer_key) = 32),
    CONSTRAINT cb_users_officer_key_only_officers
        CHECK (officer_key IS NULL OR role = 'cb_officer'),
    CONSTRAINT cb_users_disabled_boolean CHECK (disabled IN (0, 1)),
    CONSTRAINT cb_users_created_at_non_negative CHECK (created_at_ms >= 0),
    -- One key is one officer: approvals are counted per key.
    CONSTRAINT cb_users_officer_key_unique UNIQUE (officer_key)
) STRICT;
INSERT INTO cb_users_roles SELECT * FROM cb_users;
DROP TABLE cb_users;
ALTER TABLE cb_users_roles RENAME TO cb_users;

CREATE TABLE bank_customers (
    -- 32 lowercase hex digits, chosen by the bank.
    customer_id TEXT PRIMARY KEY NOT NULL,
    -- The customer's login (a cb_users username, by convention; no foreign key).
    username TEXT NOT NULL,
    -- A keyed hash of the national id: one customer record per person per bank.
    holder_ref BLOB NOT NULL,
    tier INTEGER NOT NULL,
    -- 1 = active, 2 = closed (cbdc_store::CustomerStatus).
    status INTEGER NOT NULL,
    -- The customer's personal data, sealed by the service (AEAD nonce and ciphertext).
    pii_nonce BLOB NOT NULL,
    pii_ciphertext BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    CONSTRAINT bank_customers_customer_id_hex
        CHECK (length(customer_id) = 32 AND customer_id NOT GLOB '*[^0-9a-f]*'),
    CONSTRAINT bank_customers_username_length
        CHECK (length(CAST(username AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT bank_customers_username_charset CHECK (username NOT GLOB '*[^a-z0-9._-]*'),
    CONSTRAINT bank_customers_holder_ref_length CHECK (length(holder_ref) = 32),
    CONSTRAINT bank_customers_tier_range CHECK (tier BETWEEN 0 AND 7),
    CONSTRAINT bank_customers_status_known CHECK (status IN (1, 2)),
    CONSTRAINT bank_customers_pii_nonce_length CHECK (length(pii_nonce) = 12),
    CONSTRAINT bank_customers_pii_ciphertext_length
        CHECK (length(pii_ciphertext) BETWEEN 1 AND 16384),
    CONSTRAINT bank_customers_created_non_negative CHECK (created_ms >= 0),
    CONSTRAINT bank_customers_username_unique UNIQUE (username),
    CONSTRAINT bank_customers_holder_ref_unique UNIQUE (holder_ref)
) STRICT;

CREATE TABLE bank_wallets (
    wallet_id BLOB PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL REFERENCES bank_customers (customer_id),
    -- 1 = custodial (the bank holds the signing key), 2 = self-custody (cbdc_store::Custody).
    custody INTEGER NOT NULL,
    -- The ledger's wallet class code, opaque here.
    class INTEGER NOT NULL,
    -- The wallet's 32-byte Ed25519 public key.
    public_key BLOB NOT NULL,
    -- Custodial only: the signing seed, sealed by the service.
    key_nonce BLOB,
    key_ciphertext BLOB,
    -- The linked deposit account, sealed by the service, if any.
    account_nonce BLOB,
    account_ciphertext BLOB,
    created_ms INTEGER NOT NULL,
    CONSTRAINT bank_wallets_wallet_id_length CHECK (length(wallet_id) = 16),
    CONSTRAINT bank_wallets_custody_known CHECK (custody IN (1, 2)),
    CONSTRAINT bank_wallets_class_range CHECK (class BETWEEN 0 AND 255),
    CONSTRAINT bank_wallets_public_key_length CHECK (length(public_key) = 32),
    CONSTRAINT bank_wallets_key_nonce_length CHECK (key_nonce IS NULL OR length(key_nonce) = 12),
    CONSTRAINT bank_wallets_key_ciphertext_length
        CHECK (key_ciphertext IS NULL OR length(key_ciphertext) BETWEEN 1 AND 256),
    CONSTRAINT bank_wallets_key_sealed_whole CHECK ((key_nonce IS NULL) = (key_ciphertext IS NULL)),
    -- The bank holds a key exactly for custodial wallets.
    CONSTRAINT bank_wallets_key_iff_custodial CHECK ((custody = 1) = (key_nonce IS NOT NULL)),
    CONSTRAINT bank_wallets_account_nonce_length
        CHECK (account_nonce IS NULL OR length(account_nonce) = 12),
    CONSTRAINT bank_wallets_account_ciphertext_length
        CHECK (account_ciphertext IS NULL OR length(account_ciphertext) BETWEEN 1 AND 1024),
    CONSTRAINT bank_wallets_account_sealed_whole
        CHECK ((account_nonce IS NULL) = (account_ciphertext IS NULL)),
    CONSTRAINT bank_wallets_created_non_negative CHECK (created_ms >= 0)
) STRICT;

-- A customer's wallets: WHERE customer_id = ? ORDER BY created_ms, wallet_id.
CREATE INDEX bank_wallets_customer_id_created_ms
    ON bank_wallets (customer_id, created_ms, wallet_id);

CREATE TABLE bank_payments (
    -- Chosen by the bank; also the id of the ledger transaction.
    tx_id BLOB PRIMARY KEY NOT NULL,
    -- Who asked (a customer id, an operator): idempotency keys are per principal.
    principal TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- A hash of the request body: a retry with the same key and another body is refused.
    body_hash BLOB NOT NULL,
    from_wallet BLOB NOT NULL,
    to_wallet BLOB NOT NULL,
    amount_minor INTEGER NOT NULL,
    expiry_height INTEGER NOT NULL,
    -- The ledger's encoding of the signed transaction, kept to resubmit it.
    "transaction" BLOB NOT NULL,
    -- 1 = pending, 2 = committed, 3 = failed (cbdc_store::PaymentState).
    state INTEGER NOT NULL,
    -- Committed only: the block's height and timestamp, if known.
    height INTEGER,
    timestamp_ms INTEGER,
    -- Failed only: the ledger's rejection code.
    rejection TEXT,
    created_ms INTEGER NOT NULL,
    CONSTRAINT bank_payments_tx_id_length CHECK (length(tx_id) = 16),
    CONSTRAINT bank_payments_principal_length
        CHECK (length(CAST(principal AS BLOB)) BETWEEN 1 AND 128),
    CONSTRAINT bank_payments_idempotency_key_length
        CHECK (length(CAST(idempotency_key AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT bank_payments_body_hash_length CHECK (length(body_hash) = 32),
    CONSTRAINT bank_payments_from_wallet_length CHECK (length(from_wallet) = 16),
    CONSTRAINT bank_payments_to_wallet_length CHECK (length(to_wallet) = 16),
    CONSTRAINT bank_payments_amount_positive CHECK (amount_minor > 0),
    CONSTRAINT bank_payments_expiry_height_non_negative CHECK (expiry_height >= 0),
    CONSTRAINT bank_payments_transaction_length
        CHECK (length("transaction") BETWEEN 1 AND 65536),
    CONSTRAINT bank_payments_state_known CHECK (state IN (1, 2, 3)),
    CONSTRAINT bank_payments_height_positive CHECK (height IS NULL OR height >= 1),
    CONSTRAINT bank_payments_height_only_when_committed CHECK (height IS NULL OR state = 2),
    CONSTRAINT bank_payments_timestamp_non_negative
        CHECK (timestamp_ms IS NULL OR timestamp_ms >= 0),
    CONSTRAINT bank_payments_timestamp_only_when_committed
        CHECK (timestamp_ms IS NULL OR state = 2),
    CONSTRAINT bank_payments_rejection_length
        CHECK (rejection IS NULL OR length(CAST(rejection AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT bank_payments_rejection_only_when_failed CHECK (rejection IS NULL OR state = 3),
    CONSTRAINT bank_payments_created_non_negative CHECK (created_ms >= 0),
    CONSTRAINT bank_payments_idempotency_unique UNIQUE (principal, idempotency_key)
) STRICT;

-- The settlement worker's queue: WHERE state = 1 ORDER BY created_ms, tx_id.
CREATE INDEX bank_payments_state_created_ms ON bank_payments (state, created_ms, tx_id);

CREATE TABLE bank_payment_requests (
    request_id BLOB PRIMARY KEY NOT NULL,
    -- The wallet to be paid.
    wallet_id BLOB NOT NULL,
    amount_minor INTEGER NOT NULL,
    -- Shown to the payer.
    reference TEXT NOT NULL,
    -- 1 = open, 2 = paid (cbdc_store::PaymentRequestState).
    state INTEGER NOT NULL,
    -- The paying transaction, once paid.
    paid_tx_id BLOB,
    created_ms INTEGER NOT NULL,
    CONSTRAINT bank_payment_requests_request_id_length CHECK (length(request_id) = 16),
    CONSTRAINT bank_payment_requests_wallet_id_length CHECK (length(wallet_id) = 16),
    CONSTRAINT bank_payment_requests_amount_positive CHECK (amount_minor > 0),
    CONSTRAINT bank_payment_requests_reference_length
        CHECK (length(CAST(reference AS BLOB)) <= 140),
    CONSTRAINT bank_payment_requests_state_known CHECK (state IN (1, 2)),
    CONSTRAINT bank_payment_requests_paid_tx_id_length
        CHECK (paid_tx_id IS NULL OR length(paid_tx_id) = 16),
    CONSTRAINT bank_payment_requests_paid_iff_tx CHECK ((state = 2) = (paid_tx_id IS NOT NULL)),
    CONSTRAINT bank_payment_requests_created_non_negative CHECK (created_ms >= 0)
) STRICT;

-- wallet_history (tx_id), for receipts, is indexed since 000002 (wallet_history_tx_id).
