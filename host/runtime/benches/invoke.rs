//! Host overhead of one sync step invocation: a fresh pre-instantiated
//! instance, the call, and the guest's host calls (log, follow a link) —
//! with the real hello-world component. Store writes are not included.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use syncplane_core::Core;
use syncplane_engine::{Outcome, StepInvoker};
use syncplane_runtime::capability::ServiceContext;
use syncplane_runtime::{Limits, Runtime};

const HELLO: &str = include_str!("../../../guests/hello-world/models/hello-world.xproto");

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn invoke(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, step, object) = rt.block_on(async {
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse("hello-world.xproto", HELLO).expect("parses");
        core.register_models(&[file]).await.expect("models");
        core.create(
            "HelloWorldService",
            map(json!({ "name": "hw", "hello_from": "Jon" })),
        )
        .await
        .expect("service");
        let object = core
            .create(
                "HelloWorldServiceInstance",
                map(json!({ "name": "i", "hello_to": "Arya" })),
            )
            .await
            .expect("instance");
        let runtime = Runtime::new(core, Limits::default(), Arc::default()).expect("runtime");
        let wasm = std::fs::read(
            PathBuf::from(syncplane_test_artifacts::HELLO_WORLD_DIR)
                .join("sync_hello_world_service_instance.wasm"),
        )
        .expect("component");
        let step = runtime
            .load_sync_step(
                &Arc::new(ServiceContext::own_only("hello-world", Default::default())),
                "instance",
                &wasm,
            )
            .expect("loads");
        (runtime, step, object)
    });
    let step: Arc<dyn StepInvoker> = step;
    c.bench_function("sync_record (hello-world instance step)", |b| {
        b.to_async(&rt).iter(|| async {
            let outcome = step.sync_record(&object).await;
            assert_eq!(outcome, Outcome::Done);
        })
    });
    drop(runtime);
}

criterion_group!(benches, invoke);
criterion_main!(benches);
