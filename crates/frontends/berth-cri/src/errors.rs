//! berth's error kinds as gRPC status codes, the way the kubelet reads
//! them (NotFound lets it forget an object, Unavailable makes it retry).

use berth_engine::Error;
use tonic::Status;

pub fn status(e: Error) -> Status {
    let msg = e.to_string();
    match e {
        Error::NotFound(_) => Status::not_found(msg),
        // a name clash is AlreadyExists where a call makes something
        // (pods.rs, containers.rs); elsewhere a conflict is a state
        // that forbids the call (an image in use, a container running)
        Error::Conflict(_) => Status::failed_precondition(msg),
        Error::InvalidParameter(_) | Error::StepFailed { .. } => Status::invalid_argument(msg),
        Error::NotModified(_) => Status::failed_precondition(msg),
        Error::NotImplemented(_) => Status::unimplemented(msg),
        Error::Forbidden(_) => Status::permission_denied(msg),
        Error::Unauthorized(_) => Status::unauthenticated(msg),
        Error::Internal(_) => Status::internal(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn kinds_map_to_codes() {
        assert_eq!(status(Error::not_found("x")).code(), Code::NotFound);
        assert_eq!(status(Error::invalid("x")).code(), Code::InvalidArgument);
        let s = status(Error::Internal(anyhow::anyhow!("disk on fire")));
        assert_eq!((s.code(), s.message()), (Code::Internal, "disk on fire"));
    }
}
