//! The image of a service as the docker CLI's client library sends it:
//! tagged `latest` when untagged, and pinned to the registry's digest
//! (`GET /distribution/{name}/json`) unless `--no-resolve-image`, with the
//! client library's warning when the registry cannot be reached.

use berth_image::reference::Reference;
use serde_json::{Value, json};

use crate::Ctx;
use crate::rawhttp;

/// `imageWithTagString`: "busybox" is "busybox:latest"; a name that does
/// not parse is sent as it is.
pub fn with_tag(image: &str) -> String {
    match Reference::parse(image) {
        Ok(r) => r.familiar(),
        Err(_) => image.to_string(),
    }
}

/// `imageWithDigestString`: the digest after the name and tag, unless the
/// reference already has one.
fn with_digest(image: &str, digest: &str) -> String {
    match Reference::parse_name_only(image) {
        Ok(r) if r.digest.is_none() => {
            let mut out = r.familiar();
            out.push('@');
            out.push_str(digest);
            out
        }
        _ => image.to_string(),
    }
}

/// The image as `service ls` and `service ps` show it: the digest of a
/// tagged reference left out.
pub fn display(image: &str) -> String {
    match Reference::parse_name_only(image) {
        Ok(r) if r.tag.is_some() => {
            format!("{}:{}", r.familiar_name(), r.tag.unwrap_or_default())
        }
        _ => image.to_string(),
    }
}

/// The client library's `digestWarning`.
pub fn digest_warning(image: &str) -> String {
    format!(
        "image {image} could not be accessed on a registry to record\nits digest. Each node will access {image} independently,\npossibly leading to different nodes running different\nversions of the image.\n"
    )
}

fn auth_headers(auth: Option<&str>) -> Vec<(&'static str, String)> {
    auth.map(|a| vec![("X-Registry-Auth", a.to_string())])
        .unwrap_or_default()
}

/// `imageDigestAndPlatforms`: the pinned image and its platforms.
async fn distribution(
    ctx: &Ctx,
    image: &str,
    auth: Option<&str>,
) -> anyhow::Result<Option<(String, Vec<Value>)>> {
    let path = format!("/distribution/{image}/json");
    let (code, body) = rawhttp::get_with_headers(&ctx.socket, &path, &auth_headers(auth)).await?;
    if !(200..300).contains(&code) {
        return Ok(None);
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body.read_all().await?) else {
        return Ok(None);
    };
    let Some(digest) = v["Descriptor"]["digest"].as_str() else {
        return Ok(None);
    };
    let platforms = v["Platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let arch = p["architecture"].as_str().unwrap_or_default();
            // swarmkit's nodes report "armv7l" where manifests say "arm"
            let arch = if arch.eq_ignore_ascii_case("arm") {
                ""
            } else {
                arch
            };
            let mut o = serde_json::Map::new();
            if !arch.is_empty() {
                o.insert("Architecture".into(), json!(arch));
            }
            if let Some(os) = p["os"].as_str().filter(|s| !s.is_empty()) {
                o.insert("OS".into(), json!(os));
            }
            Value::Object(o)
        })
        .collect();
    Ok(Some((with_digest(image, digest), platforms)))
}

/// Tags the spec's image and, when `resolve`, pins it to its digest and
/// records the platforms in the placement; answers the warning to print
/// when the registry could not say.
pub async fn prepare(
    ctx: &Ctx,
    spec: &mut Value,
    resolve: bool,
    auth: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let task = &mut spec["TaskTemplate"];
    let Some(image) = task["ContainerSpec"]["Image"].as_str().map(with_tag) else {
        return Ok(None);
    };
    task["ContainerSpec"]["Image"] = json!(image);
    if !resolve {
        return Ok(None);
    }
    let Some((pinned, platforms)) = distribution(ctx, &image, auth).await? else {
        return Ok(Some(digest_warning(&image)));
    };
    task["ContainerSpec"]["Image"] = json!(pinned);
    if !platforms.is_empty() {
        if !task["Placement"].is_object() {
            task["Placement"] = json!({});
        }
        task["Placement"]["Platforms"] = json!(platforms);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_tagged_and_shown_as_docker_does() {
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(with_tag("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(
            with_tag("registry.example.com:5000/team/app"),
            "registry.example.com:5000/team/app:latest"
        );
        assert_eq!(with_tag("Busybox"), "Busybox");
        let pinned = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(with_tag(&pinned), pinned);
        assert_eq!(
            with_digest("busybox:latest", "sha256:abc"),
            "busybox:latest@sha256:abc"
        );
        let tagged_pinned = format!("busybox:1.36@sha256:{}", "b".repeat(64));
        assert_eq!(display(&tagged_pinned), "busybox:1.36");
        assert_eq!(display(&pinned), pinned);
    }
}
