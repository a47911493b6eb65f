//! The finalized-block feed: the ledger after each recently finalized block, for services in the
//! same process (a bank's view) so they need not re-execute what the node just executed.
//!
//! # Protocol
//! The application actor pushes an entry just before it appends the block to the block log (so
//! a reader that sees the block in the log finds its entry). A reader that applies the block
//! log in order, and so only ever uses entries of durable blocks, asks for the
//! entry of the block it is about to apply, by height and hash; when the entry is there it takes
//! the node's ledger and outcomes, otherwise (it lags by more than [`FEED_BLOCKS`], or it is
//! replaying after a restart) it executes the block itself. Both give the same ledger: the entry
//! is what the node's own execution of that very block produced.
//!
//! # Bounds
//! At most [`FEED_BLOCKS`] entries; the oldest is dropped first. Ledgers share structure, so an
//! entry costs what its block changed, not a copy of the state.

use cbdc_ledger::{Digest, Ledger, TxOutcome};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Finalized blocks the feed keeps.
pub const FEED_BLOCKS: usize = 16;

/// What one finalized block did: the ledger after it and one outcome per transaction.
#[derive(Debug)]
pub struct FinalizedBlock {
    pub height: u64,
    pub hash: Digest,
    pub ledger: Ledger,
    pub outcomes: Vec<TxOutcome>,
}

/// A shared, bounded feed of recently finalized blocks.
#[derive(Debug, Clone, Default)]
pub struct FinalizedFeed {
    entries: Arc<Mutex<VecDeque<Arc<FinalizedBlock>>>>,
}

impl FinalizedFeed {
    pub fn new() -> FinalizedFeed {
        FinalizedFeed::default()
    }

    pub(crate) fn push(&self, block: FinalizedBlock) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        while entries.len() >= FEED_BLOCKS {
            entries.pop_front();
        }
        entries.push_back(Arc::new(block));
    }

    /// The entry of the block at `height` with `hash`, if still held.
    pub fn get(&self, height: u64, hash: &Digest) -> Option<Arc<FinalizedBlock>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().rev().find(|e| e.height == height && e.hash == *hash).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbdc_ledger::testkit::TestNet;

    #[test]
    fn keeps_the_newest_blocks_and_finds_them_by_height_and_hash() {
        let net = TestNet::new(1);
        let ledger = Ledger::from_genesis(&net.genesis).unwrap();
        let feed = FinalizedFeed::new();
        for h in 1..=(FEED_BLOCKS as u64 + 4) {
            let hash = [h as u8; 32];
            feed.push(FinalizedBlock { height: h, hash, ledger: ledger.clone(), outcomes: vec![] });
        }
        assert!(feed.get(4, &[4; 32]).is_none(), "the oldest entries are dropped");
        assert!(feed.get(5, &[5; 32]).is_some());
        assert!(feed.get(20, &[20; 32]).is_some());
        assert!(feed.get(20, &[21; 32]).is_none(), "another block at that height is not it");
    }
}
