//! The order `berth stack deploy` creates services in: dependencies first
//! (`depends_on`), otherwise by name.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ComposeError;
use crate::model::{DependencyCondition, Project, Service};

/// Services in deploy order: each after what it depends on, ties by name.
/// A `service_healthy` dependency on a service without a healthcheck is
/// refused: it could never be waited for.
pub fn deploy_order(project: &Project) -> Result<Vec<String>, ComposeError> {
    for (name, service) in &project.services {
        for dep in &service.depends_on {
            let Some(target) = project.services.get(&dep.service) else {
                return Err(ComposeError::at(
                    format!(
                        "service \"{name}\" depends on undefined service \"{}\"",
                        dep.service
                    ),
                    dep.position.clone(),
                ));
            };
            // a file without a healthcheck may rely on the image's; only one
            // the file turns off can never become healthy
            if dep.condition == DependencyCondition::Healthy && healthcheck_disabled(target) {
                return Err(ComposeError::at(
                    format!("service \"{}\" has its healthcheck disabled", dep.service),
                    dep.position.clone(),
                ));
            }
        }
    }
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> = project
        .services
        .iter()
        .map(|(name, s)| {
            let deps = s.depends_on.iter().map(|d| d.service.as_str()).collect();
            (name.as_str(), deps)
        })
        .collect();
    let mut order = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let Some(next) = waiting
            .iter()
            .find(|(_, deps)| deps.is_empty())
            .map(|(name, _)| *name)
        else {
            return Err(cycle_error(project, &waiting));
        };
        waiting.remove(next);
        for deps in waiting.values_mut() {
            deps.remove(next);
        }
        order.push(next.to_string());
    }
    Ok(order)
}

/// A healthcheck the file sets and does not disable (`disable: true` or
/// `test: ["NONE"]`).
fn healthcheck_disabled(service: &Service) -> bool {
    service
        .healthcheck
        .as_ref()
        .is_some_and(|h| h.disable || h.test.first().map(String::as_str) == Some("NONE"))
}

/// Follows the first unmet dependency from the first waiting service until
/// a service repeats: "a -> b -> a".
fn cycle_error(project: &Project, waiting: &BTreeMap<&str, BTreeSet<&str>>) -> ComposeError {
    let mut path: Vec<&str> = Vec::new();
    let mut current = waiting.keys().next().copied().unwrap_or_default();
    while !path.contains(&current) {
        path.push(current);
        current = waiting
            .get(current)
            .and_then(|deps| deps.iter().next().copied())
            .unwrap_or_default();
    }
    let start = path.iter().position(|p| *p == current).unwrap_or(0);
    let mut cycle: Vec<&str> = path[start..].to_vec();
    cycle.push(current);
    let position = project.services.get(cycle[0]).and_then(|s| {
        s.depends_on
            .iter()
            .find(|d| cycle.get(1) == Some(&d.service.as_str()))
            .and_then(|d| d.position.clone())
    });
    ComposeError::at(
        format!("dependency cycle detected: {}", cycle.join(" -> ")),
        position,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dependency, Healthcheck};

    fn project(edges: &[(&str, &[&str])]) -> Project {
        let mut p = Project::default();
        for (name, deps) in edges {
            let service = Service {
                name: name.to_string(),
                depends_on: deps
                    .iter()
                    .map(|d| Dependency {
                        service: d.to_string(),
                        condition: DependencyCondition::Started,
                        position: None,
                    })
                    .collect(),
                ..Service::default()
            };
            p.services.insert(name.to_string(), service);
        }
        p
    }

    #[test]
    fn dependencies_first_then_names() {
        let p = project(&[
            ("web", &["db", "cache"]),
            ("db", &[]),
            ("cache", &["db"]),
            ("admin", &[]),
        ]);
        assert_eq!(
            deploy_order(&p).expect("order"),
            ["admin", "db", "cache", "web"]
        );
    }

    #[test]
    fn cycles_and_undefined_services_are_errors() {
        let p = project(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
        assert_eq!(
            deploy_order(&p).unwrap_err().message(),
            "dependency cycle detected: a -> b -> a"
        );
        let p = project(&[("a", &["a"])]);
        assert_eq!(
            deploy_order(&p).unwrap_err().message(),
            "dependency cycle detected: a -> a"
        );
        let p = project(&[("web", &["db"])]);
        assert_eq!(
            deploy_order(&p).unwrap_err().message(),
            "service \"web\" depends on undefined service \"db\""
        );
    }

    #[test]
    fn service_healthy_refuses_only_a_disabled_healthcheck() {
        let mut p = project(&[("web", &["db"]), ("db", &[])]);
        let web = p.services.get_mut("web").expect("web");
        web.depends_on[0].condition = DependencyCondition::Healthy;
        // none in the file: the image's may serve
        assert_eq!(deploy_order(&p).expect("order"), ["db", "web"]);
        let db = p.services.get_mut("db").expect("db");
        db.healthcheck = Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        });
        assert_eq!(
            deploy_order(&p).unwrap_err().message(),
            "service \"db\" has its healthcheck disabled"
        );
        let db = p.services.get_mut("db").expect("db");
        db.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            ..Healthcheck::default()
        });
        assert_eq!(deploy_order(&p).expect("order"), ["db", "web"]);
    }
}
