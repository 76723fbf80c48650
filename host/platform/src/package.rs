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
