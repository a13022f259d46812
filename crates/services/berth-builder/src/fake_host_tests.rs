//! The builder driven through a fake host: images and containers in
//! memory, so the step cache, config steps, RUN's exit codes and tagging
//! are tested without root, namespaces or a daemon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_core::error::{Error, Result};
use berth_core::image::{ImageRecord, sha256_digest};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    BuildHost, BuildOptions, Builder, Progress, RootWork, StepContainer, StepLayer, StepOutput,
};

#[derive(Default)]
struct State {
    images: HashMap<String, (ImageRecord, Value)>,
    tags: Vec<(String, String, Option<String>)>,
    built: Vec<String>,
    created: Vec<StepContainer>,
    removed: Vec<String>,
    kept: Vec<String>,
}

/// A host whose step containers exit with `exit_code` after printing
/// `output`; their writable layer is `upper`.
struct FakeHost {
    dir: PathBuf,
    upper: PathBuf,
    exit_code: i64,
    output: &'static str,
    /// what they print on stderr
    errput: &'static str,
    state: Mutex<State>,
}

impl FakeHost {
    fn new(dir: &Path, exit_code: i64) -> Arc<Self> {
        Self::with_stderr(dir, exit_code, "")
    }

    fn with_stderr(dir: &Path, exit_code: i64, errput: &'static str) -> Arc<Self> {
        let upper = dir.join("upper");
        std::fs::create_dir_all(&upper).unwrap();
        Arc::new(FakeHost {
            dir: dir.to_path_buf(),
            upper,
            exit_code,
            output: "hello from the step\n",
            errput,
            state: Mutex::new(State::default()),
        })
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn config(&self, id: &str) -> Value {
        self.st().images[id].1.clone()
    }
}

impl BuildHost for FakeHost {
    fn tmp_path(&self, prefix: &str) -> PathBuf {
        self.dir
            .join(format!("{prefix}-{}", &berth_core::random_id()[..8]))
    }
    fn data_root(&self) -> PathBuf {
        self.dir.join("root")
    }
    fn certs_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }
    fn resolve_image(&self, name: &str) -> Result<ImageRecord> {
        self.image(name)
            .ok_or_else(|| Error::not_found(format!("No such image: {name}")))
    }
    fn image(&self, id: &str) -> Option<ImageRecord> {
        self.st().images.get(id).map(|(r, _)| r.clone())
    }
    fn step_images(&self, parent: &str, build_key: &str) -> Vec<ImageRecord> {
        let st = self.st();
        st.images
            .values()
            .filter(|(r, _)| r.parent == parent && r.build_key == build_key)
            .map(|(r, _)| r.clone())
            .collect()
    }
    fn image_config(&self, id: &str) -> Result<Value> {
        Ok(self.config(id))
    }
    fn layer_dir(&self, chain_id: &str) -> PathBuf {
        self.dir.join("layers").join(chain_id)
    }
    fn store_image(
        &self,
        base: Option<&ImageRecord>,
        mut config: Value,
        layer: Option<StepLayer<'_>>,
        build_key: &str,
    ) -> Result<ImageRecord> {
        let mut diff_ids = base.map(|b| b.diff_ids.clone()).unwrap_or_default();
        match layer {
            Some(StepLayer::Tar(t)) => diff_ids.push(sha256_digest(&std::fs::read(t)?)),
            Some(StepLayer::Existing(d)) => diff_ids.push(d.to_string()),
            None => {}
        }
        config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
        let id = sha256_digest(config.to_string().as_bytes());
        let rec = ImageRecord {
            id: id.clone(),
            diff_ids,
            created: config["created"].as_str().unwrap_or_default().to_string(),
            parent: base.map(|b| b.id.clone()).unwrap_or_default(),
            build_key: build_key.to_string(),
            ..Default::default()
        };
        self.st().images.insert(id, (rec.clone(), config));
        Ok(rec)
    }
    fn pull<'a>(
        &'a self,
        name: &'a str,
        _credentials: Option<berth_distribution::Credentials>,
        _tx: Progress,
    ) -> BoxFuture<'a, Result<ImageRecord>> {
        Box::pin(async move { Err(Error::not_found(format!("pull access denied for {name}"))) })
    }
    fn tag_image(&self, id: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let t = (id.to_string(), repo.to_string(), tag.map(str::to_string));
        self.st().tags.push(t);
        Ok(())
    }
    fn image_built(&self, id: &str) {
        self.st().built.push(id.to_string());
    }
    fn create_container(&self, spec: StepContainer) -> BoxFuture<'_, Result<String>> {
        let mut st = self.st();
        st.created.push(spec);
        let id = format!("step{}", st.created.len());
        Box::pin(async move { Ok(id) })
    }
    fn run_container<'a>(
        &'a self,
        _id: &'a str,
        output: mpsc::Sender<StepOutput>,
    ) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let _ = output
                .send(StepOutput::Stdout(self.output.as_bytes().to_vec()))
                .await;
            if !self.errput.is_empty() {
                let _ = output
                    .send(StepOutput::Stderr(self.errput.as_bytes().to_vec()))
                    .await;
            }
            Ok(self.exit_code)
        })
    }
    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        self.st().removed.push(id.to_string());
        Box::pin(async { Ok(()) })
    }
    fn keep_container(&self, id: &str) -> Result<()> {
        self.st().kept.push(id.to_string());
        Ok(())
    }
    fn container_upper_dir(&self, _id: &str) -> PathBuf {
        self.upper.clone()
    }
    fn with_container_root<'a>(
        &'a self,
        _id: &'a str,
        _work: RootWork,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Err(Error::invalid("the fake host has no root filesystems")) })
    }
    fn resolve_user(&self, _rootfs: &Path, _user: &str) -> std::result::Result<(u32, u32), String> {
        Ok((0, 0))
    }
}

/// A context tar holding only `dockerfile`.
fn context(dir: &Path, dockerfile: &str) -> PathBuf {
    let path = dir.join(format!("ctx-{}.tar", &berth_core::random_id()[..8]));
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    b.finish().unwrap();
    path
}

/// Builds and collects the progress stream's text.
async fn build(host: &Arc<FakeHost>, df: &str, opts: BuildOptions) -> (Result<String>, String) {
    let (res, messages) = build_messages(host, df, opts).await;
    let text = messages
        .iter()
        .filter_map(|v| v.get("stream").and_then(Value::as_str))
        .collect();
    (res, text)
}

/// Builds and collects the progress stream's messages.
async fn build_messages(
    host: &Arc<FakeHost>,
    df: &str,
    opts: BuildOptions,
) -> (Result<String>, Vec<Value>) {
    let ctx = context(&host.dir, df);
    let (tx, mut rx) = mpsc::channel::<Value>(1024);
    let builder = Builder::new(host.clone());
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(v) = rx.recv().await {
            all.push(v);
        }
        all
    });
    let res = builder.build(ctx, opts, tx).await;
    (res, collect.await.unwrap())
}

fn opts() -> BuildOptions {
    BuildOptions {
        rm: true,
        ..Default::default()
    }
}

const CONFIG_ONLY: &str =
    "FROM scratch\nENV A=1\nLABEL x=y\nWORKDIR /app\nCMD [\"run\"]\nEXPOSE 80\n";

#[tokio::test]
async fn config_steps_make_the_image_config() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    let (res, text) = build(&host, CONFIG_ONLY, opts()).await;
    let id = res.unwrap();
    let cfg = host.config(&id);
    // scratch starts with Docker's default PATH
    assert_eq!(
        cfg["config"]["Env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1"
        ])
    );
    assert_eq!(cfg["config"]["Labels"], json!({"x": "y"}));
    assert_eq!(cfg["config"]["WorkingDir"], json!("/app"));
    assert_eq!(cfg["config"]["Cmd"], json!(["run"]));
    assert_eq!(cfg["config"]["ExposedPorts"], json!({"80/tcp": {}}));
    assert_eq!(cfg["history"].as_array().unwrap().len(), 5);
    assert!(text.contains("Successfully built"), "{text}");
    assert_eq!(host.st().built, vec![id]);
    assert!(
        host.st().created.is_empty(),
        "config steps need no container"
    );
}

#[tokio::test]
async fn a_second_build_is_served_from_the_step_cache() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    let (first, text1) = build(&host, CONFIG_ONLY, opts()).await;
    let images_after_first = host.st().images.len();
    let (second, text2) = build(&host, CONFIG_ONLY, opts()).await;
    assert_eq!(first.unwrap(), second.unwrap());
    assert!(!text1.contains("Using cache"), "{text1}");
    assert_eq!(text2.matches("Using cache").count(), 5, "{text2}");
    assert_eq!(host.st().images.len(), images_after_first);
}

#[tokio::test]
async fn a_changed_step_misses_the_cache_from_there_on() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    let (first, _) = build(&host, CONFIG_ONLY, opts()).await;
    let changed = CONFIG_ONLY.replace("LABEL x=y", "LABEL x=z");
    let (second, text) = build(&host, &changed, opts()).await;
    assert_ne!(first.unwrap(), second.unwrap());
    // ENV is still cached; LABEL and every step after it run again
    assert_eq!(text.matches("Using cache").count(), 1, "{text}");
}

#[tokio::test]
async fn no_cache_runs_every_step_again() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    build(&host, CONFIG_ONLY, opts()).await.0.unwrap();
    let no_cache = BuildOptions {
        no_cache: true,
        ..opts()
    };
    let (res, text) = build(&host, CONFIG_ONLY, no_cache).await;
    res.unwrap();
    assert!(!text.contains("Using cache"), "{text}");
}

#[tokio::test]
async fn a_failing_run_is_a_typed_exit_code_and_its_container_stays() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 3);
    let (res, text) = build(&host, "FROM scratch\nRUN false\n", opts()).await;
    match res {
        Err(Error::StepFailed { code, message }) => {
            assert_eq!(code, 3);
            assert!(message.contains("returned a non-zero code: 3"), "{message}");
        }
        other => panic!("expected a failed step, got {other:?}"),
    }
    assert!(
        text.contains("hello from the step"),
        "output forwarded: {text}"
    );
    let st = host.st();
    assert_eq!(st.created.len(), 1);
    assert_eq!(st.created[0].cmd, vec!["/bin/sh", "-c", "false"]);
    // Docker's classic builder leaves a failed step's container, unless
    // forcerm
    assert!(st.removed.is_empty(), "{:?}", st.removed);
    assert_eq!(st.kept, vec!["step1".to_string()]);
}

#[tokio::test]
async fn rm_and_forcerm_decide_what_becomes_of_step_containers() {
    let dir = tempfile::tempdir().unwrap();
    // rm=false: a succeeded step's container stays
    let host = FakeHost::new(dir.path(), 0);
    let keep = BuildOptions {
        rm: false,
        ..opts()
    };
    let (res, text) = build(&host, "FROM scratch\nRUN make\n", keep).await;
    res.unwrap();
    assert!(!text.contains("Removed intermediate container"), "{text}");
    assert!(host.st().removed.is_empty());
    assert_eq!(host.st().kept, vec!["step1".to_string()]);
    // rm: removed, and said so as dockerd says it
    let host = FakeHost::new(dir.path(), 0);
    let (res, text) = build(&host, "FROM scratch\nRUN make\n", opts()).await;
    res.unwrap();
    assert!(
        text.contains(" ---> Removed intermediate container step1\n"),
        "{text}"
    );
    // forcerm: a failed step's container goes too
    let host = FakeHost::new(dir.path(), 2);
    let force = BuildOptions {
        force_rm: true,
        ..opts()
    };
    let (res, text) = build(&host, "FROM scratch\nRUN false\n", force).await;
    assert!(res.is_err());
    assert_eq!(host.st().removed, vec!["step1".to_string()]);
    assert!(host.st().kept.is_empty());
    assert!(
        text.contains("Removed intermediate container step1"),
        "{text}"
    );
}

#[tokio::test]
async fn run_stderr_comes_in_dockers_red() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::with_stderr(dir.path(), 0, "warning: careful\n");
    let (res, messages) = build_messages(&host, "FROM scratch\nRUN make\n", opts()).await;
    res.unwrap();
    let streams: Vec<&str> = messages
        .iter()
        .filter_map(|v| v.get("stream").and_then(Value::as_str))
        .collect();
    assert!(
        streams.contains(&"\u{1b}[91mwarning: careful\n\u{1b}[0m"),
        "{streams:?}"
    );
    assert!(streams.contains(&"hello from the step\n"), "{streams:?}");
}

#[tokio::test]
async fn every_stage_built_reports_its_image() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    let df = "FROM scratch AS a\nENV A=1\nFROM scratch AS b\nENV B=1\nFROM a\nENV C=1\n";
    let (res, messages) = build_messages(&host, df, opts()).await;
    let id = res.unwrap();
    let aux: Vec<String> = messages
        .iter()
        .filter_map(|v| v.pointer("/aux/ID").and_then(Value::as_str))
        .map(String::from)
        .collect();
    // b is not needed: stages a and the last are built
    assert_eq!(aux.len(), 2, "{messages:?}");
    assert_eq!(aux.last(), Some(&id));
    assert_eq!(host.config(&aux[0])["config"]["Env"][1], json!("A=1"));
    // the first stage's ID comes before the last stage's first step
    let pos = |pred: &dyn Fn(&Value) -> bool| messages.iter().position(pred).unwrap();
    let aux0 = pos(&|v| v.pointer("/aux/ID").and_then(Value::as_str) == Some(aux[0].as_str()));
    let step = pos(&|v| v["stream"].as_str().is_some_and(|s| s.contains("FROM a")));
    assert!(aux0 < step, "{messages:?}");
}

#[tokio::test]
async fn a_missing_cache_from_image_leaves_no_cache_source() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    build(&host, CONFIG_ONLY, opts()).await.0.unwrap();
    let missing = BuildOptions {
        cache_from: vec!["nothere:1".into()],
        ..opts()
    };
    let (res, text) = build(&host, CONFIG_ONLY, missing).await;
    res.unwrap();
    assert!(!text.contains("Using cache"), "{text}");
}

#[tokio::test]
async fn an_empty_dockerfile_is_refused_in_dockers_words() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    let (res, _) = build(&host, "", opts()).await;
    let err = res.unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the Dockerfile (Dockerfile) cannot be empty"
    );
}

#[tokio::test]
async fn a_run_commits_its_changes_as_a_layer() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    std::fs::write(host.upper.join("made-by-run"), "x").unwrap();
    let df = "FROM scratch\nARG V=1\nRUN make\n";
    let (res, _) = build(&host, df, opts()).await;
    let id = res.unwrap();
    let img = host.image(&id).unwrap();
    assert_eq!(img.diff_ids.len(), 1, "one layer from the RUN");
    let st = host.st();
    // a RUN sees the declared build args in its environment
    assert_eq!(st.created[0].env, vec!["V=1".to_string()]);
    assert_eq!(st.removed, vec!["step1".to_string()], "--rm removes it");
}

#[tokio::test]
async fn tags_are_checked_first_and_applied_last() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    assert!(crate::check_tags(&["UPPER:bad".into()]).is_err());
    let tagged = BuildOptions {
        tags: vec!["app:1".into(), "registry.local:5000/team/app".into()],
        ..opts()
    };
    let id = build(&host, CONFIG_ONLY, tagged).await.0.unwrap();
    let tags = host.st().tags.clone();
    assert_eq!(
        tags,
        vec![
            (id.clone(), "docker.io/library/app".into(), Some("1".into())),
            (
                id,
                "registry.local:5000/team/app".into(),
                Some("latest".into())
            ),
        ]
    );
}

#[tokio::test]
async fn an_unknown_target_and_a_missing_base_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    let target = BuildOptions {
        target: Some("nope".into()),
        ..opts()
    };
    let (res, _) = build(&host, CONFIG_ONLY, target).await;
    let err = res.unwrap_err().to_string();
    assert_eq!(err, "failed to reach build target nope in Dockerfile");
    let (res, _) = build(&host, "FROM missing:1\nENV A=1\n", opts()).await;
    assert!(matches!(res, Err(Error::NotFound(_))), "{res:?}");
}

#[tokio::test]
async fn unused_build_args_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path(), 0);
    let args = BuildOptions {
        build_args: HashMap::from([
            ("USED".to_string(), Some("1".to_string())),
            ("EXTRA".to_string(), Some("2".to_string())),
            ("HTTP_PROXY".to_string(), Some("p".to_string())),
        ]),
        ..opts()
    };
    let df = "FROM scratch\nARG USED\nENV V=$USED\n";
    let (res, text) = build(&host, df, args).await;
    let id = res.unwrap();
    assert_eq!(
        host.config(&id)["config"]["Env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "V=1"
        ])
    );
    assert!(
        text.contains("[Warning] One or more build-args [EXTRA] were not consumed"),
        "{text}"
    );
}
