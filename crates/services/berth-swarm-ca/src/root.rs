use std::fmt;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::node::{NodeCert, NodeIdentity, Role, parse_first_cert};
use crate::{CaError, id};

/// swarmkit's defaults: node certificates live 90 days, at least an hour.
pub const DEFAULT_NODE_CERT_EXPIRY: Duration = Duration::from_secs(90 * 24 * 3600);
pub const MIN_NODE_CERT_EXPIRY: Duration = Duration::from_secs(3600);
/// The root lives 20 years, as swarmkit's.
const ROOT_EXPIRY: Duration = Duration::from_secs(630_720_000);
/// Certificates start an hour in the past, so that a peer whose clock is a
/// little behind still takes them.
const BACKDATE: Duration = Duration::from_secs(3600);
const ROOT_CN: &str = "swarm-ca";

/// The sha256 of the root CA's PEM bytes: what join tokens carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RootDigest(pub [u8; 32]);

impl RootDigest {
    pub fn of_pem(pem: &str) -> RootDigest {
        RootDigest(Sha256::digest(pem.as_bytes()).into())
    }
}

impl fmt::Display for RootDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

/// The cluster's root of trust: its certificate, and its key on managers
/// (workers and external-CA clusters hold only the certificate).
pub struct RootCa {
    pub(crate) cert_pem: String,
    pub(crate) key: Option<KeyPair>,
    /// while a rotation runs: this root signed by the old one, which
    /// issued chains carry
    pub(crate) intermediate: Option<String>,
}

impl fmt::Debug for RootCa {
    // never the key
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCa")
            .field("digest", &self.digest().to_string())
            .field("can_sign", &self.can_sign())
            .finish()
    }
}

impl RootCa {
    /// A new self-signed root: ECDSA P-256, CN `swarm-ca`, 20 years.
    pub fn generate() -> Result<RootCa, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, ROOT_CN);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, ROOT_EXPIRY)?;
        let cert = params.self_signed(&key)?;
        Ok(RootCa {
            cert_pem: cert.pem(),
            key: Some(key),
            intermediate: None,
        })
    }

    /// A root from its PEM certificate and, when this node may sign, its
    /// key; the certificate must be a CA and the key must be its own.
    pub fn from_pem(cert_pem: &str, key_pem: Option<&str>) -> Result<RootCa, CaError> {
        let cert = parse_first_cert(cert_pem)?;
        if !cert.is_ca {
            return Err(CaError::InvalidCertificate("not a CA certificate".into()));
        }
        let key = match key_pem {
            Some(pem) => {
                let key = KeyPair::from_pem(pem)
                    .map_err(|e| CaError::InvalidCertificate(format!("the CA key: {e}")))?;
                if key.public_key_raw() != cert.public_key_raw.as_slice() {
                    return Err(CaError::InvalidCertificate(
                        "the key does not match the CA certificate".into(),
                    ));
                }
                Some(key)
            }
            None => None,
        };
        Ok(RootCa {
            cert_pem: cert_pem.to_string(),
            key,
            intermediate: None,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The key in PEM, when this root can sign.
    pub fn key_pem(&self) -> Option<String> {
        self.key.as_ref().map(KeyPair::serialize_pem)
    }

    pub fn can_sign(&self) -> bool {
        self.key.is_some()
    }

    /// The root's subject and public key info, DER: Docker's `TLSInfo`
    /// shows them (base64) so nodes can tell which root they chain to.
    pub fn issuer_der(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let parsed = parse_first_cert(&self.cert_pem).ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(&parsed.der).ok()?;
        Some((
            cert.tbs_certificate.subject.as_raw().to_vec(),
            cert.public_key().raw.to_vec(),
        ))
    }

    pub fn digest(&self) -> RootDigest {
        RootDigest::of_pem(&self.cert_pem)
    }

    /// Signs a node's request. The CA decides the subject (CN = node id,
    /// OU = role, O = cluster id) and the names: the request contributes
    /// only its public key, so a node cannot ask for another's identity.
    pub fn sign(
        &self,
        csr_pem: &str,
        who: &NodeIdentity,
        expiry: Duration,
    ) -> Result<NodeCert, CaError> {
        let key = self.key.as_ref().ok_or(CaError::NoSigningKey)?;
        if expiry < MIN_NODE_CERT_EXPIRY {
            return Err(CaError::ExpiryTooShort {
                min: MIN_NODE_CERT_EXPIRY.as_secs(),
                got: expiry.as_secs(),
            });
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::InvalidRequest(e.to_string()))?;
        let params = node_params(who, expiry)?;
        // the leaf names this root as its issuer either way: the
        // cross-signed certificate has this root's subject and key
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, key)?;
        let cert = params.signed_by(&csr.public_key, &issuer)?;
        let mut chain = cert.pem();
        if let Some(inter) = &self.intermediate {
            chain.push_str(inter);
        }
        NodeCert::parse(&chain)
    }
}

/// The certificate a node gets: usable as TLS server and client, with its
/// role and id as DNS names (peers dial managers by the name
/// `swarm-manager`; managers also answer as `swarm-ca`).
fn node_params(who: &NodeIdentity, expiry: Duration) -> Result<CertificateParams, CaError> {
    let mut names = vec![who.role.ou().to_string(), who.node_id.clone()];
    if who.role == Role::Manager {
        names.push(ROOT_CN.to_string());
    }
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, &who.node_id);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, who.role.ou());
    params
        .distinguished_name
        .push(DnType::OrganizationName, &who.cluster_id);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    set_validity(&mut params, expiry)?;
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, lifetime: Duration) -> Result<(), CaError> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
    let mut serial = [0u8; 16];
    id::random(&mut serial)?;
    serial[0] &= 0x7f; // a positive INTEGER
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(())
}

impl RootCa {
    /// Whether `cert` chains to this root and is valid now: signed by it
    /// directly, or through the chain's intermediate (during a rotation).
    pub fn verifies(&self, cert: &NodeCert) -> bool {
        let (Ok(roots), Ok(chain)) = (pem_blocks(&self.cert_pem), pem_blocks(&cert.chain_pem))
        else {
            return false;
        };
        fn parse(der: Option<&Vec<u8>>) -> Option<x509_parser::certificate::X509Certificate<'_>> {
            der.and_then(|d| x509_parser::parse_x509_certificate(d).ok())
                .map(|(_, c)| c)
        }
        let (Some(root), Some(leaf)) = (parse(roots.first()), parse(chain.first())) else {
            return false;
        };
        if !leaf.validity().is_valid() {
            return false;
        }
        if leaf.verify_signature(Some(root.public_key())).is_ok() {
            return true;
        }
        let Some(inter) = parse(chain.get(1)) else {
            return false;
        };
        inter.is_ca()
            && inter.validity().is_valid()
            && leaf.verify_signature(Some(inter.public_key())).is_ok()
            && inter.verify_signature(Some(root.public_key())).is_ok()
    }
}

/// The DER of every certificate in a PEM bundle.
pub(crate) fn pem_blocks(pem: &str) -> Result<Vec<Vec<u8>>, CaError> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|b| {
            b.map(|b| b.contents)
                .map_err(|e| CaError::InvalidCertificate(format!("reading PEM: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeKey;

    fn who(role: Role) -> NodeIdentity {
        NodeIdentity {
            node_id: "n0de1d".into(),
            role,
            cluster_id: "c1uster".into(),
        }
    }

    #[test]
    fn a_new_root_is_a_p256_ca_that_round_trips_through_pem() {
        let root = RootCa::generate().unwrap();
        let key = root.key_pem().unwrap();
        assert!(root.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let again = RootCa::from_pem(root.cert_pem(), Some(&key)).unwrap();
        assert_eq!(again.digest(), root.digest());
        assert!(again.can_sign());
        let cert = parse_first_cert(root.cert_pem()).unwrap();
        assert!(cert.is_ca);
        assert_eq!(cert.common_name.as_deref(), Some("swarm-ca"));
        let (subject, spki) = root.issuer_der().unwrap();
        assert!(
            subject.windows(8).any(|w| w == b"swarm-ca"),
            "subject DER names the CA"
        );
        assert!(
            spki.ends_with(&cert.public_key_raw),
            "SPKI DER carries the key"
        );
    }

    #[test]
    fn a_root_refuses_a_key_that_is_not_its_own_and_a_leaf_certificate() {
        let root = RootCa::generate().unwrap();
        let other = RootCa::generate().unwrap();
        let err = RootCa::from_pem(root.cert_pem(), other.key_pem().as_deref()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");

        let leaf = root
            .sign(
                &NodeKey::generate().unwrap().csr_pem().unwrap(),
                &who(Role::Worker),
                DEFAULT_NODE_CERT_EXPIRY,
            )
            .unwrap();
        let err = RootCa::from_pem(&leaf.chain_pem, None).unwrap_err();
        assert!(err.to_string().contains("not a CA"), "{err}");
    }

    #[test]
    fn the_ca_not_the_request_decides_the_subject() {
        let root = RootCa::generate().unwrap();
        let node = NodeKey::generate().unwrap();
        let cert = root
            .sign(
                &node.csr_pem().unwrap(),
                &who(Role::Manager),
                DEFAULT_NODE_CERT_EXPIRY,
            )
            .unwrap();
        assert_eq!(cert.identity, who(Role::Manager));
        assert!(root.verifies(&cert));
        let life = cert.not_after.duration_since(cert.not_before).unwrap();
        assert_eq!(life, DEFAULT_NODE_CERT_EXPIRY + BACKDATE);
        let names = parse_first_cert(&cert.chain_pem).unwrap().dns_names;
        assert_eq!(names, ["swarm-manager", "n0de1d", "swarm-ca"]);
    }

    #[test]
    fn only_a_root_with_its_key_signs_and_never_too_short_lives() {
        let root = RootCa::generate().unwrap();
        let csr = NodeKey::generate().unwrap().csr_pem().unwrap();
        let err = root
            .sign(&csr, &who(Role::Worker), Duration::from_secs(60))
            .unwrap_err();
        assert!(matches!(err, CaError::ExpiryTooShort { .. }), "{err}");
        let public = RootCa::from_pem(root.cert_pem(), None).unwrap();
        let err = public
            .sign(&csr, &who(Role::Worker), DEFAULT_NODE_CERT_EXPIRY)
            .unwrap_err();
        assert!(matches!(err, CaError::NoSigningKey), "{err}");
        let err = root
            .sign(
                "not a request",
                &who(Role::Worker),
                DEFAULT_NODE_CERT_EXPIRY,
            )
            .unwrap_err();
        assert!(matches!(err, CaError::InvalidRequest(_)), "{err}");
    }

    #[test]
    fn a_certificate_from_another_root_is_not_verified() {
        let root = RootCa::generate().unwrap();
        let other = RootCa::generate().unwrap();
        let csr = NodeKey::generate().unwrap().csr_pem().unwrap();
        let cert = other
            .sign(&csr, &who(Role::Worker), DEFAULT_NODE_CERT_EXPIRY)
            .unwrap();
        assert!(!root.verifies(&cert));
        assert!(other.verifies(&cert));
    }
}
