//! Every xproto file of the original project's corpus (`../shared/corpus`)
//! parses and validates, and `model_deps` matches the original generator's
//! output file by file. Files that must fail are listed with the reason
//! (`tests/common/mod.rs`, `EXPECTED_FAILURES`).

mod common;

use std::collections::BTreeMap;

use common::{corpus, expected_failure, inputs, xproto_files};
use syncplane_xproto::{Schema, model_deps};

#[test]
fn every_corpus_file_parses_and_validates_or_fails_as_expected() {
    let root = corpus().join("xproto");
    let files = xproto_files(&root);
    assert!(files.len() >= 44, "corpus has only {} files", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let expected = expected_failure(path);
        match (Schema::resolve(&inputs(&root, path)), expected) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) if e.to_string().contains(want) => {}
            (Ok(_), Some(want)) => {
                problems.push(format!("{path}: accepted, but should fail with {want:?}"))
            }
            (Err(e), _) => problems.push(format!("{path}: {e}")),
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn model_deps_match_the_original_generator_file_by_file() {
    let corpus = corpus();
    let root = corpus.join("xproto");
    let expected_root = corpus.join("expected/deps");
    let mut compared = 0;
    let mut problems = Vec::new();
    for path in xproto_files(&root) {
        let expected_file = expected_root.join(format!("{path}.json"));
        let Ok(text) = std::fs::read_to_string(&expected_file) else {
            continue;
        };
        let expected: BTreeMap<String, Vec<[String; 3]>> =
            serde_json::from_str(&text).expect("expected json");
        let files = inputs(&root, &path);
        let schema = Schema::resolve(&files).unwrap_or_else(|e| panic!("{path}: {e}"));
        let models = files
            .iter()
            .flat_map(|f| f.models.iter().map(|m| m.name.as_str()));
        let ours = model_deps(&schema, models);
        compared += 1;
        for (model, deps) in &expected {
            let mut want = deps.clone();
            want.sort();
            match ours.get(model) {
                Some(got) if *got == want => {}
                Some(got) => {
                    problems.push(format!("{path}: {model}: expected {want:?}, got {got:?}"))
                }
                None => problems.push(format!("{path}: {model} missing")),
            }
        }
        for model in ours.keys().filter(|m| !expected.contains_key(*m)) {
            problems.push(format!("{path}: unexpected model {model}"));
        }
        println!("deps match: {path}");
    }
    assert!(compared >= 20, "compared only {compared} files");
    assert!(
        problems.is_empty(),
        "{} mismatch(es):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
