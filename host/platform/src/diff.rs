//! What changed from one packed service to another (`service diff A B`),
//! or from an installed service to the package offered to replace it (the
//! upgrade's plan): files by digest, grants, models and fields, WIT
//! imports, signers, dependencies.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use syncplane_xproto::FieldType;

use crate::archive::PackedService;
use crate::error::Result;
use crate::package::ServicePackage;

/// Items added, removed and changed in one respect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// In the second package only.
    pub added: Vec<String>,
    /// In the first package only.
    pub removed: Vec<String>,
    /// In both, but different (`what: old -> new`).
    pub changed: Vec<String>,
}

impl Changes {
    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Items of `old` and `new` by key, compared by value.
    fn of(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Changes {
        let mut changes = Changes::default();
        for (key, value) in new {
            match old.get(key) {
                None => changes.added.push(key.clone()),
                Some(before) if before != value => {
                    changes.changed.push(format!("{key}: {before} -> {value}"));
                }
                Some(_) => {}
            }
        }
        changes.removed = old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        changes
    }

    /// Items of two sets.
    fn of_sets(old: &BTreeSet<String>, new: &BTreeSet<String>) -> Changes {
        Changes {
            added: new.difference(old).cloned().collect(),
            removed: old.difference(new).cloned().collect(),
            changed: Vec::new(),
        }
    }
}

/// One side of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffSide {
    /// The package's full name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its digest.
    pub digest: String,
}

/// What changed from one packed service to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    /// The first package.
    pub from: DiffSide,
    /// The second.
    pub to: DiffSide,
    /// Files by path; changed when their digest differs.
    pub files: Changes,
    /// Grants: `outbound_http ORIGIN`, `read PATTERN`, `write PATTERN`,
    /// `config KEY`, `secret KEY`.
    pub grants: Changes,
    /// Models (`app.Model`) and fields (`app.Model.field`), a field changed
    /// when its type does.
    pub models: Changes,
    /// Each component's imports, `step: import`.
    pub imports: Changes,
    /// The keys that signed.
    pub signers: Changes,
    /// The services it depends on (`name: requirement`), and the
    /// syncplane versions it requires (as `syncplane`).
    pub dependencies: Changes,
}

/// One package as a diff compares it.
pub(crate) struct Compared<'a> {
    pub(crate) side: DiffSide,
    pub(crate) package: &'a ServicePackage,
    /// Files by path, valued by a short digest.
    pub(crate) files: BTreeMap<String, String>,
    pub(crate) signers: BTreeSet<String>,
}

impl<'a> Compared<'a> {
    /// A packed file: its files as packed.
    pub(crate) fn packed(packed: &'a PackedService) -> Self {
        Compared {
            side: side(packed),
            package: &packed.package,
            files: packed
                .files
                .iter()
                .map(|f| (f.path.clone(), short(&f.sha256)))
                .collect(),
            signers: packed
                .signatures
                .iter()
                .map(|s| s.key.to_string())
                .collect(),
        }
    }

    /// A package as a host keeps it (no packed file at hand): its xproto,
    /// model-deps and component files, under the paths its manifest
    /// gives them; `digest` and `signers` from where it came from.
    pub(crate) fn package(
        package: &'a ServicePackage,
        digest: Option<&str>,
        signers: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut files: BTreeMap<String, String> = package
            .xproto
            .iter()
            .map(|(path, text)| (path.clone(), short(&sha256(text.as_bytes()))))
            .collect();
        if let (Some(path), Some(text)) =
            (&package.manifest.service.model_deps, &package.model_deps)
        {
            files.insert(path.clone(), short(&sha256(text.as_bytes())));
        }
        let paths: BTreeMap<&String, &String> = package.manifest.step_components().collect();
        for (step, bytes) in &package.components {
            let path = paths.get(step).map_or(step, |p| *p);
            files.insert(path.clone(), short(&sha256(bytes)));
        }
        Compared {
            side: DiffSide {
                name: package.manifest.full_name(),
                version: package.manifest.service.version.clone(),
                digest: digest.unwrap_or("not packed").to_owned(),
            },
            package,
            files,
            signers: signers.into_iter().collect(),
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    syncplane_runtime::cache::digest(bytes)
}

fn short(hex: &str) -> String {
    format!("sha256:{}", &hex[..hex.len().min(16)])
}

impl PackageDiff {
    /// Compares `from` with `to`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Models`] when an xproto file of either does not
    /// parse.
    pub fn between(from: &PackedService, to: &PackedService) -> Result<PackageDiff> {
        Self::compare(Compared::packed(from), Compared::packed(to))
    }

    /// Compares two packages however they came.
    pub(crate) fn compare(from: Compared<'_>, to: Compared<'_>) -> Result<PackageDiff> {
        Ok(PackageDiff {
            files: Changes::of(&from.files, &to.files),
            grants: Changes::of_sets(&grants(from.package), &grants(to.package)),
            models: Changes::of(&models(from.package)?, &models(to.package)?),
            imports: Changes::of_sets(&imports(from.package), &imports(to.package)),
            signers: Changes::of_sets(&from.signers, &to.signers),
            dependencies: Changes::of(&dependencies(from.package), &dependencies(to.package)),
            from: from.side,
            to: to.side,
        })
    }

    /// Whether the second package asks for a grant the first did not.
    #[must_use]
    pub fn widens_grants(&self) -> bool {
        !self.grants.added.is_empty()
    }
}

fn side(packed: &PackedService) -> DiffSide {
    DiffSide {
        name: packed.package.manifest.full_name(),
        version: packed.package.manifest.service.version.clone(),
        digest: packed.digest.clone(),
    }
}

fn grants(package: &ServicePackage) -> BTreeSet<String> {
    grant_items(&package.manifest.capabilities)
}

/// Each grant as one item: `outbound_http ORIGIN`, `read PATTERN`,
/// `write PATTERN`, `config KEY`, `secret KEY`.
pub(crate) fn grant_items(grants: &syncplane_runtime::capability::Grants) -> BTreeSet<String> {
    let mut items = BTreeSet::new();
    items.extend(
        grants
            .outbound_http
            .iter()
            .map(|o| format!("outbound_http {o}")),
    );
    items.extend(grants.models.read.iter().map(|m| format!("read {m}")));
    items.extend(grants.models.write.iter().map(|m| format!("write {m}")));
    items.extend(grants.config.iter().map(|k| format!("config {k}")));
    items.extend(grants.secrets.iter().map(|k| format!("secret {k}")));
    items
}

fn models(package: &ServicePackage) -> Result<BTreeMap<String, String>> {
    let mut items = BTreeMap::new();
    for file in crate::resolve::parse_files(package)? {
        for model in &file.models {
            let name = format!("{}.{}", model.app_label, model.name);
            items.insert(name.clone(), "model".to_owned());
            for field in &model.fields {
                let ty = match &field.ty {
                    FieldType::Scalar { scalar } => format!("{scalar:?}").to_lowercase(),
                    FieldType::Link { target, .. } => format!("link to {target}"),
                };
                let repeated = if field.repeated { "repeated " } else { "" };
                items.insert(
                    format!("{name}.{}", field.name),
                    format!("{:?} {repeated}{ty}", field.modifier).to_lowercase(),
                );
            }
        }
    }
    Ok(items)
}

fn dependencies(package: &ServicePackage) -> BTreeMap<String, String> {
    let manifest = &package.manifest;
    let mut items = manifest.dependencies.clone();
    if let Some(requires) = &manifest.service.requires {
        items.insert("syncplane".to_owned(), requires.clone());
    }
    items
}

fn imports(package: &ServicePackage) -> BTreeSet<String> {
    package
        .imports()
        .into_iter()
        .flat_map(|(step, imports)| imports.into_iter().map(move |i| format!("{step}: {i}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::tests::service_dir;
    use crate::signing::SigningKey;

    #[test]
    fn a_diff_names_files_grants_models_and_signers() {
        let dir = service_dir();
        let (old, _) = PackedService::pack(dir.path()).expect("pack");
        let (_, old) = PackedService::sign(&old, &SigningKey::generate())
            .map(|(_, p, _)| ((), p))
            .expect("sign");
        let manifest = std::fs::read_to_string(dir.path().join("syncplane.toml")).expect("read");
        std::fs::write(
            dir.path().join("syncplane.toml"),
            format!(
                "{}\n[capabilities]\nsecrets = [\"token\"]\n[dependencies]\nonos = \"^2.1\"\n",
                manifest.replace("[service]\n", "[service]\nrequires = \">=0.1\"\n")
            ),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("models/tiny.xproto"),
            "option app_label = \"tiny\";\nmessage Tiny (XOSBase) { required int32 name = 1; optional string note = 2; }\n",
        )
        .expect("write");
        let (_, new) = PackedService::pack(dir.path()).expect("pack");
        let diff = PackageDiff::between(&old, &new).expect("diff");
        assert_eq!(diff.grants.added, ["secret token"]);
        assert!(diff.widens_grants());
        assert_eq!(diff.models.added, ["tiny.Tiny.note"]);
        assert_eq!(
            diff.models.changed,
            ["tiny.Tiny.name: required string -> required int"]
        );
        assert_eq!(diff.signers.removed.len(), 1);
        assert_eq!(diff.dependencies.added, ["onos", "syncplane"]);
        assert!(
            diff.files
                .changed
                .iter()
                .any(|c| c.starts_with("models/tiny.xproto: sha256:")),
            "{:?}",
            diff.files
        );
        let same = PackageDiff::between(&new, &new).expect("diff");
        assert!(same.files.is_empty() && same.grants.is_empty() && same.models.is_empty());
        // A package as a host keeps it compares alike, file by file.
        let kept = PackageDiff::compare(
            Compared::package(&old.package, Some(&old.digest), []),
            Compared::package(&new.package, None, []),
        )
        .expect("diff");
        assert_eq!(kept.files.changed.len(), 1, "{:?}", kept.files);
        assert!(kept.files.changed[0].starts_with("models/tiny.xproto: sha256:"));
        assert_eq!(kept.to.digest, "not packed");
        assert_eq!(kept.grants, diff.grants);
    }
}
