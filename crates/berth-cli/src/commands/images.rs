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

/// Splits "name:tag" the way docker shows it; "<none>" where absent.
fn split_repo_tag(rt: &str) -> (String, String) {
    let slash = rt.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rt[slash..].rfind(':') {
        Some(i) => (rt[..slash + i].to_string(), rt[slash + i + 1..].to_string()),
        None => (rt.to_string(), "<none>".to_string()),
    }
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
        let tags: Vec<String> = if img.repo_tags.is_empty() {
            vec!["<none>:<none>".into()]
        } else {
            img.repo_tags.clone()
        };
        for t in tags {
            let (repo, tag) = split_repo_tag(&t);
            if let Some(r) = &a.reference {
                let (want_repo, want_tag) =
                    match r.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                        Some((rp, tg)) => (rp.to_string(), Some(tg.to_string())),
                        None => (r.clone(), None),
                    };
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
                "CreatedAt": chrono::DateTime::from_timestamp(img.created, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
                "Size": berth_units::human_size(img.size as f64),
                "Digest": "<none>",
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
    if print_format(
        a.format.as_deref(),
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
