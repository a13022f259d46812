//! `ImageService` on berth's one image store: an image the kubelet pulls
//! is in `berth images` too, and the reverse (as with cri-dockerd, unlike
//! containerd's separate `k8s.io` namespace). Names go out fully
//! qualified (`docker.io/library/busybox:latest`), as the CRI expects;
//! an image's CRI id is berth's image id, the config digest.

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::{Credentials, Engine, Error, PullOptions};
use berth_image::Reference;
use tonic::{Request, Response, Status};

use crate::errors::status;
use crate::pb::{self, image_service_server::ImageService};

pub struct Images {
    engine: Arc<Engine>,
}

impl Images {
    pub fn new(engine: Arc<Engine>) -> Images {
        Images { engine }
    }

    /// The image a CRI `ImageSpec.image` names: an id (with or without
    /// `sha256:`), a reference, or `repo@digest` as it was pulled.
    fn find(&self, name: &str) -> Result<Option<pb::Image>, Status> {
        if name.is_empty() {
            return Err(Status::invalid_argument("an image name is required"));
        }
        let id = match self.engine.resolve_image(name) {
            Ok(rec) => Some(rec.id),
            Err(Error::NotFound(_)) => self.by_digest(name),
            Err(Error::InvalidParameter(m)) => {
                return Err(Status::invalid_argument(format!(
                    "invalid image reference {name:?}: {m}"
                )));
            }
            Err(e) => return Err(status(e)),
        };
        match id {
            Some(id) => self.image(&id),
            None => Ok(None),
        }
    }

    /// An image by one of its `repo@sha256:…` names.
    fn by_digest(&self, name: &str) -> Option<String> {
        let wanted = Reference::parse_name_only(name).ok()?;
        wanted.digest.as_ref()?;
        let wanted = wanted.to_string();
        let images = self.engine.image_list(true, &HashMap::new()).ok()?;
        images
            .into_iter()
            .find(|i| i.record.repo_digests.iter().any(|d| full(d) == wanted))
            .map(|i| i.record.id)
    }

    /// The CRI's view of image `id`; None when it went meanwhile.
    fn image(&self, id: &str) -> Result<Option<pb::Image>, Status> {
        let details = match self.engine.image_inspect(id) {
            Ok(d) => d,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(status(e)),
        };
        let user = self
            .engine
            .image_config(id)
            .ok()
            .and_then(|c| c.config().as_ref().and_then(|c| c.user().clone()))
            .unwrap_or_default();
        let (uid, username) = image_user(&user);
        let rec = details.record;
        // the kubelet's image GC leaves pinned images alone: without its
        // pause, no pod could start (offline, not even after a pull)
        let sandbox = &self.engine.config().settings.cri_sandbox_image;
        let pinned = self
            .engine
            .resolve_image(sandbox)
            .is_ok_and(|s| s.id == rec.id);
        Ok(Some(pb::Image {
            id: rec.id.clone(),
            repo_tags: details.repo_tags.iter().map(|t| full(t)).collect(),
            repo_digests: rec.repo_digests.iter().map(|d| full(d)).collect(),
            // the CRI wants a size above zero, even for an empty image
            size: rec.size.max(1),
            uid: uid.map(|value| pb::Int64Value { value }),
            username,
            spec: Some(pb::ImageSpec {
                image: rec.id,
                ..Default::default()
            }),
            pinned,
        }))
    }
}

/// Pulls `name` with berth's puller; the image's id.
pub async fn pull(
    engine: &Arc<Engine>,
    name: &str,
    credentials: Option<Credentials>,
) -> Result<String, Status> {
    let opts = PullOptions {
        image: name.to_string(),
        tag: None,
        platform: None,
        credentials,
    };
    let plan = engine.pull_prepare(&opts).await.map_err(|e| {
        let m = format!("pulling image {name:?}: {e}");
        match e {
            Error::NotFound(_) => Status::not_found(m),
            Error::Unauthorized(_) => Status::unauthenticated(m),
            Error::InvalidParameter(_) => Status::invalid_argument(m),
            _ => Status::unavailable(m),
        }
    })?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let pulled = engine.pull_run(plan, tx).await;
    let _ = drain.await;
    pulled.map_err(|e| Status::unavailable(format!("pulling image {name:?}: {e}")))
}

/// The id of image `name`, pulled first when it is not here.
pub async fn ensure(engine: &Arc<Engine>, name: &str) -> Result<String, Status> {
    match engine.resolve_image(name) {
        Ok(rec) => Ok(rec.id),
        Err(Error::NotFound(_)) => pull(engine, name, None).await,
        Err(e) => Err(status(e)),
    }
}

/// A reference in the CRI's fully qualified form; as given when it does
/// not parse.
fn full(name: &str) -> String {
    Reference::parse_name_only(name)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string())
}

/// The image's `USER` as the CRI reports it: a numeric user is a uid, a
/// name is a username (the kubelet checks `runAsNonRoot` with them).
fn image_user(user: &str) -> (Option<i64>, String) {
    let name = user.split(':').next().unwrap_or_default();
    if name.is_empty() {
        return (None, String::new());
    }
    match name.parse::<i64>() {
        Ok(uid) => (Some(uid), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

/// The credentials of a pull: user and password, or `auth` (base64 of
/// `user:password`). Tokens are refused: berth's registry client does not
/// take them yet.
fn credentials(auth: Option<pb::AuthConfig>) -> Result<Option<Credentials>, Status> {
    let Some(a) = auth else {
        return Ok(None);
    };
    if !a.identity_token.is_empty() || !a.registry_token.is_empty() {
        return Err(Status::invalid_argument(
            "identity and registry tokens are not supported: give a username and password",
        ));
    }
    if !a.username.is_empty() || !a.password.is_empty() {
        return Ok(Some(Credentials {
            username: a.username,
            password: a.password,
        }));
    }
    if a.auth.is_empty() {
        return Ok(None);
    }
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(a.auth.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Status::invalid_argument("auth is not base64 of user:password"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| Status::invalid_argument("auth is not base64 of user:password"))?;
    Ok(Some(Credentials {
        username: username.into(),
        password: password.into(),
    }))
}

fn spec_image(spec: Option<pb::ImageSpec>) -> String {
    spec.map(|s| s.image).unwrap_or_default()
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn list_images(
        &self,
        req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        let wanted = spec_image(req.into_inner().filter.and_then(|f| f.image));
        let images = if wanted.is_empty() {
            let all = self
                .engine
                .image_list(false, &HashMap::new())
                .map_err(status)?;
            let mut out = Vec::new();
            for i in all {
                out.extend(self.image(&i.record.id)?);
            }
            out
        } else {
            self.find(&wanted)?.into_iter().collect()
        };
        Ok(Response::new(pb::ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        req: Request<pb::ImageStatusRequest>,
    ) -> Result<Response<pb::ImageStatusResponse>, Status> {
        let req = req.into_inner();
        let image = self.find(&spec_image(req.image))?;
        let mut info = HashMap::new();
        if req.verbose
            && let Some(i) = &image
            && let Ok(config) = self.engine.image_config_raw(&i.id)
        {
            let v = serde_json::json!({ "imageSpec": config });
            info.insert("info".to_string(), v.to_string());
        }
        // an image that is not here is no error: the kubelet pulls it
        Ok(Response::new(pb::ImageStatusResponse { image, info }))
    }

    async fn pull_image(
        &self,
        req: Request<pb::PullImageRequest>,
    ) -> Result<Response<pb::PullImageResponse>, Status> {
        let req = req.into_inner();
        let name = spec_image(req.image);
        if name.is_empty() {
            return Err(Status::invalid_argument("an image name is required"));
        }
        Reference::parse(&name).map_err(|e| {
            Status::invalid_argument(format!("invalid image reference {name:?}: {e}"))
        })?;
        let id = pull(&self.engine, &name, credentials(req.auth)?).await?;
        Ok(Response::new(pb::PullImageResponse { image_ref: id }))
    }

    async fn remove_image(
        &self,
        req: Request<pb::RemoveImageRequest>,
    ) -> Result<Response<pb::RemoveImageResponse>, Status> {
        let name = spec_image(req.into_inner().image);
        let Some(image) = self.find(&name)? else {
            // removing what is gone succeeds: the kubelet may retry
            return Ok(Response::new(pb::RemoveImageResponse {}));
        };
        // every name of the image goes with it, as in containerd
        match self.engine.image_delete(&image.id, true, true) {
            Ok(_) | Err(Error::NotFound(_)) => Ok(Response::new(pb::RemoveImageResponse {})),
            Err(e) => Err(status(e)),
        }
    }

    async fn image_fs_info(
        &self,
        _req: Request<pb::ImageFsInfoRequest>,
    ) -> Result<Response<pb::ImageFsInfoResponse>, Status> {
        let images = self
            .engine
            .image_list(true, &HashMap::new())
            .map_err(status)?;
        let used: u64 = images.iter().map(|i| i.record.size).sum();
        let usage = pb::FilesystemUsage {
            timestamp: crate::now_nanos(),
            fs_id: Some(pb::FilesystemIdentifier {
                mountpoint: self
                    .engine
                    .config()
                    .settings
                    .data_root
                    .display()
                    .to_string(),
            }),
            used_bytes: Some(pb::UInt64Value { value: used }),
            // counting the layers' inodes means walking them: not per call
            inodes_used: None,
        };
        Ok(Response::new(pb::ImageFsInfoResponse {
            image_filesystems: vec![usage],
            container_filesystems: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_of_images() {
        assert_eq!(image_user(""), (None, String::new()));
        assert_eq!(image_user("1002"), (Some(1002), String::new()));
        assert_eq!(image_user("1003:1004"), (Some(1003), String::new()));
        assert_eq!(image_user("www-data"), (None, "www-data".into()));
        assert_eq!(image_user("www-data:1004"), (None, "www-data".into()));
    }

    #[test]
    fn names_go_out_fully_qualified() {
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(
            full("gcr.io/k8s-staging-cri-tools/test-image-tag:test"),
            "gcr.io/k8s-staging-cri-tools/test-image-tag:test"
        );
        assert_eq!(full("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b");
    }

    #[test]
    fn pull_credentials() {
        let auth = |a: pb::AuthConfig| credentials(Some(a));
        let c = auth(pb::AuthConfig {
            auth: "dXNlcjpwYXNz".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("user", "pass"));
        let bad = auth(pb::AuthConfig {
            auth: "!!".into(),
            ..Default::default()
        });
        assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);
        let token = auth(pb::AuthConfig {
            registry_token: "t".into(),
            ..Default::default()
        });
        assert_eq!(token.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert!(credentials(None).unwrap().is_none());
    }
}
