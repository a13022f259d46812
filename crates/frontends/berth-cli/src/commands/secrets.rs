//! `berth secret create` (the docker CLI 28's cli/command/secret, with
//! its flags, request and words) and berth's own `secret rotate`; ls,
//! inspect and rm are shared with configs in [`super::secrets_common`].

use std::io::Read;

use anyhow::Result;
use base64::Engine as _;
use serde_json::{Value, json};

use super::secrets_common::{SECRET, checked_labels, create_body, read_data, send_create};
use super::services::{args_error, body_of};
use super::services_flags::{Usage, opt_bool};
use super::services_progress::wait_on_service;
use super::swarm::{answer, get_json};
use crate::{Ctx, rawhttp, status};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Secret labels
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Secret driver
    #[arg(short = 'd', long)]
    pub driver: Option<String>,
    /// Template driver
    #[arg(long = "template-driver")]
    pub template_driver: Option<String>,
    /// SECRET [file|-]
    #[arg(value_name = "SECRET")]
    pub args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    /// Exit immediately instead of waiting for the services to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<String>,
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// SECRET [file|-]
    #[arg(value_name = "SECRET")]
    pub args: Vec<String>,
}

/// The name and the file of `SECRET [file|-]`, or cobra's range error.
fn name_and_file<'a>(args: &'a [String], usage: &Usage) -> Result<(&'a str, &'a str)> {
    match args {
        [name] => Ok((name, "")),
        [name, file] => Ok((name, file)),
        _ => Err(args_error(
            "at least 1 and at most 2 arguments",
            usage.path,
            usage.line,
        )),
    }
}

/// The SecretSpec `secret create` sends, or the client's refusal.
pub fn create_request(a: &CreateArgs, stdin: &mut dyn Read) -> Result<Value> {
    let labels = checked_labels(&SECRET, &a.labels)?;
    let (name, file) = name_and_file(&a.args, &SECRET.create)?;
    let driver = a.driver.as_deref().filter(|d| !d.is_empty());
    let data = match driver {
        Some(_) if !file.is_empty() => {
            return Err(status(
                1,
                "When using secret driver secret data must be empty",
            ));
        }
        Some(_) => Vec::new(),
        None => read_data(&SECRET, file, stdin).map_err(|e| status(1, e))?,
    };
    Ok(create_body(
        name,
        &labels,
        &data,
        driver,
        a.template_driver.as_deref(),
    ))
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    let body = create_request(&a, &mut std::io::stdin().lock())?;
    send_create(ctx, &SECRET, &body).await
}

const ROTATE_USAGE: Usage = Usage {
    path: "secret rotate",
    line: "[OPTIONS] SECRET [file|-]",
};

/// The request of a rotation of the secret `current` (as inspected):
/// its path, with the version read, and its body.
pub fn rotate_request(current: &Value, data: &[u8]) -> (String, Vec<u8>) {
    let id = current["ID"].as_str().unwrap_or_default();
    let version = current["Version"]["Index"].as_u64().unwrap_or(0);
    let path = format!("/secrets/{}/rotate?version={version}", rawhttp::encode(id));
    let data = base64::engine::general_purpose::STANDARD.encode(data);
    (path, body_of(&json!({ "Data": data })))
}

/// What a rotation prints: the secret's ID, then each service rolled
/// (the words of `stack deploy`).
pub fn rotate_lines(reply: &Value) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut lines = vec![text(&reply["ID"])];
    for s in reply["Services"].as_array().into_iter().flatten() {
        lines.push(format!(
            "Updating service {} (id: {})",
            text(&s["Name"]),
            text(&s["ID"])
        ));
    }
    lines
}

/// `berth secret rotate` (berth's own): new data for the secret, and a
/// rolling update of every service that uses it, in one request.
pub async fn rotate(ctx: &Ctx, a: RotateArgs) -> Result<i32> {
    let detach = opt_bool("detach", &a.detach)
        .map_err(|e| e.with_usage(&ROTATE_USAGE))?
        .unwrap_or(false);
    let (name, file) = name_and_file(&a.args, &ROTATE_USAGE)?;
    let data = read_data(&SECRET, file, &mut std::io::stdin().lock()).map_err(|e| status(1, e))?;
    let current = get_json(ctx, &format!("/secrets/{}", rawhttp::encode(name))).await?;
    let (path, body) = rotate_request(&current, &data);
    let (code, reply) = rawhttp::post_json(&ctx.socket, &path, &body).await?;
    let reply: Value = serde_json::from_slice(&answer(code, reply).await?).unwrap_or_default();
    for line in rotate_lines(&reply) {
        println!("{line}");
    }
    if detach {
        return Ok(0);
    }
    for s in reply["Services"].as_array().into_iter().flatten() {
        wait_on_service(ctx, s["ID"].as_str().unwrap_or_default(), a.quiet).await?;
    }
    Ok(0)
}
