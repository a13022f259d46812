//! The `--log-opt` keys of each driver, their defaults and checks, with
//! dockerd's messages.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};

/// Every driver berth has, in `info`'s order.
pub const DRIVERS: &[&str] = &[
    "fluentd",
    "gelf",
    "journald",
    "json-file",
    "local",
    "none",
    "syslog",
];

/// Keys every driver takes (the ring buffer's) and the dual-logging cache's.
const COMMON: &[&str] = &["mode", "max-buffer-size"];
const CACHE: &[&str] = &[
    "cache-disabled",
    "cache-max-size",
    "cache-max-file",
    "cache-compress",
];
const ATTRS: &[&str] = &["labels", "labels-regex", "env", "env-regex", "tag"];

fn driver_keys(driver: &str) -> Option<&'static [&'static str]> {
    Some(match driver {
        "json-file" => &["max-file", "max-size", "compress"],
        "local" => &["max-file", "max-size", "compress"],
        "none" => &[],
        "syslog" => &[
            "syslog-address",
            "syslog-facility",
            "syslog-tls-ca-cert",
            "syslog-tls-cert",
            "syslog-tls-key",
            "syslog-tls-skip-verify",
            "syslog-format",
        ],
        "gelf" => &[
            "gelf-address",
            "gelf-compression-level",
            "gelf-compression-type",
            "gelf-tcp-max-reconnect",
            "gelf-tcp-reconnect-delay",
        ],
        "fluentd" => &[
            "fluentd-address",
            "fluentd-async",
            "fluentd-async-connect",
            "fluentd-async-reconnect-interval",
            "fluentd-buffer-limit",
            "fluentd-retry-wait",
            "fluentd-max-retries",
            "fluentd-sub-second-precision",
            "fluentd-request-ack",
            "fluentd-write-timeout",
            "fluentd-read-timeout",
        ],
        "journald" => &[],
        crate::crilog::DRIVER => &["path"],
        _ => return None,
    })
}

/// Whether `logs` can read this driver without the cache.
fn reads(driver: &str) -> bool {
    matches!(driver, "json-file" | "local" | "")
}

/// Checks a driver's options as dockerd does at container creation. The
/// options come back as given: the json-file driver's bounded rotation is
/// its own default, not written into each container's config, so inspect
/// shows what the client asked for.
pub fn validate(driver: &str, opts: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let Some(keys) = driver_keys(driver) else {
        bail!("logger: no log driver named '{driver}' is registered");
    };
    // dockerd checks nothing for none: it has nothing to apply them to
    if driver == "none" {
        return Ok(opts.clone());
    }
    let out = opts.clone();
    for k in opts.keys() {
        let known = keys.contains(&k.as_str())
            || COMMON.contains(&k.as_str())
            || (driver != "none" && ATTRS.contains(&k.as_str()))
            || (!reads(driver) && driver != "none" && CACHE.contains(&k.as_str()));
        if !known {
            // dockerd's drivers word this three ways
            match driver {
                "local" => bail!("unknown log opt '{k}' for log driver local"),
                "gelf" => bail!("unknown log opt {k:?} for gelf log driver"),
                _ => bail!("unknown log opt '{k}' for {driver} log driver"),
            }
        }
    }
    match opts.get("mode").map(String::as_str) {
        None | Some("") | Some("blocking") => {
            if opts.contains_key("max-buffer-size") {
                bail!("logger: max-buffer-size option is only supported with 'mode=non-blocking'");
            }
        }
        Some("non-blocking") => {
            buffer_size(opts)?;
        }
        Some(m) => bail!("logger: logging mode not supported: {m}"),
    }
    for k in ["labels-regex", "env-regex"] {
        if let Some(re) = opts.get(k) {
            regex::Regex::new(re).map_err(|e| anyhow!("invalid {k} {re:?}: {e}"))?;
        }
    }
    match driver {
        "json-file" => {
            json_rotation(&out)?;
        }
        "local" => {
            local_rotation(&out, "")?;
        }
        "syslog" => crate::syslog::check(&out)?,
        "gelf" => crate::gelf::check(&out)?,
        "fluentd" => crate::fluentd::check(&out)?,
        crate::crilog::DRIVER => {
            crate::crilog::path_of(&out)?;
        }
        _ => {}
    }
    if !reads(driver) && driver != "none" {
        if parse_bool(&out, "cache-disabled").is_err() {
            bail!(
                "invalid value for option cache-disabled: {}",
                out.get("cache-disabled").cloned().unwrap_or_default()
            );
        }
        if !cache_disabled(&out) {
            local_rotation(&out, "cache-")?;
        }
    }
    if let Some(t) = out.get("tag") {
        render_tag(t, &crate::Info::default())
            .map_err(|e| anyhow!("invalid tag template {t:?}: {e:#}"))?;
    }
    Ok(out)
}

pub(crate) fn cache_disabled(o: &BTreeMap<String, String>) -> bool {
    bool_opt(o, "cache-disabled", false).unwrap_or(false)
}

fn parse_bool(o: &BTreeMap<String, String>, key: &str) -> Result<Option<bool>> {
    match o.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some("true") | Some("1") | Some("t") | Some("T") | Some("TRUE") | Some("True") => {
            Ok(Some(true))
        }
        Some("false") | Some("0") | Some("f") | Some("F") | Some("FALSE") | Some("False") => {
            Ok(Some(false))
        }
        Some(v) => bail!("error parsing {key} option: invalid value {v:?}"),
    }
}

pub(crate) fn bool_opt(o: &BTreeMap<String, String>, key: &str, default: bool) -> Result<bool> {
    Ok(parse_bool(o, key)?.unwrap_or(default))
}

fn size_opt(o: &BTreeMap<String, String>, key: &str, default: u64) -> Result<u64> {
    match o.get(key).map(String::as_str) {
        None => Ok(default),
        Some("-1") => Ok(0),
        Some(v) => Ok(berth_units::parse_human_size(v)
            .map_err(|e| anyhow!("invalid {key}: {e}"))?
            .max(0) as u64),
    }
}

fn files_opt(o: &BTreeMap<String, String>, key: &str, default: u32) -> Result<u32> {
    match o.get(key) {
        None => Ok(default),
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| anyhow!("invalid {key}: {v}"))?;
            if n < 1 {
                bail!("{key} cannot be less than 1");
            }
            // every rotation renames each kept file: keep that bounded
            if n > 1000 {
                bail!("{key} cannot be more than 1000");
            }
            Ok(n as u32)
        }
    }
}

/// json-file's rotation: (max-size, max-file, compress). Unlike Docker's
/// driver, whose logs grow without bound unless told otherwise, berth's
/// keeps 3 files of 10 MB unless told otherwise; `max-size=-1` turns
/// rotation off.
pub(crate) fn json_rotation(given: &BTreeMap<String, String>) -> Result<(u64, u32, bool)> {
    let mut o = given.clone();
    o.entry("max-size".into()).or_insert_with(|| "10m".into());
    let max_size = size_opt(&o, "max-size", 0)?;
    if max_size > 0 {
        o.entry("max-file".into()).or_insert_with(|| "3".into());
    }
    let o = &o;
    let max_files = files_opt(o, "max-file", 1)?;
    if max_size == 0 && o.get("max-file").is_some_and(|v| v != "1") {
        bail!("max-file cannot be set without max-size");
    }
    let compress = bool_opt(o, "compress", false)?;
    if compress && max_files < 2 {
        bail!("compress cannot be true when max-file is less than 2");
    }
    Ok((max_size, max_files, compress))
}

/// The local format's rotation (the `local` driver, or with `cache-` the
/// dual-logging cache): 20 MB, 5 files, compressed, unless told otherwise.
pub(crate) fn local_rotation(
    o: &BTreeMap<String, String>,
    prefix: &str,
) -> Result<(u64, u32, bool)> {
    let max_size = size_opt(o, &format!("{prefix}max-size"), 20 * 1024 * 1024)?;
    let max_files = files_opt(o, &format!("{prefix}max-file"), 5)?;
    let compress = bool_opt(o, &format!("{prefix}compress"), true)?;
    if max_size == 0 {
        bail!("{prefix}max-size must be a positive number");
    }
    Ok((max_size, max_files, compress && max_files > 1))
}

/// `max-buffer-size` of the non-blocking mode (1 MB by default).
pub(crate) fn buffer_size(o: &BTreeMap<String, String>) -> Result<u64> {
    match o.get("max-buffer-size") {
        None => Ok(1024 * 1024),
        Some(v) => {
            let n = berth_units::parse_human_size(v)
                .map_err(|e| anyhow!("could not parse value for max-buffer-size: {v}: {e}"))?;
            if n <= 0 {
                bail!("max-buffer-size must be a positive number");
            }
            Ok(n as u64)
        }
    }
}

/// Renders `--log-opt tag` (a Go template over the container, `{{.ID}}` by
/// default) as dockerd's loggerutils.ParseLogTag does.
pub fn render_tag(template: &str, info: &crate::Info) -> Result<String> {
    let template = if template.is_empty() {
        "{{.ID}}"
    } else {
        template
    };
    let short = |s: &str| -> String {
        let s = s.strip_prefix("sha256:").unwrap_or(s);
        s.chars().take(12).collect()
    };
    let v = serde_json::json!({
        "ID": short(&info.id),
        "FullID": info.id,
        "Name": info.name,
        "ImageID": short(&info.image_id),
        "ImageFullID": info.image_id,
        "ImageName": info.image_name,
        "DaemonName": "berth",
        "Command": info.command,
        "ContainerID": info.id,
        "ContainerName": format!("/{}", info.name),
        "ContainerImageID": info.image_id,
        "ContainerImageName": info.image_name,
        "ContainerCreated": info.created,
    });
    berth_gotmpl::render(template, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_opts as o;

    #[test]
    fn unknown_keys_and_drivers_are_refused_with_dockerds_words() {
        let e = validate("json-file", &o(&[("bogus", "1")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown log opt 'bogus' for json-file log driver"
        );
        let e = validate("local", &o(&[("x", "1")])).unwrap_err();
        assert_eq!(e.to_string(), "unknown log opt 'x' for log driver local");
        let e = validate("gelf", &o(&[("gelf-address", "udp://h:1"), ("x", "1")])).unwrap_err();
        assert_eq!(e.to_string(), "unknown log opt \"x\" for gelf log driver");
        let e = validate("nope", &o(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "logger: no log driver named 'nope' is registered"
        );
        assert!(validate("json-file", &o(&[("cache-disabled", "true")])).is_err());
        assert!(validate("syslog", &o(&[("cache-disabled", "true")])).is_ok());
        let e = validate("json-file", &o(&[("mode", "fast")])).unwrap_err();
        assert_eq!(e.to_string(), "logger: logging mode not supported: fast");
        assert!(validate("json-file", &o(&[("max-buffer-size", "1m")])).is_err());
        assert!(
            validate(
                "json-file",
                &o(&[("mode", "non-blocking"), ("max-buffer-size", "2m")])
            )
            .is_ok()
        );
    }

    #[test]
    fn review_bounds_and_forms() {
        let e = validate("json-file", &o(&[("max-size", "1m"), ("max-file", "1001")])).unwrap_err();
        assert_eq!(e.to_string(), "max-file cannot be more than 1000");
        assert!(validate("json-file", &o(&[("max-size", "1m"), ("max-file", "1000")])).is_ok());
        // none checks nothing, as dockerd
        assert!(validate("none", &o(&[("anything", "x"), ("mode", "odd")])).is_ok());
        // cache-disabled takes Go's bool forms and refuses others
        assert!(cache_disabled(&o(&[("cache-disabled", "True")])));
        assert!(!cache_disabled(&o(&[("cache-disabled", "0")])));
        let e = validate("syslog", &o(&[("cache-disabled", "maybe")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for option cache-disabled: maybe"
        );
    }

    #[test]
    fn defaults_apply_without_being_written_into_the_options() {
        let v = validate("json-file", &o(&[])).unwrap();
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(json_rotation(&v).unwrap(), (10_000_000, 3, false));
        assert_eq!(
            json_rotation(&o(&[("max-file", "5")])).unwrap(),
            (10_000_000, 5, false)
        );
        // no rotation at all
        assert_eq!(
            json_rotation(&o(&[("max-size", "-1")])).unwrap(),
            (0, 1, false)
        );
        assert_eq!(
            local_rotation(&o(&[]), "").unwrap(),
            (20 * 1024 * 1024, 5, true)
        );
        assert!(
            !local_rotation(&o(&[("cache-max-file", "1")]), "cache-")
                .unwrap()
                .2
        );
    }

    #[test]
    fn tags_render_as_dockerd_renders_them() {
        let info = crate::Info {
            id: "0123456789abcdef0123".into(),
            name: "web".into(),
            image_id: "sha256:fedcba9876543210".into(),
            image_name: "busybox:latest".into(),
            ..Default::default()
        };
        assert_eq!(render_tag("", &info).unwrap(), "0123456789ab");
        assert_eq!(
            render_tag("{{.ImageName}}/{{.Name}}/{{.ImageID}}", &info).unwrap(),
            "busybox:latest/web/fedcba987654"
        );
        assert!(validate("syslog", &o(&[("tag", "{{.Nope")])).is_err());
    }
}
