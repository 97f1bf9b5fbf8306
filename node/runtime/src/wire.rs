//! What validators send each other over the transport, one message per frame: PBFT
//! messages (with the epoch they belong to), gossiped transactions, blocks for state
//! transfer, and the epoch a node is in. The transport moves
//! bytes; this is the only place that gives them meaning. Decoding is bounded by the
//! `limits` constants, and a frame that does not decode is a peer's fault (evidence),
//! never a crash.

use pactum_consensus::SignedMessage;
use pactum_types::codec::{Decode, DecodeError, Encode, Reader, write};
use pactum_types::limits;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// A signed PBFT message of `epoch` (ADR 0021: each epoch is its own PBFT instance,
    /// and its signatures cover the epoch's identity).
    Consensus { epoch: u64, message: SignedMessage },
    /// Transactions a client gave the sender (canonical bytes), for the other mempools.
    Transactions(Vec<Vec<u8>>),
    /// State transfer: send the committed blocks `from..=to`.
    BlocksRequest { from: u64, to: u64 },
    /// State transfer: committed blocks (encoded), consecutive from the first one asked.
    Blocks(Vec<Vec<u8>>),
    /// The answer to a consensus message of an earlier epoch: the sender is in `epoch`
    /// at `height`, so the peer is behind and catches up from blocks.
    Epoch { epoch: u64, height: u64 },
}

impl Encode for Wire {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Wire::Consensus { epoch, message } => {
                write::u8(out, 1);
                write::u64(out, *epoch);
                message.encode_to(out);
            }
            Wire::Transactions(transactions) => {
                write::u8(out, 2);
                write::u32(out, transactions.len() as u32);
                for transaction in transactions {
                    write::bytes(out, transaction);
                }
            }
            Wire::BlocksRequest { from, to } => {
                write::u8(out, 3);
                write::u64(out, *from);
                write::u64(out, *to);
            }
            Wire::Blocks(blocks) => {
                write::u8(out, 4);
                write::u32(out, blocks.len() as u32);
                for block in blocks {
                    write::bytes(out, block);
                }
            }
            Wire::Epoch { epoch, height } => {
                write::u8(out, 5);
                write::u64(out, *epoch);
                write::u64(out, *height);
            }
        }
    }
}

impl Decode for Wire {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("wire message")? {
            1 => Ok(Wire::Consensus {
                epoch: reader.u64("epoch")?,
                message: SignedMessage::decode_from(reader)?,
            }),
            2 => {
                let count =
                    reader.length(limits::GOSSIP_TRANSACTIONS_PER_FRAME_MAX, "gossip count")?;
                let mut transactions = Vec::with_capacity(count);
                for _ in 0..count {
                    transactions.push(
                        reader.byte_vec(limits::TRANSACTION_BYTES_MAX, "gossiped transaction")?,
                    );
                }
                Ok(Wire::Transactions(transactions))
            }
            3 => Ok(Wire::BlocksRequest { from: reader.u64("from")?, to: reader.u64("to")? }),
            4 => {
                let count =
                    reader.length(limits::STATE_TRANSFER_BLOCKS_PER_FRAME_MAX, "block count")?;
                let mut blocks = Vec::with_capacity(count);
                for _ in 0..count {
                    blocks.push(reader.byte_vec(limits::BLOCK_BYTES_MAX, "block")?);
                }
                Ok(Wire::Blocks(blocks))
            }
            5 => Ok(Wire::Epoch { epoch: reader.u64("epoch")?, height: reader.u64("height")? }),
            tag => Err(DecodeError::UnknownTag { what: "wire message", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_messages_round_trip_and_unknown_tags_are_refused() {
        for message in [
            Wire::Transactions(vec![vec![1, 2, 3], Vec::new()]),
            Wire::BlocksRequest { from: 5, to: 9 },
            Wire::Blocks(vec![vec![7; 40]]),
            Wire::Epoch { epoch: 2, height: 170 },
        ] {
            assert_eq!(Wire::from_bytes(&message.to_bytes()).unwrap(), message);
        }
        assert!(Wire::from_bytes(&[9]).is_err());
        assert!(Wire::from_bytes(&[3, 0]).is_err(), "truncated");
    }
}
