//! The hello-world service's models, shared by its two sync steps.

use syncplane_sdk::model;

model! {
    /// `HelloWorldService` from `models/hello-world.xproto`.
    pub struct HelloWorldService {
        pub name: String,
        pub hello_from: String,
    }
}

model! {
    /// `HelloWorldServiceInstance` from `models/hello-world.xproto`.
    pub struct HelloWorldServiceInstance {
        pub name: Option<String>,
        pub hello_to: String,
    }
}
