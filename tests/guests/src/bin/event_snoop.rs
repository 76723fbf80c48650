//! A hostile event step: tries to create an object of a core model that its
//! service does not define, and reports what the host answered.
use syncplane_sdk::event::{Event, EventStep, declarative};

struct Snoop;

impl EventStep for Snoop {
    fn process_event(_: &Event) -> Result<(), String> {
        declarative::create("Site", &[("name", "stolen".into())])?;
        Err("the host let an event step create a Site".into())
    }
}

syncplane_sdk::export_event_step!(Snoop);
