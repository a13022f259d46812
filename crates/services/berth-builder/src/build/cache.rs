//! The step cache: a step's image is the child of the step before with
//! the same build key; `--cache-from` images supply steps too; each step's
//! result is committed as such an image.

use super::*;

pub(super) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The `build_key` of a step: its parent image's id ("" for the first
/// step of `FROM scratch`) and what the step did and read.
pub(super) fn step_build_key(parent: &str, step: &str) -> String {
    sha256_hex(format!("{parent}\n{step}").as_bytes())
}

/// What the image of a step records of what made it: the history's text,
/// and the command of the step's container, which Docker's classic builder
/// keeps as `container_config.Cmd` (docker-compose v1 reads it, and the
/// `Volumes` beside it).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct StepText {
    pub created_by: String,
    pub cmd: Vec<String>,
}

impl StepText {
    /// A step that runs nothing: `/bin/sh -c #(nop) …` in the history; its
    /// command is the shell and the comment, split as Docker's is (`#(nop) `
    /// apart from a config step's instruction, one word with a COPY's).
    pub(super) fn nop(created_by: String) -> Self {
        let cmd = match created_by.strip_prefix("/bin/sh -c ") {
            Some(rest) => {
                let mut cmd = vec!["/bin/sh".to_string(), "-c".to_string()];
                match rest.strip_prefix("#(nop)  ") {
                    Some(instruction) => cmd.extend(["#(nop) ".into(), instruction.into()]),
                    None => cmd.push(rest.into()),
                }
                cmd
            }
            None => vec![created_by.clone()],
        };
        Self { created_by, cmd }
    }

    /// A RUN: its argv, after `|N k=v …` when build args reach it.
    pub(super) fn run(argv: &[String], run_args: &[String]) -> Self {
        let mut cmd = Vec::new();
        if !run_args.is_empty() {
            cmd.push(format!("|{}", run_args.len()));
            cmd.extend(run_args.iter().cloned());
        }
        cmd.extend(argv.iter().cloned());
        Self {
            created_by: cmd.join(" "),
            cmd,
        }
    }
}

/// The image config's `container_config`: the stage's config as the step's
/// container had it, with the step's command and the image it ran on.
fn container_config(config: &Value, step: &StepText, parent: &str) -> Value {
    let mut cc = match config.get("config") {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    cc.insert("Cmd".into(), json!(step.cmd));
    cc.insert("Image".into(), json!(parent));
    Value::Object(cc)
}

/// Whether the step image `h` on top of the stage's image adds what a
/// `--cache-from` match does: the layer `diff` (None: no layer).
fn same_step_layer(h: &ImageRecord, st: &StageState, diff: Option<&str>) -> bool {
    let base = st.image.as_ref().map_or(0, |i| i.diff_ids.len());
    match diff {
        None => h.diff_ids.len() == base,
        Some(d) => h.diff_ids.len() == base + 1 && h.diff_ids.last().map(String::as_str) == Some(d),
    }
}

impl Builder {
    /// Reuses the child of the current image that the same step made before.
    pub(super) async fn cache_hit(
        &self,
        st: &mut StageState,
        opts: &BuildOptions,
        tx: &Progress,
        key: &str,
        step: &StepText,
        layer_step: bool,
    ) -> Result<bool> {
        if opts.no_cache {
            return Ok(false);
        }
        let parent = st.image.as_ref().map(|i| i.id.clone()).unwrap_or_default();
        let build_key = step_build_key(&parent, key);
        let mut local = self.host.step_images(&parent, &build_key);
        local.sort_by(|a, b| b.created.cmp(&a.created));
        // with `--cache-from`, as in Docker, only the named images are
        // cache sources: a local step counts when it is one of their
        // steps, or else the same step one of them continues with
        let from_sources = if opts.cache_from.is_empty() {
            None
        } else {
            Some(self.cache_from_match(st, &opts.cache_from, &step.created_by, layer_step))
        };
        let chosen = match &from_sources {
            None => local.first(),
            Some(m) => local
                .iter()
                .find(|h| self.in_cache_sources(&h.id, &opts.cache_from))
                .or_else(|| {
                    let d = m.as_ref()?;
                    local.iter().find(|h| same_step_layer(h, st, d.as_deref()))
                }),
        }
        .cloned();
        let hit = match (chosen, from_sources) {
            (Some(h), _) => Some(h),
            (None, Some(m)) => match m {
                Some(diff_id) => {
                    let this = self.clone();
                    let (base, config) = (st.image.clone(), st.config.clone());
                    let step = step.clone();
                    Some(
                        tokio::task::spawn_blocking(move || {
                            let layer = diff_id.as_deref().map(StepLayer::Existing);
                            this.store_step_image(
                                base.as_ref(),
                                config,
                                layer,
                                (&step, ""),
                                &build_key,
                            )
                        })
                        .await
                        .map_err(|e| Error::Internal(e.into()))??,
                    )
                }
                None => None,
            },
            (None, None) => None,
        };
        let Some(img) = hit else {
            return Ok(false);
        };
        let Ok(config) = self.host.image_config(&img.id) else {
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

    /// Whether `id` is one of the `--cache-from` images or one of their
    /// ancestors (the steps they were built from here).
    fn in_cache_sources(&self, id: &str, sources: &[String]) -> bool {
        sources
            .iter()
            .filter_map(|n| self.host.resolve_image(n).ok())
            .any(|src| {
                let mut cur = Some(src);
                // a parent chain is as long as the history at most
                for _ in 0..10_000 {
                    let Some(img) = cur else { return false };
                    if img.id == id {
                        return true;
                    }
                    if img.parent.is_empty() {
                        return false;
                    }
                    cur = self.host.image(&img.parent);
                }
                false
            })
    }

    /// `--cache-from`: an image whose history continues the current one
    /// with this very step (same `created_by`, same layer-ness) provides
    /// the step's layer. Returns the layer's diff id (None for a config
    /// step) on a match.
    pub(super) fn cache_from_match(
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
            let Ok(img) = self.host.resolve_image(name) else {
                continue;
            };
            let Ok(cfg) = self.host.image_config(&img.id) else {
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
    pub(super) async fn commit_step(
        &self,
        st: &mut StageState,
        container: Option<&str>,
        step: StepText,
        key: &str,
    ) -> Result<()> {
        let parent = st.image.as_ref().map(|i| i.id.clone()).unwrap_or_default();
        let build_key = step_build_key(&parent, key);
        let layer_tar = match container {
            Some(id) => {
                let upper = self.host.container_upper_dir(id);
                let tmp = self.host.tmp_path("build-layer");
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
        let container = container.unwrap_or_default().to_string();
        let rec = tokio::task::spawn_blocking(move || {
            this.store_step_image(
                base.as_ref(),
                config,
                tar.as_deref().map(StepLayer::Tar),
                (&step, &container),
                &build_key,
            )
        })
        .await
        .map_err(|e| Error::Internal(e.into()));
        if let Some(t) = &layer_tar {
            let _ = std::fs::remove_file(t);
        }
        let rec = rec??;
        st.config = self.host.image_config(&rec.id)?;
        st.image = Some(rec);
        Ok(())
    }

    /// Writes the image of one step (blocking): the config with a history
    /// entry and the step's container (`step`'s and its ID, "" for none),
    /// stored by the host with the layer, if any.
    pub(super) fn store_step_image(
        &self,
        base: Option<&ImageRecord>,
        mut config: Value,
        layer: Option<StepLayer<'_>>,
        (step, container): (&StepText, &str),
        build_key: &str,
    ) -> Result<ImageRecord> {
        if !config.is_object() {
            return Err(Error::invalid(
                "the base image's config is not a JSON object",
            ));
        }
        let now = berth_core::now_rfc3339();
        let created_by = step.created_by.as_str();
        if !created_by.is_empty() {
            let parent = base.map_or("", |b| b.id.as_str());
            config["container_config"] = container_config(&config, step, parent);
            config["container"] = json!(container);
            let mut h = json!({ "created": now, "created_by": created_by });
            if layer.is_none() {
                h["empty_layer"] = json!(true);
            }
            match config.get_mut("history").and_then(Value::as_array_mut) {
                Some(list) => list.push(h),
                None => config["history"] = json!([h]),
            }
        }
        config["created"] = json!(now);
        self.host.store_image(base, config, layer, build_key)
    }

    /// The stage's current image, stored first when the stage is still an
    /// empty `FROM scratch`.
    pub(super) async fn current_image(&self, st: &mut StageState) -> Result<String> {
        if st.image.is_none() {
            // one empty image for every `FROM scratch`, so that the steps
            // on top of it find their cache
            let key = sha256_hex(b"\nscratch");
            let existing = self
                .host
                .step_images("", &key)
                .into_iter()
                .find(|i| i.diff_ids.is_empty());
            match existing {
                Some(img) => {
                    st.config = self.host.image_config(&img.id)?;
                    st.image = Some(img);
                }
                None => {
                    self.commit_step(st, None, StepText::default(), "scratch")
                        .await?
                }
            }
        }
        st.image
            .as_ref()
            .map(|i| i.id.clone())
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no image for the step")))
    }
}
