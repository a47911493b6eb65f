//! Starting a validator: recover the ledger from the block log, start the application actor and
//! the simplex engine on the given p2p channels. The same code runs on Commonware's tokio runtime
//! (the services) and on its deterministic runtime (simulation tests).

use crate::app::{
    self, Actor, AppConfig, Channels, EpochInfo, Evidence, Mailbox, NodeStatus, ValidatorKey,
};
use crate::mempool::{Mempool, MempoolLimits};
use cbdc_ledger::{Digest, Genesis, Ledger, PublicKey};
use cbdc_store::{RecoverError, Store, StoreError, recover};
use commonware_codec::DecodeExt;
use commonware_consensus::simplex::config::{
    Config as EngineConfig, Floor, ForwardPolicy, SkipBudget, SkipPolicy,
};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::{self, scheme::ed25519::Scheme};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_cryptography::{Signer as _, ed25519, sha256};
use commonware_p2p::utils::mux::Muxer;
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage, Supervisor as Supervisor_};
use commonware_utils::channel::watch;
use commonware_utils::ordered::Set;
use commonware_utils::{NZU16, NZUsize};
use rand_core::CryptoRng;
use std::num::NonZeroUsize;
use std::time::Duration;
use thiserror::Error;
use tracing::{info, warn};

/// Consensus timing. Defaults suit a local network; the leader timeout bounds the cost of a dead
/// leader (one timeout per view it leads).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub leader: Duration,
    pub certification: Duration,
    pub retry: Duration,
    pub fetch: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            leader: Duration::from_millis(1_000),
            certification: Duration::from_millis(1_500),
            retry: Duration::from_secs(5),
            fetch: Duration::from_millis(500),
        }
    }
}

/// Everything a validator needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub genesis: Genesis,
    /// The validator's consensus key (Ed25519 seed).
    pub validator_seed: [u8; 32],
    /// Block log and projections (`sqlite://...` or `postgres://...`).
    pub database_url: String,
    /// Prefix of the engine's journal partitions in the runtime's storage.
    pub partition: String,
    pub max_block_txs: usize,
    pub snapshot_every: u64,
    pub mempool: MempoolLimits,
    pub timeouts: Timeouts,
}

/// Why a node could not start.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("opening the block log: {0}")]
    Store(#[from] StoreError),
    #[error("recovering the ledger: {0}")]
    Recover(#[from] RecoverError),
    #[error("a validator key in the ledger is not a valid Ed25519 key")]
    BadValidatorKey,
    #[error("this node's key is not among the validators")]
    NotAValidator,
    #[error("the validator seed is not a valid Ed25519 key")]
    BadSeed,
    #[error("the block log does not record where epoch {0} ended")]
    MissingEpochEnd(u64),
}

/// A running validator.
pub struct NodeHandle {
    pub mailbox: Mailbox,
    pub status: watch::Receiver<NodeStatus>,
    /// The current validator-set epoch; changes when an admission or suspension finalizes.
    pub epochs: watch::Receiver<EpochInfo>,
    pub validator: PublicKey,
    /// The ledger after each recently finalized block (for a bank's view in this process).
    pub finalized: crate::feed::FinalizedFeed,
    pub engine: Handle<()>,
    pub application: Handle<()>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle").field("validator", &self.validator).finish_non_exhaustive()
    }
}

/// The consensus-engine channels: votes, certificates, resolver.
pub type ConsensusChannels<S, R> = ((S, R), (S, R), (S, R));

/// The validator set of a ledger, as consensus keys in the engine's canonical order.
pub fn participants(validators: &[PublicKey]) -> Result<Set<ValidatorKey>, NodeError> {
    app::validator_set(validators).ok_or(NodeError::BadValidatorKey)
}

/// The validator's consensus key from its seed.
pub fn validator_key(seed: &[u8; 32]) -> Result<ed25519::PrivateKey, NodeError> {
    ed25519::PrivateKey::decode(bytes::Bytes::copy_from_slice(seed)).map_err(|_| NodeError::BadSeed)
}

/// The engine's namespace: separates this chain's votes from any other's.
pub fn namespace(genesis: &Genesis) -> Vec<u8> {
    let mut ns = b"cbdc.v1.consensus.".to_vec();
    ns.extend_from_slice(&genesis.hash());
    ns
}

/// Starts a validator: recovers the ledger, then runs the application actor and the engine.
pub fn start<E, S, R, B>(
    context: E,
    cfg: NodeConfig,
    consensus: ConsensusChannels<S, R>,
    own: Channels<S, R>,
    blocker: B,
) -> Result<NodeHandle, NodeError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor_,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey> + Clone,
{
    start_with(context, cfg, consensus, own, blocker, |_| {})
}

/// Test-only (feature `byzantine`): starts a validator whose proposals `tamper` rewrites.
#[cfg(feature = "byzantine")]
pub fn start_byzantine<E, S, R, B>(
    context: E,
    cfg: NodeConfig,
    consensus: ConsensusChannels<S, R>,
    own: Channels<S, R>,
    blocker: B,
    tamper: app::ProposalTamper,
) -> Result<NodeHandle, NodeError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor_,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey> + Clone,
{
    start_with(context, cfg, consensus, own, blocker, |app| app.proposal_tamper = Some(tamper))
}

/// [`start`], with a last say over the application's settings (the byzantine test hook).
fn start_with<E, S, R, B>(
    context: E,
    cfg: NodeConfig,
    consensus: ConsensusChannels<S, R>,
    own: Channels<S, R>,
    blocker: B,
    adjust: impl FnOnce(&mut AppConfig),
) -> Result<NodeHandle, NodeError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor_,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey> + Clone,
{
    let mut store = Store::open(&cfg.database_url)?;
    let ledger = recover(&mut store, &cfg.genesis)?;
    let signer = validator_key(&cfg.validator_seed)?;
    let me = PublicKey(
        <[u8; 32]>::try_from(signer.public_key().as_ref()).map_err(|_| NodeError::BadSeed)?,
    );
    // Every validator key in the ledger must be a valid Ed25519 key (the engine needs them).
    participants(&ledger.validators())?;
    let epoch = EpochInfo::of(&ledger, epoch_floor(&mut store, &ledger)?);
    let evidence = store
        .evidence(cbdc_store::MAX_EVIDENCE_PAGE)?
        .into_iter()
        .rev()
        .map(|r| Evidence {
            kind: r.kind,
            validator: PublicKey(r.validator),
            epoch: r.epoch,
            view: r.view,
            proof: r.proof,
        })
        .collect();
    let namespace = namespace(&cfg.genesis);
    let (mailbox, inbox) = app::mailbox(Vec::new());
    let mut app_cfg = AppConfig {
        me,
        max_block_txs: cfg.max_block_txs,
        snapshot_every: cfg.snapshot_every,
        namespace: namespace.clone(),
        #[cfg(feature = "byzantine")]
        proposal_tamper: None,
    };
    adjust(&mut app_cfg);
    let finalized = crate::feed::FinalizedFeed::new();
    let (actor, status, epochs) = Actor::new(
        context.child("application"),
        app_cfg,
        inbox,
        store,
        ledger,
        Mempool::new(cfg.mempool),
        own,
        epoch,
        evidence,
        finalized.clone(),
    );
    // The actor writes the block log synchronously: it gets its own thread (STYLE 18), so no
    // async worker is ever blocked by a database call.
    let application = context.child("application").dedicated().spawn(move |_| actor.run());
    let supervisor = Supervisor { cfg, signer, namespace, mailbox: mailbox.clone(), blocker };
    let epochs_out = epochs.clone();
    let engine =
        context.child("epochs").spawn(move |context| supervisor.run(context, epochs, consensus));
    Ok(NodeHandle {
        mailbox,
        status,
        epochs: epochs_out,
        validator: me,
        finalized,
        engine,
        application,
    })
}

/// The block the current epoch's engine starts from: the genesis in epoch 0, otherwise the
/// last block of the previous epoch (recorded in the block log when it was finalized).
fn epoch_floor(store: &mut Store, ledger: &Ledger) -> Result<Digest, NodeError> {
    let epoch = ledger.epoch();
    if epoch == 0 {
        return Ok(ledger.genesis_hash());
    }
    let height = store.epoch_end(epoch - 1)?.ok_or(NodeError::MissingEpochEnd(epoch - 1))?;
    let block = store.block(height)?.ok_or(NodeError::MissingEpochEnd(epoch - 1))?;
    Ok(block.hash)
}

/// Runs one simplex engine per validator-set epoch. When the application finalizes the block
/// that ends an epoch, the supervisor stops that epoch's engine and starts the next one: the
/// new validators, a new journal partition, the epoch's last block as its genesis, and its own
/// sub-channel of each consensus channel (so votes of different epochs never mix). A node not
/// in an epoch's validator set runs no engine in it and follows the chain through the
/// application's catch-up.
struct Supervisor<B> {
    cfg: NodeConfig,
    signer: ed25519::PrivateKey,
    namespace: Vec<u8>,
    mailbox: Mailbox,
    blocker: B,
}

impl<B> Supervisor<B>
where
    B: Blocker<PublicKey = ValidatorKey> + Clone,
{
    async fn run<E, S, R>(
        self,
        context: E,
        mut epochs: watch::Receiver<EpochInfo>,
        consensus: ConsensusChannels<S, R>,
    ) where
        E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor_,
        S: Sender<PublicKey = ValidatorKey>,
        R: Receiver<PublicKey = ValidatorKey>,
    {
        let ((vs, vr), (cs, cr), (rs, rr)) = consensus;
        let (votes, mut votes_mux) = Muxer::new(context.child("votes_mux"), vs, vr);
        let (certs, mut certs_mux) = Muxer::new(context.child("certificates_mux"), cs, cr);
        let (res, mut res_mux) = Muxer::new(context.child("resolver_mux"), rs, rr);
        let _muxers = (votes.start(), certs.start(), res.start());
        loop {
            let info = epochs.borrow_and_update().clone();
            let engine = match self.engine(&context, &info) {
                Some(engine) => {
                    let channel = info.epoch;
                    match (
                        votes_mux.register(channel).await,
                        certs_mux.register(channel).await,
                        res_mux.register(channel).await,
                    ) {
                        (Ok(v), Ok(c), Ok(r)) => {
                            info!(
                                epoch = info.epoch,
                                validators = info.validators.len(),
                                "engine started"
                            );
                            Some(engine.start(v, c, r))
                        }
                        _ => {
                            warn!(epoch = info.epoch, "could not open the epoch's channels");
                            None
                        }
                    }
                }
                None => {
                    info!(epoch = info.epoch, "not a validator in this epoch: following only");
                    None
                }
            };
            let changed = epochs.changed().await;
            if let Some(engine) = engine {
                engine.abort();
            }
            if changed.is_err() {
                break;
            }
        }
    }

    /// The engine for an epoch, if this node is one of its validators.
    #[allow(clippy::type_complexity, reason = "the engine's full type is spelled once, here")]
    fn engine<E>(
        &self,
        context: &E,
        info: &EpochInfo,
    ) -> Option<
        simplex::Engine<
            E,
            Scheme,
            RoundRobin<commonware_cryptography::Sha256>,
            B,
            sha256::Digest,
            Mailbox,
            Mailbox,
            Mailbox,
            Sequential,
        >,
    >
    where
        E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor_,
    {
        let set = participants(&info.validators).ok()?;
        let ordered: Vec<PublicKey> = set
            .iter()
            .map(|k| PublicKey(<[u8; 32]>::try_from(k.as_ref()).unwrap_or_default()))
            .collect();
        let scheme = Scheme::signer(&self.namespace, set, self.signer.clone())?;
        let mailbox = self.mailbox.for_participants(ordered);
        let t = self.cfg.timeouts;
        let engine_cfg = EngineConfig {
            scheme,
            elector: RoundRobin::<commonware_cryptography::Sha256>::default(),
            blocker: self.blocker.clone(),
            automaton: mailbox.clone(),
            relay: mailbox.clone(),
            reporter: mailbox,
            strategy: Sequential,
            partition: format!("{}-epoch-{}", self.cfg.partition, info.epoch),
            mailbox_size: NZUsize!(1024),
            epoch: Epoch::new(info.epoch),
            floor: Floor::Genesis(sha256::Digest(info.floor)),
            leader_timeout: t.leader,
            certification_timeout: t.certification,
            timeout_retry: t.retry,
            fetch_timeout: commonware_utils::NonZeroDuration::new(t.fetch)
                .unwrap_or(commonware_utils::NZDuration!(Duration::from_millis(500))),
            fetch_retry_delay: Duration::from_millis(100),
            view_retention: ViewDelta::new(64),
            skip: SkipPolicy::Enabled {
                timeout: t.certification.saturating_mul(2).max(t.retry.saturating_add(t.leader)),
                budget: SkipBudget::Participants,
            },
            replay_buffer: NZUsize!(1024 * 1024),
            write_buffer: NZUsize!(1024 * 1024),
            page_cache: CacheRef::new(NZU16!(1024), NonZeroUsize::new(64).unwrap_or(NZUsize!(1))),
            forward: ForwardPolicy::SilentLeader,
            track_historical_votes: false,
        };
        let child = context.child("engine").with_attribute("epoch", info.epoch);
        Some(simplex::Engine::new(child, engine_cfg))
    }
}

/// Who signed a finalization certificate, read for display and audits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSigners {
    pub epoch: u64,
    pub view: u64,
    /// The block hash the certificate finalizes.
    pub payload: Digest,
    /// The signing validators' consensus keys.
    pub signers: Vec<PublicKey>,
}

/// Decodes a stored finalization certificate of an epoch whose validators are `validators`
/// and names its signers. It does not check the signatures (the node did, before storing it).
pub fn certificate_signers(
    genesis: &Genesis,
    validators: &[PublicKey],
    certificate: &[u8],
) -> Option<CertificateSigners> {
    use commonware_codec::Decode as _;
    use commonware_cryptography::certificate::Verifier as _;
    let set = participants(validators).ok()?;
    let ordered: Vec<PublicKey> = set
        .iter()
        .map(|k| PublicKey(<[u8; 32]>::try_from(k.as_ref()).unwrap_or_default()))
        .collect();
    let verifier = Scheme::verifier(&namespace(genesis), set);
    let f =
        commonware_consensus::simplex::types::Finalization::<Scheme, sha256::Digest>::decode_cfg(
            bytes::Bytes::copy_from_slice(certificate),
            &verifier.certificate_codec_config(),
        )
        .ok()?;
    let signers = f
        .certificate
        .signers
        .iter()
        .filter_map(|p| ordered.get(usize::try_from(p.get()).ok()?).copied())
        .collect();
    Some(CertificateSigners {
        epoch: f.proposal.round.epoch().get(),
        view: f.proposal.round.view().get(),
        payload: f.proposal.payload.0,
        signers,
    })
}
