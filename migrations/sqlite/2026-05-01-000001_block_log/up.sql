-- The finalized block log and ledger snapshots: the durable truth of a node (ARCHITECTURE.md 5).
-- SQLite dialect; keep in step with ../../postgres/ (same tables, columns and constraints).
-- STRICT tables refuse values of the wrong storage class; the CHECKs refuse wrong lengths.

CREATE TABLE blocks (
    -- INTEGER PRIMARY KEY is the 64-bit rowid: the log is stored in height order.
    height INTEGER PRIMARY KEY NOT NULL,
    hash BLOB NOT NULL,
    parent_hash BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    -- The ledger's canonical encoding of the whole block.
    block BLOB NOT NULL,
    -- The consensus finalization certificate, opaque here; may be filled after the block.
    certificate BLOB,
    CONSTRAINT blocks_height_positive CHECK (height >= 1),
    CONSTRAINT blocks_hash_length CHECK (length(hash) = 32),
    CONSTRAINT blocks_parent_hash_length CHECK (length(parent_hash) = 32),
    CONSTRAINT blocks_timestamp_non_negative CHECK (timestamp_ms >= 0),
    CONSTRAINT blocks_hash_unique UNIQUE (hash)
) STRICT;

CREATE TABLE snapshots (
    -- A snapshot is the ledger state after the stored block at this height.
    height INTEGER PRIMARY KEY NOT NULL REFERENCES blocks (height),
    state_root BLOB NOT NULL,
    data BLOB NOT NULL,
    CONSTRAINT snapshots_height_positive CHECK (height >= 1),
    CONSTRAINT snapshots_state_root_length CHECK (length(state_root) = 32)
) STRICT;
