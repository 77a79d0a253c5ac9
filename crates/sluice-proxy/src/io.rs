//! A TCP connection with a read buffer, read packet-wise without copying:
//! bytes are read into one buffer and forwarded from it.

use bytes::{Buf, BytesMut};
use sluice_protocol::packet::{PacketHeader, HEADER_LEN, MAX_PAYLOAD_LEN};
use sluice_protocol::ProtocolError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Peer, SessionError};

/// Buffer space reserved before each read.
const READ_CHUNK: usize = 16 * 1024;

/// One side of a session.
pub(crate) struct PacketStream {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
    pub(crate) peer: Peer,
}

/// A whole packet taken from the read buffer: header and payload.
pub(crate) struct Packet {
    pub(crate) header: PacketHeader,
    pub(crate) bytes: BytesMut,
}

impl Packet {
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }
}

impl PacketStream {
    pub(crate) fn new(stream: TcpStream, peer: Peer) -> PacketStream {
        // Small packets must leave at once: latency is the product.
        let _ = stream.set_nodelay(true);
        PacketStream {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            peer,
        }
    }

    /// Reads more bytes into the buffer; a closed peer is an error here,
    /// since every caller is in the middle of an exchange.
    pub(crate) async fn fill(&mut self) -> Result<(), SessionError> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(SessionError::io(self.peer))?;
        if n == 0 {
            return Err(SessionError::io(self.peer)(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        Ok(())
    }

    /// Waits until at least `n` bytes are buffered.
    pub(crate) async fn ensure(&mut self, n: usize) -> Result<(), SessionError> {
        if self.buf.len() < n {
            self.buf.reserve(n - self.buf.len());
        }
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(())
    }

    /// Waits for the next packet header and returns it without consuming.
    pub(crate) async fn peek_header(&mut self) -> Result<PacketHeader, SessionError> {
        self.ensure(HEADER_LEN).await?;
        PacketHeader::parse(&self.buf).ok_or_else(|| {
            SessionError::protocol(self.peer)(ProtocolError::Truncated {
                what: "packet header",
                needed: HEADER_LEN,
            })
        })
    }

    /// Reads one whole packet (one piece, up to 16 MiB) out of the buffer.
    pub(crate) async fn read_packet(&mut self) -> Result<Packet, SessionError> {
        let header = self.peek_header().await?;
        self.ensure(header.wire_len()).await?;
        let bytes = self.buf.split_to(header.wire_len());
        Ok(Packet { header, bytes })
    }

    /// Reads one packet that must be small (connection phase), failing on
    /// a multi-packet payload.
    pub(crate) async fn read_small_packet(&mut self) -> Result<Packet, SessionError> {
        let packet = self.read_packet().await?;
        if packet.header.payload_len == MAX_PAYLOAD_LEN {
            return Err(SessionError::protocol(self.peer)(ProtocolError::TooLarge {
                len: MAX_PAYLOAD_LEN,
                limit: MAX_PAYLOAD_LEN - 1,
            }));
        }
        Ok(packet)
    }

    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(SessionError::io(self.peer))
    }

    /// Moves the next `n` buffered-or-incoming bytes to `to` as they come,
    /// without holding more than one read's worth.
    pub(crate) async fn forward_exact(
        &mut self,
        to: &mut PacketStream,
        mut n: usize,
    ) -> Result<(), SessionError> {
        while n > 0 {
            if self.buf.is_empty() {
                self.fill().await?;
            }
            let take = n.min(self.buf.len());
            to.write_all(&self.buf[..take]).await?;
            self.buf.advance(take);
            n -= take;
        }
        Ok(())
    }

    /// Forwards one logical packet (all its 16 MiB pieces) to `to`,
    /// streaming pieces larger than what is buffered.
    pub(crate) async fn forward_logical_packet(
        &mut self,
        to: &mut PacketStream,
    ) -> Result<PacketHeader, SessionError> {
        let first = self.peek_header().await?;
        let mut header = first;
        loop {
            self.forward_exact(to, header.wire_len()).await?;
            if !header.continues() {
                return Ok(first);
            }
            header = self.peek_header().await?;
        }
    }
}
