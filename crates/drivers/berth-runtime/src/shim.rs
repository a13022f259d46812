//! `ShimRuntime`: the `Runtime` port over one shim per container, reached
//! on its unix socket under the exec root.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use berth_cgroups::{Cgroup, Mounts};
use berth_core::runtime::{
    AttachIo, BoxFuture, CreateContainer, ExecProcess, ExecStarted, ExitStatus, Runtime,
    RuntimeError, RuntimeResult, RuntimeState, RuntimeStream,
};
use berth_shim::ShimArgs;
use berth_shim::protocol::{self as wire, Request, Response};

use crate::shim_client;

/// The shim runtime: `binary` is the berth executable, started as `berth
/// shim` for each container; shims keep their state and sockets under
/// `exec_root`; containers' cgroups go under `cgroup_parent`.
pub struct ShimRuntime {
    binary: PathBuf,
    exec_root: PathBuf,
    cgroup_parent: String,
}

fn exit_of(x: wire::ExitStatus) -> ExitStatus {
    ExitStatus {
        code: x.code,
        finished_at: x.finished_at,
        oom_killed: x.oom_killed,
        never_started: x.never_started,
    }
}

/// A shim's answer: its refusal as the error.
fn accepted(r: anyhow::Result<Response>) -> RuntimeResult<Response> {
    let r = r?;
    if !r.ok {
        return Err(RuntimeError::Refused(r.error.unwrap_or_default()));
    }
    Ok(r)
}

impl ShimRuntime {
    pub fn new(binary: PathBuf, exec_root: PathBuf, cgroup_parent: String) -> Self {
        ShimRuntime {
            binary,
            exec_root,
            cgroup_parent,
        }
    }

    fn socket(&self, id: &str) -> PathBuf {
        // unix socket paths are limited to 108 bytes: keep them short
        self.exec_root
            .join("s")
            .join(format!("{}.sock", id.get(..32).unwrap_or(id)))
    }

    /// Where the shim keeps exit.json, shim.log and libcontainer's state.
    fn state_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }

    fn runtime_root(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("runtime")
    }

    async fn request(&self, id: &str, req: &Request) -> anyhow::Result<Response> {
        shim_client::request(&self.socket(id), req).await
    }

    async fn create_inner(&self, c: CreateContainer<'_>) -> anyhow::Result<i32> {
        let mut spec = c.spec.clone();
        crate::cwd::add_hook(&mut spec, &self.binary)
            .context("adding the working directory hook")?;
        let raw = serde_json::to_vec_pretty(&spec).context("encoding OCI spec")?;
        std::fs::write(c.bundle.join("config.json"), raw)?;
        let args = ShimArgs {
            id: c.id.to_string(),
            bundle: c.bundle,
            state_dir: self.state_dir(c.id),
            socket: self.socket(c.id),
            log: serde_json::from_value(c.log).context("decoding the log configuration")?,
            stdin: c.stdin,
        };
        shim_client::spawn(&self.binary, &args).await
    }

    /// Removes libcontainer's state: its own forced delete kills the process
    /// and removes the cgroup, but fails on state written only in part;
    /// then the cgroup's processes are killed here.
    async fn delete_state(&self, id: &str, root: &Path) {
        let deleted = tokio::process::Command::new(&self.binary)
            .arg("shim-delete")
            .arg(root)
            .arg(id)
            .output()
            .await
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !deleted {
            let cgroup = Cgroup::new(
                Mounts::discover(),
                &berth_oci::cgroup_path(&self.cgroup_parent, id),
            );
            for pid in cgroup.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Runtime for ShimRuntime {
    fn create<'a>(&'a self, c: CreateContainer<'a>) -> BoxFuture<'a, RuntimeResult<i32>> {
        Box::pin(async move { Ok(self.create_inner(c).await?) })
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<Option<i32>>> {
        Box::pin(async move { Ok(accepted(self.request(id, &Request::Start).await)?.pid) })
    }

    fn kill<'a>(&'a self, id: &'a str, signal: i32) -> BoxFuture<'a, RuntimeResult<()>> {
        Box::pin(async move {
            accepted(self.request(id, &Request::Kill { signal }).await)?;
            Ok(())
        })
    }

    fn state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeState> {
        Box::pin(async move {
            if !self.socket(id).exists() {
                return RuntimeState::Gone;
            }
            match self.request(id, &Request::State).await {
                Ok(r) if r.ok => match r.exit {
                    Some(x) => RuntimeState::Exited(exit_of(x)),
                    // shims older than the field were started when asked
                    None => RuntimeState::Alive {
                        pid: r.pid,
                        started: r.started.unwrap_or(true),
                    },
                },
                _ => RuntimeState::Gone,
            }
        })
    }

    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ExitStatus>> {
        Box::pin(async move {
            match self.request(id, &Request::Wait).await {
                Ok(r) if r.exit.is_some() => r.exit.map(exit_of),
                Ok(_) | Err(_) => {
                    // the shim went away: its exit record is the truth
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    self.recorded_exit(id)
                }
            }
        })
    }

    fn recorded_exit(&self, id: &str) -> Option<ExitStatus> {
        berth_shim::read_exit(&self.state_dir(id)).map(exit_of)
    }

    fn attach<'a>(
        &'a self,
        id: &'a str,
        io: AttachIo,
    ) -> BoxFuture<'a, RuntimeResult<RuntimeStream>> {
        Box::pin(async move {
            let req = Request::Attach {
                stdin: io.stdin,
                stdout: io.stdout,
                stderr: io.stderr,
                close_stdin: io.close_stdin,
            };
            let stream = shim_client::attach(&self.socket(id), &req).await?;
            Ok(Box::new(stream) as RuntimeStream)
        })
    }

    fn exec<'a>(
        &'a self,
        id: &'a str,
        p: ExecProcess,
    ) -> BoxFuture<'a, RuntimeResult<ExecStarted>> {
        Box::pin(async move {
            let req = Request::Exec {
                args: p.args,
                env: p.env,
                cwd: p.cwd,
                uid: p.uid,
                gid: p.gid,
                additional_gids: p.additional_gids,
                stdin: p.stdin,
                tty: p.tty,
                console_size: p.console_size,
                add_caps: p.add_caps,
            };
            let (resp, stream) = shim_client::attach_with_response(&self.socket(id), &req).await?;
            Ok(ExecStarted {
                pid: resp.pid,
                stream: Box::new(stream),
            })
        })
    }

    fn resize<'a>(
        &'a self,
        id: &'a str,
        height: u16,
        width: u16,
        exec_pid: Option<i32>,
    ) -> BoxFuture<'a, RuntimeResult<()>> {
        Box::pin(async move {
            let req = Request::Resize {
                height,
                width,
                exec_pid,
            };
            shim_client::attach(&self.socket(id), &req).await?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let root = self.runtime_root(id);
            if !root.join(id).exists() {
                return;
            }
            let short = id.get(..12).unwrap_or(id);
            tracing::warn!(container = %short, "removing the runtime state of an interrupted start");
            self.delete_state(id, &root).await;
            if let Err(e) = std::fs::remove_dir_all(&root) {
                tracing::warn!(container = %short, "removing {}: {e}", root.display());
            }
            let _ = std::fs::remove_file(self.socket(id));
        })
    }

    fn forget(&self, id: &str) {
        let _ = std::fs::remove_file(self.socket(id));
    }

    fn recover(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let state_root = self.exec_root.join("containers");
            for pid in creating_shims(&state_root) {
                tracing::warn!(
                    pid,
                    "stopping a shim an earlier daemon left creating a container"
                );
                // SAFETY: kill(2) on a pid just read from /proc
                unsafe { libc::kill(pid, libc::SIGKILL) };
                wait_gone(pid).await;
            }
        })
    }
}

/// Shims still creating a container under `state_root`: `berth shim`
/// processes (a shim that made its container has become `berth-shim`).
/// Their daemon died before their start; left alone, one would go on
/// creating the container while the next start makes it again.
fn creating_shims(state_root: &Path) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|raw| is_creating_shim(&raw, state_root))
        })
        .collect()
}

/// Whether a command line (NUL-separated) is `berth shim ... --state-dir
/// <under state_root>`.
fn is_creating_shim(cmdline: &[u8], state_root: &Path) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.get(1) == Some(&&b"shim"[..])
        && args.windows(2).any(|w| {
            w[0] == b"--state-dir"
                && Path::new(std::ffi::OsStr::from_bytes(w[1])).starts_with(state_root)
        })
}

/// Waits (up to 5 s) until `pid` has exited.
async fn wait_gone(pid: i32) {
    for _ in 0..500 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // a zombie waits only for its reaper: it creates nothing more
        if status.is_empty()
            || status
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shims_creating_under_this_root_are_recognized() {
        let root = Path::new("/run/berth/containers");
        let line = |args: &[&str]| args.join("\0").into_bytes();
        let creating = line(&[
            "/usr/bin/berth",
            "shim",
            "--id",
            "a",
            "--state-dir",
            "/run/berth/containers/a",
            "--socket",
            "/run/berth/s/a.sock",
        ]);
        assert!(is_creating_shim(&creating, root));
        let other_root = line(&[
            "/usr/bin/berth",
            "shim",
            "--state-dir",
            "/run/other/containers/a",
        ]);
        assert!(!is_creating_shim(&other_root, root));
        let steady = line(&[
            "/usr/bin/berth-shim",
            "{\"state_dir\":\"/run/berth/containers/a\"}",
        ]);
        assert!(!is_creating_shim(&steady, root));
        let helper = line(&[
            "/usr/bin/berth",
            "shim-exec",
            "--state-dir",
            "/run/berth/containers/a",
        ]);
        assert!(!is_creating_shim(&helper, root));
        assert!(!is_creating_shim(b"", root));
    }

    #[test]
    fn sockets_stay_short() {
        let rt = ShimRuntime::new("/b".into(), "/run/berth".into(), "/user.slice/".into());
        let id = "a".repeat(64);
        assert_eq!(
            rt.socket(&id),
            PathBuf::from(format!("/run/berth/s/{}.sock", "a".repeat(32)))
        );
    }

    #[tokio::test]
    async fn a_missing_shim_is_gone_and_its_exit_record_counts() {
        let d = tempfile::tempdir().expect("tempdir");
        let rt = ShimRuntime::new("/nonexistent".into(), d.path().into(), String::new());
        assert_eq!(rt.state("c1").await, RuntimeState::Gone);
        let dir = d.path().join("containers/c1");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("exit.json"),
            r#"{"code":137,"finished_at":"t","oom_killed":true}"#,
        )
        .expect("write");
        let x = rt.wait("c1").await.expect("the recorded exit");
        assert_eq!((x.code, x.oom_killed, x.never_started), (137, true, false));
        assert!(matches!(
            rt.kill("c1", 9).await,
            Err(RuntimeError::Failed(_))
        ));
    }
}
