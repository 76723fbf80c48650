//! Sync step for `DnsZone`: creates the zone in PowerDNS when it is
//! missing, changes its kind when it differs, and deletes it when the
//! object is deleted. Its records are `DnsRecord`s, synced after it.
use powerdns::api::PowerDns;
use powerdns::models::DnsZone;
use powerdns::names::{nameservers, zone_fqdn};
use syncplane_sdk::prelude::*;

struct SyncDnsZone;

impl SyncStep for SyncDnsZone {
    type Model = DnsZone;

    fn sync_record(zone: &Object<DnsZone>) -> StepResult {
        let api = PowerDns::from_settings()?;
        let name = zone_fqdn(&zone.name);
        let synced = match api.zone(&name)? {
            Some(existing) => {
                if !existing.kind.eq_ignore_ascii_case(&zone.kind) {
                    api.set_kind(&name, &zone.kind)?;
                    log::info!(
                        "zone {} changed from {} to {}",
                        name,
                        existing.kind,
                        zone.kind
                    );
                }
                existing
            }
            None => {
                let created = api.create_zone(
                    &name,
                    &zone.kind,
                    &nameservers(zone.nameservers.as_deref(), &name),
                )?;
                log::info!("zone {} created", name);
                created
            }
        };
        let serial = i64::try_from(synced.serial).unwrap_or(i64::MAX);
        zone.set_feedback(&[("backend_serial", serial.into())])?;
        Ok(())
    }

    fn delete_record(zone: &Object<DnsZone>) -> StepResult {
        let api = PowerDns::from_settings()?;
        let name = zone_fqdn(&zone.name);
        api.delete_zone(&name)?;
        log::info!("zone {} deleted", name);
        Ok(())
    }
}

export_sync_step!(SyncDnsZone);
