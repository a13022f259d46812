//! The builder: Dockerfiles executed the way Docker's classic builder does
//! it (a container per RUN, each step committed as an image that doubles as
//! the build cache), with multi-stage builds, `--target`, `--squash` and
//! the build secrets and cache mounts of `RUN --mount`.
//!
//! Every step's result is an untagged image whose parent is the step
//! before and whose `build_key` hashes what the step did and read (the
//! parent image, the instruction after substitution, the build args a RUN
//! sees, the content of the files a COPY copies). A later build reuses the
//! child of the same parent with the same key, so a cache hit only ever
//! stands for an identical result.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use berth_dockerfile::{Cmd, DockerIgnore, Dockerfile, Instruction, Kind};
use bollard_stubs::models::{ContainerCreateBody, HostConfig};
use oci_spec::image::{Arch, ImageConfiguration, Os, RootFsBuilder};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::archive::{self, ExtractOptions, Root};
use crate::images::{ImageRecord, short_id};
use crate::layers::chain_ids;
use crate::pull::Progress;
use crate::{Engine, Error, LockExt, PullOptions, Result, WaitCondition};

/// What `POST /build` and `berth build` ask for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// the Dockerfile's path inside the context
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub build_args: HashMap<String, Option<String>>,
    pub labels: HashMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// remove intermediate containers after a successful step (default)
    pub rm: bool,
    /// remove them after a failed one too
    pub force_rm: bool,
    pub quiet: bool,
    pub squash: bool,
    pub network_mode: Option<String>,
    pub extra_hosts: Vec<String>,
    /// images whose build steps may serve as cache (`--cache-from`)
    pub cache_from: Vec<String>,
    /// `RUN --mount=type=secret,id=X` contents, by id; never stored
    pub secrets: HashMap<String, Vec<u8>>,
    pub credentials: Option<crate::Credentials>,
}

/// The build args every Dockerfile may use without declaring them.
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

async fn say(tx: &Progress, quiet: bool, text: impl Into<String>) {
    if !quiet {
        let _ = tx.send(json!({ "stream": text.into() })).await;
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The `build_key` of a step: its parent image's id ("" for the first
/// step of `FROM scratch`) and what the step did and read.
fn step_build_key(parent: &str, step: &str) -> String {
    sha256_hex(format!("{parent}\n{step}").as_bytes())
}

/// The state of the stage being built.
struct StageState {
    /// the image the next step builds on (None: `FROM scratch`, nothing yet)
    image: Option<ImageRecord>,
    /// its config blob as JSON: kept as a value so that fields the OCI
    /// types lack (Healthcheck, Shell, OnBuild) survive
    config: Value,
    /// ARGs declared in this stage, with their values
    args: BTreeMap<String, Option<String>>,
    /// the ARGs before the first FROM, with their values
    globals: BTreeMap<String, Option<String>>,
    /// whether CMD was set in this stage (ENTRYPOINT resets an inherited one)
    cmd_set: bool,
    /// the stage's FROM base, for `--squash`
    base_layers: usize,
    base_id: String,
}

impl StageState {
    fn cfg(&self) -> &Value {
        self.config.get("config").unwrap_or(&Value::Null)
    }

    fn cfg_mut(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config.get("config").is_some_and(Value::is_object) {
            self.config["config"] = json!({});
        }
        match self.config.get_mut("config") {
            Some(Value::Object(m)) => m,
            _ => unreachable!("config was just made an object"),
        }
    }

    /// An object of the config (Labels, ExposedPorts, Volumes), or `{}`.
    fn cfg_object(&self, key: &str) -> Value {
        self.cfg()
            .get(key)
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}))
    }

    /// A list of strings of the config (Env, Shell, OnBuild), or empty.
    fn cfg_strings(&self, key: &str) -> Vec<String> {
        self.cfg()
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn env(&self) -> Vec<String> {
        self.cfg_strings("Env")
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let mut env: Vec<String> = self
            .env()
            .into_iter()
            .filter(|e| e.split('=').next() != Some(key))
            .collect();
        env.push(format!("{key}={value}"));
        self.cfg_mut().insert("Env".into(), json!(env));
    }

    fn workdir(&self) -> String {
        self.cfg()
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn shell(&self) -> Vec<String> {
        Some(self.cfg_strings("Shell"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// Variables for substitution: ENV wins over ARG, as in Docker.
    fn lookup(&self, name: &str) -> Option<String> {
        for e in self.env() {
            if let Some((k, v)) = e.split_once('=')
                && k == name
            {
                return Some(v.to_string());
            }
        }
        self.args.get(name).cloned().flatten()
    }

    /// The build args a RUN sees in its environment (declared, with a value,
    /// not shadowed by ENV).
    fn run_args(&self) -> Vec<String> {
        let env_keys: HashSet<String> = self
            .env()
            .iter()
            .filter_map(|e| e.split('=').next().map(String::from))
            .collect();
        self.args
            .iter()
            .filter(|(k, _)| !env_keys.contains(*k))
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }
}

/// A file or directory a COPY takes, resolved in its source.
struct CopySource {
    /// path inside the source root
    path: PathBuf,
    is_dir: bool,
    /// a download of `ADD <url>`: copied as it is, never unpacked
    no_extract: bool,
}

/// The layer a step adds: a tar of its changes, or a layer another image
/// already has (a `--cache-from` hit).
enum StepLayer<'a> {
    Tar(&'a Path),
    Existing(&'a str),
}

/// The `key=value` options of a `RUN --mount` (a bare key is `true`).
/// The argv of a RUN: its command in the stage's shell, with heredocs
/// (`RUN <<EOF` runs the document itself as the script).
fn run_argv(cmd: &Cmd, heredocs: &[berth_dockerfile::Heredoc], shell: &[String]) -> Vec<String> {
    match (cmd, heredocs.first()) {
        (Cmd::Shell(s), Some(doc)) if s.trim().starts_with("<<") && heredocs.len() == 1 => {
            // the shell expands the document when it runs, as BuildKit
            // leaves it
            let mut v = shell.to_vec();
            v.push(doc.content.clone());
            v
        }
        (Cmd::Shell(s), _) if !heredocs.is_empty() => {
            let mut script = s.clone();
            for d in heredocs {
                script.push('\n');
                script.push_str(&d.content);
                if !d.content.ends_with('\n') {
                    script.push('\n');
                }
                script.push_str(&d.name);
            }
            let mut v = shell.to_vec();
            v.push(script);
            v
        }
        (c, _) => command_vec(c, shell),
    }
}

/// What a RUN's cache entry is keyed on besides its parent image: the
/// command as the history shows it, its mounts (with the content of
/// context binds, which the step reads) and its network.
fn run_cache_key(
    created_by: &str,
    mounts: &[String],
    network: Option<&str>,
    ctx: &Path,
) -> Result<String> {
    let mut key = created_by.to_string();
    for m in mounts {
        key.push_str("\nmount ");
        key.push_str(m);
        let kv = mount_options(m);
        if kv.get("type").map_or("bind", String::as_str) == "bind" {
            let source = kv.get("source").or_else(|| kv.get("src"));
            let mut h = Sha256::new();
            if let Some(rel) = clean_rel(source.map_or("", String::as_str)) {
                hash_tree(ctx, &rel, &mut h).map_err(|e| {
                    Error::invalid(format!("RUN --mount={m}: reading the source: {e}"))
                })?;
            }
            key.push_str(&hex::encode(h.finalize()));
        }
    }
    if let Some(n) = network {
        key.push_str("\nnetwork ");
        key.push_str(n);
    }
    Ok(key)
}

/// An instruction that only changes the image config (ENV … ONBUILD):
/// applies it to the stage and returns the history's `created_by` text.
/// One arm per instruction, each short; the match is the one long thing.
fn config_change(
    esc: char,
    ins: &Instruction,
    st: &mut StageState,
    opts: &BuildOptions,
    consumed: &mut HashSet<String>,
    warning: &mut Option<&'static str>,
) -> Result<String> {
    let expand = |st: &StageState, s: &str| -> Result<String> {
        berth_dockerfile::expand(s, esc, &|n| st.lookup(n))
            .map_err(|e| Error::invalid(format!("line {}: {e}", ins.line)))
    };
    let words = |st: &StageState, s: &str| -> Result<Vec<String>> {
        berth_dockerfile::expand_words(s, esc, &|n| st.lookup(n))
            .map_err(|e| Error::invalid(format!("line {}: {e}", ins.line)))
    };
    let nop = |text: String| format!("/bin/sh -c #(nop)  {text}");
    match &ins.kind {
        Kind::Env(pairs) => {
            let mut shown = Vec::new();
            for (k, v) in pairs {
                let k = expand(st, k)?;
                let v = expand(st, v)?;
                st.set_env(&k, &v);
                shown.push(format!("{k}={v}"));
            }
            Ok(nop(format!("ENV {}", shown.join(" "))))
        }
        Kind::Arg(args) => {
            let mut shown = Vec::new();
            for (k, default) in args {
                if opts.build_args.contains_key(k) {
                    consumed.insert(k.clone());
                }
                let v = match opts.build_args.get(k).cloned().flatten() {
                    Some(v) => Some(v),
                    None => match default {
                        Some(d) => Some(expand(st, d)?),
                        // a global ARG redeclared without a default
                        // keeps the global value, as in Docker
                        None => st.globals.get(k).cloned().flatten(),
                    },
                };
                shown.push(match default {
                    Some(d) => format!("{k}={d}"),
                    None => k.clone(),
                });
                st.args.insert(k.clone(), v);
            }
            Ok(nop(format!("ARG {}", shown.join(" "))))
        }
        Kind::Label(pairs) => {
            let mut labels = st.cfg_object("Labels");
            let mut shown = Vec::new();
            for (k, v) in pairs {
                let (k, v) = (expand(st, k)?, expand(st, v)?);
                shown.push(format!("{k}={v}"));
                labels[&k] = json!(v);
            }
            st.cfg_mut().insert("Labels".into(), labels);
            Ok(nop(format!("LABEL {}", shown.join(" "))))
        }
        Kind::Maintainer(m) => {
            let m = expand(st, m)?;
            st.config["author"] = json!(m);
            *warning = Some(" ---> [Warning] MAINTAINER is deprecated: use LABEL maintainer=...\n");
            Ok(nop(format!("MAINTAINER {m}")))
        }
        Kind::Cmd(c) => {
            let v = command_vec(c, &st.shell());
            st.cfg_mut().insert("Cmd".into(), json!(v));
            st.cmd_set = true;
            Ok(nop(format!("CMD {}", json!(v))))
        }
        Kind::Entrypoint(c) => {
            let v = command_vec(c, &st.shell());
            st.cfg_mut().insert("Entrypoint".into(), json!(v));
            if !st.cmd_set {
                st.cfg_mut().insert("Cmd".into(), Value::Null);
            }
            Ok(nop(format!("ENTRYPOINT {}", json!(v))))
        }
        Kind::Shell(v) => {
            st.cfg_mut().insert("Shell".into(), json!(v));
            Ok(nop(format!("SHELL {}", json!(v))))
        }
        Kind::Expose(ports) => {
            let mut exposed = st.cfg_object("ExposedPorts");
            let mut shown = Vec::new();
            for p in ports {
                for w in words(st, p)? {
                    let key = if w.contains('/') {
                        w.to_ascii_lowercase()
                    } else {
                        format!("{w}/tcp")
                    };
                    let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
                    let valid_port = port.split('-').all(|p| p.parse::<u16>().is_ok());
                    if !valid_port || !["tcp", "udp", "sctp"].contains(&proto) {
                        return Err(Error::invalid(format!("invalid containerPort: {w}")));
                    }
                    exposed[&key] = json!({});
                    shown.push(key);
                }
            }
            st.cfg_mut().insert("ExposedPorts".into(), exposed);
            Ok(nop(format!("EXPOSE {}", shown.join(" "))))
        }
        Kind::Volume(vols) => {
            let mut volumes = st.cfg_object("Volumes");
            let mut shown = Vec::new();
            for v in vols {
                let v = expand(st, v)?;
                if v.trim().is_empty() {
                    return Err(Error::invalid(
                        "VOLUME specified can not be an empty string",
                    ));
                }
                volumes[&v] = json!({});
                shown.push(v);
            }
            st.cfg_mut().insert("Volumes".into(), volumes);
            Ok(nop(format!("VOLUME {}", json!(shown))))
        }
        Kind::User(u) => {
            let u = expand(st, u)?;
            st.cfg_mut().insert("User".into(), json!(u));
            Ok(nop(format!("USER {u}")))
        }
        Kind::Workdir(w) => {
            let w = expand(st, w)?;
            let path = in_workdir(&st.workdir(), &w);
            let path = format!(
                "/{}",
                clean_rel(&path).unwrap_or_default().to_string_lossy()
            );
            st.cfg_mut().insert("WorkingDir".into(), json!(path));
            Ok(nop(format!("WORKDIR {path}")))
        }
        Kind::Stopsignal(s) => {
            let s = expand(st, s)?;
            st.cfg_mut().insert("StopSignal".into(), json!(s));
            Ok(nop(format!("STOPSIGNAL {s}")))
        }
        Kind::Healthcheck(h) => {
            let v = match h {
                None => json!({ "Test": ["NONE"] }),
                Some(h) => {
                    let test = match &h.test {
                        Cmd::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v.iter().cloned());
                            t
                        }
                        Cmd::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    };
                    let dur = |d: &Option<String>, what: &str| -> Result<Option<i64>> {
                        d.as_deref()
                            .map(|s| {
                                berth_units::parse_go_duration(s).ok_or_else(|| {
                                    Error::invalid(format!("Error parsing {what}: {s}"))
                                })
                            })
                            .transpose()
                    };
                    let mut o = json!({ "Test": test });
                    if let Some(n) = dur(&h.interval, "interval")? {
                        o["Interval"] = json!(n);
                    }
                    if let Some(n) = dur(&h.timeout, "timeout")? {
                        o["Timeout"] = json!(n);
                    }
                    if let Some(n) = dur(&h.start_period, "start-period")? {
                        o["StartPeriod"] = json!(n);
                    }
                    if let Some(n) = dur(&h.start_interval, "start-interval")? {
                        o["StartInterval"] = json!(n);
                    }
                    if let Some(r) = &h.retries {
                        let n: i64 = r
                            .parse()
                            .map_err(|_| Error::invalid(format!("Error parsing retries: {r}")))?;
                        o["Retries"] = json!(n);
                    }
                    o
                }
            };
            st.cfg_mut().insert("Healthcheck".into(), v.clone());
            Ok(nop(format!("HEALTHCHECK {v}")))
        }
        Kind::Onbuild(trigger) => {
            let mut list = st.cfg_strings("OnBuild");
            list.push(trigger.original.clone());
            st.cfg_mut().insert("OnBuild".into(), json!(list));
            Ok(nop(format!("ONBUILD {}", trigger.original)))
        }
        _ => Err(Error::Internal(anyhow::anyhow!(
            "line {}: not a config instruction",
            ins.line
        ))),
    }
}

fn mount_options(spec: &str) -> HashMap<String, String> {
    spec.split(',')
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, "true"));
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect()
}

/// A COPY or ADD instruction's operands, raw.
struct CopyStep<'a> {
    srcs: &'a [String],
    dest: &'a str,
    from: Option<&'a str>,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    /// ADD --checksum=sha256:... for a download
    checksum: Option<&'a str>,
    heredocs: &'a [berth_dockerfile::Heredoc],
    is_add: bool,
}

/// The earlier stages stage `i` reads: its FROM and its `COPY --from`s,
/// expanded with the global ARGs (`FROM ${BASE}`).
fn stage_deps(df: &Dockerfile, i: usize, global: &BTreeMap<String, Option<String>>) -> Vec<usize> {
    let stage = &df.stages[i];
    let mut refs: Vec<&str> = vec![stage.base.as_str()];
    for ins in &stage.instructions {
        if let Kind::Copy {
            from: Some(from), ..
        } = &ins.kind
        {
            refs.push(from.as_str());
        }
    }
    refs.into_iter()
        .map(|r| {
            berth_dockerfile::expand(r, df.escape, &|n| global.get(n).cloned().flatten())
                .unwrap_or_else(|_| r.to_string())
        })
        .filter_map(|r| stage_index(df, &r, i))
        .collect()
}

/// Which stages the target needs: what it reads, transitively.
fn needed_stages(
    df: &Dockerfile,
    target: usize,
    global: &BTreeMap<String, Option<String>>,
) -> Result<Vec<usize>> {
    let mut needed = vec![false; df.stages.len()];
    let mut stack = vec![target];
    while let Some(i) = stack.pop() {
        if needed[i] {
            continue;
        }
        needed[i] = true;
        stack.extend(stage_deps(df, i, global));
    }
    Ok((0..df.stages.len()).filter(|i| needed[*i]).collect())
}

/// The earlier stage `name` refers to (by name or index), if any.
fn stage_index(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if let Ok(n) = name.parse::<usize>() {
        return (n < before).then_some(n);
    }
    df.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
}

/// Docker's exec-or-shell rule for RUN, CMD, ENTRYPOINT and HEALTHCHECK.
fn command_vec(cmd: &Cmd, shell: &[String]) -> Vec<String> {
    match cmd {
        Cmd::Exec(v) => v.clone(),
        Cmd::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// A path in the image, relative paths taken from the working directory.
fn in_workdir(workdir: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        let mut s = workdir.trim_end_matches('/').to_string();
        s.push('/');
        s.push_str(p);
        s
    }
}

/// Lexically cleaned, without leading `/`; None when it climbs out.
fn clean_rel(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    Some(out)
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's filepath.Match for one path element.
fn match_element(pattern: &str, name: &str) -> bool {
    crate::images::glob_match(pattern, name)
}

/// Expands a context source (with wildcards in any element) to the
/// existing paths it names, resolved inside `root`.
fn expand_sources(root: &Path, src: &str) -> Result<Vec<CopySource>> {
    let rel = clean_rel(src).ok_or_else(|| {
        Error::invalid(format!(
            "forbidden path outside the build context: {src} ()"
        ))
    })?;
    let mut candidates: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in rel.components() {
        let part = comp.as_os_str().to_string_lossy().into_owned();
        let mut next = Vec::new();
        for c in &candidates {
            if has_wildcard(&part) {
                let dir = berth_archive::rootpath::resolve(root, c, true)
                    .map_err(|e| Error::invalid(format!("{e:#}")))?;
                let mut names: Vec<String> = std::fs::read_dir(&dir)
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                for n in names {
                    if match_element(&part, &n) {
                        next.push(c.join(n));
                    }
                }
            } else {
                next.push(c.join(&part));
            }
        }
        candidates = next;
    }
    let mut out = Vec::new();
    for c in candidates {
        let host = berth_archive::rootpath::resolve(root, &c, true)
            .map_err(|e| Error::invalid(format!("{e:#}")))?;
        match std::fs::metadata(&host) {
            Ok(md) => out.push(CopySource {
                path: c,
                is_dir: md.is_dir(),
                no_extract: false,
            }),
            Err(_) if has_wildcard(src) => {}
            Err(_) => {
                return Err(Error::invalid(format!(
                    "COPY failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(format!(
            "COPY failed: no source files were specified (no match for {src})"
        )));
    }
    Ok(out)
}

/// Hashes what a COPY reads: names, modes, link targets and contents.
fn hash_tree(root: &Path, rel: &Path, h: &mut Sha256) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let host = berth_archive::rootpath::resolve(root, rel, false)?;
    let md = std::fs::symlink_metadata(&host)?;
    h.update(rel.as_os_str().as_encoded_bytes());
    h.update(md.permissions().mode().to_le_bytes());
    if md.file_type().is_symlink() {
        h.update(std::fs::read_link(&host)?.as_os_str().as_encoded_bytes());
    } else if md.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&host)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            hash_tree(root, &rel.join(n), h)?;
        }
    } else if md.is_file() {
        let mut f = std::fs::File::open(&host)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    h.update(b"\0");
    Ok(())
}

/// The largest Dockerfile or .dockerignore the builder reads.
const MAX_CONTROL_FILE: u64 = 4 << 20;

/// A regular file of the context (resolved inside it: a symlink to
/// /dev/zero or a FIFO is no Dockerfile), or None when there is none.
fn read_context_file(ctx: &Path, name: &str) -> Result<Option<String>> {
    let Some(path) =
        clean_rel(name).and_then(|p| berth_archive::rootpath::resolve(ctx, &p, true).ok())
    else {
        return Ok(None);
    };
    match std::fs::symlink_metadata(&path) {
        Ok(md) if md.is_file() && md.len() <= MAX_CONTROL_FILE => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| Error::invalid(format!("reading {name}: {e}"))),
        Ok(md) if md.is_file() => Err(Error::invalid(format!(
            "{name} is larger than {MAX_CONTROL_FILE} bytes"
        ))),
        _ => Ok(None),
    }
}

/// Removes what .dockerignore excludes from the unpacked context (the
/// Dockerfile and .dockerignore stay readable to the builder).
fn apply_dockerignore(ctx: &Path, ignore: &DockerIgnore, keep: &[&str]) -> std::io::Result<()> {
    fn walk(dir: &Path, rel: &str, ignore: &DockerIgnore, keep: &[&str]) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if ignore.excluded(&r) && !keep.contains(&r.as_str()) {
                if ft.is_dir() && ignore.may_include_below(&r) {
                    walk(&e.path(), &r, ignore, keep)?;
                } else if ft.is_dir() {
                    std::fs::remove_dir_all(e.path())?;
                } else {
                    std::fs::remove_file(e.path())?;
                }
            } else if ft.is_dir() {
                walk(&e.path(), &r, ignore, keep)?;
            }
        }
        Ok(())
    }
    walk(ctx, "", ignore, keep)
}

/// Where a COPY's files come from.
enum CopyFrom {
    Context,
    /// an earlier stage's image or one named by `--from`
    Image(String),
}

impl CopyFrom {
    fn image(&self) -> Option<String> {
        match self {
            CopyFrom::Context => None,
            CopyFrom::Image(id) => Some(id.clone()),
        }
    }
}

/// What COPY and ADD left out, said in the build's output.
async fn say_skipped_devices(tx: &Progress, quiet: bool, skipped: Vec<String>) {
    for dev in skipped {
        let note = format!(
            " ---> skipping the device node /{dev}: device nodes are not copied into image layers\n"
        );
        say(tx, quiet, note).await;
    }
}

/// A tar of one COPY's sources, renamed to their destination and owned
/// as the instruction says.
struct CopyPlan {
    dest: String,
    /// the destination is a directory (ends with `/`, several sources, a
    /// directory source, or a directory already in the image)
    dest_is_dir: bool,
    owner: Option<(u64, u64)>,
    chmod: Option<u32>,
}

/// Rewrites a tar from `archive::write_tar` (top entry named after the
/// source) to its place under the destination.
fn rewrite_into<W: Write>(
    input: impl Read,
    out: &mut tar::Builder<W>,
    (src_is_dir, src_name): (bool, &str),
    plan: &CopyPlan,
    skipped: &mut Vec<String>,
) -> std::io::Result<()> {
    let dest = plan.dest.trim_start_matches('/');
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rest = path.strip_prefix(src_name).unwrap_or(&path).to_path_buf();
        let target: PathBuf = if src_is_dir {
            // a directory's contents go into the destination
            if rest.as_os_str().is_empty() {
                PathBuf::from(dest)
            } else {
                Path::new(dest).join(&rest)
            }
        } else if plan.dest_is_dir {
            Path::new(dest).join(src_name).join(&rest)
        } else {
            PathBuf::from(dest)
        };
        if target.as_os_str().is_empty() || (src_is_dir && rest.as_os_str().is_empty()) {
            // a directory source gives its contents, not itself; the
            // destination keeps its own metadata (or is made 0755)
            continue;
        }
        let mut h = entry.header().clone();
        if let Some((u, g)) = plan.owner {
            h.set_uid(u);
            h.set_gid(g);
        } else {
            h.set_uid(0);
            h.set_gid(0);
        }
        if let Some(m) = plan.chmod {
            h.set_mode(m);
        }
        let kind = h.entry_type();
        if is_device(kind) {
            skipped.push(target.display().to_string());
            continue;
        }
        let link = entry
            .link_name()?
            .map(|l| l.into_owned())
            .unwrap_or_default();
        if kind.is_symlink() {
            archive::append_symlink(out, &mut h, &target, &link)?;
        } else if kind.is_hard_link() {
            out.append_link(&mut h, &target, &link)?;
        } else {
            out.append_data(&mut h, &target, &mut entry)?;
        }
    }
    Ok(())
}

/// Directory entries for the destination's missing parents (root-owned
/// 0755, or owned by `--chown`, as Docker creates them).
fn parent_entries<W: Write>(
    root: &Root,
    dest_dir: &str,
    owner: Option<(u64, u64)>,
    out: &mut tar::Builder<W>,
) -> std::io::Result<()> {
    let mut cur = PathBuf::from("/");
    for c in Path::new(dest_dir).components() {
        if let Component::Normal(n) = c {
            cur.push(n);
            if archive::stat(root, &cur.to_string_lossy()).is_err() {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                let (u, g) = owner.unwrap_or((0, 0));
                h.set_uid(u);
                h.set_gid(g);
                h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
                out.append_data(
                    &mut h,
                    cur.strip_prefix("/").unwrap_or(&cur),
                    std::io::empty(),
                )?;
            }
        }
    }
    Ok(())
}

fn parse_chmod(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Error::invalid(format!("invalid chmod parameter: {s}")))
}

/// The archive ADD unpacks (gzip, zstd or plain tar), by content.
fn is_local_archive(path: &Path) -> bool {
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(mut r) = berth_image::compression::decompress(f) else {
        return false;
    };
    let mut block = vec![0u8; 512];
    if r.read_exact(&mut block).is_err() {
        return false;
    }
    // ustar magic, or an old-style header whose checksum is right
    &block[257..262] == b"ustar" || {
        let stored = std::str::from_utf8(&block[148..156])
            .ok()
            .and_then(|s| u32::from_str_radix(s.trim_matches(['\0', ' ']), 8).ok());
        let sum: u32 = block
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    *b as u32
                }
            })
            .sum();
        stored == Some(sum)
    }
}

/// Reads the frames of an attach stream and forwards their bytes as
/// build output.
async fn forward_output(mut stream: berth_core::runtime::RuntimeStream, tx: Progress, quiet: bool) {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 8];
    loop {
        if stream.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut buf = vec![0u8; len];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        say(&tx, quiet, String::from_utf8_lossy(&buf).into_owned()).await;
    }
}

impl Engine {
    /// Refuses tags that are not valid references before any work starts.
    pub fn check_build_tags(&self, tags: &[String]) -> Result<()> {
        for t in tags {
            parse_tag(t)?;
        }
        Ok(())
    }

    /// Builds the Dockerfile in the context tar at `context`; returns the
    /// image id. Progress goes to `tx` in the classic builder's messages.
    pub async fn build(
        self: &Arc<Self>,
        context: PathBuf,
        opts: BuildOptions,
        tx: Progress,
    ) -> Result<String> {
        let work = self.tmp_path("build");
        let ctx = work.join("context");
        let res = async {
            std::fs::create_dir_all(&ctx)?;
            self.unpack_context(&context, &ctx).await?;
            self.build_in(&ctx, &opts, &tx).await
        }
        .await;
        let _ = std::fs::remove_dir_all(&work);
        res
    }

    async fn unpack_context(&self, tar: &Path, ctx: &Path) -> Result<()> {
        let (tar, ctx) = (tar.to_path_buf(), ctx.to_path_buf());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let f = std::fs::File::open(&tar)?;
            let input = berth_image::compression::decompress(f)?;
            let root = Root::open(&ctx)?;
            archive::extract_tar(&root, "/", input, ExtractOptions::default())
                .map_err(|e| Error::invalid(format!("unpacking the build context: {e}")))
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?
    }

    async fn build_in(
        self: &Arc<Self>,
        ctx: &Path,
        opts: &BuildOptions,
        tx: &Progress,
    ) -> Result<String> {
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            opts.dockerfile.clone()
        };
        let text = read_context_file(ctx, &name)?
            .ok_or_else(|| Error::invalid(format!("Cannot locate specified Dockerfile: {name}")))?;
        let df = berth_dockerfile::parse(&text).map_err(|e| Error::invalid(e.to_string()))?;
        if let Some(ignore) = read_context_file(ctx, ".dockerignore")? {
            let ignore = DockerIgnore::parse(&ignore);
            let keep = [name.as_str(), ".dockerignore"];
            apply_dockerignore(ctx, &ignore, &keep).map_err(|e| {
                Error::Internal(anyhow::Error::from(e).context("applying .dockerignore"))
            })?;
        }
        if df.stages.is_empty() {
            return Err(Error::invalid("dockerfile has no FROM instruction"));
        }
        let target = match opts.target.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => df
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| {
                    Error::invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            None => df.stages.len() - 1,
        };
        // global ARGs, for FROM lines
        let mut global: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut consumed: HashSet<String> = HashSet::new();
        for (k, default) in &df.global_args {
            if opts.build_args.contains_key(k) {
                consumed.insert(k.clone());
            }
            // a build arg without a value (`--build-arg K` with K unset on
            // the client) leaves the default, as in Docker
            let v = match opts.build_args.get(k).cloned().flatten() {
                Some(v) => Some(v),
                None => match default {
                    Some(d) => Some(
                        berth_dockerfile::expand(d, df.escape, &|n| {
                            global.get(n).cloned().flatten()
                        })
                        .map_err(|e| Error::invalid(e.to_string()))?,
                    ),
                    None => None,
                },
            };
            global.insert(k.clone(), v);
        }

        let stages = needed_stages(&df, target, &global)?;
        let total: usize = stages
            .iter()
            .map(|i| 1 + df.stages[*i].instructions.len())
            .sum();

        // stages whose inputs are built run at once, a wave at a time; the
        // output of a wave comes stage by stage, in file order (the first
        // live, the others as soon as those before them are done)
        let mut level: HashMap<usize, usize> = HashMap::new();
        let mut first_step: HashMap<usize, usize> = HashMap::new();
        let mut step = 0usize;
        for &si in &stages {
            let lv = stage_deps(&df, si, &global)
                .iter()
                .filter_map(|d| level.get(d))
                .max()
                .map_or(0, |l| l + 1);
            level.insert(si, lv);
            first_step.insert(si, step);
            step += 1 + df.stages[si].instructions.len();
        }
        let mut results: HashMap<usize, StageState> = HashMap::new();
        let waves = level.values().max().map_or(0, |m| m + 1);
        for lv in 0..waves {
            let wave: Vec<usize> = stages.iter().copied().filter(|s| level[s] == lv).collect();
            let mut outputs = Vec::new();
            let mut builds = Vec::new();
            for &si in &wave {
                let (stx, srx) = tokio::sync::mpsc::channel(1024);
                outputs.push(srx);
                builds.push(self.build_stage(
                    &df,
                    si,
                    first_step[&si],
                    total,
                    &global,
                    &results,
                    ctx,
                    opts,
                    stx,
                ));
            }
            let forward = async {
                for mut rx in outputs {
                    while let Some(v) = rx.recv().await {
                        // the client left: dropping the receivers tells
                        // the stages to stop at their next step
                        if tx.send(v).await.is_err() {
                            return;
                        }
                    }
                }
            };
            let (built, ()) = tokio::join!(futures_util::future::join_all(builds), forward);
            for (si, b) in wave.iter().zip(built) {
                let (st, used) = b?;
                consumed.extend(used);
                results.insert(*si, st);
            }
        }
        let unused: Vec<String> = opts
            .build_args
            .keys()
            .filter(|k| !consumed.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unused.is_empty() {
            let mut unused = unused;
            unused.sort();
            say(
                tx,
                opts.quiet,
                format!(
                    "[Warning] One or more build-args [{}] were not consumed\n",
                    unused.join(" ")
                ),
            )
            .await;
        }
        let mut last = results
            .remove(&target)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("target stage was not built")))?;
        if !opts.labels.is_empty() {
            let mut labels = last.cfg_object("Labels");
            for (k, v) in &opts.labels {
                labels[k] = json!(v);
            }
            last.cfg_mut().insert("Labels".into(), labels);
            let shown: Vec<String> = {
                let mut v: Vec<String> = opts
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                v.sort();
                v
            };
            self.meta_step(
                &mut last,
                opts,
                tx,
                format!("/bin/sh -c #(nop)  LABEL {}", shown.join(" ")),
            )
            .await?;
        }
        let mut image = match &last.image {
            Some(i) => i.clone(),
            None => {
                self.commit_step(&mut last, None, String::new(), "empty")
                    .await?;
                last.image
                    .clone()
                    .ok_or_else(|| Error::Internal(anyhow::anyhow!("empty image was not stored")))?
            }
        };
        if opts.squash && image.diff_ids.len() > last.base_layers {
            image = self.squash(&image, last.base_layers, &last.base_id).await?;
        }
        let short = short_id(&image.id).to_string();
        let _ = tx.send(json!({ "aux": { "ID": image.id } })).await;
        if opts.quiet {
            let _ = tx
                .send(json!({ "stream": format!("{}\n", image.id) }))
                .await;
        } else {
            say(tx, false, format!("Successfully built {short}\n")).await;
        }
        for t in &opts.tags {
            let r = parse_tag(t)?;
            let (repo, tag) = (r.repository(), r.tag.clone());
            self.image_tag(&image.id, &repo, tag.as_deref())?;
            say(
                tx,
                opts.quiet,
                format!("Successfully tagged {}\n", r.familiar()),
            )
            .await;
        }
        self.object_event("image", &image.id, "build", &[]);
        Ok(image.id)
    }

    /// Builds one stage; returns its state and the build args it used.
    #[allow(clippy::too_many_arguments)]
    async fn build_stage(
        self: &Arc<Self>,
        df: &Dockerfile,
        si: usize,
        mut step: usize,
        total: usize,
        global: &BTreeMap<String, Option<String>>,
        results: &HashMap<usize, StageState>,
        ctx: &Path,
        opts: &BuildOptions,
        tx: Progress,
    ) -> Result<(StageState, HashSet<String>)> {
        let tx = &tx;
        let mut consumed = HashSet::new();
        let stage = &df.stages[si];
        step += 1;
        say(
            tx,
            opts.quiet,
            format!("Step {step}/{total} : {}\n", stage.original),
        )
        .await;
        let base = berth_dockerfile::expand(&stage.base, df.escape, &|n| {
            global.get(n).cloned().flatten()
        })
        .map_err(|e| Error::invalid(e.to_string()))?;
        let mut st = match stage_index(df, &base, si) {
            Some(j) => {
                let prev = results
                    .get(&j)
                    .ok_or_else(|| Error::Internal(anyhow::anyhow!("stage {j} was not built")))?;
                StageState {
                    image: prev.image.clone(),
                    config: prev.config.clone(),
                    args: BTreeMap::new(),
                    globals: global.clone(),
                    cmd_set: false,
                    base_layers: prev.image.as_ref().map_or(0, |i| i.diff_ids.len()),
                    base_id: prev
                        .image
                        .as_ref()
                        .map(|i| i.id.clone())
                        .unwrap_or_default(),
                }
            }
            None if base == "scratch" => StageState {
                image: None,
                config: scratch_config()?,
                args: BTreeMap::new(),
                globals: global.clone(),
                cmd_set: false,
                base_layers: 0,
                base_id: String::new(),
            },
            None => {
                let img = self.base_image(&base, opts, tx).await?;
                let config = self.image_config_raw(&img.id)?;
                if !config.is_object() {
                    return Err(Error::invalid(format!(
                        "the config of {base} is not a JSON object"
                    )));
                }
                StageState {
                    base_layers: img.diff_ids.len(),
                    base_id: img.id.clone(),
                    image: Some(img),
                    config,
                    args: BTreeMap::new(),
                    globals: global.clone(),
                    cmd_set: false,
                }
            }
        };
        if st.image.is_none() {
            // `FROM scratch`: steps build on the one empty image, so that
            // they find their cache (the config is still untouched here)
            self.current_image(&mut st).await?;
        } else if let Some(img) = &st.image {
            say(tx, opts.quiet, format!(" ---> {}\n", short_id(&img.id))).await;
        }
        // ONBUILD triggers of the base run first, as Docker does
        let triggers = st.cfg_strings("OnBuild");
        if !triggers.is_empty() {
            st.cfg_mut().insert("OnBuild".into(), Value::Null);
        }
        for t in triggers {
            say(tx, opts.quiet, format!(" ---> Running in trigger: {t}\n")).await;
            let parsed = berth_dockerfile::parse(&format!("FROM scratch\n{t}\n"))
                .map_err(|e| Error::invalid(e.to_string()))?;
            for ins in parsed.stages.into_iter().flat_map(|s| s.instructions) {
                self.step(df, &ins, &mut st, ctx, opts, tx, results, &mut consumed)
                    .await?;
            }
        }
        for ins in &stage.instructions {
            if tx.is_closed() {
                return Err(Error::invalid("build canceled: the client went away"));
            }
            step += 1;
            say(
                tx,
                opts.quiet,
                format!("Step {step}/{total} : {}\n", ins.original),
            )
            .await;
            self.step(df, ins, &mut st, ctx, opts, tx, results, &mut consumed)
                .await?;
        }
        Ok((st, consumed))
    }

    /// FROM's image: local unless missing or `--pull`.
    async fn base_image(
        self: &Arc<Self>,
        name: &str,
        opts: &BuildOptions,
        tx: &Progress,
    ) -> Result<ImageRecord> {
        if !opts.pull
            && let Ok(img) = self.resolve_image(name)
        {
            return Ok(img);
        }
        let pull = PullOptions {
            image: name.to_string(),
            tag: None,
            platform: None,
            credentials: opts.credentials.clone(),
        };
        let plan = self.pull_prepare(&pull).await?;
        let id = self.pull_run(plan, tx.clone()).await?;
        self.resolve_image(&id)
    }

    #[allow(clippy::too_many_arguments)]
    async fn step(
        self: &Arc<Self>,
        df: &Dockerfile,
        ins: &Instruction,
        st: &mut StageState,
        ctx: &Path,
        opts: &BuildOptions,
        tx: &Progress,
        stages: &HashMap<usize, StageState>,
        consumed: &mut HashSet<String>,
    ) -> Result<()> {
        match &ins.kind {
            Kind::Run {
                cmd,
                mounts,
                network,
                heredocs,
            } => {
                let argv = run_argv(cmd, heredocs, &st.shell());
                let run_args = st.run_args();
                let mut created_by = argv.join(" ");
                if !run_args.is_empty() {
                    created_by = format!("|{} {} {created_by}", run_args.len(), run_args.join(" "));
                }
                let key_extra = run_cache_key(&created_by, mounts, network.as_deref(), ctx)?;
                // the proxy args reach RUN without an ARG, and stay out of
                // the history and the cache key, as in Docker
                let mut run_env = run_args;
                for name in PREDEFINED_ARGS {
                    if !st.args.contains_key(*name)
                        && let Some(Some(v)) = opts.build_args.get(*name)
                    {
                        run_env.push(format!("{name}={v}"));
                    }
                }
                if self
                    .cache_hit(st, opts, tx, &key_extra, &created_by, true)
                    .await?
                {
                    return Ok(());
                }
                let id = self
                    .run_step(st, argv, run_env, mounts, network.as_deref(), ctx, opts, tx)
                    .await?;
                let committed = self
                    .commit_step(st, Some(&id), created_by, &key_extra)
                    .await;
                if opts.rm || opts.force_rm {
                    say(
                        tx,
                        opts.quiet,
                        format!("Removing intermediate container {}\n", short_id(&id)),
                    )
                    .await;
                }
                self.remove_step_container(&id).await;
                committed?;
                self.finish_step(st, opts, tx).await;
                Ok(())
            }
            Kind::Copy {
                srcs,
                dest,
                from,
                chown,
                chmod,
                heredocs,
                ..
            } => {
                let c = CopyStep {
                    srcs,
                    dest,
                    from: from.as_deref(),
                    chown: chown.as_deref(),
                    chmod: chmod.as_deref(),
                    checksum: None,
                    heredocs,
                    is_add: false,
                };
                self.copy_step(st, df, ins, c, ctx, opts, tx, stages).await
            }
            Kind::Add {
                srcs,
                dest,
                chown,
                chmod,
                checksum,
                heredocs,
                ..
            } => {
                let c = CopyStep {
                    srcs,
                    dest,
                    from: None,
                    chown: chown.as_deref(),
                    chmod: chmod.as_deref(),
                    checksum: checksum.as_deref(),
                    heredocs,
                    is_add: true,
                };
                self.copy_step(st, df, ins, c, ctx, opts, tx, stages).await
            }
            _ => {
                let mut warning = None;
                let created_by = config_change(df.escape, ins, st, opts, consumed, &mut warning)?;
                if let Some(w) = warning {
                    say(tx, opts.quiet, w).await;
                }
                self.meta_step(st, opts, tx, created_by).await
            }
        }
    }

    /// A step that only changes the config: cached like any other.
    async fn meta_step(
        self: &Arc<Self>,
        st: &mut StageState,
        opts: &BuildOptions,
        tx: &Progress,
        created_by: String,
    ) -> Result<()> {
        let key = format!(
            "{created_by}\n{}",
            st.config.get("config").unwrap_or(&Value::Null)
        );
        if self
            .cache_hit(st, opts, tx, &key, &created_by, false)
            .await?
        {
            return Ok(());
        }
        self.commit_step(st, None, created_by, &key).await?;
        self.finish_step(st, opts, tx).await;
        Ok(())
    }

    async fn finish_step(&self, st: &StageState, opts: &BuildOptions, tx: &Progress) {
        if let Some(img) = &st.image {
            say(tx, opts.quiet, format!(" ---> {}\n", short_id(&img.id))).await;
        }
    }

    /// Reuses the child of the current image that the same step made before.
    async fn cache_hit(
        self: &Arc<Self>,
        st: &mut StageState,
        opts: &BuildOptions,
        tx: &Progress,
        key: &str,
        created_by: &str,
        layer_step: bool,
    ) -> Result<bool> {
        if opts.no_cache {
            return Ok(false);
        }
        let parent = st.image.as_ref().map(|i| i.id.clone()).unwrap_or_default();
        let build_key = step_build_key(&parent, key);
        let hit = self
            .images
            .r()
            .images
            .values()
            .filter(|i| i.parent == parent && i.build_key == build_key)
            .max_by(|a, b| a.created.cmp(&b.created))
            .cloned();
        let hit = match hit {
            Some(h) => Some(h),
            None => match self.cache_from_match(st, &opts.cache_from, created_by, layer_step) {
                Some(diff_id) => {
                    let this = self.clone();
                    let (base, config) = (st.image.clone(), st.config.clone());
                    let created_by = created_by.to_string();
                    Some(
                        tokio::task::spawn_blocking(move || {
                            let layer = diff_id.as_deref().map(StepLayer::Existing);
                            this.store_step_image(
                                base.as_ref(),
                                config,
                                layer,
                                &created_by,
                                &build_key,
                            )
                        })
                        .await
                        .map_err(|e| Error::Internal(e.into()))??,
                    )
                }
                None => None,
            },
        };
        let Some(img) = hit else {
            return Ok(false);
        };
        let Ok(config) = self.image_config_raw(&img.id) else {
            return Ok(false);
        };
        // the config carries the stage's state on: ENV, WORKDIR, ...
        let args = std::mem::take(&mut st.args);
        st.config = config;
        st.args = args;
        st.image = Some(img.clone());
        say(tx, opts.quiet, " ---> Using cache\n").await;
        say(tx, opts.quiet, format!(" ---> {}\n", short_id(&img.id))).await;
        Ok(true)
    }

    /// `--cache-from`: an image whose history continues the current one
    /// with this very step (same `created_by`, same layer-ness) provides
    /// the step's layer. Returns the layer's diff id (None for a config
    /// step) on a match.
    fn cache_from_match(
        &self,
        st: &StageState,
        sources: &[String],
        created_by: &str,
        layer_step: bool,
    ) -> Option<Option<String>> {
        let empty = |h: &Value| h.get("empty_layer").and_then(Value::as_bool) == Some(true);
        let current: Vec<Value> = st
            .config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let diffs: Vec<String> = st
            .image
            .as_ref()
            .map(|i| i.diff_ids.clone())
            .unwrap_or_default();
        for name in sources {
            let Ok(img) = self.resolve_image(name) else {
                continue;
            };
            let Ok(cfg) = self.image_config_raw(&img.id) else {
                continue;
            };
            let Some(hist) = cfg.get("history").and_then(Value::as_array) else {
                continue;
            };
            let n = current.len();
            let same_so_far = hist.len() > n
                && hist[..n].iter().zip(&current).all(|(a, b)| {
                    a.get("created_by") == b.get("created_by") && empty(a) == empty(b)
                })
                && img.diff_ids.starts_with(&diffs);
            let Some(next) = hist.get(n) else {
                continue;
            };
            if !same_so_far
                || next.get("created_by").and_then(Value::as_str) != Some(created_by)
                || empty(next) == layer_step
            {
                continue;
            }
            if !layer_step {
                return Some(None);
            }
            if let Some(d) = img.diff_ids.get(diffs.len()) {
                return Some(Some(d.clone()));
            }
        }
        None
    }

    /// Stores the stage's config as a new image on top of the current one,
    /// with `container`'s changes as its layer (none for a config step).
    async fn commit_step(
        self: &Arc<Self>,
        st: &mut StageState,
        container: Option<&str>,
        created_by: String,
        key: &str,
    ) -> Result<()> {
        let parent = st.image.as_ref().map(|i| i.id.clone()).unwrap_or_default();
        let build_key = step_build_key(&parent, key);
        let layer_tar = match container {
            Some(id) => {
                let (upper, _) = self.overlay_dirs_of(id);
                let tmp = self.tmp_path("build-layer");
                let t = tmp.clone();
                let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    let f = std::fs::File::create(&t)?;
                    berth_archive::diff::write_layer_tar(&upper, std::io::BufWriter::new(f))
                })
                .await
                .map_err(|e| Error::Internal(e.into()))
                .and_then(|r| {
                    r.map_err(|e| {
                        Error::Internal(
                            anyhow::Error::from(e).context("reading the step's changes"),
                        )
                    })
                });
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                Some(tmp)
            }
            None => None,
        };
        let this = self.clone();
        let base = st.image.clone();
        let config = st.config.clone();
        let tar = layer_tar.clone();
        let rec = tokio::task::spawn_blocking(move || {
            this.store_step_image(
                base.as_ref(),
                config,
                tar.as_deref().map(StepLayer::Tar),
                &created_by,
                &build_key,
            )
        })
        .await
        .map_err(|e| Error::Internal(e.into()));
        if let Some(t) = &layer_tar {
            let _ = std::fs::remove_file(t);
        }
        let rec = rec??;
        st.config = self.image_config_raw(&rec.id)?;
        st.image = Some(rec);
        Ok(())
    }

    /// Writes the image of one step (blocking): the layer, if any, the
    /// config with a history entry, the record with its parent and key.
    fn store_step_image(
        &self,
        base: Option<&ImageRecord>,
        mut config: Value,
        layer: Option<StepLayer<'_>>,
        created_by: &str,
        build_key: &str,
    ) -> Result<ImageRecord> {
        if !config.is_object() {
            return Err(Error::invalid(
                "the base image's config is not a JSON object",
            ));
        }
        let mut diff_ids = base.map(|b| b.diff_ids.clone()).unwrap_or_default();
        let mut size = base.map_or(0, |b| b.size);
        let mut ops = Vec::new();
        let has_layer = layer.is_some();
        if let Some(layer) = layer {
            let diff_id = match layer {
                StepLayer::Tar(tar) => {
                    let f = std::fs::File::open(tar)?;
                    self.blobs
                        .put_reader(std::io::BufReader::new(f), None)
                        .map_err(|e| Error::Internal(e.context("storing the layer")))?
                        .0
                }
                StepLayer::Existing(d) => berth_store::Digest::parse(d)?,
            };
            let parent = chain_ids(&diff_ids).last().cloned();
            let (layer, op) = self
                .register_layer(parent.as_deref(), &diff_id)
                .map_err(|e| Error::Internal(e.context("registering the layer")))?;
            diff_ids.push(diff_id.to_string());
            size += layer.size;
            ops.extend(op);
        }
        let now = crate::now_rfc3339();
        if !created_by.is_empty() {
            let mut h = json!({ "created": now, "created_by": created_by });
            if !has_layer {
                h["empty_layer"] = json!(true);
            }
            match config.get_mut("history").and_then(Value::as_array_mut) {
                Some(list) => list.push(h),
                None => config["history"] = json!([h]),
            }
        }
        config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
        config["created"] = json!(now);
        let raw = serde_json::to_vec(&config).context("encoding image config")?;
        let id = self.blobs.put(&raw)?.to_string();
        let rec = ImageRecord {
            id,
            diff_ids,
            size,
            created: now,
            parent: base.map(|b| b.id.clone()).unwrap_or_default(),
            build_key: build_key.to_string(),
            ..Default::default()
        };
        self.store_image_ops(rec.clone(), ops, None)?;
        Ok(rec)
    }

    /// The stage's current image, stored first when the stage is still an
    /// empty `FROM scratch`.
    async fn current_image(self: &Arc<Self>, st: &mut StageState) -> Result<String> {
        if st.image.is_none() {
            // one empty image for every `FROM scratch`, so that the steps
            // on top of it find their cache
            let key = sha256_hex(b"\nscratch");
            let existing = self
                .images
                .r()
                .images
                .values()
                .find(|i| i.parent.is_empty() && i.build_key == key && i.diff_ids.is_empty())
                .cloned();
            match existing {
                Some(img) => {
                    st.config = self.image_config_raw(&img.id)?;
                    st.image = Some(img);
                }
                None => self.commit_step(st, None, String::new(), "scratch").await?,
            }
        }
        st.image
            .as_ref()
            .map(|i| i.id.clone())
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no image for the step")))
    }

    /// A container of `image` for a step: never started for COPY, run for RUN.
    async fn step_container(
        self: &Arc<Self>,
        image: &str,
        cmd: Vec<String>,
        env: Vec<String>,
        binds: Vec<String>,
        network: Option<String>,
        opts: &BuildOptions,
    ) -> Result<String> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(cmd),
            entrypoint: Some(vec![String::new()]),
            env: Some(env),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                binds: (!binds.is_empty()).then_some(binds),
                network_mode: network.or_else(|| opts.network_mode.clone()),
                extra_hosts: (!opts.extra_hosts.is_empty()).then(|| opts.extra_hosts.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.create_step_container(body).await
    }

    async fn remove_step_container(&self, id: &str) {
        if let Err(e) = self.container_remove(id, true, true).await {
            tracing::warn!(container = %id, error = %e, "removing a build container");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        self: &Arc<Self>,
        st: &mut StageState,
        argv: Vec<String>,
        run_args: Vec<String>,
        mounts: &[String],
        network: Option<&str>,
        ctx: &Path,
        opts: &BuildOptions,
        tx: &Progress,
    ) -> Result<String> {
        let image = self.current_image(st).await?;
        let network = match network {
            Some("default") | None => None,
            Some("none") => Some("none".to_string()),
            Some("host") => Some("host".to_string()),
            Some(other) => {
                return Err(Error::invalid(format!(
                    "unsupported RUN --network value: {other}"
                )));
            }
        };
        let secret_dir = self.tmp_path("build-secrets");
        let mut targets = Vec::new();
        let mut binds = Vec::new();
        for m in mounts {
            match self.run_mount(m, ctx, &secret_dir, opts, &st.workdir()) {
                Ok((bind, target)) => {
                    binds.push(bind);
                    targets.push(target);
                }
                Err(e) => {
                    // a secret already written must not outlive the step
                    let _ = std::fs::remove_dir_all(&secret_dir);
                    return Err(e);
                }
            }
        }
        let created = self
            .step_container(&image, argv.clone(), run_args, binds, network, opts)
            .await;
        let id = match created {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&secret_dir);
                return Err(e);
            }
        };
        crate::crash_point("build-step-created");
        let ran = self.run_to_exit(&id, tx, opts.quiet).await;
        let _ = std::fs::remove_dir_all(&secret_dir);
        let code = match ran {
            Ok(code) => code,
            Err(e) => {
                self.remove_step_container(&id).await;
                return Err(e);
            }
        };
        if code != 0 {
            self.remove_step_container(&id).await;
            return Err(Error::StepFailed {
                message: format!(
                    "The command '{}' returned a non-zero code: {code}",
                    argv.join(" ")
                ),
                code,
            });
        }
        self.drop_mount_points(&id, &image, &targets);
        Ok(id)
    }

    /// Starts the container, streams its output, returns its exit code.
    async fn run_to_exit(self: &Arc<Self>, id: &str, tx: &Progress, quiet: bool) -> Result<i64> {
        say(tx, quiet, format!(" ---> Running in {}\n", short_id(id))).await;
        let attach = self
            .container_attach(
                id,
                crate::AttachOptions {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                },
            )
            .await?;
        let fwd_tx = tx.clone();
        let forward = tokio::spawn(async move {
            if let Ok(s) = attach.await {
                forward_output(s.stream, fwd_tx, quiet).await;
            }
        });
        let wait = self.container_wait(id, WaitCondition::NextExit)?;
        if let Err(e) = self.container_start(id).await {
            forward.abort();
            return Err(e);
        }
        let (code, _) = wait.await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), forward).await;
        Ok(code)
    }

    /// `RUN --mount=...` as a bind of the container: `type=secret` from a
    /// private directory that is removed after the step, `type=cache` from
    /// a directory kept across builds, `type=bind` from the context.
    /// Returns the bind and its target.
    fn run_mount(
        &self,
        spec: &str,
        ctx: &Path,
        secret_dir: &Path,
        opts: &BuildOptions,
        workdir: &str,
    ) -> Result<(String, String)> {
        let kv = mount_options(spec);
        let kind = kv.get("type").map(String::as_str).unwrap_or("bind");
        let target = kv
            .get("target")
            .or_else(|| kv.get("dst"))
            .or_else(|| kv.get("destination"))
            .cloned();
        let bad = |m: String| Error::invalid(format!("invalid RUN --mount={spec}: {m}"));
        match kind {
            "secret" => {
                let id = kv
                    .get("id")
                    .cloned()
                    .or_else(|| {
                        target
                            .as_deref()
                            .and_then(|t| Path::new(t).file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                    })
                    .ok_or_else(|| bad("a secret needs an id".into()))?;
                let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                let data = match opts.secrets.get(&id) {
                    Some(d) => d.clone(),
                    None if kv.get("required").is_some_and(|r| r == "true") => {
                        return Err(bad(format!("secret {id} not found")));
                    }
                    None => Vec::new(),
                };
                std::fs::create_dir_all(secret_dir)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(secret_dir, std::fs::Permissions::from_mode(0o700))?;
                let file = secret_dir.join(sha256_hex(id.as_bytes()));
                std::fs::write(&file, data)?;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400))?;
                Ok((format!("{}:{target}:ro", file.display()), target))
            }
            "cache" => {
                let target = target.ok_or_else(|| bad("a cache mount needs a target".into()))?;
                let target = in_workdir(workdir, &target);
                let id = kv.get("id").cloned().unwrap_or_else(|| target.clone());
                let dir = crate::buildcache::use_cache_mount(&self.cfg.data_root, &id, &target)?;
                Ok((format!("{}:{target}", dir.display()), target))
            }
            "bind" => {
                let target = target.ok_or_else(|| bad("a bind mount needs a target".into()))?;
                let target = in_workdir(workdir, &target);
                if kv.contains_key("from") {
                    return Err(bad(
                        "binds from other stages or images are not supported yet".into(),
                    ));
                }
                let source = kv
                    .get("source")
                    .or_else(|| kv.get("src"))
                    .cloned()
                    .unwrap_or_default();
                let rel =
                    clean_rel(&source).ok_or_else(|| bad("source outside the context".into()))?;
                let host = berth_archive::rootpath::resolve(ctx, &rel, true)
                    .map_err(|e| bad(format!("{e:#}")))?;
                if kv
                    .get("rw")
                    .or_else(|| kv.get("readwrite"))
                    .is_some_and(|v| v == "true")
                {
                    // the context is shared by the build's steps: a
                    // writable bind would change what later steps copy
                    return Err(bad("writable (rw) bind mounts are not supported".into()));
                }
                Ok((format!("{}:{target}:ro", host.display()), target))
            }
            other => Err(bad(format!("unsupported mount type {other}"))),
        }
    }

    /// Removes the mount points a RUN's mounts made in its writable layer
    /// (empty, and absent from the image), so the layer holds no trace of
    /// secrets or caches.
    fn drop_mount_points(&self, id: &str, image: &str, targets: &[String]) {
        let (upper, _) = self.overlay_dirs_of(id);
        let lowers: Vec<PathBuf> = self
            .images
            .r()
            .images
            .get(image)
            .map(|i| {
                chain_ids(&i.diff_ids)
                    .iter()
                    .map(|c| self.layer_dir(c))
                    .collect()
            })
            .unwrap_or_default();
        for t in targets {
            let Some(mut rel) = clean_rel(t) else {
                continue;
            };
            loop {
                if rel.as_os_str().is_empty() || lowers.iter().any(|l| l.join(&rel).exists()) {
                    break;
                }
                // resolved inside the layer: a symlink the step made
                // cannot lead out of it
                let Ok(p) = berth_archive::rootpath::resolve(&upper, &rel, false) else {
                    break;
                };
                let removed = match std::fs::symlink_metadata(&p) {
                    Ok(md) if md.is_dir() => std::fs::remove_dir(&p).is_ok(),
                    Ok(md) if md.is_file() && md.len() == 0 => std::fs::remove_file(&p).is_ok(),
                    _ => false,
                };
                if !removed || !rel.pop() {
                    break;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_step(
        self: &Arc<Self>,
        st: &mut StageState,
        df: &Dockerfile,
        ins: &Instruction,
        c: CopyStep<'_>,
        ctx: &Path,
        opts: &BuildOptions,
        tx: &Progress,
        stages: &HashMap<usize, StageState>,
    ) -> Result<()> {
        let CopyStep {
            srcs,
            dest,
            from,
            chown,
            chmod,
            checksum,
            heredocs,
            is_add,
        } = c;
        let what = if is_add { "ADD" } else { "COPY" };
        let esc = df.escape;
        let lookup = |n: &str| st.lookup(n);
        let mut sources = Vec::new();
        let mut urls = Vec::new();
        for s in srcs {
            let expanded = berth_dockerfile::expand(s, esc, &lookup)
                .map_err(|e| Error::invalid(format!("line {}: {e}", ins.line)))?;
            if is_add && (expanded.starts_with("http://") || expanded.starts_with("https://")) {
                urls.push(expanded);
                continue;
            }
            sources.push(expanded);
        }
        let dest_raw = berth_dockerfile::expand(dest, esc, &lookup)
            .map_err(|e| Error::invalid(format!("line {}: {e}", ins.line)))?;
        let chmod = chmod.map(parse_chmod).transpose()?;
        let chown = chown
            .map(|c| berth_dockerfile::expand(c, esc, &lookup))
            .transpose()
            .map_err(|e| Error::invalid(format!("line {}: {e}", ins.line)))?;
        let dest_abs = in_workdir(&st.workdir(), &dest_raw);
        let wants_dir = dest_raw.ends_with('/')
            || dest_raw.ends_with("/.")
            || dest_raw == "."
            || sources.len() + urls.len() + heredocs.len() > 1;
        let dest_clean = format!(
            "/{}",
            clean_rel(&dest_abs).unwrap_or_default().to_string_lossy()
        );

        let src_kind = match from {
            None => CopyFrom::Context,
            Some(f) => {
                let f = berth_dockerfile::expand(f, esc, &lookup)
                    .map_err(|e| Error::invalid(format!("line {}: {e}", ins.line)))?;
                self.copy_from(df, &f, what, opts, tx, stages).await?
            }
        };

        // what the step reads, for the cache key
        let (content, ctx_sources) = self
            .read_copy_sources(&src_kind, &sources, &urls, heredocs, ctx, checksum, what)
            .await?;
        // several matches make the destination a directory, one does not
        let matched: usize = ctx_sources.iter().map(|(_, f)| f.len()).sum();
        let wants_dir = wants_dir || matched > 1;
        // the options are part of the history text, as in Docker, so that
        // --cache-from matches them too
        let mut flags = String::new();
        if let Some(c) = &chown {
            flags.push_str(&format!("--chown={c} "));
        }
        if let Some(m) = chmod {
            flags.push_str(&format!("--chmod={m:o} "));
        }
        let created_by = format!(
            "/bin/sh -c #(nop) {what} {flags}{}:{} in {dest_clean} ",
            if matches!(src_kind, CopyFrom::Context) {
                "file"
            } else {
                "image"
            },
            content
        );
        let key = format!(
            "{created_by}\nchown={chown:?} chmod={chmod:?} dir={wants_dir} add={is_add}\n{}",
            st.config.get("config").unwrap_or(&Value::Null)
        );
        if self
            .cache_hit(st, opts, tx, &key, &created_by, true)
            .await?
        {
            return Ok(());
        }

        let image = self.current_image(st).await?;
        let dest_id = self
            .step_container(
                &image,
                vec!["#(nop)".into()],
                vec![],
                vec![],
                Some("none".into()),
                opts,
            )
            .await?;
        let plan = CopyPlan {
            dest: dest_clean.clone(),
            dest_is_dir: wants_dir,
            owner: None,
            chmod,
        };
        let result = self
            .copy_into(
                &dest_id,
                src_kind.image(),
                ctx,
                ctx_sources,
                sources.clone(),
                heredocs.to_vec(),
                plan,
                chown.clone(),
                is_add,
                opts,
            )
            .await;
        let skipped = match result {
            Ok(s) => s,
            Err(e) => {
                self.remove_step_container(&dest_id).await;
                return Err(e);
            }
        };
        say_skipped_devices(tx, opts.quiet, skipped).await;
        let committed = self.commit_step(st, Some(&dest_id), created_by, &key).await;
        self.remove_step_container(&dest_id).await;
        committed?;
        self.finish_step(st, opts, tx).await;
        Ok(())
    }

    /// The image a `--from` names: an earlier stage's, or an image.
    async fn copy_from(
        self: &Arc<Self>,
        df: &Dockerfile,
        f: &str,
        what: &str,
        opts: &BuildOptions,
        tx: &Progress,
        stages: &HashMap<usize, StageState>,
    ) -> Result<CopyFrom> {
        let Some(j) = stage_index(df, f, df.stages.len()) else {
            return Ok(CopyFrom::Image(self.base_image(f, opts, tx).await?.id));
        };
        let s = stages.get(&j).ok_or_else(|| {
            Error::invalid(format!(
                "{what} --from={f}: the stage refers to itself or a later stage"
            ))
        })?;
        match &s.image {
            Some(i) => Ok(CopyFrom::Image(i.id.clone())),
            None => Err(Error::invalid(format!(
                "{what} --from={f}: the stage has no files"
            ))),
        }
    }

    /// The sources of a COPY or ADD found in the context (downloads
    /// fetched), and the hash of what the step reads: its cache key's
    /// content part.
    #[allow(clippy::too_many_arguments)]
    async fn read_copy_sources(
        &self,
        src_kind: &CopyFrom,
        sources: &[String],
        urls: &[String],
        heredocs: &[berth_dockerfile::Heredoc],
        ctx: &Path,
        checksum: Option<&str>,
        what: &str,
    ) -> Result<(String, Vec<(String, Vec<CopySource>)>)> {
        let mut h = Sha256::new();
        let mut ctx_sources: Vec<(String, Vec<CopySource>)> = Vec::new();
        match src_kind {
            CopyFrom::Context => {
                for s in sources {
                    let found = expand_sources(ctx, s).map_err(|e| match e {
                        Error::InvalidParameter(m) => Error::invalid(m.replacen("COPY", what, 1)),
                        other => other,
                    })?;
                    for f in &found {
                        hash_tree(ctx, &f.path, &mut h).map_err(|e| {
                            Error::invalid(format!(
                                "{what} failed: reading {}: {e}",
                                f.path.display()
                            ))
                        })?;
                    }
                    ctx_sources.push((s.clone(), found));
                }
                for (i, url) in urls.iter().enumerate() {
                    let found = self.add_download(ctx, i, url, checksum).await?;
                    // the name and content, not the private directory
                    // the download sits in
                    h.update(url.as_bytes());
                    h.update(
                        found
                            .path
                            .file_name()
                            .unwrap_or_default()
                            .as_encoded_bytes(),
                    );
                    let (digest, _) = berth_store::digest_of_file(&ctx.join(&found.path))
                        .map_err(|e| Error::Internal(e.context("hashing the download")))?;
                    h.update(digest.as_str().as_bytes());
                    ctx_sources.push((url.clone(), vec![found]));
                }
            }
            CopyFrom::Image(id) => {
                h.update(id.as_bytes());
                for s in sources {
                    h.update(s.as_bytes());
                    h.update(b"\0");
                }
            }
        }
        for d in heredocs {
            h.update(d.name.as_bytes());
            h.update(d.content.as_bytes());
        }
        Ok((hex::encode(h.finalize()), ctx_sources))
    }

    /// `ADD <url>`: the download, as a file of the context (mode 0600 and
    /// the server's Last-Modified, as Docker sets them).
    async fn add_download(
        &self,
        ctx: &Path,
        n: usize,
        url: &str,
        checksum: Option<&str>,
    ) -> Result<CopySource> {
        use std::os::unix::fs::PermissionsExt;
        let dir_rel = PathBuf::from(format!(".berth-add-{}-{n}", &crate::random_id()[..12]));
        let dir = ctx.join(&dir_rel);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(".download");
        let got = berth_distribution::fetch::fetch_to_file(url, &tmp, &self.cfg.certs_dir)
            .await
            .map_err(|e| Error::invalid(format!("ADD {url}: {e}")))?;
        if let Some(want) = checksum {
            let (digest, _) = berth_store::digest_of_file(&tmp)
                .map_err(|e| Error::Internal(e.context("hashing the download")))?;
            let have = digest.to_string();
            if want != have {
                return Err(Error::invalid(format!(
                    "ADD {url}: digest mismatch: expected {want}, got {have}"
                )));
            }
        }
        let name = if got.file_name.is_empty() || got.file_name.starts_with('.') {
            "download".to_string()
        } else {
            got.file_name.clone()
        };
        let path = dir.join(&name);
        std::fs::rename(&tmp, &path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        if let Some(t) = got.modified {
            let ts = nix::sys::time::TimeSpec::new(t, 0);
            let _ = nix::sys::stat::utimensat(
                None,
                &path,
                &ts,
                &ts,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            );
        }
        Ok(CopySource {
            path: dir_rel.join(name),
            is_dir: false,
            no_extract: true,
        })
    }

    /// Copies the sources into the (never started) container `dest_id`.
    #[allow(clippy::too_many_arguments)]
    async fn copy_into(
        self: &Arc<Self>,
        dest_id: &str,
        image_source: Option<String>,
        ctx: &Path,
        ctx_sources: Vec<(String, Vec<CopySource>)>,
        sources: Vec<String>,
        heredocs: Vec<berth_dockerfile::Heredoc>,
        mut plan: CopyPlan,
        chown: Option<String>,
        is_add: bool,
        opts: &BuildOptions,
    ) -> Result<Vec<String>> {
        let work = self.tmp_path("build-copy");
        std::fs::create_dir_all(&work)?;
        let res = async {
            // files of another image: archived from a container of it first
            let mut image_parts: Vec<(PathBuf, String, bool)> = Vec::new();
            if let Some(img) = &image_source {
                let src_id = self
                    .step_container(
                        img,
                        vec!["#(nop)".into()],
                        vec![],
                        vec![],
                        Some("none".into()),
                        opts,
                    )
                    .await?;
                let (w, srcs) = (work.clone(), sources.clone());
                let archived = self
                    .with_root(&src_id, crate::copy::View::RootOnly, move |root| {
                        let mut parts = Vec::new();
                        // wildcards and names resolved inside the image's
                        // root, as for the context
                        let mut found = Vec::new();
                        for s in &srcs {
                            found.extend(expand_sources(&root.proc_path(), s)?);
                        }
                        for (i, f) in found.iter().enumerate() {
                            let path = format!("/{}", f.path.to_string_lossy());
                            let path = if path == "/" { "/.".to_string() } else { path };
                            let st = archive::stat(root, &path).map_err(|_| {
                                Error::invalid(format!(
                                    "COPY failed: stat {path}: file does not exist"
                                ))
                            })?;
                            let file = w.join(format!("src-{i}.tar"));
                            let out = std::fs::File::create(&file)?;
                            archive::write_tar(root, &path, std::io::BufWriter::new(out))
                                .map_err(|e| Error::Internal(e.into()))?;
                            parts.push((file, st.name.clone(), f.is_dir));
                        }
                        Ok(parts)
                    })
                    .await;
                self.remove_step_container(&src_id).await;
                image_parts = archived?;
            }
            let (w, ctx) = (work.clone(), ctx.to_path_buf());
            self.with_root(dest_id, crate::copy::View::RootOnly, move |root| {
                let dest = plan.dest.clone();
                if let Ok(st) = archive::stat(root, &dest)
                    && st.mode & (1 << 31) != 0
                {
                    plan.dest_is_dir = true;
                }
                if image_parts.len() > 1 {
                    plan.dest_is_dir = true;
                }
                if let Some(c) = &chown {
                    let (u, g, _) =
                        crate::spec::resolve_user(&root.proc_path(), c).map_err(|e| {
                            Error::invalid(format!(
                                "unable to convert uid/gid chown string to host mapping: {e}"
                            ))
                        })?;
                    // a user alone gives the group of the same number,
                    // as Docker's --chown does
                    let g = if c.contains(':') { g } else { u };
                    plan.owner = Some((u as u64, g as u64));
                }
                let any_dir_source = ctx_sources.iter().any(|(_, f)| f.iter().any(|c| c.is_dir))
                    || image_parts.iter().any(|p| p.2);
                let combined = w.join("combined.tar");
                let mut skipped = Vec::new();
                {
                    let out = std::fs::File::create(&combined)?;
                    let mut b = tar::Builder::new(std::io::BufWriter::new(out));
                    let parent = if plan.dest_is_dir || any_dir_source {
                        dest.clone()
                    } else {
                        Path::new(&dest)
                            .parent()
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_else(|| "/".into())
                    };
                    parent_entries(root, &parent, plan.owner, &mut b)?;
                    let ctx_root = Root::open(&ctx)?;
                    for (_, found) in &ctx_sources {
                        for f in found {
                            let host = berth_archive::rootpath::resolve(&ctx, &f.path, true)?;
                            if is_add && !f.is_dir && !f.no_extract && is_local_archive(&host) {
                                add_archive(&host, &dest, &plan, &mut b, &mut skipped)?;
                                continue;
                            }
                            let part = w.join("part.tar");
                            let out = std::fs::File::create(&part)?;
                            // the root itself is archived as "." (a top
                            // entry named "/" is no tar member)
                            let src = format!("/{}", f.path.to_string_lossy());
                            let src = if src == "/" { "/.".to_string() } else { src };
                            archive::write_tar(&ctx_root, &src, std::io::BufWriter::new(out))?;
                            let top = f
                                .path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_else(|| ".".into());
                            rewrite_into(
                                std::fs::File::open(&part)?,
                                &mut b,
                                (f.is_dir, &top),
                                &plan,
                                &mut skipped,
                            )?;
                        }
                    }
                    for (file, name, is_dir) in &image_parts {
                        rewrite_into(
                            std::fs::File::open(file)?,
                            &mut b,
                            (*is_dir, name),
                            &plan,
                            &mut skipped,
                        )?;
                    }
                    for d in &heredocs {
                        let target = if plan.dest_is_dir {
                            Path::new(&dest).join(&d.name)
                        } else {
                            PathBuf::from(&dest)
                        };
                        let mut h = tar::Header::new_gnu();
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_size(d.content.len() as u64);
                        h.set_mode(plan.chmod.unwrap_or(0o644));
                        let (u, g) = plan.owner.unwrap_or((0, 0));
                        h.set_uid(u);
                        h.set_gid(g);
                        h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
                        let rel = target.strip_prefix("/").unwrap_or(&target).to_path_buf();
                        b.append_data(&mut h, rel, d.content.as_bytes())?;
                    }
                    b.into_inner()?.flush()?;
                }
                let input = std::fs::File::open(&combined)?;
                archive::extract_tar(
                    root,
                    "/",
                    std::io::BufReader::new(input),
                    ExtractOptions {
                        copy_uid_gid: true,
                        no_overwrite_dir_non_dir: false,
                    },
                )
                .map_err(|e| Error::invalid(format!("copying files: {e}")))?;
                Ok(skipped)
            })
            .await
        }
        .await;
        let _ = std::fs::remove_dir_all(&work);
        res
    }

    /// `--squash`: the layers the build added above its base, merged into
    /// one; the history keeps every step (marked empty) plus a merge entry.
    async fn squash(
        self: &Arc<Self>,
        image: &ImageRecord,
        base_layers: usize,
        base_id: &str,
    ) -> Result<ImageRecord> {
        let this = self.clone();
        let (image, base_id) = (image.clone(), base_id.to_string());
        tokio::task::spawn_blocking(move || this.squash_blocking(&image, base_layers, &base_id))
            .await
            .map_err(|e| Error::Internal(e.into()))?
    }

    fn squash_blocking(
        &self,
        image: &ImageRecord,
        base_layers: usize,
        base_id: &str,
    ) -> Result<ImageRecord> {
        let work = self.tmp_path("squash");
        let staging = work.join("merged");
        std::fs::create_dir_all(&staging)?;
        let res = (|| -> Result<ImageRecord> {
            let chains = chain_ids(&image.diff_ids);
            for chain in &chains[base_layers..] {
                merge_layer_dir(&self.layer_dir(chain), &staging).map_err(|e| {
                    Error::Internal(anyhow::Error::from(e).context("merging layers"))
                })?;
            }
            let tar = work.join("layer.tar");
            let f = std::fs::File::create(&tar)?;
            berth_archive::diff::write_layer_tar(&staging, std::io::BufWriter::new(f))?;
            let mut config = self.image_config_raw(&image.id)?;
            let base_history = if base_id.is_empty() {
                0
            } else {
                self.image_config_raw(base_id)?
                    .get("history")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            };
            let merged_onto = if base_id.is_empty() {
                "scratch"
            } else {
                base_id
            };
            if let Some(list) = config.get_mut("history").and_then(Value::as_array_mut) {
                for h in list.iter_mut().skip(base_history) {
                    if let Some(o) = h.as_object_mut() {
                        o.insert("empty_layer".into(), json!(true));
                    }
                }
                list.push(json!({
                    "created": crate::now_rfc3339(),
                    "comment": format!("merge {} to {merged_onto}", image.id),
                }));
            }
            let base_size = self.images.r().images.get(base_id).map_or(0, |b| b.size);
            let base = ImageRecord {
                id: base_id.to_string(),
                diff_ids: image.diff_ids[..base_layers].to_vec(),
                size: base_size,
                ..Default::default()
            };
            // the merge entry is in the history already: no step entry
            self.store_step_image(Some(&base), config, Some(StepLayer::Tar(&tar)), "", "")
        })();
        let _ = std::fs::remove_dir_all(&work);
        res
    }
}

/// Device nodes are skipped in every layer berth unpacks (a container gets
/// its /dev from the runtime), so COPY and ADD say so instead of copying.
fn is_device(kind: tar::EntryType) -> bool {
    matches!(kind, tar::EntryType::Char | tar::EntryType::Block)
}

/// Unpacks a local archive for ADD: its members go under the destination
/// directory; names that climb out of it are refused.
fn add_archive<W: Write>(
    file: &Path,
    dest: &str,
    plan: &CopyPlan,
    out: &mut tar::Builder<W>,
    skipped: &mut Vec<String>,
) -> Result<()> {
    let input = berth_image::compression::decompress(std::fs::File::open(file)?)?;
    let mut archive = tar::Archive::new(input);
    let base = dest.trim_start_matches('/');
    for entry in archive.entries()? {
        let mut entry = entry?;
        let sparse = berth_archive::sparse::pax_sparse(&mut entry)
            .map_err(|e| Error::invalid(format!("ADD failed: {e}")))?;
        let raw = match sparse.as_ref().and_then(|s| s.name()) {
            Some(n) => n.to_path_buf(),
            None => entry.path()?.into_owned(),
        };
        let rel = clean_rel(&raw.to_string_lossy()).ok_or_else(|| {
            Error::invalid(format!(
                "ADD failed: archive entry {} would be written outside {dest}",
                raw.display()
            ))
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = Path::new(base).join(&rel);
        let mut h = entry.header().clone();
        if let Some((u, g)) = plan.owner {
            h.set_uid(u);
            h.set_gid(g);
        }
        let kind = h.entry_type();
        if is_device(kind) {
            skipped.push(target.display().to_string());
            continue;
        }
        if kind.is_hard_link() {
            let link = entry
                .link_name()?
                .map(|l| l.into_owned())
                .unwrap_or_default();
            let link = clean_rel(&link.to_string_lossy()).ok_or_else(|| {
                Error::invalid(format!(
                    "ADD failed: hard link {} leaves {dest}",
                    raw.display()
                ))
            })?;
            out.append_link(&mut h, &target, Path::new(base).join(link))?;
        } else if kind.is_symlink() {
            let link = entry
                .link_name()?
                .map(|l| l.into_owned())
                .unwrap_or_default();
            archive::append_symlink(out, &mut h, &target, &link)?;
        } else if kind.is_file() || kind.is_gnu_sparse() {
            // sparse members go in expanded, as the plain files they are
            let (size, data) = berth_archive::sparse::expanded(&mut entry, sparse.as_ref())
                .map_err(|e| Error::invalid(format!("ADD failed: {}: {e}", raw.display())))?;
            // a fresh header: a GNU sparse one carries its map along
            let mut plain = tar::Header::new_gnu();
            plain.set_entry_type(tar::EntryType::Regular);
            // archives from other tools leave numeric fields empty
            plain.set_mode(h.mode().unwrap_or(0o644));
            plain.set_uid(h.uid().unwrap_or(0));
            plain.set_gid(h.gid().unwrap_or(0));
            plain.set_mtime(h.mtime().unwrap_or(0));
            plain.set_size(size);
            out.append_data(&mut plain, &target, data)?;
        } else {
            out.append_data(&mut h, &target, &mut entry)?;
        }
    }
    Ok(())
}

/// Applies one unpacked layer directory on top of `dst`, the way overlayfs
/// would stack it: a whiteout removes what is below and stays a whiteout
/// (it may hide a file of the base), an opaque directory replaces the
/// directory below, everything else is hard-linked over.
fn merge_layer_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let remove_existing = |d: &Path| -> std::io::Result<()> {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(d),
            Ok(_) => std::fs::remove_file(d),
            Err(_) => Ok(()),
        }
    };
    for e in std::fs::read_dir(src)?.flatten() {
        let s = e.path();
        let d = dst.join(e.file_name());
        let md = std::fs::symlink_metadata(&s)?;
        if md.file_type().is_char_device() && md.rdev() == 0 {
            remove_existing(&d)?;
            nix::sys::stat::mknod(
                &d,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                0,
            )
            .map_err(std::io::Error::from)?;
        } else if md.is_dir() {
            let opaque = berth_archive::diff::is_opaque(&s);
            let below_not_dir = std::fs::symlink_metadata(&d).is_ok_and(|m| !m.is_dir());
            if opaque || below_not_dir {
                remove_existing(&d)?;
            }
            if std::fs::symlink_metadata(&d).is_err() {
                std::fs::create_dir(&d)?;
            }
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
            std::os::unix::fs::lchown(&d, Some(md.uid()), Some(md.gid()))?;
            if opaque {
                set_opaque(&d)?;
            }
            merge_layer_dir(&s, &d)?;
        } else {
            remove_existing(&d)?;
            std::fs::hard_link(&s, &d)?;
        }
    }
    Ok(())
}

fn set_opaque(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: valid C strings and a one-byte value
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A `-t` value; the reference parser's message says what is wrong.
fn parse_tag(t: &str) -> Result<berth_image::Reference> {
    berth_image::Reference::parse(t).map_err(|e| Error::invalid(e.to_string()))
}

/// The config of `FROM scratch`: no layers, no history.
fn scratch_config() -> Result<Value> {
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(Vec::<String>::new())
        .build()
        .context("building rootfs")?;
    let mut image = ImageConfiguration::default();
    image.set_architecture(Arch::Amd64);
    image.set_os(Os::Linux);
    image.set_rootfs(rootfs);
    let mut v = serde_json::to_value(&image).context("encoding image config")?;
    v["config"] =
        json!({ "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] });
    Ok(v)
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn state(env: &[&str], args: &[(&str, Option<&str>)]) -> StageState {
        StageState {
            image: None,
            config: json!({ "config": { "Env": env } }),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(String::from)))
                .collect(),
            globals: BTreeMap::new(),
            cmd_set: false,
            base_layers: 0,
            base_id: String::new(),
        }
    }

    fn tree_hash(root: &Path, rel: &str) -> String {
        let mut h = Sha256::new();
        hash_tree(root, Path::new(rel), &mut h).unwrap();
        hex::encode(h.finalize())
    }

    #[test]
    fn a_step_key_depends_on_its_parent_and_its_text() {
        let k = step_build_key("sha256:aaa", "RUN make");
        assert_eq!(k.len(), 64);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(k, step_build_key("sha256:aaa", "RUN make"));
        assert_ne!(k, step_build_key("sha256:bbb", "RUN make"));
        assert_ne!(k, step_build_key("sha256:aaa", "RUN make "));
        assert_ne!(k, step_build_key("", "RUN make"));
        // the first step of FROM scratch is keyed as the scratch lookup is
        assert_eq!(step_build_key("", "scratch"), sha256_hex(b"\nscratch"));
    }

    #[test]
    fn run_sees_declared_args_with_values_not_shadowed_by_env() {
        let st = state(
            &["PATH=/bin", "MODE=env"],
            &[
                ("VERSION", Some("1.2")),
                ("MODE", Some("arg")),
                ("UNSET", None),
                ("A_FIRST", Some("")),
            ],
        );
        // sorted by name, ENV hides an ARG of the same name
        assert_eq!(st.run_args(), ["A_FIRST=", "VERSION=1.2"]);
        // what substitution sees: ENV first, then ARG
        assert_eq!(st.lookup("MODE").as_deref(), Some("env"));
        assert_eq!(st.lookup("VERSION").as_deref(), Some("1.2"));
        assert_eq!(st.lookup("UNSET"), None);
        assert_eq!(st.lookup("NOPE"), None);
    }

    #[test]
    fn build_arg_values_change_what_run_is_keyed_by() {
        let a = state(&[], &[("V", Some("1"))]).run_args();
        let b = state(&[], &[("V", Some("2"))]).run_args();
        assert_ne!(a, b);
        // an arg that is declared but never given a value changes nothing
        let c = state(&[], &[("V", Some("1")), ("W", None)]).run_args();
        assert_eq!(a, c);
        // nor does one ENV overrides
        let d = state(&["V=9"], &[("V", Some("1"))]).run_args();
        let e = state(&["V=9"], &[("V", Some("2"))]).run_args();
        assert_eq!(d, e);
        assert!(d.is_empty());
    }

    #[test]
    fn env_updates_replace_by_name() {
        let mut st = state(&["A=1", "B=2"], &[]);
        st.set_env("A", "3");
        assert_eq!(st.env(), ["B=2", "A=3"]);
        st.set_env("C", "x=y");
        assert_eq!(st.lookup("C").as_deref(), Some("x=y"));
        // a prefix of a name is another name
        st.set_env("AB", "4");
        assert_eq!(st.lookup("A").as_deref(), Some("3"));
    }

    #[test]
    fn stage_defaults() {
        let mut st = state(&[], &[]);
        assert_eq!(st.workdir(), "/");
        assert_eq!(st.shell(), ["/bin/sh", "-c"]);
        st.config["config"]["WorkingDir"] = json!("/src");
        st.config["config"]["Shell"] = json!(["/bin/bash", "-eu", "-c"]);
        assert_eq!(st.workdir(), "/src");
        assert_eq!(st.shell(), ["/bin/bash", "-eu", "-c"]);
        assert_eq!(st.cfg_object("Labels"), json!({}));
        // a config without "config" gets one when written
        let mut bare = state(&[], &[]);
        bare.config = json!({});
        assert!(bare.env().is_empty());
        bare.set_env("K", "v");
        assert_eq!(bare.config["config"]["Env"], json!(["K=v"]));
    }

    #[test]
    fn copy_content_hash_follows_content_mode_names_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/sub")).unwrap();
        std::fs::write(root.join("src/a.txt"), b"hello").unwrap();
        std::fs::write(root.join("src/sub/b.txt"), b"world").unwrap();
        let base = tree_hash(root, "src");
        assert_eq!(base, tree_hash(root, "src"), "stable");

        // the modification time is not content
        let f = std::fs::File::options()
            .write(true)
            .open(root.join("src/a.txt"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        drop(f);
        assert_eq!(tree_hash(root, "src"), base);

        // content
        std::fs::write(root.join("src/sub/b.txt"), b"World").unwrap();
        let changed = tree_hash(root, "src");
        assert_ne!(changed, base);
        std::fs::write(root.join("src/sub/b.txt"), b"world").unwrap();
        assert_eq!(tree_hash(root, "src"), base);

        // mode
        std::fs::set_permissions(
            root.join("src/a.txt"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(tree_hash(root, "src"), base);
        std::fs::set_permissions(
            root.join("src/a.txt"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let base = tree_hash(root, "src");

        // a name
        std::fs::rename(root.join("src/a.txt"), root.join("src/c.txt")).unwrap();
        assert_ne!(tree_hash(root, "src"), base);
        std::fs::rename(root.join("src/c.txt"), root.join("src/a.txt")).unwrap();
        assert_eq!(tree_hash(root, "src"), base);

        // a new empty file counts
        std::fs::write(root.join("src/empty"), b"").unwrap();
        assert_ne!(tree_hash(root, "src"), base);
        std::fs::remove_file(root.join("src/empty")).unwrap();

        // a symlink's target
        std::os::unix::fs::symlink("a.txt", root.join("src/link")).unwrap();
        let linked = tree_hash(root, "src");
        assert_ne!(linked, base);
        std::fs::remove_file(root.join("src/link")).unwrap();
        std::os::unix::fs::symlink("sub/b.txt", root.join("src/link")).unwrap();
        assert_ne!(tree_hash(root, "src"), linked);
    }

    #[test]
    fn copy_content_hash_ignores_where_the_context_is() {
        let make = |order: &[&str]| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("d")).unwrap();
            for name in order {
                std::fs::write(dir.path().join("d").join(name), name.as_bytes()).unwrap();
                std::fs::set_permissions(
                    dir.path().join("d").join(name),
                    std::fs::Permissions::from_mode(0o644),
                )
                .unwrap();
            }
            std::fs::set_permissions(dir.path().join("d"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
            let h = tree_hash(dir.path(), "d");
            (dir, h)
        };
        // another directory, files made in another order: the same hash
        let (_a, ha) = make(&["x", "y", "z"]);
        let (_b, hb) = make(&["z", "x", "y"]);
        assert_eq!(ha, hb);
        // the path asked for is part of it: the same file under two names
        let (c, _) = make(&["x"]);
        std::fs::create_dir(c.path().join("e")).unwrap();
        std::fs::copy(c.path().join("d/x"), c.path().join("e/x")).unwrap();
        std::fs::set_permissions(c.path().join("e/x"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert_ne!(tree_hash(c.path(), "d/x"), tree_hash(c.path(), "e/x"));
    }

    #[test]
    fn copy_content_hash_of_a_missing_source_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Sha256::new();
        assert!(hash_tree(dir.path(), Path::new("nope"), &mut h).is_err());
    }

    #[test]
    fn a_link_out_of_the_context_is_hashed_as_a_link() {
        // the link is hashed by its target text, not followed out of the
        // context
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("l")).unwrap();
        let h1 = tree_hash(dir.path(), "l");
        std::fs::remove_file(dir.path().join("l")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("l")).unwrap();
        assert_ne!(tree_hash(dir.path(), "l"), h1);
    }

    #[test]
    fn run_mount_options() {
        let m = mount_options("type=cache,target=/root/.cache, ID=go ,readonly");
        assert_eq!(m["type"], "cache");
        assert_eq!(m["target"], "/root/.cache");
        assert_eq!(m["id"], "go");
        assert_eq!(m["readonly"], "true");
        // a value keeps its '=' and its case
        let m = mount_options("type=secret,id=A=B");
        assert_eq!(m["id"], "A=B");
        assert!(mount_options("").contains_key(""));
    }

    #[test]
    fn paths_in_the_image_and_the_context() {
        assert_eq!(in_workdir("/app", "x"), "/app/x");
        assert_eq!(in_workdir("/app/", "x/y"), "/app/x/y");
        assert_eq!(in_workdir("/", "x"), "/x");
        assert_eq!(in_workdir("/app", "/abs"), "/abs");
        assert_eq!(clean_rel("/a/./b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(clean_rel("."), Some(PathBuf::new()));
        assert_eq!(clean_rel("a/../.."), None);
        assert_eq!(clean_rel("../x"), None);
        assert_eq!(clean_rel("/../x"), None);
        assert!(has_wildcard("*.go") && has_wildcard("a?") && has_wildcard("[ab]"));
        assert!(!has_wildcard("plain.txt"));
    }

    #[test]
    fn chmod_values() {
        assert_eq!(parse_chmod("755").unwrap(), 0o755);
        assert_eq!(parse_chmod("0644").unwrap(), 0o644);
        assert_eq!(parse_chmod("7777").unwrap(), 0o7777);
        for bad in ["", "8", "17777", "rwx", "-1", "u+x"] {
            assert!(parse_chmod(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_in_exec_or_shell_form() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        assert_eq!(
            command_vec(&Cmd::Shell("echo $HOME".into()), &sh),
            ["/bin/sh", "-c", "echo $HOME"]
        );
        assert_eq!(
            command_vec(&Cmd::Exec(vec!["ls".into(), "-l".into()]), &sh),
            ["ls", "-l"]
        );
    }

    #[test]
    fn stages_by_name_or_index_only_earlier_ones() {
        let df = berth_dockerfile::parse(
            "FROM busybox AS base\nRUN true\nFROM base AS Build\nCOPY --from=base /a /a\nFROM scratch\nCOPY --from=build /a /a\n",
        )
        .unwrap();
        assert_eq!(stage_index(&df, "base", 2), Some(0));
        assert_eq!(stage_index(&df, "BASE", 2), Some(0));
        assert_eq!(stage_index(&df, "build", 2), Some(1));
        assert_eq!(stage_index(&df, "build", 1), None);
        assert_eq!(stage_index(&df, "0", 1), Some(0));
        assert_eq!(stage_index(&df, "1", 1), None);
        assert_eq!(stage_index(&df, "busybox", 3), None);
        let g = BTreeMap::new();
        assert_eq!(needed_stages(&df, 2, &g).unwrap(), [0, 1, 2]);
        assert_eq!(needed_stages(&df, 1, &g).unwrap(), [0, 1]);
        assert_eq!(needed_stages(&df, 0, &g).unwrap(), [0]);
        // a stage nothing reads is skipped
        let df =
            berth_dockerfile::parse("FROM busybox AS unused\nFROM busybox AS a\nFROM a\n").unwrap();
        assert_eq!(needed_stages(&df, 2, &g).unwrap(), [1, 2]);
        // FROM ${BASE} with a global ARG
        let df = berth_dockerfile::parse(
            "ARG BASE=a\nFROM busybox AS a\nFROM busybox AS b\nFROM ${BASE}\n",
        )
        .unwrap();
        let g = BTreeMap::from([("BASE".to_string(), Some("b".to_string()))]);
        assert_eq!(needed_stages(&df, 2, &g).unwrap(), [1, 2]);
    }
}

#[cfg(test)]
mod run_key_tests {
    use super::*;

    #[test]
    fn a_run_key_follows_its_command_mounts_network_and_bound_content() {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir(ctx.path().join("src")).unwrap();
        std::fs::write(ctx.path().join("src/a"), b"one").unwrap();
        let key = |cmd: &str, mounts: &[&str], net: Option<&str>| {
            let mounts: Vec<String> = mounts.iter().map(|m| m.to_string()).collect();
            run_cache_key(cmd, &mounts, net, ctx.path()).unwrap()
        };
        let base = key("make", &[], None);
        assert_eq!(base, key("make", &[], None));
        assert_ne!(base, key("make all", &[], None));
        assert_ne!(base, key("make", &[], Some("none")));
        let bound = key("make", &["type=bind,source=src,target=/s"], None);
        assert_ne!(base, bound);
        // the bound content is part of the key; a cache mount's is not
        std::fs::write(ctx.path().join("src/a"), b"two").unwrap();
        assert_ne!(
            bound,
            key("make", &["type=bind,source=src,target=/s"], None)
        );
        let cache = key("make", &["type=cache,target=/c"], None);
        std::fs::write(ctx.path().join("src/a"), b"three").unwrap();
        assert_eq!(cache, key("make", &["type=cache,target=/c"], None));
    }

    #[test]
    fn run_heredocs_become_the_script() {
        let shell = vec!["/bin/sh".to_string(), "-c".to_string()];
        let doc = |name: &str, content: &str| berth_dockerfile::Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
        };
        let argv = run_argv(
            &Cmd::Shell("<<EOF".into()),
            &[doc("EOF", "echo hi\n")],
            &shell,
        );
        assert_eq!(argv, ["/bin/sh", "-c", "echo hi\n"]);
        let argv = run_argv(&Cmd::Shell("cat <<EOF".into()), &[doc("EOF", "x")], &shell);
        assert_eq!(argv, ["/bin/sh", "-c", "cat <<EOF\nx\nEOF"]);
        let argv = run_argv(&Cmd::Exec(vec!["true".into()]), &[], &shell);
        assert_eq!(argv, ["true"]);
    }
}
