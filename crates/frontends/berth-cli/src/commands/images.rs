use std::io::Write;

use anyhow::Result;
use bollard::query_parameters::{CreateImageOptions, ListImagesOptions, RemoveImageOptions};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::containers::parse_filters;
use crate::output::{ago, flush_table, print_format, short_id, table};
use crate::{Ctx, daemon_error, status};

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Show only images of this repository[:tag]
    reference: Option<String>,
}

/// "name:tag" into its parts; the colon of a registry's port is no tag.
fn split_tag(rt: &str) -> (&str, Option<&str>) {
    let slash = rt.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rt[slash..].rfind(':') {
        Some(i) => (&rt[..slash + i], Some(&rt[slash + i + 1..])),
        None => (rt, None),
    }
}

/// Splits "name:tag" the way docker shows it; "<none>" where absent.
pub(crate) fn split_repo_tag(rt: &str) -> (String, String) {
    let (repo, tag) = split_tag(rt);
    (repo.to_string(), tag.unwrap_or("<none>").to_string())
}

/// The registry host a reference names, when its first component is one.
fn registry_host(name: &str) -> Option<&str> {
    name.split_once('/')
        .map(|(first, _)| first)
        .filter(|f| f.contains('.') || f.contains(':') || *f == "localhost")
}

pub async fn images(ctx: &Ctx, a: ImagesArgs) -> Result<i32> {
    let opts = ListImagesOptions {
        all: a.all,
        filters: parse_filters(&a.filter)?,
        ..Default::default()
    };
    let list = ctx
        .docker
        .list_images(Some(opts))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let mut rows = Vec::new();
    for img in &list {
        // an image pulled by digest only shows under its repository, as
        // the docker CLI shows it
        let tags: Vec<String> = if !img.repo_tags.is_empty() {
            img.repo_tags.clone()
        } else if !img.repo_digests.is_empty() {
            img.repo_digests
                .iter()
                .filter_map(|d| d.split_once('@').map(|(r, _)| format!("{r}:<none>")))
                .collect()
        } else {
            vec!["<none>:<none>".into()]
        };
        for t in tags {
            let (repo, tag) = split_repo_tag(&t);
            if let Some(r) = &a.reference {
                let (want_repo, want_tag) = split_tag(r);
                if repo != want_repo || want_tag.is_some_and(|wt| wt != tag) {
                    continue;
                }
            }
            let id = if a.no_trunc {
                img.id.clone()
            } else {
                short_id(&img.id)
            };
            rows.push(serde_json::json!({
                "Repository": repo,
                "Tag": tag,
                "ID": id,
                "CreatedSince": ago(img.created),
                "CreatedAt": crate::output::created_at(img.created),
                "Size": berth_units::human_size(img.size as f64),
                "Digest": img
                    .repo_digests
                    .iter()
                    .find_map(|d| d.split_once('@').filter(|(r, _)| *r == repo).map(|(_, d)| d.to_string()))
                    .unwrap_or_else(|| "<none>".into()),
                // the docker CLI's forms: N/A for what the daemon did not count
                "Containers": if img.containers < 0 { "N/A".to_string() } else { img.containers.to_string() },
                "SharedSize": if img.shared_size < 0 { "N/A".to_string() } else { berth_units::human_size4(img.shared_size as f64) },
                "UniqueSize": if img.shared_size < 0 || img.size < 0 { "N/A".to_string() } else { berth_units::human_size4((img.size - img.shared_size) as f64) },
                "VirtualSize": berth_units::human_size4(img.size as f64),
            }));
        }
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or_default().to_string();
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let format = a
        .format
        .clone()
        .or_else(|| crate::config::format_for("imagesFormat"));
    if print_format(
        format.as_deref(),
        &rows,
        &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("Digest", "DIGEST"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
            ("Containers", "CONTAINERS"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("VirtualSize", "VIRTUAL SIZE"),
        ],
    )? {
        return Ok(0);
    }
    let mut tw = table();
    if a.digests {
        writeln!(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")?;
    } else {
        writeln!(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")?;
    }
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        if a.digests {
            writeln!(
                tw,
                "{}\t{}\t{}\t{}\t{}\t{}",
                s("Repository"),
                s("Tag"),
                s("Digest"),
                s("ID"),
                s("CreatedSince"),
                s("Size")
            )?;
        } else {
            writeln!(
                tw,
                "{}\t{}\t{}\t{}\t{}",
                s("Repository"),
                s("Tag"),
                s("ID"),
                s("CreatedSince"),
                s("Size")
            )?;
        }
    }
    flush_table(tw)?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn rmi(ctx: &Ctx, a: RmiArgs) -> Result<i32> {
    let mut failed = false;
    for name in &a.images {
        let opts = RemoveImageOptions {
            force: a.force,
            noprune: a.no_prune,
            platforms: None,
        };
        match ctx.docker.remove_image(name, Some(opts), None).await {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = i.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", daemon_error(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// file to import, or "-" for standard input
    source: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

pub async fn import(ctx: &Ctx, a: ImportArgs) -> Result<i32> {
    if a.source.contains("://") {
        return Err(status(
            1,
            "berth: importing from a URL is not supported; download the archive first",
        ));
    }
    let mut data = Vec::new();
    if a.source == "-" {
        tokio::io::stdin().read_to_end(&mut data).await?;
    } else {
        data = tokio::fs::read(&a.source)
            .await
            .map_err(|e| status(1, format!("berth: open {}: {e}", a.source)))?;
    }
    let opts = CreateImageOptions {
        from_src: Some("-".into()),
        repo: a.reference.clone(),
        message: a.message.clone(),
        changes: a.change.clone(),
        ..Default::default()
    };
    let mut s = ctx.docker.create_image(
        Some(opts),
        Some(bollard::body_full(Bytes::from(data))),
        None,
    );
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                if let Some(st) = info.status {
                    println!("{st}");
                }
            }
            Err(e) => return Err(status(1, daemon_error(&e))),
        }
    }
    std::io::stdout().flush()?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    container: String,
    repository: Option<String>,
}

pub async fn commit(ctx: &Ctx, a: CommitArgs) -> Result<i32> {
    let (repo, tag) = match &a.repository {
        Some(r) => {
            let (rp, tg) = split_repo_tag(r);
            (Some(rp), (tg != "<none>").then_some(tg))
        }
        None => (None, None),
    };
    let opts = bollard::query_parameters::CommitContainerOptions {
        container: Some(a.container.clone()),
        repo,
        tag,
        comment: a.message.clone(),
        author: a.author.clone(),
        pause: a.pause,
        changes: (!a.change.is_empty()).then(|| a.change.join("\n")),
    };
    let r = ctx
        .docker
        .commit_container(opts, bollard::models::ContainerConfig::default())
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    println!("{}", r.id);
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    quiet: bool,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

/// The registry host of a reference, as config.json's `auths` keys it.
fn registry_of(name: &str) -> String {
    registry_host(name)
        .unwrap_or("https://index.docker.io/v1/")
        .to_string()
}

/// `X-Registry-Auth` for the registry of `name`, from what `login` saved.
pub(crate) fn registry_auth_header(name: &str) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let host = registry_of(name);
    let Some((user, pass)) = crate::config::load().ok().and_then(|c| c.auth(&host)) else {
        return vec![];
    };
    let json = serde_json::json!({ "username": user, "password": pass, "serveraddress": host });
    vec![(
        "X-Registry-Auth",
        base64::engine::general_purpose::URL_SAFE.encode(json.to_string()),
    )]
}

/// Splits NAME[:TAG|@DIGEST] into what the API takes.
fn split_pull_ref(name: &str) -> (String, Option<String>) {
    if let Some((n, d)) = name.split_once('@') {
        return (n.to_string(), Some(d.to_string()));
    }
    let (repo, tag) = split_tag(name);
    (repo.to_string(), tag.map(String::from))
}

/// POSTs `path` and shows the JSON progress messages it streams back;
/// returns the daemon's error, if any.
async fn stream_progress(ctx: &Ctx, path: &str, name: &str, quiet: bool) -> Result<Option<String>> {
    let (code, mut body) =
        crate::rawhttp::post_with_headers(&ctx.socket, path, &registry_auth_header(name)).await?;
    if code != 200 {
        return Ok(Some(body.error_message().await));
    }
    let mut display = crate::progress::ProgressDisplay::new(crate::terminal::is_tty(1));
    let err = crate::progress::for_each_message(&mut body, |v| {
        if !quiet {
            display.show_json(v);
        }
        Ok(())
    })
    .await?;
    Ok(err.map(|e| e["error"].as_str().unwrap_or_default().to_string()))
}

pub async fn pull(ctx: &Ctx, a: PullArgs) -> Result<i32> {
    let (name, tag) = split_pull_ref(&a.name);
    if a.all_tags && tag.is_some() {
        return Err(status(1, "berth: tag can't be used with --all-tags/-a"));
    }
    if tag.is_none() && !a.all_tags && !a.quiet {
        println!("Using default tag: latest");
    }
    let mut path = format!("/images/create?fromImage={}", crate::rawhttp::encode(&name));
    if let Some(t) = tag
        .clone()
        .or_else(|| (!a.all_tags).then(|| "latest".into()))
    {
        path.push_str(&format!("&tag={}", crate::rawhttp::encode(&t)));
    }
    if let Some(p) = &a.platform {
        path.push_str(&format!("&platform={}", crate::rawhttp::encode(p)));
    }
    if let Some(e) = stream_progress(ctx, &path, &name, a.quiet).await? {
        return Err(status(1, format!("Error response from daemon: {e}")));
    }
    if a.all_tags {
        let full = full_reference(&name, Some("x"));
        println!("{}", full.trim_end_matches(":x"));
    } else {
        println!("{}", full_reference(&name, tag.as_deref()));
    }
    Ok(0)
}

/// The fully qualified reference the docker CLI prints after a pull.
fn full_reference(name: &str, tag: Option<&str>) -> String {
    let qualified = if registry_host(name).is_some() {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    match tag {
        Some(t) if t.contains(':') => format!("{qualified}@{t}"),
        Some(t) => format!("{qualified}:{t}"),
        None => format!("{qualified}:latest"),
    }
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    quiet: bool,
    /// NAME[:TAG]
    name: String,
}

pub async fn push(ctx: &Ctx, a: PushArgs) -> Result<i32> {
    let (name, tag) = split_pull_ref(&a.name);
    if a.all_tags && tag.is_some() {
        return Err(status(1, "berth: tag can't be used with --all-tags/-a"));
    }
    let tag = match tag {
        Some(t) => Some(t),
        None if a.all_tags => None,
        None => {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            Some("latest".to_string())
        }
    };
    let mut path = format!("/images/{name}/push");
    if let Some(t) = &tag {
        path.push_str(&format!("?tag={}", crate::rawhttp::encode(t)));
    }
    if let Some(e) = stream_progress(ctx, &path, &name, a.quiet).await? {
        return Err(status(1, e));
    }
    if a.quiet {
        println!("{}", full_reference(&name, tag.as_deref()));
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

pub async fn tag(ctx: &Ctx, a: TagArgs) -> Result<i32> {
    let (repo, tag) = split_pull_ref(&a.target);
    if a.target.contains('@') {
        return Err(status(
            1,
            "Error parsing reference: refusing to create a tag with a digest reference",
        ));
    }
    let opts = bollard::query_parameters::TagImageOptions {
        repo: Some(repo),
        tag,
    };
    ctx.docker
        .tag_image(&a.source, Some(opts))
        .await
        .map_err(|e| {
            status(
                1,
                format!("Error response from daemon: {}", daemon_error(&e)),
            )
        })?;
    Ok(0)
}

#[cfg(test)]
mod pull_tests {
    use super::*;

    #[test]
    fn references_split_and_qualify() {
        assert_eq!(split_pull_ref("busybox"), ("busybox".into(), None));
        assert_eq!(
            split_pull_ref("127.0.0.1:5000/a/b:v1"),
            ("127.0.0.1:5000/a/b".into(), Some("v1".into()))
        );
        assert_eq!(
            split_pull_ref("x@sha256:00"),
            ("x".into(), Some("sha256:00".into()))
        );
        assert_eq!(
            full_reference("busybox", None),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full_reference("me/app", Some("1")), "docker.io/me/app:1");
        assert_eq!(
            full_reference("127.0.0.1:5000/a", Some("sha256:00")),
            "127.0.0.1:5000/a@sha256:00"
        );
        assert_eq!(registry_of("127.0.0.1:5000/a"), "127.0.0.1:5000");
        assert_eq!(registry_of("busybox"), "https://index.docker.io/v1/");
    }
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// SERVER (default: Docker Hub)
    server: Option<String>,
}

const HUB: &str = "https://index.docker.io/v1/";

pub async fn login(ctx: &Ctx, a: LoginArgs) -> Result<i32> {
    let server = a.server.clone().unwrap_or_else(|| HUB.to_string());
    let username = match a.username.clone() {
        Some(u) if !u.is_empty() => u,
        _ => {
            return Err(status(
                1,
                "Error: Cannot perform an interactive login from a non TTY device",
            ));
        }
    };
    let password = if a.password_stdin {
        if a.password.is_some() {
            return Err(status(
                1,
                "--password and --password-stdin are mutually exclusive",
            ));
        }
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match a.password.clone() {
            Some(p) => {
                eprintln!(
                    "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
                );
                p
            }
            None => {
                return Err(status(
                    1,
                    "Error: Cannot perform an interactive login from a non TTY device",
                ));
            }
        }
    };
    let body = serde_json::json!({
        "username": username,
        "password": password,
        "serveraddress": server,
    });
    let (code, resp) =
        crate::rawhttp::post_json(&ctx.socket, "/auth", &serde_json::to_vec(&body)?).await?;
    if code != 200 {
        let msg = resp.error_message().await;
        return Err(status(1, format!("Error response from daemon: {msg}")));
    }
    let mut cfg = crate::config::load()?;
    cfg.set_auth(&server, &username, &password);
    cfg.save()?;
    println!("Login Succeeded");
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// SERVER (default: Docker Hub)
    server: Option<String>,
}

pub async fn logout(_ctx: &Ctx, a: LogoutArgs) -> Result<i32> {
    let server = a.server.unwrap_or_else(|| HUB.to_string());
    let mut cfg = crate::config::load()?;
    if cfg.remove_auth(&server) {
        cfg.save()?;
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    output: Option<String>,
    /// IMAGE...
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn save(ctx: &Ctx, a: SaveArgs) -> Result<i32> {
    use tokio::io::AsyncWriteExt;
    if a.output.is_none() && crate::terminal::is_tty(1) {
        return Err(status(
            1,
            "berth: cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let names: Vec<&str> = a.images.iter().map(String::as_str).collect();
    let mut s = Box::pin(ctx.docker.export_images(&names));
    // written aside and renamed, so a failed save leaves no partial file
    let (mut out, tmp): (Box<dyn tokio::io::AsyncWrite + Unpin>, Option<String>) = match &a.output {
        Some(path) => {
            let tmp = format!("{path}.berth-save.tmp");
            let f = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| status(1, format!("berth: failed to save image: {e}")))?;
            (Box::new(f), Some(tmp))
        }
        None => (Box::new(tokio::io::stdout()), None),
    };
    while let Some(chunk) = s.next().await {
        match chunk {
            Ok(b) => out.write_all(&b).await?,
            Err(e) => {
                if let Some(t) = &tmp {
                    let _ = std::fs::remove_file(t);
                }
                return Err(status(
                    1,
                    format!("Error response from daemon: {}", daemon_error(&e)),
                ));
            }
        }
    }
    out.flush().await?;
    drop(out);
    if let (Some(t), Some(path)) = (tmp, &a.output) {
        std::fs::rename(&t, path)
            .map_err(|e| status(1, format!("berth: failed to save image: {e}")))?;
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    quiet: bool,
}

pub async fn load(ctx: &Ctx, a: LoadArgs) -> Result<i32> {
    let body = match &a.input {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| status(1, format!("open {path}: {e}")))?;
            bollard::body_try_stream(tokio_util::io::ReaderStream::new(f))
        }
        None => {
            if crate::terminal::is_tty(0) {
                return Err(status(1, "requested load from stdin, but stdin is empty"));
            }
            bollard::body_try_stream(tokio_util::io::ReaderStream::new(tokio::io::stdin()))
        }
    };
    let opts = bollard::query_parameters::ImportImageOptions {
        quiet: a.quiet,
        ..Default::default()
    };
    let mut s = ctx.docker.import_image(opts, body, None);
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                if let Some(st) = info.stream {
                    print!("{st}");
                }
            }
            // a failed load is reported inside the stream; the docker CLI
            // prints its message alone
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(status(1, error));
            }
            Err(e) => return Err(status(1, daemon_error(&e))),
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
    image: String,
}

pub async fn history(ctx: &Ctx, a: HistoryArgs) -> Result<i32> {
    let items = ctx.docker.image_history(&a.image).await.map_err(|e| {
        status(
            1,
            format!("Error response from daemon: {}", daemon_error(&e)),
        )
    })?;
    let rows: Vec<serde_json::Value> = items
        .iter()
        .map(|h| {
            let id = if h.id == "<missing>" || a.no_trunc {
                h.id.clone()
            } else {
                short_id(&h.id)
            };
            let created_by = h.created_by.replace('\t', " ");
            let created_by = if a.no_trunc {
                created_by
            } else {
                crate::output::ellipsis(&created_by, 45)
            };
            let (created, size) = if a.human {
                (ago(h.created), berth_units::human_size(h.size as f64))
            } else {
                (
                    chrono::DateTime::from_timestamp(h.created, 0)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                    h.size.to_string(),
                )
            };
            serde_json::json!({
                "ID": id,
                "CreatedSince": created,
                "CreatedAt": chrono::DateTime::from_timestamp(h.created, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
                "CreatedBy": created_by,
                "Size": size,
                "Comment": h.comment,
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    crate::output::print_format_or(
        a.format.as_deref(),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &rows,
        &[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
        ],
    )?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

pub async fn image_prune(ctx: &Ctx, a: ImagePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !super::containers::confirm(warning) {
        return Ok(0);
    }
    let mut filters = parse_filters(&a.filter)?.unwrap_or_default();
    if a.all {
        filters.insert("dangling".into(), vec!["false".into()]);
    }
    let filters = Some(filters);
    let r = ctx
        .docker
        .prune_images(Some(bollard::query_parameters::PruneImagesOptions {
            filters,
        }))
        .await
        .map_err(|e| {
            status(
                1,
                format!("Error response from daemon: {}", daemon_error(&e)),
            )
        })?;
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for d in &deleted {
            if let Some(u) = &d.untagged {
                println!("untagged: {u}");
            }
            if let Some(x) = &d.deleted {
                println!("deleted: {x}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        berth_units::human_size(r.space_reclaimed.unwrap_or(0) as f64)
    );
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    limit: u32,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Pretty-print search using a Go template
    #[arg(long)]
    format: Option<String>,
    term: String,
}

pub async fn search(ctx: &Ctx, a: SearchArgs) -> Result<i32> {
    let path = format!(
        "/images/search?term={}&limit={}",
        crate::rawhttp::encode(&a.term),
        a.limit
    );
    let (code, body) = crate::rawhttp::get(&ctx.socket, &path).await?;
    if code != 200 {
        let msg = body.error_message().await;
        return Err(status(1, format!("Error response from daemon: {msg}")));
    }
    let results: Vec<serde_json::Value> = serde_json::from_slice(&body.read_all().await?)?;
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let desc = r["description"]
                .as_str()
                .unwrap_or_default()
                .replace('\n', " ");
            serde_json::json!({
                "Name": r["name"].as_str().unwrap_or_default(),
                "Description": if a.no_trunc { desc } else { crate::output::ellipsis(&desc, 45) },
                "StarCount": r["star_count"].as_u64().unwrap_or(0).to_string(),
                "IsOfficial": if r["is_official"].as_bool().unwrap_or(false) { "[OK]" } else { "" },
            })
        })
        .collect();
    crate::output::print_format_or(
        a.format.as_deref(),
        "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
        &rows,
        &[
            ("Name", "NAME"),
            ("Description", "DESCRIPTION"),
            ("StarCount", "STARS"),
            ("IsOfficial", "OFFICIAL"),
        ],
    )?;
    Ok(0)
}
