//! `berth service logs SERVICE|TASK`: the docker CLI 28's request (the
//! log details always asked for, to know each line's task) and its lines,
//! `web.1.abcdef123456@node1    | message`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::Result;
use serde_json::Value;

use super::swarm::{answer, get_json};
use super::tasks_table::Resolver;
use crate::{Ctx, goparse, rawhttp, status};

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Do not map IDs to Names in output
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not neatly format logs
    #[arg(long)]
    pub raw: bool,
    /// Do not include task IDs in output
    #[arg(long = "no-task-ids")]
    pub no_task_ids: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all", allow_hyphen_values = true)]
    pub tail: String,
    #[arg(value_name = "SERVICE|TASK")]
    pub target: Vec<String>,
}

/// The API's `GetTimestamp`: a duration ago in unix seconds, an RFC 3339
/// time as `seconds.nanoseconds`, or unix seconds as given.
pub fn since_value(value: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
    if value != "0"
        && let Ok(d) = goparse::parse_duration(value)
    {
        return Ok((now - chrono::Duration::nanoseconds(d))
            .timestamp()
            .to_string());
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        });
    if let Ok(t) = parsed {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    if value.contains('-') {
        return Err(format!(
            "parsing time {}: cannot parse",
            berth_units::go_quote(value)
        ));
    }
    let (secs, nanos) = value.split_once('.').unwrap_or((value, "0"));
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !numeric(secs) || !numeric(nanos) {
        return Err(format!(
            "failed to parse value as time or duration: {}",
            berth_units::go_quote(value)
        ));
    }
    Ok(value.to_string())
}

/// The query of `ServiceLogs`, keys sorted as Go's url.Values writes
/// them.
fn logs_query(a: &LogsArgs, since: Option<String>) -> String {
    let mut q: BTreeMap<&str, String> = BTreeMap::new();
    q.insert("stdout", "1".into());
    q.insert("stderr", "1".into());
    if let Some(s) = since {
        q.insert("since", s);
    }
    if a.timestamps {
        q.insert("timestamps", "1".into());
    }
    if a.details || !a.raw {
        q.insert("details", "1".into());
    }
    if a.follow {
        q.insert("follow", "1".into());
    }
    q.insert("tail", a.tail.clone());
    q.iter()
        .map(|(k, v)| format!("{k}={}", rawhttp::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `url.QueryUnescape`.
fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or_else(|| {
                    format!("invalid URL escape {}", berth_units::go_quote(&s[i..]))
                })?;
                let v = u8::from_str_radix(hex, 16).map_err(|_| {
                    format!(
                        "invalid URL escape {}",
                        berth_units::go_quote(&format!("%{hex}"))
                    )
                })?;
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `logdetails.Parse`: `k=v,k=v`, each part URL-unescaped.
pub fn parse_details(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for pair in s.split(',') {
        match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                m.insert(unescape(k)?, unescape(v)?);
            }
            _ => return Err("invalid details format".into()),
        }
    }
    Ok(m)
}

/// The task of a log line, from its details.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LogContext {
    pub node: String,
    pub service: String,
    pub task: String,
}

fn take(m: &mut BTreeMap<String, String>, key: &str, what: &str) -> Result<String, String> {
    m.remove(key).ok_or_else(|| {
        let shown: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("missing {what} in details: map[{}]", shown.join(" "))
    })
}

pub fn log_context(m: &mut BTreeMap<String, String>) -> Result<LogContext, String> {
    Ok(LogContext {
        node: take(m, "com.docker.swarm.node.id", "node id")?,
        service: take(m, "com.docker.swarm.service.id", "service id")?,
        task: take(m, "com.docker.swarm.task.id", "task id")?,
    })
}

/// What one line needs besides its text: the task's prefix.
pub struct Prefixer<'a> {
    ctx: &'a Ctx,
    pub no_trunc: bool,
    pub no_task_ids: bool,
    pub padding: usize,
    resolver: Resolver,
    cache: HashMap<LogContext, String>,
}

/// The name of a task and where it runs, padded to the widest slot.
pub fn task_prefix(
    service: &str,
    slot: i64,
    task_id: &str,
    node: &str,
    no_trunc: bool,
    no_task_ids: bool,
    padding: usize,
) -> String {
    let mut name = format!("{service}.{slot}");
    if !no_task_ids {
        name.push('.');
        if no_trunc {
            name.push_str(task_id);
        } else {
            name.extend(task_id.chars().take(12));
        }
    }
    let pad = padding.saturating_sub(slot.to_string().len());
    format!("{name}@{node}{}", " ".repeat(pad))
}

impl Prefixer<'_> {
    async fn prefix(&mut self, c: &LogContext) -> Result<String> {
        if let Some(p) = self.cache.get(c) {
            return Ok(p.clone());
        }
        let node = self.resolver.node(self.ctx, &c.node).await;
        let service = self.resolver.service(self.ctx, &c.service).await;
        let task = get_json(self.ctx, &format!("/tasks/{}", rawhttp::encode(&c.task))).await?;
        let p = task_prefix(
            &service,
            task["Slot"].as_i64().unwrap_or(0),
            task["ID"].as_str().unwrap_or_default(),
            &node,
            self.no_trunc,
            self.no_task_ids,
            self.padding,
        );
        self.cache.insert(c.clone(), p.clone());
        Ok(p)
    }

    /// docker's `logWriter.Write`: the line's details become its prefix.
    async fn line(&mut self, buf: &[u8], timestamps: bool, details: bool) -> Result<Vec<u8>> {
        let parts_wanted = if timestamps { 3 } else { 2 };
        let parts: Vec<&[u8]> = buf.splitn(parts_wanted, |b| *b == b' ').collect();
        if parts.len() != parts_wanted {
            return Err(status(
                1,
                format!(
                    "invalid context in log message: {}",
                    String::from_utf8_lossy(buf)
                ),
            ));
        }
        let at = parts_wanted - 2;
        let mut map =
            parse_details(&String::from_utf8_lossy(parts[at])).map_err(|e| status(1, e))?;
        let c = log_context(&mut map).map_err(|e| status(1, e))?;
        let mut out = Vec::new();
        if timestamps {
            out.extend_from_slice(parts[0]);
            out.push(b' ');
        }
        out.extend_from_slice(self.prefix(&c).await?.as_bytes());
        out.extend_from_slice(b"    | ");
        if details {
            let d: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.extend_from_slice(d.join(",").as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(parts[at + 1]);
        Ok(out)
    }
}

/// The service or the task named, its terminal setting and the digits
/// of its widest slot.
async fn target(ctx: &Ctx, name: &str) -> Result<(String, bool, usize)> {
    let path = format!("/services/{}?insertDefaults=false", rawhttp::encode(name));
    let (code, body) = rawhttp::get(&ctx.socket, &path).await?;
    if code != 404 {
        let s: Value = serde_json::from_slice(&answer(code, body).await?)?;
        let tty = s["Spec"]["TaskTemplate"]["ContainerSpec"]["TTY"]
            .as_bool()
            .unwrap_or(false);
        let width = s["Spec"]["Mode"]["Replicated"]["Replicas"]
            .as_u64()
            .map_or(1, |r| r.to_string().len());
        return Ok((
            format!("/services/{}/logs", rawhttp::encode(name)),
            tty,
            width,
        ));
    }
    let (code, body) =
        rawhttp::get(&ctx.socket, &format!("/tasks/{}", rawhttp::encode(name))).await?;
    if code == 404 {
        return Err(status(1, format!("no such task or service: {name}")));
    }
    let t: Value = serde_json::from_slice(&answer(code, body).await?)?;
    let tty = t["Spec"]["ContainerSpec"]["TTY"].as_bool().unwrap_or(false);
    let width = t["Slot"].as_i64().unwrap_or(0).to_string().len();
    Ok((format!("/tasks/{}/logs", rawhttp::encode(name)), tty, width))
}

fn write_to(stream: u8, bytes: &[u8]) -> Result<()> {
    if stream == 2 {
        let mut e = std::io::stderr().lock();
        e.write_all(bytes)?;
        e.flush()?;
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(bytes)?;
        o.flush()?;
    }
    Ok(())
}

pub async fn logs(ctx: &Ctx, a: LogsArgs) -> Result<i32> {
    let [name] = a.target.as_slice() else {
        return Err(super::services::args_error(
            "1 argument",
            "service logs",
            "[OPTIONS] SERVICE|TASK",
        ));
    };
    let (path, tty, padding) = target(ctx, name).await?;
    if tty && !a.raw {
        return Err(status(1, "tty service logs only supported with --raw"));
    }
    let since = match &a.since {
        Some(s) => Some(
            since_value(s, chrono::Utc::now())
                .map_err(|e| status(1, format!("invalid value for \"since\": {e}")))?,
        ),
        None => None,
    };
    let (code, mut body) =
        rawhttp::get(&ctx.socket, &format!("{path}?{}", logs_query(&a, since))).await?;
    if !(200..300).contains(&code) {
        answer(code, body).await?;
        return Ok(1);
    }
    let mut prefixer = Prefixer {
        ctx,
        no_trunc: a.no_trunc,
        no_task_ids: a.no_task_ids,
        padding,
        resolver: Resolver::new(a.no_resolve),
        cache: HashMap::new(),
    };
    let mut frames: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next_chunk().await? {
        if tty {
            write_to(1, &chunk)?;
            continue;
        }
        frames.extend_from_slice(&chunk);
        while frames.len() >= 8 {
            let len = u32::from_be_bytes([frames[4], frames[5], frames[6], frames[7]]) as usize;
            if frames.len() < 8 + len {
                break;
            }
            let stream = frames[0];
            let payload: Vec<u8> = frames[8..8 + len].to_vec();
            frames.drain(..8 + len);
            if stream == 3 {
                // stdcopy's words for the daemon's own error frame
                let said = String::from_utf8_lossy(&payload);
                return Err(status(1, format!("error from daemon in stream: {said}")));
            }
            let out = if a.raw {
                payload
            } else {
                prefixer.line(&payload, a.timestamps, a.details).await?
            };
            write_to(stream, &out)?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_give_the_task_and_the_rest() {
        let mut m = parse_details(
            "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1,a%20b=c",
        )
        .unwrap();
        let c = log_context(&mut m).unwrap();
        assert_eq!(
            (c.node.as_str(), c.service.as_str(), c.task.as_str()),
            ("n1", "s1", "t1")
        );
        assert_eq!(m.get("a b").map(String::as_str), Some("c"));
        assert_eq!(parse_details("x").unwrap_err(), "invalid details format");
    }

    #[test]
    fn prefixes_read_as_dockers() {
        let id = "abcdefghijklmnopqrstuvwxy";
        assert_eq!(
            task_prefix("web", 1, id, "node1", false, false, 2),
            "web.1.abcdefghijkl@node1 "
        );
        assert_eq!(
            task_prefix("web", 10, id, "node1", true, false, 2),
            format!("web.10.{id}@node1")
        );
        assert_eq!(task_prefix("web", 3, id, "n", false, true, 1), "web.3@n");
    }

    #[test]
    fn since_takes_dockers_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(since_value("10m", now).unwrap(), "1735689600");
        assert_eq!(
            since_value("2025-01-01T00:00:00.5Z", now).unwrap(),
            "1735689600.500000000"
        );
        assert_eq!(since_value("1735689600", now).unwrap(), "1735689600");
        assert_eq!(
            since_value("x", now).unwrap_err(),
            r#"failed to parse value as time or duration: "x""#
        );
    }
}
