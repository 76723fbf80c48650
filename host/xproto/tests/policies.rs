//! Policies of the corpus: parsed trees match the original generator's
//! (`policies` in `../shared/corpus/expected/ir/`), file by file, and the
//! real policies type-check against the real models; policies that do not
//! fit the models are located errors.

mod common;

use std::collections::BTreeMap;

use common::{corpus, files_under, is_standalone, load};
use serde_json::Value;
use syncplane_xproto::{Schema, parse};

#[test]
fn policy_trees_match_the_original_generator_file_by_file() {
    let corpus = corpus();
    let root = corpus.join("xproto");
    let paths = files_under(&corpus.join("expected/ir"), ".json");
    let mut compared = 0;
    let mut policies_compared = 0;
    let mut problems = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(corpus.join(format!("expected/ir/{path}.json")))
            .expect("readable");
        let expected: Value = serde_json::from_str(&text).expect("expected json");
        let want: BTreeMap<String, Value> = match expected.get("policies") {
            Some(Value::Object(map)) => map.clone().into_iter().collect(),
            _ => BTreeMap::new(),
        };
        let mut inputs = Vec::new();
        if !is_standalone(path) {
            inputs.push(load(&root, "xos/core.xproto"));
        }
        inputs.push(load(&root, path));
        // As the original: files are concatenated, a later policy wins.
        let got: BTreeMap<String, Value> = inputs
            .iter()
            .flat_map(|f| &f.policies)
            .map(|p| (p.name.clone(), p.expr.to_original_json()))
            .collect();
        for (name, tree) in &want {
            match got.get(name) {
                Some(ours) if ours == tree => policies_compared += 1,
                Some(ours) => problems.push(format!(
                    "{path}: policy {name}:\n  expected {tree}\n  got      {ours}"
                )),
                None => problems.push(format!("{path}: policy {name} missing")),
            }
        }
        for name in got.keys().filter(|n| !want.contains_key(*n)) {
            problems.push(format!("{path}: unexpected policy {name}"));
        }
        compared += 1;
        println!("policies match: {path} ({} policies)", want.len());
    }
    assert!(compared >= 40, "compared only {compared} files");
    assert!(
        policies_compared >= 100,
        "compared only {policies_compared} policy trees"
    );
    assert!(
        problems.is_empty(),
        "{} mismatch(es):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_real_core_policies_type_check_and_bind_their_validators() {
    let root = corpus().join("xproto");
    let schema =
        Schema::resolve(&[load(&root, "xos/core.xproto")]).unwrap_or_else(|e| panic!("{e}"));
    assert!(schema.policy("slice_policy").is_some());
    let slice = schema.model("Slice").expect("Slice");
    let validators: Vec<_> = slice
        .validators()
        .into_iter()
        .map(|v| (v.policy, v.message))
        .collect();
    assert_eq!(
        validators,
        [
            (
                "slice_name_no_spaces".to_owned(),
                "Slice name contains spaces".to_owned()
            ),
            (
                "slice_has_creator".to_owned(),
                "Slice has no creator".to_owned()
            ),
        ]
    );
    // `slice_name_no_spaces` is the one Python escape form syncplane
    // evaluates (`' ' not in obj.name`): no warning, no error.
    let warnings: Vec<String> = schema.warnings().iter().map(|w| w.to_string()).collect();
    assert!(
        !warnings.iter().any(|w| w.contains("python")),
        "{warnings:?}"
    );
}

#[test]
fn python_escapes_other_than_membership_are_refused_where_they_are() {
    let errors = check(
        "policy site_policy < {{ obj.name.isalpha() }} >\n\
         policy user_policy < {{ ' ' in obj.is_admin }} >\n",
        "",
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("p.xproto:1:") && e.contains("cannot be evaluated")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("p.xproto:2:") && e.contains("not a string")),
        "{errors:?}"
    );
}

const MODELS: &str = r#"
message User::user_policy (XOSBase) {
    required bool is_admin = 1 [default = False];
    optional manytoone site->Site:users = 2:1001;
}
message Site::site_policy (XOSBase) {
    required string name = 1 [max_length = 20];
}
message Privilege (XOSBase) {
    required int32 accessor_id = 1;
    required string object_type = 2 [max_length = 20];
}
"#;

fn check(policies: &str, extra_models: &str) -> Vec<String> {
    let src = format!("{policies}\n{MODELS}{extra_models}");
    let file = parse("p.xproto", &src).unwrap_or_else(|e| panic!("{e}"));
    match Schema::resolve(&[file]) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn well_typed_policies_pass() {
    let errors = check(
        "policy user_policy < ctx.user.is_admin | ctx.user.id = obj.id | obj.site.name = \"x\" >\n\
         policy site_policy < ctx.user.is_admin | (ctx.write_access -> exists Privilege: Privilege.accessor_id = ctx.user.id & Privilege.object_type = \"Site\") | *user_policy(users_owner) >",
        "message Owner (XOSBase) { required manytoone users_owner->User:owned_sites = 1:1002; }",
    );
    // `users_owner` is not a field of Site: the call is checked against the model it guards.
    assert_eq!(
        errors,
        ["p.xproto:2:153: `users_owner`: model `Site` has no field `users_owner`"]
    );
    let errors = check(
        "policy user_policy < ctx.user.is_admin | *site_policy(site) | obj in obj.site.users.all() >\n\
         policy site_policy < exists Privilege: Privilege.accessor_id = ctx.user.id >",
        "",
    );
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn policies_that_do_not_fit_the_models_are_located_errors() {
    let errors = check(
        "policy user_policy < obj.nickname = \"x\" | ctx.user.is_root | ctx.usr >\n\
         policy site_policy < exists Privlege: Privlege.accessor_id = 1 | *nope(site) | foo.bar >",
        "message Port::port_policy (XOSBase) { option validators = \"site_policy:bad, missing:also bad\"; }",
    );
    assert_eq!(
        errors,
        [
            "p.xproto:1:22: `obj.nickname`: model `User` has no field `nickname`",
            "p.xproto:1:43: `ctx.user.is_root`: model `User` has no field `is_root`",
            "p.xproto:1:62: unknown context `ctx.usr` (expected `ctx.user`, `ctx.read_access` or `ctx.write_access`)",
            "p.xproto:2:22: `exists Privlege`: unknown model `Privlege`",
            "p.xproto:2:66: policy `nope` is not defined",
            "p.xproto:2:80: unknown name `foo` in `foo.bar` (expected `obj`, `ctx` or a model bound by `exists`/`forall`)",
            "p.xproto:15:1: model `Port` is guarded by unknown policy `port_policy`",
            "p.xproto:15:1: validator of `Port` names unknown policy `missing`",
        ]
    );
}

#[test]
fn comparisons_of_different_kinds_are_errors() {
    let errors = check(
        "policy user_policy < obj.site = \"Site\" | obj.is_admin = 1 | ctx.user in obj.site | obj.id = 2.0 | obj.site = ctx.user.site | obj in obj.site.users.all() | obj.site = None >\n\
         policy site_policy < exists Privilege: Privilege.accessor_id = obj >",
        "",
    );
    assert_eq!(
        errors,
        [
            "p.xproto:1:22: `obj.site = \"Site\"` compares a `Site` with a string",
            "p.xproto:1:42: `obj.is_admin = 1` compares a bool with an integer",
            "p.xproto:1:61: `ctx.user in obj.site`: the right side of `in` is a `Site`, not a collection",
        ]
    );
}

proptest::proptest! {
    /// Any text, and any jumble of the policy language's tokens, gives a
    /// tree or a located error, never a panic; a tree prints as text that
    /// reads back as the same tree.
    #[test]
    fn the_policy_parser_never_panics(
        text in "\\PC{0,40}",
        words in proptest::collection::vec(
            proptest::sample::select(vec![
                "obj.a", "ctx.user.b", "X.c", "exists", "forall", "X", ":", "not", "in", "=",
                "&", "|", "->", "(", ")", "*p(f)", "*", "\"s\"", "-1", "2.5", "True", "None",
                "{{ x }}", "{{", "}}", "/*", "//", "\n", "é", "all()",
            ]),
            0..24,
        ),
    ) {
        let at = syncplane_xproto::Location { file: "f".into(), line: 1, column: 1 };
        let _ = syncplane_xproto::parse_policy_expr(&text, &at);
        if let Ok(expr) = syncplane_xproto::parse_policy_expr(&words.join(" "), &at) {
            // What parses prints as text that reads back as the same tree.
            let printed = expr.to_string();
            let again = syncplane_xproto::parse_policy_expr(&printed, &at);
            proptest::prop_assert!(again.is_ok(), "{printed}: {again:?}");
            if let Ok(again) = again {
                proptest::prop_assert_eq!(again.to_original_json(), expr.to_original_json());
            }
        }
    }
}

#[test]
fn every_corpus_policy_prints_as_text_that_reads_back_as_the_same_tree() {
    let root = corpus().join("xproto");
    let mut count = 0;
    for path in [
        "xos/core.xproto",
        "xos/historical-pre-SEBA-457/core.xproto",
        "xos-tosca/test/test.xproto",
    ] {
        for policy in load(&root, path).policies {
            let printed = policy.expr.to_string();
            let at = policy.expr.location.clone();
            let again = syncplane_xproto::parse_policy_expr(&printed, &at)
                .unwrap_or_else(|e| panic!("{path}: {}: {printed}: {e}", policy.name));
            assert_eq!(
                again.to_original_json(),
                policy.expr.to_original_json(),
                "{path}: {}: {printed}",
                policy.name
            );
            count += 1;
        }
    }
    assert!(count >= 40, "only {count} policies");
}

/// Well-formed policy texts, nested up to a few levels.
fn policy_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let leaf = proptest::sample::select(vec![
        "obj.a",
        "ctx.user.b",
        "X.c = 1",
        "*p(f.g)",
        "True",
        "a in b.all()",
        "{{ x }}",
        "Y.d = \"s\"",
    ])
    .prop_map(str::to_owned);
    leaf.prop_recursive(5, 48, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                proptest::sample::select(vec!["&", "|", "->"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("not {a}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.prop_map(|a| format!("forall X: {a}")),
        ]
    })
}

proptest::proptest! {
    /// Printing a parsed policy gives text that reads back as the same tree.
    #[test]
    fn well_formed_policies_print_and_read_back(text in policy_text()) {
        let at = syncplane_xproto::Location { file: "f".into(), line: 1, column: 1 };
        let expr = syncplane_xproto::parse_policy_expr(&text, &at);
        proptest::prop_assert!(expr.is_ok(), "{text}: {expr:?}");
        if let Ok(expr) = expr {
            let printed = expr.to_string();
            let again = syncplane_xproto::parse_policy_expr(&printed, &at);
            proptest::prop_assert!(again.is_ok(), "{printed}: {again:?}");
            if let Ok(again) = again {
                proptest::prop_assert_eq!(again.to_original_json(), expr.to_original_json());
                proptest::prop_assert_eq!(again.to_string(), printed);
            }
        }
    }
}
