//! Succeeds at once: no host calls, no allocation beyond the argument.
//!
//! An object named `sleep-<ms>-<tag>` sleeps `<ms>` milliseconds in WASI
//! first: `syncplane bench isolation` uses it for a service with slow steps.

use std::time::Duration;

use syncplane_sdk::model;
use syncplane_sdk::prelude::*;

model! {
    /// `NoopItem` from `models/noop.xproto`.
    pub struct NoopItem { pub name: String }
}

struct SyncNoopItem;

impl SyncStep for SyncNoopItem {
    type Model = NoopItem;

    fn sync_record(o: &Object<NoopItem>) -> StepResult {
        if let Some(millis) = o
            .name
            .strip_prefix("sleep-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            std::thread::sleep(Duration::from_millis(millis));
        }
        Ok(())
    }
}

export_sync_step!(SyncNoopItem);
