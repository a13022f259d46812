//! The image verification port: a hook that sees every image that comes
//! from outside (pulled, loaded or imported) before the engine records it,
//! and may refuse it. Signature policies (cosign, Notary) will implement
//! it; [`AcceptAll`] is what an engine without a policy uses.

/// How an image came to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOrigin {
    Pull,
    Load,
    Import,
}

/// An image about to be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageToVerify<'a> {
    pub origin: ImageOrigin,
    /// the normalized reference it will be known by
    /// ("docker.io/library/busybox:latest"); `None` for an image loaded or
    /// imported without a name
    pub reference: Option<&'a str>,
    /// the digest of the manifest it came with; `None` when the source has
    /// no manifest (an import, a `docker save` archive)
    pub manifest_digest: Option<&'a str>,
    /// the digest of its config, which is the image id
    pub config_digest: &'a str,
}

/// Why a verifier refused an image, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub trait ImageVerifier: Send + Sync {
    /// `Ok` lets the image be recorded; a refusal stops the pull, load or
    /// import with its message.
    fn verify(&self, image: &ImageToVerify<'_>) -> Result<(), Refusal>;
}

/// Verifies nothing: every image is accepted (Docker's behaviour).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl ImageVerifier for AcceptAll {
    fn verify(&self, _image: &ImageToVerify<'_>) -> Result<(), Refusal> {
        Ok(())
    }
}

/// Verifiers for unit tests.
pub mod fake {
    use std::sync::Mutex;

    use super::{ImageToVerify, ImageVerifier, Refusal};

    /// Refuses the images whose reference is in its list and remembers the
    /// config digest of every image it was asked about.
    #[derive(Default)]
    pub struct ListVerifier {
        refused: Vec<String>,
        seen: Mutex<Vec<String>>,
    }

    impl ListVerifier {
        pub fn refusing(references: &[&str]) -> Self {
            Self {
                refused: references.iter().map(|r| r.to_string()).collect(),
                seen: Mutex::default(),
            }
        }

        pub fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
        }
    }

    impl ImageVerifier for ListVerifier {
        fn verify(&self, image: &ImageToVerify<'_>) -> Result<(), Refusal> {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(image.config_digest.to_string());
            match image.reference {
                Some(r) if self.refused.iter().any(|x| x == r) => {
                    Err(Refusal(format!("{r} is not signed by a trusted key")))
                }
                _ => Ok(()),
            }
        }
    }
}
