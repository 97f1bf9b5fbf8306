//! The wire format: `length: u32 BE | kind: u8 | payload`, where `length` counts the kind
//! byte and the payload. A length over the limit is refused before anything is read or
//! allocated.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A frame kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Keeps an idle connection alive; carries no payload.
    KeepAlive,
    /// Carries a payload for the node.
    Data,
}

impl FrameKind {
    fn byte(self) -> u8 {
        match self {
            FrameKind::KeepAlive => 0,
            FrameKind::Data => 1,
        }
    }
}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {length} bytes is over the limit of {max}")]
    TooLarge { length: usize, max: usize },
    #[error("empty frame (no kind byte)")]
    Empty,
    #[error("unknown frame kind {kind}")]
    UnknownKind { kind: u8 },
    #[error("keep-alive frame carries {length} bytes")]
    KeepAliveWithPayload { length: usize },
    #[error("connection closed")]
    Closed,
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes one frame (not flushed).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    kind: FrameKind,
    payload: &[u8],
) -> std::io::Result<()> {
    let length = u32::try_from(payload.len() + 1).expect("payloads are bounded by the frame limit");
    writer.write_all(&length.to_be_bytes()).await?;
    writer.write_all(&[kind.byte()]).await?;
    writer.write_all(payload).await
}

/// Reads one frame whose payload is at most `payload_bytes_max`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    payload_bytes_max: usize,
) -> Result<(FrameKind, Vec<u8>), FrameError> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed);
        }
        Err(error) => return Err(error.into()),
    }
    let length = u32::from_be_bytes(header) as usize;
    if length == 0 {
        return Err(FrameError::Empty);
    }
    if length - 1 > payload_bytes_max {
        return Err(FrameError::TooLarge { length: length - 1, max: payload_bytes_max });
    }
    let kind = reader.read_u8().await?;
    let mut payload = vec![0u8; length - 1];
    reader.read_exact(&mut payload).await?;
    match kind {
        0 if payload.is_empty() => Ok((FrameKind::KeepAlive, payload)),
        0 => Err(FrameError::KeepAliveWithPayload { length: payload.len() }),
        1 => Ok((FrameKind::Data, payload)),
        kind => Err(FrameError::UnknownKind { kind }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused_before_reading() {
        let mut buffer = Vec::new();
        write_frame(&mut buffer, FrameKind::Data, b"hello").await.unwrap();
        write_frame(&mut buffer, FrameKind::KeepAlive, b"").await.unwrap();
        let mut reader = buffer.as_slice();
        assert_eq!(
            read_frame(&mut reader, 16).await.unwrap(),
            (FrameKind::Data, b"hello".to_vec())
        );
        assert_eq!(read_frame(&mut reader, 16).await.unwrap(), (FrameKind::KeepAlive, vec![]));
        assert!(matches!(read_frame(&mut reader, 16).await, Err(FrameError::Closed)));

        let huge = (u32::MAX).to_be_bytes();
        let mut reader = &huge[..];
        assert!(matches!(read_frame(&mut reader, 16).await, Err(FrameError::TooLarge { .. })));

        let mut bad = Vec::new();
        bad.extend_from_slice(&2u32.to_be_bytes());
        bad.extend_from_slice(&[7, 0]);
        let mut reader = bad.as_slice();
        assert!(matches!(
            read_frame(&mut reader, 16).await,
            Err(FrameError::UnknownKind { kind: 7 })
        ));
    }
}
