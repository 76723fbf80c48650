//! Sync step for `DnsRecord`: replaces the RRset (owner name and type) in
//! PowerDNS with the object's records, removing the RRset it wrote before
//! when the name or type changed; deletes the RRset when the object is
//! deleted.
use powerdns::api::{PowerDns, RrsetChange};
use powerdns::models::{DnsRecord, DnsZone};
use powerdns::names::{record_fqdn, zone_fqdn};
use syncplane_sdk::http::HttpError;
use syncplane_sdk::prelude::*;

struct SyncDnsRecord;

impl SyncStep for SyncDnsRecord {
    type Model = DnsRecord;

    fn sync_record(record: &Object<DnsRecord>) -> StepResult {
        let contents = record.contents();
        if contents.is_empty() {
            return Err(Failed(format!(
                "{record}: content is empty; write one record per line"
            )));
        }
        let zone: Object<DnsZone> = record.follow("zone")?;
        let zone_name = zone_fqdn(&zone.name);
        let name = record_fqdn(&record.name, &zone_name);
        let record_type = record.record_type.trim().to_ascii_uppercase();
        let ttl = u32::try_from(record.ttl.max(0)).unwrap_or(u32::MAX);

        let mut changes = Vec::new();
        if let (Some(old_name), Some(old_type)) = (&record.backend_name, &record.backend_type) {
            let moved = *old_name != name || *old_type != record_type;
            // A name outside this zone was written to another zone (the
            // record was moved); PowerDNS would refuse it here.
            if moved && old_name.ends_with(&zone_name) {
                changes.push(RrsetChange::delete(old_name, old_type));
            }
        }
        changes.push(RrsetChange::replace(&name, &record_type, ttl, &contents));
        let api = PowerDns::from_settings()?;
        api.patch(&zone_name, &changes)?;
        record.set_feedback(&[
            ("backend_name", name.as_str().into()),
            ("backend_type", record_type.as_str().into()),
        ])?;
        log::info!("{} {} in sync: {}", name, record_type, contents.join(" | "));
        Ok(())
    }

    fn delete_record(record: &Object<DnsRecord>) -> StepResult {
        let zone: Object<DnsZone> = record.follow("zone")?;
        let zone_name = zone_fqdn(&zone.name);
        let name = record
            .backend_name
            .clone()
            .unwrap_or_else(|| record_fqdn(&record.name, &zone_name));
        let record_type = record
            .backend_type
            .clone()
            .unwrap_or_else(|| record.record_type.trim().to_ascii_uppercase());
        let api = PowerDns::from_settings()?;
        match api.patch(&zone_name, &[RrsetChange::delete(&name, &record_type)]) {
            // The zone is gone from PowerDNS, and its records with it.
            Err(HttpError::Status { status: 404, .. }) => {}
            other => other?,
        }
        log::info!("{} {} deleted", name, record_type);
        Ok(())
    }
}

export_sync_step!(SyncDnsRecord);
