//! The client leg in the compressed protocol: a byte stream that inflates
//! what the client sends and deflates what Sluice writes, so that the
//! packet stream above it reads and writes ordinary packets. The backend
//! leg stays uncompressed (see docs/operations.md).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use sluice_protocol::compress::{self, Header};
use sluice_protocol::packet::MAX_PAYLOAD_LEN;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Room reserved for each read from the socket.
const READ_CHUNK: usize = 16 * 1024;

/// A stream speaking the compressed protocol over `inner`.
pub(crate) struct Compressed<S> {
    inner: S,
    /// Compressed packets read and not yet inflated.
    wire_in: BytesMut,
    /// Inflated bytes not yet handed to the reader.
    plain_in: Vec<u8>,
    /// How much of `plain_in` was handed out.
    plain_at: usize,
    /// Compressed packets written to no socket yet.
    wire_out: BytesMut,
    /// The sequence id of the next compressed packet Sluice writes. It
    /// follows the client's: the answer to a compressed packet numbered
    /// n starts at n + 1, as MariaDB numbers it.
    next_seq: u8,
}

impl<S> Compressed<S> {
    /// Starts the compressed protocol on `inner`; `already_read` holds
    /// bytes read from it past the login, which are compressed already.
    pub(crate) fn new(inner: S, already_read: &[u8]) -> Compressed<S> {
        Compressed {
            inner,
            wire_in: BytesMut::from(already_read),
            plain_in: Vec::new(),
            plain_at: 0,
            wire_out: BytesMut::new(),
            next_seq: 0,
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Inflates the first whole compressed packet in `wire_in`, if there
    /// is one. Every packet is refused whose payload does not inflate to
    /// what its header says.
    fn inflate_one(&mut self) -> io::Result<bool> {
        let Some(header) = Header::parse(&self.wire_in) else {
            return Ok(false);
        };
        if self.wire_in.len() < header.wire_len() {
            self.wire_in.reserve(header.wire_len() - self.wire_in.len());
            return Ok(false);
        }
        let packet = self.wire_in.split_to(header.wire_len());
        self.plain_in.drain(..self.plain_at);
        self.plain_at = 0;
        compress::decode(&header, &packet[compress::HEADER_LEN..], &mut self.plain_in)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.next_seq = header.seq.wrapping_add(1);
        Ok(true)
    }
}

impl<S: AsyncWrite + Unpin> Compressed<S> {
    /// Writes out what is pending in `wire_out`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wire_out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wire_out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wire_out.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Compressed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_at < this.plain_in.len() {
                let n = buf.remaining().min(this.plain_in.len() - this.plain_at);
                buf.put_slice(&this.plain_in[this.plain_at..this.plain_at + n]);
                this.plain_at += n;
                return Poll::Ready(Ok(()));
            }
            if this.inflate_one()? {
                continue;
            }
            let filled = this.wire_in.len();
            this.wire_in.resize(filled + READ_CHUNK, 0);
            let mut room = ReadBuf::new(&mut this.wire_in[filled..]);
            let read = Pin::new(&mut this.inner).poll_read(cx, &mut room);
            let n = room.filled().len();
            this.wire_in.truncate(filled + n);
            ready!(read)?;
            if n == 0 {
                if this.wire_in.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Compressed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let take = data.len().min(MAX_PAYLOAD_LEN);
        let mut packet = Vec::with_capacity(take / 2 + compress::HEADER_LEN);
        compress::encode(&mut packet, this.next_seq, &data[..take]);
        this.next_seq = this.next_seq.wrapping_add(1);
        this.wire_out.extend_from_slice(&packet);
        // Start the write now; what the socket does not take waits for
        // the next write or the flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn inflates_what_it_reads_and_numbers_answers_after_it() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        // Bytes read before the switch belong to the compressed stream.
        let query = [b"\x10\x00\x00\x00\x03".as_slice(), &[b'x'; 15]].concat();
        let mut wire = Vec::new();
        compress::encode(&mut wire, 0, &query);
        let long = b"SELECT 'abcdefgh', 'abcdefgh', 'abcdefgh', 'abcdefgh', 'abcdefgh'".to_vec();
        let mut second = Vec::new();
        compress::encode(&mut second, 4, &long);
        assert_ne!(Header::parse(&second).unwrap().inflated_len, 0);
        let mut stream = Compressed::new(near, &wire[..5]);
        far.write_all(&wire[5..]).await.unwrap();
        far.write_all(&second).await.unwrap();
        let mut got = vec![0; query.len() + long.len()];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [query.as_slice(), &long].concat());

        let answer = b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00".repeat(10);
        stream.write_all(&answer).await.unwrap();
        stream.flush().await.unwrap();
        let mut header = [0u8; compress::HEADER_LEN];
        far.read_exact(&mut header).await.unwrap();
        let header = Header::parse(&header).unwrap();
        assert_eq!(header.seq, 5);
        let mut payload = vec![0; header.payload_len];
        far.read_exact(&mut payload).await.unwrap();
        let mut plain = Vec::new();
        compress::decode(&header, &payload, &mut plain).unwrap();
        assert_eq!(plain, answer);
    }

    #[tokio::test]
    async fn a_bad_packet_or_a_cut_one_is_an_error() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let mut stream = Compressed::new(near, &[]);
        far.write_all(&[5, 0, 0, 0, 9, 0, 0, 1, 2, 3, 4, 5])
            .await
            .unwrap();
        let mut got = [0u8; 9];
        let e = stream.read_exact(&mut got).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);

        let (near, mut far) = tokio::io::duplex(1 << 16);
        let mut stream = Compressed::new(near, &[]);
        far.write_all(&[5, 0, 0, 0, 0, 0, 0, 1, 2]).await.unwrap();
        drop(far);
        let mut got = [0u8; 5];
        let e = stream.read_exact(&mut got).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
