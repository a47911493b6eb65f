-- Equivocation evidence and validator-set epoch ends, kept so they survive a restart.
-- PostgreSQL dialect; keep in step with ../../sqlite/ (same tables, columns and constraints).

CREATE TABLE evidence (
    -- An identity is never reused, so the highest id is always the newest report.
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What the validator signed twice, e.g. 'conflicting_notarize'.
    kind TEXT NOT NULL,
    -- The offending validator's 32-byte public key.
    validator BYTEA NOT NULL,
    epoch BIGINT NOT NULL,
    view BIGINT NOT NULL,
    -- The engine's encoding of the two conflicting signed messages, opaque here.
    proof BYTEA NOT NULL,
    -- The node's finalized height when the evidence was recorded.
    recorded_at_height BIGINT NOT NULL,
    CONSTRAINT evidence_kind_length CHECK (octet_length(kind) BETWEEN 1 AND 64),
    CONSTRAINT evidence_validator_length CHECK (octet_length(validator) = 32),
    CONSTRAINT evidence_epoch_non_negative CHECK (epoch >= 0),
    CONSTRAINT evidence_view_non_negative CHECK (view >= 0),
    CONSTRAINT evidence_proof_length CHECK (octet_length(proof) <= 65536),
    CONSTRAINT evidence_recorded_at_height_non_negative CHECK (recorded_at_height >= 0),
    -- One offence is stored once, however often it is reported.
    CONSTRAINT evidence_offence_unique UNIQUE (kind, validator, epoch, view)
);

CREATE TABLE epoch_ends (
    epoch BIGINT PRIMARY KEY NOT NULL,
    -- The height of the last block of this finished epoch.
    height BIGINT NOT NULL,
    CONSTRAINT epoch_ends_epoch_non_negative CHECK (epoch >= 0),
    CONSTRAINT epoch_ends_height_non_negative CHECK (height >= 0)
);
