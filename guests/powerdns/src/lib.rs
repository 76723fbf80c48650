//! The PowerDNS service: DNS zones and records in PowerDNS Authoritative,
//! kept in line with the `DnsZone` and `DnsRecord` models through PowerDNS's
//! HTTP API.
//!
//! - [`models`]: the two models as Rust types;
//! - [`names`]: turning what users write (`example.org`, `www`, `@`) into
//!   the absolute names PowerDNS uses, and back;
//! - [`api`]: a small client for the parts of the API the steps use.
//!
//! The components are in `src/bin/`: `sync_dns_zone`, `sync_dns_record`,
//! `dns_zone_policy` and `pull_dns_records`.

pub mod api;
pub mod models;
pub mod names;
