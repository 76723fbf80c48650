//! A model policy for `WriteTarget` that creates a `ChainBInstance`, a model
//! of service `chainb` that its own service has no grant to write, and
//! reports what the host answered as its failure.
use syncplane_sdk::event::{ModelPolicy, declarative};
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Policy;

impl ModelPolicy for Policy {
    type Model = Target;

    fn handle_update(target: &Object<Target>) -> Result<(), String> {
        let name = format!("stolen-by-{}", target.name);
        match declarative::create("ChainBInstance", &[("name", name.as_str().into())]) {
            Ok(id) => Err(format!(
                "LEAKED: the host let the policy create ChainBInstance {id}"
            )),
            Err(e) => Err(format!("ungranted write: {e}")),
        }
    }
}

syncplane_sdk::export_model_policy!(Policy);
