//! What a service needs besides its own package: `requires` (the
//! syncplane versions it runs on) and `[dependencies]` (services that must
//! be installed, each with the versions it works with). Checked at every
//! change, against the host as it is: installed services are never
//! upgraded implicitly, so an unmet dependency names the upgrade that
//! would meet it.

use std::collections::{BTreeMap, BTreeSet};

use semver::{Version, VersionReq};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::registry::Installed;

/// The version of syncplane this host is, which `requires` is matched
/// against.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One dependency of a package and whether the host meets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyStatus {
    /// The service depended on.
    pub service: String,
    /// The versions that do, e.g. `^2.1`.
    pub requirement: String,
    /// The version installed (or coming with the same install), if any.
    pub installed: Option<String>,
    /// Whether that version meets the requirement.
    pub met: bool,
    /// The version of it that comes with the same install, when it is not
    /// installed (set by whoever knows what comes along).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comes_with_install: Option<String>,
}

impl std::fmt::Display for DependencyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            service,
            requirement,
            ..
        } = self;
        match (&self.installed, self.met) {
            (Some(version), true) => write!(f, "{service} {requirement}: {version} is installed"),
            (None, _) => write!(
                f,
                "{service} {requirement}: not installed; install a version matching {requirement} first, or install from a registry that has one"
            ),
            (Some(version), false) => write!(
                f,
                "{service} {requirement}: {version} is installed; upgrade {service} to a version matching {requirement} first (installed services are never upgraded implicitly)"
            ),
        }
    }
}

/// Refuses a package whose `requires` this host's version does not meet.
///
/// # Errors
///
/// [`Error::HostVersion`].
pub(crate) fn check_requires(manifest: &Manifest) -> Result<()> {
    let Some(requires) = &manifest.service.requires else {
        return Ok(());
    };
    let host = Version::parse(HOST_VERSION).expect("the crate version is a semantic version");
    if requirement(requires)?.matches(&host) {
        return Ok(());
    }
    Err(Error::HostVersion {
        service: manifest.service.name.clone(),
        requires: requires.clone(),
        host: HOST_VERSION.to_owned(),
    })
}

/// Each dependency of `manifest` against `versions` (service name to
/// version: what is installed, and what comes with the same install).
pub(crate) fn statuses(
    manifest: &Manifest,
    versions: &BTreeMap<String, String>,
) -> Vec<DependencyStatus> {
    manifest
        .dependencies
        .iter()
        .map(|(service, text)| {
            let installed = versions.get(service).cloned();
            DependencyStatus {
                service: service.clone(),
                requirement: text.clone(),
                met: installed.as_deref().is_some_and(|v| accepts(text, v)),
                installed,
                comes_with_install: None,
            }
        })
        .collect()
}

/// Whether `version` meets the requirement `requirement`; `false` when
/// either does not parse.
pub fn accepts(requirement: &str, version: &str) -> bool {
    match (VersionReq::parse(requirement), Version::parse(version)) {
        (Ok(requirement), Ok(version)) => requirement.matches(&version),
        _ => false,
    }
}

/// Refuses `manifest` when a dependency is not installed at a version it
/// accepts.
///
/// # Errors
///
/// [`Error::Dependencies`] naming each unmet one.
pub(crate) fn check_met(manifest: &Manifest, versions: &BTreeMap<String, String>) -> Result<()> {
    let unmet: Vec<DependencyStatus> = statuses(manifest, versions)
        .into_iter()
        .filter(|s| !s.met)
        .collect();
    if unmet.is_empty() {
        return Ok(());
    }
    Err(Error::Dependencies {
        service: manifest.service.name.clone(),
        version: manifest.service.version.clone(),
        unmet,
    })
}

/// The installed services' versions by name.
pub(crate) fn versions_of(installed: &[Installed]) -> BTreeMap<String, String> {
    installed
        .iter()
        .map(|s| (s.info.name.clone(), s.info.version.clone()))
        .collect()
}

/// What stops `service` from becoming `version` (`None`: from going):
/// each other installed service that declares a dependency on it the new
/// version does not meet.
pub(crate) fn broken_dependents(
    service: &str,
    version: Option<&str>,
    others: &[Installed],
) -> Vec<String> {
    others
        .iter()
        .filter_map(|other| {
            let text = other.record.package.manifest.dependencies.get(service)?;
            let met = version.is_some_and(|v| accepts(text, v));
            (!met).then(|| {
                format!(
                    "service `{}` {} depends on {service} {text}",
                    other.info.name, other.info.version
                )
            })
        })
        .collect()
}

/// The order to install the packages of `manifests` in so each comes
/// after the ones of them it depends on; dependencies on services outside
/// the set are left to [`check_met`].
///
/// # Errors
///
/// [`Error::Package`] for a dependency cycle, naming it.
pub fn install_order(manifests: &[&Manifest]) -> Result<Vec<usize>> {
    let index: BTreeMap<&str, usize> = manifests
        .iter()
        .enumerate()
        .map(|(i, m)| (m.service.name.as_str(), i))
        .collect();
    let mut order = Vec::with_capacity(manifests.len());
    let mut done = BTreeSet::new();
    fn visit(
        i: usize,
        manifests: &[&Manifest],
        index: &BTreeMap<&str, usize>,
        path: &mut Vec<usize>,
        done: &mut BTreeSet<usize>,
        order: &mut Vec<usize>,
    ) -> Result<()> {
        if done.contains(&i) {
            return Ok(());
        }
        if let Some(start) = path.iter().position(|&p| p == i) {
            let cycle: Vec<&str> = path[start..]
                .iter()
                .chain(std::iter::once(&i))
                .map(|&p| manifests[p].service.name.as_str())
                .collect();
            return Err(Error::Package(format!(
                "the services depend on each other in a cycle: {}",
                cycle.join(" -> ")
            )));
        }
        path.push(i);
        for dependency in manifests[i].dependencies.keys() {
            if let Some(&d) = index.get(dependency.as_str()) {
                visit(d, manifests, index, path, done, order)?;
            }
        }
        path.pop();
        done.insert(i);
        order.push(i);
        Ok(())
    }
    for i in 0..manifests.len() {
        visit(i, manifests, &index, &mut Vec::new(), &mut done, &mut order)?;
    }
    Ok(order)
}

/// The best version in `versions` (tags of a registry repository) that
/// meets `requirement`: the highest, ignoring tags that are not versions.
pub fn best_match<'a>(
    requirement_text: &str,
    versions: impl IntoIterator<Item = &'a str>,
) -> Result<Option<&'a str>> {
    let wanted = requirement(requirement_text)?;
    Ok(versions
        .into_iter()
        .filter_map(|text| Version::parse(text).ok().map(|v| (v, text)))
        .filter(|(v, _)| wanted.matches(v))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, text)| text))
}

fn requirement(text: &str) -> Result<VersionReq> {
    VersionReq::parse(text)
        .map_err(|e| Error::Manifest(format!("{text:?} is not a version requirement ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::ServicePackage;

    fn package(name: &str, version: &str, dependencies: &[(&str, &str)]) -> ServicePackage {
        let mut text = format!(
            "manifest_version = 1\n[service]\nname = \"{name}\"\nversion = \"{version}\"\nxproto = []\n[dependencies]\n"
        );
        for (d, r) in dependencies {
            text.push_str(&format!("{d} = \"{r}\"\n"));
        }
        ServicePackage {
            manifest: toml::from_str(&text).expect("manifest"),
            xproto: BTreeMap::new(),
            model_deps: None,
            components: BTreeMap::new(),
        }
    }

    fn order_of(packages: &[ServicePackage]) -> Result<Vec<String>> {
        let manifests: Vec<&Manifest> = packages.iter().map(|p| &p.manifest).collect();
        Ok(install_order(&manifests)?
            .iter()
            .map(|&i| packages[i].manifest.service.name.clone())
            .collect())
    }

    #[test]
    fn dependencies_install_before_what_needs_them() {
        let packages = [
            package("vtn", "1.0.0", &[("onos", "^2.1"), ("fabric", "1")]),
            package("fabric", "1.2.0", &[("onos", ">=2")]),
            package("onos", "2.3.0", &[]),
        ];
        assert_eq!(
            order_of(&packages).expect("order"),
            ["onos", "fabric", "vtn"]
        );
    }

    #[test]
    fn a_cycle_is_named() {
        let packages = [
            package("a", "1.0.0", &[("b", "1")]),
            package("b", "1.0.0", &[("a", "1")]),
        ];
        let message = order_of(&packages).expect_err("cycle").to_string();
        assert!(message.contains("a -> b -> a"), "{message}");
    }

    #[test]
    fn statuses_say_what_is_missing_and_what_needs_an_upgrade() {
        let vtn = package(
            "vtn",
            "1.0.0",
            &[("onos", "^2.1"), ("fabric", "1"), ("ok", ">=1")],
        );
        let installed = BTreeMap::from([
            ("onos".to_owned(), "2.0.5".to_owned()),
            ("ok".to_owned(), "1.4.0".to_owned()),
        ]);
        let statuses = statuses(&vtn.manifest, &installed);
        let met: Vec<(&str, bool)> = statuses
            .iter()
            .map(|s| (s.service.as_str(), s.met))
            .collect();
        assert_eq!(met, [("fabric", false), ("ok", true), ("onos", false)]);
        let message = check_met(&vtn.manifest, &installed)
            .expect_err("unmet")
            .to_string();
        assert!(message.contains("fabric 1: not installed"), "{message}");
        assert!(
            message.contains("onos ^2.1: 2.0.5 is installed; upgrade onos"),
            "{message}"
        );
        assert!(!message.contains("ok >=1"), "{message}");
    }

    #[test]
    fn the_host_version_is_checked() {
        let mut p = package("x", "1.0.0", &[]);
        p.manifest.service.requires = Some(format!(">={HOST_VERSION}"));
        check_requires(&p.manifest).expect("this host meets its own version");
        p.manifest.service.requires = Some(">=99.0".into());
        let message = check_requires(&p.manifest)
            .expect_err("too old")
            .to_string();
        assert!(message.contains(">=99.0"), "{message}");
        assert!(message.contains(HOST_VERSION), "{message}");
    }

    #[test]
    fn the_best_match_is_the_highest_matching_version() {
        let tags = ["2.0.0", "2.1.0", "2.4.1", "3.0.0", "latest", "2.5.0-rc.1"];
        assert_eq!(best_match("^2.1", tags).expect("req"), Some("2.4.1"));
        assert_eq!(best_match("^4", tags).expect("req"), None);
        assert!(best_match("not a requirement", tags).is_err());
    }
}
