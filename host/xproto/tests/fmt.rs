//! `fmt` on the whole corpus: the output parses to the same IR as the input
//! (locations aside), formatting twice changes nothing, and no comment is
//! lost. Also the warnings the corpus gives, which must stay few and true.

use std::path::{Path, PathBuf};

use syncplane_xproto::{format_source, parse, parse_full};

fn corpus_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/xproto");
    assert!(root.is_dir(), "the corpus is missing at {}", root.display());
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "xproto") {
                let name = path
                    .strip_prefix(&root)
                    .expect("under root")
                    .display()
                    .to_string();
                out.push((name, std::fs::read_to_string(&path).expect("read")));
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 40,
        "expected the whole corpus, found {}",
        out.len()
    );
    out
}

/// The IR as JSON without `location`s, which formatting moves.
fn without_locations(file: &syncplane_xproto::File) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("location");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(file).expect("serialises");
    strip(&mut v);
    v
}

/// Comment lines (`// ...`) of a source, trimmed, outside policies.
fn line_comments(src: &str) -> Vec<String> {
    let mut in_policy = false;
    let mut out = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if t.starts_with("policy ") || in_policy {
            in_policy = !t.contains('>');
        } else if let Some(at) = t.find("//") {
            out.push(t[at..].trim_end().to_owned());
        }
    }
    out
}

#[test]
fn formatting_the_corpus_keeps_the_ir_and_is_idempotent() {
    for (name, src) in corpus_files() {
        let before = parse(&name, &src).unwrap_or_else(|e| panic!("{name}: {e}"));
        let once = format_source(&name, &src).unwrap_or_else(|e| panic!("{name}: {e}"));
        let after = parse(&name, &once)
            .unwrap_or_else(|e| panic!("{name}: formatted output does not parse: {e}\n{once}"));
        assert_eq!(
            without_locations(&before),
            without_locations(&after),
            "{name}: the formatted file means something else:\n{once}"
        );
        let twice = format_source(&name, &once).expect("parses");
        assert_eq!(once, twice, "{name}: formatting is not idempotent");
        for comment in line_comments(&src) {
            assert!(
                once.contains(&comment),
                "{name}: comment {comment:?} is lost:\n{once}"
            );
        }
    }
}

/// The corpus uses a handful of options outside the reference: the
/// monitoring service's own `ceilometer_*` file options, the historical
/// core's `varchar` (dropped from the later core), and `app_name` in a genx
/// test file. Each is kept in the IR and reported, located.
#[test]
fn the_corpus_warns_only_about_options_outside_the_reference() {
    let mut warned = std::collections::BTreeSet::new();
    for (name, src) in corpus_files() {
        let parsed = parse_full(&name, &src).expect("parses");
        for w in &parsed.warnings {
            assert!(w.message.starts_with("unknown "), "{w}");
            let option = w.message.split('`').nth(1).expect("names the option");
            warned.insert(format!("{}: {option}", w.location.file));
        }
    }
    let expected = [
        "monitoring/monitoring.xproto: ceilometer_kind",
        "monitoring/monitoring.xproto: ceilometer_publish_tenant_kind",
        "monitoring/monitoring.xproto: ceilometer_publish_tenant_onos_kind",
        "monitoring/monitoring.xproto: ceilometer_publish_tenant_os_kind",
        "monitoring/monitoring.xproto: ceilometer_publish_tenant_user_kind",
        "xos/historical-pre-SEBA-457/core.xproto: varchar",
        "xos/xos-genx-tests/base.xproto: app_name",
    ];
    assert_eq!(warned.into_iter().collect::<Vec<_>>(), expected);
}
