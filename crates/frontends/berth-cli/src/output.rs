//! Docker's output conventions: tab-aligned tables, truncated ids, relative
//! times, and a small subset of Go templates for `--format`.

use std::io::Write;

use tabwriter::TabWriter;

/// A table writer that aligns like the docker CLI's
/// `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`: Go counts the padding
/// inside the minimum width, this crate outside it.
pub fn table() -> TabWriter<Vec<u8>> {
    TabWriter::new(Vec::new()).minwidth(7).padding(3)
}

pub fn flush_table(tw: TabWriter<Vec<u8>>) -> anyhow::Result<()> {
    let out = tw
        .into_inner()
        .map_err(|e| anyhow::anyhow!("formatting table: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

pub fn short_id(id: &str) -> String {
    let h = id.trim_start_matches("sha256:");
    h.chars().take(12).collect()
}

/// Docker's Ellipsis: cut to `max` characters, the last one "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `.CreatedAt` of list rows: Go's time printed in UTC,
/// "2026-11-22 22:34:20 +0000 UTC".
pub fn created_at(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

/// "3 seconds ago" from a unix timestamp.
pub fn ago(unix: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let d = std::time::Duration::from_secs((now - unix).max(0) as u64);
    format!("{} ago", berth_units::human_duration(d))
}

/// Go's strconv.Quote for the strings `ps` shows.
pub use berth_gotmpl::go_quote;

/// Renders a Go template (`--format`, `inspect -f`); see the berth-gotmpl crate.
/// `--format json` is `{{json .}}`, as in the docker CLI.
pub fn render_template(tpl: &str, v: &serde_json::Value) -> anyhow::Result<String> {
    berth_gotmpl::render(if tpl == "json" { "{{json .}}" } else { tpl }, v)
}

/// `--format`: prints the rows through the template and answers true, or
/// answers false when the default table is wanted (no format, "table").
pub fn print_format(
    format: Option<&str>,
    rows: &[serde_json::Value],
    headers: &[(&str, &str)],
) -> anyhow::Result<bool> {
    let Some(fmt) = format.filter(|f| !f.is_empty() && *f != "table") else {
        return Ok(false);
    };
    let out = format_rows(fmt, rows, headers).map_err(|e| crate::status(1, e.to_string()))?;
    print!("{out}");
    Ok(true)
}

/// Prints the rows through `--format`, or through `default` (a `table`
/// template) when none (or plain "table") is given.
pub fn print_format_or(
    format: Option<&str>,
    default: &str,
    rows: &[serde_json::Value],
    headers: &[(&str, &str)],
) -> anyhow::Result<()> {
    let format = format.filter(|f| !f.is_empty() && *f != "table");
    print_format(Some(format.unwrap_or(default)), rows, headers)?;
    Ok(())
}

/// Renders rows through a `--format` template as the docker CLI does: `\t`
/// and `\n` written literally become tabs and newlines, and a `table`
/// template gets a header row (each field's column title) and aligned
/// columns. `headers` maps field names to titles; other fields get their
/// name in capitals.
pub fn format_rows(
    format: &str,
    rows: &[serde_json::Value],
    headers: &[(&str, &str)],
) -> anyhow::Result<String> {
    // `--format json`: each row as one JSON object, keys sorted as Go
    // marshals the docker CLI's rows
    let format = if format == "json" {
        "{{json .}}"
    } else {
        format
    };
    let sorted: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| match r {
            serde_json::Value::Object(m) => {
                let mut kv: Vec<(&String, &serde_json::Value)> = m.iter().collect();
                kv.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            }
            other => other.clone(),
        })
        .collect();
    let rows = &sorted[..];
    let (is_table, tpl) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let tpl = tpl
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let mut out: Vec<String> = Vec::with_capacity(rows.len() + 1);
    if is_table {
        let mut titles = serde_json::Map::new();
        if let Some(first) = rows.first().and_then(|r| r.as_object()) {
            for k in first.keys() {
                titles.insert(k.clone(), k.to_uppercase().into());
            }
        }
        for (k, title) in headers {
            titles.insert(k.to_string(), (*title).into());
        }
        out.push(render_template(&tpl, &serde_json::Value::Object(titles))?);
    }
    for r in rows {
        out.push(render_template(&tpl, r)?);
    }
    if !is_table {
        return Ok(out.iter().map(|l| format!("{l}\n")).collect());
    }
    let mut tw = table();
    for line in out {
        writeln!(tw, "{line}")?;
    }
    let bytes = tw
        .into_inner()
        .map_err(|e| anyhow::anyhow!("formatting table: {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The PORTS column as the docker CLI writes it: consecutive ports merged
/// into ranges ("80-81/tcp"), mappings as "0.0.0.0:8080->80/tcp".
pub fn displayable_ports(ports: &[bollard::models::PortSummary]) -> String {
    let mut ports = ports.to_vec();
    let typ = |p: &bollard::models::PortSummary| p.typ.map(|t| t.to_string()).unwrap_or_default();
    ports.sort_by(|a, b| {
        (a.private_port, a.ip.clone(), a.public_port, typ(a)).cmp(&(
            b.private_port,
            b.ip.clone(),
            b.public_port,
            typ(b),
        ))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    let form = |key: &str, first: u16, last: u16| {
        let (ip, t) = match key.rsplit_once('/') {
            Some((ip, t)) => (ip, t),
            None => ("", key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            g = format!("{ip}:{g}->{g}");
        }
        format!("{g}/{t}")
    };
    for p in &ports {
        let current = p.private_port;
        let mut key = typ(p);
        if let Some(ip) = p.ip.as_deref().filter(|i| !i.is_empty()) {
            let public = p.public_port.unwrap_or(0);
            if public != current {
                let host = if ip.contains(':') {
                    format!("[{ip}]:{public}")
                } else {
                    format!("{ip}:{public}")
                };
                mappings.push(format!("{host}->{current}/{}", typ(p)));
                continue;
            }
            key = format!("{ip}/{key}");
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, current, current)),
            Some(g) if current == g.2.wrapping_add(1) => g.2 = current,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = current;
                g.2 = current;
            }
        }
    }
    for g in &groups {
        result.push(form(&g.0, g.1, g.2));
    }
    result.extend(mappings);
    result.join(", ")
}

/// How Go's text/template prints a value.
/// Pretty JSON with 4-space indentation, as `docker inspect` prints it.
pub fn json_indent(v: &serde_json::Value) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser)?;
    Ok(String::from_utf8(buf)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsis_like_docker() {
        assert_eq!(ellipsis("echo hello", 20), "echo hello");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
    }

    #[test]
    fn templates() {
        let v = serde_json::json!({"State": {"ExitCode": 3, "Status": "exited"}, "Name": "/web", "Args": ["a", "b"]});
        assert_eq!(render_template("{{.State.ExitCode}}", &v).unwrap(), "3");
        assert_eq!(
            render_template("{{ .Name }} is {{.State.Status}}", &v).unwrap(),
            "/web is exited"
        );
        assert_eq!(
            render_template("{{json .Args}}", &v).unwrap(),
            "[\"a\",\"b\"]"
        );
        assert_eq!(render_template("{{.Args}}", &v).unwrap(), "[a b]");
        assert!(render_template("{{.Nope.X}}", &v).is_err());
        assert!(render_template("{{.Name", &v).is_err());
    }

    #[test]
    fn table_matches_go_tabwriter() {
        let mut tw = table();
        writeln!(tw, "CONTAINER ID\tIMAGE\tNAMES").unwrap();
        writeln!(tw, "abc\tbusybox\tweb").unwrap();
        let s = String::from_utf8(tw.into_inner().unwrap()).unwrap();
        assert_eq!(
            s,
            "CONTAINER ID   IMAGE     NAMES\nabc            busybox   web\n"
        );
    }
}
