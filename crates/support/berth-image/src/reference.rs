//! Docker image references: `[registry/]path[:tag][@digest]`, normalized as
//! the distribution library does ("busybox" is "docker.io/library/busybox:latest").

use std::fmt;

use thiserror::Error;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Invalid,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("repository name must not be longer than 255 characters")]
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// registry host, e.g. "docker.io" or "127.0.0.1:5000"
    pub domain: String,
    /// repository path, e.g. "library/busybox"
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference and fills in Docker's defaults (domain, library/,
    /// and the `latest` tag when neither tag nor digest is given).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_name_only(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses without adding the default tag.
    pub fn parse_name_only(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Invalid);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // a tag is after the last ':' that comes after the last '/'
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            validate_tag(t)?;
        }
        let (domain, path) = split_domain(name);
        // the limit counts the normalized name, as the distribution
        // library checks "docker.io/library/<name>"
        if domain.len() + 1 + path.len() > 255 {
            return Err(ReferenceError::TooLong);
        }
        if domain != DEFAULT_DOMAIN && name.split('/').next() == Some(domain.as_str()) {
            validate_domain(&domain)?;
        }
        for comp in path.split('/') {
            validate_component(comp).map_err(|e| match e {
                ReferenceError::Uppercase(_) => ReferenceError::Uppercase(path.clone()),
                e => e,
            })?;
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// "docker.io/library/busybox" style full repository name.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as users write it: "busybox", "me/app", "127.0.0.1:5000/x".
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            // "library/a/b" keeps its prefix: "a/b" would be another repository
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// "busybox:latest", as `docker images` and `docker ps` print it.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The normalized full form, the key under which tags are stored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The distribution library's splitDockerDomain: "index.docker.io" is
/// "docker.io", and a one-component path there is in "library/" (also when
/// the domain is written: "docker.io/busybox").
fn split_domain(name: &str) -> (String, String) {
    let (domain, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_DOMAIN, name),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    if domain == DEFAULT_DOMAIN && !rest.contains('/') {
        (domain.to_string(), format!("library/{rest}"))
    } else {
        (domain.to_string(), rest.to_string())
    }
}

fn validate_domain(d: &str) -> Result<(), ReferenceError> {
    let ok = !d.is_empty()
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Invalid)
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn validate_component(c: &str) -> Result<(), ReferenceError> {
    if c.is_empty() {
        return Err(ReferenceError::Invalid);
    }
    if c.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase(c.to_string()));
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(ReferenceError::Invalid);
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__" or one or more "-"
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return Err(ReferenceError::Invalid);
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`
pub fn validate_tag(t: &str) -> Result<(), ReferenceError> {
    let w = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if w(c) => {}
        _ => return Err(ReferenceError::Invalid),
    }
    if t.len() > 128 || !chars.all(|c| w(c) || c == '.' || c == '-') {
        return Err(ReferenceError::Invalid);
    }
    Ok(())
}

fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    match d.split_once(':') {
        // lowercase hex only, as go-digest's Validate
        Some(("sha256", hex))
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        _ => Err(ReferenceError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::parse("127.0.0.1:5000/me/app:v1").unwrap();
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.path, "me/app");
        assert_eq!(r.familiar(), "127.0.0.1:5000/me/app:v1");
        let r = Reference::parse("me/app").unwrap();
        assert_eq!(r.to_string(), "docker.io/me/app:latest");
        assert_eq!(r.familiar_name(), "me/app");
        let r = Reference::parse("localhost/app:1.0-rc_2").unwrap();
        assert_eq!(r.domain, "localhost");
    }

    #[test]
    fn rejects_invalid() {
        assert_eq!(
            Reference::parse("Foo:Bar"),
            Err(ReferenceError::Uppercase("library/Foo".into()))
        );
        assert_eq!(Reference::parse("a b"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse(""), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("busybox:"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("-x"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("a..b"), Err(ReferenceError::Invalid));
        assert!(Reference::parse(&format!("x:{}", "a".repeat(129))).is_err());
        assert!(Reference::parse(&format!("x:{}", "a".repeat(128))).is_ok());
        assert!(Reference::parse("x@sha256:12").is_err());
        assert!(Reference::parse("a__b-c--d.e").is_ok());
    }
}

#[cfg(test)]
mod resolution_tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn official_images_go_to_docker_io_library() {
        for given in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/busybox",
            "docker.io/library/busybox",
            "index.docker.io/busybox",
            "index.docker.io/library/busybox:latest",
        ] {
            assert_eq!(full(given), "docker.io/library/busybox:latest", "{given}");
            assert_eq!(
                Reference::parse(given).unwrap().familiar(),
                "busybox:latest"
            );
        }
    }

    #[test]
    fn user_repositories_keep_their_namespace() {
        let r = Reference::parse("docker.io/me/app:1").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str()),
            ("docker.io", "me/app")
        );
        assert_eq!(r.familiar(), "me/app:1");
        assert_eq!(full("index.docker.io/me/app"), "docker.io/me/app:latest");
        // deeper paths on the hub are not official images
        let r = Reference::parse("library/a/b").unwrap();
        assert_eq!(r.path, "library/a/b");
        assert_eq!(r.familiar_name(), "library/a/b");
        // and the familiar form parses back to the same reference
        let back = Reference::parse(&r.familiar()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_first_component_is_a_registry_only_when_it_looks_like_one() {
        let cases = [
            ("localhost/app", "localhost", "app"),
            ("localhost:5000/app", "localhost:5000", "app"),
            ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c"),
            (
                "registry.example.com/team/app",
                "registry.example.com",
                "team/app",
            ),
            ("example.com/app", "example.com", "app"),
            ("[::1]:5000/app", "[::1]:5000", "app"),
            // uppercase marks a host name, as in splitDockerDomain
            ("Registry/app", "Registry", "app"),
            // a plain first component is a hub namespace
            ("team/app", "docker.io", "team/app"),
            ("localhostx/app", "docker.io", "localhostx/app"),
        ];
        for (given, domain, path) in cases {
            let r = Reference::parse_name_only(given).unwrap();
            assert_eq!(
                (r.domain.as_str(), r.path.as_str()),
                (domain, path),
                "{given}"
            );
        }
        // a registry is never given library/, nor dropped from the familiar form
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.to_string(), "localhost:5000/app:latest");
        assert_eq!(r.familiar(), "localhost:5000/app:latest");
        assert_eq!(r.repository(), "localhost:5000/app");
    }

    #[test]
    fn a_port_is_not_a_tag() {
        let r = Reference::parse_name_only("myhost:5000/app").unwrap();
        assert_eq!(r.domain, "myhost:5000");
        assert_eq!(r.tag, None);
        let r = Reference::parse("myhost:5000/app:5000").unwrap();
        assert_eq!(r.tag.as_deref(), Some("5000"));
        // without a slash the colon is a tag
        let r = Reference::parse("myhost:5000").unwrap();
        assert_eq!(r.path, "library/myhost");
        assert_eq!(r.tag.as_deref(), Some("5000"));
    }

    #[test]
    fn tags_digests_and_defaults() {
        // parse fills in latest; parse_name_only does not
        assert_eq!(
            Reference::parse("busybox").unwrap().tag.as_deref(),
            Some("latest")
        );
        assert_eq!(Reference::parse_name_only("busybox").unwrap().tag, None);
        // a digest alone gets no tag
        let r = Reference::parse(&format!("busybox@{DIGEST}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(DIGEST));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{DIGEST}"));
        assert_eq!(r.familiar(), format!("busybox@{DIGEST}"));
        // tag and digest together keep both, tag first
        let r = Reference::parse(&format!("localhost:5000/a:v2@{DIGEST}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v2"));
        assert_eq!(r.to_string(), format!("localhost:5000/a:v2@{DIGEST}"));
        assert_eq!(r.familiar(), format!("localhost:5000/a:v2@{DIGEST}"));
    }

    #[test]
    fn bad_digests_are_refused() {
        let upper = DIGEST.to_uppercase().replace("SHA256", "sha256");
        for d in [
            "sha256:abc",
            "md5:0123456789abcdef0123456789abcdef",
            &DIGEST[..DIGEST.len() - 1],
            &format!("{DIGEST}0"),
            &DIGEST.replace('a', "g"),
            "sha256",
            "",
            // go-digest wants lowercase hex
            &upper,
        ] {
            assert_eq!(
                Reference::parse(&format!("busybox@{d}")),
                Err(ReferenceError::Invalid),
                "{d}"
            );
        }
    }

    #[test]
    fn tag_rules() {
        for ok in ["latest", "v1.2.3", "_x", "1", "A-b_c.D", &"t".repeat(128)] {
            assert_eq!(validate_tag(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a+b", "é", &"t".repeat(129)] {
            assert_eq!(validate_tag(bad), Err(ReferenceError::Invalid), "{bad}");
        }
        // an uppercase tag is fine where an uppercase path is not
        assert!(Reference::parse("busybox:RC1").is_ok());
    }

    #[test]
    fn path_components() {
        for ok in [
            "a",
            "a1",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a.b-c_d__e",
        ] {
            assert_eq!(validate_component(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", ".a", "a.", "_a", "a_", "-a", "a-", "a..b", "a___b", "a._b", "a-.b", "a b", "a+b",
        ] {
            assert_eq!(
                validate_component(bad),
                Err(ReferenceError::Invalid),
                "{bad}"
            );
        }
        assert_eq!(
            validate_component("aB"),
            Err(ReferenceError::Uppercase("aB".into()))
        );
        assert_eq!(Reference::parse("a//b"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("a/"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("/a"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("docker.io/"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("a@"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse(":tag"), Err(ReferenceError::Invalid));
    }

    #[test]
    fn dockers_error_messages() {
        assert_eq!(
            Reference::parse("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            Reference::parse("docker.io/Busybox")
                .unwrap_err()
                .to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            Reference::parse("me/App:v1").unwrap_err().to_string(),
            "invalid reference format: repository name (me/App) must be lowercase"
        );
        assert_eq!(
            Reference::parse("example.com/Team/app")
                .unwrap_err()
                .to_string(),
            "invalid reference format: repository name (Team/app) must be lowercase"
        );
        assert_eq!(
            Reference::parse("a!b").unwrap_err().to_string(),
            "invalid reference format"
        );
        assert_eq!(
            ReferenceError::TooLong.to_string(),
            "repository name must not be longer than 255 characters"
        );
    }

    #[test]
    fn the_length_limit_counts_the_normalized_name() {
        // "docker.io/library/" is 18 characters: 237 more make 255
        let ok = "a".repeat(237);
        assert!(Reference::parse(&ok).is_ok());
        let long = "a".repeat(238);
        assert_eq!(Reference::parse(&long), Err(ReferenceError::TooLong));
        // with a registry the name counts as written
        let host = format!("example.com/{}", "b".repeat(243));
        assert_eq!(host.len(), 255);
        assert!(Reference::parse(&host).is_ok());
        assert_eq!(
            Reference::parse(&format!("{host}b")),
            Err(ReferenceError::TooLong)
        );
        // the tag does not count
        assert!(Reference::parse(&format!("{ok}:{}", "t".repeat(128))).is_ok());
    }

    #[test]
    fn bad_registry_hosts() {
        assert_eq!(
            Reference::parse("exa_mple.com/app"),
            Err(ReferenceError::Invalid)
        );
        assert_eq!(
            Reference::parse("ex ample.com/app"),
            Err(ReferenceError::Invalid)
        );
        assert!(Reference::parse("my-registry.example.com:443/app").is_ok());
    }

    #[test]
    fn display_is_the_normalized_key_and_round_trips() {
        for given in [
            "busybox",
            "me/app:v1",
            "localhost:5000/a/b:c",
            "ghcr.io/owner/img:1.0",
        ] {
            let r = Reference::parse(given).unwrap();
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{given}");
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{given}");
        }
    }
}
