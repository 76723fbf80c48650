//! A service package: manifest, model sources and compiled components,
//! as sent to a host and stored by it.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};

/// Everything needed to install a service, self-contained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePackage {
    /// The manifest.
    pub manifest: Manifest,
    /// xproto sources by their path in the manifest.
    pub xproto: BTreeMap<String, String>,
    /// The model-deps file's text, when the manifest names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_deps: Option<String>,
    /// Component bytes by step name (base64 in JSON).
    #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub components: BTreeMap<String, Vec<u8>>,
}

fn to_base64<S: Serializer>(map: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    let encoded: BTreeMap<&String, String> =
        map.iter().map(|(k, v)| (k, STANDARD.encode(v))).collect();
    encoded.serialize(s)
}

fn from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
    let encoded = BTreeMap::<String, String>::deserialize(d)?;
    encoded
        .into_iter()
        .map(|(k, v)| {
            STANDARD
                .decode(v.as_bytes())
                .map(|bytes| (k.clone(), bytes))
                .map_err(|e| {
                    serde::de::Error::custom(format!("component `{k}` is not valid base64: {e}"))
                })
        })
        .collect()
}

impl ServicePackage {
    /// The dependencies `(model, depends_on)` of the package's model-deps
    /// file; none without one.
    ///
    /// # Errors
    ///
    /// [`Error::Package`] for text that is not the model-deps format.
    pub fn model_dependencies(&self) -> Result<Vec<(String, String)>> {
        let Some(text) = &self.model_deps else {
            return Ok(Vec::new());
        };
        let name = self
            .manifest
            .service
            .model_deps
            .as_deref()
            .unwrap_or("model-deps");
        let parsed: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(text).map_err(|e| {
            Error::Package(format!(
                "{name}:{}:{}: not a model-deps file ({{\"Model\": [[\"Dependency\", \"field\", \"reverse\"]]}}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        let mut deps = Vec::new();
        for (model, entries) in parsed {
            for entry in entries {
                let Some(dependency) = entry.first() else {
                    return Err(Error::Package(format!(
                        "{name}: an entry of `{model}` is empty"
                    )));
                };
                deps.push((model.clone(), dependency.clone()));
            }
        }
        Ok(deps)
    }

    /// The component of the step `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Package`] when the package lacks it.
    pub fn component(&self, name: &str) -> Result<&[u8]> {
        self.components.get(name).map(Vec::as_slice).ok_or_else(|| {
            Error::Package(format!(
                "the component of step `{name}` is not in the package"
            ))
        })
    }

    /// Reads a service directory: its manifest, the xproto files it names and
    /// the components of its steps (which must already be built).
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] for a bad manifest, [`Error::Read`] for a missing file.
    pub fn from_dir(dir: &Path) -> Result<ServicePackage> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = read_text(&manifest_path)?;
        let manifest = Manifest::parse(&manifest_path.display().to_string(), &text)?;
        let mut xproto = BTreeMap::new();
        for file in &manifest.service.xproto {
            xproto.insert(file.clone(), read_text(&dir.join(file))?);
        }
        let model_deps = match &manifest.service.model_deps {
            Some(path) => Some(read_text(&dir.join(path))?),
            None => None,
        };
        let mut components = BTreeMap::new();
        let steps = manifest
            .sync_steps
            .iter()
            .map(|s| (&s.name, &s.component))
            .chain(manifest.event_steps.iter().map(|s| (&s.name, &s.component)))
            .chain(manifest.pull_steps.iter().map(|s| (&s.name, &s.component)))
            .chain(
                manifest
                    .model_policies
                    .iter()
                    .map(|s| (&s.name, &s.component)),
            );
        for (name, component) in steps {
            let path = dir.join(component);
            let bytes = std::fs::read(&path).map_err(|source| Error::Read {
                path: path.display().to_string(),
                source,
            })?;
            components.insert(name.clone(), bytes);
        }
        Ok(ServicePackage {
            manifest,
            xproto,
            model_deps,
            components,
        })
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(deps: Option<&str>) -> ServicePackage {
        let manifest = Manifest::parse(
            "m.toml",
            "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\nmodel_deps = \"deps.json\"\n",
        )
        .expect("manifest");
        ServicePackage {
            manifest,
            xproto: BTreeMap::new(),
            model_deps: deps.map(str::to_owned),
            components: BTreeMap::new(),
        }
    }

    #[test]
    fn a_model_deps_file_reads_in_the_original_format() {
        let deps = package(Some(r#"{"User": [["Site", "site", "users"]], "Site": []}"#))
            .model_dependencies()
            .expect("deps");
        assert_eq!(deps, [("User".to_owned(), "Site".to_owned())]);
        assert!(package(None).model_dependencies().expect("none").is_empty());
        let bad = package(Some("{\"User\": 3}"))
            .model_dependencies()
            .expect_err("bad");
        assert!(bad.to_string().contains("deps.json:1:"), "{bad}");
    }
}
