//! The compose file schema: Docker's `config_schema_v3.13.json`, key for key
//! and type for type, plus berth's accepted compose-spec keys (marked).

use std::sync::OnceLock;

use super::validate::{Format, KeyPattern, Schema, Type};
use crate::properties::BERTH_UNSUPPORTED;

pub(crate) fn compose_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(root)
}

fn t(types: &[Type]) -> Schema {
    Schema::typed(types)
}

fn string() -> Schema {
    t(&[Type::String])
}

fn integer() -> Schema {
    t(&[Type::Integer])
}

fn number() -> Schema {
    t(&[Type::Number])
}

fn boolean() -> Schema {
    t(&[Type::Boolean])
}

fn object() -> Schema {
    t(&[Type::Object])
}

fn array_of(items: Schema) -> Schema {
    t(&[Type::Array]).items(items)
}

fn unique_strings() -> Schema {
    array_of(string()).unique()
}

fn duration() -> Schema {
    string().format(Format::Duration)
}

fn string_or_list() -> Schema {
    Schema::any().one_of(vec![string(), unique_strings()])
}

fn list_or_dict() -> Schema {
    Schema::any().one_of(vec![
        object()
            .pattern(
                KeyPattern::NonEmpty,
                t(&[Type::String, Type::Number, Type::Null]),
            )
            .closed(),
        unique_strings(),
    ])
}

fn options(values: &[Type]) -> Schema {
    object().pattern(KeyPattern::NonEmpty, t(values))
}

fn string_or_strings() -> Schema {
    Schema::any().one_of(vec![string(), array_of(string())])
}

fn root() -> Schema {
    object()
        .prop("version", string())
        // berth: the compose-spec project name, accepted and ignored
        .prop("name", string())
        .prop(
            "services",
            object().pattern(KeyPattern::Name, service()).closed(),
        )
        .prop("networks", object().pattern(KeyPattern::Name, network()))
        .prop(
            "volumes",
            object().pattern(KeyPattern::Name, volume()).closed(),
        )
        .prop(
            "secrets",
            object().pattern(KeyPattern::Name, secret()).closed(),
        )
        .prop(
            "configs",
            object().pattern(KeyPattern::Name, config()).closed(),
        )
        .pattern(KeyPattern::Extension, Schema::any())
        .closed()
}

fn file_reference() -> Schema {
    Schema::any().one_of(vec![
        string(),
        object()
            .prop("source", string())
            .prop("target", string())
            .prop("uid", string())
            .prop("gid", string())
            .prop("mode", number()),
    ])
}

fn service() -> Schema {
    let mut s = object()
        .prop("deploy", deployment())
        .prop("build", build())
        .prop("cap_add", unique_strings())
        .prop("cap_drop", unique_strings())
        .prop("cgroupns_mode", string())
        .prop("cgroup_parent", string())
        .prop("command", string_or_strings())
        .prop("configs", array_of(file_reference()))
        .prop("container_name", string())
        .prop(
            "credential_spec",
            object()
                .prop("config", string())
                .prop("file", string())
                .prop("registry", string())
                .closed(),
        )
        .prop("depends_on", depends_on())
        .prop("devices", unique_strings())
        .prop("dns", string_or_list())
        .prop("dns_search", string_or_list())
        .prop("domainname", string())
        .prop("entrypoint", string_or_strings())
        .prop("env_file", string_or_list())
        .prop("environment", list_or_dict())
        .prop(
            "expose",
            array_of(t(&[Type::String, Type::Number]).format(Format::Unchecked("expose"))).unique(),
        )
        .prop("external_links", unique_strings())
        .prop("extra_hosts", list_or_dict())
        .prop("healthcheck", healthcheck())
        .prop("hostname", string())
        .prop("image", string())
        .prop("init", boolean())
        .prop("ipc", string())
        .prop("isolation", string())
        .prop("labels", list_or_dict())
        .prop("links", unique_strings())
        .prop(
            "logging",
            object()
                .prop("driver", string())
                .prop(
                    "options",
                    options(&[Type::String, Type::Number, Type::Null]),
                )
                .closed(),
        )
        .prop("mac_address", string())
        .prop("network_mode", string())
        .prop("networks", service_networks())
        .prop("pid", t(&[Type::String, Type::Null]))
        .prop("ports", ports())
        .prop("privileged", boolean())
        .prop("read_only", boolean())
        .prop("restart", string())
        .prop("security_opt", unique_strings())
        .prop("shm_size", t(&[Type::Number, Type::String]))
        .prop("secrets", array_of(file_reference()))
        .prop("sysctls", list_or_dict())
        .prop("stdin_open", boolean())
        .prop("stop_grace_period", duration())
        .prop("stop_signal", string())
        .prop("tmpfs", string_or_list())
        .prop("tty", boolean())
        .prop("ulimits", ulimits())
        .prop("oom_score_adj", integer())
        .prop("user", string())
        .prop("userns_mode", string())
        .prop("volumes", array_of(service_volume()))
        .prop("working_dir", string());
    // berth: compose-spec keys a swarm cannot honour are accepted (and
    // warned about) instead of failing the file
    for key in BERTH_UNSUPPORTED {
        s = s.prop(key, Schema::any());
    }
    s.pattern(KeyPattern::Extension, Schema::any()).closed()
}

fn build() -> Schema {
    Schema::any().one_of(vec![
        string(),
        object()
            .prop("context", string())
            .prop("dockerfile", string())
            .prop("args", list_or_dict())
            .prop("labels", list_or_dict())
            .prop("cache_from", unique_strings())
            .prop("network", string())
            .prop("target", string())
            .prop("shm_size", t(&[Type::Integer, Type::String]))
            .prop("extra_hosts", list_or_dict()),
    ])
}

/// Docker: a list of service names. berth also takes the compose-spec
/// long form `{db: {condition: service_healthy}}`.
fn depends_on() -> Schema {
    Schema::any().one_of(vec![
        unique_strings(),
        object()
            .pattern(
                KeyPattern::Name,
                object()
                    .prop(
                        "condition",
                        string().allowed(&[
                            "service_started",
                            "service_healthy",
                            "service_completed_successfully",
                        ]),
                    )
                    .prop("required", boolean())
                    .prop("restart", boolean())
                    .closed(),
            )
            .closed(),
    ])
}

fn service_networks() -> Schema {
    Schema::any().one_of(vec![
        unique_strings(),
        object()
            .pattern(
                KeyPattern::Name,
                Schema::any().one_of(vec![
                    object()
                        .prop("aliases", unique_strings())
                        .prop("driver_opts", options(&[Type::String, Type::Number]))
                        .prop("ipv4_address", string())
                        .prop("ipv6_address", string())
                        .closed(),
                    t(&[Type::Null]),
                ]),
            )
            .closed(),
    ])
}

fn ports() -> Schema {
    array_of(Schema::any().one_of(vec![
        number().format(Format::Ports),
        string().format(Format::Ports),
        object()
            .prop("mode", string())
            .prop("target", integer())
            .prop("published", integer())
            .prop("protocol", string())
            .closed(),
    ]))
    .unique()
}

fn ulimits() -> Schema {
    object().pattern(
        KeyPattern::Lowercase,
        Schema::any().one_of(vec![
            integer(),
            object()
                .prop("hard", integer())
                .prop("soft", integer())
                .required(&["soft", "hard"])
                .closed(),
        ]),
    )
}

fn service_volume() -> Schema {
    Schema::any().one_of(vec![
        string(),
        object()
            .required(&["type"])
            .prop("type", string())
            .prop("source", string())
            .prop("target", string())
            .prop("read_only", boolean())
            .prop("consistency", string())
            .prop("bind", object().prop("propagation", string()))
            .prop("volume", object().prop("nocopy", boolean()))
            .prop("tmpfs", object().prop("size", integer().minimum(0.0)))
            .closed(),
    ])
}

fn healthcheck() -> Schema {
    object()
        .closed()
        .prop("disable", boolean())
        .prop("interval", duration())
        .prop("retries", number())
        .prop("test", string_or_strings())
        .prop("timeout", duration())
        .prop("start_period", duration())
        .prop("start_interval", duration())
}

fn update_config() -> Schema {
    object()
        .prop("parallelism", integer())
        .prop("delay", duration())
        .prop("failure_action", string())
        .prop("monitor", duration())
        .prop("max_failure_ratio", number())
        .prop("order", string().allowed(&["start-first", "stop-first"]))
        .closed()
}

fn deployment() -> Schema {
    t(&[Type::Object, Type::Null])
        .prop("mode", string())
        .prop("endpoint_mode", string())
        .prop("replicas", integer())
        .prop("labels", list_or_dict())
        .prop("rollback_config", update_config())
        .prop("update_config", update_config())
        .prop(
            "resources",
            object()
                .prop(
                    "limits",
                    object()
                        .prop("cpus", string())
                        .prop("memory", string())
                        .prop("pids", integer())
                        .closed(),
                )
                .prop(
                    "reservations",
                    object()
                        .prop("cpus", string())
                        .prop("memory", string())
                        .prop("generic_resources", generic_resources())
                        .closed(),
                )
                .closed(),
        )
        .prop(
            "restart_policy",
            object()
                .prop("condition", string())
                .prop("delay", duration())
                .prop("max_attempts", integer())
                .prop("window", duration())
                .closed(),
        )
        .prop(
            "placement",
            object()
                .prop("constraints", array_of(string()))
                .prop(
                    "preferences",
                    array_of(object().prop("spread", string()).closed()),
                )
                .prop("max_replicas_per_node", integer())
                .closed(),
        )
        .closed()
}

fn generic_resources() -> Schema {
    array_of(
        object()
            .prop(
                "discrete_resource_spec",
                object()
                    .prop("kind", string())
                    .prop("value", number())
                    .closed(),
            )
            .closed(),
    )
}

fn network() -> Schema {
    t(&[Type::Object, Type::Null])
        .prop("name", string())
        .prop("driver", string())
        .prop("driver_opts", options(&[Type::String, Type::Number]))
        .prop(
            "ipam",
            object()
                .prop("driver", string())
                .prop(
                    "config",
                    array_of(object().prop("subnet", string()).closed()),
                )
                .closed(),
        )
        .prop(
            "external",
            t(&[Type::Boolean, Type::Object])
                .prop("name", string())
                .closed(),
        )
        .prop("internal", boolean())
        .prop("attachable", boolean())
        .prop("labels", list_or_dict())
        .pattern(KeyPattern::Extension, Schema::any())
        .closed()
}

fn volume() -> Schema {
    t(&[Type::Object, Type::Null])
        .prop("name", string())
        .prop("driver", string())
        .prop("driver_opts", options(&[Type::String, Type::Number]))
        .prop(
            "external",
            t(&[Type::Boolean, Type::Object])
                .prop("name", string())
                .closed(),
        )
        .prop("labels", list_or_dict())
        .prop("x-cluster-spec", cluster_spec())
        .pattern(KeyPattern::Extension, Schema::any())
        .closed()
}

fn cluster_spec() -> Schema {
    let topology = array_of(object().prop("segments", list_or_dict()));
    object()
        .prop("group", string())
        .prop(
            "access_mode",
            object()
                .prop("scope", string())
                .prop("sharing", string())
                .prop("block_volume", object())
                .prop(
                    "mount_volume",
                    object()
                        .prop("fs_type", string())
                        .prop("mount_flags", array_of(string())),
                ),
        )
        .prop(
            "accessibility_requirements",
            object()
                .prop("requisite", topology.clone())
                .prop("preferred", topology),
        )
        .prop(
            "capacity_range",
            object()
                .prop("required_bytes", string())
                .prop("limit_bytes", string()),
        )
        .prop("availability", string())
}

fn open_external() -> Schema {
    t(&[Type::Boolean, Type::Object]).prop("name", string())
}

fn secret() -> Schema {
    object()
        .prop("name", string())
        .prop("file", string())
        .prop("external", open_external())
        .prop("labels", list_or_dict())
        .prop("driver", string())
        .prop("driver_opts", options(&[Type::String, Type::Number]))
        .prop("template_driver", string())
        // berth (compose-spec): the data from an environment variable
        .prop("environment", string())
        .pattern(KeyPattern::Extension, Schema::any())
        .closed()
}

fn config() -> Schema {
    object()
        .prop("name", string())
        .prop("file", string())
        .prop("external", open_external())
        .prop("labels", list_or_dict())
        .prop("template_driver", string())
        // berth (compose-spec): the data from a variable or inline
        .prop("environment", string())
        .prop("content", string())
        .pattern(KeyPattern::Extension, Schema::any())
        .closed()
}
