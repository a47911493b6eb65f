//! Why a transaction did not commit: stable codes shared by receipts, APIs, logs and metrics.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use thiserror::Error;

macro_rules! rejections {
    ($($variant:ident = $tag:literal, $code:literal, $msg:literal;)+) => {
        /// A typed rejection. A rejected transaction changes nothing.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Error)]
        pub enum Rejection {
            $(#[error($msg)] $variant = $tag,)+
        }

        impl Rejection {
            /// Every rejection, in tag order.
            pub const ALL: &'static [Rejection] = &[$(Rejection::$variant),+];

            /// The stable snake_case code used in APIs, metrics and logs.
            pub const fn code(self) -> &'static str {
                match self {
                    $(Rejection::$variant => $code,)+
                }
            }

            pub const fn tag(self) -> u8 {
                self as u8
            }

            pub fn from_tag(tag: u8) -> Option<Rejection> {
                match tag {
                    $($tag => Some(Rejection::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

rejections! {
    Expired = 1, "expired", "the transaction's expiry height has passed";
    ExpiryTooFar = 2, "expiry_too_far", "the expiry height is beyond the policy's window";
    AlreadyCommitted = 3, "already_committed", "this transaction has already committed";
    IdReused = 4, "id_reused", "the id was already used by a different transaction";
    BadSignature = 5, "bad_signature", "a signature does not verify";
    WrongSigner = 6, "wrong_signer", "the signers are not the ones this transaction requires";
    DuplicateSignature = 7, "duplicate_signature", "the same key signed twice";
    NotAnOfficer = 8, "not_an_officer", "an approval is signed by a key that is not an officer's";
    DuplicateApproval = 9, "duplicate_approval", "the same officer approved twice";
    TooFewApprovals = 10, "too_few_approvals", "fewer officer approvals than the threshold";
    ForeignWallet = 11, "foreign_wallet", "the wallet belongs to another bank";
    UnknownWallet = 12, "unknown_wallet", "no such wallet";
    UnknownBank = 13, "unknown_bank", "no such bank";
    BankSuspended = 14, "bank_suspended", "the bank is suspended";
    BankExists = 15, "bank_exists", "a bank with this id already exists";
    WalletExists = 16, "wallet_exists", "a wallet with this id already exists";
    WalletFrozen = 17, "wallet_frozen", "the wallet is frozen";
    WalletClosed = 18, "wallet_closed", "the wallet is closed";
    StatusUnchanged = 19, "status_unchanged", "the wallet already has that status";
    ClassNotAllowed = 20, "class_not_allowed", "not allowed for this class of wallet";
    InvalidTier = 21, "invalid_tier", "no such KYC tier";
    TierBelowHoldings = 22, "tier_below_holdings", "the holder's holdings exceed the new tier's limit";
    BalanceNotZero = 23, "balance_not_zero", "only an empty wallet can be closed";
    ZeroAmount = 24, "zero_amount", "the amount must be positive";
    AmountOverflow = 25, "amount_overflow", "the amount overflows";
    SameWallet = 26, "same_wallet", "payer and payee are the same wallet";
    EmptyTransfer = 27, "empty_transfer", "a transfer needs at least one leg";
    InsufficientFunds = 28, "insufficient_funds", "the payer's balance is too low";
    HoldingLimitExceeded = 29, "holding_limit_exceeded", "the payee would exceed its holding limit";
    PaymentLimitExceeded = 30, "payment_limit_exceeded", "the payment exceeds the per-payment limit";
    DailyOutflowExceeded = 31, "daily_outflow_exceeded", "the payer would exceed its daily outflow limit";
    SupplyCapExceeded = 32, "supply_cap_exceeded", "the mint would exceed the supply cap";
    QuotaExceeded = 33, "quota_exceeded", "the mint would exceed the bank's quota";
    BurnExceedsIssued = 34, "burn_exceeds_issued", "the burn exceeds what was issued to the bank";
    InvalidPolicy = 35, "invalid_policy", "the resulting policy is not valid";
    InvalidBankName = 36, "invalid_bank_name", "the bank name is empty or too long";
    DuplicateValidatorKey = 37, "duplicate_validator_key", "another bank already uses this validator key";
    CannotSuspendCentralBank = 38, "cannot_suspend_central_bank", "the central bank cannot be suspended";
    TooManyLegs = 39, "too_many_legs", "a transfer has more legs than the limit";
    TooManySignatures = 40, "too_many_signatures", "a transaction carries more signatures than the limit";
    InvalidEndpoint = 41, "invalid_endpoint", "the validator endpoint is not a well-formed host:port";
}

impl Encode for Rejection {
    fn encode_to(&self, w: &mut Writer) {
        w.u8(self.tag());
    }
}

impl Decode for Rejection {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("rejection")?;
        Rejection::from_tag(tag).ok_or(DecodeError::UnknownTag { what: "rejection", tag })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_and_tags_are_unique_and_round_trip() {
        let codes: BTreeSet<_> = Rejection::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Rejection::ALL.len());
        for r in Rejection::ALL {
            assert_eq!(Rejection::from_tag(r.tag()), Some(*r));
            assert!(r.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
