//! An event step for topic `regions`: the key names a `ChainRegion`. A new
//! name creates the region; a known one is saved again with
//! `always_update_timestamp`, so the chain step syncs it again; a value of
//! `delete` deletes it.
use syncplane_sdk::event::{Event, EventStep, declarative};
use syncplane_sdk::log;

struct Regions;

impl EventStep for Regions {
    fn process_event(event: &Event) -> Result<(), String> {
        let name = event.key.clone().ok_or("a regions event needs a key")?;
        let found = declarative::find("ChainRegion", "name", name.as_str().into())?;
        match (found.first(), event.value.as_str()) {
            (None, "delete") => Ok(()),
            (Some(region), "delete") => declarative::delete(region.id),
            (None, _) => {
                let id = declarative::create("ChainRegion", &[("name", name.as_str().into())])?;
                log::info!("event created region {} as {}", name, id);
                Ok(())
            }
            (Some(region), _) => declarative::update(region.id, &[], true),
        }
    }
}

syncplane_sdk::export_event_step!(Regions);
