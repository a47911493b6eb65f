//! A small in-memory [`WalletBackend`] for tests of the routes, the client and the CLI (feature
//! `testkit`). It decides nothing real: it answers fixed documents and records what the routes
//! handed it, so tests can check the HTTP layer alone. The real bank is tested end to end
//! elsewhere.
//!
//! Users: `alice` / `alice-password` (customer, token [`CUSTOMER_TOKEN`]) and `olga` /
//! `olga-password` (bank operator, token [`OPERATOR_TOKEN`]). Alice owns [`WALLET`] (custodial)
//! and every wallet she registers. Custodial payments answer by amount: [`PAY_PENDING`] is
//! pending, [`PAY_REJECTED`] fails with `insufficient_funds`, [`PAY_FAILED`] fails without a
//! code, anything else commits. Signed payments are remembered by `Idempotency-Key`: the same
//! key and body answer the first receipt, another body 409 `idempotency_conflict`. The height
//! grows by one at every `GET /v1/network`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test double")]

use crate::backend::{ApiError, Idempotency, Payment, Principal, WalletBackend};
use crate::model::{
    Balance, Custody, HistoryEntry, HistoryPage, Limits, LoginRequest, NetworkInfo,
    OpenWalletRequest, PaymentRequestView, PaymentStatus, Receipt, TokenResponse, Wallet,
    WalletClass, WalletList,
};
use cbdc_ledger::{SignedTransaction, TxId, TxKind, WalletId};
use cbdc_service::auth::Role;
use std::sync::Mutex;

pub const CUSTOMER_TOKEN: &str = "customer-token";
pub const OPERATOR_TOKEN: &str = "operator-token";
pub const CHAIN_ID: &str = "testkit-chain";
/// Alice's custodial wallet.
pub const WALLET: WalletId = WalletId([0x11; 16]);
/// A transaction id [`TestBank::payment`] knows.
pub const KNOWN_TX: TxId = TxId([0x22; 16]);
pub const PAY_PENDING: u64 = 2;
pub const PAY_REJECTED: u64 = 3;
pub const PAY_FAILED: u64 = 4;

/// What the routes handed the backend, newest last.
#[derive(Debug, Default, Clone)]
pub struct Calls {
    pub payments: Vec<(Idempotency, Payment)>,
    pub signed: Vec<(Idempotency, SignedTransaction)>,
    pub history: Vec<(WalletId, Option<u64>, u32)>,
    pub opened: Vec<OpenWalletRequest>,
    /// Calls made with a principal, of any kind: none may happen for refused input.
    pub authorized: u32,
}

/// The test double.
#[derive(Debug, Default)]
pub struct TestBank {
    calls: Mutex<Calls>,
    /// Self-custody wallets registered: (id, public key hex).
    registered: Mutex<Vec<(WalletId, String)>>,
    /// Signed payments accepted: (key, body hash, receipt), for replays and conflicts.
    signed: Mutex<Vec<(String, [u8; 32], Receipt)>>,
    /// The chain advances one block per `network` call.
    height: std::sync::atomic::AtomicU64,
}

impl TestBank {
    pub fn new() -> TestBank {
        TestBank::default()
    }

    /// A copy of what the routes handed over so far.
    pub fn calls(&self) -> Calls {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, f: impl FnOnce(&mut Calls)) {
        let mut calls = self.calls.lock().unwrap();
        calls.authorized += 1;
        f(&mut calls);
    }

    fn owns(&self, wallet: WalletId) -> bool {
        wallet == WALLET || self.registered.lock().unwrap().iter().any(|(w, _)| *w == wallet)
    }

    fn wallet(&self, wallet: WalletId) -> Wallet {
        let key = self.registered.lock().unwrap().iter().find(|(w, _)| *w == wallet).cloned();
        Wallet {
            wallet_id: wallet.to_hex(),
            bank_id: 1,
            class: WalletClass::Retail,
            custody: if key.is_some() { Custody::SelfCustody } else { Custody::Custodial },
            public_key: key.map_or_else(|| "ab".repeat(32), |(_, k)| k),
            tier: 1,
            status: "active".to_string(),
            linked: false,
            balance_minor: 10_000,
        }
    }
}

/// A receipt for a one-leg payment.
pub fn receipt(tx: TxId, from: WalletId, to: WalletId, amount_minor: u64) -> Receipt {
    Receipt {
        tx_id: tx.to_hex(),
        status: PaymentStatus::Committed,
        from_wallet: from.to_hex(),
        to_wallet: to.to_hex(),
        amount_minor,
        height: Some(7),
        timestamp_ms: Some(1_700_000_000_000),
        rejection: None,
        status_url: format!("/v1/payments/{}", tx.to_hex()),
    }
}

impl WalletBackend for TestBank {
    async fn login(&self, request: LoginRequest) -> Result<TokenResponse, ApiError> {
        let (token, role) = match (request.username.as_str(), request.password.as_str()) {
            ("alice", "alice-password") => (CUSTOMER_TOKEN, Role::Customer),
            ("olga", "olga-password") => (OPERATOR_TOKEN, Role::BankOperator),
            _ => {
                return Err(ApiError::new(401, "invalid_credentials", "unknown user or password"));
            }
        };
        Ok(TokenResponse {
            access_token: token.to_string(),
            token_type: "Bearer".to_string(),
            expires_in: 900,
            role: role.as_str().to_string(),
        })
    }

    fn authenticate(&self, bearer: &str) -> Result<Principal, ApiError> {
        let (username, role) = match bearer {
            CUSTOMER_TOKEN => ("alice", Role::Customer),
            OPERATOR_TOKEN => ("olga", Role::BankOperator),
            _ => return Err(ApiError::unauthorized()),
        };
        let customer_id = (role == Role::Customer).then(|| "customer-1".to_string());
        Ok(Principal { username: username.to_string(), role, customer_id })
    }

    async fn network(&self) -> Result<NetworkInfo, ApiError> {
        self.record(|_| {});
        let height = 10 + self.height.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(NetworkInfo {
            chain_id: CHAIN_ID.to_string(),
            bank_id: 1,
            height,
            recommended_expiry_height: height + 100,
        })
    }

    async fn wallets(&self, _who: &Principal) -> Result<WalletList, ApiError> {
        self.record(|_| {});
        let mut ids = vec![WALLET];
        ids.extend(self.registered.lock().unwrap().iter().map(|(w, _)| *w));
        Ok(WalletList { wallets: ids.into_iter().map(|w| self.wallet(w)).collect() })
    }

    async fn open_wallet(
        &self,
        _who: &Principal,
        request: OpenWalletRequest,
    ) -> Result<Wallet, ApiError> {
        self.record(|c| c.opened.push(request.clone()));
        let mut registered = self.registered.lock().unwrap();
        let n = u8::try_from(registered.len()).unwrap();
        let id = WalletId([0x30 + n; 16]);
        if let Some(key) = request.public_key {
            registered.push((id, key));
        }
        drop(registered);
        Ok(self.wallet(id))
    }

    async fn balance(&self, _who: &Principal, wallet: WalletId) -> Result<Balance, ApiError> {
        self.record(|_| {});
        if !self.owns(wallet) {
            return Err(ApiError::not_found("wallet"));
        }
        let limits = Limits {
            holding_limit_minor: 300_000,
            holdings_minor: 10_000,
            holding_remaining_minor: 290_000,
            per_payment_limit_minor: 50_000,
            daily_outflow_limit_minor: 100_000,
            outflow_today_minor: 0,
            outflow_remaining_minor: 100_000,
        };
        Ok(Balance { wallet: self.wallet(wallet), limits: Some(limits), height: 10 })
    }

    async fn pay(
        &self,
        _who: &Principal,
        idempotency: Idempotency,
        payment: Payment,
    ) -> Result<Receipt, ApiError> {
        self.record(|c| c.payments.push((idempotency.clone(), payment.clone())));
        if !self.owns(payment.from) {
            return Err(ApiError::not_found("wallet"));
        }
        let tx = payment
            .payment_request
            .unwrap_or(TxId(idempotency.body_hash[..16].try_into().unwrap()));
        let mut receipt = receipt(tx, payment.from, payment.to, payment.amount_minor);
        match payment.amount_minor {
            PAY_PENDING => {
                receipt.status = PaymentStatus::Pending;
                receipt.height = None;
                receipt.timestamp_ms = None;
            }
            PAY_REJECTED => {
                receipt.status = PaymentStatus::Failed;
                receipt.rejection = Some("insufficient_funds".to_string());
            }
            PAY_FAILED => receipt.status = PaymentStatus::Failed,
            _ => {}
        }
        Ok(receipt)
    }

    async fn pay_signed(
        &self,
        _who: &Principal,
        idempotency: Idempotency,
        transaction: SignedTransaction,
    ) -> Result<Receipt, ApiError> {
        self.record(|c| c.signed.push((idempotency.clone(), transaction.clone())));
        let TxKind::Transfer { legs } = &transaction.body.kind else {
            return Err(ApiError::new(500, "internal", "the routes passed a non-transfer"));
        };
        let leg = legs.first().expect("the routes pass one leg");
        if !self.owns(leg.from) {
            return Err(ApiError::new(403, "not_your_wallet", "the payer is not your wallet"));
        }
        let mut signed = self.signed.lock().unwrap();
        if let Some((_, hash, receipt)) = signed.iter().find(|(k, ..)| *k == idempotency.key) {
            return if *hash == idempotency.body_hash {
                Ok(receipt.clone())
            } else {
                Err(ApiError::new(409, "idempotency_conflict", "the key came with another body"))
            };
        }
        let receipt = receipt(transaction.body.id, leg.from, leg.to, leg.amount.minor());
        signed.push((idempotency.key, idempotency.body_hash, receipt.clone()));
        Ok(receipt)
    }

    async fn payment(&self, _who: &Principal, tx: TxId) -> Result<Receipt, ApiError> {
        self.record(|_| {});
        if tx == KNOWN_TX {
            return Ok(receipt(tx, WALLET, WalletId([0x99; 16]), 5));
        }
        let signed = self.signed.lock().unwrap();
        let found = signed.iter().find(|(.., r)| r.tx_id == tx.to_hex());
        found.map(|(.., r)| r.clone()).ok_or_else(|| ApiError::not_found("payment"))
    }

    async fn history(
        &self,
        _who: &Principal,
        wallet: WalletId,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPage, ApiError> {
        self.record(|c| c.history.push((wallet, cursor, limit)));
        if !self.owns(wallet) {
            return Err(ApiError::not_found("wallet"));
        }
        // Ten entries numbered 10 (newest) down to 1; the cursor is the last number seen.
        let below = cursor.unwrap_or(11).min(11);
        let entries: Vec<_> = (1..below)
            .rev()
            .take(limit as usize)
            .map(|n| HistoryEntry {
                tx_id: TxId([n as u8; 16]).to_hex(),
                height: n,
                timestamp_ms: 1_700_000_000_000 + n,
                direction: if n % 2 == 0 { "credit" } else { "debit" }.to_string(),
                amount_minor: n * 100,
                counterparty_wallet: Some(WalletId([0x99; 16]).to_hex()),
                kind: "transfer".to_string(),
            })
            .collect();
        let next_cursor = match entries.last() {
            Some(last) if last.height > 1 => Some(last.height.to_string()),
            _ => None,
        };
        Ok(HistoryPage { entries, next_cursor })
    }

    async fn create_payment_request(
        &self,
        _who: &Principal,
        wallet: WalletId,
        amount_minor: u64,
        reference: String,
    ) -> Result<PaymentRequestView, ApiError> {
        self.record(|_| {});
        if !self.owns(wallet) {
            return Err(ApiError::not_found("wallet"));
        }
        Ok(payment_request_view(TxId([0x44; 16]), wallet, amount_minor, reference))
    }

    async fn payment_request(
        &self,
        _who: &Principal,
        id: TxId,
    ) -> Result<PaymentRequestView, ApiError> {
        self.record(|_| {});
        if id == TxId([0x44; 16]) {
            Ok(payment_request_view(id, WALLET, 1_250, "invoice-7".to_string()))
        } else {
            Err(ApiError::not_found("payment request"))
        }
    }
}

fn payment_request_view(
    id: TxId,
    wallet: WalletId,
    amount_minor: u64,
    reference: String,
) -> PaymentRequestView {
    PaymentRequestView {
        payment_request_id: id.to_hex(),
        payee_wallet: wallet.to_hex(),
        amount_minor,
        qr_payload: format!(
            "cbdc:pay?chain={CHAIN_ID}&to={}&amount={amount_minor}&request={}",
            wallet.to_hex(),
            id.to_hex()
        ),
        reference,
        status: "open".to_string(),
        paid_tx_id: None,
    }
}
