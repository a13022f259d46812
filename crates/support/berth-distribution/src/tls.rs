//! TLS for registries, as Docker sets it up: the system's roots plus the
//! per-registry files of `<certs.d>/<host[:port]>/` — `*.crt` are CA
//! certificates, a `*.cert` with the `*.key` of the same name is the client
//! certificate. Registries listed as insecure are tried with TLS first,
//! without verification, before plain HTTP (Docker's fallback).

use std::path::Path;

use rustls::ClientConfig;

use crate::{DistError, Result};

/// The client configuration for `host`.
pub fn client_config(host: &str, certs_dir: &Path, verify: bool) -> Result<ClientConfig> {
    let opts = berth_tls::Options {
        skip_verify: !verify,
        system_roots: true,
        cas: files_with(certs_dir, host, "crt"),
        client: files_with(certs_dir, host, "cert")
            .into_iter()
            .next()
            .map(|cert| (cert.clone(), cert.with_extension("key"))),
    };
    berth_tls::client_config(&opts).map_err(|e| DistError::Other(format!("tls: {e:#}")))
}

fn files_with(certs_dir: &Path, host: &str, ext: &str) -> Vec<std::path::PathBuf> {
    let dir = certs_dir.join(host);
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
