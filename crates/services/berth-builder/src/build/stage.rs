//! A stage's state (its image config and build args) and the instructions
//! that only change the config: ENV, ARG, LABEL, WORKDIR, CMD, ...; which
//! stages a target needs.

use super::*;

/// The state of the stage being built.
pub(super) struct StageState {
    /// the image the next step builds on (None: `FROM scratch`, nothing yet)
    pub(super) image: Option<ImageRecord>,
    /// its config blob as JSON: kept as a value so that fields the OCI
    /// types lack (Healthcheck, Shell, OnBuild) survive
    pub(super) config: Value,
    /// ARGs declared in this stage, with their values
    pub(super) args: BTreeMap<String, Option<String>>,
    /// the ARGs before the first FROM, with their values
    pub(super) globals: BTreeMap<String, Option<String>>,
    /// whether CMD was set in this stage (ENTRYPOINT resets an inherited one)
    pub(super) cmd_set: bool,
    /// the stage's FROM base, for `--squash`
    pub(super) base_layers: usize,
    pub(super) base_id: String,
}

impl StageState {
    pub(super) fn cfg(&self) -> &Value {
        self.config.get("config").unwrap_or(&Value::Null)
    }

    pub(super) fn cfg_mut(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config.get("config").is_some_and(Value::is_object) {
            self.config["config"] = json!({});
        }
        match self.config.get_mut("config") {
            Some(Value::Object(m)) => m,
            _ => unreachable!("config was just made an object"),
        }
    }

    /// An object of the config (Labels, ExposedPorts, Volumes), or `{}`.
    pub(super) fn cfg_object(&self, key: &str) -> Value {
        self.cfg()
            .get(key)
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}))
    }

    /// A list of strings of the config (Env, Shell, OnBuild), or empty.
    pub(super) fn cfg_strings(&self, key: &str) -> Vec<String> {
        self.cfg()
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn env(&self) -> Vec<String> {
        self.cfg_strings("Env")
    }

    pub(super) fn set_env(&mut self, key: &str, value: &str) {
        let mut env: Vec<String> = self
            .env()
            .into_iter()
            .filter(|e| e.split('=').next() != Some(key))
            .collect();
        env.push(format!("{key}={value}"));
        self.cfg_mut().insert("Env".into(), json!(env));
    }

    pub(super) fn workdir(&self) -> String {
        self.cfg()
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    pub(super) fn shell(&self) -> Vec<String> {
        Some(self.cfg_strings("Shell"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// Variables for substitution: ENV wins over ARG, as in Docker.
    pub(super) fn lookup(&self, name: &str) -> Option<String> {
        for e in self.env() {
            if let Some((k, v)) = e.split_once('=')
                && k == name
            {
                return Some(v.to_string());
            }
        }
        self.args.get(name).cloned().flatten()
    }

    /// The build args a RUN sees in its environment (declared, with a value,
    /// not shadowed by ENV).
    pub(super) fn run_args(&self) -> Vec<String> {
        let env_keys: HashSet<String> = self
            .env()
            .iter()
            .filter_map(|e| e.split('=').next().map(String::from))
            .collect();
        self.args
            .iter()
            .filter(|(k, _)| !env_keys.contains(*k))
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }
}

/// A list as Go's `%q` prints it, which is how the history shows CMD and
/// ENTRYPOINT: `["/bin/sh" "-c" "top"]`.
fn go_quoted(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| json!(w).to_string()).collect();
    format!("[{}]", quoted.join(" "))
}

/// An instruction that only changes the image config (ENV … ONBUILD):
/// applies it to the stage and returns the history's `created_by` text.
/// One arm per instruction, each short; the match is the one long thing.
pub(super) fn config_change(
    esc: char,
    ins: &Instruction,
    st: &mut StageState,
    opts: &BuildOptions,
    consumed: &mut HashSet<String>,
    warning: &mut Option<&'static str>,
) -> Result<String> {
    let expand = |st: &StageState, s: &str| -> Result<String> {
        berth_dockerfile::expand(s, esc, &|n| st.lookup(n))
            .map_err(|e| Error::invalid(format!("line {}: {e}", ins.line)))
    };
    let words = |st: &StageState, s: &str| -> Result<Vec<String>> {
        berth_dockerfile::expand_words(s, esc, &|n| st.lookup(n))
            .map_err(|e| Error::invalid(format!("line {}: {e}", ins.line)))
    };
    let nop = |text: String| format!("/bin/sh -c #(nop)  {text}");
    match &ins.kind {
        Kind::Env(pairs) => {
            let mut shown = Vec::new();
            for (k, v) in pairs {
                let k = expand(st, k)?;
                let v = expand(st, v)?;
                st.set_env(&k, &v);
                shown.push(format!("{k}={v}"));
            }
            Ok(nop(format!("ENV {}", shown.join(" "))))
        }
        Kind::Arg(args) => {
            let shown = declare_args(args, st, opts, consumed, &expand)?;
            Ok(nop(format!("ARG {}", shown.join(" "))))
        }
        Kind::Label(pairs) => {
            let mut labels = st.cfg_object("Labels");
            let mut shown = Vec::new();
            for (k, v) in pairs {
                let (k, v) = (expand(st, k)?, expand(st, v)?);
                shown.push(format!("{k}={v}"));
                labels[&k] = json!(v);
            }
            st.cfg_mut().insert("Labels".into(), labels);
            Ok(nop(format!("LABEL {}", shown.join(" "))))
        }
        Kind::Maintainer(m) => {
            let m = expand(st, m)?;
            st.config["author"] = json!(m);
            *warning = Some(" ---> [Warning] MAINTAINER is deprecated: use LABEL maintainer=...\n");
            Ok(nop(format!("MAINTAINER {m}")))
        }
        Kind::Cmd(c) => {
            let v = command_vec(c, &st.shell());
            st.cfg_mut().insert("Cmd".into(), json!(v));
            st.cmd_set = true;
            Ok(nop(format!("CMD {}", go_quoted(&v))))
        }
        Kind::Entrypoint(c) => {
            let v = command_vec(c, &st.shell());
            st.cfg_mut().insert("Entrypoint".into(), json!(v));
            if !st.cmd_set {
                st.cfg_mut().insert("Cmd".into(), Value::Null);
            }
            Ok(nop(format!("ENTRYPOINT {}", go_quoted(&v))))
        }
        Kind::Shell(v) => {
            st.cfg_mut().insert("Shell".into(), json!(v));
            Ok(nop(format!("SHELL [{}]", v.join(" "))))
        }
        Kind::Expose(ports) => {
            let mut exposed = st.cfg_object("ExposedPorts");
            let mut shown = Vec::new();
            for p in ports {
                for w in words(st, p)? {
                    let key = exposed_port_key(&w)?;
                    exposed[&key] = json!({});
                    shown.push(key);
                }
            }
            st.cfg_mut().insert("ExposedPorts".into(), exposed);
            Ok(nop(format!("EXPOSE {}", shown.join(" "))))
        }
        Kind::Volume(vols) => {
            let mut volumes = st.cfg_object("Volumes");
            let mut shown = Vec::new();
            for v in vols {
                let v = expand(st, v)?;
                if v.trim().is_empty() {
                    return Err(Error::invalid(
                        "VOLUME specified can not be an empty string",
                    ));
                }
                volumes[&v] = json!({});
                shown.push(v);
            }
            st.cfg_mut().insert("Volumes".into(), volumes);
            Ok(nop(format!("VOLUME [{}]", shown.join(" "))))
        }
        Kind::User(u) => {
            let u = expand(st, u)?;
            st.cfg_mut().insert("User".into(), json!(u));
            Ok(nop(format!("USER {u}")))
        }
        Kind::Workdir(w) => {
            let w = expand(st, w)?;
            let path = in_workdir(&st.workdir(), &w);
            let path = format!(
                "/{}",
                clean_rel(&path).unwrap_or_default().to_string_lossy()
            );
            st.cfg_mut().insert("WorkingDir".into(), json!(path));
            Ok(nop(format!("WORKDIR {path}")))
        }
        Kind::Stopsignal(s) => {
            let s = expand(st, s)?;
            st.cfg_mut().insert("StopSignal".into(), json!(s));
            Ok(nop(format!("STOPSIGNAL {s}")))
        }
        Kind::Healthcheck(h) => {
            let v = match h {
                None => json!({ "Test": ["NONE"] }),
                Some(h) => healthcheck_config(h)?,
            };
            st.cfg_mut().insert("Healthcheck".into(), v.clone());
            Ok(nop(format!("HEALTHCHECK {v}")))
        }
        Kind::Onbuild(trigger) => {
            let mut list = st.cfg_strings("OnBuild");
            list.push(trigger.original.clone());
            st.cfg_mut().insert("OnBuild".into(), json!(list));
            Ok(nop(format!("ONBUILD {}", trigger.original)))
        }
        _ => Err(Error::Internal(anyhow::anyhow!(
            "line {}: not a config instruction",
            ins.line
        ))),
    }
}

/// ARG: each name gets its build-arg value, else its default, else a
/// global's value. Returns the names as the history shows them.
fn declare_args(
    args: &[(String, Option<String>)],
    st: &mut StageState,
    opts: &BuildOptions,
    consumed: &mut HashSet<String>,
    expand: &dyn Fn(&StageState, &str) -> Result<String>,
) -> Result<Vec<String>> {
    let mut shown = Vec::new();
    for (k, default) in args {
        if opts.build_args.contains_key(k) {
            consumed.insert(k.clone());
        }
        let v = match opts.build_args.get(k).cloned().flatten() {
            Some(v) => Some(v),
            None => match default {
                Some(d) => Some(expand(st, d)?),
                // a global ARG redeclared without a default
                // keeps the global value, as in Docker
                None => st.globals.get(k).cloned().flatten(),
            },
        };
        shown.push(match default {
            Some(d) => format!("{k}={d}"),
            None => k.clone(),
        });
        st.args.insert(k.clone(), v);
    }
    Ok(shown)
}

/// An EXPOSE word as the config's key: `port[-port]/proto`, tcp by default.
fn exposed_port_key(w: &str) -> Result<String> {
    let key = if w.contains('/') {
        w.to_ascii_lowercase()
    } else {
        format!("{w}/tcp")
    };
    let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
    let valid_port = port.split('-').all(|p| p.parse::<u16>().is_ok());
    if !valid_port || !["tcp", "udp", "sctp"].contains(&proto) {
        return Err(Error::invalid(format!("invalid containerPort: {w}")));
    }
    Ok(key)
}

/// HEALTHCHECK's options as the image config's `Healthcheck`.
fn healthcheck_config(h: &berth_dockerfile::Healthcheck) -> Result<Value> {
    let test = match &h.test {
        Cmd::Exec(v) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v.iter().cloned());
            t
        }
        Cmd::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
    };
    let dur = |d: &Option<String>, what: &str| -> Result<Option<i64>> {
        d.as_deref()
            .map(|s| {
                berth_units::parse_go_duration(s)
                    .ok_or_else(|| Error::invalid(format!("Error parsing {what}: {s}")))
            })
            .transpose()
    };
    let mut o = json!({ "Test": test });
    if let Some(n) = dur(&h.interval, "interval")? {
        o["Interval"] = json!(n);
    }
    if let Some(n) = dur(&h.timeout, "timeout")? {
        o["Timeout"] = json!(n);
    }
    if let Some(n) = dur(&h.start_period, "start-period")? {
        o["StartPeriod"] = json!(n);
    }
    if let Some(n) = dur(&h.start_interval, "start-interval")? {
        o["StartInterval"] = json!(n);
    }
    if let Some(r) = &h.retries {
        let n: i64 = r
            .parse()
            .map_err(|_| Error::invalid(format!("Error parsing retries: {r}")))?;
        o["Retries"] = json!(n);
    }
    Ok(o)
}

/// The earlier stages stage `i` reads: its FROM and its `COPY --from`s,
/// expanded with the global ARGs (`FROM ${BASE}`).
pub(super) fn stage_deps(
    df: &Dockerfile,
    i: usize,
    global: &BTreeMap<String, Option<String>>,
) -> Vec<usize> {
    let stage = &df.stages[i];
    let mut refs: Vec<&str> = vec![stage.base.as_str()];
    for ins in &stage.instructions {
        if let Kind::Copy {
            from: Some(from), ..
        } = &ins.kind
        {
            refs.push(from.as_str());
        }
    }
    refs.into_iter()
        .map(|r| {
            berth_dockerfile::expand(r, df.escape, &|n| global.get(n).cloned().flatten())
                .unwrap_or_else(|_| r.to_string())
        })
        .filter_map(|r| stage_index(df, &r, i))
        .collect()
}

/// Which stages the target needs: what it reads, transitively.
pub(super) fn needed_stages(
    df: &Dockerfile,
    target: usize,
    global: &BTreeMap<String, Option<String>>,
) -> Result<Vec<usize>> {
    let mut needed = vec![false; df.stages.len()];
    let mut stack = vec![target];
    while let Some(i) = stack.pop() {
        if needed[i] {
            continue;
        }
        needed[i] = true;
        stack.extend(stage_deps(df, i, global));
    }
    Ok((0..df.stages.len()).filter(|i| needed[*i]).collect())
}

/// The earlier stage `name` refers to (by name or index), if any.
pub(super) fn stage_index(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if let Ok(n) = name.parse::<usize>() {
        return (n < before).then_some(n);
    }
    df.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
}

/// Docker's exec-or-shell rule for RUN, CMD, ENTRYPOINT and HEALTHCHECK.
pub(super) fn command_vec(cmd: &Cmd, shell: &[String]) -> Vec<String> {
    match cmd {
        Cmd::Exec(v) => v.clone(),
        Cmd::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// A path in the image, relative paths taken from the working directory.
pub(super) fn in_workdir(workdir: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        let mut s = workdir.trim_end_matches('/').to_string();
        s.push('/');
        s.push_str(p);
        s
    }
}
