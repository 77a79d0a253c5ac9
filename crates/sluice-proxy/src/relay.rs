//! Streams a server response to the client while the response tracker
//! says where it ends. Bytes are forwarded in the chunks they were read
//! in; only the first bytes of each packet are looked at, and packets
//! larger than [`STREAM_OVER`] are passed through without being held whole.

use bytes::Buf;
use sluice_protocol::packet::{PacketHeader, HEADER_LEN};
use sluice_protocol::response::{Event, Next, ResponseTracker, HEAD_LEN};

use crate::error::{Peer, SessionError};
use crate::io::PacketStream;

/// Packets with a larger payload are streamed instead of buffered whole.
const STREAM_OVER: usize = 256 * 1024;

/// Receives what each packet of the response was; `payload` is the whole
/// payload when it was held whole.
pub(crate) trait ResponseObserver {
    fn observe(&mut self, event: Event, payload: Option<&[u8]>);
}

/// Relays server packets to the client until the tracker wants something
/// other than another server packet, and returns that.
pub(crate) async fn relay_response(
    backend: &mut PacketStream,
    client: &mut PacketStream,
    tracker: &mut ResponseTracker,
    observer: &mut impl ResponseObserver,
) -> Result<Next, SessionError> {
    // Whether the next packet continues a 16 MiB piece rather than
    // starting a logical packet.
    let mut continuing = false;
    loop {
        let mut pos = 0;
        let mut stream_rest = 0;
        let mut finished = None;
        while finished.is_none() {
            let Some(header) = PacketHeader::parse(&backend.buf[pos..]) else {
                break;
            };
            let available = backend.buf.len() - pos - HEADER_LEN;
            let starts_packet = !continuing;
            if available >= header.payload_len {
                let payload = &backend.buf[pos + HEADER_LEN..pos + header.wire_len()];
                pos += header.wire_len();
                continuing = header.continues();
                if starts_packet {
                    let observed = tracker
                        .on_packet(payload, header.payload_len)
                        .map_err(SessionError::protocol(Peer::Backend))?;
                    let whole = (!header.continues()).then_some(payload);
                    observer.observe(observed.event, whole);
                    if observed.next != Next::ServerPacket {
                        finished = Some(observed.next);
                    }
                }
            } else if header.payload_len > STREAM_OVER && (!starts_packet || available >= HEAD_LEN)
            {
                if starts_packet {
                    let head = &backend.buf[pos + HEADER_LEN..];
                    let observed = tracker
                        .on_packet(head, header.payload_len)
                        .map_err(SessionError::protocol(Peer::Backend))?;
                    observer.observe(observed.event, None);
                    if observed.next != Next::ServerPacket {
                        finished = Some(observed.next);
                    }
                }
                continuing = header.continues();
                stream_rest = header.payload_len - available;
                pos = backend.buf.len();
                break;
            } else {
                break;
            }
        }
        if pos > 0 {
            client.write_all(&backend.buf[..pos]).await?;
            backend.buf.advance(pos);
        }
        if stream_rest > 0 {
            backend.forward_exact(client, stream_rest).await?;
        }
        if let Some(next) = finished {
            return Ok(next);
        }
        if stream_rest == 0 {
            backend.fill().await?;
        }
    }
}

/// Relays the client's packets of a local-infile transfer to the backend,
/// up to and including the empty packet that ends it.
pub(crate) async fn relay_client_file(
    client: &mut PacketStream,
    backend: &mut PacketStream,
) -> Result<(), SessionError> {
    loop {
        let header = client.forward_logical_packet(backend).await?;
        if header.payload_len == 0 {
            return Ok(());
        }
    }
}
