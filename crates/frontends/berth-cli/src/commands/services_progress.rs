//! The wait for a service to converge after `service create|update|
//! scale|rollback` (docker's cli/command/service/progress): the service,
//! its up-to-date tasks and the nodes polled every 200ms, shown as the
//! docker CLI's jsonmessage display shows progress: lines rewritten in
//! place on a terminal, and elsewhere only the lines without a bar.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

use super::swarm::get_json;
use crate::{Ctx, rawhttp, status};

const POLL: Duration = Duration::from_millis(200);
const MAX_PROGRESS: i64 = 9;
const MAX_PROGRESS_BARS: u64 = 20;
const MAX_JOB_PROGRESS: i64 = 10;
/// The longest state shown ("allocated", "preparing").
const LONGEST_STATE: usize = 9;

/// swarmkit's task states in their order; the others count as 0.
fn state_rank(s: &str) -> i64 {
    match s {
        "new" => 1,
        "allocated" => 2,
        "pending" => 3,
        "assigned" => 4,
        "accepted" => 5,
        "preparing" => 6,
        "ready" => 7,
        "starting" => 8,
        "running" => 9,
        "complete" => 10,
        "shutdown" => 11,
        "failed" => 12,
        "rejected" => 13,
        _ => 0,
    }
}

fn terminal_state(s: &str) -> bool {
    state_rank(s) > state_rank("running")
}

/// One message of the progress stream: with `bar` it is a progress
/// update (its line is kept and rewritten), without it a status line.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub id: String,
    pub text: String,
    pub bar: Option<Bar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bar {
    pub current: i64,
    pub total: i64,
}

impl Bar {
    /// jsonmessage's `JSONProgress.String` with hidden counts: the bar
    /// alone, only when the terminal is wider than 110 columns.
    fn render(&self, width: u16) -> String {
        if self.current <= 0 && self.total <= 0 {
            return String::new();
        }
        if self.total <= 0 {
            return format!("{:>8}", berth_units::human_size(self.current as f64));
        }
        let pct = (((self.current as f64 / self.total as f64) * 100.0) as i64 / 2).min(50);
        if width <= 110 {
            return String::new();
        }
        let pct = pct.max(0) as usize;
        format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct))
    }
}

fn update(id: impl Into<String>, text: impl Into<String>) -> Msg {
    Msg {
        id: id.into(),
        text: text.into(),
        bar: Some(Bar::default()),
    }
}

fn status_line(id: &str, text: impl Into<String>) -> Msg {
    Msg {
        id: id.to_string(),
        text: text.into(),
        bar: None,
    }
}

fn bar(id: impl Into<String>, text: impl Into<String>, current: i64, total: i64) -> Msg {
    Msg {
        id: id.into(),
        text: text.into(),
        bar: Some(Bar { current, total }),
    }
}

/// jsonmessage's `DisplayJSONMessagesStream` over the messages.
pub struct Display {
    tty: bool,
    width: u16,
    lines: HashMap<String, usize>,
    out: Box<dyn Write>,
}

impl Display {
    pub fn new(tty: bool, width: u16, out: Box<dyn Write>) -> Self {
        Display {
            tty,
            width,
            lines: HashMap::new(),
            out,
        }
    }

    pub fn show(&mut self, m: &Msg) {
        let mut diff = 0;
        if !m.id.is_empty() && m.bar.is_some() {
            let n = self.lines.len();
            let line = *self.lines.entry(m.id.clone()).or_insert_with(|| n);
            if line == n && self.tty {
                let _ = writeln!(self.out);
            }
            diff = self.lines.len() - line;
            if self.tty && diff > 0 {
                let _ = write!(self.out, "\x1b[{diff}A");
            }
        } else {
            self.lines.clear();
        }
        self.display(m);
        if !m.id.is_empty() && self.tty && diff > 0 {
            let _ = write!(self.out, "\x1b[{diff}B");
        }
        let _ = self.out.flush();
    }

    fn display(&mut self, m: &Msg) {
        let mut endl = "";
        if self.tty && m.bar.is_some() {
            let _ = write!(self.out, "\x1b[2K\r");
            endl = "\r";
        } else if m.bar.is_some_and(|b| !b.render(200).is_empty()) {
            // no bars off a terminal
            return;
        }
        if !m.id.is_empty() {
            let _ = write!(self.out, "{}: ", m.id);
        }
        match m.bar {
            Some(b) if self.tty => {
                let _ = write!(self.out, "{} {}{endl}", m.text, b.render(self.width));
            }
            _ => {
                let _ = writeln!(self.out, "{}{endl}", m.text);
            }
        }
    }
}

/// The fields of a task the progress reads.
struct Task<'a>(&'a Value);

impl<'a> Task<'a> {
    fn desired(&self) -> &'a str {
        self.0["DesiredState"].as_str().unwrap_or_default()
    }
    fn state(&self) -> &'a str {
        self.0["Status"]["State"].as_str().unwrap_or_default()
    }
    fn err(&self) -> &'a str {
        self.0["Status"]["Err"].as_str().unwrap_or_default()
    }
    fn slot(&self) -> i64 {
        self.0["Slot"].as_i64().unwrap_or(0)
    }
    fn node(&self) -> &'a str {
        self.0["NodeID"].as_str().unwrap_or_default()
    }
    fn iteration(&self) -> Option<u64> {
        self.0["JobIteration"]["Index"].as_u64()
    }
    fn known(&self) -> bool {
        state_rank(self.desired()) != 0 && state_rank(self.state()) != 0
    }
}

/// Of two tasks in one slot (or on one node), the one with the lowest
/// desired state, then the lowest observed state, is shown.
fn keep_existing(existing: &Task, task: &Task) -> bool {
    let (e, t) = (state_rank(existing.desired()), state_rank(task.desired()));
    e < t || (e == t && state_rank(existing.state()) <= state_rank(task.state()))
}

/// `truncError`: one line, at most 75 bytes.
fn trunc_error(e: &str) -> String {
    let e = e.replace('\n', " ");
    if e.len() <= 75 {
        return e;
    }
    let mut cut = 74;
    while !e.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &e[..cut])
}

fn padded_state(s: &str) -> String {
    format!("{s:<LONGEST_STATE$}")
}

fn overall(running: u64, total: u64, rollback: bool) -> Msg {
    if rollback {
        return update(
            "overall progress",
            format!("rolling back update: {running} out of {total} tasks"),
        );
    }
    update(
        "overall progress",
        format!("{running} out of {total} tasks"),
    )
}

#[derive(Default)]
struct Replicated {
    slots: BTreeMap<i64, usize>,
    initialized: bool,
    done: bool,
}

impl Replicated {
    fn update(
        &mut self,
        svc: &Value,
        tasks: &[Value],
        active: &[String],
        rollback: bool,
        out: &mut Vec<Msg>,
    ) -> Result<bool> {
        let replicas = svc["Spec"]["Mode"]["Replicated"]["Replicas"]
            .as_u64()
            .ok_or_else(|| status(1, "no replica count"))?;
        if !self.initialized {
            out.push(overall(0, replicas, rollback));
            if replicas <= MAX_PROGRESS_BARS {
                for i in 1..=replicas {
                    out.push(update(format!("{i}/{replicas}"), " "));
                }
            }
            self.initialized = true;
        }
        let mut by_slot: BTreeMap<i64, Task> = BTreeMap::new();
        for t in tasks.iter().map(Task) {
            if !t.known() {
                continue;
            }
            if by_slot.get(&t.slot()).is_some_and(|e| keep_existing(e, &t)) {
                continue;
            }
            if !t.node().is_empty() && !active.iter().any(|n| n == t.node()) {
                continue;
            }
            by_slot.insert(t.slot(), t);
        }
        if self.done && by_slot.values().any(|t| t.state() != "running") {
            self.done = false;
        }
        let mut running = 0;
        for t in by_slot.values() {
            let n = self.slots.len() + 1;
            let mapped = *self.slots.entry(t.slot()).or_insert(n);
            if !terminal_state(t.desired()) && t.state() == "running" {
                running += 1;
            }
            if self.done || replicas > MAX_PROGRESS_BARS || mapped as u64 > replicas {
                continue;
            }
            let id = format!("{mapped}/{replicas}");
            if !t.err().is_empty() {
                out.push(update(id, trunc_error(t.err())));
            } else if !terminal_state(t.desired()) && !terminal_state(t.state()) {
                out.push(bar(
                    id,
                    padded_state(t.state()),
                    state_rank(t.state()),
                    MAX_PROGRESS,
                ));
            }
        }
        if !self.done {
            out.push(overall(running, replicas, rollback));
            if running == replicas {
                self.done = true;
            }
        }
        Ok(running == replicas)
    }
}

#[derive(Default)]
struct Global {
    initialized: bool,
    done: bool,
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

impl Global {
    fn update(
        &mut self,
        tasks: &[Value],
        active: &[String],
        rollback: bool,
        out: &mut Vec<Msg>,
    ) -> bool {
        let mut by_node: BTreeMap<&str, Task> = BTreeMap::new();
        for t in tasks.iter().map(Task) {
            if !t.known() {
                continue;
            }
            if by_node.get(t.node()).is_some_and(|e| keep_existing(e, &t)) {
                continue;
            }
            by_node.insert(t.node(), t);
        }
        let count = by_node.len() as u64;
        if !self.initialized {
            if count == 0 {
                out.push(update("overall progress", "waiting for new tasks"));
                return false;
            }
            out.push(overall(0, count, rollback));
            self.initialized = true;
        }
        if self.done && by_node.values().any(|t| t.state() != "running") {
            self.done = false;
        }
        let mut running = 0;
        for t in by_node
            .values()
            .filter(|t| active.iter().any(|n| n == t.node()))
        {
            if !terminal_state(t.desired()) && t.state() == "running" {
                running += 1;
            }
            if self.done || count > MAX_PROGRESS_BARS {
                continue;
            }
            if !t.err().is_empty() {
                out.push(update(short(t.node()), trunc_error(t.err())));
            } else if !terminal_state(t.desired()) && !terminal_state(t.state()) {
                out.push(bar(
                    short(t.node()),
                    padded_state(t.state()),
                    state_rank(t.state()),
                    MAX_PROGRESS,
                ));
            }
        }
        if !self.done {
            out.push(overall(running, count, rollback));
            if running == count {
                self.done = true;
            }
        }
        running == count
    }
}

struct ReplicatedJob {
    iteration: u64,
    concurrent: i64,
    total: i64,
    initialized: bool,
}

fn job_task_msg(id: String, t: &Task) -> Msg {
    if !t.err().is_empty() {
        return update(id, trunc_error(t.err()));
    }
    bar(
        id,
        padded_state(t.state()),
        state_rank(t.state()),
        MAX_JOB_PROGRESS,
    )
}

fn job_progress(completed: i64, total: i64) -> Msg {
    let digits = total.to_string().len();
    bar(
        "job progress",
        format!("{completed:>digits$} out of {total} complete"),
        completed,
        total,
    )
}

impl ReplicatedJob {
    fn new(svc: &Value) -> Self {
        let job = &svc["Spec"]["Mode"]["ReplicatedJob"];
        ReplicatedJob {
            iteration: svc["JobStatus"]["JobIteration"]["Index"]
                .as_u64()
                .unwrap_or(0),
            concurrent: job["MaxConcurrent"].as_i64().unwrap_or(0),
            total: job["TotalCompletions"].as_i64().unwrap_or(0),
            initialized: false,
        }
    }

    fn overall(&self, active: i64, completed: i64, out: &mut Vec<Msg>) {
        out.push(job_progress(completed, self.total));
        let desired = (self.total - completed).min(self.concurrent);
        let w = self.concurrent.to_string().len();
        out.push(update(
            "active tasks",
            format!("{active:>w$} out of {desired:>w$} tasks"),
        ));
    }

    fn update(&mut self, tasks: &[Value], out: &mut Vec<Msg>) -> bool {
        if !self.initialized {
            self.overall(0, 0, out);
            if self.total <= MAX_PROGRESS_BARS as i64 {
                for i in 1..=self.total {
                    out.push(update(format!("{i}/{}", self.total), " "));
                }
            }
            self.initialized = true;
        }
        let mut by_slot: HashMap<i64, Task> = HashMap::new();
        for t in tasks.iter().map(Task) {
            if t.iteration() != Some(self.iteration) || !t.known() {
                continue;
            }
            let lower = by_slot
                .get(&t.slot())
                .is_none_or(|e| state_rank(e.state()) > state_rank(t.state()));
            if lower {
                by_slot.insert(t.slot(), t);
            }
        }
        let (mut active, mut complete) = (0, 0);
        let empty = Value::Null;
        // slots 0..n, as docker walks them; a missing slot reads as an
        // empty task
        for i in 0..by_slot.len() as i64 {
            let t = by_slot.get(&i).map_or(Task(&empty), |t| Task(t.0));
            if self.total <= MAX_PROGRESS_BARS as i64 {
                out.push(job_task_msg(format!("{}/{}", t.slot() + 1, self.total), &t));
            }
            if state_rank(t.state()) < state_rank("complete") {
                active += 1;
            }
            if t.state() == "complete" {
                complete += 1;
            }
        }
        self.overall(active, complete, out);
        complete == self.total
    }
}

#[derive(Default)]
struct GlobalJob {
    initialized: bool,
    total: i64,
    nodes: Vec<String>,
}

impl GlobalJob {
    fn update(
        &mut self,
        svc: &Value,
        tasks: &[Value],
        active: &[String],
        out: &mut Vec<Msg>,
    ) -> bool {
        let iteration = svc["JobStatus"]["JobIteration"]["Index"].as_u64();
        let current = |t: &Task| t.iteration().is_some() && t.iteration() == iteration;
        if !self.initialized {
            if tasks.is_empty() && !active.is_empty() {
                out.push(update("job progress", "waiting for tasks"));
                return false;
            }
            for t in tasks.iter().map(Task).filter(current) {
                if !self.nodes.iter().any(|n| n == t.node()) {
                    self.nodes.push(t.node().to_string());
                }
            }
            self.total = self.nodes.len() as i64;
            out.push(job_progress(0, self.total));
            self.initialized = true;
        }
        let mut by_node: BTreeMap<&str, Task> = BTreeMap::new();
        for t in tasks.iter().map(Task).filter(current) {
            if !self.nodes.iter().any(|n| n == t.node()) {
                continue;
            }
            let lower = by_node
                .get(t.node())
                .is_none_or(|e| state_rank(e.state()) > state_rank(t.state()));
            if lower {
                by_node.insert(t.node(), t);
            }
        }
        let mut complete = 0;
        for t in by_node.values() {
            if self.total <= MAX_PROGRESS_BARS as i64 {
                out.push(job_task_msg(t.node().to_string(), t));
            }
            if t.state() == "complete" {
                complete += 1;
            }
        }
        out.push(job_progress(complete, self.total));
        complete == self.total
    }
}

enum Updater {
    Replicated(Replicated),
    Global(Global),
    ReplicatedJob(ReplicatedJob),
    GlobalJob(GlobalJob),
}

impl Updater {
    fn for_service(svc: &Value) -> Result<Updater> {
        let mode = &svc["Spec"]["Mode"];
        if mode["Replicated"]["Replicas"].is_u64() {
            return Ok(Updater::Replicated(Replicated::default()));
        }
        if mode.get("Global").is_some_and(|g| !g.is_null()) {
            return Ok(Updater::Global(Global::default()));
        }
        if mode.get("ReplicatedJob").is_some_and(|g| !g.is_null()) {
            return Ok(Updater::ReplicatedJob(ReplicatedJob::new(svc)));
        }
        if mode.get("GlobalJob").is_some_and(|g| !g.is_null()) {
            return Ok(Updater::GlobalJob(GlobalJob::default()));
        }
        Err(status(1, "unrecognized service mode"))
    }

    fn update(
        &mut self,
        svc: &Value,
        tasks: &[Value],
        active: &[String],
        rollback: bool,
        out: &mut Vec<Msg>,
    ) -> Result<bool> {
        Ok(match self {
            Updater::Replicated(u) => u.update(svc, tasks, active, rollback, out)?,
            Updater::Global(u) => u.update(tasks, active, rollback, out),
            Updater::ReplicatedJob(u) => u.update(tasks, out),
            Updater::GlobalJob(u) => u.update(svc, tasks, active, out),
        })
    }
}

/// The nodes not down (`getActiveNodes`).
async fn active_nodes(ctx: &Ctx) -> Result<Vec<String>> {
    let nodes = get_json(ctx, "/nodes").await?;
    Ok(nodes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["Status"]["State"].as_str() != Some("down"))
        .filter_map(|n| n["ID"].as_str().map(String::from))
        .collect())
}

/// The query of a Go `filters.Args`: `{"key":{"value":true}}`, keys sorted.
pub fn filters_query(pairs: &[(&str, &str)]) -> String {
    let mut m: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    for (k, v) in pairs {
        m.entry(k).or_default().insert(v, true);
    }
    rawhttp::encode(&serde_json::to_string(&m).unwrap_or_default())
}

async fn up_to_date_tasks(ctx: &Ctx, service_id: &str) -> Result<Vec<Value>> {
    let q = filters_query(&[("service", service_id), ("_up-to-date", "true")]);
    let tasks = get_json(ctx, &format!("/tasks?filters={q}")).await?;
    Ok(tasks.as_array().cloned().unwrap_or_default())
}

/// What one look at the service decided.
enum Step {
    Continue,
    Done,
}

/// The state of one wait (`ServiceProgress`'s locals).
struct Watch {
    service: String,
    updater: Option<Updater>,
    converged: bool,
    converged_at: Option<Instant>,
    monitor: Duration,
    rollback: bool,
    message: Option<Msg>,
}

impl Watch {
    /// The update status: an end, a failure, or a rollback in progress.
    fn update_status(&mut self, svc: &Value, out: &mut Vec<Msg>) -> Result<Option<Step>> {
        let us = &svc["UpdateStatus"];
        let msg = us["Message"].as_str().unwrap_or_default();
        match us["State"].as_str().unwrap_or_default() {
            "updating" => self.rollback = false,
            "completed" if !self.converged => return Ok(Some(Step::Done)),
            "paused" => return Err(status(1, format!("service update paused: {msg}"))),
            "rollback_started" => {
                if !self.rollback && !msg.is_empty() {
                    out.push(update("rollback", msg));
                }
                self.rollback = true;
            }
            "rollback_paused" => {
                return Err(status(1, format!("service rollback paused: {msg}")));
            }
            "rollback_completed" => {
                if !self.converged {
                    self.message = Some(status_line("rollback", msg));
                }
                self.rollback = true;
            }
            _ => {}
        }
        Ok(None)
    }

    async fn step(&mut self, ctx: &Ctx, out: &mut Vec<Msg>) -> Result<Step> {
        let path = format!(
            "/services/{}?insertDefaults=false",
            rawhttp::encode(&self.service)
        );
        let svc = get_json(ctx, &path).await?;
        if let Some(m) = svc["Spec"]["UpdateConfig"]["Monitor"]
            .as_u64()
            .filter(|m| *m != 0)
        {
            self.monitor = Duration::from_nanos(m);
        }
        if self.updater.is_none() {
            self.updater = Some(Updater::for_service(&svc)?);
        }
        if let Some(step) = self.update_status(&svc, out)? {
            return Ok(step);
        }
        if self.converged
            && self
                .converged_at
                .is_some_and(|t| t.elapsed() >= self.monitor)
        {
            out.push(update(
                "verify",
                format!("Service {} converged", self.service),
            ));
            out.extend(self.message.take());
            return Ok(Step::Done);
        }
        let id = svc["ID"].as_str().unwrap_or_default();
        let tasks = up_to_date_tasks(ctx, id).await?;
        let active = active_nodes(ctx).await?;
        let Some(updater) = self.updater.as_mut() else {
            return Ok(Step::Continue);
        };
        self.converged = updater.update(&svc, &tasks, &active, self.rollback, out)?;
        if !self.converged {
            if self.converged_at.take().is_some() {
                out.push(update("verify", "Detected task failure"));
            }
            return Ok(Step::Continue);
        }
        if svc.get("JobStatus").is_some_and(|j| !j.is_null()) {
            out.push(status_line("", "job complete"));
            return Ok(Step::Done);
        }
        let since = *self.converged_at.get_or_insert_with(Instant::now);
        if let Some(wait) = self.monitor.checked_sub(since.elapsed()) {
            out.push(update(
                "verify",
                format!(
                    "Waiting {} seconds to verify that tasks are stable...",
                    wait.as_secs() + 1
                ),
            ));
        }
        Ok(Step::Continue)
    }
}

/// `WaitOnService`: shows the convergence of the service (by the name or
/// ID the user gave) until it is done, a failure, or ctrl-c.
pub async fn wait_on_service(ctx: &Ctx, service: &str, quiet: bool) -> Result<()> {
    let tty = crate::terminal::is_tty(1);
    let width = stdout_width().unwrap_or(200);
    let sink: Box<dyn Write> = if quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout())
    };
    let mut display = Display::new(tty, width, sink);
    let mut watch = Watch {
        service: service.to_string(),
        updater: None,
        converged: false,
        converged_at: None,
        monitor: Duration::from_secs(5),
        rollback: false,
        message: None,
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let mut out = Vec::new();
        let step = watch.step(ctx, &mut out).await;
        for m in &out {
            display.show(m);
        }
        if let Step::Done = step? {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut ctrl_c => {
                if !watch.converged {
                    display.show(&status_line("", "Operation continuing in background."));
                    display.show(&status_line("", format!("Use `docker service ps {service}` to check progress.")));
                }
                return Ok(());
            }
        }
    }
}

/// The width of the terminal on stdout, as jsonmessage reads it.
fn stdout_width() -> Option<u16> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize we own
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    ok.then_some(ws.ws_col)
}
