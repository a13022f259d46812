//! Manifests as berth reads them. Docker schema 2 and OCI differ in media
//! types only; one set of types serves both.

use serde::{Deserialize, Serialize};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The platform a pull resolves an index to: `os/arch[/variant]`, or the
/// host's.
pub fn parse_platform(s: Option<&str>) -> Result<Platform, String> {
    match s.filter(|s| !s.is_empty()) {
        Some(s) => parse_specifier(s),
        None => parse_specifier("linux/amd64"),
    }
}

const OSES: [&str; 17] = [
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

const ARCHES: [&str; 24] = [
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

/// A platform specifier read as containerd's platforms.Parse reads it
/// (dockerd's `platform` parameters), with its words for a bad one.
pub fn parse_specifier(spec: &str) -> Result<Platform, String> {
    if spec.contains('*') {
        return Err(format!(
            "{spec:?}: wildcards not yet supported: invalid argument"
        ));
    }
    let parts: Vec<&str> = spec.splitn(4, '/').collect();
    let component = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
    };
    let os_part = parts[0];
    // an OS version in parentheses is accepted and not kept
    let os_name = os_part.split_once('(').map_or(os_part, |(n, _)| n);
    let os_ok = !os_name.is_empty()
        && os_name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-'))
        && (os_name.len() == os_part.len() || os_part.ends_with(')'));
    if !os_ok {
        return Err(format!(
            "{os_part:?} is an invalid OS component of {spec:?}: OSAndVersion specifier component must match \"^([A-Za-z0-9_-]+)(?:\\(([A-Za-z0-9_.%-]*)((?:\\+[A-Za-z0-9_.%-]+)*)\\))?$\": invalid argument"
        ));
    }
    if let Some(bad) = parts[1..].iter().find(|c| !component(c)) {
        return Err(format!(
            "{bad:?} is an invalid component of {spec:?}: platform specifier component must match \"^[A-Za-z0-9_.-]+$\": invalid argument"
        ));
    }
    let os = match os_name.to_ascii_lowercase().as_str() {
        "macos" => "darwin".to_string(),
        o => o.to_string(),
    };
    let platform = |os: String, (arch, variant): (String, String)| Platform {
        architecture: arch,
        os,
        variant: (!variant.is_empty()).then_some(variant),
    };
    match parts.as_slice() {
        [_] if OSES.contains(&os.as_str()) => Ok(platform(
            os,
            (normalize_arch(std::env::consts::ARCH, "").0, String::new()),
        )),
        [arch] => {
            let (a, v) = normalize_arch(arch, "");
            let v = if a == "arm" && v == "v7" {
                String::new()
            } else {
                v
            };
            if ARCHES.contains(&a.as_str()) {
                Ok(platform("linux".into(), (a, v)))
            } else {
                Err(format!(
                    "{spec:?}: unknown operating system or architecture: invalid argument"
                ))
            }
        }
        [_, arch] => {
            let (a, v) = normalize_arch(arch, "");
            let v = if a == "arm" && v == "v7" {
                String::new()
            } else {
                v
            };
            Ok(platform(os, (a, v)))
        }
        [_, arch, variant] => {
            let (a, v) = normalize_arch(arch, variant);
            let v = if a == "arm64" && v.is_empty() {
                "v8".into()
            } else {
                v
            };
            Ok(platform(os, (a, v)))
        }
        _ => Err(format!(
            "{spec:?}: cannot parse platform specifier: invalid argument"
        )),
    }
}

/// containerd's normalizeArch: the names an architecture and its variant
/// go by, as the registry and image configs spell them.
pub fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    let (a, v): (&str, &str) = match arch.as_str() {
        "i386" => ("386", ""),
        "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { &variant }),
        "aarch64" | "arm64" => match variant.as_str() {
            "8" | "v8" | "v8.0" => ("arm64", ""),
            "9" | "9.0" | "v9.0" => ("arm64", "v9"),
            v => ("arm64", v),
        },
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => match variant.as_str() {
            "" | "7" => ("arm", "v7"),
            "5" => ("arm", "v5"),
            "6" => ("arm", "v6"),
            "8" => ("arm", "v8"),
            v => ("arm", v),
        },
        a => (a, variant.as_str()),
    };
    (a.to_string(), v.to_string())
}

/// containerd's FormatAll: `os/arch[/variant]`.
pub fn format_platform(p: &Platform) -> String {
    match p.variant.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// Whether an image of platform `have` runs as `want` (dockerd's
/// OnlyPlatformWithFallback): same OS and architecture, a variant `want`
/// can run, or none at all on the image.
pub fn platform_matches(want: &Platform, have: &Platform) -> bool {
    let norm = |p: &Platform| normalize_arch(&p.architecture, p.variant.as_deref().unwrap_or(""));
    let (wa, wv) = norm(want);
    let (ha, hv) = norm(have);
    if want.os != have.os {
        return false;
    }
    if have.variant.as_deref().is_none_or(str::is_empty) {
        return wa == ha || (wa == "amd64" && ha == "386");
    }
    let level = |v: &str| v.trim_start_matches('v').parse::<u32>().ok();
    match (wa.as_str(), ha.as_str()) {
        ("amd64", "386") => true,
        ("amd64", "amd64") | ("arm", "arm") => match (level(&wv), level(&hv)) {
            (Some(w), Some(h)) => h <= w,
            _ => wv == hv,
        },
        (w, h) => w == h && (wv == hv || (w == "arm64" && wv.is_empty() && hv == "v8")),
    }
}

/// The entry of an index for `want`; an exact variant match wins.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
        })
        .collect();
    candidates
        .iter()
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.clone()) == want.variant)
        .or(candidates.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p = parse_platform(None).unwrap();
        assert_eq!((p.os.as_str(), p.architecture.as_str()), ("linux", "amd64"));
        let p = parse_platform(Some("linux/arm64/v8")).unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert!(parse_platform(Some("a/b/c/d")).is_err());
        assert_eq!(
            parse_specifier("bogus").unwrap_err(),
            "\"bogus\": unknown operating system or architecture: invalid argument"
        );
        assert!(parse_specifier("linux/a b").is_err());
        assert!(parse_specifier("linux/*").is_err());
        let arm = parse_specifier("linux/arm64").unwrap();
        assert_eq!(format_platform(&arm), "linux/arm64");
        let amd = parse_specifier("linux/amd64").unwrap();
        assert!(!platform_matches(&arm, &amd));
        assert!(platform_matches(&amd, &amd));
        assert!(platform_matches(
            &parse_specifier("arm64").unwrap(),
            &parse_specifier("linux/arm64/v8").unwrap()
        ));
        assert!(platform_matches(
            &parse_specifier("linux/arm/v7").unwrap(),
            &parse_specifier("linux/arm/v6").unwrap()
        ));
        assert!(!platform_matches(
            &parse_specifier("linux/arm/v6").unwrap(),
            &parse_specifier("linux/arm/v7").unwrap()
        ));
        let idx: Index = serde_json::from_str(
            r#"{"schemaVersion":2,"manifests":[
            {"mediaType":"m","digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"mediaType":"m","digest":"sha256:b","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}"#,
        )
        .unwrap();
        let d = select_platform(&idx, &parse_platform(None).unwrap()).unwrap();
        assert_eq!(d.digest, "sha256:b");
        assert!(select_platform(&idx, &parse_platform(Some("windows/amd64")).unwrap()).is_none());
    }
}
