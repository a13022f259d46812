//! What this machine's kernel can do for swarm networks, probed once.

use std::sync::OnceLock;

/// Whether the kernel can install IPsec ESP states, as encrypted overlays
/// need. The probe adds one transport-mode SA (Docker's AEAD,
/// rfc4106(gcm(aes))) in a scratch network namespace, so nothing of the
/// host's changes. Opening a NETLINK_XFRM socket is not enough: it opens
/// on kernels without esp4, where adding a state then fails.
pub fn esp_supported() -> bool {
    static ESP: OnceLock<bool> = OnceLock::new();
    *ESP.get_or_init(|| {
        std::thread::spawn(|| {
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                return false;
            }
            std::process::Command::new("ip")
                .args([
                    "xfrm",
                    "state",
                    "add",
                    "src",
                    "192.0.2.1",
                    "dst",
                    "192.0.2.2",
                    "proto",
                    "esp",
                    "spi",
                    "0x100",
                    "mode",
                    "transport",
                    "aead",
                    "rfc4106(gcm(aes))",
                    "0x0102030405060708090a0b0c0d0e0f1011121314",
                    "128",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .join()
        .unwrap_or(false)
    })
}
