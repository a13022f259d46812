//! Root rotation, after swarmkit's: the old root's key cross-signs the
//! new root, and while the rotation runs the CA issues with the new key,
//! sending the cross-signed certificate along as an intermediate. Such a
//! chain verifies against the old root (which every node trusts until the
//! rotation ends) and against the new one (which they trust afterwards),
//! so nodes on either side of the switch keep talking.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::x509::X509Name;

use crate::node::{NodeCert, parse_first_cert};
use crate::root::pem_blocks;
use crate::{CaError, RootCa, id};

/// A root must stay valid this long to be rotated to (swarmkit's
/// `minRootExpiration`, a year).
pub const MIN_ROOT_EXPIRY: Duration = Duration::from_secs(365 * 24 * 3600);

impl RootCa {
    /// The certificate of `new` (its subject, key and validity) signed by
    /// this root's key; `new` needs no key of its own (an external root).
    pub fn cross_sign(&self, new: &RootCa) -> Result<String, CaError> {
        let key = self.key.as_ref().ok_or(CaError::NoSigningKey)?;
        let block = pem_blocks(new.cert_pem())?
            .into_iter()
            .next()
            .ok_or_else(|| CaError::InvalidCertificate("no PEM certificate".into()))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&block)
            .map_err(|e| CaError::InvalidCertificate(format!("parsing: {e}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn_of(cert.subject())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = to_offset(cert.validity().not_before.timestamp());
        params.not_after = to_offset(cert.validity().not_after.timestamp());
        let mut serial = [0u8; 16];
        id::random(&mut serial)?;
        serial[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let new_key = rcgen::SubjectPublicKeyInfo::from_der(cert.public_key().raw)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, key)?;
        Ok(params.signed_by(&new_key, &issuer)?.pem())
    }

    /// This root's key issuing as `cross_signed` (this root's certificate
    /// signed by the root being replaced), which every issued chain
    /// carries.
    pub fn with_intermediate(mut self, cross_signed: &str) -> RootCa {
        self.intermediate = Some(cross_signed.to_string()).filter(|s| !s.is_empty());
        self
    }

    /// Whether this root's key is `key` (PEM).
    pub fn has_key(&self, key_pem: &str) -> bool {
        let Ok(other) = KeyPair::from_pem(key_pem) else {
            return false;
        };
        self.key
            .as_ref()
            .is_some_and(|k| k.public_key_raw() == other.public_key_raw())
    }

    /// When the root's certificate stops being valid.
    pub fn not_after(&self) -> Result<SystemTime, CaError> {
        Ok(parse_first_cert(&self.cert_pem)?.not_after)
    }

    /// How many certificates the PEM holds.
    pub fn cert_count(pem: &str) -> usize {
        pem_blocks(pem).map(|b| b.len()).unwrap_or(0)
    }

    /// The subject and public key (DER) of whatever issued `cert`: the
    /// chain's intermediate when it has one, else this root when it
    /// signed it. What Docker's `TLSInfo` shows.
    pub fn issuer_of(&self, cert: &NodeCert) -> Option<(Vec<u8>, Vec<u8>)> {
        let blocks = pem_blocks(&cert.chain_pem).ok()?;
        match blocks.get(1) {
            Some(der) => subject_and_key(der),
            None => self.verifies(cert).then(|| self.issuer_der()).flatten(),
        }
    }
}

pub(crate) fn subject_and_key(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some((
        c.tbs_certificate.subject.as_raw().to_vec(),
        c.public_key().raw.to_vec(),
    ))
}

/// A name as rcgen writes it back with the same string types, so that a
/// cross-signed certificate's subject is byte for byte its root's.
fn dn_of(name: &X509Name<'_>) -> Result<DistinguishedName, CaError> {
    let bad = |what: &str| CaError::InvalidCertificate(format!("the CA subject: {what}"));
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        for attr in rdn.iter() {
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .ok_or_else(|| bad("an attribute type"))?
                .collect();
            let data = attr.attr_value().data;
            let text = std::str::from_utf8(data).map_err(|_| bad("not text"))?;
            let value = match attr.attr_value().header.tag() {
                Tag::Utf8String => DnValue::Utf8String(text.to_string()),
                Tag::PrintableString => {
                    DnValue::PrintableString(text.try_into().map_err(|_| bad("printable"))?)
                }
                Tag::Ia5String => DnValue::Ia5String(text.try_into().map_err(|_| bad("ia5"))?),
                _ => return Err(bad("an unsupported string type")),
            };
            dn.push(DnType::from_oid(&oid), value);
        }
    }
    Ok(dn)
}

fn to_offset(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        DEFAULT_NODE_CERT_EXPIRY, NodeIdentity, NodeKey, Role, client_config, server_config,
    };

    fn who() -> NodeIdentity {
        NodeIdentity {
            node_id: "n0de".into(),
            role: Role::Manager,
            cluster_id: "c1".into(),
        }
    }

    fn issue(ca: &RootCa) -> (NodeCert, NodeKey) {
        let key = NodeKey::generate().unwrap();
        let cert = ca
            .sign(&key.csr_pem().unwrap(), &who(), DEFAULT_NODE_CERT_EXPIRY)
            .unwrap();
        (cert, key)
    }

    #[test]
    fn a_rotating_ca_issues_chains_that_both_roots_verify() {
        let old = RootCa::generate().unwrap();
        let new = RootCa::generate().unwrap();
        let cross = old.cross_sign(&new).unwrap();
        let new_public = RootCa::from_pem(new.cert_pem(), None).unwrap();
        let old_public = RootCa::from_pem(old.cert_pem(), None).unwrap();
        let signer = new.with_intermediate(&cross);
        let (cert, key) = issue(&signer);
        assert_eq!(RootCa::cert_count(&cert.chain_pem), 2);
        assert!(
            old_public.verifies(&cert),
            "old root, through the cross-signed"
        );
        assert!(new_public.verifies(&cert), "new root, directly");
        // the issuer shown is the new root's, whichever root is trusted
        let issuer = old_public.issuer_of(&cert).unwrap();
        assert_eq!(Some(issuer), new_public.issuer_der());
        // TLS: a node trusting the old root and one trusting the new one
        // accept each other's rotated certificates
        let server = server_config(&old_public, &cert, &key).unwrap();
        let client = client_config(&new_public, Some((&cert, &key))).unwrap();
        crate::tls::tests::handshake(server, client).unwrap();
        let (cert2, key2) = issue(&signer);
        let server = server_config(&new_public, &cert2, &key2).unwrap();
        let client = client_config(&old_public, Some((&cert, &key))).unwrap();
        assert!(
            crate::tls::tests::handshake(server, client)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_certificate_of_the_old_root_is_not_the_new_roots() {
        let old = RootCa::generate().unwrap();
        let new = RootCa::generate().unwrap();
        let (cert, _) = issue(&old);
        let new_public = RootCa::from_pem(new.cert_pem(), None).unwrap();
        assert!(!new_public.verifies(&cert));
        assert_eq!(new_public.issuer_of(&cert), None);
        assert_eq!(old.issuer_of(&cert), old.issuer_der());
        assert!(new.has_key(&new.key_pem().unwrap()));
        assert!(!new.has_key(&old.key_pem().unwrap()));
        assert!(new.not_after().unwrap() > SystemTime::now() + MIN_ROOT_EXPIRY);
    }
}
