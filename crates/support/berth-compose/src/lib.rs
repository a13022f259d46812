//! Compose files for `berth stack deploy`, loaded and converted exactly as
//! the docker CLI 28 does it (`cli/compose/loader`, `cli/compose/convert`,
//! `cli/command/stack/loader`), so a stack deployed by either CLI yields the
//! same service specs and redeploys do not churn tasks.
//!
//! - [`load`] parses the files (YAML as Go's yaml.v3 reads it: only
//!   true/false are booleans, `0400` is octal, `<<` merges), refuses
//!   Docker's forbidden keys, interpolates `${VAR}` (values only), validates
//!   against Docker's 3.13 schema, decodes, resolves `env_file`, relative
//!   paths and secret files, and merges later files over earlier ones.
//! - [`convert`] gives the requests a deploy makes: networks, secrets and
//!   configs to create, external networks to check, and each ServiceSpec as
//!   the JSON the docker CLI posts.
//! - [`deploy_order`] orders services by `depends_on`, then by name.
//!
//! Errors carry Docker's text ([`ComposeError::message`]) and, where a
//! node is to blame, the file, line and column (Docker gives none).
//!
//! berth's additions, all outside what Docker accepts:
//! - the variables come from the process environment **plus a `.env` file**
//!   in the working directory ([`Env::for_stack`]); the process environment
//!   wins. `docker stack deploy` reads no `.env`. The `.env` variables are
//!   also what bare `KEY` lines of an `env_file` take (Docker looks those up
//!   in the process environment only, which is the same without `.env`);
//! - `depends_on` in the compose-spec long form
//!   (`{db: {condition: service_healthy}}`), kept in the model;
//! - a top-level `name` (ignored), `secrets.*.environment`,
//!   `configs.*.environment` and `configs.*.content`;
//! - compose-spec service keys a swarm cannot honour (`platform`,
//!   `profiles`, `pull_policy`, `cpus`, …) are warned about as "unsupported"
//!   instead of failing validation;
//! - files of versions 3.0 to 3.12 are validated against the 3.13 schema
//!   (Docker uses each version's own, which accept less).

mod convert;
mod decode;
mod env;
mod error;
mod gofmt;
mod interpolate;
mod load;
mod merge;
mod model;
mod order;
mod ports;
mod properties;
mod schema;
mod shlex;
mod template;
mod volume_spec;
mod yaml;

pub use convert::{
    LABEL_IMAGE, LABEL_NAMESPACE, NetworkCreate, ObjectCreate, ServiceCreate, StackSpec, convert,
};
pub use env::Env;
pub use error::{ComposeError, Position};
pub use load::{ComposeSource, Loaded, load};
pub use model::*;
pub use order::deploy_order;
