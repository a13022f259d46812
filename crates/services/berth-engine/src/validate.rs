//! Checks of request values that dockerd refuses with a 400 and berth
//! would otherwise accept, only to fail later (at start, with a 500) or
//! never. Messages are dockerd's own, since clients and people match on
//! them. The checks are pure functions of the request; the last few
//! (`in_root`, `tmpfs_in_root`, `make_working_dir`) run at start and
//! resolve paths in the container's root filesystem.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use berth_core::container::{ContainerSpec, HostConfig, PortMap};

use berth_units::{go_atoi, go_quote};

use crate::{Error, Result};

/// dockerd's `linuxMinMemory`: 6 MB.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The checks of `POST /containers/create` that come before anything is
/// looked up (dockerd's verifyContainerSettings); returns the body with
/// its working directory cleaned, as dockerd stores it.
pub fn create_spec(mut spec: ContainerSpec, cpus: usize) -> Result<ContainerSpec> {
    spec.config.working_dir = working_dir(spec.config.working_dir.take())?;
    exposed_ports(spec.config.exposed_ports.as_deref().unwrap_or_default())?;
    port_bindings(spec.host_config.port_bindings.as_ref())?;
    resources(&spec.host_config, cpus)?;
    Ok(spec)
}

/// CPUs this process may run on (Go's runtime.NumCPU, which dockerd uses
/// for the `--cpus` bound).
pub fn online_cpus() -> usize {
    use nix::sched::{CpuSet, sched_getaffinity};
    match sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .count()
            .max(1),
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// An absolute working directory, cleaned lexically (`..` cannot climb
/// above `/`); empty means the image's.
pub fn working_dir(wd: Option<String>) -> Result<Option<String>> {
    match wd {
        Some(w) if !w.is_empty() => {
            if !w.starts_with('/') {
                return Err(Error::invalid(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
            Ok(Some(clean_absolute(&w)))
        }
        other => Ok(other),
    }
}

/// Go's filepath.Clean for an absolute path.
/// A `platform` parameter, refused with containerd's words as dockerd
/// refuses it before anything else.
pub fn platform(spec: &str) -> Result<()> {
    berth_distribution::manifest::parse_specifier(spec)
        .map(|_| ())
        .map_err(Error::invalid)
}

pub(crate) fn clean_absolute(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `PORT[/PROTO]` keys of ExposedPorts and PortBindings: one port number
/// from 1 to 65535 (dockerd's validatePortBindings names the number alone).
fn port_key(key: &str) -> Result<()> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    if !proto.is_empty() && !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::invalid(format!("invalid proto: {proto}")));
    }
    // go-connections' ParsePort takes 0, and so does dockerd
    match port_number(port) {
        Some(_) => Ok(()),
        None => Err(Error::invalid(format!(
            "invalid port specification: \"{port}\""
        ))),
    }
}

/// Go's strconv.ParseUint(s, 10, 16): digits only (Rust's parse would
/// also take a leading `+`).
fn port_number(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub fn exposed_ports(ports: &[String]) -> Result<()> {
    ports.iter().try_for_each(|p| port_key(p))
}

/// Container ports, host ports (`N` or `N-M`, empty for any) and host
/// addresses of `-p`.
pub fn port_bindings(map: Option<&PortMap>) -> Result<()> {
    for (key, list) in map.into_iter().flatten() {
        port_key(key)?;
        for b in list.iter().flatten() {
            if let Some(hp) = b.host_port.as_deref().filter(|p| !p.is_empty()) {
                host_port(hp)?;
            }
            if let Some(ip) = b.host_ip.as_deref().filter(|i| !i.is_empty())
                && ip.parse::<IpAddr>().is_err()
            {
                return Err(Error::invalid(format!("invalid IP address: {ip}")));
            }
        }
    }
    Ok(())
}

/// go-connections' ParsePortRange: `N` or `N-M` with N <= M.
fn host_port(hp: &str) -> Result<()> {
    let bad = || Error::invalid(format!("invalid port specification: \"{hp}\""));
    let (a, b) = hp.split_once('-').unwrap_or((hp, hp));
    let (a, b) = (
        port_number(a).ok_or_else(bad)?,
        port_number(b).ok_or_else(bad)?,
    );
    if b < a {
        return Err(bad());
    }
    Ok(())
}

/// dockerd's verifyPlatformContainerResources and its oom-score-adj and
/// cpu-shares checks: the values it refuses instead of ignoring.
pub fn resources(hc: &HostConfig, cpus: usize) -> Result<()> {
    memory(hc)?;
    cpu(hc, cpus)?;
    if hc
        .blkio_weight
        .is_some_and(|w| w > 0 && !(10..=1000).contains(&w))
    {
        return Err(Error::invalid("Range of blkio weight is from 10 to 1000"));
    }
    if let Some(o) = hc.oom_score_adj.filter(|o| !(-1000..=1000).contains(o)) {
        return Err(Error::invalid(format!(
            "Invalid value {o}, range for oom score adj is [-1000, 1000]"
        )));
    }
    Ok(())
}

fn memory(hc: &HostConfig) -> Result<()> {
    let memory = hc.memory.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    // -1 is dockerd's "unset"
    if let Some(s) = hc
        .memory_swappiness
        .filter(|s| *s != -1 && !(0..=100).contains(s))
    {
        return Err(Error::invalid(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        )));
    }
    let reservation = hc.memory_reservation.unwrap_or(0);
    if reservation > 0 && reservation < MIN_MEMORY {
        return Err(Error::invalid("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(Error::invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    Ok(())
}

fn cpu(hc: &HostConfig, cpus: usize) -> Result<()> {
    let nano = hc.nano_cpus.unwrap_or(0);
    let (period, quota) = (hc.cpu_period.unwrap_or(0), hc.cpu_quota.unwrap_or(0));
    if nano > 0 && period > 0 {
        return Err(Error::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano > 0 && quota > 0 {
        return Err(Error::invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if nano < 0 || nano > cpus as i64 * 1_000_000_000 {
        return Err(Error::invalid(format!(
            "range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(Error::invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(Error::invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if let Some(s) = hc.cpu_shares.filter(|s| *s < 0) {
        return Err(Error::invalid(format!(
            "invalid CPU shares ({s}): value must be a positive integer"
        )));
    }
    Ok(())
}

/// httputils.CheckForJSON: a request with a body must say it is JSON; a
/// request without one may say nothing.
pub fn json_content_type(content_type: Option<&str>, has_body: bool) -> Result<()> {
    let ct = content_type.unwrap_or_default();
    if ct.is_empty() && !has_body {
        return Ok(());
    }
    let media = ct.split(';').next().unwrap_or_default().trim();
    if media.is_empty() {
        return Err(Error::invalid(format!(
            "malformed Content-Type header ({ct}): mime: no media type"
        )));
    }
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Error::invalid(format!(
            "unsupported Content-Type header ({ct}): must be 'application/json'"
        )));
    }
    Ok(())
}

/// `GET /images/search?limit=`: dockerd's default of 25 and its range.
pub fn search_limit(raw: Option<&str>) -> Result<u32> {
    let limit = match raw.filter(|l| !l.is_empty()) {
        None => return Ok(25),
        Some(l) => go_atoi(l).map_err(|why| {
            Error::invalid(format!(
                "invalid limit specified: strconv.Atoi: parsing {}: {why}",
                go_quote(l)
            ))
        })?,
    };
    match limit {
        0 => Ok(25),
        1..=100 => Ok(limit as u32),
        _ => Err(Error::invalid(format!(
            "limit {limit} is outside the range of [1, 100]"
        ))),
    }
}

/// `POST /auth`'s `serveraddress`: dockerd parses it as a URL (https://
/// unless it says otherwise), and Go's parser refuses control characters.
pub fn server_address(addr: &str) -> Result<()> {
    if !addr.chars().any(|c| c.is_ascii_control()) {
        return Ok(());
    }
    let url = if addr.starts_with("https://") || addr.starts_with("http://") {
        addr.to_string()
    } else {
        format!("https://{addr}")
    };
    Err(Error::invalid(format!(
        "unable to parse server address: parse {}: net/url: invalid control character in URL",
        go_quote(&url)
    )))
}

/// A local volume is a directory named after it, so its name is one file
/// name: at most NAME_MAX (255) bytes. dockerd has no check and answers
/// mkdir's 500; the name is the client's mistake.
pub fn volume_name_length(name: &str) -> Result<()> {
    const NAME_MAX: usize = 255;
    if name.len() > NAME_MAX {
        return Err(Error::invalid(format!(
            "create {name}: volume name is too long ({} bytes), names can be at most {NAME_MAX} bytes",
            name.len()
        )));
    }
    Ok(())
}

/// The error of a failed `ps` as dockerd words it: the first line of its
/// stderr (the rest is usage text).
pub fn ps_failure(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    format!("ps: {}", first.unwrap_or("exited with an error"))
}

/// A mount destination as the container sees it once its symlinks are
/// followed inside `rootfs` (securejoin, as runc does for dockerd): an
/// image's `/data -> /srv` link puts a mount on /data at /srv, and never
/// outside the root.
pub fn in_root(rootfs: &Path, dest: &str) -> Result<String> {
    let inside = resolve_in_root(rootfs, dest)?;
    if inside.as_os_str().is_empty() {
        return Err(Error::invalid(format!(
            "invalid mount destination {dest}: it resolves to '/' in the image"
        )));
    }
    Ok(format!("/{}", inside.display()))
}

/// `--tmpfs` destinations resolved as `in_root` does; the options as given.
pub fn tmpfs_in_root(
    rootfs: &Path,
    tmpfs: Option<&HashMap<String, String>>,
) -> Result<Vec<(String, String)>> {
    tmpfs
        .into_iter()
        .flatten()
        .map(|(dest, opts)| Ok((in_root(rootfs, dest)?, opts.clone())))
        .collect()
}

/// The path of `p` inside `rootfs`, relative to it, symlinks followed.
fn resolve_in_root(rootfs: &Path, p: &str) -> Result<std::path::PathBuf> {
    let host = berth_archive::rootpath::resolve(rootfs, Path::new(p), true)
        .map_err(|e| Error::invalid(format!("cannot resolve {p} in the container: {e}")))?;
    host.strip_prefix(rootfs)
        .map(Path::to_path_buf)
        .map_err(|_| Error::Internal(anyhow::anyhow!("{p} resolved outside the root")))
}

/// dockerd makes the working directory at start when the image lacks it
/// (SetupWorkingDirectory), inside the root, through the image's links.
pub fn make_working_dir(rootfs: &Path, wd: Option<&str>) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(wd) = wd.filter(|w| !w.is_empty()) else {
        return Ok(());
    };
    let host = rootfs.join(resolve_in_root(rootfs, wd)?);
    let not_dir = || Error::invalid(format!("Cannot mkdir: {wd} is not a directory"));
    match std::fs::metadata(&host) {
        Ok(md) if md.is_dir() => return Ok(()),
        Ok(_) => return Err(not_dir()),
        Err(_) => {}
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&host)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTDIR) | Some(libc::EEXIST) => not_dir(),
            _ => Error::Internal(anyhow::anyhow!("making the working directory {wd}: {e}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::container::PortBinding;

    fn msg(r: Result<impl std::fmt::Debug>) -> String {
        r.expect_err("should be refused").to_string()
    }

    #[test]
    fn working_dir_is_absolute_and_cleaned() {
        assert_eq!(
            msg(working_dir(Some("x".into()))),
            "the working directory 'x' is invalid, it needs to be an absolute path"
        );
        assert_eq!(working_dir(None).unwrap(), None);
        assert_eq!(working_dir(Some("".into())).unwrap(), Some("".into()));
        let clean = |w: &str| working_dir(Some(w.into())).unwrap().unwrap();
        assert_eq!(clean("/a/../b/./c/"), "/b/c");
        assert_eq!(clean("/../../x"), "/x");
        assert_eq!(clean("//"), "/");
    }

    #[test]
    fn ports() {
        assert!(exposed_ports(&["80/tcp".into(), "53/udp".into(), "9/sctp".into()]).is_ok());
        assert_eq!(
            msg(exposed_ports(&["99999/tcp".into()])),
            "invalid port specification: \"99999\""
        );
        assert_eq!(
            msg(exposed_ports(&["abc/tcp".into()])),
            "invalid port specification: \"abc\""
        );
        assert!(exposed_ports(&["0/tcp".into()]).is_ok());
        assert!(exposed_ports(&["+80/tcp".into()]).is_err());
        assert_eq!(msg(exposed_ports(&["80/xyz".into()])), "invalid proto: xyz");
    }

    fn bindings(ip: &str, port: &str) -> PortMap {
        let b = PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        };
        HashMap::from([("80/tcp".to_string(), Some(vec![b]))])
    }

    #[test]
    fn host_ports_and_addresses() {
        for ok in [
            ("", ""),
            ("127.0.0.1", "8080"),
            ("::1", "8000-8010"),
            ("", "0"),
        ] {
            assert!(port_bindings(Some(&bindings(ok.0, ok.1))).is_ok(), "{ok:?}");
        }
        assert_eq!(
            msg(port_bindings(Some(&bindings("", "99999")))),
            "invalid port specification: \"99999\""
        );
        assert!(port_bindings(Some(&bindings("", "90-80"))).is_err());
        assert_eq!(
            msg(port_bindings(Some(&bindings("not-an-ip", "80")))),
            "invalid IP address: not-an-ip"
        );
        assert!(port_bindings(None).is_ok());
    }

    #[test]
    fn negative_resources() {
        let hc = |f: fn(&mut HostConfig)| {
            let mut h = HostConfig::default();
            f(&mut h);
            resources(&h, 4)
        };
        assert!(hc(|_| {}).is_ok());
        assert!(hc(|h| h.memory = Some(64 << 20)).is_ok());
        assert_eq!(
            msg(hc(|h| h.memory = Some(-5))),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(hc(|h| h.memory_swappiness = Some(-1)).is_ok());
        assert!(
            msg(hc(|h| h.memory_swappiness = Some(-2))).contains("Invalid value: -2, valid memory")
        );
        assert!(msg(hc(|h| h.memory_reservation = Some(5))).contains("memory reservation"));
        assert_eq!(
            msg(hc(|h| h.nano_cpus = Some(-1))),
            "range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"
        );
        assert!(hc(|h| h.nano_cpus = Some(5_000_000_000)).is_err());
        assert!(hc(|h| h.cpu_period = Some(-1)).is_err());
        assert!(hc(|h| h.cpu_quota = Some(-1)).is_ok());
        assert!(hc(|h| h.cpu_quota = Some(999)).is_err());
        assert_eq!(
            msg(hc(|h| h.cpu_shares = Some(-5))),
            "invalid CPU shares (-5): value must be a positive integer"
        );
        assert!(hc(|h| h.blkio_weight = Some(5)).is_err());
        assert!(msg(hc(|h| h.oom_score_adj = Some(-1001))).contains("-1001"));
    }

    #[test]
    fn content_type() {
        assert!(json_content_type(None, false).is_ok());
        assert!(json_content_type(Some("application/json"), true).is_ok());
        assert!(json_content_type(Some("Application/JSON; charset=utf-8"), true).is_ok());
        assert_eq!(
            msg(json_content_type(Some("text/plain"), true)),
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
        assert!(json_content_type(Some("text/plain"), false).is_err());
        assert_eq!(
            msg(json_content_type(None, true)),
            "malformed Content-Type header (): mime: no media type"
        );
    }

    #[test]
    fn cpus_are_counted() {
        assert!(online_cpus() >= 1);
    }

    #[test]
    fn search_limits() {
        assert_eq!(search_limit(None).unwrap(), 25);
        assert_eq!(search_limit(Some("0")).unwrap(), 25);
        assert_eq!(search_limit(Some("100")).unwrap(), 100);
        assert_eq!(
            msg(search_limit(Some("-1"))),
            "limit -1 is outside the range of [1, 100]"
        );
        assert_eq!(
            msg(search_limit(Some("x"))),
            "invalid limit specified: strconv.Atoi: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn server_addresses() {
        assert!(server_address("").is_ok());
        assert!(server_address("localhost:5000").is_ok());
        assert_eq!(
            msg(server_address("reg\x01istry\n")),
            "unable to parse server address: parse \"https://reg\\x01istry\\n\": net/url: invalid control character in URL"
        );
    }

    #[test]
    fn volume_names() {
        assert!(volume_name_length(&"a".repeat(255)).is_ok());
        assert!(msg(volume_name_length(&"a".repeat(256))).contains("too long (256 bytes)"));
    }

    #[test]
    fn ps_first_line() {
        assert_eq!(
            ps_failure(b"error: unknown gnu long option\n\nUsage:\n ps [options]\n"),
            "ps: error: unknown gnu long option"
        );
        assert_eq!(ps_failure(b""), "ps: exited with an error");
    }

    #[test]
    fn destinations_follow_links_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("srv")).unwrap();
        std::os::unix::fs::symlink("/srv", root.join("data")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("up")).unwrap();
        assert_eq!(in_root(root, "/data/x").unwrap(), "/srv/x");
        assert_eq!(in_root(root, "/up").unwrap(), "/etc");
        assert_eq!(in_root(root, "/new/dir").unwrap(), "/new/dir");
        std::os::unix::fs::symlink("/", root.join("top")).unwrap();
        assert!(in_root(root, "/top").is_err());
        let tmpfs = HashMap::from([("/up/t".to_string(), "size=1m".to_string())]);
        assert_eq!(
            tmpfs_in_root(root, Some(&tmpfs)).unwrap(),
            vec![("/etc/t".to_string(), "size=1m".to_string())]
        );
    }

    #[test]
    fn working_dir_is_made_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("srv")).unwrap();
        std::os::unix::fs::symlink("/srv", root.join("data")).unwrap();
        std::fs::write(root.join("file"), "").unwrap();
        make_working_dir(root, Some("/data/a/b")).unwrap();
        assert!(root.join("srv/a/b").is_dir());
        make_working_dir(root, Some("/data")).unwrap();
        make_working_dir(root, None).unwrap();
        assert_eq!(
            msg(make_working_dir(root, Some("/file"))),
            "Cannot mkdir: /file is not a directory"
        );
        assert!(make_working_dir(root, Some("/file/x")).is_err());
    }
}
