-- The central bank service's own records: staff accounts, the hash-chained audit log, and
-- issuance and policy requests with their officers' approvals (maker-checker).
-- SQLite dialect; keep in step with ../../postgres/ (same tables, columns and constraints).
-- length() of TEXT counts characters: byte limits use length(CAST(x AS BLOB)).

CREATE TABLE cb_users (
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
    CONSTRAINT cb_users_role_known CHECK (role IN ('cb_officer', 'cb_admin', 'regulator')),
    CONSTRAINT cb_users_officer_key_length CHECK (officer_key IS NULL OR length(officer_key) = 32),
    CONSTRAINT cb_users_officer_key_only_officers
        CHECK (officer_key IS NULL OR role = 'cb_officer'),
    CONSTRAINT cb_users_disabled_boolean CHECK (disabled IN (0, 1)),
    CONSTRAINT cb_users_created_at_non_negative CHECK (created_at_ms >= 0),
    -- One key is one officer: approvals are counted per key.
    CONSTRAINT cb_users_officer_key_unique UNIQUE (officer_key)
) STRICT;

CREATE TABLE cb_audit (
    -- 1, 2, 3, ... with no gap: the position in the hash chain.
    seq INTEGER PRIMARY KEY NOT NULL,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    -- JSON by convention, opaque here.
    details TEXT NOT NULL,
    -- The hash of the entry at seq - 1; 32 zero bytes for seq 1.
    prev_hash BLOB NOT NULL,
    -- SHA-256 over this entry and prev_hash (cbdc_store::audit_hash).
    hash BLOB NOT NULL,
    CONSTRAINT cb_audit_seq_positive CHECK (seq >= 1),
    CONSTRAINT cb_audit_at_non_negative CHECK (at_ms >= 0),
    CONSTRAINT cb_audit_actor_length CHECK (length(CAST(actor AS BLOB)) BETWEEN 1 AND 128),
    CONSTRAINT cb_audit_action_length CHECK (length(CAST(action AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT cb_audit_target_length CHECK (length(CAST(target AS BLOB)) <= 256),
    CONSTRAINT cb_audit_outcome_length CHECK (length(CAST(outcome AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT cb_audit_details_length CHECK (length(CAST(details AS BLOB)) <= 16384),
    CONSTRAINT cb_audit_prev_hash_length CHECK (length(prev_hash) = 32),
    CONSTRAINT cb_audit_hash_length CHECK (length(hash) = 32)
) STRICT;

-- Append-only, refused by the database too. This stops mistakes, not an attacker who owns the
-- database (who can drop these triggers): the hash chain is what detects that.
CREATE TRIGGER cb_audit_no_update BEFORE UPDATE ON cb_audit
BEGIN
    SELECT RAISE(ABORT, 'cb_audit is append-only');
END;

CREATE TRIGGER cb_audit_no_delete BEFORE DELETE ON cb_audit
BEGIN
    SELECT RAISE(ABORT, 'cb_audit is append-only');
END;

CREATE TABLE cb_requests (
    -- Chosen by the maker; also the id of the ledger transaction.
    id BLOB PRIMARY KEY NOT NULL,
    -- e.g. 'mint', 'burn', 'policy', 'admit_bank', 'suspend_bank'.
    kind TEXT NOT NULL,
    -- JSON by convention, opaque here.
    summary TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    -- The ledger's canonical encoding of the transaction body the officers sign.
    body BLOB NOT NULL,
    expiry_height INTEGER NOT NULL,
    state TEXT NOT NULL,
    -- The ledger's rejection code, for a rejected or expired request.
    rejection TEXT,
    -- The height of the block that committed the transaction, if known.
    committed_height INTEGER,
    updated_at_ms INTEGER NOT NULL,
    CONSTRAINT cb_requests_id_length CHECK (length(id) = 16),
    CONSTRAINT cb_requests_kind_length CHECK (length(CAST(kind AS BLOB)) BETWEEN 1 AND 32),
    CONSTRAINT cb_requests_summary_length CHECK (length(CAST(summary AS BLOB)) <= 1024),
    CONSTRAINT cb_requests_reason_length CHECK (length(CAST(reason AS BLOB)) <= 1024),
    CONSTRAINT cb_requests_created_by_length
        CHECK (length(CAST(created_by AS BLOB)) BETWEEN 1 AND 128),
    CONSTRAINT cb_requests_created_at_non_negative CHECK (created_at_ms >= 0),
    CONSTRAINT cb_requests_body_length CHECK (length(body) BETWEEN 1 AND 65536),
    CONSTRAINT cb_requests_expiry_height_non_negative CHECK (expiry_height >= 0),
    CONSTRAINT cb_requests_state_known CHECK (
        state IN ('pending', 'approved', 'submitted', 'committed', 'rejected', 'expired')
    ),
    CONSTRAINT cb_requests_rejection_length
        CHECK (rejection IS NULL OR length(CAST(rejection AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT cb_requests_rejection_only_when_refused
        CHECK (rejection IS NULL OR state IN ('rejected', 'expired')),
    CONSTRAINT cb_requests_committed_height_positive
        CHECK (committed_height IS NULL OR committed_height >= 1),
    -- Only a committed request names a block (the service may not know which one, when the
    -- ledger answers that the transaction is already committed).
    CONSTRAINT cb_requests_committed_height_only_when_committed
        CHECK (committed_height IS NULL OR state = 'committed'),
    CONSTRAINT cb_requests_updated_at_non_negative CHECK (updated_at_ms >= 0)
) STRICT;

-- Listing newest first, all states or one state: ORDER BY created_at_ms DESC, id DESC.
CREATE INDEX cb_requests_created_at_ms_id ON cb_requests (created_at_ms, id);
CREATE INDEX cb_requests_state_created_at_ms_id ON cb_requests (state, created_at_ms, id);

CREATE TABLE cb_approvals (
    request_id BLOB NOT NULL REFERENCES cb_requests (id),
    -- The approving officer's 32-byte Ed25519 public key.
    officer_key BLOB NOT NULL,
    -- The officer's signature over the request's transaction body.
    signature BLOB NOT NULL,
    approved_by TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    -- One officer's approval counts once.
    CONSTRAINT cb_approvals_pkey PRIMARY KEY (request_id, officer_key),
    CONSTRAINT cb_approvals_officer_key_length CHECK (length(officer_key) = 32),
    CONSTRAINT cb_approvals_signature_length CHECK (length(signature) = 64),
    CONSTRAINT cb_approvals_approved_by_length
        CHECK (length(CAST(approved_by AS BLOB)) BETWEEN 1 AND 128),
    CONSTRAINT cb_approvals_at_non_negative CHECK (at_ms >= 0)
) STRICT;
