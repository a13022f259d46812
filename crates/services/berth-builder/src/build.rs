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

mod cache;
mod context;
mod copy;
mod run;
mod squash;
mod stage;

use cache::*;
use context::*;
use copy::*;
use run::*;
use stage::*;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use berth_dockerfile::{Cmd, DockerIgnore, Dockerfile, Instruction, Kind};
use oci_spec::image::{Arch, ImageConfiguration, Os, RootFsBuilder};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use berth_archive::root::{self as archive, ExtractOptions, Root};
use berth_core::error::{Error, Result};
use berth_core::image::{ImageRecord, chain_ids, short_id};

use crate::Builder;
use crate::host::{Progress, StepContainer, StepLayer, StepOutput};

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
    pub credentials: Option<berth_distribution::Credentials>,
    /// limits of the RUN containers
    pub resources: crate::host::StepResources,
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

/// The Dockerfile named by the options, with `.dockerignore` applied to
/// the context.
fn load_dockerfile(ctx: &Path, opts: &BuildOptions) -> Result<Dockerfile> {
    let name = if opts.dockerfile.is_empty() {
        "Dockerfile".to_string()
    } else {
        opts.dockerfile.clone()
    };
    let text = read_context_file(ctx, &name)?
        .ok_or_else(|| Error::invalid(format!("Cannot locate specified Dockerfile: {name}")))?;
    if text.is_empty() {
        return Err(Error::invalid(format!(
            "the Dockerfile ({name}) cannot be empty"
        )));
    }
    let df = berth_dockerfile::parse(&text).map_err(|e| Error::invalid(e.to_string()))?;
    if let Some(ignore) = read_context_file(ctx, ".dockerignore")? {
        let ignore = DockerIgnore::parse(&ignore);
        let keep = [name.as_str(), ".dockerignore"];
        apply_dockerignore(ctx, &ignore, &keep).map_err(|e| {
            Error::Internal(anyhow::Error::from(e).context("applying .dockerignore"))
        })?;
        // read, they go too when .dockerignore names them, as in Docker
        // (clients send them whatever it says)
        for f in keep.iter().filter(|f| ignore.excluded(f)) {
            remove_context_file(ctx, f);
        }
    }
    Ok(df)
}

/// The index of the stage `--target` names, the last one by default.
fn target_stage(df: &Dockerfile, opts: &BuildOptions) -> Result<usize> {
    Ok(match opts.target.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => df
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| {
                Error::invalid(format!("failed to reach build target {t} in Dockerfile"))
            })?,
        None => df.stages.len() - 1,
    })
}

/// The global ARGs (before the first FROM), as FROM lines see them.
fn global_args(
    df: &Dockerfile,
    opts: &BuildOptions,
    consumed: &mut HashSet<String>,
) -> Result<BTreeMap<String, Option<String>>> {
    let mut global: BTreeMap<String, Option<String>> = BTreeMap::new();
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
                    berth_dockerfile::expand(d, df.escape, &|n| global.get(n).cloned().flatten())
                        .map_err(|e| Error::invalid(e.to_string()))?,
                ),
                None => None,
            },
        };
        global.insert(k.clone(), v);
    }
    Ok(global)
}

/// Docker's warning about `--build-arg`s no instruction declared.
async fn warn_unused_args(opts: &BuildOptions, consumed: &HashSet<String>, tx: &Progress) {
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
}

/// Refuses tags that are not valid references before any work starts.
pub fn check_tags(tags: &[String]) -> Result<()> {
    for t in tags {
        parse_tag(t)?;
    }
    Ok(())
}

impl Builder {
    /// Builds the Dockerfile in the context tar at `context`; returns the
    /// image id. Progress goes to `tx` in the classic builder's messages.
    pub async fn build(
        &self,
        context: PathBuf,
        opts: BuildOptions,
        tx: Progress,
    ) -> Result<String> {
        let work = self.host.tmp_path("build");
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

    async fn build_in(&self, ctx: &Path, opts: &BuildOptions, tx: &Progress) -> Result<String> {
        let df = load_dockerfile(ctx, opts)?;
        if df.stages.is_empty() {
            return Err(Error::invalid("dockerfile has no FROM instruction"));
        }
        let target = target_stage(&df, opts)?;
        for name in &opts.cache_from {
            if self.host.resolve_image(name).is_err() {
                // Docker's words, in its log too: the build goes on
                tracing::warn!("Could not look up {name} for cache resolution, skipping");
            }
        }
        let mut consumed: HashSet<String> = HashSet::new();
        let global = global_args(&df, opts, &mut consumed)?;
        let stages = needed_stages(&df, target, &global)?;
        let mut results = self
            .build_stages(&df, &stages, &global, ctx, opts, tx, &mut consumed)
            .await?;
        warn_unused_args(opts, &consumed, tx).await;
        let last = results
            .remove(&target)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("target stage was not built")))?;
        self.finish_image(last, opts, tx).await
    }

    /// Builds `stages`; stages whose inputs are built run at once, a wave
    /// at a time. The output of a wave comes stage by stage, in file order
    /// (the first live, the others as soon as those before them are done).
    #[allow(clippy::too_many_arguments)]
    async fn build_stages(
        &self,
        df: &Dockerfile,
        stages: &[usize],
        global: &BTreeMap<String, Option<String>>,
        ctx: &Path,
        opts: &BuildOptions,
        tx: &Progress,
        consumed: &mut HashSet<String>,
    ) -> Result<HashMap<usize, StageState>> {
        let total: usize = stages
            .iter()
            .map(|i| 1 + df.stages[*i].instructions.len())
            .sum();
        let mut level: HashMap<usize, usize> = HashMap::new();
        let mut first_step: HashMap<usize, usize> = HashMap::new();
        let mut step = 0usize;
        for &si in stages {
            let lv = stage_deps(df, si, global)
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
                let aux_tx = stx.clone();
                let stage = self.build_stage(
                    df,
                    si,
                    first_step[&si],
                    total,
                    global,
                    &results,
                    ctx,
                    opts,
                    stx,
                );
                builds.push(async move {
                    let built = stage.await?;
                    // each stage's image, as the classic builder reports
                    // it when the stage is done (the target's comes with
                    // the finished image)
                    if let Some(img) = built
                        .0
                        .image
                        .as_ref()
                        .filter(|_| Some(&si) != stages.last())
                        && !opts.quiet
                    {
                        let _ = aux_tx.send(json!({ "aux": { "ID": img.id } })).await;
                    }
                    Ok::<_, Error>(built)
                });
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
        Ok(results)
    }

    /// The target stage's image completed: `--label`s, `--squash`, tags,
    /// and the `build` event. Returns the image id.
    async fn finish_image(
        &self,
        mut last: StageState,
        opts: &BuildOptions,
        tx: &Progress,
    ) -> Result<String> {
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
                self.commit_step(&mut last, None, StepText::default(), "empty")
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
            self.host.tag_image(&image.id, &repo, tag.as_deref())?;
            say(
                tx,
                opts.quiet,
                format!("Successfully tagged {}\n", r.familiar()),
            )
            .await;
        }
        self.host.image_built(&image.id);
        Ok(image.id)
    }

    /// Builds one stage; returns its state and the build args it used.
    #[allow(clippy::too_many_arguments)]
    async fn build_stage(
        &self,
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
                let config = self.host.image_config(&img.id)?;
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
        &self,
        name: &str,
        opts: &BuildOptions,
        tx: &Progress,
    ) -> Result<ImageRecord> {
        if !opts.pull
            && let Ok(img) = self.host.resolve_image(name)
        {
            return Ok(img);
        }
        self.host
            .pull(name, opts.credentials.clone(), tx.clone())
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
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
                let step = StepText::run(&argv, &run_args);
                let key_extra = run_cache_key(&step.created_by, mounts, network.as_deref(), ctx)?;
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
                    .cache_hit(st, opts, tx, &key_extra, &step, true)
                    .await?
                {
                    return Ok(());
                }
                let id = self
                    .run_step(st, argv, run_env, mounts, network.as_deref(), ctx, opts, tx)
                    .await?;
                let committed = self.commit_step(st, Some(&id), step, &key_extra).await;
                self.settle_run_container(&id, committed.is_ok(), opts, tx)
                    .await;
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
        &self,
        st: &mut StageState,
        opts: &BuildOptions,
        tx: &Progress,
        created_by: String,
    ) -> Result<()> {
        let key = format!(
            "{created_by}\n{}",
            st.config.get("config").unwrap_or(&Value::Null)
        );
        let step = StepText::nop(created_by);
        if self.cache_hit(st, opts, tx, &key, &step, false).await? {
            return Ok(());
        }
        self.commit_step(st, None, step, &key).await?;
        self.finish_step(st, opts, tx).await;
        Ok(())
    }

    async fn finish_step(&self, st: &StageState, opts: &BuildOptions, tx: &Progress) {
        if let Some(img) = &st.image {
            say(tx, opts.quiet, format!(" ---> {}\n", short_id(&img.id))).await;
        }
    }
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
