-- SQL projections of the block log, written once per block in one transaction (ARCHITECTURE.md 5).
-- PostgreSQL dialect; keep in step with ../../sqlite/. Small enums are SMALLINT here, INTEGER there.

CREATE TABLE wallets (
    wallet_id BYTEA PRIMARY KEY NOT NULL,
    bank_id BIGINT NOT NULL,
    class SMALLINT NOT NULL,
    tier SMALLINT NOT NULL,
    status SMALLINT NOT NULL,
    balance_minor BIGINT NOT NULL,
    -- An opaque reference to the holder's off-ledger record (never PII itself).
    holder_ref BYTEA,
    -- The height of the block that last changed this row.
    updated_height BIGINT NOT NULL,
    CONSTRAINT wallets_wallet_id_length CHECK (octet_length(wallet_id) = 16),
    CONSTRAINT wallets_bank_id_non_negative CHECK (bank_id >= 0),
    CONSTRAINT wallets_class_range CHECK (class BETWEEN 0 AND 255),
    CONSTRAINT wallets_tier_range CHECK (tier BETWEEN 0 AND 255),
    CONSTRAINT wallets_status_range CHECK (status BETWEEN 0 AND 255),
    CONSTRAINT wallets_balance_non_negative CHECK (balance_minor >= 0),
    CONSTRAINT wallets_holder_ref_length
        CHECK (holder_ref IS NULL OR octet_length(holder_ref) <= 64),
    CONSTRAINT wallets_updated_height_positive CHECK (updated_height >= 1)
);

CREATE INDEX wallets_bank_id_wallet_id ON wallets (bank_id, wallet_id);

CREATE TABLE wallet_history (
    -- An identity is never reused, because it is a public pagination cursor.
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    height BIGINT NOT NULL,
    tx_id BYTEA NOT NULL,
    wallet_id BYTEA NOT NULL,
    counterparty_wallet_id BYTEA,
    amount_minor BIGINT NOT NULL,
    -- 1 = credit, 2 = debit (cbdc_store::Direction).
    direction SMALLINT NOT NULL,
    -- The ledger's transaction kind code.
    kind SMALLINT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    CONSTRAINT wallet_history_height_positive CHECK (height >= 1),
    CONSTRAINT wallet_history_tx_id_length CHECK (octet_length(tx_id) = 16),
    CONSTRAINT wallet_history_wallet_id_length CHECK (octet_length(wallet_id) = 16),
    CONSTRAINT wallet_history_counterparty_length
        CHECK (counterparty_wallet_id IS NULL OR octet_length(counterparty_wallet_id) = 16),
    CONSTRAINT wallet_history_amount_non_negative CHECK (amount_minor >= 0),
    CONSTRAINT wallet_history_direction_known CHECK (direction IN (1, 2)),
    CONSTRAINT wallet_history_kind_range CHECK (kind BETWEEN 0 AND 255),
    CONSTRAINT wallet_history_timestamp_non_negative CHECK (timestamp_ms >= 0)
);

-- Cursor pagination of one wallet's history: WHERE wallet_id = $1 AND id < $2 ORDER BY id DESC.
CREATE INDEX wallet_history_wallet_id_id ON wallet_history (wallet_id, id);
-- Receipt lookup by transaction id.
CREATE INDEX wallet_history_tx_id ON wallet_history (tx_id);

CREATE TABLE supply_by_height (
    height BIGINT PRIMARY KEY NOT NULL,
    -- Minted and burned in this block; outstanding after it.
    minted_minor BIGINT NOT NULL,
    burned_minor BIGINT NOT NULL,
    outstanding_minor BIGINT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    CONSTRAINT supply_by_height_height_positive CHECK (height >= 1),
    CONSTRAINT supply_by_height_minted_non_negative CHECK (minted_minor >= 0),
    CONSTRAINT supply_by_height_burned_non_negative CHECK (burned_minor >= 0),
    CONSTRAINT supply_by_height_outstanding_non_negative CHECK (outstanding_minor >= 0),
    CONSTRAINT supply_by_height_timestamp_non_negative CHECK (timestamp_ms >= 0)
);

-- The height up to which each named projection has been written.
CREATE TABLE projection_cursor (
    name TEXT PRIMARY KEY NOT NULL,
    height BIGINT NOT NULL,
    CONSTRAINT projection_cursor_name_length CHECK (char_length(name) BETWEEN 1 AND 64),
    CONSTRAINT projection_cursor_height_non_negative CHECK (height >= 0)
);
