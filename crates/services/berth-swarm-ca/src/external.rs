//! What the managers need to use a certificate an external CA signed:
//! PEMs compared as swarmkit's `NormalizePEMs` compares them, and the
//! checks that the answer is the certificate the manager asked for.

use sha2::{Digest, Sha256};

use crate::node::parse_first_cert;
use crate::root::pem_blocks;
use crate::{CaError, NodeCert, NodeIdentity, RootCa};

/// A key for a PEM bundle that ignores its layout (line breaks, text
/// around the blocks): the sha256 of its certificates' DER; empty when it
/// holds none.
pub fn pem_fingerprint(pem: &str) -> String {
    match pem_blocks(pem) {
        Ok(blocks) if !blocks.is_empty() => {
            let mut h = Sha256::new();
            for b in blocks {
                h.update(&b);
            }
            hex::encode(h.finalize())
        }
        _ => String::new(),
    }
}

/// Checks a chain an external CA returned for `csr_pem`: the subject the
/// manager asked for, the requester's key, and a chain to `root`.
pub fn check_external_cert(
    chain_pem: &str,
    csr_pem: &str,
    who: &NodeIdentity,
    root: &RootCa,
) -> Result<NodeCert, CaError> {
    let bad = |why: &str| CaError::InvalidCertificate(format!("from the external CA: {why}"));
    let cert = NodeCert::parse(chain_pem)?;
    if &cert.identity != who {
        return Err(bad(&format!(
            "its subject is {:?}, asked for {:?}",
            cert.identity, who
        )));
    }
    let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| CaError::InvalidRequest(e.to_string()))?;
    let leaf = parse_first_cert(chain_pem)?;
    if leaf.public_key_raw.as_slice() != rcgen::PublicKeyData::der_bytes(&csr.public_key) {
        return Err(bad("it is not for the requested key"));
    }
    if !root.verifies(&cert) {
        return Err(bad("it does not chain to the desired root CA"));
    }
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{NodeKey, Role};

    fn who(id: &str) -> NodeIdentity {
        NodeIdentity {
            node_id: id.into(),
            role: Role::Worker,
            cluster_id: "c".into(),
        }
    }

    #[test]
    fn fingerprints_ignore_layout() {
        let r = RootCa::generate().unwrap();
        let pem = r.cert_pem();
        let spaced = format!("\n\n{}\n", pem.replace('\n', "\r\n"));
        assert_eq!(pem_fingerprint(pem), pem_fingerprint(&spaced));
        assert_ne!(
            pem_fingerprint(pem),
            pem_fingerprint(RootCa::generate().unwrap().cert_pem())
        );
        assert_eq!(pem_fingerprint("nothing"), "");
    }

    #[test]
    fn an_external_answer_must_be_what_was_asked() {
        let ext = RootCa::generate().unwrap();
        let key = NodeKey::generate().unwrap();
        let csr = key.csr_pem().unwrap();
        let day = Duration::from_secs(86400);
        let good = ext.sign(&csr, &who("n1"), day).unwrap();
        check_external_cert(&good.chain_pem, &csr, &who("n1"), &ext).unwrap();

        let err = |chain: &str, root: &RootCa| {
            check_external_cert(chain, &csr, &who("n1"), root)
                .unwrap_err()
                .to_string()
        };
        let other_subject = ext.sign(&csr, &who("n2"), day).unwrap();
        assert!(err(&other_subject.chain_pem, &ext).contains("subject"));
        let other_key = NodeKey::generate().unwrap().csr_pem().unwrap();
        let other_key = ext.sign(&other_key, &who("n1"), day).unwrap();
        assert!(err(&other_key.chain_pem, &ext).contains("requested key"));
        let elsewhere = RootCa::generate().unwrap();
        assert!(err(&good.chain_pem, &elsewhere).contains("chain"));
        assert!(err("garbage", &ext).contains("invalid certificate"));
    }
}
