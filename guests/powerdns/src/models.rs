//! `DnsZone` and `DnsRecord` from `models/powerdns.xproto`.

use syncplane_sdk::{FieldError, Fields, Model, model};

model! {
    /// A zone.
    pub struct DnsZone {
        /// The zone name as the user wrote it (`example.org`).
        pub name: String,
        /// The PowerDNS zone kind (`Native`, `Master`, `Slave`).
        pub kind: String,
        /// Comma-separated name server host names.
        pub nameservers: Option<String>,
    }
}

/// One RRset of a zone. Declared by hand because its field `type` is a
/// Rust keyword.
#[derive(Debug, Clone)]
pub struct DnsRecord {
    /// The id of the zone it belongs to.
    pub zone_id: i64,
    /// The owner name as the user wrote it (`www`, `@`, `host.example.org.`).
    pub name: String,
    /// The record type (`A`, `MX`, ...), as written.
    pub record_type: String,
    /// Time to live in seconds.
    pub ttl: i64,
    /// The record data, one record per line.
    pub content: String,
    /// The absolute name last written to PowerDNS (feedback).
    pub backend_name: Option<String>,
    /// The type last written to PowerDNS (feedback).
    pub backend_type: Option<String>,
}

impl Model for DnsRecord {
    const NAME: &'static str = "DnsRecord";

    fn from_fields(fields: &Fields) -> Result<Self, FieldError> {
        Ok(DnsRecord {
            zone_id: fields.get("zone_id")?,
            name: fields.get("name")?,
            record_type: fields.get("type")?,
            ttl: fields.get("ttl")?,
            content: fields.get("content")?,
            backend_name: fields.get("backend_name")?,
            backend_type: fields.get("backend_type")?,
        })
    }
}

impl DnsRecord {
    /// The records of the RRset: the non-empty lines of `content`, trimmed.
    pub fn contents(&self) -> Vec<String> {
        contents(&self.content)
    }
}

/// The non-empty lines of a `content` field, trimmed.
pub fn contents(content: &str) -> Vec<String> {
    content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
