//! Snapshot tests of rendered diagnostics: each `tests/ui/<case>.xproto` is
//! parsed and checked (against the built-in core) as `syncplane xproto check`
//! does, and the plain-text rendering must equal `tests/ui/<case>.err`.
//! Run with `BLESS=1` to rewrite the `.err` files after a deliberate change.

use std::collections::BTreeMap;
use std::path::Path;

use syncplane_xproto::{Diagnostic, Schema, parse_full, render};

/// Warnings, then errors, of one file, rendered without colour.
fn check(name: &str, src: &str) -> String {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    match parse_full(name, src) {
        Err(e) => errors.push(Diagnostic::from(&e)),
        Ok(parsed) => {
            warnings.extend(parsed.warnings.iter().map(Diagnostic::from));
            match Schema::resolve(&[parsed.file]) {
                Ok(schema) => warnings.extend(schema.warnings().iter().map(Diagnostic::from)),
                Err(e) => errors.extend(e.0.iter().map(Diagnostic::from)),
            }
        }
    }
    let sources = BTreeMap::from([(name.to_owned(), src.to_owned())]);
    let all: Vec<Diagnostic> = warnings.into_iter().chain(errors).collect();
    render(&all, &sources, false)
}

#[test]
fn rendered_diagnostics_match_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/ui")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "xproto"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "the cases are missing: {cases:?}");
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let name = format!("{}", case.file_name().expect("file name").to_string_lossy());
        let src = std::fs::read_to_string(&case).expect("read");
        let got = check(&name, &src);
        assert!(!got.is_empty(), "{name}: every case must report something");
        let expected_path = case.with_extension("err");
        if bless {
            std::fs::write(&expected_path, &got).expect("write");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{name}: rendering differs (BLESS=1 to accept)\n--- expected\n{expected}\n--- got\n{got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
