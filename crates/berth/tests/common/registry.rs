//! `berth registry serve` in a test daemon's namespaces, and raw uploads
//! for content berth itself would never push.

use std::process::{Child, Command, Stdio};

use super::{Daemon, berth_bin, eventually, sha256_digest};

/// A `berth registry serve` on 127.0.0.1:5000 of the daemon's network namespace.
pub struct Registry {
    pub child: Child,
}

impl Registry {
    pub fn start(d: &Daemon, extra: &[&str]) -> Registry {
        Registry::start_at(d, &d.dir.path().join("registry"), extra)
    }

    /// A registry over storage at `root`, which several may share.
    pub fn start_at(d: &Daemon, root: &std::path::Path, extra: &[&str]) -> Registry {
        let child = Command::new("nsenter")
            .args(["-t", &d.ns_pid.to_string(), "-n", "-m", "--", berth_bin()])
            .args(["registry", "serve", "--addr", "127.0.0.1:5000", "--root"])
            .arg(root)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the registry");
        assert!(
            eventually(10, || d
                .sh("curl -s -o /dev/null http://127.0.0.1:5000/v2/")
                .status
                .success()),
            "registry did not come up"
        );
        Registry { child }
    }

    /// Uploads a blob in one request; returns its digest.
    pub fn put_blob(d: &Daemon, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let file = d.dir.path().join("upload-blob");
        std::fs::write(&file, data).expect("writing the blob");
        let o = d.sh(&format!(
            "curl -sf -X POST --data-binary @{} -H 'Content-Type: application/octet-stream' \
             'http://127.0.0.1:5000/v2/{repo}/blobs/uploads/?digest={digest}'",
            file.display()
        ));
        assert!(o.status.success(), "uploading a blob: {o:?}");
        digest
    }

    /// Uploads an image of one uncompressed layer as `repo:tag`.
    pub fn put_image(d: &Daemon, repo: &str, tag: &str, layer: &[u8]) {
        let layer_digest = Registry::put_blob(d, repo, layer);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
        );
        let config_digest = Registry::put_blob(d, repo, config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        let file = d.dir.path().join("upload-manifest");
        std::fs::write(&file, manifest).expect("writing the manifest");
        let o = d.sh(&format!(
            "curl -sf -X PUT --data-binary @{} -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
             http://127.0.0.1:5000/v2/{repo}/manifests/{tag}",
            file.display()
        ));
        assert!(o.status.success(), "uploading a manifest: {o:?}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
