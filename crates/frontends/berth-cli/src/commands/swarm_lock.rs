//! `berth swarm unlock` and `berth swarm unlock-key`: the docker CLI 28's
//! requests and texts for a swarm under autolock.

use std::io::{BufRead, Write};

use anyhow::Result;
use serde_json::{Value, json};

use super::swarm::{get_json, post, unlock_text};
use crate::{Ctx, status};

#[derive(clap::Args, Debug)]
pub struct UnlockArgs {}

/// `runUnlock`: the key is asked for only when `/info` says locked.
pub async fn unlock(ctx: &Ctx, _a: UnlockArgs) -> Result<i32> {
    let info = get_json(ctx, "/info").await?;
    match info["Swarm"]["LocalNodeState"].as_str().unwrap_or_default() {
        "inactive" => return Err(status(1, "Error: This node is not part of a swarm")),
        "locked" => {}
        "pending" | "active" | "error" => return Err(status(1, "Error: swarm is not locked")),
        _ => {}
    }
    let key = read_key("Enter unlock key: ")?;
    post(ctx, "/swarm/unlock", Some(&json!({ "UnlockKey": key }))).await?;
    Ok(0)
}

/// `readKey`: without echo on a terminal, else one line of stdin.
fn read_key(prompt: &str) -> Result<String> {
    if crate::terminal::is_tty(0) {
        print!("{prompt}");
        std::io::stdout().flush()?;
        let key = crate::terminal::read_password()?;
        println!();
        return Ok(key);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

#[derive(clap::Args, Debug)]
pub struct UnlockKeyArgs {
    /// Rotate unlock key
    #[arg(long)]
    rotate: bool,
    /// Only display token
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// `runUnlockKey`.
pub async fn unlock_key(ctx: &Ctx, a: UnlockKeyArgs) -> Result<i32> {
    if a.rotate {
        let sw = get_json(ctx, "/swarm").await?;
        if sw["Spec"]["EncryptionConfig"]["AutoLockManagers"].as_bool() != Some(true) {
            return Err(status(1, "cannot rotate because autolock is not turned on"));
        }
        let version = sw["Version"]["Index"].as_u64().unwrap_or(0);
        let path = format!(
            "/swarm/update?rotateManagerToken=false&rotateManagerUnlockKey=true&rotateWorkerToken=false&version={version}"
        );
        post(ctx, &path, Some(&sw["Spec"])).await?;
        if !a.quiet {
            println!("Successfully rotated manager unlock key.");
        }
    }
    let resp: Value = get_json(ctx, "/swarm/unlockkey")
        .await
        .map_err(|e| status(1, format!("could not fetch unlock key: {e}")))?;
    let key = resp["UnlockKey"].as_str().unwrap_or_default();
    if key.is_empty() {
        return Err(status(1, "no unlock key is set"));
    }
    if a.quiet {
        println!("{key}");
    } else {
        print!("{}", unlock_text(key));
    }
    Ok(0)
}
