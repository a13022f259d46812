//! system: Docker's wire types to and from berth's.

use berth_engine::DiskUsage;

/// GET /system/df (API ≤ 1.51 form).
pub fn disk_usage_answer(u: DiskUsage) -> serde_json::Value {
    let mut out = u.other;
    if let Some(containers) = &u.containers {
        let list: Vec<_> = containers
            .iter()
            .map(super::containers::summary_answer)
            .collect();
        out.insert(
            "Containers".into(),
            serde_json::to_value(list).unwrap_or_default(),
        );
    }
    serde_json::Value::Object(out)
}
