//! The parts of the PowerDNS Authoritative HTTP API the steps use
//! (`/api/v1/servers/<server_id>/zones`).
//!
//! Where it is: config `api_url` (e.g. `http://127.0.0.1:8081`), config
//! `server_id` (default `localhost`); the key sent as `X-API-Key`: secret
//! `api_key`.

use serde::{Deserialize, Serialize};
use serde_json::json;
use syncplane_sdk::SettingError;
use syncplane_sdk::http::{HttpError, Request, Response};

/// How long one API call may take before the step gives up on it.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A client for one PowerDNS server.
#[derive(Clone)]
pub struct PowerDns {
    zones_url: String,
    key: String,
}

impl std::fmt::Debug for PowerDns {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDns")
            .field("zones_url", &self.zones_url)
            .finish_non_exhaustive()
    }
}

/// A zone as the API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Zone {
    /// The absolute zone name.
    pub name: String,
    /// The zone kind.
    pub kind: String,
    /// The SOA serial.
    #[serde(default)]
    pub serial: u64,
    /// Its RRsets (present when one zone is read).
    #[serde(default)]
    pub rrsets: Vec<Rrset>,
}

/// One RRset as the API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Rrset {
    /// The absolute owner name.
    pub name: String,
    /// The record type.
    #[serde(rename = "type")]
    pub record_type: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// The records.
    pub records: Vec<Record>,
}

/// One record of an RRset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The record data.
    pub content: String,
    /// Whether PowerDNS leaves it out of answers.
    #[serde(default)]
    pub disabled: bool,
}

impl Rrset {
    /// The contents of its enabled records.
    pub fn enabled_contents(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| !r.disabled)
            .map(|r| r.content.clone())
            .collect()
    }
}

/// One change of a `PATCH` of a zone's RRsets.
#[derive(Debug, Clone, Serialize)]
pub struct RrsetChange {
    name: String,
    #[serde(rename = "type")]
    record_type: String,
    changetype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    records: Vec<Record>,
}

impl RrsetChange {
    /// Replaces the RRset `name`/`record_type` with `contents`.
    pub fn replace(name: &str, record_type: &str, ttl: u32, contents: &[String]) -> Self {
        RrsetChange {
            name: name.to_owned(),
            record_type: record_type.to_owned(),
            changetype: "REPLACE",
            ttl: Some(ttl),
            records: contents
                .iter()
                .map(|c| Record {
                    content: c.clone(),
                    disabled: false,
                })
                .collect(),
        }
    }

    /// Deletes the RRset `name`/`record_type` (nothing when it is absent).
    pub fn delete(name: &str, record_type: &str) -> Self {
        RrsetChange {
            name: name.to_owned(),
            record_type: record_type.to_owned(),
            changetype: "DELETE",
            ttl: None,
            records: Vec::new(),
        }
    }
}

impl PowerDns {
    /// The client for the server the operator configured.
    ///
    /// # Errors
    ///
    /// When `api_url` or `api_key` is not set.
    pub fn from_settings() -> Result<Self, SettingError> {
        let api_url = syncplane_sdk::require_config("api_url")?;
        let server_id =
            syncplane_sdk::config("server_id")?.unwrap_or_else(|| "localhost".to_owned());
        let key = syncplane_sdk::secret("api_key")?;
        Ok(Self::new(&api_url, &server_id, key))
    }

    /// A client for `api_url` (e.g. `http://127.0.0.1:8081`) and server
    /// `server_id` (usually `localhost`).
    pub fn new(api_url: &str, server_id: &str, key: String) -> Self {
        let zones_url = format!(
            "{}/api/v1/servers/{server_id}/zones",
            api_url.trim_end_matches('/')
        );
        PowerDns { zones_url, key }
    }

    fn request(&self, request: Request) -> Result<Response, HttpError> {
        request
            .header("X-API-Key", &self.key)
            .header("accept", "application/json")
            .timeout(TIMEOUT)
            .send()
    }

    fn zone_url(&self, zone: &str) -> String {
        format!("{}/{zone}", self.zones_url)
    }

    /// The zone `zone` (absolute name) with its RRsets, or `None` when
    /// PowerDNS does not have it.
    ///
    /// # Errors
    ///
    /// When PowerDNS cannot be reached or answers with an error.
    pub fn zone(&self, zone: &str) -> Result<Option<Zone>, HttpError> {
        let response = self.request(Request::get(self.zone_url(zone)))?;
        // PowerDNS 4.7 says 404; older versions 422 "Could not find domain".
        if response.status == 404
            || (response.status == 422
                && response.text().is_ok_and(|t| t.contains("Could not find")))
        {
            return Ok(None);
        }
        Ok(Some(response.error_for_status()?.json()?))
    }

    /// Creates the zone `zone` of `kind` with NS records for `nameservers`.
    ///
    /// # Errors
    ///
    /// When PowerDNS cannot be reached or refuses (409 when the zone exists).
    pub fn create_zone(
        &self,
        zone: &str,
        kind: &str,
        nameservers: &[String],
    ) -> Result<Zone, HttpError> {
        let body = json!({ "name": zone, "kind": kind, "nameservers": nameservers });
        self.request(Request::post(self.zones_url.clone()).json(&body))?
            .error_for_status()?
            .json()
    }

    /// Changes the kind of the zone `zone`.
    ///
    /// # Errors
    ///
    /// When PowerDNS cannot be reached or refuses.
    pub fn set_kind(&self, zone: &str, kind: &str) -> Result<(), HttpError> {
        self.request(Request::put(self.zone_url(zone)).json(&json!({ "kind": kind })))?
            .error_for_status()?;
        Ok(())
    }

    /// Deletes the zone `zone`; a zone PowerDNS does not have is no error.
    ///
    /// # Errors
    ///
    /// When PowerDNS cannot be reached or refuses.
    pub fn delete_zone(&self, zone: &str) -> Result<(), HttpError> {
        let response = self.request(Request::delete(self.zone_url(zone)))?;
        if response.status == 404 {
            return Ok(());
        }
        response.error_for_status()?;
        Ok(())
    }

    /// Applies `changes` to the RRsets of the zone `zone`, atomically.
    ///
    /// # Errors
    ///
    /// When PowerDNS cannot be reached or refuses (404 for a zone it does
    /// not have, 422 for bad record data).
    pub fn patch(&self, zone: &str, changes: &[RrsetChange]) -> Result<(), HttpError> {
        let body = json!({ "rrsets": changes });
        self.request(Request::patch(self.zone_url(zone)).json(&body))?
            .error_for_status()?;
        Ok(())
    }
}
