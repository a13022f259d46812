//! RUN: a container per step, its `--mount`s (secrets, caches, context
//! binds) and the cache key of what it runs.

use super::*;

/// The `key=value` options of a `RUN --mount` (a bare key is `true`).
/// The argv of a RUN: its command in the stage's shell, with heredocs
/// (`RUN <<EOF` runs the document itself as the script).
pub(super) fn run_argv(
    cmd: &Cmd,
    heredocs: &[berth_dockerfile::Heredoc],
    shell: &[String],
) -> Vec<String> {
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
pub(super) fn run_cache_key(
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

/// A chunk of a RUN's output as the stream shows it: stderr in the bright
/// red Docker's classic builder wraps each stderr write in.
pub(super) fn step_output_text(chunk: &StepOutput) -> String {
    match chunk {
        StepOutput::Stdout(b) => String::from_utf8_lossy(b).into_owned(),
        StepOutput::Stderr(b) => format!("\x1b[91m{}\x1b[0m", String::from_utf8_lossy(b)),
    }
}

pub(super) fn mount_options(spec: &str) -> HashMap<String, String> {
    spec.split(',')
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, "true"));
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect()
}

impl Builder {
    /// A container of `image` for a step: never started for COPY, run for RUN.
    pub(super) async fn step_container(
        &self,
        image: &str,
        cmd: Vec<String>,
        env: Vec<String>,
        binds: Vec<String>,
        network: Option<String>,
        opts: &BuildOptions,
    ) -> Result<String> {
        let spec = StepContainer {
            image: image.to_string(),
            cmd,
            env,
            binds,
            network_mode: network.or_else(|| opts.network_mode.clone()),
            extra_hosts: opts.extra_hosts.clone(),
            resources: opts.resources.clone(),
        };
        self.host.create_container(spec).await
    }

    /// A container whose files a COPY reads or writes: never started, with
    /// no network.
    pub(super) async fn files_container(&self, image: &str, opts: &BuildOptions) -> Result<String> {
        let cmd = vec!["#(nop)".into()];
        self.step_container(image, cmd, vec![], vec![], Some("none".into()), opts)
            .await
    }

    pub(super) async fn remove_step_container(&self, id: &str) {
        if let Err(e) = self.host.remove_container(id).await {
            tracing::warn!(container = %id, error = %e, "removing a build container");
        }
    }

    /// A RUN's container once its step is over, as Docker's classic builder
    /// leaves it: removed after a step that succeeded with `rm`, or after
    /// any step with `forcerm`; kept otherwise (a failed step's container
    /// stays for inspection).
    pub(super) async fn settle_run_container(
        &self,
        id: &str,
        succeeded: bool,
        opts: &BuildOptions,
        tx: &Progress,
    ) {
        if opts.force_rm || (opts.rm && succeeded) {
            self.remove_step_container(id).await;
            say(
                tx,
                opts.quiet,
                format!(" ---> Removed intermediate container {}\n", short_id(id)),
            )
            .await;
        } else if let Err(e) = self.host.keep_container(id) {
            tracing::warn!(container = %id, error = %e, "keeping a build container");
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_step(
        &self,
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
        let secret_dir = self.host.tmp_path("build-secrets");
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
        berth_core::crash_point("build-step-created");
        let ran = self.run_to_exit(&id, tx, opts.quiet).await;
        let _ = std::fs::remove_dir_all(&secret_dir);
        let code = match ran {
            Ok(code) => code,
            Err(e) => {
                // not the command failing: the run was cut short (the
                // daemon stopping, say), and Docker removes the container
                // of a cancelled step
                self.remove_step_container(&id).await;
                return Err(e);
            }
        };
        if code != 0 {
            self.settle_run_container(&id, false, opts, tx).await;
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
    pub(super) async fn run_to_exit(&self, id: &str, tx: &Progress, quiet: bool) -> Result<i64> {
        say(tx, quiet, format!(" ---> Running in {}\n", short_id(id))).await;
        let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<StepOutput>(16);
        let fwd_tx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(chunk) = out_rx.recv().await {
                say(&fwd_tx, quiet, step_output_text(&chunk)).await;
            }
        });
        let code = self.host.run_container(id, out_tx).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), forward).await;
        code
    }

    /// `RUN --mount=...` as a bind of the container: `type=secret` from a
    /// private directory that is removed after the step, `type=cache` from
    /// a directory kept across builds, `type=bind` from the context.
    /// Returns the bind and its target.
    pub(super) fn run_mount(
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
                let dir =
                    crate::cache_mounts::use_cache_mount(&self.host.data_root(), &id, &target)?;
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
    pub(super) fn drop_mount_points(&self, id: &str, image: &str, targets: &[String]) {
        let upper = self.host.container_upper_dir(id);
        let lowers: Vec<PathBuf> = self
            .host
            .image(image)
            .map(|i| {
                chain_ids(&i.diff_ids)
                    .iter()
                    .map(|c| self.host.layer_dir(c))
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
}
