//! Renders the JSON progress messages of pull and push the way the docker
//! CLI's jsonmessage does: on a terminal, one line per layer rewritten in
//! place; elsewhere, only the status changes, one per line.

use std::io::Write;

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
