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

/// Every corpus service validated with the corpus core, as the corpus test
/// does (files that must fail included: finding errors is work too).
fn whole_corpus(c: &mut Criterion) {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/xproto");
    let mut sources = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "xproto") {
                let name = path
                    .strip_prefix(&root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                let text = std::fs::read_to_string(&path).expect("readable");
                sources.push((name, text));
            }
        }
    }
    assert!(
        sources.len() >= 44,
        "corpus not found at {}",
        root.display()
    );
    let core_text = std::fs::read_to_string(root.join("xos/core.xproto")).expect("corpus core");
    c.bench_function(
        "parse+validate the whole corpus (44 files, services with core)",
        |b| {
            b.iter(|| {
                let core = syncplane_xproto::parse("xos/core.xproto", &core_text).expect("parses");
                let mut valid = 0;
                for (name, text) in &sources {
                    let file = syncplane_xproto::parse(name, black_box(text)).expect("parses");
                    let files = if name.starts_with("xos/") || name.starts_with("xos-tosca/") {
                        vec![file]
                    } else {
                        vec![core.clone(), file]
                    };
                    valid += usize::from(syncplane_xproto::Schema::resolve(&files).is_ok());
                }
                valid
            })
        },
    );
}

criterion_group!(benches, parse_and_validate, whole_corpus);
criterion_main!(benches);
