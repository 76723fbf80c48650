//! The tutorial's second sync step: defers, fails or greets.

use hello_world::{HelloWorldService, HelloWorldServiceInstance};
use syncplane_sdk::prelude::*;

struct SyncHelloWorldServiceInstance;

impl SyncStep for SyncHelloWorldServiceInstance {
    type Model = HelloWorldServiceInstance;

    fn sync_record(o: &Object<HelloWorldServiceInstance>) -> StepResult {
        log::debug!("HelloWorldServiceInstance has been updated!"; object = o, hello_to = o.hello_to);

        if o.hello_to == "Tyrion Lannister" {
            return Err(Deferred("Maybe later".into()));
        }
        if o.hello_to == "Joffrey Baratheon" {
            return Err(Failed("Maybe not".into()));
        }

        let owner: Object<HelloWorldService> = o.follow("owner")?;
        log::info!("{} is saying hello to {}", owner.hello_from, o.hello_to);
        Ok(())
    }

    fn delete_record(o: &Object<HelloWorldServiceInstance>) -> StepResult {
        log::debug!("HelloWorldServiceInstance has been deleted!"; object = o, hello_to = o.hello_to);
        Ok(())
    }
}

export_sync_step!(SyncHelloWorldServiceInstance);
