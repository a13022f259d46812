use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::CaError;

/// What a node is allowed to be; its certificate's OU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn ou(self) -> &'static str {
        match self {
            Role::Manager => "swarm-manager",
            Role::Worker => "swarm-worker",
        }
    }

    pub fn from_ou(ou: &str) -> Option<Role> {
        match ou {
            "swarm-manager" => Some(Role::Manager),
            "swarm-worker" => Some(Role::Worker),
            _ => None,
        }
    }
}

/// Who a certificate says its holder is.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NodeIdentity {
    pub node_id: String,
    pub role: Role,
    pub cluster_id: String,
}

/// A node's own key (P-256), from which it asks the CA for certificates.
pub struct NodeKey {
    key: KeyPair,
}

impl NodeKey {
    pub fn generate() -> Result<NodeKey, CaError> {
        Ok(NodeKey {
            key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
        })
    }

    pub fn from_pem(pem: &str) -> Result<NodeKey, CaError> {
        let key = KeyPair::from_pem(pem)
            .map_err(|e| CaError::InvalidCertificate(format!("the node key: {e}")))?;
        Ok(NodeKey { key })
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A request with an empty subject: the CA fills it in.
    pub fn csr_pem(&self) -> Result<String, CaError> {
        let req = CertificateParams::default().serialize_request(&self.key)?;
        Ok(req.pem()?)
    }

    pub(crate) fn public_key_raw(&self) -> &[u8] {
        self.key.public_key_raw()
    }
}

/// A node certificate as issued: the PEM chain (leaf first) and what it
/// says.
#[derive(Clone, Debug)]
pub struct NodeCert {
    pub chain_pem: String,
    pub identity: NodeIdentity,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl NodeCert {
    /// Reads the leaf of a chain; a certificate without a node identity
    /// (CN, a known OU, O) is refused.
    pub fn parse(chain_pem: &str) -> Result<NodeCert, CaError> {
        let leaf = parse_first_cert(chain_pem)?;
        Ok(NodeCert {
            chain_pem: chain_pem.to_string(),
            identity: leaf.identity()?,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
        })
    }

    /// Whether `key` is the key this certificate was issued for.
    pub fn matches(&self, key: &NodeKey) -> bool {
        parse_first_cert(&self.chain_pem)
            .is_ok_and(|c| c.public_key_raw.as_slice() == key.public_key_raw())
    }
}

/// How long to wait before renewing a certificate valid from `not_before`
/// to `not_after`: a point at `fraction` of the way between 50 % and 80 %
/// of its life (swarmkit's window, spread so that nodes don't renew at
/// once), measured from `now`; zero when that point has passed.
pub fn renewal_delay(
    not_before: SystemTime,
    not_after: SystemTime,
    now: SystemTime,
    fraction: f64,
) -> Duration {
    let life = not_after.duration_since(not_before).unwrap_or_default();
    let at = life.mul_f64(0.5 + 0.3 * fraction.clamp(0.0, 1.0));
    (not_before + at).duration_since(now).unwrap_or_default()
}

/// The fields of a certificate berth looks at.
pub(crate) struct ParsedCert {
    pub is_ca: bool,
    pub common_name: Option<String>,
    pub org_unit: Option<String>,
    pub org: Option<String>,
    #[cfg_attr(not(test), allow(dead_code))] // the tests check the names the CA gives
    pub dns_names: Vec<String>,
    pub public_key_raw: Vec<u8>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub der: Vec<u8>,
}

impl ParsedCert {
    pub(crate) fn identity(&self) -> Result<NodeIdentity, CaError> {
        let missing = |what: &str| CaError::InvalidCertificate(format!("no {what} in the subject"));
        let ou = self.org_unit.as_deref().ok_or_else(|| missing("OU"))?;
        Ok(NodeIdentity {
            node_id: self.common_name.clone().ok_or_else(|| missing("CN"))?,
            role: Role::from_ou(ou)
                .ok_or_else(|| CaError::InvalidCertificate(format!("unknown role {ou:?}")))?,
            cluster_id: self.org.clone().ok_or_else(|| missing("O"))?,
        })
    }
}

/// The first certificate of a PEM bundle.
pub(crate) fn parse_first_cert(pem: &str) -> Result<ParsedCert, CaError> {
    let block = Pem::iter_from_buffer(pem.as_bytes())
        .next()
        .ok_or_else(|| CaError::InvalidCertificate("no PEM certificate".into()))?
        .map_err(|e| CaError::InvalidCertificate(format!("reading PEM: {e}")))?;
    parse_der(&block.contents)
}

pub(crate) fn parse_der(der: &[u8]) -> Result<ParsedCert, CaError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CaError::InvalidCertificate(format!("parsing: {e}")))?;
    let subject = cert.subject();
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(ParsedCert {
        is_ca: cert.is_ca(),
        common_name: first_str(subject.iter_common_name()),
        org_unit: first_str(subject.iter_organizational_unit()),
        org: first_str(subject.iter_organization()),
        dns_names,
        public_key_raw: cert.public_key().subject_public_key.data.to_vec(),
        not_before: to_system_time(cert.validity().not_before.timestamp()),
        not_after: to_system_time(cert.validity().not_after.timestamp()),
        der: der.to_vec(),
    })
}

fn first_str<'a>(
    mut it: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Option<String> {
    it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
}

fn to_system_time(unix: i64) -> SystemTime {
    match u64::try_from(unix) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_their_ous() {
        for r in [Role::Manager, Role::Worker] {
            assert_eq!(Role::from_ou(r.ou()), Some(r));
        }
        assert_eq!(Role::from_ou("swarm-ca"), None);
    }

    #[test]
    fn renewal_falls_between_half_and_four_fifths_of_the_life() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = start + Duration::from_secs(1000);
        assert_eq!(
            renewal_delay(start, end, start, 0.0),
            Duration::from_secs(500)
        );
        assert_eq!(
            renewal_delay(start, end, start, 1.0),
            Duration::from_secs(800)
        );
        let later = start + Duration::from_secs(600);
        assert_eq!(
            renewal_delay(start, end, later, 0.5),
            Duration::from_secs(50)
        );
        assert_eq!(
            renewal_delay(start, end, end, 0.5),
            Duration::ZERO,
            "overdue: now"
        );
    }

    #[test]
    fn a_node_key_round_trips_and_its_request_parses() {
        let k = NodeKey::generate().unwrap();
        let again = NodeKey::from_pem(&k.key_pem()).unwrap();
        assert_eq!(again.public_key_raw(), k.public_key_raw());
        assert!(k.csr_pem().unwrap().contains("CERTIFICATE REQUEST"));
        assert!(NodeKey::from_pem("garbage").is_err());
    }
}
