//! TLS on both legs. Sluice terminates the client's TLS session (it has to
//! read the statements) and opens its own to the backend, so the two legs
//! are configured, and may differ, independently.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} from {path}: {reason}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{path} holds no {what}")]
    Empty { what: &'static str, path: PathBuf },
    #[error("the certificate and key do not make a usable server identity: {0}")]
    Identity(rustls::Error),
    #[error("CA certificate in {path} is not usable: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The client leg: the certificate Sluice presents, and whether clients
/// that do not ask for TLS are turned away.
#[derive(Clone)]
pub struct ClientTls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl ClientTls {
    /// Loads a PEM certificate chain and its private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ClientTls, TlsError> {
        let chain = read_certs(cert, "certificate")?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Pem {
            what: "private key",
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Identity)?;
        Ok(ClientTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

/// When Sluice uses TLS to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendTlsMode {
    /// Never.
    Off,
    /// When the backend offers it, without checking its certificate.
    Preferred,
    /// Always, without checking the certificate; a backend that does not
    /// offer TLS is an error.
    Required,
    /// Always, and the certificate must chain to the configured CA and
    /// name the server.
    Verify,
}

/// The backend leg.
#[derive(Clone)]
pub struct BackendTls {
    pub(crate) mode: BackendTlsMode,
    connector: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl BackendTls {
    /// No TLS to the backend.
    pub fn off() -> BackendTls {
        BackendTls {
            mode: BackendTlsMode::Off,
            connector: None,
        }
    }

    /// Builds the backend leg. `ca` is required for [`BackendTlsMode::Verify`]
    /// and ignored otherwise; `server_name` is the name the certificate
    /// must carry (a host name or an IP address).
    pub fn new(
        mode: BackendTlsMode,
        ca: Option<&Path>,
        server_name: &str,
    ) -> Result<BackendTls, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let config = match mode {
            BackendTlsMode::Off => return Ok(BackendTls::off()),
            BackendTlsMode::Preferred | BackendTlsMode::Required => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                .with_no_client_auth(),
            BackendTlsMode::Verify => {
                let path = ca.ok_or_else(|| TlsError::Ca {
                    path: PathBuf::new(),
                    reason: "tls = verify needs a CA file".into(),
                })?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(path, "CA certificate")? {
                    roots.add(cert).map_err(|e| TlsError::Ca {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
        Ok(BackendTls {
            mode,
            connector: Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name)),
        })
    }

    pub(crate) fn connector(&self) -> Option<&(tokio_rustls::TlsConnector, ServerName<'static>)> {
        self.connector.as_ref()
    }
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The `preferred` and `required` modes encrypt without authenticating
/// the server, as MariaDB's own clients do without
/// `--ssl-verify-server-cert`. The handshake signatures are still checked,
/// so the session keys belong to whoever holds the presented key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named_in_the_error() {
        let err = ClientTls::from_pem_files(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }

    #[test]
    fn verify_needs_a_ca() {
        let err = BackendTls::new(BackendTlsMode::Verify, None, "db").unwrap_err();
        assert!(err.to_string().contains("CA"), "{err}");
    }

    #[test]
    fn off_builds_nothing() {
        let tls = BackendTls::new(BackendTlsMode::Off, None, "ignored").unwrap();
        assert!(tls.connector().is_none());
    }

    #[test]
    fn unverified_modes_accept_an_ip_address_name() {
        let tls = BackendTls::new(BackendTlsMode::Preferred, None, "127.0.0.1").unwrap();
        assert!(tls.connector().is_some());
    }
}
