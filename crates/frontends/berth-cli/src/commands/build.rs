//! `berth build`: sends the context as a tar (without what .dockerignore
//! excludes) to POST /build and prints the classic builder's stream.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_dockerfile::DockerIgnore;

use crate::{Ctx, status};

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; "-" reads it from stdin)
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Set metadata for an image
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Squash newly built layers into a single new layer
    #[arg(long)]
    squash: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    network: String,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    add_hosts: Vec<String>,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers
    #[arg(long)]
    force_rm: bool,
    /// Secret to expose to the build: id=mysecret[,src=/local/secret|env=VAR]
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// Type of progress output (auto, plain, tty, quiet): the classic
    /// builder's output is the same plain stream for all but quiet
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty", "quiet"])]
    progress: String,
    #[command(flatten)]
    limits: BuildLimits,
    /// PATH | URL | -
    context: String,
}

/// The limits of the RUN containers, as the classic builder's flags.
#[derive(clap::Args, Debug)]
struct BuildLimits {
    /// Memory limit
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Limit the CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    cpu_period: Option<i64>,
    /// Limit the CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
}

impl BuildLimits {
    /// The query parameters of `POST /build` for the limits given.
    fn query(&self) -> Result<String> {
        use super::containers::ram_flag;
        let swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            s => ram_flag(s, "--memory-swap")?,
        };
        let numbers = [
            ("memory", ram_flag(self.memory.as_deref(), "-m, --memory")?),
            ("memswap", swap),
            ("shmsize", ram_flag(self.shm_size.as_deref(), "--shm-size")?),
            ("cpushares", self.cpu_shares),
            ("cpuperiod", self.cpu_period),
            ("cpuquota", self.cpu_quota),
        ];
        let mut q = String::new();
        for (key, value) in numbers {
            if let Some(v) = value {
                q.push_str(&format!("&{key}={v}"));
            }
        }
        for (key, value) in [
            ("cpusetcpus", &self.cpuset_cpus),
            ("cpusetmems", &self.cpuset_mems),
        ] {
            if let Some(v) = value {
                q.push_str(&format!("&{key}={}", crate::rawhttp::encode(v)));
            }
        }
        Ok(q)
    }
}

/// Adds the directory tree under `dir` to the tar, skipping what the
/// .dockerignore excludes (the Dockerfile and .dockerignore always go).
fn add_tree<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    keep: &[String],
) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = e.file_type()?;
        {
            use std::os::unix::fs::FileTypeExt;
            // sockets are no file content, as for Docker
            if ft.is_socket() {
                continue;
            }
        }
        let excluded = ignore.excluded(&r) && !keep.contains(&r);
        // an ignored directory still holds a kept file (-f docker/Dockerfile)
        let holds_kept = keep.iter().any(|k| k.starts_with(&format!("{r}/")));
        if excluded && !(ft.is_dir() && (holds_kept || ignore.may_include_below(&r))) {
            continue;
        }
        if !excluded || !ft.is_dir() {
            b.append_path_with_name(e.path(), &r)
                .with_context(|| format!("adding {r} to the build context"))?;
        }
        if ft.is_dir() {
            add_tree(b, root, &r, ignore, keep)?;
        }
    }
    Ok(())
}

fn is_tar(data: &[u8]) -> bool {
    data.len() >= 262 && &data[257..262] == b"ustar"
        || data.starts_with(&[0x1f, 0x8b])
        || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// The context tar and the Dockerfile's name inside it.
fn context_tar(a: &BuildArgs) -> Result<(Vec<u8>, String)> {
    let stdin_dockerfile = a.file.as_deref() == Some("-");
    let mut dockerfile_text: Option<Vec<u8>> = None;
    if stdin_dockerfile {
        let mut d = Vec::new();
        std::io::stdin().read_to_end(&mut d)?;
        dockerfile_text = Some(d);
    }
    if a.context == "-" {
        if stdin_dockerfile {
            return Err(status(
                1,
                "invalid argument: can't use stdin for both build context and dockerfile",
            ));
        }
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        if is_tar(&data) {
            let name = a.file.clone().unwrap_or_else(|| "Dockerfile".into());
            return Ok((data, name));
        }
        // a Dockerfile on stdin with an empty context
        dockerfile_text = Some(data);
    }
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut name = "Dockerfile".to_string();
    if a.context != "-" {
        let root = PathBuf::from(&a.context);
        if !root.is_dir() {
            return Err(status(
                1,
                format!(
                    "unable to prepare context: path \"{}\" not found",
                    a.context
                ),
            ));
        }
        let ignore = std::fs::read_to_string(root.join(".dockerignore"))
            .map(|t| DockerIgnore::parse(&t))
            .unwrap_or_else(|_| DockerIgnore::parse(""));
        if dockerfile_text.is_none()
            && let Some(f) = &a.file
        {
            let p = Path::new(f);
            let inside = std::fs::canonicalize(p)
                .ok()
                .zip(std::fs::canonicalize(&root).ok())
                .and_then(|(p, r)| {
                    p.strip_prefix(&r)
                        .ok()
                        .map(|x| x.to_string_lossy().into_owned())
                });
            match inside {
                Some(rel) => name = rel,
                None => {
                    dockerfile_text = Some(std::fs::read(p).map_err(|e| {
                        status(1, format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: {e}"))
                    })?)
                }
            }
        }
        let keep = vec![name.clone(), ".dockerignore".to_string()];
        add_tree(&mut b, &root, "", &ignore, &keep)?;
    }
    if let Some(text) = dockerfile_text {
        name = format!(
            ".dockerfile.{:x}",
            std::process::id() as u64 * 2654435761 % 0xffff_ffff
        );
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(0);
        b.append_data(&mut h, &name, text.as_slice())?;
    }
    Ok((b.into_inner()?, name))
}

fn secrets_header(specs: &[String]) -> Result<Option<String>> {
    use base64::Engine as _;
    if specs.is_empty() {
        return Ok(None);
    }
    let mut map = serde_json::Map::new();
    for s in specs {
        let mut id = None;
        let mut data = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => {
                    data = Some(
                        std::fs::read(v)
                            .map_err(|e| status(1, format!("failed to read secret {v}: {e}")))?,
                    )
                }
                Some(("env", v)) => data = std::env::var(v).ok().map(String::into_bytes),
                Some(("type", _)) => {}
                _ => return Err(status(1, format!("invalid secret {s}: unexpected {part}"))),
            }
        }
        let id = id.ok_or_else(|| status(1, format!("invalid secret {s}: id is required")))?;
        let data = match data {
            Some(d) => d,
            None => std::env::var(&id)
                .map(String::into_bytes)
                .map_err(|_| status(1, format!("invalid secret {s}: give src= or env=")))?,
        };
        map.insert(
            id,
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(data)),
        );
    }
    Ok(Some(
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&map)?),
    ))
}

pub async fn build(ctx: &Ctx, mut a: BuildArgs) -> Result<i32> {
    let enc = crate::rawhttp::encode;
    if a.progress == "quiet" {
        a.quiet = true;
    }
    let (tar, dockerfile) = context_tar(&a)?;
    if !a.quiet {
        println!(
            "Sending build context to Docker daemon  {}",
            berth_units::human_size(tar.len() as f64)
        );
    }
    let mut path = format!("/build?dockerfile={}", enc(&dockerfile));
    for t in &a.tags {
        path.push_str(&format!("&t={}", enc(t)));
    }
    let mut args = serde_json::Map::new();
    for ba in &a.build_args {
        let (k, v) = match ba.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (ba.clone(), std::env::var(ba).ok()),
        };
        args.insert(
            k,
            v.map_or(serde_json::Value::Null, serde_json::Value::String),
        );
    }
    if !args.is_empty() {
        path.push_str(&format!(
            "&buildargs={}",
            enc(&serde_json::Value::Object(args).to_string())
        ));
    }
    let mut labels = serde_json::Map::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    if !labels.is_empty() {
        path.push_str(&format!(
            "&labels={}",
            enc(&serde_json::Value::Object(labels).to_string())
        ));
    }
    if !a.cache_from.is_empty() {
        path.push_str(&format!(
            "&cachefrom={}",
            enc(&serde_json::to_string(&a.cache_from)?)
        ));
    }
    if let Some(t) = &a.target {
        path.push_str(&format!("&target={}", enc(t)));
    }
    for (flag, on) in [
        ("q", a.quiet),
        ("nocache", a.no_cache),
        ("pull", a.pull),
        ("squash", a.squash),
        ("forcerm", a.force_rm),
    ] {
        if on {
            path.push_str(&format!("&{flag}=1"));
        }
    }
    if !a.rm {
        path.push_str("&rm=0");
    }
    if a.network != "default" {
        path.push_str(&format!("&networkmode={}", enc(&a.network)));
    }
    // one parameter a host, as Docker's client sends them
    for h in &a.add_hosts {
        path.push_str(&format!("&extrahosts={}", enc(h)));
    }
    if let Some(p) = &a.platform {
        path.push_str(&format!("&platform={}", enc(p)));
    }
    path.push_str(&a.limits.query()?);
    let mut headers = vec![("Content-Type", "application/x-tar".to_string())];
    if let Some(s) = secrets_header(&a.secrets)? {
        headers.push(("X-Berth-Build-Secrets", s));
    }
    let (code, mut body) = crate::rawhttp::post_body(&ctx.socket, &path, &headers, &tar).await?;
    if code != 200 {
        return Err(status(
            1,
            format!("Error response from daemon: {}", body.error_message().await),
        ));
    }
    let mut display = crate::progress::ProgressDisplay::new(crate::terminal::is_tty(1));
    let mut image_id: Option<String> = None;
    let mut out = std::io::stdout();
    let err = crate::progress::for_each_message(&mut body, |v| {
        if let Some(id) = v.pointer("/aux/ID").and_then(|i| i.as_str()) {
            image_id = Some(id.to_string());
        }
        if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
            out.write_all(s.as_bytes())?;
            out.flush()?;
        } else if !a.quiet {
            display.show_json(v);
        }
        Ok(())
    })
    .await?;
    if let Some(v) = err {
        out.flush()?;
        let code = v
            .pointer("/errorDetail/code")
            .and_then(|c| c.as_i64())
            .filter(|c| *c != 0)
            .unwrap_or(1);
        let msg = v["error"].as_str().unwrap_or_default().to_string();
        return Err(status(code as i32, msg));
    }
    if image_id.is_none() {
        // every build that ends well names its image; a stream without
        // one was cut off (the daemon went away mid-build)
        return Err(status(
            1,
            "the build ended without an image: the daemon closed the connection",
        ));
    }
    if let (Some(f), Some(id)) = (&a.iidfile, &image_id) {
        std::fs::write(f, id)
            .map_err(|e| status(1, format!("writing image ID to {}: {e}", f.display())))?;
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Amount of disk space to keep for cache
    #[arg(long)]
    keep_storage: Option<String>,
}

/// POST /build/prune; the deleted cache ids and the bytes reclaimed.
pub async fn prune_request(
    ctx: &Ctx,
    all: bool,
    filters: &[String],
    keep_storage: u64,
) -> Result<(Vec<String>, u64)> {
    let enc = crate::rawhttp::encode;
    let mut path = String::from("/build/prune?");
    if all {
        path.push_str("all=1&");
    }
    if keep_storage > 0 {
        path.push_str(&format!("keep-storage={keep_storage}&"));
    }
    if let Some(f) = super::containers::parse_filters(filters)? {
        path.push_str(&format!("filters={}", enc(&serde_json::to_string(&f)?)));
    }
    let (code, body) = crate::rawhttp::post_with_headers(&ctx.socket, &path, &[]).await?;
    if code != 200 {
        return Err(status(
            1,
            format!("Error response from daemon: {}", body.error_message().await),
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body.read_all().await?).context("decoding the prune report")?;
    let ids = v["CachesDeleted"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok((ids, v["SpaceReclaimed"].as_u64().unwrap_or(0)))
}

/// `builder prune`, with the docker CLI's prompt and report.
pub async fn builder_prune(ctx: &Ctx, a: BuilderPruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !a.force && !super::containers::confirm(warning) {
        return Ok(0);
    }
    let keep = match &a.keep_storage {
        Some(s) => berth_units::parse_human_size(s)
            .map_err(|e| {
                status(
                    1,
                    format!("invalid argument {s:?} for \"--keep-storage\" flag: {e}"),
                )
            })?
            .max(0) as u64,
        None => 0,
    };
    let (ids, reclaimed) = prune_request(ctx, a.all, &a.filter, keep).await?;
    let mut out = String::new();
    if !ids.is_empty() {
        out.push_str("Deleted build cache objects:\n");
        for id in &ids {
            out.push_str(id);
            out.push('\n');
        }
    }
    println!(
        "{out}Total reclaimed space: {}",
        berth_units::human_size(reclaimed as f64)
    );
    Ok(0)
}
