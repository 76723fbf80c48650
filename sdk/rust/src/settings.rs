//! Operator-set configuration values and secrets.
//!
//! A service declares the names it reads in its manifest; the operator sets
//! the values after install:
//!
//! ```toml
//! [capabilities]
//! config = ["api_url"]
//! secrets = ["api_key"]
//! ```
//!
//! ```sh
//! syncplane service config powerdns api_url=http://127.0.0.1:8081
//! syncplane service secret powerdns api_key < key.txt
//! ```

use std::fmt;

use crate::__private::syncplane::plugin::types::AccessError;
use crate::__private::syncplane::plugin::{config as config_host, secrets as secrets_host};
use crate::StepError;

/// Which kind of operator-set value a [`SettingError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// A configuration value (`[capabilities] config`).
    Config,
    /// A secret (`[capabilities] secrets`).
    Secret,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setting::Config => "config value",
            Setting::Secret => "secret",
        })
    }
}

/// Why reading a configuration value or a secret failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingErrorKind {
    /// The manifest does not declare the name, so the host refused to
    /// answer.
    Denied,
    /// The name is declared but the operator has not set a value.
    NotSet,
    /// The host found the request malformed (for example an empty name).
    Invalid,
}

/// A configuration value or a secret could not be read.
///
/// `?` turns it into [`StepError::Failed`] in a sync step and into a
/// `String` in policies, pull steps and event steps. The message names the
/// value but never contains a secret's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// Whether a config value or a secret was asked for.
    pub setting: Setting,
    /// The name the guest asked for.
    pub name: String,
    /// What went wrong.
    pub kind: SettingErrorKind,
    /// The host's explanation (empty for [`SettingErrorKind::NotSet`] from
    /// [`require_config`]).
    pub message: String,
}

impl SettingError {
    fn from_access(setting: Setting, name: &str, e: AccessError) -> Self {
        let (kind, message) = match e {
            AccessError::Denied(m) => (SettingErrorKind::Denied, m),
            AccessError::NotFound(m) => (SettingErrorKind::NotSet, m),
            AccessError::Invalid(m) => (SettingErrorKind::Invalid, m),
        };
        SettingError {
            setting,
            name: name.to_owned(),
            kind,
            message,
        }
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            setting,
            name,
            kind,
            message,
        } = self;
        match kind {
            SettingErrorKind::Denied => write!(f, "{setting} `{name}`: access denied")?,
            SettingErrorKind::NotSet => {
                let command = match setting {
                    Setting::Config => format!("syncplane service config SERVICE {name}=VALUE"),
                    Setting::Secret => format!("syncplane service secret SERVICE {name}"),
                };
                write!(
                    f,
                    "{setting} `{name}` is not set (the operator sets it with `{command}`)"
                )?;
            }
            SettingErrorKind::Invalid => write!(f, "{setting} `{name}`: invalid request")?,
        }
        if !message.is_empty() {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingError {}

impl From<SettingError> for StepError {
    fn from(e: SettingError) -> Self {
        StepError::Failed(e.to_string())
    }
}

impl From<SettingError> for String {
    fn from(e: SettingError) -> Self {
        e.to_string()
    }
}

/// The configuration value `name`, or `None` when the operator has not set
/// it.
///
/// ```no_run
/// # fn step() -> Result<(), syncplane_sdk::StepError> {
/// let zone_kind = syncplane_sdk::config("default_kind")?.unwrap_or_else(|| "Native".into());
/// # let _ = zone_kind; Ok(()) }
/// ```
///
/// # Errors
///
/// [`SettingErrorKind::Denied`] when the manifest's `[capabilities] config`
/// does not list `name`.
pub fn config(name: &str) -> Result<Option<String>, SettingError> {
    config_host::get(name).map_err(|e| SettingError::from_access(Setting::Config, name, e))
}

/// The configuration value `name`, which the service cannot work without.
///
/// ```no_run
/// # fn step() -> Result<(), syncplane_sdk::StepError> {
/// let api_url = syncplane_sdk::require_config("api_url")?;
/// # let _ = api_url; Ok(()) }
/// ```
///
/// # Errors
///
/// As [`config`], and [`SettingErrorKind::NotSet`] when the operator has
/// not set it.
pub fn require_config(name: &str) -> Result<String, SettingError> {
    config(name)?.ok_or_else(|| SettingError {
        setting: Setting::Config,
        name: name.to_owned(),
        kind: SettingErrorKind::NotSet,
        message: String::new(),
    })
}

/// The secret `name`.
///
/// The host redacts secret values from logs, statuses and errors, but only
/// as exact matches: do not log a secret, or something derived from it
/// (an encoding, a prefix), yourself.
///
/// ```no_run
/// # fn step() -> Result<(), syncplane_sdk::StepError> {
/// let key = syncplane_sdk::secret("api_key")?;
/// let request = syncplane_sdk::http::Request::get("http://127.0.0.1:8081/api/v1/servers")
///     .header("X-API-Key", &key);
/// # let _ = request; Ok(()) }
/// ```
///
/// # Errors
///
/// [`SettingErrorKind::Denied`] when the manifest's `[capabilities]
/// secrets` does not list `name` (a name another service declares is
/// denied too), [`SettingErrorKind::NotSet`] when the operator has not set
/// it.
pub fn secret(name: &str) -> Result<String, SettingError> {
    secrets_host::get(name).map_err(|e| SettingError::from_access(Setting::Secret, name, e))
}
