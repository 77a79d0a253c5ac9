//! Throwaway certificates for TLS tests: a CA and a server certificate it
//! signed, for `localhost` and 127.0.0.1, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// PEM files in a directory of their own.
#[derive(Debug, Clone)]
pub struct TestCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    /// Generates a fresh CA and server certificate under `dir`.
    pub fn generate(dir: &Path) -> TestCerts {
        std::fs::create_dir_all(dir).expect("create the certificate directory");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Sluice test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");

        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("sign the server certificate");

        let certs = TestCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("server-cert.pem"),
            key: dir.join("server-key.pem"),
        };
        std::fs::write(&certs.ca, ca_cert.pem()).expect("write ca.pem");
        std::fs::write(&certs.cert, cert.pem()).expect("write server-cert.pem");
        std::fs::write(&certs.key, key.serialize_pem()).expect("write server-key.pem");
        certs
    }

    /// `mariadbd` options that turn TLS on with these files.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            format!("--ssl-ca={}", self.ca.display()),
            format!("--ssl-cert={}", self.cert.display()),
            format!("--ssl-key={}", self.key.display()),
        ]
    }
}
