//! A model policy for `ChainZone`: a new zone gets its first rack
//! (`<zone>-rack1`, linked to it); a deleted zone's racks are deleted.
use syncplane_sdk::event::{ModelPolicy, declarative};
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct ZonePolicy;

impl ModelPolicy for ZonePolicy {
    type Model = Target;

    fn handle_create(zone: &Object<Target>) -> Result<(), String> {
        let rack = format!("{}-rack1", zone.name);
        let id = declarative::create(
            "ChainRack",
            &[
                ("name", rack.as_str().into()),
                ("zone_id", (zone.id as i64).into()),
            ],
        )?;
        log::info!("policy created {} as {}", rack, id);
        Ok(())
    }

    fn handle_delete(zone: &Object<Target>) -> Result<(), String> {
        for rack in declarative::find("ChainRack", "zone_id", (zone.id as i64).into())? {
            declarative::delete(rack.id)?;
        }
        log::info!("policy deleted the racks of {}", zone.name);
        Ok(())
    }
}

syncplane_sdk::export_model_policy!(ZonePolicy);
