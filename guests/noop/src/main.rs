//! Succeeds at once: no host calls, no allocation beyond the argument.

use syncplane_sdk::model;
use syncplane_sdk::prelude::*;

model! {
    /// `NoopItem` from `models/noop.xproto`.
    pub struct NoopItem { pub name: String }
}

struct SyncNoopItem;

impl SyncStep for SyncNoopItem {
    type Model = NoopItem;

    fn sync_record(_: &Object<NoopItem>) -> StepResult {
        Ok(())
    }
}

export_sync_step!(SyncNoopItem);
