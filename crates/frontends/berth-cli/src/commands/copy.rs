//! `berth cp`, `export` and `diff`.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::rawhttp;
use crate::{Ctx, daemon_error, status};

#[derive(clap::Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    quiet: bool,
    src: String,
    dest: String,
}

/// The container side's stat, as dockerd reports it.
#[derive(serde::Deserialize, Debug)]
struct PathStat {
    #[serde(default)]
    mode: u32,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;

/// `CONTAINER:PATH`, or a local path (anything starting with `/` or `.`,
/// as in docker).
fn split_arg(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
}

pub async fn cp(ctx: &Ctx, a: CpArgs) -> Result<i32> {
    match (split_arg(&a.src), split_arg(&a.dest)) {
        (Some(_), Some(_)) => Err(status(1, "copying between containers is not supported")),
        (None, None) => Err(status(1, "must specify at least one container source")),
        (Some((c, p)), None) => copy_from(ctx, &a, c, p).await,
        (None, Some((c, p))) => copy_to(ctx, &a, c, p).await,
    }
}

async fn stat(ctx: &Ctx, container: &str, path: &str) -> Result<Option<PathStat>> {
    let url = format!(
        "/containers/{}/archive?path={}",
        rawhttp::encode(container),
        rawhttp::encode(path)
    );
    let (code, headers) = rawhttp::head(&ctx.socket, &url).await?;
    match code {
        200 => {}
        404 => {
            // a missing container is an error; a missing path is an answer
            if let Err(e) = ctx.docker.inspect_container(container, None).await {
                return Err(status(1, daemon_error(&e)));
            }
            return Ok(None);
        }
        other => {
            return Err(status(
                1,
                format!("Error response from daemon: stat {path} in {container}: HTTP {other}"),
            ));
        }
    }
    let raw = headers
        .iter()
        .find(|(k, _)| k == "x-docker-container-path-stat")
        .map(|(_, v)| v.clone())
        .context("the daemon sent no path stat")?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .context("decoding the path stat")?;
    Ok(Some(
        serde_json::from_slice(&json).context("decoding the path stat")?,
    ))
}

fn base_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

fn parent_of(p: &str) -> String {
    match Path::new(p).parent() {
        Some(x) if !x.as_os_str().is_empty() => x.display().to_string(),
        _ => "/".into(),
    }
}

/// Reads a stream of chunks from a blocking thread.
struct ChanReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.cur = b,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// docker prints this only to a terminal.
fn copied(a: &CpArgs, bytes: u64, dest: &str) {
    // SAFETY: isatty only inspects the descriptor
    if !a.quiet && unsafe { libc::isatty(2) } == 1 {
        eprintln!(
            "Successfully copied {} to {dest}",
            berth_units::human_size(bytes as f64)
        );
    }
}

async fn copy_from(ctx: &Ctx, a: &CpArgs, container: &str, path: &str) -> Result<i32> {
    let mut src = path.to_string();
    let Some(mut st) = stat(ctx, container, &src).await? else {
        return Err(status(
            1,
            format!(
                "Error response from daemon: Could not find the file {src} in container {container}"
            ),
        ));
    };
    if a.follow_link && st.mode & GO_SYMLINK != 0 {
        src = if st.link_target.starts_with('/') {
            st.link_target.clone()
        } else {
            Path::new(&parent_of(&src))
                .join(&st.link_target)
                .display()
                .to_string()
        };
        st = stat(ctx, container, &src)
            .await?
            .ok_or_else(|| status(1, format!("Error response from daemon: Could not find the file {src} in container {container}")))?;
    }
    let mut stream = ctx.docker.download_from_container(
        container,
        Some(DownloadFromContainerOptions { path: src.clone() }),
    );
    if a.dest == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| status(1, daemon_error(&e)))?;
            out.write_all(&chunk)?;
        }
        out.flush()?;
        return Ok(0);
    }
    let src_is_dir = st.mode & GO_DIR != 0;
    let dest = PathBuf::from(&a.dest);
    let dest_md = std::fs::metadata(&dest).ok();
    // where to extract, and what the archive's top entry becomes
    let (into, rename): (PathBuf, Option<String>) = match &dest_md {
        Some(md) if md.is_dir() => {
            if src.ends_with("/.") {
                (dest.clone(), Some(".".into()))
            } else {
                (dest.clone(), None)
            }
        }
        Some(_) if src_is_dir => {
            return Err(status(
                1,
                format!("cannot copy a directory to a file: {}", a.dest),
            ));
        }
        Some(_) => (parent_dir(&dest), Some(base_name(&a.dest))),
        None => {
            if a.dest.ends_with('/') && !src_is_dir {
                return Err(status(
                    1,
                    format!("destination directory \"{}\" does not exist", a.dest),
                ));
            }
            let parent = parent_dir(&dest);
            if !parent.is_dir() {
                return Err(status(
                    1,
                    format!("destination \"{}\" does not exist", parent.display()),
                ));
            }
            (parent, Some(base_name(a.dest.trim_end_matches('/'))))
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(16);
    let keep_owners = a.archive;
    let worker = std::thread::spawn(move || -> Result<()> {
        extract_local(
            ChanReader {
                rx,
                cur: Bytes::new(),
            },
            &into,
            rename.as_deref(),
            keep_owners,
        )
    });
    let mut total = 0u64;
    let mut failure = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                total += c.len() as u64;
                if tx.send(c).is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(status(1, daemon_error(&e)));
                break;
            }
        }
    }
    drop(tx);
    let res = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the extraction thread panicked"))?;
    if let Some(f) = failure {
        return Err(f);
    }
    res.map_err(|e| status(1, format!("{e:#}")))?;
    copied(a, total, &a.dest);
    Ok(0)
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(x) if !x.as_os_str().is_empty() => x.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Unpacks an archive from the daemon into `into`; `rename` replaces the
/// top entry's name (`.` puts its contents directly into `into`). Nothing is
/// written outside `into`, whatever the archive says.
fn extract_local(
    input: impl Read,
    into: &Path,
    rename: Option<&str>,
    keep_owners: bool,
) -> Result<()> {
    let root = into
        .canonicalize()
        .with_context(|| format!("resolving {}", into.display()))?;
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(keep_owners);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let Some(rel) = local_name(&raw, rename)? else {
            continue;
        };
        let target = root.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
            let real = parent.canonicalize()?;
            if !real.starts_with(&root) {
                anyhow::bail!(
                    "refusing to write {} outside {}",
                    rel.display(),
                    root.display()
                );
            }
        }
        if entry.header().entry_type().is_dir() && target.is_dir() {
            continue;
        }
        if entry.header().entry_type().is_hard_link() {
            // a member earlier in this archive, named as members are
            let link = entry
                .link_name()?
                .map(|l| l.into_owned())
                .unwrap_or_default();
            let Some(first) = local_name(&link, rename)? else {
                anyhow::bail!("refusing hard link {} to {}", raw.display(), link.display());
            };
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(root.join(&first), &target)
                .with_context(|| format!("linking {}", target.display()))?;
            continue;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// Where a member goes under the destination: its name relative to it
/// (dockerd names the members of the root "/bin"...), the top entry
/// renamed; none for the top of a `.` copy. Names that climb are refused.
fn local_name(raw: &Path, rename: Option<&str>) -> Result<Option<PathBuf>> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_os_string()),
            Component::CurDir | Component::RootDir => {}
            _ => anyhow::bail!("refusing archive entry {}", raw.display()),
        }
    }
    if let Some(r) = rename {
        // the root's top entry is "/" itself: its members have no top part
        if parts.is_empty() || raw.has_root() {
            parts.insert(0, r.into());
        } else {
            parts[0] = r.into();
        }
    }
    let rel: PathBuf = parts.iter().filter(|p| p.as_os_str() != ".").collect();
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

async fn copy_to(ctx: &Ctx, a: &CpArgs, container: &str, path: &str) -> Result<i32> {
    let opts = |dir: &str| UploadToContainerOptions {
        path: dir.to_string(),
        no_overwrite_dir_non_dir: Some("true".into()),
        copy_uidgid: Some(if a.archive { "true" } else { "false" }.into()),
    };
    if a.src == "-" {
        match stat(ctx, container, path).await? {
            Some(st) if st.mode & GO_DIR != 0 => {}
            Some(_) => {
                return Err(status(
                    1,
                    format!("destination \"{container}:{path}\" must be a directory"),
                ));
            }
            None => {
                return Err(status(
                    1,
                    format!(
                        "Error response from daemon: Could not find the file {path} in container {container}"
                    ),
                ));
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                    break;
                }
            }
        });
        ctx.docker
            .upload_to_container(
                container,
                Some(opts(path)),
                bollard::body_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
            )
            .await
            .map_err(|e| status(1, daemon_error(&e)))?;
        return Ok(0);
    }
    let src = PathBuf::from(&a.src);
    let md = if a.follow_link {
        std::fs::metadata(&src)
    } else {
        std::fs::symlink_metadata(&src)
    }
    .map_err(|e| status(1, format!("lstat {}: {}", a.src, io_text(&e))))?;
    let src_is_dir = md.is_dir();
    let dest_stat = stat(ctx, container, path).await?;
    let (dir, top): (String, Option<String>) = match &dest_stat {
        Some(st) if st.mode & GO_DIR != 0 => {
            if a.src.ends_with("/.") {
                (path.to_string(), None)
            } else {
                (
                    path.to_string(),
                    Some(base_name(a.src.trim_end_matches('/'))),
                )
            }
        }
        Some(_) if src_is_dir => {
            return Err(status(
                1,
                format!(
                    "Error response from daemon: cannot overwrite non-directory \"{path}\" with directory \"{}\"",
                    a.src
                ),
            ));
        }
        Some(_) => (parent_of(path), Some(base_name(path))),
        None => {
            if path.ends_with('/') {
                return Err(status(
                    1,
                    format!("destination directory \"{container}:{path}\" does not exist"),
                ));
            }
            (parent_of(path), Some(base_name(path)))
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let follow = a.follow_link;
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = counter.clone();
    let builder = std::thread::spawn(move || -> Result<()> {
        let w = SenderWriter { tx, count };
        build_tar(&src, top.as_deref(), follow, w)
    });
    let upload = ctx
        .docker
        .upload_to_container(
            container,
            Some(opts(&dir)),
            bollard::body_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
        .await;
    let built = builder
        .join()
        .map_err(|_| anyhow::anyhow!("the archive thread panicked"))?;
    upload.map_err(|e| status(1, daemon_error(&e)))?;
    built.map_err(|e| status(1, format!("{e:#}")))?;
    copied(
        a,
        counter.load(std::sync::atomic::Ordering::Relaxed),
        &format!("{container}:{path}"),
    );
    Ok(0)
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

struct SenderWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Write for SenderWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload ended"))?;
        self.count
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Archives `src` with its top entry named `top`, or only its contents for
/// `None`. With `follow` the source itself may be a symlink to follow.
fn build_tar(src: &Path, top: Option<&str>, follow: bool, out: impl Write) -> Result<()> {
    let src = if follow {
        src.canonicalize()
            .with_context(|| format!("resolving {}", src.display()))?
    } else {
        src.to_path_buf()
    };
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let md = std::fs::symlink_metadata(&src)?;
    match top {
        Some(name) if md.is_dir() => b.append_dir_all(name, &src)?,
        Some(name) => b.append_path_with_name(&src, name)?,
        None => {
            for e in std::fs::read_dir(&src)? {
                let e = e?;
                let p = e.path();
                let name = e.file_name();
                if e.file_type()?.is_dir() {
                    b.append_dir_all(&name, &p)?;
                } else {
                    b.append_path_with_name(&p, &name)?;
                }
            }
        }
    }
    b.into_inner()?.flush()?;
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    output: Option<String>,
    container: String,
}

pub async fn export(ctx: &Ctx, a: ExportArgs) -> Result<i32> {
    let mut out: Box<dyn Write> = match &a.output {
        Some(f) => Box::new(
            std::fs::File::create(f)
                .map_err(|e| status(1, format!("failed to export container: {f}: {e}")))?,
        ),
        None => {
            // SAFETY: isatty only inspects the descriptor
            if unsafe { libc::isatty(1) } == 1 {
                return Err(status(
                    1,
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                ));
            }
            Box::new(std::io::stdout().lock())
        }
    };
    let mut stream = ctx.docker.export_container(&a.container);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| status(1, daemon_error(&e)))?;
        if let Err(e) = out.write_all(&chunk) {
            // the reader went away (`| head`): nothing more to say
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
    }
    out.flush()?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    container: String,
}

pub async fn diff(ctx: &Ctx, a: DiffArgs) -> Result<i32> {
    let changes = ctx
        .docker
        .container_changes(&a.container)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?
        .unwrap_or_default();
    for c in changes {
        let k = match c.kind as i32 {
            0 => "C",
            1 => "A",
            _ => "D",
        };
        println!("{k} {}", c.path);
    }
    Ok(0)
}
