//! A pull step that "imports" a region from a backend: it creates
//! `ChainRegion` `imported` with `no_sync` (sync steps leave it alone) and
//! `write_protect` (users may not change it), unless it exists already.
use syncplane_sdk::event::{PullStep, declarative};

struct Pull;

impl PullStep for Pull {
    fn pull_records() -> Result<(), String> {
        if declarative::find("ChainRegion", "name", "imported".into())?.is_empty() {
            declarative::create(
                "ChainRegion",
                &[
                    ("name", "imported".into()),
                    ("no_sync", true.into()),
                    ("write_protect", true.into()),
                ],
            )?;
        }
        Ok(())
    }
}

syncplane_sdk::export_pull_step!(Pull);
