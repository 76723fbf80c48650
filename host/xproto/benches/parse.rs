//! Parsing and validating the core models plus the hello-world service.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const CORE: &str = include_str!("../models/core.xproto");
const HELLO: &str = include_str!("../../../guests/hello-world/models/hello-world.xproto");

fn parse_and_validate(c: &mut Criterion) {
    c.bench_function("parse+validate core.xproto + hello-world.xproto", |b| {
        b.iter(|| {
            let core = syncplane_xproto::parse("core.xproto", black_box(CORE)).expect("parses");
            let hello =
                syncplane_xproto::parse("hello-world.xproto", black_box(HELLO)).expect("parses");
            syncplane_xproto::Schema::new()
                .with_files(&[core, hello])
                .expect("valid")
        })
    });
}

criterion_group!(benches, parse_and_validate);
criterion_main!(benches);
