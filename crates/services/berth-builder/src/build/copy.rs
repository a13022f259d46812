//! COPY and ADD: sources from the context, another stage, an image or a
//! URL, hashed for the cache key and written into a step container.

use super::*;

/// A file or directory a COPY takes, resolved in its source.
pub(super) struct CopySource {
    /// path inside the source root
    pub(super) path: PathBuf,
    pub(super) is_dir: bool,
    /// a download of `ADD <url>`: copied as it is, never unpacked
    pub(super) no_extract: bool,
}

/// A COPY or ADD instruction's operands, raw.
pub(super) struct CopyStep<'a> {
    pub(super) srcs: &'a [String],
    pub(super) dest: &'a str,
    pub(super) from: Option<&'a str>,
    pub(super) chown: Option<&'a str>,
    pub(super) chmod: Option<&'a str>,
    /// ADD --checksum=sha256:... for a download
    pub(super) checksum: Option<&'a str>,
    pub(super) heredocs: &'a [berth_dockerfile::Heredoc],
    pub(super) is_add: bool,
}

/// Lexically cleaned, without leading `/`; None when it climbs out.
pub(super) fn clean_rel(p: &str) -> Option<PathBuf> {
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

pub(super) fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's filepath.Match for one path element.
pub(super) fn match_element(pattern: &str, name: &str) -> bool {
    berth_archive::glob::glob_match(pattern, name)
}

/// Expands a context source (with wildcards in any element) to the
/// existing paths it names, resolved inside `root`.
pub(super) fn expand_sources(root: &Path, src: &str) -> Result<Vec<CopySource>> {
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
pub(super) fn hash_tree(root: &Path, rel: &Path, h: &mut Sha256) -> std::io::Result<()> {
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

/// Where a COPY's files come from.
pub(super) enum CopyFrom {
    Context,
    /// an earlier stage's image or one named by `--from`
    Image(String),
}

impl CopyFrom {
    pub(super) fn image(&self) -> Option<String> {
        match self {
            CopyFrom::Context => None,
            CopyFrom::Image(id) => Some(id.clone()),
        }
    }
}

/// What COPY and ADD left out, said in the build's output.
pub(super) async fn say_skipped_devices(tx: &Progress, quiet: bool, skipped: Vec<String>) {
    for dev in skipped {
        let note = format!(
            " ---> skipping the device node /{dev}: device nodes are not copied into image layers\n"
        );
        say(tx, quiet, note).await;
    }
}

/// A tar of one COPY's sources, renamed to their destination and owned
/// as the instruction says.
pub(super) struct CopyPlan {
    pub(super) dest: String,
    /// the destination is a directory (ends with `/`, several sources, a
    /// directory source, or a directory already in the image)
    pub(super) dest_is_dir: bool,
    pub(super) owner: Option<(u64, u64)>,
    pub(super) chmod: Option<u32>,
}

/// Rewrites a tar from `archive::write_tar` (top entry named after the
/// source) to its place under the destination.
pub(super) fn rewrite_into<W: Write>(
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
pub(super) fn parent_entries<W: Write>(
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

pub(super) fn parse_chmod(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Error::invalid(format!("invalid chmod parameter: {s}")))
}

/// The archive ADD unpacks (gzip, zstd or plain tar), by content.
pub(super) fn is_local_archive(path: &Path) -> bool {
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

impl Builder {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy_step(
        &self,
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
        let step = StepText::nop(format!(
            "/bin/sh -c #(nop) {what} {flags}{}:{} in {dest_clean} ",
            if matches!(src_kind, CopyFrom::Context) {
                "file"
            } else {
                "image"
            },
            content
        ));
        let key = format!(
            "{}\nchown={chown:?} chmod={chmod:?} dir={wants_dir} add={is_add}\n{}",
            step.created_by,
            st.config.get("config").unwrap_or(&Value::Null)
        );
        if self.cache_hit(st, opts, tx, &key, &step, true).await? {
            return Ok(());
        }

        let image = self.current_image(st).await?;
        let dest_id = self.files_container(&image, opts).await?;
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
        let committed = self.commit_step(st, Some(&dest_id), step, &key).await;
        self.remove_step_container(&dest_id).await;
        committed?;
        self.finish_step(st, opts, tx).await;
        Ok(())
    }

    /// The image a `--from` names: an earlier stage's, or an image.
    pub(super) async fn copy_from(
        &self,
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
    pub(super) async fn read_copy_sources(
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
                    let (digest, _) = crate::digest_of_file(&ctx.join(&found.path))
                        .map_err(|e| Error::Internal(e.context("hashing the download")))?;
                    h.update(digest.as_bytes());
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
    pub(super) async fn add_download(
        &self,
        ctx: &Path,
        n: usize,
        url: &str,
        checksum: Option<&str>,
    ) -> Result<CopySource> {
        use std::os::unix::fs::PermissionsExt;
        let dir_rel = PathBuf::from(format!(".berth-add-{}-{n}", &berth_core::random_id()[..12]));
        let dir = ctx.join(&dir_rel);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(".download");
        let got = berth_distribution::fetch::fetch_to_file(url, &tmp, &self.host.certs_dir())
            .await
            .map_err(|e| Error::invalid(format!("ADD {url}: {e}")))?;
        if let Some(want) = checksum {
            let (digest, _) = crate::digest_of_file(&tmp)
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
    pub(super) async fn copy_into(
        &self,
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
        let work = self.host.tmp_path("build-copy");
        std::fs::create_dir_all(&work)?;
        let res = async {
            // files of another image: archived from a container of it first
            let image_parts = match &image_source {
                Some(img) => {
                    self.archive_image_sources(img, &sources, &work, opts)
                        .await?
                }
                None => Vec::new(),
            };
            let (w, ctx) = (work.clone(), ctx.to_path_buf());
            let host = self.host.clone();
            self.with_root(dest_id, move |root| {
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
                    let (u, g) = host.resolve_user(&root.proc_path(), c).map_err(|e| {
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
                    append_context_sources(
                        &ctx,
                        &ctx_sources,
                        &w,
                        &dest,
                        &plan,
                        is_add,
                        &mut b,
                        &mut skipped,
                    )?;
                    for (file, name, is_dir) in &image_parts {
                        rewrite_into(
                            std::fs::File::open(file)?,
                            &mut b,
                            (*is_dir, name),
                            &plan,
                            &mut skipped,
                        )?;
                    }
                    append_heredocs(&mut b, &heredocs, &dest, &plan)?;
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

    /// COPY --from an image: the sources archived from a container of it,
    /// each as (tar file, name, is a directory).
    async fn archive_image_sources(
        &self,
        img: &str,
        sources: &[String],
        work: &Path,
        opts: &BuildOptions,
    ) -> Result<Vec<(PathBuf, String, bool)>> {
        let src_id = self.files_container(img, opts).await?;
        let (w, srcs) = (work.to_path_buf(), sources.to_vec());
        let archived = self
            .with_root(&src_id, move |root| {
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
                        Error::invalid(format!("COPY failed: stat {path}: file does not exist"))
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
        archived
    }
}

/// COPY's heredocs (`COPY <<EOF dest`) as tar members.
fn append_heredocs<W: Write>(
    b: &mut tar::Builder<W>,
    heredocs: &[berth_dockerfile::Heredoc],
    dest: &str,
    plan: &CopyPlan,
) -> Result<()> {
    for d in heredocs {
        let target = if plan.dest_is_dir {
            Path::new(dest).join(&d.name)
        } else {
            PathBuf::from(dest)
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
    Ok(())
}

/// The context's sources as tar members under `dest`; local archives
/// that ADD extracts are unpacked into it.
#[allow(clippy::too_many_arguments)]
fn append_context_sources<W: Write>(
    ctx: &Path,
    ctx_sources: &[(String, Vec<CopySource>)],
    work: &Path,
    dest: &str,
    plan: &CopyPlan,
    is_add: bool,
    b: &mut tar::Builder<W>,
    skipped: &mut Vec<String>,
) -> Result<()> {
    let ctx_root = Root::open(ctx)?;
    for (_, found) in ctx_sources {
        for f in found {
            let host = berth_archive::rootpath::resolve(ctx, &f.path, true)?;
            if is_add && !f.is_dir && !f.no_extract && is_local_archive(&host) {
                add_archive(&host, dest, plan, b, skipped)?;
                continue;
            }
            let part = work.join("part.tar");
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
                b,
                (f.is_dir, &top),
                plan,
                skipped,
            )?;
        }
    }
    Ok(())
}

/// Device nodes are skipped in every layer berth unpacks (a container gets
/// its /dev from the runtime), so COPY and ADD say so instead of copying.
pub(super) fn is_device(kind: tar::EntryType) -> bool {
    matches!(kind, tar::EntryType::Char | tar::EntryType::Block)
}

/// Unpacks a local archive for ADD: its members go under the destination
/// directory; names that climb out of it are refused.
pub(super) fn add_archive<W: Write>(
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
