//! Model policy for `DnsZone`: a zone gets `DnsRecord`s for its SOA and NS
//! records (the first name server as the SOA's primary, `hostmaster.<zone>`
//! as its contact); when `nameservers` changes, the NS record (and the SOA's
//! primary) follow; a deleted zone's records are deleted.
use powerdns::models::{DnsZone, contents};
use powerdns::names::{nameservers, record_fqdn, zone_fqdn};
use syncplane_sdk::event::ModelPolicy;
use syncplane_sdk::event::declarative::{self, Found};
use syncplane_sdk::prelude::*;

/// Refresh, retry, expire and minimum TTL of a new zone's SOA; PowerDNS
/// sets the serial (`soa_edit_api`).
const SOA_TIMERS: &str = "10800 3600 604800 3600";
const DEFAULT_TTL: i64 = 3600;

struct DnsZonePolicy;

impl ModelPolicy for DnsZonePolicy {
    type Model = DnsZone;

    fn handle_create(zone: &Object<DnsZone>) -> Result<(), String> {
        Self::handle_update(zone)
    }

    fn handle_update(zone: &Object<DnsZone>) -> Result<(), String> {
        let zone_name = zone_fqdn(&zone.name);
        let servers = nameservers(zone.nameservers.as_deref(), &zone_name);
        let records = declarative::find("DnsRecord", "zone_id", zone_id(zone)?.into())?;
        let apex = |record_type: &str| {
            records.iter().find(|r| {
                text(r, "type").eq_ignore_ascii_case(record_type)
                    && record_fqdn(&text(r, "name"), &zone_name) == zone_name
            })
        };

        let primary = &servers[0];
        let soa = format!("{primary} hostmaster.{zone_name} 0 {SOA_TIMERS}");
        match apex("SOA") {
            None => create(zone, "SOA", &soa)?,
            Some(existing) if !imported(existing) => {
                let current = text(existing, "content");
                if current.split_whitespace().next() != Some(primary.as_str()) {
                    let rest: Vec<&str> = current.split_whitespace().skip(1).collect();
                    let updated = if rest.is_empty() {
                        soa
                    } else {
                        format!("{primary} {}", rest.join(" "))
                    };
                    declarative::update(existing.id, &[("content", updated.into())], false)?;
                }
            }
            Some(_) => {}
        }

        let ns = servers.join("\n");
        match apex("NS") {
            None => create(zone, "NS", &ns)?,
            Some(existing)
                if !imported(existing) && contents(&text(existing, "content")) != servers =>
            {
                declarative::update(existing.id, &[("content", ns.into())], false)?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn handle_delete(zone: &Object<DnsZone>) -> Result<(), String> {
        let records = declarative::find("DnsRecord", "zone_id", zone_id(zone)?.into())?;
        for record in &records {
            declarative::delete(record.id)?;
        }
        log::info!(
            "deleted the {} records of zone {}",
            records.len(),
            zone.name
        );
        Ok(())
    }
}

fn zone_id(zone: &Object<DnsZone>) -> Result<i64, String> {
    i64::try_from(zone.id).map_err(|_| format!("zone id {} is out of range", zone.id))
}

fn create(zone: &Object<DnsZone>, record_type: &str, content: &str) -> Result<(), String> {
    let id = declarative::create(
        "DnsRecord",
        &[
            ("zone_id", zone_id(zone)?.into()),
            ("name", "@".into()),
            ("type", record_type.into()),
            ("ttl", DEFAULT_TTL.into()),
            ("content", content.into()),
        ],
    )?;
    log::info!(
        "zone {} gets its {} record ({})",
        zone.name,
        record_type,
        id
    );
    Ok(())
}

fn text(record: &Found, field: &str) -> String {
    record.fields.get::<String>(field).unwrap_or_default()
}

/// Whether the pull step imported it (then PowerDNS, not this policy, owns it).
fn imported(record: &Found) -> bool {
    record.fields.get::<bool>("no_sync").unwrap_or(false)
}

syncplane_sdk::export_model_policy!(DnsZonePolicy);
