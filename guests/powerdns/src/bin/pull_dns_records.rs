//! Pull step: imports the RRsets of every `DnsZone` that were created in
//! PowerDNS directly (through its API or `pdnsutil`) as `DnsRecord` objects
//! with `no_sync` (sync steps leave them alone), keeps their content in line
//! with PowerDNS, and deletes them when their RRset is gone.
//!
//! An RRset counts as represented when any `DnsRecord` of the zone names it,
//! under its current name and type or under the ones last written to
//! PowerDNS, so records being renamed are not imported twice.
use std::collections::{BTreeMap, BTreeSet};

use powerdns::api::PowerDns;
use powerdns::models::contents;
use powerdns::names::{record_fqdn, relative_name, zone_fqdn};
use syncplane_sdk::event::PullStep;
use syncplane_sdk::event::declarative::{self, Found};
use syncplane_sdk::log;

struct PullDnsRecords;

impl PullStep for PullDnsRecords {
    fn pull_records() -> Result<(), String> {
        let api = PowerDns::from_settings()?;
        for zone in declarative::find("DnsZone", "deleted", false.into())? {
            let zone_name = zone_fqdn(&text(&zone, "name"));
            // A zone not created in PowerDNS yet has nothing to import.
            let Some(remote) = api.zone(&zone_name)? else {
                continue;
            };
            let zone_id = i64::try_from(zone.id)
                .map_err(|_| format!("zone id {} is out of range", zone.id))?;
            let local = declarative::find("DnsRecord", "zone_id", zone_id.into())?;

            let mut represented = BTreeSet::new();
            let mut imported: BTreeMap<(String, String), &Found> = BTreeMap::new();
            for record in &local {
                let key = (
                    record_fqdn(&text(record, "name"), &zone_name),
                    text(record, "type").to_ascii_uppercase(),
                );
                if flag(record, "no_sync") {
                    imported.insert(key.clone(), record);
                }
                represented.insert(key);
                let written = (text(record, "backend_name"), text(record, "backend_type"));
                if !written.0.is_empty() {
                    represented.insert(written);
                }
            }

            let mut in_powerdns = BTreeSet::new();
            for rrset in &remote.rrsets {
                let key = (
                    rrset.name.to_ascii_lowercase(),
                    rrset.record_type.to_ascii_uppercase(),
                );
                let records = rrset.enabled_contents();
                if records.is_empty() {
                    continue;
                }
                in_powerdns.insert(key.clone());
                let content = records.join("\n");
                let ttl = i64::from(rrset.ttl);
                if let Some(existing) = imported.get(&key) {
                    if contents(&text(existing, "content")) != records
                        || int(existing, "ttl") != ttl
                    {
                        declarative::update(
                            existing.id,
                            &[("content", content.into()), ("ttl", ttl.into())],
                            false,
                        )?;
                        log::info!("updated imported {} {}", key.0, key.1);
                    }
                } else if !represented.contains(&key) {
                    let id = declarative::create(
                        "DnsRecord",
                        &[
                            ("zone_id", zone_id.into()),
                            ("name", relative_name(&key.0, &zone_name).into()),
                            ("type", key.1.as_str().into()),
                            ("ttl", ttl.into()),
                            ("content", content.into()),
                            ("no_sync", true.into()),
                        ],
                    )?;
                    log::info!("imported {} {} as DnsRecord {}", key.0, key.1, id);
                }
            }
            for (key, record) in &imported {
                if !in_powerdns.contains(key) {
                    declarative::delete(record.id)?;
                    log::info!(
                        "{} {} is gone from PowerDNS; deleted its imported record",
                        key.0,
                        key.1
                    );
                }
            }
        }
        Ok(())
    }
}

fn text(found: &Found, field: &str) -> String {
    found
        .fields
        .get::<Option<String>>(field)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn int(found: &Found, field: &str) -> i64 {
    found.fields.get::<i64>(field).unwrap_or(-1)
}

fn flag(found: &Found, field: &str) -> bool {
    found.fields.get::<bool>(field).unwrap_or(false)
}

syncplane_sdk::export_pull_step!(PullDnsRecords);
