//! What the node measures about its own work, published through [`crate::NodeStatus`]: the
//! finality latency of the blocks it applies, the transactions they commit, the money they move,
//! the transactions its proposals drop as rejected, and the ledger aggregates services ask for
//! (holdings by bank and by KYC tier).
//!
//! Pure data: integers only (milliseconds and minor units), ordered collections only, no clock
//! (the actor passes in the runtime clock's reading), so the same code runs in the deterministic
//! simulator. Services turn these into Prometheus text; nothing here knows that format.

use cbdc_ledger::{PostingReason, TxOutcome, WalletClass, WalletStatus};
use std::collections::BTreeMap;

/// Upper bounds of the finality-latency buckets, in milliseconds (a last, implicit bucket holds
/// everything slower).
pub const FINALITY_BUCKETS_MS: [u64; 9] = [25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

/// Every transaction kind's stable name (`TxKind::name`), so counters of kinds that have not
/// occurred yet can be shown as zero.
pub const TX_KINDS: [&str; 12] = [
    "transfer",
    "open_wallet",
    "set_tier",
    "freeze",
    "unfreeze",
    "close_wallet",
    "set_linked",
    "mint",
    "burn",
    "admit_bank",
    "suspend_bank",
    "set_policy",
];

/// A latency histogram with the fixed buckets [`FINALITY_BUCKETS_MS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Observations at or below each bound of [`FINALITY_BUCKETS_MS`] (cumulative, as
    /// Prometheus buckets are).
    pub cumulative: [u64; FINALITY_BUCKETS_MS.len()],
    /// Observations in all (the `+Inf` bucket).
    pub count: u64,
    /// Sum of all observations, in milliseconds.
    pub sum_ms: u64,
}

impl LatencyHistogram {
    pub fn observe(&mut self, ms: u64) {
        for (bound, bucket) in FINALITY_BUCKETS_MS.iter().zip(self.cumulative.iter_mut()) {
            if ms <= *bound {
                *bucket = bucket.saturating_add(1);
            }
        }
        self.count = self.count.saturating_add(1);
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// The bucket bounds with their cumulative counts, smallest first (without `+Inf`).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        FINALITY_BUCKETS_MS.iter().copied().zip(self.cumulative.iter().copied())
    }

    /// An upper estimate of the `percent`-th percentile: the bound of the first bucket holding
    /// it. `None` with no observations, or when it lies beyond the largest bound.
    pub fn quantile_ms(&self, percent: u64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        // The rank of the percentile, rounded up: ceil(count * percent / 100), at least 1.
        let rank = u128::from(self.count)
            .saturating_mul(u128::from(percent.min(100)))
            .div_ceil(100)
            .max(1);
        self.buckets().find(|(_, n)| u128::from(*n) >= rank).map(|(bound, _)| bound)
    }
}

/// Money moved by committed transactions: payment legs, waterfalls (excess over a payee's
/// holding limit swept to its bank) and reverse waterfalls (a linked payer topped up by its bank).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MoneyFlows {
    pub payments: u64,
    pub payments_value_minor: u64,
    pub waterfalls: u64,
    pub waterfall_value_minor: u64,
    pub reverse_waterfalls: u64,
    pub reverse_waterfall_value_minor: u64,
}

impl MoneyFlows {
    /// The flows of a block's outcomes (rejected transactions move nothing).
    ///
    /// Each payment leg posts one payment debit on its payer; each waterfall and reverse
    /// waterfall posts one credit (to the bank's float, to the payer) with its amount.
    pub fn of(outcomes: &[TxOutcome]) -> MoneyFlows {
        let mut flows = MoneyFlows::default();
        let postings = outcomes.iter().filter_map(|o| match o {
            TxOutcome::Committed(postings) => Some(postings),
            TxOutcome::Rejected(_) => None,
        });
        for p in postings.flatten() {
            let amount = p.amount.minor();
            let (count, value) = match (p.reason, p.credit) {
                (PostingReason::Payment, false) => {
                    (&mut flows.payments, &mut flows.payments_value_minor)
                }
                (PostingReason::Waterfall, true) => {
                    (&mut flows.waterfalls, &mut flows.waterfall_value_minor)
                }
                (PostingReason::ReverseWaterfall, true) => {
                    (&mut flows.reverse_waterfalls, &mut flows.reverse_waterfall_value_minor)
                }
                _ => continue,
            };
            *count = count.saturating_add(1);
            *value = value.saturating_add(amount);
        }
        flows
    }

    pub fn add(&mut self, other: &MoneyFlows) {
        self.payments = self.payments.saturating_add(other.payments);
        self.payments_value_minor =
            self.payments_value_minor.saturating_add(other.payments_value_minor);
        self.waterfalls = self.waterfalls.saturating_add(other.waterfalls);
        self.waterfall_value_minor =
            self.waterfall_value_minor.saturating_add(other.waterfall_value_minor);
        self.reverse_waterfalls = self.reverse_waterfalls.saturating_add(other.reverse_waterfalls);
        self.reverse_waterfall_value_minor =
            self.reverse_waterfall_value_minor.saturating_add(other.reverse_waterfall_value_minor);
    }
}

/// Adds one to `key`'s count.
pub(crate) fn bump<K: Ord>(counts: &mut BTreeMap<K, u64>, key: K) {
    let n = counts.entry(key).or_insert(0);
    *n = n.saturating_add(1);
}

/// What the wallets a bank administers hold at the finalized tip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BankHoldings {
    pub bank: u32,
    /// The bank's wallets that are not closed, its float excluded.
    pub wallets: u64,
    /// Their balances, in minor units.
    pub balance_minor: u64,
    /// The balance of the bank's float wallet (the issuance wallet for the central bank).
    pub float_minor: u64,
}

/// What the retail wallets of one KYC tier hold at the finalized tip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierHoldings {
    pub tier: u8,
    /// Retail wallets of the tier that are not closed.
    pub wallets: u64,
    pub balance_minor: u64,
}

/// Holdings by bank (every bank, in id order) and by tier (every tier of the policy, and any
/// other tier a retail wallet has, in tier order) of a ledger state.
pub fn holdings(state: &cbdc_ledger::State) -> (Vec<BankHoldings>, Vec<TierHoldings>) {
    let mut banks: BTreeMap<u32, BankHoldings> = state
        .banks()
        .map(|b| (b.id.0, BankHoldings { bank: b.id.0, ..BankHoldings::default() }))
        .collect();
    let floats: BTreeMap<_, u32> = state.banks().map(|b| (b.float_wallet, b.id.0)).collect();
    let mut tiers: BTreeMap<u8, TierHoldings> = (0..state.policy().tiers.len())
        .filter_map(|t| u8::try_from(t).ok())
        .map(|tier| (tier, TierHoldings { tier, ..TierHoldings::default() }))
        .collect();
    for w in state.wallets() {
        let balance = w.balance.minor();
        let holding = banks
            .entry(w.bank.0)
            .or_insert_with(|| BankHoldings { bank: w.bank.0, ..BankHoldings::default() });
        if floats.get(&w.id) == Some(&w.bank.0) {
            holding.float_minor = holding.float_minor.saturating_add(balance);
            continue;
        }
        if w.status == WalletStatus::Closed {
            continue;
        }
        holding.wallets = holding.wallets.saturating_add(1);
        holding.balance_minor = holding.balance_minor.saturating_add(balance);
        if w.class == WalletClass::Retail {
            let t = tiers
                .entry(w.tier.0)
                .or_insert_with(|| TierHoldings { tier: w.tier.0, ..TierHoldings::default() });
            t.wallets = t.wallets.saturating_add(1);
            t.balance_minor = t.balance_minor.saturating_add(balance);
        }
    }
    (banks.into_values().collect(), tiers.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbdc_ledger::{Amount, Posting, Rejection, WalletId};

    #[test]
    fn the_histogram_is_cumulative_and_its_quantiles_are_bucket_bounds() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_ms(50), None);
        for ms in [10, 30, 30, 400, 20_000] {
            h.observe(ms);
        }
        assert_eq!(h.count, 5);
        assert_eq!(h.sum_ms, 20_470);
        let buckets: Vec<_> = h.buckets().collect();
        assert_eq!(buckets.first(), Some(&(25, 1)));
        assert_eq!(buckets.get(1), Some(&(50, 3)));
        assert_eq!(buckets.get(4), Some(&(500, 4)));
        assert_eq!(buckets.last(), Some(&(10_000, 4)));
        assert_eq!(h.quantile_ms(50), Some(50));
        assert_eq!(h.quantile_ms(80), Some(500));
        assert_eq!(h.quantile_ms(99), None, "beyond the largest bound");
    }

    #[test]
    fn flows_count_payment_legs_and_sweeps_once_each() {
        let post = |credit, minor, reason| Posting {
            wallet: WalletId([0; 16]),
            credit,
            amount: Amount::from_minor(minor).unwrap_or(Amount::ZERO),
            reason,
        };
        let outcomes = vec![
            TxOutcome::Committed(vec![
                post(false, 5, PostingReason::ReverseWaterfall),
                post(true, 5, PostingReason::ReverseWaterfall),
                post(false, 100, PostingReason::Payment),
                post(true, 100, PostingReason::Payment),
                post(false, 30, PostingReason::Waterfall),
                post(true, 30, PostingReason::Waterfall),
            ]),
            TxOutcome::Rejected(Rejection::InsufficientFunds),
            TxOutcome::Committed(vec![post(true, 7, PostingReason::Mint)]),
        ];
        let mut flows = MoneyFlows::of(&outcomes);
        assert_eq!(
            flows,
            MoneyFlows {
                payments: 1,
                payments_value_minor: 100,
                waterfalls: 1,
                waterfall_value_minor: 30,
                reverse_waterfalls: 1,
                reverse_waterfall_value_minor: 5,
            }
        );
        flows.add(&flows.clone());
        assert_eq!((flows.payments, flows.payments_value_minor), (2, 200));
    }

    #[test]
    fn holdings_split_floats_from_wallets_and_retail_wallets_by_tier() {
        use cbdc_ledger::testkit::{ChainBuilder, TestNet, tx_id};
        let net = TestNet::new(2);
        let mut chain = ChainBuilder::new(&net);
        let (alice, open_a) = net.open_customer(tx_id(2), 100, 1, "alice", 1, false);
        let (bob, open_b) = net.open_customer(tx_id(3), 100, 1, "bob", 2, false);
        let (carol, open_c) = net.open_customer(tx_id(4), 100, 2, "carol", 1, false);
        let outcomes = chain.push(&[net.mint(tx_id(1), 100, 1, 10_000), open_a, open_b, open_c]);
        assert!(outcomes.iter().all(TxOutcome::is_committed), "{outcomes:?}");
        let float = net.bank(1);
        let pay = |id, to, minor| {
            net.pay(tx_id(id), 100, &float.float_key, float.float_wallet, to, minor)
        };
        let outcomes = chain.push(&[pay(5, alice.wallet, 100), pay(6, bob.wallet, 250)]);
        assert!(outcomes.iter().all(TxOutcome::is_committed), "{outcomes:?}");
        let _ = carol;

        let (banks, tiers) = holdings(chain.ledger.state());
        let by_bank: Vec<_> =
            banks.iter().map(|b| (b.bank, b.wallets, b.balance_minor, b.float_minor)).collect();
        assert_eq!(by_bank, vec![(0, 0, 0, 0), (1, 2, 350, 9_650), (2, 1, 0, 0)]);
        let tier = |t: u8| tiers.iter().find(|h| h.tier == t).map(|h| (h.wallets, h.balance_minor));
        assert_eq!(tier(1), Some((2, 100)));
        assert_eq!(tier(2), Some((1, 250)));
        assert_eq!(tier(0), Some((0, 0)), "every tier of the policy is listed");
        let sum: u64 = banks.iter().map(|b| b.balance_minor + b.float_minor).sum();
        assert_eq!(sum, chain.ledger.state().supply().outstanding().minor());
    }
}
