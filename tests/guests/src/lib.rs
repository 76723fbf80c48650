//! Models shared by the test guests.

use syncplane_sdk::model;

model! {
    /// Any test target: all hostile models have a `name`.
    pub struct Target { pub name: String }
}
