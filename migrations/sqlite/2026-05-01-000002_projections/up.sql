-- SQL projections of the block log, written once per block in one transaction (ARCHITECTURE.md 5).
-- SQLite dialect; keep in step with ../../postgres/. Small enums are INTEGER here, SMALLINT there.

CREATE TABLE wallets (
    wallet_id BLOB PRIMARY KEY NOT NULL,
    bank_id INTEGER NOT NULL,
    class INTEGER NOT NULL,
    tier INTEGER NOT NULL,
    status INTEGER NOT NULL,
    balance_minor INTEGER NOT NULL,
    -- An opaque reference to the holder's off-ledger record (never PII itself).
    holder_ref BLOB,
    -- The height of the block that last changed this row.
    updated_height INTEGER NOT NULL,
    CONSTRAINT wallets_wallet_id_length CHECK (length(wallet_id) = 16),
    CONSTRAINT wallets_bank_id_non_negative CHECK (bank_id >= 0),
    CONSTRAINT wallets_class_range CHECK (class BETWEEN 0 AND 255),
    CONSTRAINT wallets_tier_range CHECK (tier BETWEEN 0 AND 255),
    CONSTRAINT wallets_status_range CHECK (status BETWEEN 0 AND 255),
    CONSTRAINT wallets_balance_non_negative CHECK (balance_minor >= 0),
    CONSTRAINT wallets_holder_ref_length CHECK (holder_ref IS NULL OR length(holder_ref) <= 64),
    CONSTRAINT wallets_updated_height_positive CHECK (updated_height >= 1)
) STRICT, WITHOUT ROWID;

CREATE INDEX wallets_bank_id_wallet_id ON wallets (bank_id, wallet_id);

CREATE TABLE wallet_history (
    -- AUTOINCREMENT: an id is never reused, because it is a public pagination cursor.
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    height INTEGER NOT NULL,
    tx_id BLOB NOT NULL,
    wallet_id BLOB NOT NULL,
    counterparty_wallet_id BLOB,
    amount_minor INTEGER NOT NULL,
    -- 1 = credit, 2 = debit (cbdc_store::Direction).
    direction INTEGER NOT NULL,
    -- The ledger's transaction kind code.
    kind INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    CONSTRAINT wallet_history_height_positive CHECK (height >= 1),
    CONSTRAINT wallet_history_tx_id_length CHECK (length(tx_id) = 16),
    CONSTRAINT wallet_history_wallet_id_length CHECK (length(wallet_id) = 16),
    CONSTRAINT wallet_history_counterparty_length
        CHECK (counterparty_wallet_id IS NULL OR length(counterparty_wallet_id) = 16),
    CONSTRAINT wallet_history_amount_non_negative CHECK (amount_minor >= 0),
    CONSTRAINT wallet_history_direction_known CHECK (direction IN (1, 2)),
    CONSTRAINT wallet_history_kind_range CHECK (kind BETWEEN 0 AND 255),
    CONSTRAINT wallet_history_timestamp_non_negative CHECK (timestamp_ms >= 0)
) STRICT;

-- Cursor pagination of one wallet's history: WHERE wallet_id = ? AND id < ? ORDER BY id DESC.
CREATE INDEX wallet_history_wallet_id_id ON wallet_history (wallet_id, id);
-- Receipt lookup by transaction id.
CREATE INDEX wallet_history_tx_id ON wallet_history (tx_id);

CREATE TABLE supply_by_height (
    height INTEGER PRIMARY KEY NOT NULL,
    -- Minted and burned in this block; outstanding after it.
    minted_minor INTEGER NOT NULL,
    burned_minor INTEGER NOT NULL,
    outstanding_minor INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    CONSTRAINT supply_by_height_height_positive CHECK (height >= 1),
    CONSTRAINT supply_by_height_minted_non_negative CHECK (minted_minor >= 0),
    CONSTRAINT supply_by_height_burned_non_negative CHECK (burned_minor >= 0),
    CONSTRAINT supply_by_height_outstanding_non_negative CHECK (outstanding_minor >= 0),
    CONSTRAINT supply_by_height_timestamp_non_negative CHECK (timestamp_ms >= 0)
) STRICT;

-- The height up to which each named projection has been written.
CREATE TABLE projection_cursor (
    name TEXT PRIMARY KEY NOT NULL,
    height INTEGER NOT NULL,
    CONSTRAINT projection_cursor_name_length CHECK (length(name) BETWEEN 1 AND 64),
    CONSTRAINT projection_cursor_height_non_negative CHECK (height >= 0)
) STRICT;
