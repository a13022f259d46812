//! Failing (and a few surprisingly valid) compose files: berth's error text
//! against the real docker CLI's.
//! `tests/fixtures/errors/cases.json` holds the files and what
//! `docker stack deploy` printed (recorded by
//! `tests/fixtures/tools/capture_errors.py`).

use berth_compose::{ComposeError, ComposeSource, Env, convert, load};
use serde_json::Value;

fn run(case: &Value, dir: &std::path::Path) -> Result<(), ComposeError> {
    let files = case["files"].as_object().expect("files");
    for (name, text) in files {
        std::fs::write(dir.join(name), text.as_str().expect("text")).expect("write");
    }
    let compose: Vec<String> = match case.get("compose") {
        Some(list) => list
            .as_array()
            .expect("compose")
            .iter()
            .map(|f| f.as_str().expect("file").to_string())
            .collect(),
        None => vec!["docker-compose.yml".into()],
    };
    let sources: Vec<ComposeSource> = compose
        .iter()
        .map(|f| ComposeSource::new(f.clone(), dir, std::fs::read(dir.join(f)).expect("read")))
        .collect();
    let mut env = vec![("HOME".to_string(), "/home/tester".to_string())];
    if let Some(vars) = case.get("env").and_then(Value::as_object) {
        env.extend(
            vars.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().into())),
        );
    }
    let loaded = load(&sources, &Env::from_vars(env))?;
    convert(&loaded.project, "ns").map(|_| ())
}

#[test]
fn errors_read_as_the_docker_clis() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/errors/cases.json"
    );
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("cases")).expect("json");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr = case["docker"]["stderr"]
            .as_str()
            .expect("stderr")
            .replace("{WORKDIR}", &dir.path().to_string_lossy());
        let docker_accepted = case["docker"]["exit"] == 0;
        match run(case, dir.path()) {
            Ok(()) if docker_accepted => {}
            Ok(()) => failures.push(format!("{name}: berth accepted it; docker: {stderr:?}")),
            Err(e) if docker_accepted => {
                failures.push(format!("{name}: docker accepted it; berth: {e}"))
            }
            Err(e) => {
                if !stderr.ends_with(&format!("{}\n", e.message())) {
                    failures.push(format!(
                        "{name}:\n  berth:  {:?}\n  docker: {stderr:?}",
                        e.message()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
