//! A connection with a read buffer, read packet-wise without copying:
//! bytes are read into one buffer and forwarded from it.

use bytes::{Buf, Bytes, BytesMut};
use sluice_protocol::packet::{PacketHeader, HEADER_LEN, MAX_PAYLOAD_LEN};
use sluice_protocol::ProtocolError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::compressed::Compressed;
use crate::error::{Peer, SessionError};
use crate::transport::{ByteStream, Transport};

/// Buffer space reserved before each read.
const READ_CHUNK: usize = 16 * 1024;

/// One side of a session.
pub(crate) struct PacketStream {
    pub(crate) stream: Transport,
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

    /// The payload, kept without a copy.
    pub(crate) fn into_payload(mut self) -> Bytes {
        self.bytes.advance(HEADER_LEN);
        self.bytes.freeze()
    }
}

impl PacketStream {
    pub(crate) fn new(stream: TcpStream, peer: Peer) -> PacketStream {
        // Small packets must leave at once: latency is the product.
        let _ = stream.set_nodelay(true);
        PacketStream {
            stream: Transport::Plain(stream),
            buf: BytesMut::with_capacity(READ_CHUNK),
            peer,
        }
    }

    /// A packet stream over any byte stream: the relay, the exchange and
    /// the leader run over in-memory pipes in unit tests, fed bytes
    /// captured from a real server.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn over(stream: impl ByteStream + 'static, peer: Peer) -> PacketStream {
        PacketStream {
            stream: Transport::Other(Box::new(stream)),
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
        // Most packets arrive whole, often several at once (a result's
        // rows): taken without the waiting machinery below.
        if let Some(packet) = self.buffered_packet() {
            return Ok(packet);
        }
        let header = self.peek_header().await?;
        self.ensure(header.wire_len()).await?;
        let bytes = self.buf.split_to(header.wire_len());
        Ok(Packet { header, bytes })
    }

    /// The next packet, when the buffer holds all of it.
    fn buffered_packet(&mut self) -> Option<Packet> {
        let header = PacketHeader::parse(&self.buf)?;
        if self.buf.len() < header.wire_len() {
            return None;
        }
        let bytes = self.buf.split_to(header.wire_len());
        Some(Packet { header, bytes })
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
            .map_err(SessionError::io(self.peer))?;
        if self.stream.holds_writes() {
            // A TLS stream may hold the last record back until flushed,
            // a compressed one the last packet.
            self.stream
                .flush()
                .await
                .map_err(SessionError::io(self.peer))?;
        }
        Ok(())
    }

    /// Reads one small packet without reading past its end. Used for the
    /// packet that may be an SSL request: the TLS handshake bytes right
    /// behind it must stay in the socket for the TLS layer.
    pub(crate) async fn read_packet_exactly(&mut self) -> Result<Packet, SessionError> {
        let header = self.peek_header_exactly().await?;
        while self.buf.len() < header.wire_len() {
            self.read_at_most(header.wire_len() - self.buf.len())
                .await?;
        }
        let bytes = self.buf.split_to(header.wire_len());
        Ok(Packet { header, bytes })
    }

    /// [`Self::peek_header`] without reading past the header.
    pub(crate) async fn peek_header_exactly(&mut self) -> Result<PacketHeader, SessionError> {
        while self.buf.len() < HEADER_LEN {
            self.read_at_most(HEADER_LEN - self.buf.len()).await?;
        }
        self.peek_header().await
    }

    async fn read_at_most(&mut self, n: usize) -> Result<(), SessionError> {
        self.buf.reserve(n);
        let got = (&mut self.stream)
            .take(n as u64)
            .read_buf(&mut self.buf)
            .await
            .map_err(SessionError::io(self.peer))?;
        if got == 0 {
            return Err(SessionError::io(self.peer)(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        Ok(())
    }

    /// The peer's IP address as MariaDB writes it in messages (IPv4
    /// addresses mapped into IPv6 shown as IPv4).
    pub(crate) fn peer_host(&self) -> String {
        let addr = self.stream.peer_addr();
        match addr.map(|a| a.ip()) {
            Ok(std::net::IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
            Ok(ip) => ip.to_string(),
            Err(_) => "unknown".to_string(),
        }
    }

    /// Whether this connection is encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Switches a client connection to the compressed protocol once its
    /// login is done; bytes it sent past the login are compressed already.
    pub(crate) fn start_compression(&mut self) {
        let stream = std::mem::replace(&mut self.stream, Transport::Closed);
        let already_read = self.buf.split();
        self.stream = Transport::Compressed(Box::new(Compressed::new(stream, &already_read)));
    }

    /// Runs the server side of a TLS handshake on a plain client
    /// connection, in place. Nothing may be buffered: the client's first
    /// TLS bytes must still be in the socket. A failed handshake leaves
    /// the stream closed.
    pub(crate) async fn accept_tls(
        &mut self,
        acceptor: &tokio_rustls::TlsAcceptor,
    ) -> Result<(), SessionError> {
        let tcp = self.take_plain()?;
        let tls = acceptor
            .accept(tcp)
            .await
            .map_err(SessionError::io(self.peer))?;
        self.stream = Transport::ClientTls(Box::new(tls));
        Ok(())
    }

    /// Runs the client side of a TLS handshake on a plain backend
    /// connection, in place; a failed handshake leaves it closed.
    pub(crate) async fn connect_tls(
        &mut self,
        connector: &tokio_rustls::TlsConnector,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<(), SessionError> {
        let tcp = self.take_plain()?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(SessionError::io(self.peer))?;
        self.stream = Transport::BackendTls(Box::new(tls));
        Ok(())
    }

    /// Takes the TCP stream to upgrade, refusing a second upgrade and
    /// bytes that arrived ahead of the TLS handshake (they would be lost
    /// to it).
    fn take_plain(&mut self) -> Result<TcpStream, SessionError> {
        let refuse = |detail: &str| {
            SessionError::protocol(self.peer)(ProtocolError::Malformed {
                what: "TLS upgrade",
                detail: detail.to_string(),
            })
        };
        if !self.buf.is_empty() {
            return Err(refuse("data arrived ahead of the TLS handshake"));
        }
        match std::mem::replace(&mut self.stream, Transport::Closed) {
            Transport::Plain(tcp) => Ok(tcp),
            other => {
                let error = refuse("TLS requested on an encrypted connection");
                self.stream = other;
                Err(error)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn packets_come_out_whole_however_the_bytes_arrive() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let mut stream = PacketStream::over(near, Peer::Backend);
        // Two whole packets in one write, then one split mid-header and
        // mid-payload.
        far.write_all(&[1, 0, 0, 0, b'a', 2, 0, 0, 1, b'b', b'c', 3])
            .await
            .unwrap();
        let writer = tokio::spawn(async move {
            for piece in [&[0u8, 0][..], &[2, b'd', b'e'], b"f"] {
                tokio::task::yield_now().await;
                far.write_all(piece).await.unwrap();
            }
            far
        });
        for (seq, payload) in [(0, &b"a"[..]), (1, b"bc"), (2, b"def")] {
            let packet = stream.read_packet().await.unwrap();
            assert_eq!((packet.header.seq, packet.payload()), (seq, payload));
        }
        assert!(stream.buf.is_empty());
        drop(writer.await.unwrap());
        assert!(stream.read_packet().await.is_err(), "a closed peer ends it");
    }
}
