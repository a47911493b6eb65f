//! Messages of the node's own p2p channels (consensus has its own three).
//!
//! - `BLOCKS`: a proposer's full block (the ledger's canonical block encoding).
//! - `TXS`: a batch of submitted transactions, gossiped once by the node that received them.
//! - `SYNC`: requests for finalized or candidate blocks (by digest, or a range of heights) and
//!   the answers, for a node that missed blocks or was down.
//!
//! Every decoder is bounded and total: bytes from peers never panic the node.

use cbdc_ledger::codec::{Decode, DecodeError, Encode, Reader, Writer};
use cbdc_ledger::{Digest, SignedTransaction};

/// Channel numbers on the p2p network (0-2 are the consensus engine's).
pub mod channel {
    pub const VOTES: u64 = 0;
    pub const CERTIFICATES: u64 = 1;
    pub const RESOLVER: u64 = 2;
    pub const BLOCKS: u64 = 3;
    pub const TXS: u64 = 4;
    pub const SYNC: u64 = 5;
}

/// Most transactions in one gossip message.
pub const MAX_TX_BATCH: u32 = 1_024;
/// Most blocks asked for, or answered, at once.
pub const MAX_SYNC_BLOCKS: u16 = 64;
/// An answer stops adding blocks beyond this many bytes (at least one block is always sent).
pub const MAX_SYNC_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Largest encoded block a node accepts from a peer.
pub const MAX_BLOCK_BYTES: u32 = 6 * 1024 * 1024;

/// Encodes a batch of transactions for the `TXS` channel.
pub fn encode_txs(txs: &[SignedTransaction]) -> Vec<u8> {
    let mut w = Writer::new();
    cbdc_ledger::codec::encode_seq(&mut w, txs);
    w.into_bytes()
}

pub fn decode_txs(bytes: &[u8]) -> Result<Vec<SignedTransaction>, DecodeError> {
    let mut r = Reader::new(bytes);
    let txs = cbdc_ledger::codec::decode_seq(&mut r, MAX_TX_BATCH, 60, "transactions")?;
    r.finish()?;
    Ok(txs)
}

/// What a sync request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// One block by its digest (a finalized or candidate block).
    Digest(Digest),
    /// Finalized blocks from `from` upwards.
    Heights { from: u64, count: u16 },
    /// The newest block the peer holds a finalization certificate for in validator-set
    /// `epoch` (the epoch's last block once it has ended): how a node that missed finalizations,
    /// or a whole epoch change, learns where the chain is.
    Certified { epoch: u64 },
}

/// Largest finalization certificate accepted (an Ed25519 certificate of a few hundred
/// validators is far smaller).
pub const MAX_CERTIFICATE_BYTES: u32 = 64 * 1024;

/// A message on the `SYNC` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMessage {
    Request {
        id: u64,
        want: Want,
    },
    /// Encoded blocks answering request `id`.
    Response {
        id: u64,
        blocks: Vec<Vec<u8>>,
    },
    /// A block with its finalization certificate in `epoch`, answering [`Want::Certified`].
    Certified {
        epoch: u64,
        block: Vec<u8>,
        certificate: Vec<u8>,
    },
}

impl Encode for SyncMessage {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            SyncMessage::Request { id, want } => {
                w.u8(1);
                w.u64(*id);
                match want {
                    Want::Digest(d) => {
                        w.u8(1);
                        w.fixed(d);
                    }
                    Want::Heights { from, count } => {
                        w.u8(2);
                        w.u64(*from);
                        w.u16(*count);
                    }
                    Want::Certified { epoch } => {
                        w.u8(3);
                        w.u64(*epoch);
                    }
                }
            }
            SyncMessage::Response { id, blocks } => {
                w.u8(2);
                w.u64(*id);
                w.count(blocks.len());
                for b in blocks {
                    w.var_bytes(b);
                }
            }
            SyncMessage::Certified { epoch, block, certificate } => {
                w.u8(3);
                w.u64(*epoch);
                w.var_bytes(block);
                w.var_bytes(certificate);
            }
        }
    }
}

impl Decode for SyncMessage {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("sync message")? {
            1 => {
                let id = r.u64("request id")?;
                let want = match r.u8("want")? {
                    1 => Want::Digest(r.array::<32>("digest")?),
                    2 => {
                        let from = r.u64("from height")?;
                        let count = r.u16("count")?;
                        if count == 0 || count > MAX_SYNC_BLOCKS {
                            return Err(DecodeError::InvalidValue("count"));
                        }
                        Want::Heights { from, count }
                    }
                    3 => Want::Certified { epoch: r.u64("epoch")? },
                    tag => return Err(DecodeError::UnknownTag { what: "want", tag }),
                };
                Ok(SyncMessage::Request { id, want })
            }
            2 => {
                let id = r.u64("request id")?;
                let n = r.count(u32::from(MAX_SYNC_BLOCKS), 4, "blocks")?;
                let mut blocks = Vec::with_capacity(n);
                for _ in 0..n {
                    blocks.push(r.var_bytes(MAX_BLOCK_BYTES, "block")?.to_vec());
                }
                Ok(SyncMessage::Response { id, blocks })
            }
            3 => Ok(SyncMessage::Certified {
                epoch: r.u64("epoch")?,
                block: r.var_bytes(MAX_BLOCK_BYTES, "block")?.to_vec(),
                certificate: r.var_bytes(MAX_CERTIFICATE_BYTES, "certificate")?.to_vec(),
            }),
            tag => Err(DecodeError::UnknownTag { what: "sync message", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_messages_round_trip_and_reject_garbage() {
        let msgs = [
            SyncMessage::Request { id: 7, want: Want::Digest([3; 32]) },
            SyncMessage::Request { id: 8, want: Want::Heights { from: 10, count: 64 } },
            SyncMessage::Response { id: 9, blocks: vec![vec![1, 2, 3], vec![]] },
            SyncMessage::Request { id: 10, want: Want::Certified { epoch: 2 } },
            SyncMessage::Certified { epoch: 2, block: vec![4, 5], certificate: vec![6] },
        ];
        for m in msgs {
            assert_eq!(SyncMessage::decode(&m.encode()), Ok(m));
        }
        let too_many = SyncMessage::Request { id: 1, want: Want::Heights { from: 1, count: 65 } };
        assert!(SyncMessage::decode(&too_many.encode()).is_err());
        for len in 0..20 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = SyncMessage::decode(&bytes);
            let _ = decode_txs(&bytes);
        }
    }
}
