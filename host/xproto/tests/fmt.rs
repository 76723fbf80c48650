//! `fmt` on the whole corpus: the output parses to the same IR as the input
//! (locations aside), formatting twice changes nothing, and no comment is
//! lost. Also the warnings the corpus gives, which must stay few and true.

mod common;

use common::without_locations;
use syncplane_xproto::{format_source, parse, parse_full};

fn corpus_files() -> Vec<(String, String)> {
    let root = common::corpus().join("xproto");
    let out: Vec<(String, String)> = common::xproto_files(&root)
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(root.join(&name)).expect("read");
            (name, text)
        })
        .collect();
    assert!(
        out.len() >= 40,
        "expected the whole corpus, found {}",
        out.len()
    );
    out
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
