-- The finalized block log and ledger snapshots: the durable truth of a node (ARCHITECTURE.md 5).
-- PostgreSQL dialect; keep in step with ../../sqlite/ (same tables, columns and constraints).

CREATE TABLE blocks (
    height BIGINT PRIMARY KEY NOT NULL,
    hash BYTEA NOT NULL,
    parent_hash BYTEA NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    -- The ledger's canonical encoding of the whole block.
    block BYTEA NOT NULL,
    -- The consensus finalization certificate, opaque here; may be filled after the block.
    certificate BYTEA,
    CONSTRAINT blocks_height_positive CHECK (height >= 1),
    CONSTRAINT blocks_hash_length CHECK (octet_length(hash) = 32),
    CONSTRAINT blocks_parent_hash_length CHECK (octet_length(parent_hash) = 32),
    CONSTRAINT blocks_timestamp_non_negative CHECK (timestamp_ms >= 0),
    CONSTRAINT blocks_hash_unique UNIQUE (hash)
);

CREATE TABLE snapshots (
    -- A snapshot is the ledger state after the stored block at this height.
    height BIGINT PRIMARY KEY NOT NULL REFERENCES blocks (height),
    state_root BYTEA NOT NULL,
    data BYTEA NOT NULL,
    CONSTRAINT snapshots_height_positive CHECK (height >= 1),
    CONSTRAINT snapshots_state_root_length CHECK (octet_length(state_root) = 32)
);
