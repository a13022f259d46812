//! The image verification hook: every image that comes from outside
//! (pull, load, import) is shown to the engine's `ImageVerifier` before it
//! is recorded.

use berth_core::verify::{ImageToVerify, ImageVerifier};

use crate::{Engine, Error, Result};

/// Asks `verifier` about `image`. A refusal is a 403: the request was
/// understood, and the policy says no.
pub(crate) fn check(verifier: &dyn ImageVerifier, image: &ImageToVerify<'_>) -> Result<()> {
    verifier.verify(image).map_err(|refusal| {
        tracing::warn!(
            reference = image.reference.unwrap_or_default(),
            config = image.config_digest,
            reason = %refusal,
            "image refused by its verifier"
        );
        Error::Forbidden(format!("image verification failed: {refusal}"))
    })
}

impl Engine {
    pub(crate) fn verify_image(&self, image: &ImageToVerify<'_>) -> Result<()> {
        check(self.verifier.as_ref(), image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::verify::fake::ListVerifier;
    use berth_core::verify::{AcceptAll, ImageOrigin};

    fn image(reference: Option<&str>) -> ImageToVerify<'_> {
        ImageToVerify {
            origin: ImageOrigin::Pull,
            reference,
            manifest_digest: Some("sha256:m"),
            config_digest: "sha256:c",
        }
    }

    #[test]
    fn a_refusal_is_forbidden_with_the_verifiers_reason() {
        let v = ListVerifier::refusing(&["docker.io/library/evil:latest"]);
        let err = check(&v, &image(Some("docker.io/library/evil:latest"))).expect_err("refused");
        assert!(matches!(
            &err,
            Error::Forbidden(m) if m == "image verification failed: docker.io/library/evil:latest is not signed by a trusted key"
        ));
        check(&v, &image(Some("docker.io/library/busybox:latest"))).expect("accepted");
        check(&v, &image(None)).expect("an unnamed image is not on the list");
        assert_eq!(v.seen(), ["sha256:c"; 3]);
    }

    #[test]
    fn accept_all_accepts() {
        check(&AcceptAll, &image(Some("docker.io/library/evil:latest"))).expect("accepted");
    }
}
