pub mod build;
pub mod configs;
pub mod containers;
pub mod copy;
pub mod images;
pub mod networks;
pub mod nodes;
pub mod runtime;
pub mod secrets;
pub mod secrets_common;
#[cfg(test)]
mod secrets_tests;
pub mod services;
pub mod services_flags;
pub mod services_image;
pub mod services_list;
#[cfg(test)]
mod services_list_tests;
pub mod services_logs;
pub mod services_mounts;
pub mod services_networks;
pub mod services_opts;
pub mod services_pretty;
pub mod services_progress;
pub mod services_refs;
pub mod services_spec;
#[cfg(test)]
mod services_tests;
pub mod services_update;
pub mod stack;
pub mod stack_config;
pub mod stack_deploy;
pub mod stack_plan;
pub mod stack_rm;
#[cfg(test)]
mod stack_tests;
pub mod stack_wait;
pub mod swarm;
pub mod swarm_ca;
pub mod swarm_lock;
pub mod system;
pub mod tasks_table;
pub mod volumes;
