//! Logs changes of HelloWorldService, as the tutorial's first sync step.

use hello_world::HelloWorldService;
use syncplane_sdk::prelude::*;

struct SyncHelloWorldService;

impl SyncStep for SyncHelloWorldService {
    type Model = HelloWorldService;

    fn sync_record(o: &Object<HelloWorldService>) -> StepResult {
        log::info!("HelloWorldService has been updated!"; object = o, hello_from = o.hello_from);
        Ok(())
    }

    fn delete_record(o: &Object<HelloWorldService>) -> StepResult {
        log::info!("HelloWorldService has been deleted!"; object = o, hello_from = o.hello_from);
        Ok(())
    }
}

export_sync_step!(SyncHelloWorldService);
