//! The byte stream under a [`PacketStream`](crate::io::PacketStream): plain
//! TCP, or TCP upgraded to TLS in the middle of the login (the MySQL
//! protocol starts in the clear and switches after an SSL request).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::compressed::Compressed;

/// Any byte stream a packet stream can run over (an in-memory pipe in
/// unit tests).
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for S {}

/// One connection, whichever way it is carried.
pub(crate) enum Transport {
    Plain(TcpStream),
    /// A client's connection, Sluice holding the server end of the TLS
    /// session.
    ClientTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// A backend connection, Sluice holding the client end.
    BackendTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// A client's connection in the compressed protocol, over any of the
    /// others.
    Compressed(Box<Compressed<Transport>>),
    /// Any other stream: no socket address, no TLS upgrade.
    Other(Box<dyn ByteStream>),
    /// What is left of a connection whose TLS upgrade failed: reads see
    /// the end of the stream, writes fail.
    Closed,
}

impl Transport {
    /// Whether the bytes travel encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        match self {
            Transport::ClientTls(_) | Transport::BackendTls(_) => true,
            Transport::Compressed(s) => s.get_ref().is_tls(),
            Transport::Plain(_) | Transport::Other(_) | Transport::Closed => false,
        }
    }

    /// Whether written bytes may wait in a buffer until flushed (a TLS
    /// record, a compressed packet).
    pub(crate) fn holds_writes(&self) -> bool {
        !matches!(
            self,
            Transport::Plain(_) | Transport::Other(_) | Transport::Closed
        )
    }

    /// The address of the peer, through whatever layers carry it.
    pub(crate) fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Transport::Plain(s) => s.peer_addr(),
            Transport::ClientTls(s) => s.get_ref().0.peer_addr(),
            Transport::BackendTls(s) => s.get_ref().0.peer_addr(),
            Transport::Compressed(s) => s.get_ref().peer_addr(),
            Transport::Other(_) | Transport::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::BackendTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Compressed(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Other(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::BackendTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Compressed(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Other(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::ClientTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Transport::BackendTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Transport::Compressed(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Transport::Other(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Transport::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::ClientTls(s) => s.is_write_vectored(),
            Transport::BackendTls(s) => s.is_write_vectored(),
            Transport::Compressed(_) => false,
            Transport::Other(s) => s.is_write_vectored(),
            Transport::Closed => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::BackendTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Compressed(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Other(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::BackendTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Compressed(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Other(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Closed => Poll::Ready(Ok(())),
        }
    }
}
