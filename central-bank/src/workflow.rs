//! Maker-checker requests: issuance (mint, burn), policy changes, admission and suspension of
//! banks, each a ledger transaction that k distinct officers sign.
//!
//! Life of a request:
//! 1. A maker (an officer; an administrator for admission and suspension) creates it. The service
//!    builds the ledger transaction body (a fresh id, an expiry height, the kind) and stores its
//!    canonical encoding: that body, and nothing else, is what officers sign.
//! 2. Officers approve: each fetches the body, checks it, signs the signing payload with their own
//!    key on their side (the `officer` command), and posts the signature. The service checks that
//!    the key is an officer's in the current policy, that it belongs to the authenticated user,
//!    and that the signature verifies. An officer's second approval does not count again.
//! 3. With `threshold` distinct approvals the request is `approved`; the service dry-runs the
//!    transaction against the finalized ledger: a rejection ends the request as `rejected` with
//!    the ledger's code, otherwise it is submitted (`submitted`).
//! 4. A follower marks it `committed` once the ledger has it, or `expired` past its expiry height
//!    (or `rejected` if the ledger refused it meanwhile).
//!
//! The service never holds an officer's private key.

use crate::auth::Role;
use cbdc_ledger::codec::{Decode as _, Encode as _};
use cbdc_ledger::{
    Amount, BankId, PolicyUpdate, PublicKey, Rejection, Signature, SignedTransaction, TxBody, TxId,
    TxKind, TxSignature, WalletId,
};
use cbdc_node::{LedgerSummary, Mailbox, MempoolError, SubmitError};
use cbdc_store::{ApprovalRecord, RequestRecord, RequestState, Store};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Longest reason a maker may give.
pub const MAX_REASON_BYTES: usize = 1_024;

/// What a maker asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewRequest {
    /// Issue new money into a bank's float.
    Mint {
        bank: u32,
        amount_minor: u64,
        reason: String,
    },
    /// Destroy money a bank returned to the central bank's issuance wallet (a redemption).
    Burn {
        bank: u32,
        amount_minor: u64,
        reason: String,
    },
    SetSupplyCap {
        cap_minor: u64,
        reason: String,
    },
    SetBankQuota {
        bank: u32,
        quota_minor: u64,
        reason: String,
    },
    SetOfficers {
        officers: Vec<String>,
        threshold: u16,
        reason: String,
    },
    /// Set one KYC tier's limits (a tier equal to the tier count appends one).
    SetTier {
        tier: u8,
        holding_minor: u64,
        per_payment_minor: u64,
        daily_outflow_minor: u64,
        reason: String,
    },
    /// Admit a commercial bank (keys hex; endpoint `host:port` of its validator).
    AdmitBank {
        bank: u32,
        name: String,
        admin_key: String,
        validator_key: String,
        endpoint: String,
        float_wallet: String,
        float_key: String,
        quota_minor: u64,
        reason: String,
    },
    SuspendBank {
        bank: u32,
        reason: String,
    },
}

impl NewRequest {
    fn reason(&self) -> &str {
        match self {
            NewRequest::Mint { reason, .. }
            | NewRequest::Burn { reason, .. }
            | NewRequest::SetSupplyCap { reason, .. }
            | NewRequest::SetBankQuota { reason, .. }
            | NewRequest::SetOfficers { reason, .. }
            | NewRequest::SetTier { reason, .. }
            | NewRequest::AdmitBank { reason, .. }
            | NewRequest::SuspendBank { reason, .. } => reason,
        }
    }

    /// The stored kind name.
    pub fn kind_name(&self) -> &'static str {
        match self {
            NewRequest::Mint { .. } => "mint",
            NewRequest::Burn { .. } => "burn",
            NewRequest::SetSupplyCap { .. } => "set_supply_cap",
            NewRequest::SetBankQuota { .. } => "set_bank_quota",
            NewRequest::SetOfficers { .. } => "set_officers",
            NewRequest::SetTier { .. } => "set_tier",
            NewRequest::AdmitBank { .. } => "admit_bank",
            NewRequest::SuspendBank { .. } => "suspend_bank",
        }
    }

    /// Who may make it: administrators admit and suspend banks, officers do the rest.
    pub fn maker_role(&self) -> Role {
        match self {
            NewRequest::AdmitBank { .. } | NewRequest::SuspendBank { .. } => Role::CbAdmin,
            _ => Role::CbOfficer,
        }
    }

    /// The ledger transaction kind.
    fn to_kind(&self) -> Result<TxKind, WorkflowError> {
        let amount = |minor: u64| {
            Amount::from_minor(minor).map_err(|_| WorkflowError::Invalid("amount out of range"))
        };
        Ok(match self {
            NewRequest::Mint { bank, amount_minor, .. } => {
                if *amount_minor == 0 {
                    return Err(WorkflowError::Invalid("amount must be positive"));
                }
                TxKind::Mint { bank: BankId(*bank), amount: amount(*amount_minor)? }
            }
            NewRequest::Burn { bank, amount_minor, .. } => {
                if *amount_minor == 0 {
                    return Err(WorkflowError::Invalid("amount must be positive"));
                }
                TxKind::Burn { bank: BankId(*bank), amount: amount(*amount_minor)? }
            }
            NewRequest::SetSupplyCap { cap_minor, .. } => {
                TxKind::SetPolicy(PolicyUpdate::SupplyCap { cap: amount(*cap_minor)? })
            }
            NewRequest::SetBankQuota { bank, quota_minor, .. } => {
                TxKind::SetPolicy(PolicyUpdate::BankQuota {
                    bank: BankId(*bank),
                    quota: amount(*quota_minor)?,
                })
            }
            NewRequest::SetOfficers { officers, threshold, .. } => {
                let officers = officers.iter().map(|k| key(k)).collect::<Result<Vec<_>, _>>()?;
                TxKind::SetPolicy(PolicyUpdate::Officers { officers, threshold: *threshold })
            }
            NewRequest::SetTier {
                tier,
                holding_minor,
                per_payment_minor,
                daily_outflow_minor,
                ..
            } => TxKind::SetPolicy(PolicyUpdate::Tier {
                tier: cbdc_ledger::KycTier(*tier),
                limits: cbdc_ledger::TierLimits {
                    holding_minor: amount(*holding_minor)?,
                    per_payment_minor: amount(*per_payment_minor)?,
                    daily_outflow_minor: amount(*daily_outflow_minor)?,
                },
            }),
            NewRequest::AdmitBank {
                bank,
                name,
                admin_key,
                validator_key,
                endpoint,
                float_wallet,
                float_key,
                quota_minor,
                ..
            } => {
                let float_wallet = WalletId::from_hex(float_wallet)
                    .map_err(|_| WorkflowError::Invalid("float_wallet is not 16 bytes of hex"))?;
                TxKind::AdmitBank {
                    bank: BankId(*bank),
                    name: name.clone(),
                    admin_key: key(admin_key)?,
                    validator_key: key(validator_key)?,
                    endpoint: endpoint.clone(),
                    float_wallet,
                    float_key: key(float_key)?,
                    quota: amount(*quota_minor)?,
                }
            }
            NewRequest::SuspendBank { bank, .. } => TxKind::SuspendBank { bank: BankId(*bank) },
        })
    }
}

fn key(hex_key: &str) -> Result<PublicKey, WorkflowError> {
    PublicKey::from_hex(hex_key).map_err(|_| WorkflowError::Invalid("a key is not 32 bytes of hex"))
}

/// Why a workflow call failed; each maps to an HTTP status and a stable problem code.
#[derive(Debug, Error)]
pub enum WorkflowError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("no such request")]
    NotFound,
    #[error("this role may not do that")]
    Forbidden,
    #[error("the key is not one of the current officers'")]
    NotAnOfficer,
    #[error("the key is not registered to this user")]
    NotYourKey,
    #[error("the signature does not verify over the request's transaction")]
    BadSignature,
    #[error("the request is {0} and takes no more approvals")]
    Closed(&'static str),
    #[error("the node is unavailable")]
    Node,
    #[error("the node refused the transaction: {0}")]
    Refused(String),
    #[error("storage: {0}")]
    Store(#[from] cbdc_store::StoreError),
}

impl WorkflowError {
    /// The stable problem code.
    pub fn code(&self) -> &'static str {
        match self {
            WorkflowError::Invalid(_) => "invalid_request",
            WorkflowError::NotFound => "not_found",
            WorkflowError::Forbidden => "forbidden",
            WorkflowError::NotAnOfficer => "not_an_officer",
            WorkflowError::NotYourKey => "not_your_key",
            WorkflowError::BadSignature => "bad_signature",
            WorkflowError::Closed(_) => "request_closed",
            WorkflowError::Node => "node_unavailable",
            WorkflowError::Refused(_) => "refused_by_node",
            WorkflowError::Store(_) => "storage_error",
        }
    }
}

/// A request as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub reason: String,
    pub created_by: String,
    pub created_at_ms: u64,
    pub expiry_height: u64,
    /// The canonical transaction body (hex): what officers check.
    pub body: String,
    /// The exact bytes an officer signs (hex): domain tag, chain id, body.
    pub signing_payload: String,
    pub threshold: u16,
    pub approvals: Vec<ApprovalView>,
    /// The ledger's rejection code, when rejected.
    pub rejection: Option<String>,
    pub committed_height: Option<u64>,
    pub summary: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub officer_key: String,
    pub approved_by: String,
    pub at_ms: u64,
}

/// Who is calling (from a validated token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub role: Role,
}

/// The workflow: the store, the node, the clock.
#[derive(Clone)]
pub struct Workflow {
    store: Arc<Mutex<Store>>,
    node: Mailbox,
    chain_id: String,
    now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    random: Arc<dyn Fn() -> [u8; 16] + Send + Sync>,
    /// Held from a request's move to `approved` until its submission is recorded, and by the
    /// follower while it submits approved requests: the two never submit the same request at
    /// once (the follower only sees an `approved` request whose approver has finished).
    submitting: Arc<futures::lock::Mutex<()>>,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow").field("chain_id", &self.chain_id).finish_non_exhaustive()
    }
}

impl Workflow {
    pub fn new(
        store: Arc<Mutex<Store>>,
        node: Mailbox,
        chain_id: String,
        now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
        random: Arc<dyn Fn() -> [u8; 16] + Send + Sync>,
    ) -> Workflow {
        let submitting = Arc::new(futures::lock::Mutex::new(()));
        Workflow { store, node, chain_id, now_ms, random, submitting }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        crate::lock(&self.store)
    }

    /// Moves request `id` from `from` to `to` if it is still in `from` (compare-and-set);
    /// whether it moved.
    fn transition(
        &self,
        id: &[u8; 16],
        from: RequestState,
        to: RequestState,
        rejection: Option<Rejection>,
        committed_height: Option<u64>,
    ) -> Result<bool, WorkflowError> {
        let now = (self.now_ms)();
        let code = rejection.map(|r| r.code());
        Ok(self.store().update_request_state(id, from, to, code, committed_height, now)?)
    }

    async fn summary(&self) -> Result<LedgerSummary, WorkflowError> {
        self.node.summary().await.map_err(|_| WorkflowError::Node)
    }

    /// A maker creates a request.
    pub async fn create(
        &self,
        who: &Principal,
        new: NewRequest,
    ) -> Result<RequestView, WorkflowError> {
        if who.role != new.maker_role() {
            return Err(WorkflowError::Forbidden);
        }
        let reason = new.reason().trim();
        if reason.is_empty() || reason.len() > MAX_REASON_BYTES {
            return Err(WorkflowError::Invalid("a reason of 1 to 1024 bytes is required"));
        }
        let kind = new.to_kind()?;
        let summary = self.summary().await?;
        let id = TxId((self.random)());
        let expiry_height = summary.height.saturating_add(summary.policy.max_expiry_blocks);
        let body = TxBody { id, expiry_height, kind };
        let now = (self.now_ms)();
        let record = RequestRecord {
            id: id.0,
            kind: new.kind_name().to_string(),
            summary: serde_json::to_string(&new).unwrap_or_default(),
            reason: reason.to_string(),
            created_by: who.username.clone(),
            created_at_ms: now,
            body: body.encode(),
            expiry_height,
            state: RequestState::Pending,
            rejection: None,
            committed_height: None,
            updated_at_ms: now,
        };
        self.store().create_request(&record)?;
        self.view(&id.0, summary.policy.threshold)
    }

    /// An officer approves with a signature made on their side.
    pub async fn approve(
        &self,
        who: &Principal,
        id: &[u8; 16],
        officer_key: &str,
        signature: &str,
    ) -> Result<RequestView, WorkflowError> {
        if who.role != Role::CbOfficer {
            return Err(WorkflowError::Forbidden);
        }
        let officer = key(officer_key)?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(signature, &mut sig)
            .map_err(|_| WorkflowError::Invalid("signature is not 64 bytes of hex"))?;
        let registered = self.store().user(&who.username)?.and_then(|u| u.officer_key);
        if registered != Some(officer.0) {
            return Err(WorkflowError::NotYourKey);
        }
        let summary = self.summary().await?;
        if !summary.policy.officers.contains(&officer) {
            return Err(WorkflowError::NotAnOfficer);
        }
        let record = self.store().request(id)?.ok_or(WorkflowError::NotFound)?;
        if record.state != RequestState::Pending {
            return Err(WorkflowError::Closed(record.state.as_str()));
        }
        let body =
            TxBody::decode(&record.body).map_err(|_| WorkflowError::Invalid("stored body"))?;
        let payload = body.signing_payload(&self.chain_id);
        if !cbdc_ledger::crypto::verify_one(&officer, &payload, &Signature(sig)) {
            return Err(WorkflowError::BadSignature);
        }
        let approval = ApprovalRecord {
            request_id: *id,
            officer_key: officer.0,
            signature: sig,
            approved_by: who.username.clone(),
            at_ms: (self.now_ms)(),
        };
        self.store().add_approval(&approval)?;
        self.advance(id, &summary).await?;
        self.view(id, summary.policy.threshold)
    }

    /// Moves a pending request with enough approvals on: dry-run, then submit or reject.
    async fn advance(&self, id: &[u8; 16], summary: &LedgerSummary) -> Result<(), WorkflowError> {
        let _submitting = self.submitting.lock().await;
        let Some(tx) = self.assemble(id, summary)? else { return Ok(()) };
        if !self.transition(id, RequestState::Pending, RequestState::Approved, None, None)? {
            return Ok(());
        }
        self.submit(id, tx).await
    }

    /// The signed transaction, if distinct current officers' approvals reach the threshold.
    fn assemble(
        &self,
        id: &[u8; 16],
        summary: &LedgerSummary,
    ) -> Result<Option<SignedTransaction>, WorkflowError> {
        let record = self.store().request(id)?.ok_or(WorkflowError::NotFound)?;
        let body =
            TxBody::decode(&record.body).map_err(|_| WorkflowError::Invalid("stored body"))?;
        let signatures: Vec<TxSignature> = self
            .store()
            .approvals(id)?
            .into_iter()
            .filter(|a| summary.policy.officers.contains(&PublicKey(a.officer_key)))
            .map(|a| TxSignature {
                signer: PublicKey(a.officer_key),
                signature: Signature(a.signature),
            })
            .take(usize::from(summary.policy.threshold))
            .collect();
        if signatures.len() < usize::from(summary.policy.threshold) {
            return Ok(None);
        }
        Ok(Some(SignedTransaction { body, signatures }))
    }

    async fn submit(&self, id: &[u8; 16], tx: SignedTransaction) -> Result<(), WorkflowError> {
        match self.node.dry_run(tx.clone()).await.map_err(|_| WorkflowError::Node)? {
            Some(Rejection::AlreadyCommitted) => {
                self.transition(id, RequestState::Approved, RequestState::Committed, None, None)?;
            }
            Some(rejection) => {
                self.transition(
                    id,
                    RequestState::Approved,
                    RequestState::Rejected,
                    Some(rejection),
                    None,
                )?;
            }
            None => match self.node.submit(tx).await {
                // Already pending (submitted before, say by an approver whose answer was lost):
                // it is submitted either way.
                Ok(()) | Err(SubmitError::Mempool(MempoolError::Duplicate)) => {
                    self.transition(
                        id,
                        RequestState::Approved,
                        RequestState::Submitted,
                        None,
                        None,
                    )?;
                }
                // No room now: the request stays approved and the follower submits it later.
                Err(SubmitError::Mempool(MempoolError::Full)) => {
                    tracing::warn!(request = %hex::encode(id), "mempool full; submission deferred");
                }
                Err(SubmitError::Closed) => return Err(WorkflowError::Node),
                Err(e @ (SubmitError::BadSignature | SubmitError::Mempool(_))) => {
                    return Err(WorkflowError::Refused(e.to_string()));
                }
            },
        }
        Ok(())
    }

    /// One pass of the follower: submitted requests become committed, rejected or expired;
    /// approved ones (a crash between approval and submission) are submitted.
    pub async fn follow(&self) -> Result<(), WorkflowError> {
        let summary = self.summary().await?;
        {
            let _submitting = self.submitting.lock().await;
            let approved = self.store().requests_in_state(RequestState::Approved, 64)?;
            for r in approved {
                let Some(tx) = self.assemble(&r.id, &summary)? else { continue };
                match self.submit(&r.id, tx).await {
                    // One request the node will not take does not hold up the others.
                    Err(WorkflowError::Refused(reason)) => {
                        let request = hex::encode(r.id);
                        tracing::error!(%request, %reason, "the node refuses an approved request");
                    }
                    other => other?,
                }
            }
        }
        let submitted = self.store().requests_in_state(RequestState::Submitted, 256)?;
        if submitted.is_empty() {
            return Ok(());
        }
        let ids: Vec<TxId> = submitted.iter().map(|r| TxId(r.id)).collect();
        let committed = self.node.committed(ids).await.map_err(|_| WorkflowError::Node)?;
        for (r, done) in submitted.iter().zip(committed) {
            if done {
                self.transition(
                    &r.id,
                    RequestState::Submitted,
                    RequestState::Committed,
                    None,
                    Some(summary.height),
                )?;
            } else if summary.height > r.expiry_height {
                self.transition(&r.id, RequestState::Submitted, RequestState::Expired, None, None)?;
            } else if let Some(tx) = self.assemble(&r.id, &summary)?
                && let Some(rejection) =
                    self.node.dry_run(tx).await.map_err(|_| WorkflowError::Node)?
                && rejection != Rejection::AlreadyCommitted
            {
                // The ledger would now refuse it (say, another mint used the quota first).
                self.transition(
                    &r.id,
                    RequestState::Submitted,
                    RequestState::Rejected,
                    Some(rejection),
                    None,
                )?;
            }
        }
        let pending = self.store().requests_in_state(RequestState::Pending, 256)?;
        for r in pending.iter().filter(|r| summary.height > r.expiry_height) {
            self.transition(&r.id, RequestState::Pending, RequestState::Expired, None, None)?;
        }
        Ok(())
    }

    /// One request, with its approvals.
    pub fn view(&self, id: &[u8; 16], threshold: u16) -> Result<RequestView, WorkflowError> {
        let record = self.store().request(id)?.ok_or(WorkflowError::NotFound)?;
        let approvals = self.store().approvals(id)?;
        Ok(self.render(record, approvals, threshold))
    }

    /// Newest first, optionally in one state, before a creation time (paging).
    pub fn list(
        &self,
        state: Option<RequestState>,
        before_ms: Option<u64>,
        limit: u32,
        threshold: u16,
    ) -> Result<Vec<RequestView>, WorkflowError> {
        let records = self.store().requests(state, before_ms, limit.min(200))?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let approvals = self.store().approvals(&r.id)?;
            out.push(self.render(r, approvals, threshold));
        }
        Ok(out)
    }

    pub async fn threshold(&self) -> Result<u16, WorkflowError> {
        Ok(self.summary().await?.policy.threshold)
    }

    fn render(
        &self,
        r: RequestRecord,
        approvals: Vec<ApprovalRecord>,
        threshold: u16,
    ) -> RequestView {
        let payload = TxBody::decode(&r.body)
            .map(|b| hex::encode(b.signing_payload(&self.chain_id)))
            .unwrap_or_default();
        RequestView {
            id: hex::encode(r.id),
            kind: r.kind,
            state: r.state.as_str().to_string(),
            reason: r.reason,
            created_by: r.created_by,
            created_at_ms: r.created_at_ms,
            expiry_height: r.expiry_height,
            body: hex::encode(&r.body),
            signing_payload: payload,
            threshold,
            approvals: approvals
                .into_iter()
                .map(|a| ApprovalView {
                    officer_key: hex::encode(a.officer_key),
                    approved_by: a.approved_by,
                    at_ms: a.at_ms,
                })
                .collect(),
            rejection: r.rejection,
            committed_height: r.committed_height,
            summary: serde_json::from_str(&r.summary).unwrap_or(serde_json::Value::Null),
        }
    }
}
