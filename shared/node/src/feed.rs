//! The finalized-block feed: the ledger after each recently finalized block, for services in the
//! same process (a bank's view) so they need not re-execute what the node just executed.
//!
//! # Protocol
//! The application actor pushes an entry (the block, the ledger after it, the outcomes) just
//! before it appends the block to the block log, so that a reader that sees the block in the log
//! finds its entry, and marks it durable ([`FinalizedFeed::mark_durable`]) once the append has
//! committed. A reader that applies finalized blocks in order takes the next one from the feed
//! when the feed holds it and it is durable ([`FinalizedFeed::durable`]): the block, the node's
//! ledger and outcomes, with no read of the log, no decoding and no execution. Otherwise (it lags
//! by more than [`FEED_BLOCKS`], or it is replaying after a restart) it reads the block from the
//! log, asks for its entry by height and hash ([`FinalizedFeed::get`]) and, failing that,
//! executes the block itself. All give the same ledger: an entry is what the node's own
//! execution of that very block produced, and a reader never uses a block that is not durable.
//!
//! # Bounds
//! At most [`FEED_BLOCKS`] entries; the oldest is dropped first. Ledgers share structure, so an
//! entry costs what its block changed, not a copy of the state.

use cbdc_ledger::{Block, Digest, Ledger, TxOutcome};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Finalized blocks the feed keeps.
pub const FEED_BLOCKS: usize = 16;

/// What one finalized block did: the ledger after it and one outcome per transaction.
#[derive(Debug)]
pub struct FinalizedBlock {
    pub height: u64,
    pub hash: Digest,
    pub block: Arc<Block>,
    pub ledger: Ledger,
    pub outcomes: Vec<TxOutcome>,
}

/// A shared, bounded feed of recently finalized blocks.
#[derive(Debug, Clone, Default)]
pub struct FinalizedFeed {
    inner: Arc<Mutex<Entries>>,
}

#[derive(Debug, Default)]
struct Entries {
    blocks: VecDeque<Arc<FinalizedBlock>>,
    /// The height up to which blocks are in the block log (committed).
    durable: u64,
}

impl FinalizedFeed {
    pub fn new() -> FinalizedFeed {
        FinalizedFeed::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, block: FinalizedBlock) {
        let mut entries = self.lock();
        while entries.blocks.len() >= FEED_BLOCKS {
            entries.blocks.pop_front();
        }
        entries.blocks.push_back(Arc::new(block));
    }

    /// Records that every block up to `height` is in the block log.
    pub(crate) fn mark_durable(&self, height: u64) {
        let mut entries = self.lock();
        entries.durable = entries.durable.max(height);
    }

    /// The entry of the block at `height` with `hash`, if still held.
    pub fn get(&self, height: u64, hash: &Digest) -> Option<Arc<FinalizedBlock>> {
        let entries = self.lock();
        entries.blocks.iter().rev().find(|e| e.height == height && e.hash == *hash).cloned()
    }

    /// The entry of the finalized block at `height`, if still held and already in the block log.
    pub fn durable(&self, height: u64) -> Option<Arc<FinalizedBlock>> {
        let entries = self.lock();
        if height > entries.durable {
            return None;
        }
        entries.blocks.iter().rev().find(|e| e.height == height).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbdc_ledger::BlockContext;
    use cbdc_ledger::testkit::TestNet;

    fn empty_block(net: &TestNet, ledger: &Ledger) -> Arc<Block> {
        let proposer = net.bank(0).validator.public_key();
        let ctx = BlockContext { timestamp_ms: ledger.tip().timestamp_ms + 1_000, proposer };
        Arc::new(ledger.build_block(ctx, &[]).block)
    }

    #[test]
    fn keeps_the_newest_blocks_and_finds_them_by_height_and_hash() {
        let net = TestNet::new(1);
        let ledger = Ledger::from_genesis(&net.genesis).unwrap();
        let feed = FinalizedFeed::new();
        let block = empty_block(&net, &ledger);
        for h in 1..=(FEED_BLOCKS as u64 + 4) {
            let hash = [h as u8; 32];
            feed.push(FinalizedBlock {
                height: h,
                hash,
                block: block.clone(),
                ledger: ledger.clone(),
                outcomes: vec![],
            });
        }
        assert!(feed.get(4, &[4; 32]).is_none(), "the oldest entries are dropped");
        assert!(feed.get(5, &[5; 32]).is_some());
        assert!(feed.get(20, &[20; 32]).is_some());
        assert!(feed.get(20, &[21; 32]).is_none(), "another block at that height is not it");
    }

    #[test]
    fn serves_blocks_in_order_only_once_they_are_durable() {
        let net = TestNet::new(1);
        let ledger = Ledger::from_genesis(&net.genesis).unwrap();
        let feed = FinalizedFeed::new();
        let block = empty_block(&net, &ledger);
        for h in 1..=3u64 {
            feed.push(FinalizedBlock {
                height: h,
                hash: [h as u8; 32],
                block: block.clone(),
                ledger: ledger.clone(),
                outcomes: vec![],
            });
        }
        assert!(feed.durable(1).is_none(), "pushed but not yet in the log");
        feed.mark_durable(2);
        assert_eq!(feed.durable(1).map(|e| e.height), Some(1));
        assert_eq!(feed.durable(2).map(|e| e.height), Some(2));
        assert!(feed.durable(3).is_none(), "block 3 is not durable yet");
        feed.mark_durable(1);
        assert!(feed.durable(2).is_some(), "the durable height never goes back");
        assert!(feed.durable(4).is_none(), "never pushed");
    }
}
