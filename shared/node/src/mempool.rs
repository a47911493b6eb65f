//! The mempool: transactions waiting for a block.
//!
//! Bounded in count and bytes, deduplicated by transaction id, served in arrival order. It holds
//! no judgement about validity beyond size: the proposer's execution decides, and a transaction
//! that is rejected or committed is removed. Pure data structure: no clock, no I/O.

use cbdc_ledger::{Encode, SignedTransaction, TxId};
use std::collections::{BTreeMap, VecDeque};
use thiserror::Error;

/// Why a transaction was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MempoolError {
    #[error("the mempool is full")]
    Full,
    #[error("a transaction with this id is already pending")]
    Duplicate,
    #[error("the transaction is larger than {0} bytes")]
    TooLarge(usize),
}

/// Limits of the mempool.
#[derive(Debug, Clone, Copy)]
pub struct MempoolLimits {
    pub max_transactions: usize,
    pub max_bytes: usize,
    pub max_transaction_bytes: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            max_transactions: 200_000,
            max_bytes: 256 * 1024 * 1024,
            max_transaction_bytes: 8 * 1024,
        }
    }
}

/// Pending transactions in arrival order.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    by_id: BTreeMap<TxId, (u64, SignedTransaction, usize)>,
    order: VecDeque<(u64, TxId)>,
    next_seq: u64,
    bytes: usize,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        Mempool { limits, by_id: BTreeMap::new(), order: VecDeque::new(), next_seq: 0, bytes: 0 }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn limits(&self) -> MempoolLimits {
        self.limits
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn contains(&self, id: &TxId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Free places (by count): a batch larger than this cannot be admitted whole.
    pub fn room(&self) -> usize {
        self.limits.max_transactions.saturating_sub(self.by_id.len())
    }

    /// Whether this very transaction (body and signatures) is held.
    pub fn holds(&self, tx: &SignedTransaction) -> bool {
        self.by_id.get(&tx.body.id).is_some_and(|(_, held, _)| held == tx)
    }

    /// Admits a transaction unless full, duplicate or oversized.
    pub fn insert(&mut self, tx: SignedTransaction) -> Result<(), MempoolError> {
        let size = tx.encode().len();
        if size > self.limits.max_transaction_bytes {
            return Err(MempoolError::TooLarge(self.limits.max_transaction_bytes));
        }
        if self.by_id.contains_key(&tx.body.id) {
            return Err(MempoolError::Duplicate);
        }
        let over_bytes = self.bytes.saturating_add(size) > self.limits.max_bytes;
        if self.by_id.len() >= self.limits.max_transactions || over_bytes {
            return Err(MempoolError::Full);
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        self.order.push_back((seq, tx.body.id));
        self.by_id.insert(tx.body.id, (seq, tx, size));
        self.bytes = self.bytes.saturating_add(size);
        Ok(())
    }

    /// Up to `max` pending transactions, oldest first, without removing them.
    pub fn peek(&mut self, max: usize) -> Vec<SignedTransaction> {
        self.compact();
        self.peek_where(max, |_| true)
    }

    /// Up to `max` pending transactions that pass `filter`, oldest first, without removing
    /// them (only those are copied). Call [`Mempool::compact`] first when many were removed.
    pub fn peek_where(
        &self,
        max: usize,
        filter: impl Fn(&SignedTransaction) -> bool,
    ) -> Vec<SignedTransaction> {
        let mut out = Vec::with_capacity(max.min(self.by_id.len()));
        for (seq, id) in &self.order {
            if out.len() >= max {
                break;
            }
            if let Some((s, tx, _)) = self.by_id.get(id)
                && s == seq
                && filter(tx)
            {
                out.push(tx.clone());
            }
        }
        out
    }

    /// Removes transactions (committed in a finalized block, or rejected).
    pub fn remove<'a>(&mut self, ids: impl IntoIterator<Item = &'a TxId>) {
        for id in ids {
            if let Some((_, _, size)) = self.by_id.remove(id) {
                self.bytes = self.bytes.saturating_sub(size);
            }
        }
        // Keep the order queue from growing without bound when removals are out of order.
        if self.order.len() > self.by_id.len().saturating_mul(2).saturating_add(1024) {
            self.compact();
        }
    }

    /// Drops the arrival-order entries of removed transactions.
    pub fn compact(&mut self) {
        let by_id = &self.by_id;
        self.order.retain(|(seq, id)| by_id.get(id).is_some_and(|(s, _, _)| s == seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbdc_ledger::testkit::{TestNet, key, tx_id, wallet_id};

    fn tx(n: u64) -> SignedTransaction {
        let net = TestNet::new(1);
        net.pay(tx_id(n), 10, &key("a"), wallet_id("a"), wallet_id("b"), 1)
    }

    #[test]
    fn dedups_bounds_and_serves_in_order() {
        let limits = MempoolLimits { max_transactions: 3, ..MempoolLimits::default() };
        let mut pool = Mempool::new(limits);
        for n in 1..=3 {
            pool.insert(tx(n)).unwrap();
        }
        assert_eq!(pool.insert(tx(2)), Err(MempoolError::Duplicate));
        assert_eq!(pool.insert(tx(4)), Err(MempoolError::Full));
        assert_eq!(pool.room(), 0);
        let ids: Vec<_> = pool.peek(2).iter().map(|t| t.body.id).collect();
        assert_eq!(ids, vec![tx_id(1), tx_id(2)]);
        pool.remove(&[tx_id(1)]);
        pool.insert(tx(4)).unwrap();
        let ids: Vec<_> = pool.peek(10).iter().map(|t| t.body.id).collect();
        assert_eq!(ids, vec![tx_id(2), tx_id(3), tx_id(4)]);
        let ids: Vec<_> =
            pool.peek_where(10, |t| t.body.id != tx_id(3)).iter().map(|t| t.body.id).collect();
        assert_eq!(ids, vec![tx_id(2), tx_id(4)]);
        let tiny = MempoolLimits { max_transaction_bytes: 10, ..MempoolLimits::default() };
        assert_eq!(Mempool::new(tiny).insert(tx(9)), Err(MempoolError::TooLarge(10)));
    }
}
