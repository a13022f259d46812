use thiserror::Error;

/// What a swarm call can fail with, each kind answering with the HTTP
/// status dockerd gives it; the messages are dockerd's and swarmkit's
/// where clients and users know them.
#[derive(Debug, Error)]
pub enum SwarmError {
    #[error("This node is not part of a swarm")]
    NotInSwarm,
    #[error(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    )]
    NotManagerInactive,
    #[error(
        "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."
    )]
    NotManagerWorker,
    #[error(
        "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one."
    )]
    AlreadyInSwarm,
    /// a manager restarted under autolock, not given its key yet
    #[error(
        "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it."
    )]
    Locked,
    #[error("swarm is not locked")]
    NotLocked,
    #[error("swarm could not be unlocked: invalid key provided")]
    InvalidUnlockKey,
    /// 503s with their own words (leave refusals)
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// dockerd's own 403s (a pre-defined network's name)
    #[error("{0}")]
    Forbidden(String),
    /// dockerd's own 409s (a network name taken)
    #[error("{0}")]
    Conflict(String),
    /// errors as swarmkit's gRPC status reaches dockerd: "rpc error: code = … desc = …"
    #[error("rpc error: code = {code} desc = {desc}")]
    Rpc { code: &'static str, desc: String },
    #[error("{0}")]
    Internal(String),
}

impl SwarmError {
    /// The HTTP status dockerd answers this with.
    pub fn http_status(&self) -> u16 {
        match self {
            SwarmError::NotInSwarm
            | SwarmError::NotManagerInactive
            | SwarmError::NotManagerWorker
            | SwarmError::AlreadyInSwarm
            | SwarmError::Locked
            | SwarmError::Unavailable(_) => 503,
            SwarmError::NotLocked => 409,
            SwarmError::InvalidUnlockKey => 401,
            SwarmError::InvalidArgument(_) => 400,
            SwarmError::NotFound(_) => 404,
            SwarmError::Forbidden(_) => 403,
            SwarmError::Conflict(_) => 409,
            SwarmError::Rpc { code, .. } => match *code {
                "InvalidArgument" | "FailedPrecondition" => 400,
                "NotFound" => 404,
                "AlreadyExists" => 409,
                "PermissionDenied" => 403,
                "Unavailable" => 503,
                _ => 500,
            },
            SwarmError::Internal(_) => 500,
        }
    }

    pub fn internal(what: &str, e: impl std::fmt::Display) -> SwarmError {
        SwarmError::Internal(format!("{what}: {e}"))
    }

    /// A gRPC status from another node, as dockerd shows it.
    pub fn from_status(s: &tonic::Status) -> SwarmError {
        let code = match s.code() {
            tonic::Code::InvalidArgument => "InvalidArgument",
            tonic::Code::FailedPrecondition => "FailedPrecondition",
            tonic::Code::NotFound => "NotFound",
            tonic::Code::AlreadyExists => "AlreadyExists",
            tonic::Code::PermissionDenied => "PermissionDenied",
            tonic::Code::Unavailable => "Unavailable",
            tonic::Code::DeadlineExceeded => "DeadlineExceeded",
            _ => "Unknown",
        };
        SwarmError::Rpc {
            code,
            desc: s.message().to_string(),
        }
    }
}
