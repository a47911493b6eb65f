//! The one diesel schema, for both backends. It mirrors `migrations/{sqlite,postgres}`: SQLite
//! `INTEGER` columns are declared `BigInt` or `SmallInt` here (`Bool` for a 0/1 column that is
//! `BOOLEAN` on PostgreSQL), SQLite `BLOB` and PostgreSQL `BYTEA` are `Binary`.

diesel::table! {
    blocks (height) {
        height -> BigInt,
        hash -> Binary,
        parent_hash -> Binary,
        timestamp_ms -> BigInt,
        block -> Binary,
        certificate -> Nullable<Binary>,
    }
}

diesel::table! {
    snapshots (height) {
        height -> BigInt,
        state_root -> Binary,
        data -> Binary,
    }
}

diesel::table! {
    wallets (wallet_id) {
        wallet_id -> Binary,
        bank_id -> BigInt,
        class -> SmallInt,
        tier -> SmallInt,
        status -> SmallInt,
        balance_minor -> BigInt,
        holder_ref -> Nullable<Binary>,
        updated_height -> BigInt,
    }
}

diesel::table! {
    wallet_history (id) {
        id -> BigInt,
        height -> BigInt,
        tx_id -> Binary,
        wallet_id -> Binary,
        counterparty_wallet_id -> Nullable<Binary>,
        amount_minor -> BigInt,
        direction -> SmallInt,
        kind -> SmallInt,
        timestamp_ms -> BigInt,
    }
}

diesel::table! {
    supply_by_height (height) {
        height -> BigInt,
        minted_minor -> BigInt,
        burned_minor -> BigInt,
        outstanding_minor -> BigInt,
        timestamp_ms -> BigInt,
    }
}

diesel::table! {
    projection_cursor (name) {
        name -> Text,
        height -> BigInt,
    }
}

diesel::table! {
    evidence (id) {
        id -> BigInt,
        kind -> Text,
        validator -> Binary,
        epoch -> BigInt,
        view -> BigInt,
        proof -> Binary,
        recorded_at_height -> BigInt,
    }
}

diesel::table! {
    epoch_ends (epoch) {
        epoch -> BigInt,
        height -> BigInt,
    }
}

diesel::table! {
    cb_users (username) {
        username -> Text,
        password_hash -> Text,
        role -> Text,
        officer_key -> Nullable<Binary>,
        disabled -> Bool,
        created_at_ms -> BigInt,
    }
}

diesel::table! {
    cb_audit (seq) {
        seq -> BigInt,
        at_ms -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        outcome -> Text,
        details -> Text,
        prev_hash -> Binary,
        hash -> Binary,
    }
}

diesel::table! {
    cb_requests (id) {
        id -> Binary,
        kind -> Text,
        summary -> Text,
        reason -> Text,
        created_by -> Text,
        created_at_ms -> BigInt,
        body -> Binary,
        expiry_height -> BigInt,
        state -> Text,
        rejection -> Nullable<Text>,
        committed_height -> Nullable<BigInt>,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    cb_approvals (request_id, officer_key) {
        request_id -> Binary,
        officer_key -> Binary,
        signature -> Binary,
        approved_by -> Text,
        at_ms -> BigInt,
    }
}

diesel::table! {
    bank_customers (customer_id) {
        customer_id -> Text,
        username -> Text,
        holder_ref -> Binary,
        tier -> SmallInt,
        status -> SmallInt,
        pii_nonce -> Binary,
        pii_ciphertext -> Binary,
        created_ms -> BigInt,
    }
}

diesel::table! {
    bank_wallets (wallet_id) {
        wallet_id -> Binary,
        customer_id -> Text,
        custody -> SmallInt,
        class -> SmallInt,
        public_key -> Binary,
        key_nonce -> Nullable<Binary>,
        key_ciphertext -> Nullable<Binary>,
        account_nonce -> Nullable<Binary>,
        account_ciphertext -> Nullable<Binary>,
        created_ms -> BigInt,
    }
}

diesel::table! {
    bank_payments (tx_id) {
        tx_id -> Binary,
        principal -> Text,
        idempotency_key -> Text,
        body_hash -> Binary,
        from_wallet -> Binary,
        to_wallet -> Binary,
        amount_minor -> BigInt,
        expiry_height -> BigInt,
        transaction -> Binary,
        state -> SmallInt,
        height -> Nullable<BigInt>,
        timestamp_ms -> Nullable<BigInt>,
        rejection -> Nullable<Text>,
        created_ms -> BigInt,
    }
}

diesel::table! {
    bank_payment_requests (request_id) {
        request_id -> Binary,
        wallet_id -> Binary,
        amount_minor -> BigInt,
        reference -> Text,
        state -> SmallInt,
        paid_tx_id -> Nullable<Binary>,
        created_ms -> BigInt,
    }
}

diesel::joinable!(cb_approvals -> cb_requests (request_id));
diesel::joinable!(bank_wallets -> bank_customers (customer_id));

diesel::allow_tables_to_appear_in_same_query!(
    blocks,
    snapshots,
    wallets,
    wallet_history,
    supply_by_height,
    projection_cursor,
    evidence,
    epoch_ends,
    cb_users,
    cb_audit,
    cb_requests,
    cb_approvals,
    bank_customers,
    bank_wallets,
    bank_payments,
    bank_payment_requests,
);
