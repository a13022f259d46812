//! The Dockerfile instructions `docker import --change` and `commit --change`
//! accept, applied to an image config.

use anyhow::{Result, bail};
use oci_spec::image::Config;
use std::collections::HashMap;

/// Applies one `--change` line such as `CMD ["sh"]` or `ENV A=1 B=2`.
pub fn apply(config: &mut Config, line: &str) -> Result<()> {
    let line = line.trim();
    let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.set_cmd(Some(command(rest)?));
        }
        "ENTRYPOINT" => {
            config.set_entrypoint(Some(command(rest)?));
        }
        "WORKDIR" => {
            config.set_working_dir(Some(rest.to_string()));
        }
        "USER" => {
            config.set_user(Some(rest.to_string()));
        }
        "STOPSIGNAL" => {
            config.set_stop_signal(Some(rest.to_string()));
        }
        "ENV" => {
            let mut env = config.env().clone().unwrap_or_default();
            for (k, v) in key_values(rest)? {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            config.set_env(Some(env));
        }
        "LABEL" => {
            let mut labels = config.labels().clone().unwrap_or_default();
            for (k, v) in key_values(rest)? {
                labels.insert(k, v);
            }
            config.set_labels(Some(labels));
        }
        "EXPOSE" => {
            let mut ports = config.exposed_ports().clone().unwrap_or_default();
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            config.set_exposed_ports(Some(ports));
        }
        "VOLUME" => {
            let mut vols = config.volumes().clone().unwrap_or_default();
            let list = if rest.starts_with('[') {
                json_list(rest)?
            } else {
                rest.split_whitespace().map(String::from).collect()
            };
            for v in list {
                if !vols.contains(&v) {
                    vols.push(v);
                }
            }
            config.set_volumes(Some(vols));
        }
        "" => bail!("empty change"),
        other => bail!("{other} is not a valid change command"),
    }
    Ok(())
}

fn command(rest: &str) -> Result<Vec<String>> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return Ok(v);
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn json_list(rest: &str) -> Result<Vec<String>> {
    serde_json::from_str(rest).map_err(|e| anyhow::anyhow!("invalid JSON list {rest:?}: {e}"))
}

/// `K=V K2="v 2"` or the legacy `K V` form.
fn key_values(rest: &str) -> Result<Vec<(String, String)>> {
    if !rest.contains('=') {
        let Some((k, v)) = rest.split_once(char::is_whitespace) else {
            bail!("{rest:?} needs a value");
        };
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut map_seen: HashMap<String, usize> = HashMap::new();
    for word in shell_words(rest)? {
        let Some((k, v)) = word.split_once('=') else {
            bail!("{word:?} is not of the form key=value");
        };
        if k.is_empty() {
            bail!("empty key in {word:?}");
        }
        if let Some(&i) = map_seen.get(k) {
            out[i] = (k.to_string(), v.to_string());
        } else {
            map_seen.insert(k.to_string(), out.len());
            out.push((k.to_string(), v.to_string()));
        }
    }
    Ok(out)
}

fn shell_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("unterminated quote in {s:?}");
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = Config::default();
        apply(&mut c, r#"CMD ["sh"]"#).unwrap();
        assert_eq!(c.cmd().clone().unwrap(), vec!["sh"]);
        apply(&mut c, "ENTRYPOINT echo hi").unwrap();
        assert_eq!(
            c.entrypoint().clone().unwrap(),
            vec!["/bin/sh", "-c", "echo hi"]
        );
        apply(&mut c, r#"ENV A=1 B="two words""#).unwrap();
        apply(&mut c, "ENV A 3").unwrap();
        assert_eq!(c.env().clone().unwrap(), vec!["B=two words", "A=3"]);
        apply(&mut c, "EXPOSE 80 53/udp").unwrap();
        assert_eq!(c.exposed_ports().clone().unwrap(), vec!["80/tcp", "53/udp"]);
        assert!(apply(&mut c, "FROB x").is_err());
        assert!(apply(&mut c, r#"ENV A="x"#).is_err());
    }
}
