//! The services a package depends on, pulled from the registry it came
//! from: each dependency `onos = "^2.1"` of `HOST/acme/vtn` is looked up
//! as `HOST/acme/onos`, at the highest version it accepts, verified as any
//! pull. Installed services are never upgraded implicitly: one whose
//! version does not meet a requirement is an error naming the upgrade that
//! would.

use std::collections::{BTreeMap, VecDeque};

use syncplane_platform::{ServicePackage, accepts, best_match};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::pull::{PullOptions, Pulled, pull, versions};
use crate::reference::Reference;

/// At most this many packages are pulled for one install's dependencies.
pub const MAX_DEPENDENCIES: usize = 32;

/// Pulls every dependency of `package` (pulled from `from`), and theirs,
/// that `installed` (service name to version) does not have, in the order
/// found; the installer orders them.
///
/// # Errors
///
/// [`Error::Dependency`] for an installed version that does not meet a
/// requirement (naming the upgrade that would), a repository with no
/// matching version, or more than [`MAX_DEPENDENCIES`]; and any pull's.
pub async fn pull_dependencies(
    client: &Client,
    from: &Reference,
    package: &ServicePackage,
    installed: &BTreeMap<String, String>,
    options: PullOptions,
) -> Result<Vec<Pulled>> {
    let mut pulled: Vec<Pulled> = Vec::new();
    let mut queue: VecDeque<(String, BTreeMap<String, String>)> = VecDeque::new();
    queue.push_back((describe(package), package.manifest.dependencies.clone()));
    while let Some((needer, dependencies)) = queue.pop_front() {
        for (dependency, requirement) in dependencies {
            let problem = |problem: String| Error::Dependency {
                package: needer.clone(),
                dependency: dependency.clone(),
                requirement: requirement.clone(),
                problem,
            };
            let sibling = sibling(from, &dependency);
            semver::VersionReq::parse(&requirement)
                .map_err(|e| problem(format!("not a version requirement ({e})")))?;
            if let Some(version) = installed.get(&dependency) {
                if !accepts(&requirement, version) {
                    let available = versions(client, &sibling).await.unwrap_or_default();
                    let hint = match best_match(&requirement, available.iter().map(String::as_str))
                    {
                        Ok(Some(best)) => format!(
                            "upgrade it first: `syncplane service upgrade {}`",
                            sibling.with_tag(best)
                        ),
                        _ => format!(
                            "upgrade it to a version matching {requirement} first; {sibling} has none"
                        ),
                    };
                    return Err(problem(format!(
                        "{version} is installed and installed services are never upgraded implicitly; {hint}"
                    )));
                }
                continue;
            }
            if let Some(already) = pulled
                .iter()
                .find(|p| p.packed.package.manifest.service.name == dependency)
            {
                let version = &already.packed.package.manifest.service.version;
                if accepts(&requirement, version) {
                    continue;
                }
                return Err(problem(format!(
                    "{version} is pulled for another dependency and does not match"
                )));
            }
            let available = versions(client, &sibling).await?;
            let best = best_match(&requirement, available.iter().map(String::as_str))
                .map_err(|e| problem(e.to_string()))?
                .ok_or_else(|| {
                    problem(format!(
                        "{sibling} has no matching version (it has {})",
                        if available.is_empty() {
                            "none".to_owned()
                        } else {
                            available.join(", ")
                        }
                    ))
                })?;
            if pulled.len() == MAX_DEPENDENCIES {
                return Err(problem(format!(
                    "more than {MAX_DEPENDENCIES} dependencies to pull for one install"
                )));
            }
            let one = pull(client, &sibling.with_tag(best), options).await?;
            let package = &one.packed.package;
            if package.manifest.service.name != dependency {
                return Err(problem(format!(
                    "{} holds the service `{}`",
                    one.reference, package.manifest.service.name
                )));
            }
            tracing::info!(reference = %one.reference, "pulled a dependency");
            queue.push_back((describe(package), package.manifest.dependencies.clone()));
            pulled.push(one);
        }
    }
    Ok(pulled)
}

/// `NAME` next to `from`'s repository: `HOST/acme/vtn` -> `HOST/acme/NAME`.
fn sibling(from: &Reference, name: &str) -> Reference {
    let repository = match from.repository.rsplit_once('/') {
        Some((parent, _)) => format!("{parent}/{name}"),
        None => name.to_owned(),
    };
    Reference {
        registry: from.registry.clone(),
        repository,
        tag: None,
        digest: None,
    }
}

fn describe(package: &ServicePackage) -> String {
    format!(
        "{} {}",
        package.manifest.service.name, package.manifest.service.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_lives_beside_the_package() {
        let from = Reference::parse("127.0.0.1:5000/acme/vtn:1.0.0").expect("parse");
        assert_eq!(
            sibling(&from, "onos").to_string(),
            "127.0.0.1:5000/acme/onos"
        );
        let top = Reference::parse("127.0.0.1:5000/vtn").expect("parse");
        assert_eq!(sibling(&top, "onos").to_string(), "127.0.0.1:5000/onos");
    }
}
