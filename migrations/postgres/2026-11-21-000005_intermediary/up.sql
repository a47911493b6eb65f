-- The intermediary's (commercial bank's) own records: its customers, their wallets, the payments
-- it submitted for them (idempotent by principal and key) and payment requests.
-- PostgreSQL dialect; keep in step with ../../sqlite/ (same tables, columns and constraints).

-- Customers sign in as cb_users with the roles bank_operator and customer (cbdc_store::USER_ROLES),
-- which the role check of 000004 predates.
ALTER TABLE cb_users DROP CONSTRAINT cb_users_role_known;
ALTER TABLE cb_users ADD CONSTRAINT cb_users_role_known CHECK (
    role IN ('cb_officer', 'cb_admin', 'regulator', 'bank_operator', 'customer')
);

CREATE TABLE bank_customers (
    -- 32 lowercase hex digits, chosen by the bank. Byte order ("C") for keyset paging.
    customer_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    -- The customer's login (a cb_users username, by convention; no foreign key).
    username TEXT NOT NULL,
    -- A keyed hash of the national id: one customer record per person per bank.
    holder_ref BYTEA NOT NULL,
    tier SMALLINT NOT NULL,
    -- 1 = active, 2 = closed (cbdc_store::CustomerStatus).
    status SMALLINT NOT NULL,
    -- The customer's personal data, sealed by the service (AEAD nonce and ciphertext).
    pii_nonce BYTEA NOT NULL,
    pii_ciphertext BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    CONSTRAINT bank_customers_customer_id_hex CHECK (customer_id ~ '^[0-9a-f]{32}$'),
    CONSTRAINT bank_customers_username_length CHECK (octet_length(username) BETWEEN 1 AND 64),
    CONSTRAINT bank_customers_username_charset CHECK (
        translate(username, 'abcdefghijklmnopqrstuvwxyz0123456789._-', '') = ''
    ),
    CONSTRAINT bank_customers_holder_ref_length CHECK (octet_length(holder_ref) = 32),
    CONSTRAINT bank_customers_tier_range CHECK (tier BETWEEN 0 AND 7),
    CONSTRAINT bank_customers_status_known CHECK (status IN (1, 2)),
    CONSTRAINT bank_customers_pii_nonce_length CHECK (octet_length(pii_nonce) = 12),
    CONSTRAINT bank_customers_pii_ciphertext_length
        CHECK (octet_length(pii_ciphertext) BETWEEN 1 AND 16384),
    CONSTRAINT bank_customers_created_non_negative CHECK (created_ms >= 0),
    CONSTRAINT bank_customers_username_unique UNIQUE (username),
    CONSTRAINT bank_customers_holder_ref_unique UNIQUE (holder_ref)
);

CREATE TABLE bank_wallets (
    wallet_id BYTEA PRIMARY KEY NOT NULL,
    customer_id TEXT COLLATE "C" NOT NULL REFERENCES bank_customers (customer_id),
    -- 1 = custodial (the bank holds the signing key), 2 = self-custody (cbdc_store::Custody).
    custody SMALLINT NOT NULL,
    -- The ledger's wallet class code, opaque here.
    class SMALLINT NOT NULL,
    -- The wallet's 32-byte Ed25519 public key.
    public_key BYTEA NOT NULL,
    -- Custodial only: the signing seed, sealed by the service.
    key_nonce BYTEA,
    key_ciphertext BYTEA,
    -- The linked deposit account, sealed by the service, if any.
    account_nonce BYTEA,
    account_ciphertext BYTEA,
    created_ms BIGINT NOT NULL,
    CONSTRAINT bank_wallets_wallet_id_length CHECK (octet_length(wallet_id) = 16),
    CONSTRAINT bank_wallets_custody_known CHECK (custody IN (1, 2)),
    CONSTRAINT bank_wallets_class_range CHECK (class BETWEEN 0 AND 255),
    CONSTRAINT bank_wallets_public_key_length CHECK (octet_length(public_key) = 32),
    CONSTRAINT bank_wallets_key_nonce_length
        CHECK (key_nonce IS NULL OR octet_length(key_nonce) = 12),
    CONSTRAINT bank_wallets_key_ciphertext_length
        CHECK (key_ciphertext IS NULL OR octet_length(key_ciphertext) BETWEEN 1 AND 256),
    CONSTRAINT bank_wallets_key_sealed_whole CHECK ((key_nonce IS NULL) = (key_ciphertext IS NULL)),
    -- The bank holds a key exactly for custodial wallets.
    CONSTRAINT bank_wallets_key_iff_custodial CHECK ((custody = 1) = (key_nonce IS NOT NULL)),
    CONSTRAINT bank_wallets_account_nonce_length
        CHECK (account_nonce IS NULL OR octet_length(account_nonce) = 12),
    CONSTRAINT bank_wallets_account_ciphertext_length
        CHECK (account_ciphertext IS NULL OR octet_length(account_ciphertext) BETWEEN 1 AND 1024),
    CONSTRAINT bank_wallets_account_sealed_whole
        CHECK ((account_nonce IS NULL) = (account_ciphertext IS NULL)),
    CONSTRAINT bank_wallets_created_non_negative CHECK (created_ms >= 0)
);

-- A customer's wallets: WHERE customer_id = $1 ORDER BY created_ms, wallet_id.
CREATE INDEX bank_wallets_customer_id_created_ms
    ON bank_wallets (customer_id, created_ms, wallet_id);

CREATE TABLE bank_payments (
    -- Chosen by the bank; also the id of the ledger transaction.
    tx_id BYTEA PRIMARY KEY NOT NULL,
    -- Who asked (a customer id, an operator): idempotency keys are per principal.
    principal TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- A hash of the request body: a retry with the same key and another body is refused.
    body_hash BYTEA NOT NULL,
    from_wallet BYTEA NOT NULL,
    to_wallet BYTEA NOT NULL,
    amount_minor BIGINT NOT NULL,
    expiry_height BIGINT NOT NULL,
    -- The ledger's encoding of the signed transaction, kept to resubmit it.
    "transaction" BYTEA NOT NULL,
    -- 1 = pending, 2 = committed, 3 = failed (cbdc_store::PaymentState).
    state SMALLINT NOT NULL,
    -- Committed only: the block's height and timestamp, if known.
    height BIGINT,
    timestamp_ms BIGINT,
    -- Failed only: the ledger's rejection code.
    rejection TEXT,
    created_ms BIGINT NOT NULL,
    CONSTRAINT bank_payments_tx_id_length CHECK (octet_length(tx_id) = 16),
    CONSTRAINT bank_payments_principal_length CHECK (octet_length(principal) BETWEEN 1 AND 128),
    CONSTRAINT bank_payments_idempotency_key_length
        CHECK (octet_length(idempotency_key) BETWEEN 1 AND 64),
    CONSTRAINT bank_payments_body_hash_length CHECK (octet_length(body_hash) = 32),
    CONSTRAINT bank_payments_from_wallet_length CHECK (octet_length(from_wallet) = 16),
    CONSTRAINT bank_payments_to_wallet_length CHECK (octet_length(to_wallet) = 16),
    CONSTRAINT bank_payments_amount_positive CHECK (amount_minor > 0),
    CONSTRAINT bank_payments_expiry_height_non_negative CHECK (expiry_height >= 0),
    CONSTRAINT bank_payments_transaction_length
        CHECK (octet_length("transaction") BETWEEN 1 AND 65536),
    CONSTRAINT bank_payments_state_known CHECK (state IN (1, 2, 3)),
    CONSTRAINT bank_payments_height_positive CHECK (height IS NULL OR height >= 1),
    CONSTRAINT bank_payments_height_only_when_committed CHECK (height IS NULL OR state = 2),
    CONSTRAINT bank_payments_timestamp_non_negative
        CHECK (timestamp_ms IS NULL OR timestamp_ms >= 0),
    CONSTRAINT bank_payments_timestamp_only_when_committed
        CHECK (timestamp_ms IS NULL OR state = 2),
    CONSTRAINT bank_payments_rejection_length
        CHECK (rejection IS NULL OR octet_length(rejection) BETWEEN 1 AND 64),
    CONSTRAINT bank_payments_rejection_only_when_failed CHECK (rejection IS NULL OR state = 3),
    CONSTRAINT bank_payments_created_non_negative CHECK (created_ms >= 0),
    CONSTRAINT bank_payments_idempotency_unique UNIQUE (principal, idempotency_key)
);

-- The settlement worker's queue: WHERE state = 1 ORDER BY created_ms, tx_id.
CREATE INDEX bank_payments_state_created_ms ON bank_payments (state, created_ms, tx_id);

CREATE TABLE bank_payment_requests (
    request_id BYTEA PRIMARY KEY NOT NULL,
    -- The wallet to be paid.
    wallet_id BYTEA NOT NULL,
    amount_minor BIGINT NOT NULL,
    -- Shown to the payer.
    reference TEXT NOT NULL,
    -- 1 = open, 2 = paid (cbdc_store::PaymentRequestState).
    state SMALLINT NOT NULL,
    -- The paying transaction, once paid.
    paid_tx_id BYTEA,
    created_ms BIGINT NOT NULL,
    CONSTRAINT bank_payment_requests_request_id_length CHECK (octet_length(request_id) = 16),
    CONSTRAINT bank_payment_requests_wallet_id_length CHECK (octet_length(wallet_id) = 16),
    CONSTRAINT bank_payment_requests_amount_positive CHECK (amount_minor > 0),
    CONSTRAINT bank_payment_requests_reference_length CHECK (octet_length(reference) <= 140),
    CONSTRAINT bank_payment_requests_state_known CHECK (state IN (1, 2)),
    CONSTRAINT bank_payment_requests_paid_tx_id_length
        CHECK (paid_tx_id IS NULL OR octet_length(paid_tx_id) = 16),
    CONSTRAINT bank_payment_requests_paid_iff_tx CHECK ((state = 2) = (paid_tx_id IS NOT NULL)),
    CONSTRAINT bank_payment_requests_created_non_negative CHECK (created_ms >= 0)
);

-- wallet_history (tx_id), for receipts, is indexed since 000002 (wallet_history_tx_id).
