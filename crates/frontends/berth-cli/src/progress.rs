//! Renders the JSON progress messages of pull and push the way the docker
//! CLI's jsonmessage does: on a terminal, one line per layer rewritten in
//! place; elsewhere, only the status changes, one per line.

use std::io::Write;

/// Reads a JSON-lines answer (pull, push, build) and calls `f` with each
/// message until the end or the first message with an `error`, which is
/// returned.
pub async fn for_each_message(
    body: &mut crate::rawhttp::PendingBody,
    mut f: impl FnMut(&serde_json::Value) -> anyhow::Result<()>,
) -> anyhow::Result<Option<serde_json::Value>> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next_chunk().await? {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            if v.get("error").is_some_and(|e| e.is_string()) {
                return Ok(Some(v));
            }
            f(&v)?;
        }
    }
    Ok(None)
}

pub struct Message {
    pub id: Option<String>,
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

pub struct ProgressDisplay {
    tty: bool,
    /// ids in the order their lines were printed
    ids: Vec<String>,
}

impl ProgressDisplay {
    pub fn new(tty: bool) -> Self {
        ProgressDisplay {
            tty,
            ids: Vec::new(),
        }
    }

    /// Shows a `status` message of a JSON stream; other messages are
    /// ignored.
    pub fn show_json(&mut self, v: &serde_json::Value) {
        let Some(status) = v.get("status").and_then(|s| s.as_str()) else {
            return;
        };
        let detail = v.get("progressDetail");
        self.show(&Message {
            id: v.get("id").and_then(|i| i.as_str()).map(String::from),
            status: status.to_string(),
            current: detail
                .and_then(|d| d.get("current"))
                .and_then(|c| c.as_u64()),
            total: detail.and_then(|d| d.get("total")).and_then(|c| c.as_u64()),
        });
    }

    pub fn show(&mut self, m: &Message) {
        let mut out = std::io::stdout().lock();
        let has_progress = m.current.is_some();
        let text = match (&m.id, has_progress) {
            (Some(id), true) => format!(
                "{id}: {} {}",
                m.status,
                berth_units::progress_bar(m.current.unwrap_or(0), m.total.unwrap_or(0))
            ),
            (Some(id), false) => format!("{id}: {}", m.status),
            (None, _) => m.status.clone(),
        };
        if !self.tty {
            if !has_progress {
                let _ = writeln!(out, "{text}");
            }
            return;
        }
        match &m.id {
            Some(id) => match self.ids.iter().position(|i| i == id) {
                Some(pos) => {
                    let up = self.ids.len() - pos;
                    // up to the layer's line, rewrite it, back down
                    let _ = write!(out, "\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B");
                }
                None => {
                    self.ids.push(id.clone());
                    let _ = writeln!(out, "{text}");
                }
            },
            None => {
                // a line without an id ends the table of layers
                self.ids.clear();
                let _ = writeln!(out, "{text}");
            }
        }
        let _ = out.flush();
    }
}
