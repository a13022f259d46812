//! images: Docker's wire types to and from berth's.

use berth_engine::{ImageDeleteItem, ImageDetails, ImageHistoryView, ImageSummaryView};

use crate::server::ApiVersion;
use bollard_stubs::models::{
    ImageConfig, ImageDeleteResponseItem, ImageHistoryResponseItem, ImageInspect,
    ImageInspectMetadata, ImageInspectRootFs, ImageSummary,
};

/// One image of GET /images/json.
pub fn image_summary_answer(view: &ImageSummaryView) -> ImageSummary {
    let img = &view.record;
    ImageSummary {
        id: img.id.clone(),
        parent_id: img.parent.clone(),
        repo_tags: view.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        created: view.created,
        size: img.size as i64,
        shared_size: -1,
        labels: view.labels.clone(),
        containers: view.containers,
        ..Default::default()
    }
}

/// One line of GET /images/{name}/history.
pub fn image_history_answer(view: &ImageHistoryView) -> ImageHistoryResponseItem {
    ImageHistoryResponseItem {
        // the layers below the image have no image of their own
        id: view.id.clone().unwrap_or_else(|| "<missing>".into()),
        created: view.created,
        created_by: view.created_by.clone(),
        tags: view.tags.clone(),
        size: view.size,
        comment: view.comment.clone(),
    }
}

/// GET /images/{name}/json, with the fields dockerd still sends to older
/// clients: docker-compose v1 reads `ContainerConfig` whenever it
/// recreates a container.
pub fn image_inspect_answer(view: &ImageDetails, version: ApiVersion) -> serde_json::Value {
    let mut answer = serde_json::to_value(image_inspect(view)).unwrap_or_default();
    let Some(obj) = answer.as_object_mut() else {
        return answer;
    };
    obj.insert("Parent".into(), view.record.parent.clone().into());
    obj.insert("DockerVersion".into(), view.docker_version.clone().into());
    obj.insert("GraphDriver".into(), graph_driver(&view.layer_dirs));
    if version < ApiVersion(1, 45) {
        if !view.container.is_empty() {
            obj.insert("Container".into(), view.container.clone().into());
        }
        obj.insert(
            "ContainerConfig".into(),
            container_config(view.container_config.as_ref()),
        );
    }
    if version < ApiVersion(1, 44) {
        obj.insert("VirtualSize".into(), (view.record.size as i64).into());
    }
    answer
}

/// overlay2's data for an image: its top layer and those below.
fn graph_driver(layer_dirs: &[String]) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    if let Some((top, below)) = layer_dirs.split_first() {
        if !below.is_empty() {
            data.insert("LowerDir".into(), below.join(":").into());
        }
        data.insert("UpperDir".into(), top.clone().into());
    }
    serde_json::json!({ "Data": data, "Name": "overlay2" })
}

/// The image's `container_config` with every field dockerd's Go encoder
/// writes, at its zero value where the image records none.
fn container_config(recorded: Option<&serde_json::Value>) -> serde_json::Value {
    let mut config = empty_container_config();
    if let (Some(all), Some(serde_json::Value::Object(fields))) = (config.as_object_mut(), recorded)
    {
        for (k, v) in fields {
            all.insert(k.clone(), v.clone());
        }
    }
    config
}

/// A container config at its zero value, as dockerd's Go encoder writes
/// one for an image that records none.
fn empty_container_config() -> serde_json::Value {
    serde_json::json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null
    })
}

fn image_inspect(view: &ImageDetails) -> ImageInspect {
    let img = &view.record;
    // a config Docker's type cannot read is left out, as it always was
    let config: Option<ImageConfig> = view
        .config
        .clone()
        .and_then(|v| serde_json::from_value(v).ok());
    ImageInspect {
        id: Some(img.id.clone()),
        repo_tags: Some(view.repo_tags.clone()),
        repo_digests: Some(img.repo_digests.clone()),
        comment: Some(view.comment.clone()),
        created: Some(img.created.clone()),
        author: Some(view.author.clone()),
        config,
        architecture: Some(view.architecture.clone()),
        os: Some(view.os.clone()),
        size: Some(img.size as i64),
        root_fs: Some(ImageInspectRootFs {
            typ: "layers".into(),
            layers: Some(img.diff_ids.clone()),
        }),
        metadata: Some(ImageInspectMetadata {
            last_tag_time: (!img.last_tag_time.is_empty()).then(|| img.last_tag_time.clone()),
        }),
        ..Default::default()
    }
}

/// The lines of DELETE /images/{name}.
pub fn image_delete_answer(items: &[ImageDeleteItem]) -> Vec<ImageDeleteResponseItem> {
    items
        .iter()
        .map(|item| match item {
            ImageDeleteItem::Untagged(r) => ImageDeleteResponseItem {
                untagged: Some(r.clone()),
                deleted: None,
            },
            ImageDeleteItem::Deleted(id) => ImageDeleteResponseItem {
                untagged: None,
                deleted: Some(id.clone()),
            },
        })
        .collect()
}

/// POST /images/prune: `ImagesDeleted` is null, not absent, when nothing
/// went.
pub fn image_prune_answer(items: &[ImageDeleteItem], reclaimed: u64) -> serde_json::Value {
    let deleted = if items.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(image_delete_answer(items)).unwrap_or_default()
    };
    serde_json::json!({
        "ImagesDeleted": deleted,
        "SpaceReclaimed": reclaimed,
    })
}

/// GET /distribution/{name}/json: an OCI descriptor and the platforms,
/// null when there are none (a Go nil slice).
pub fn distribution_answer(v: &berth_engine::DistributionView) -> serde_json::Value {
    serde_json::json!({
        "Descriptor": {"mediaType": v.media_type, "digest": v.digest, "size": v.size},
        "Platforms": v.platforms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::image::ImageRecord;
    use std::collections::HashMap;

    fn record() -> ImageRecord {
        ImageRecord {
            id: format!("sha256:{}", "a".repeat(64)),
            diff_ids: vec![format!("sha256:{}", "b".repeat(64))],
            size: 1234,
            created: "2024-01-02T03:04:05Z".into(),
            parent: format!("sha256:{}", "c".repeat(64)),
            last_tag_time: String::new(),
            repo_digests: vec!["busybox@sha256:dd".into()],
            build_key: String::new(),
        }
    }

    #[test]
    fn a_summary_is_the_view_field_for_field() {
        let view = ImageSummaryView {
            record: record(),
            repo_tags: vec!["busybox:latest".into()],
            created: 1704164645,
            labels: HashMap::from([("team".to_string(), "web".to_string())]),
            containers: 2,
        };
        let v = serde_json::to_value(image_summary_answer(&view)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Id": view.record.id,
                "ParentId": view.record.parent,
                "RepoTags": ["busybox:latest"],
                "RepoDigests": ["busybox@sha256:dd"],
                "Created": 1704164645,
                "Size": 1234,
                "SharedSize": -1,
                "Labels": {"team": "web"},
                "Containers": 2,
            })
        );
    }

    #[test]
    fn older_history_lines_are_missing() {
        let line = |id: Option<&str>| ImageHistoryView {
            id: id.map(String::from),
            created: 7,
            created_by: "/bin/sh -c true".into(),
            tags: vec![],
            size: 0,
            comment: String::new(),
        };
        assert_eq!(image_history_answer(&line(None)).id, "<missing>");
        let top = image_history_answer(&line(Some("sha256:ab")));
        assert_eq!(top.id, "sha256:ab");
        assert_eq!(top.created, 7);
        assert_eq!(top.created_by, "/bin/sh -c true");
    }

    #[test]
    fn inspect_keeps_docker_config_fields_and_drops_an_unreadable_config() {
        let mut view = ImageDetails {
            record: record(),
            repo_tags: vec![],
            comment: "imported".into(),
            author: String::new(),
            config: Some(serde_json::json!({
                "Cmd": ["sh"],
                "Shell": ["/bin/bash", "-c"],
                "ExposedPorts": {"80/tcp": {}},
            })),
            architecture: "amd64".into(),
            os: "linux".into(),
            docker_version: String::new(),
            container: String::new(),
            container_config: None,
            layer_dirs: vec!["/l/top".into()],
        };
        let v = serde_json::to_value(image_inspect(&view)).unwrap();
        assert_eq!(v["Config"]["Shell"], serde_json::json!(["/bin/bash", "-c"]));
        assert_eq!(
            v["Config"]["ExposedPorts"],
            serde_json::json!({"80/tcp": {}})
        );
        assert_eq!(v["RootFS"]["Layers"][0], view.record.diff_ids[0]);
        assert_eq!(v["Created"], "2024-01-02T03:04:05Z");
        assert_eq!(v["Comment"], "imported");
        // never tagged: no LastTagTime
        assert_eq!(v["Metadata"], serde_json::json!({}));
        view.config = Some(serde_json::json!({"Cmd": 5}));
        view.record.last_tag_time = "2024-02-02T00:00:00Z".into();
        let v = serde_json::to_value(image_inspect(&view)).unwrap();
        assert!(v.get("Config").is_none());
        assert_eq!(v["Metadata"]["LastTagTime"], "2024-02-02T00:00:00Z");
    }

    #[test]
    fn delete_and_prune_answers() {
        let items = vec![
            ImageDeleteItem::Untagged("busybox:latest".into()),
            ImageDeleteItem::Deleted("sha256:aa".into()),
        ];
        assert_eq!(
            serde_json::to_string(&image_delete_answer(&items)).unwrap(),
            r#"[{"Untagged":"busybox:latest"},{"Deleted":"sha256:aa"}]"#
        );
        assert_eq!(
            image_prune_answer(&items, 10).to_string(),
            r#"{"ImagesDeleted":[{"Untagged":"busybox:latest"},{"Deleted":"sha256:aa"}],"SpaceReclaimed":10}"#
        );
        assert_eq!(
            image_prune_answer(&[], 0).to_string(),
            r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#
        );
    }

    #[test]
    fn old_clients_get_the_fields_dockerd_still_sent_them() {
        let mut view = ImageDetails {
            record: record(),
            repo_tags: vec![],
            comment: String::new(),
            author: String::new(),
            config: None,
            architecture: "amd64".into(),
            os: "linux".into(),
            docker_version: "20.10.24".into(),
            container: String::new(),
            container_config: None,
            layer_dirs: vec!["/l/top".into(), "/l/mid".into(), "/l/base".into()],
        };
        let v = image_inspect_answer(&view, ApiVersion(1, 38));
        assert_eq!(v["ContainerConfig"]["Cmd"], serde_json::Value::Null);
        assert_eq!(v["ContainerConfig"]["Hostname"], "");
        assert!(v.get("Container").is_none(), "omitted when empty");
        assert_eq!(v["VirtualSize"], 1234);
        assert_eq!(v["DockerVersion"], "20.10.24");
        assert_eq!(v["Parent"], view.record.parent);
        assert_eq!(v["GraphDriver"]["Name"], "overlay2");
        assert_eq!(v["GraphDriver"]["Data"]["UpperDir"], "/l/top");
        assert_eq!(v["GraphDriver"]["Data"]["LowerDir"], "/l/mid:/l/base");

        view.container = "c0ffee".into();
        view.container_config = Some(serde_json::json!({"Cmd": ["sh"]}));
        let v = image_inspect_answer(&view, ApiVersion(1, 44));
        assert_eq!(v["Container"], "c0ffee");
        assert_eq!(v["ContainerConfig"]["Cmd"][0], "sh");
        assert_eq!(
            v["ContainerConfig"]["WorkingDir"], "",
            "zero values filled in"
        );
        assert!(v.get("VirtualSize").is_none(), "gone in 1.44");

        let v = image_inspect_answer(&view, ApiVersion(1, 45));
        assert!(v.get("Container").is_none(), "gone in 1.45");
        assert!(v.get("ContainerConfig").is_none(), "gone in 1.45");
        assert_eq!(v["Parent"], view.record.parent);
        assert_eq!(v["GraphDriver"]["Name"], "overlay2");
    }
}
