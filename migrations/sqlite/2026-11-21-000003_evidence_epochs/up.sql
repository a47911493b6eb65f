-- Equivocation evidence and validator-set epoch ends, kept so they survive a restart.
-- SQLite dialect; keep in step with ../../postgres/ (same tables, columns and constraints).

CREATE TABLE evidence (
    -- AUTOINCREMENT: an id is never reused, so the highest id is always the newest report.
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- What the validator signed twice, e.g. 'conflicting_notarize'.
    kind TEXT NOT NULL,
    -- The offending validator's 32-byte public key.
    validator BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    view INTEGER NOT NULL,
    -- The engine's encoding of the two conflicting signed messages, opaque here.
    proof BLOB NOT NULL,
    -- The node's finalized height when the evidence was recorded.
    recorded_at_height INTEGER NOT NULL,
    -- length() of TEXT counts characters: the limit is on bytes.
    CONSTRAINT evidence_kind_length CHECK (length(CAST(kind AS BLOB)) BETWEEN 1 AND 64),
    CONSTRAINT evidence_validator_length CHECK (length(validator) = 32),
    CONSTRAINT evidence_epoch_non_negative CHECK (epoch >= 0),
    CONSTRAINT evidence_view_non_negative CHECK (view >= 0),
    CONSTRAINT evidence_proof_length CHECK (length(proof) <= 65536),
    CONSTRAINT evidence_recorded_at_height_non_negative CHECK (recorded_at_height >= 0),
    -- One offence is stored once, however often it is reported.
    CONSTRAINT evidence_offence_unique UNIQUE (kind, validator, epoch, view)
) STRICT;

CREATE TABLE epoch_ends (
    epoch INTEGER PRIMARY KEY NOT NULL,
    -- The height of the last block of this finished epoch.
    height INTEGER NOT NULL,
    CONSTRAINT epoch_ends_epoch_non_negative CHECK (epoch >= 0),
    CONSTRAINT epoch_ends_height_non_negative CHECK (height >= 0)
) STRICT;
