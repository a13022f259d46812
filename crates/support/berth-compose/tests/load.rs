//! Loading: error positions, berth's additions (`.env`, long `depends_on`,
//! inline secrets and configs, compose-spec keys) and deploy order.

use berth_compose::{
    ComposeSource, DependencyCondition, Env, ObjectSource, Position, convert, deploy_order, load,
};

fn source(text: &str) -> ComposeSource {
    ComposeSource::new("stack.yml", "/srv/app", text.as_bytes().to_vec())
}

fn error(text: &str) -> berth_compose::ComposeError {
    load(&[source(text)], &Env::default()).expect_err("an error")
}

fn at(line: usize, column: usize) -> Option<Position> {
    Some(Position {
        file: "stack.yml".into(),
        line,
        column,
    })
}

#[test]
fn errors_point_at_the_node() {
    let e = error("services:\n  web:\n    image: nginx\n    foo: 1\n");
    assert_eq!(e.position().cloned(), at(4, 5));
    assert_eq!(
        e.to_string(),
        "services.web Additional property foo is not allowed (stack.yml:4:5)"
    );

    let e = error("services:\n  web:\n    image: nginx\n    environment:\n      A: x${VAR:?msg}\n");
    assert_eq!(e.position().cloned(), at(5, 10));

    let e = error("services:\n  web:\n    deploy: {replicas: x}\n    image: nginx\n");
    assert_eq!(
        e.message(),
        "services.web.deploy.replicas must be a integer"
    );
    assert_eq!(e.position().cloned(), at(3, 24));

    let e = error("version: '3.8'\nservices:\n  web:\n    hostname: x\n");
    assert_eq!(
        e.to_string(),
        "invalid image reference for service web: no image specified (stack.yml:3:3)"
    );

    let e = error("services:\n  web:\n   image: nginx\n  x: : y\n");
    assert!(
        e.to_string()
            .starts_with("stack.yml: yaml: line 4, column "),
        "{e}"
    );

    let e = error("services:\n  web:\n    image: nginx\n    image: other\n");
    assert_eq!(
        e.to_string(),
        "stack.yml: yaml: line 4, column 5: mapping key \"image\" already defined at line 3"
    );
}

#[test]
fn conversion_errors_point_at_the_reference() {
    let loaded = load(
        &[source(
            "services:\n  web:\n    image: nginx\n    networks:\n      - front\n",
        )],
        &Env::default(),
    )
    .expect("loads");
    let e = convert(&loaded.project, "ns").expect_err("undefined network");
    assert_eq!(
        e.to_string(),
        "service web: undefined network \"front\" (stack.yml:5:9)"
    );
}

#[test]
fn dotenv_feeds_interpolation_and_the_process_env_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".env"), "TAG=1.25\nNAME=from-dotenv\n").expect("write");
    let env = Env::from_vars([("NAME", "from-process")])
        .with_dotenv_dir(dir.path())
        .expect(".env");
    let file = ComposeSource::new(
        "docker-compose.yml",
        dir.path(),
        b"services:\n  web:\n    image: nginx:${TAG}\n    hostname: $NAME\n".to_vec(),
    );
    let loaded = load(&[file], &env).expect("loads");
    let web = &loaded.project.services["web"];
    assert_eq!(web.image, "nginx:1.25");
    assert_eq!(web.hostname, "from-process");
}

#[test]
fn depends_on_long_form_orders_the_deploy() {
    let text = concat!(
        "services:\n",
        "  web:\n    image: nginx\n    depends_on:\n      api: {condition: service_healthy}\n",
        "  api:\n    image: api\n    depends_on: [db]\n",
        "    healthcheck: {test: [CMD, check]}\n",
        "  db:\n    image: postgres\n",
        "  admin:\n    image: admin\n",
    );
    let loaded = load(&[source(text)], &Env::default()).expect("loads");
    let web = &loaded.project.services["web"];
    assert_eq!(web.depends_on[0].service, "api");
    assert_eq!(web.depends_on[0].condition, DependencyCondition::Healthy);
    assert_eq!(
        loaded.project.services["api"].depends_on[0].condition,
        DependencyCondition::Started
    );
    assert_eq!(
        deploy_order(&loaded.project).expect("order"),
        ["admin", "db", "api", "web"]
    );

    // no healthcheck in the file: the image's may serve
    let from_image = text.replace("    healthcheck: {test: [CMD, check]}\n", "");
    let loaded = load(&[source(&from_image)], &Env::default()).expect("loads");
    assert!(deploy_order(&loaded.project).is_ok());
    let disabled = text.replace("{test: [CMD, check]}", "{disable: true}");
    let loaded = load(&[source(&disabled)], &Env::default()).expect("loads");
    let e = deploy_order(&loaded.project).expect_err("disabled healthcheck");
    assert_eq!(e.message(), "service \"api\" has its healthcheck disabled");

    let cyclic = "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n";
    let loaded = load(&[source(cyclic)], &Env::default()).expect("loads");
    let e = deploy_order(&loaded.project).expect_err("cycle");
    assert_eq!(
        e.to_string(),
        "dependency cycle detected: a -> b -> a (stack.yml:4:18)"
    );

    let e =
        error("services:\n  web:\n    image: x\n    depends_on: {db: {condition: sometimes}}\n");
    assert!(e.message().contains("must be one of the following"), "{e}");
}

#[test]
fn secrets_and_configs_from_the_environment_or_inline() {
    let text = concat!(
        "name: ignored\n",
        "services:\n  web:\n    image: nginx\n    secrets: [token]\n    configs: [motd]\n",
        "secrets:\n  token:\n    environment: TOKEN\n",
        "configs:\n  motd:\n    content: hello\n",
    );
    let loaded = load(&[source(text)], &Env::from_vars([("TOKEN", "t0k")])).expect("loads");
    assert_eq!(
        loaded.project.secrets["token"].source,
        ObjectSource::Environment {
            variable: "TOKEN".into(),
            value: "t0k".into()
        }
    );
    let stack = convert(&loaded.project, "ns").expect("converts");
    assert_eq!(stack.secrets[0].data, b"t0k");
    assert_eq!(stack.secrets[0].spec["Data"], "dDBr");
    assert_eq!(stack.configs[0].data, b"hello");

    let e = load(&[source(text)], &Env::default()).expect_err("unset variable");
    assert_eq!(
        e.to_string(),
        "secret token: environment variable \"TOKEN\" is not set (stack.yml:9:18)"
    );
}

#[test]
fn compose_spec_keys_swarm_cannot_honour_are_warned_about() {
    let text = "services:\n  web:\n    image: nginx\n    platform: linux/arm64\n    profiles: [dev]\n    links: [db]\n";
    let loaded = load(&[source(text)], &Env::default()).expect("loads");
    assert_eq!(
        loaded.warnings,
        ["Ignoring unsupported options: links, platform, profiles"]
    );
}

#[test]
fn octal_modes_and_merge_keys_reach_the_spec() {
    let text = concat!(
        "x-secret: &secret {source: key, mode: 0400, uid: '33'}\n",
        "services:\n  web:\n    image: nginx\n    secrets:\n      - <<: *secret\n        target: /k\n",
        "secrets:\n  key:\n    content: ignored-for-secrets\n",
    );
    // `content` is a config-only key: secrets refuse it like Docker's schema
    let e = load(&[source(text)], &Env::default()).expect_err("content on a secret");
    assert_eq!(
        e.message(),
        "secrets.key Additional property content is not allowed"
    );
    let text = text.replace("content: ignored-for-secrets", "environment: KEY");
    let loaded = load(&[source(&text)], &Env::from_vars([("KEY", "k")])).expect("loads");
    let stack = convert(&loaded.project, "ns").expect("converts");
    let secret = &stack.services[0].spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0];
    assert_eq!(secret["File"]["Mode"], 256);
    assert_eq!(secret["File"]["UID"], "33");
    assert_eq!(secret["File"]["Name"], "/k");
}

#[test]
fn references_resolve_to_ids() {
    let text = "services:\n  web:\n    image: nginx\n    secrets: [a]\nsecrets:\n  a:\n    environment: A\n";
    let loaded = load(&[source(text)], &Env::from_vars([("A", "x")])).expect("loads");
    let mut stack = convert(&loaded.project, "ns").expect("converts");
    let web = &mut stack.services[0];
    assert_eq!(web.full_name(), "ns_web");
    assert_eq!(web.secret_names, ["ns_a"]);
    assert_eq!(
        web.clone().resolve_references(|_| None, |_| None),
        Err("secret not found: ns_a".into())
    );
    web.resolve_references(|n| Some(format!("id-{n}")), |_| None)
        .expect("resolves");
    assert_eq!(
        web.spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"],
        "id-ns_a"
    );
}
