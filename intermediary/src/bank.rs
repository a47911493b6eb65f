//! The commercial bank behind both APIs: its keys, its view of the ledger, its database, and
//! the paths every operation shares (submitting a transaction and waiting for finality, paying
//! with idempotency, reading a wallet with its limits). It implements the retail routes'
//! [`WalletBackend`].

#![allow(
    clippy::result_large_err,
    reason = "ApiError is the answer itself; boxing it adds only noise"
)]

use crate::projector::{self, View, Watched};
use crate::sealing::{HolderKey, Sealer};
use cbdc_ledger::{
    Amount, BankId, Encode, KycTier, Leg, Rejection, SignedTransaction, SigningKey, TxBody, TxId,
    TxKind, WalletClass, WalletId, WalletStatus,
};
use cbdc_node::{Mailbox, MempoolError, SubmitError};
use cbdc_service::auth::{Role, Tokens, verify_password};
use cbdc_store::{
    BankWalletRecord, Custody as StoredCustody, CustomerStatus, PaymentInsert, PaymentRecord,
    PaymentRequestRecord, PaymentRequestState, PaymentState, Sealed, Store,
};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wallet_api::backend::{ApiError, Idempotency, Payment, Principal, WalletBackend};
use wallet_api::model;

/// How often a waiting request looks at the view again.
const POLL: Duration = Duration::from_millis(25);
/// How long an administrative transaction (opening, freezing, ...) may take to finalize.
const ADMIN_WAIT: Duration = Duration::from_secs(20);
/// Wallets one customer may hold at this bank.
pub const MAX_WALLETS_PER_CUSTOMER: u64 = 16;

/// Injected wall clock (ms since the Unix epoch) and randomness.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;
pub type Random = Arc<dyn Fn() -> [u8; 32] + Send + Sync>;

/// Everything the bank's APIs work with.
pub struct Bank {
    pub id: BankId,
    pub chain_id: String,
    pub node: Mailbox,
    pub store: Arc<Mutex<Store>>,
    pub view: View,
    pub watched: Arc<Watched>,
    pub sealer: Sealer,
    pub holders: HolderKey,
    pub admin: SigningKey,
    pub float: SigningKey,
    pub tokens: Tokens,
    pub now_ms: Clock,
    pub random: Random,
    pub payment_wait: Duration,
    pub expiry_blocks: u64,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A store failure: logged (the error, never the data) and answered 503.
pub fn store_error(error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, "database");
    ApiError::unavailable("the bank's database is unavailable")
}

fn node_unavailable() -> ApiError {
    ApiError::unavailable("the bank's node is unavailable")
}

fn conflict() -> ApiError {
    ApiError::new(
        409,
        "idempotency_conflict",
        "this Idempotency-Key was used with a different request",
    )
}

/// A ledger rejection as an answer: 422 with the ledger's code.
pub fn rejected(rejection: Rejection) -> ApiError {
    ApiError::new(422, rejection.code(), rejection.to_string())
}

impl Bank {
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        crate::lock(&self.store)
    }

    pub fn random16(&self) -> [u8; 16] {
        let bytes = (self.random)();
        let mut out = [0u8; 16];
        out.copy_from_slice(&bytes[..16]);
        out
    }

    pub fn nonce(&self) -> [u8; 12] {
        let bytes = (self.random)();
        let mut out = [0u8; 12];
        out.copy_from_slice(&bytes[..12]);
        out
    }

    /// The injected clock's reading `wait` from now, in ms.
    fn deadline(&self, wait: Duration) -> u64 {
        let wait = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        (self.now_ms)().saturating_add(wait)
    }

    /// The finalized height of the bank's view.
    pub fn height(&self) -> u64 {
        projector::read(&self.view).height()
    }

    /// The expiry height for a transaction the bank signs now: its window, within the policy's.
    pub fn expiry_height(&self) -> u64 {
        let ledger = projector::read(&self.view);
        let window = self.expiry_blocks.min(ledger.state().policy().max_expiry_blocks);
        ledger.height().saturating_add(window)
    }

    /// Signs an administrative transaction with the bank's admin key.
    pub fn admin_tx(&self, kind: TxKind) -> SignedTransaction {
        let body = TxBody { id: TxId(self.random16()), expiry_height: self.expiry_height(), kind };
        body.sign(&self.chain_id, &[&self.admin])
    }

    /// Checks `tx` against the finalized ledger, submits it, and waits until the view shows it
    /// committed. A rejection is answered 422 with the ledger's code.
    pub async fn submit_and_wait(&self, tx: SignedTransaction) -> Result<u64, ApiError> {
        let id = tx.body.id;
        match self.node.dry_run(tx.clone()).await {
            Ok(None) => {}
            Ok(Some(rejection)) => return Err(rejected(rejection)),
            Err(_) => return Err(node_unavailable()),
        }
        match self.node.submit(tx).await {
            Ok(()) | Err(SubmitError::Mempool(MempoolError::Duplicate)) => {}
            Err(SubmitError::Mempool(MempoolError::Full)) => {
                return Err(ApiError::unavailable("the node's mempool is full; retry later"));
            }
            Err(_) => return Err(node_unavailable()),
        }
        let deadline = self.deadline(ADMIN_WAIT);
        loop {
            {
                let view = projector::read(&self.view);
                if view.state().recent_tx(&id).is_some() {
                    return Ok(view.height());
                }
            }
            if (self.now_ms)() >= deadline {
                return Err(ApiError::new(
                    504,
                    "finality_timeout",
                    "submitted, but not final within the bound; check again later",
                ));
            }
            actix_web::rt::time::sleep(POLL).await;
        }
    }

    /// A wallet of this bank by id, with its owner check: `not_found` unless `customer` owns
    /// it (or `customer` is `None`: an operator of this bank).
    pub fn owned_wallet(
        &self,
        customer: Option<&str>,
        wallet: WalletId,
    ) -> Result<BankWalletRecord, ApiError> {
        let record = self.store().bank_wallet(&wallet.0).map_err(store_error)?;
        match record {
            Some(r) if customer.is_none_or(|c| c == r.customer_id) => Ok(r),
            _ => Err(ApiError::not_found("wallet")),
        }
    }

    /// A wallet as the APIs show it, from the bank's record and the ledger view.
    pub fn wallet_view(&self, record: &BankWalletRecord) -> model::Wallet {
        let ledger = projector::read(&self.view);
        let on_ledger = ledger.state().wallet(&WalletId(record.wallet_id));
        let class = match WalletClass::from_tag(record.class) {
            Some(WalletClass::Merchant) => model::WalletClass::Merchant,
            _ => model::WalletClass::Retail,
        };
        model::Wallet {
            wallet_id: hex::encode(record.wallet_id),
            bank_id: self.id.0,
            class,
            custody: match record.custody {
                StoredCustody::Custodial => model::Custody::Custodial,
                StoredCustody::SelfCustody => model::Custody::SelfCustody,
            },
            public_key: hex::encode(record.public_key),
            tier: on_ledger.map(|w| w.tier.0).unwrap_or_default(),
            status: match on_ledger.map(|w| w.status) {
                None => "opening".to_string(),
                Some(WalletStatus::Active) => "active".to_string(),
                Some(WalletStatus::Frozen) => "frozen".to_string(),
                Some(WalletStatus::Closed) => "closed".to_string(),
            },
            linked: on_ledger.is_some_and(|w| w.linked),
            balance_minor: on_ledger.map(|w| w.balance.minor()).unwrap_or_default(),
        }
    }

    /// Balance and remaining limits of a wallet.
    pub fn balance_of(&self, record: &BankWalletRecord) -> model::Balance {
        let wallet = self.wallet_view(record);
        let ledger = projector::read(&self.view);
        let state = ledger.state();
        let limits = state.wallet(&WalletId(record.wallet_id)).and_then(|w| {
            if w.class != WalletClass::Retail {
                return None;
            }
            let limits = state.policy().tier(w.tier)?;
            let holder = state.holder(&w.holder).copied().unwrap_or_default();
            let today = ledger.tip().timestamp_ms / 86_400_000;
            let outflow = if holder.outflow_day == today { holder.outflow.minor() } else { 0 };
            Some(model::Limits {
                holding_limit_minor: limits.holding_minor.minor(),
                holdings_minor: holder.holdings.minor(),
                holding_remaining_minor: limits
                    .holding_minor
                    .minor()
                    .saturating_sub(holder.holdings.minor()),
                per_payment_limit_minor: limits.per_payment_minor.minor(),
                daily_outflow_limit_minor: limits.daily_outflow_minor.minor(),
                outflow_today_minor: outflow,
                outflow_remaining_minor: limits.daily_outflow_minor.minor().saturating_sub(outflow),
            })
        });
        model::Balance { wallet, limits, height: ledger.height() }
    }

    /// Records a new wallet of `customer` (its custodial key sealed), then opens it on the
    /// ledger and waits for finality. The record comes first, so a custodial key is never lost
    /// for a wallet that exists on the ledger.
    pub async fn open_wallet_for(
        &self,
        customer_id: &str,
        custody: model::Custody,
        public_key: Option<&str>,
        class: model::WalletClass,
    ) -> Result<model::Wallet, ApiError> {
        let customer = self
            .store()
            .customer(customer_id)
            .map_err(store_error)?
            .filter(|c| c.status == CustomerStatus::Active)
            .ok_or_else(|| ApiError::not_found("customer"))?;
        let count = self.store().count_wallets_of_customer(customer_id).map_err(store_error)?;
        if count >= MAX_WALLETS_PER_CUSTOMER {
            return Err(ApiError::new(
                409,
                "too_many_wallets",
                format!("a customer may hold at most {MAX_WALLETS_PER_CUSTOMER} wallets here"),
            ));
        }
        let wallet_id = WalletId(self.random16());
        let (public, key) = match (custody, public_key) {
            (model::Custody::Custodial, None) => {
                let seed = (self.random)();
                let signing = SigningKey::from_seed(&seed)
                    .map_err(|_| ApiError::unavailable("key generation failed"))?;
                let nonce = self.nonce();
                let sealed = self.sealer.seal(&wallet_id.0, nonce, &seed);
                (signing.public_key(), Some(Sealed { nonce, ciphertext: sealed }))
            }
            (model::Custody::SelfCustody, Some(hex_key)) => {
                let key = cbdc_ledger::PublicKey::from_hex(hex_key).map_err(|_| {
                    ApiError::bad_request("invalid_public_key", "public_key is not 32 bytes of hex")
                })?;
                (key, None)
            }
            (model::Custody::Custodial, Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_public_key",
                    "a custodial wallet's key is generated by the bank; send no public_key",
                ));
            }
            (model::Custody::SelfCustody, None) => {
                return Err(ApiError::bad_request(
                    "invalid_public_key",
                    "a self-custody wallet needs the customer's public_key",
                ));
            }
        };
        let ledger_class = match class {
            model::WalletClass::Retail => WalletClass::Retail,
            model::WalletClass::Merchant => WalletClass::Merchant,
        };
        let record = BankWalletRecord {
            wallet_id: wallet_id.0,
            customer_id: customer_id.to_string(),
            custody: match custody {
                model::Custody::Custodial => StoredCustody::Custodial,
                model::Custody::SelfCustody => StoredCustody::SelfCustody,
            },
            class: ledger_class.tag(),
            public_key: public.0,
            key,
            account: None,
            created_ms: (self.now_ms)(),
        };
        self.store().create_bank_wallet(&record).map_err(store_error)?;
        let tx = self.admin_tx(TxKind::OpenWallet {
            bank: self.id,
            wallet: wallet_id,
            public_key: public,
            class: ledger_class,
            tier: KycTier(customer.tier),
            holder: cbdc_ledger::HolderRef(customer.holder_ref),
            linked: false,
        });
        self.submit_and_wait(tx).await?;
        Ok(self.wallet_view(&record))
    }

    /// The signing key of a custodial wallet.
    pub fn custodial_key(&self, record: &BankWalletRecord) -> Result<SigningKey, ApiError> {
        let Some(sealed) = &record.key else {
            return Err(ApiError::new(
                409,
                "self_custody_wallet",
                "the bank holds no key for a self-custody wallet: the customer signs",
            ));
        };
        let seed = self.sealer.open(&record.wallet_id, sealed.nonce, &sealed.ciphertext).map_err(
            |error| {
                tracing::error!(%error, "a custodial key does not open");
                ApiError::unavailable("the wallet's key is unavailable")
            },
        )?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| ApiError::unavailable("the wallet's key is unavailable"))?;
        SigningKey::from_seed(&seed)
            .map_err(|_| ApiError::unavailable("the wallet's key is unavailable"))
    }

    /// A one-leg transfer signed by `key`.
    pub fn transfer(
        &self,
        id: TxId,
        from: WalletId,
        to: WalletId,
        amount: u64,
        key: &SigningKey,
    ) -> Result<SignedTransaction, ApiError> {
        let amount = Amount::from_minor(amount)
            .map_err(|_| ApiError::bad_request("invalid_amount", "the amount is out of range"))?;
        let body = TxBody {
            id,
            expiry_height: self.expiry_height(),
            kind: TxKind::Transfer { legs: vec![Leg { from, to, amount }] },
        };
        Ok(body.sign(&self.chain_id, &[key]))
    }

    /// Pays with idempotency: records the payment under (`principal`, key) first; the same key
    /// again answers the recorded payment (409 if the body differs). A new payment is checked
    /// against the finalized ledger (refused at once with the ledger's code), submitted, and
    /// awaited up to the bank's bound.
    pub async fn pay_tx(
        &self,
        principal: &str,
        idempotency: Idempotency,
        tx: SignedTransaction,
    ) -> Result<model::Receipt, ApiError> {
        let leg = single_leg(&tx)?;
        let id = tx.body.id;
        let record = PaymentRecord {
            tx_id: id.0,
            principal: principal.to_string(),
            idempotency_key: idempotency.key.clone(),
            body_hash: idempotency.body_hash,
            from_wallet: leg.from.0,
            to_wallet: leg.to.0,
            amount_minor: leg.amount.minor(),
            expiry_height: tx.body.expiry_height,
            transaction: tx.encode(),
            state: PaymentState::Pending,
            height: None,
            timestamp_ms: None,
            rejection: None,
            created_ms: (self.now_ms)(),
        };
        let inserted = self.store().insert_payment(&record);
        match inserted {
            Ok(PaymentInsert::Inserted) => {}
            Ok(PaymentInsert::Existing(existing)) => {
                if existing.body_hash != idempotency.body_hash {
                    return Err(conflict());
                }
                return self.await_receipt(TxId(existing.tx_id)).await;
            }
            Err(cbdc_store::StoreError::Duplicate { .. }) => {
                return Err(ApiError::new(
                    409,
                    "duplicate_transaction",
                    "a payment with this transaction id already exists",
                ));
            }
            Err(error) => return Err(store_error(error)),
        }
        self.watched.watch_payment(id);
        let failure = match self.node.dry_run(tx.clone()).await {
            // Committed through another route already: the projector settles it.
            Ok(Some(Rejection::AlreadyCommitted)) => None,
            Ok(Some(rejection)) => Some(rejection.code()),
            Ok(None) => match self.node.submit(tx).await {
                Ok(()) | Err(SubmitError::Mempool(MempoolError::Duplicate)) => None,
                Err(SubmitError::Mempool(MempoolError::Full)) => Some("mempool_full"),
                Err(SubmitError::Mempool(MempoolError::TooLarge(_))) => Some("too_large"),
                Err(SubmitError::BadSignature) => Some("bad_signature"),
                Err(SubmitError::Closed) => Some("node_unavailable"),
            },
            Err(_) => Some("node_unavailable"),
        };
        if let Some(code) = failure {
            // Never submitted: it cannot commit, so the failure is final.
            self.store()
                .settle_payment(&id.0, PaymentState::Failed, None, None, Some(code))
                .map_err(store_error)?;
            crate::lock(&self.watched.payments).remove(&id);
        }
        self.await_receipt(id).await
    }

    /// The answer to a repeated `Idempotency-Key` of `principal`: the recorded payment's
    /// receipt, or 409 if the key came with another body; `None` for a new key.
    pub async fn replayed(
        &self,
        principal: &str,
        idempotency: &Idempotency,
    ) -> Result<Option<model::Receipt>, ApiError> {
        let existing =
            self.store().payment_by_key(principal, &idempotency.key).map_err(store_error)?;
        let Some(existing) = existing else { return Ok(None) };
        if existing.body_hash != idempotency.body_hash {
            return Err(conflict());
        }
        self.await_receipt(TxId(existing.tx_id)).await.map(Some)
    }

    /// The payment's receipt once it is settled, or pending after the bank's bound.
    async fn await_receipt(&self, id: TxId) -> Result<model::Receipt, ApiError> {
        let deadline = self.deadline(self.payment_wait);
        loop {
            let record = self.store().payment(&id.0).map_err(store_error)?;
            let record = record.ok_or_else(|| ApiError::not_found("payment"))?;
            if record.state != PaymentState::Pending || (self.now_ms)() >= deadline {
                return Ok(receipt(&record));
            }
            actix_web::rt::time::sleep(POLL).await;
        }
    }

    /// The customer a principal stands for (customers only).
    fn customer_of<'a>(&self, who: &'a Principal) -> Result<&'a str, ApiError> {
        match (&who.role, &who.customer_id) {
            (Role::Customer, Some(id)) => Ok(id),
            _ => Err(ApiError::forbidden()),
        }
    }
}

/// The one leg of a payment (a transfer with exactly one leg), or 400.
fn single_leg(tx: &SignedTransaction) -> Result<&Leg, ApiError> {
    match &tx.body.kind {
        TxKind::Transfer { legs } if legs.len() == 1 => Ok(&legs[0]),
        _ => Err(ApiError::bad_request(
            "unsupported_transaction",
            "a payment is a transfer with exactly one leg",
        )),
    }
}

/// A receipt from the bank's payment record.
pub fn receipt(record: &PaymentRecord) -> model::Receipt {
    let tx_id = hex::encode(record.tx_id);
    model::Receipt {
        status_url: format!("/v1/payments/{tx_id}"),
        tx_id,
        status: match record.state {
            PaymentState::Pending => model::PaymentStatus::Pending,
            PaymentState::Committed => model::PaymentStatus::Committed,
            PaymentState::Failed => model::PaymentStatus::Failed,
        },
        from_wallet: hex::encode(record.from_wallet),
        to_wallet: hex::encode(record.to_wallet),
        amount_minor: record.amount_minor,
        height: record.height,
        timestamp_ms: record.timestamp_ms,
        rejection: record.rejection.clone(),
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn percent(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Bank {
    fn request_view(&self, record: &PaymentRequestRecord) -> model::PaymentRequestView {
        let id = hex::encode(record.request_id);
        let wallet = hex::encode(record.wallet_id);
        model::PaymentRequestView {
            qr_payload: format!(
                "cbdc:pay?chain={}&to={wallet}&amount={}&request={id}&ref={}",
                percent(&self.chain_id),
                record.amount_minor,
                percent(&record.reference)
            ),
            payment_request_id: id,
            payee_wallet: wallet,
            amount_minor: record.amount_minor,
            reference: record.reference.clone(),
            status: match record.state {
                PaymentRequestState::Open => "open".to_string(),
                PaymentRequestState::Paid => "paid".to_string(),
            },
            paid_tx_id: record.paid_tx_id.map(hex::encode),
        }
    }
}

impl WalletBackend for Bank {
    async fn login(&self, request: model::LoginRequest) -> Result<model::TokenResponse, ApiError> {
        if request.username.is_empty()
            || request.username.len() > 64
            || request.password.is_empty()
            || request.password.len() > 1_024
        {
            return Err(ApiError::new(
                422,
                "invalid_request",
                "username of 1 to 64 bytes and password of 1 to 1024 bytes required",
            ));
        }
        let user = self.store().user(&request.username).map_err(store_error)?;
        let role = user.as_ref().and_then(|u| Role::from_str(&u.role).ok());
        let ok = user
            .as_ref()
            .is_some_and(|u| !u.disabled && verify_password(&request.password, &u.password_hash));
        let role = match (ok, role) {
            (true, Some(role @ (Role::Customer | Role::BankOperator))) => role,
            _ => {
                tracing::info!(outcome = "invalid_credentials", "login");
                return Err(ApiError::new(
                    401,
                    "invalid_credentials",
                    "wrong username or password",
                ));
            }
        };
        let token = self
            .tokens
            .issue(&request.username, role, (self.now_ms)() / 1_000)
            .map_err(|_| ApiError::unavailable("cannot issue a token"))?;
        Ok(model::TokenResponse {
            access_token: token,
            token_type: "Bearer".to_string(),
            expires_in: self.tokens.lifetime_s(),
            role: role.as_str().to_string(),
        })
    }

    fn authenticate(&self, bearer: &str) -> Result<Principal, ApiError> {
        let claims = self
            .tokens
            .validate(bearer, (self.now_ms)() / 1_000)
            .map_err(|_| ApiError::unauthorized())?;
        match claims.role {
            Role::Customer => {
                let customer =
                    self.store().customer_by_username(&claims.sub).map_err(store_error)?;
                match customer {
                    Some(c) if c.status == CustomerStatus::Active => Ok(Principal {
                        username: claims.sub,
                        role: Role::Customer,
                        customer_id: Some(c.customer_id),
                    }),
                    _ => Err(ApiError::unauthorized()),
                }
            }
            Role::BankOperator => {
                Ok(Principal { username: claims.sub, role: Role::BankOperator, customer_id: None })
            }
            _ => Err(ApiError::unauthorized()),
        }
    }

    async fn network(&self) -> Result<model::NetworkInfo, ApiError> {
        Ok(model::NetworkInfo {
            chain_id: self.chain_id.clone(),
            bank_id: self.id.0,
            height: self.height(),
            recommended_expiry_height: self.expiry_height(),
        })
    }

    async fn wallets(&self, who: &Principal) -> Result<model::WalletList, ApiError> {
        let customer = self.customer_of(who)?;
        let records = self.store().wallets_of_customer(customer).map_err(store_error)?;
        Ok(model::WalletList { wallets: records.iter().map(|r| self.wallet_view(r)).collect() })
    }

    async fn open_wallet(
        &self,
        who: &Principal,
        request: model::OpenWalletRequest,
    ) -> Result<model::Wallet, ApiError> {
        let customer = self.customer_of(who)?;
        self.open_wallet_for(
            customer,
            request.custody,
            request.public_key.as_deref(),
            request.class.unwrap_or(model::WalletClass::Retail),
        )
        .await
    }

    async fn balance(&self, who: &Principal, wallet: WalletId) -> Result<model::Balance, ApiError> {
        let customer = self.customer_of(who)?;
        let record = self.owned_wallet(Some(customer), wallet)?;
        Ok(self.balance_of(&record))
    }

    async fn pay(
        &self,
        who: &Principal,
        idempotency: Idempotency,
        payment: Payment,
    ) -> Result<model::Receipt, ApiError> {
        let customer = self.customer_of(who)?;
        if let Some(receipt) = self.replayed(customer, &idempotency).await? {
            return Ok(receipt);
        }
        let record = self.owned_wallet(Some(customer), payment.from)?;
        let key = self.custodial_key(&record)?;
        let id = payment.payment_request.unwrap_or_else(|| TxId(self.random16()));
        let tx = self.transfer(id, payment.from, payment.to, payment.amount_minor, &key)?;
        self.pay_tx(customer, idempotency, tx).await
    }

    async fn pay_signed(
        &self,
        who: &Principal,
        idempotency: Idempotency,
        transaction: SignedTransaction,
    ) -> Result<model::Receipt, ApiError> {
        let customer = self.customer_of(who)?;
        let record = self.owned_wallet(Some(customer), single_leg(&transaction)?.from)?;
        if record.custody != StoredCustody::SelfCustody {
            return Err(ApiError::new(
                409,
                "custodial_wallet",
                "the bank signs for a custodial wallet: use /v1/wallets/{wallet_id}/payments",
            ));
        }
        self.pay_tx(customer, idempotency, transaction).await
    }

    async fn payment(&self, who: &Principal, tx: TxId) -> Result<model::Receipt, ApiError> {
        let customer = self.customer_of(who)?;
        let record = self.store().payment(&tx.0).map_err(store_error)?;
        if let Some(record) = record
            && record.principal == customer
        {
            return Ok(receipt(&record));
        }
        // A payment into one of the customer's wallets, from anywhere.
        let entries = self.store().history_of_tx(&tx.0).map_err(store_error)?;
        for entry in entries {
            let mine = self.owned_wallet(Some(customer), WalletId(entry.row.wallet_id)).is_ok();
            if mine && entry.row.direction == cbdc_store::Direction::Credit {
                let tx_id = hex::encode(tx.0);
                return Ok(model::Receipt {
                    status_url: format!("/v1/payments/{tx_id}"),
                    tx_id,
                    status: model::PaymentStatus::Committed,
                    from_wallet: entry
                        .row
                        .counterparty_wallet_id
                        .map(hex::encode)
                        .unwrap_or_default(),
                    to_wallet: hex::encode(entry.row.wallet_id),
                    amount_minor: entry.row.amount_minor,
                    height: Some(entry.height),
                    timestamp_ms: Some(entry.row.timestamp_ms),
                    rejection: None,
                });
            }
        }
        Err(ApiError::not_found("payment"))
    }

    async fn history(
        &self,
        who: &Principal,
        wallet: WalletId,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<model::HistoryPage, ApiError> {
        let customer = self.customer_of(who)?;
        self.owned_wallet(Some(customer), wallet)?;
        history_page(self, wallet, cursor, limit)
    }

    async fn create_payment_request(
        &self,
        who: &Principal,
        wallet: WalletId,
        amount_minor: u64,
        reference: String,
    ) -> Result<model::PaymentRequestView, ApiError> {
        let customer = self.customer_of(who)?;
        self.owned_wallet(Some(customer), wallet)?;
        Amount::from_minor(amount_minor)
            .map_err(|_| ApiError::bad_request("invalid_amount", "the amount is out of range"))?;
        let record = PaymentRequestRecord {
            request_id: self.random16(),
            wallet_id: wallet.0,
            amount_minor,
            reference,
            state: PaymentRequestState::Open,
            paid_tx_id: None,
            created_ms: (self.now_ms)(),
        };
        self.store().create_payment_request(&record).map_err(store_error)?;
        self.watched.watch_request(TxId(record.request_id));
        Ok(self.request_view(&record))
    }

    async fn payment_request(
        &self,
        who: &Principal,
        id: TxId,
    ) -> Result<model::PaymentRequestView, ApiError> {
        let customer = self.customer_of(who)?;
        let record = self.store().payment_request(&id.0).map_err(store_error)?;
        let record = record.ok_or_else(|| ApiError::not_found("payment request"))?;
        self.owned_wallet(Some(customer), WalletId(record.wallet_id))
            .map_err(|_| ApiError::not_found("payment request"))?;
        Ok(self.request_view(&record))
    }
}

/// One page of a wallet's projected history, newest first.
pub fn history_page(
    bank: &Bank,
    wallet: WalletId,
    cursor: Option<u64>,
    limit: u32,
) -> Result<model::HistoryPage, ApiError> {
    let entries = bank.store().wallet_history(&wallet.0, cursor, limit).map_err(store_error)?;
    let full = entries.len() == limit as usize;
    let next_cursor = if full { entries.last().map(|e| e.id.to_string()) } else { None };
    let entries = entries
        .into_iter()
        .map(|e| model::HistoryEntry {
            tx_id: hex::encode(e.row.tx_id),
            height: e.height,
            timestamp_ms: e.row.timestamp_ms,
            direction: match e.row.direction {
                cbdc_store::Direction::Credit => "credit".to_string(),
                cbdc_store::Direction::Debit => "debit".to_string(),
            },
            amount_minor: e.row.amount_minor,
            counterparty_wallet: e.row.counterparty_wallet_id.map(hex::encode),
            kind: projector::kind_name(e.row.kind).to_string(),
        })
        .collect();
    Ok(model::HistoryPage { entries, next_cursor })
}
