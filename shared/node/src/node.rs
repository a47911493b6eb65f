//! Starting a validator: recover the ledger from the block log, start the application actor and
//! the simplex engine on the given p2p channels. The same code runs on Commonware's tokio runtime
//! (the services) and on its deterministic runtime (simulation tests).

use crate::app::{self, Actor, AppConfig, Channels, Mailbox, NodeStatus, ValidatorKey};
use crate::mempool::{Mempool, MempoolLimits};
use cbdc_ledger::{Genesis, PublicKey};
use cbdc_store::{RecoverError, Store, StoreError, recover};
use commonware_codec::DecodeExt;
use commonware_consensus::simplex::config::{
    Config as EngineConfig, Floor, ForwardPolicy, SkipBudget, SkipPolicy,
};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::{self, scheme::ed25519::Scheme};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_cryptography::{Signer as _, ed25519, sha256};
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage, Supervisor};
use commonware_utils::channel::watch;
use commonware_utils::ordered::Set;
use commonware_utils::{NZU16, NZUsize};
use rand_core::CryptoRng;
use std::num::NonZeroUsize;
use std::time::Duration;
use thiserror::Error;

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
}

/// A running validator.
pub struct NodeHandle {
    pub mailbox: Mailbox,
    pub status: watch::Receiver<NodeStatus>,
    pub validator: PublicKey,
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

/// The validator set of a ledger, as consensus keys in the engine's canonical order.
pub fn participants(validators: &[PublicKey]) -> Result<Set<ValidatorKey>, NodeError> {
    let keys: Result<Vec<ValidatorKey>, NodeError> = validators
        .iter()
        .map(|k| {
            ValidatorKey::decode(bytes::Bytes::copy_from_slice(&k.0))
                .map_err(|_| NodeError::BadValidatorKey)
        })
        .collect();
    Set::try_from(keys?).map_err(|_| NodeError::BadValidatorKey)
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
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey>,
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
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey>,
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
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey>,
{
    let mut store = Store::open(&cfg.database_url)?;
    let ledger = recover(&mut store, &cfg.genesis)?;
    let signer = validator_key(&cfg.validator_seed)?;
    let me = PublicKey(
        <[u8; 32]>::try_from(signer.public_key().as_ref()).map_err(|_| NodeError::BadSeed)?,
    );
    // The validator set of epoch 0: the genesis validators.
    let genesis_validators = cbdc_ledger::Ledger::from_genesis(&cfg.genesis)
        .map_err(|_| NodeError::BadValidatorKey)?
        .validators();
    let set = participants(&genesis_validators)?;
    let ordered: Vec<PublicKey> = set
        .iter()
        .map(|k| PublicKey(<[u8; 32]>::try_from(k.as_ref()).unwrap_or_default()))
        .collect();
    let peers: Vec<ValidatorKey> =
        set.iter().filter(|k| k.as_ref() != me.0.as_slice()).cloned().collect();
    let scheme =
        Scheme::signer(&namespace(&cfg.genesis), set, signer).ok_or(NodeError::NotAValidator)?;
    let (mailbox, inbox) = app::mailbox(ordered);
    let mut app_cfg = AppConfig {
        me,
        max_block_txs: cfg.max_block_txs,
        snapshot_every: cfg.snapshot_every,
        peers,
        #[cfg(feature = "byzantine")]
        proposal_tamper: None,
    };
    adjust(&mut app_cfg);
    let (actor, status) = Actor::new(
        context.child("application"),
        app_cfg,
        inbox,
        store,
        ledger,
        Mempool::new(cfg.mempool),
        own,
    );
    // The actor writes the block log synchronously: it gets its own thread (STYLE 18), so no
    // async worker is ever blocked by a database call.
    let application = context.child("application").dedicated().spawn(move |_| actor.run());
    let t = cfg.timeouts;
    let engine_cfg = EngineConfig {
        scheme,
        elector: RoundRobin::<commonware_cryptography::Sha256>::default(),
        blocker,
        automaton: mailbox.clone(),
        relay: mailbox.clone(),
        reporter: mailbox.clone(),
        strategy: Sequential,
        partition: cfg.partition.clone(),
        mailbox_size: NZUsize!(1024),
        epoch: Epoch::zero(),
        floor: Floor::Genesis(sha256::Digest(cfg.genesis.hash())),
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
    let engine = simplex::Engine::new(context.child("engine"), engine_cfg);
    let (votes, certificates, resolver) = consensus;
    let engine = engine.start(votes, certificates, resolver);
    Ok(NodeHandle { mailbox, status, validator: me, engine, application })
}
