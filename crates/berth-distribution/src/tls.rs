//! TLS for registries, as Docker sets it up: the system's roots plus the
//! per-registry files of `<certs.d>/<host[:port]>/` — `*.crt` are CA
//! certificates, a `*.cert` with the `*.key` of the same name is the client
//! certificate. Registries listed as insecure are tried with TLS first,
//! without verification, before plain HTTP (Docker's fallback).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{DistError, Result};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `host`.
pub fn client_config(host: &str, certs_dir: &Path, verify: bool) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| DistError::Other(format!("tls: {e}")))?;
    let builder = if verify {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for c in native.certs {
            let _ = roots.add(c);
        }
        for ca in files_with(certs_dir, host, "crt") {
            let certs = CertificateDer::pem_file_iter(&ca)
                .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| DistError::Other(format!("reading CA {}: {e}", ca.display())))?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| DistError::Other(format!("CA {}: {e}", ca.display())))?;
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    };
    // a client certificate: NAME.cert with NAME.key beside it
    if let Some(cert) = files_with(certs_dir, host, "cert").into_iter().next() {
        let key = cert.with_extension("key");
        let chain = CertificateDer::pem_file_iter(&cert)
            .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| DistError::Other(format!("reading {}: {e}", cert.display())))?;
        let key = PrivateKeyDer::from_pem_file(&key)
            .map_err(|e| DistError::Other(format!("reading {}: {e}", key.display())))?;
        return builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| DistError::Other(format!("client certificate {}: {e}", cert.display())));
    }
    Ok(builder.with_no_client_auth())
}

fn files_with(certs_dir: &Path, host: &str, ext: &str) -> Vec<std::path::PathBuf> {
    let dir = certs_dir.join(host);
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// For registries the user declared insecure: any certificate goes.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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
