//! Docker image references: `[registry/]path[:tag][@digest]`, normalized as
//! the distribution library does ("busybox" is "docker.io/library/busybox:latest").

use std::fmt;

use thiserror::Error;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

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
        if name.len() > 255 {
            return Err(ReferenceError::TooLong);
        }
        let (domain, path) = split_domain(name);
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
            self.path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_string()
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

fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        Some(_) => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        None => (DEFAULT_DOMAIN.to_string(), format!("library/{name}")),
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
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
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
