-- The central bank service's own records: staff accounts, the hash-chained audit log, and
-- issuance and policy requests with their officers' approvals (maker-checker).
-- PostgreSQL dialect; keep in step with ../../sqlite/ (same tables, columns and constraints).

CREATE TABLE cb_users (
    -- 1 to 64 of [a-z0-9._-]: removing those characters must leave nothing.
    username TEXT PRIMARY KEY NOT NULL,
    -- An argon2id PHC string, hashed by the service; never a password.
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    -- An officer's 32-byte Ed25519 public key, the key that signs approvals.
    officer_key BYTEA,
    disabled BOOLEAN NOT NULL DEFAULT false,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT cb_users_username_length CHECK (octet_length(username) BETWEEN 1 AND 64),
    CONSTRAINT cb_users_username_charset CHECK (
        translate(username, 'abcdefghijklmnopqrstuvwxyz0123456789._-', '') = ''
    ),
    CONSTRAINT cb_users_password_hash_argon2id
        CHECK (substr(password_hash, 1, 10) = '$argon2id$'),
    CONSTRAINT cb_users_password_hash_length CHECK (octet_length(password_hash) <= 256),
    CONSTRAINT cb_users_role_known CHECK (role IN ('cb_officer', 'cb_admin', 'regulator')),
    CONSTRAINT cb_users_officer_key_length
        CHECK (officer_key IS NULL OR octet_length(officer_key) = 32),
    CONSTRAINT cb_users_officer_key_only_officers
        CHECK (officer_key IS NULL OR role = 'cb_officer'),
    CONSTRAINT cb_users_created_at_non_negative CHECK (created_at_ms >= 0),
    -- One key is one officer: approvals are counted per key.
    CONSTRAINT cb_users_officer_key_unique UNIQUE (officer_key)
);

CREATE TABLE cb_audit (
    -- 1, 2, 3, ... with no gap: the position in the hash chain.
    seq BIGINT PRIMARY KEY NOT NULL,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    -- JSON by convention, opaque here.
    details TEXT NOT NULL,
    -- The hash of the entry at seq - 1; 32 zero bytes for seq 1.
    prev_hash BYTEA NOT NULL,
    -- SHA-256 over this entry and prev_hash (cbdc_store::audit_hash).
    hash BYTEA NOT NULL,
    CONSTRAINT cb_audit_seq_positive CHECK (seq >= 1),
    CONSTRAINT cb_audit_at_non_negative CHECK (at_ms >= 0),
    CONSTRAINT cb_audit_actor_length CHECK (octet_length(actor) BETWEEN 1 AND 128),
    CONSTRAINT cb_audit_action_length CHECK (octet_length(action) BETWEEN 1 AND 64),
    CONSTRAINT cb_audit_target_length CHECK (octet_length(target) <= 256),
    CONSTRAINT cb_audit_outcome_length CHECK (octet_length(outcome) BETWEEN 1 AND 64),
    CONSTRAINT cb_audit_details_length CHECK (octet_length(details) <= 16384),
    CONSTRAINT cb_audit_prev_hash_length CHECK (octet_length(prev_hash) = 32),
    CONSTRAINT cb_audit_hash_length CHECK (octet_length(hash) = 32)
);

-- Append-only, refused by the database too. This stops mistakes, not an attacker who owns the
-- database (who can drop these triggers): the hash chain is what detects that.
CREATE FUNCTION cb_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cb_audit is append-only';
END
$$;

CREATE TRIGGER cb_audit_no_update_delete BEFORE UPDATE OR DELETE ON cb_audit
    FOR EACH ROW EXECUTE FUNCTION cb_audit_append_only();

CREATE TRIGGER cb_audit_no_truncate BEFORE TRUNCATE ON cb_audit
    FOR EACH STATEMENT EXECUTE FUNCTION cb_audit_append_only();

CREATE TABLE cb_requests (
    -- Chosen by the maker; also the id of the ledger transaction.
    id BYTEA PRIMARY KEY NOT NULL,
    -- e.g. 'mint', 'burn', 'policy', 'admit_bank', 'suspend_bank'.
    kind TEXT NOT NULL,
    -- JSON by convention, opaque here.
    summary TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- The ledger's canonical encoding of the transaction body the officers sign.
    body BYTEA NOT NULL,
    expiry_height BIGINT NOT NULL,
    state TEXT NOT NULL,
    -- The ledger's rejection code, for a rejected or expired request.
    rejection TEXT,
    -- The height of the block that committed the transaction, if known.
    committed_height BIGINT,
    updated_at_ms BIGINT NOT NULL,
    CONSTRAINT cb_requests_id_length CHECK (octet_length(id) = 16),
    CONSTRAINT cb_requests_kind_length CHECK (octet_length(kind) BETWEEN 1 AND 32),
    CONSTRAINT cb_requests_summary_length CHECK (octet_length(summary) <= 1024),
    CONSTRAINT cb_requests_reason_length CHECK (octet_length(reason) <= 1024),
    CONSTRAINT cb_requests_created_by_length
        CHECK (octet_length(created_by) BETWEEN 1 AND 128),
    CONSTRAINT cb_requests_created_at_non_negative CHECK (created_at_ms >= 0),
    CONSTRAINT cb_requests_body_length CHECK (octet_length(body) BETWEEN 1 AND 65536),
    CONSTRAINT cb_requests_expiry_height_non_negative CHECK (expiry_height >= 0),
    CONSTRAINT cb_requests_state_known CHECK (
        state IN ('pending', 'approved', 'submitted', 'committed', 'rejected', 'expired')
    ),
    CONSTRAINT cb_requests_rejection_length
        CHECK (rejection IS NULL OR octet_length(rejection) BETWEEN 1 AND 64),
    CONSTRAINT cb_requests_rejection_only_when_refused
        CHECK (rejection IS NULL OR state IN ('rejected', 'expired')),
    CONSTRAINT cb_requests_committed_height_positive
        CHECK (committed_height IS NULL OR committed_height >= 1),
    -- Only a committed request names a block (the service may not know which one, when the
    -- ledger answers that the transaction is already committed).
    CONSTRAINT cb_requests_committed_height_only_when_committed
        CHECK (committed_height IS NULL OR state = 'committed'),
    CONSTRAINT cb_requests_updated_at_non_negative CHECK (updated_at_ms >= 0)
);

-- Listing newest first, all states or one state: ORDER BY created_at_ms DESC, id DESC.
CREATE INDEX cb_requests_created_at_ms_id ON cb_requests (created_at_ms, id);
CREATE INDEX cb_requests_state_created_at_ms_id ON cb_requests (state, created_at_ms, id);

CREATE TABLE cb_approvals (
    request_id BYTEA NOT NULL REFERENCES cb_requests (id),
    -- The approving officer's 32-byte Ed25519 public key.
    officer_key BYTEA NOT NULL,
    -- The officer's signature over the request's transaction body.
    signature BYTEA NOT NULL,
    approved_by TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    -- One officer's approval counts once.
    CONSTRAINT cb_approvals_pkey PRIMARY KEY (request_id, officer_key),
    CONSTRAINT cb_approvals_officer_key_length CHECK (octet_length(officer_key) = 32),
    CONSTRAINT cb_approvals_signature_length CHECK (octet_length(signature) = 64),
    CONSTRAINT cb_approvals_approved_by_length
        CHECK (octet_length(approved_by) BETWEEN 1 AND 128),
    CONSTRAINT cb_approvals_at_non_negative CHECK (at_ms >= 0)
);
