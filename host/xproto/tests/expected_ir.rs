//! syncplane's resolved IR ([`ResolvedSchema`]) against the original
//! generator's model table (`../shared/corpus/expected/ir/`), file by file:
//! model names, bases, app labels, model policies, options, declared fields
//! (names, ids, modifiers, types, link targets and ports, options), links,
//! reverse links and policies (names and expression trees).
//!
//! Where syncplane differs on purpose, the comparison normalizes, and says
//! why at that spot:
//!
//! - options: the original keeps raw option text (`"\"core\""`, `True`,
//!   `200`); syncplane keeps typed values. Both are turned into JSON values
//!   before comparing. The options the original adds to fields itself
//!   (`modifier`, and for links `type`, `model`, `port`, `link_type`) are
//!   compared through the typed IR (modifier, link target and reverse name)
//!   instead.
//! - types: the IR keeps the scalar class (`int` for `int32`/`uint32`/...),
//!   not the declared protobuf width; a link field is `int32` in the
//!   original's table. Types are compared by class.
//! - fields: the original lists only the fields a model declares; the
//!   resolved IR lists inherited ones too, each with its origin, so the
//!   comparison takes the fields whose origin is the model itself.
//! - files syncplane rejects (legacy services on models the current core no
//!   longer has, see `tests/common/mod.rs` `EXPECTED_FAILURES` and
//!   `expected/README.md`) have no IR; the test checks they still fail.

mod common;

use std::collections::BTreeMap;

use common::{corpus, expected_failure, files_under, inputs};
use serde_json::{Map, Value, json};
use syncplane_xproto::{
    FieldType, Modifier, OptionValue, Options, RelationKind, ResolvedSchema, ScalarType, Schema,
};

/// The original's raw option text as a JSON value.
fn raw_to_json(raw: &str) -> Value {
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        return Value::String(
            raw[1..raw.len() - 1]
                .replace("\\\"", "\"")
                .replace("\\\\", "\\"),
        );
    }
    match raw {
        "True" => return json!(true),
        "False" => return json!(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = raw.parse::<i64>() {
        return json!(i);
    }
    if let Ok(f) = raw.parse::<f64>() {
        return json!(f);
    }
    Value::String(raw.to_owned())
}

fn ours_to_json(value: &OptionValue) -> Value {
    match value {
        OptionValue::Bool(b) => json!(b),
        OptionValue::Int(i) => json!(i),
        OptionValue::Float(f) => json!(f),
        OptionValue::Str(s) => json!(s),
        OptionValue::Ident(None) => Value::Null,
        OptionValue::Ident(Some(s)) => json!(s),
    }
}

/// Integers and floats compare by value (`1` vs `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare_options(
    what: &str,
    expected: &Map<String, Value>,
    ours: &Options,
    skip: &[&str],
    problems: &mut Vec<String>,
) {
    for (k, v) in expected {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let want = raw_to_json(v.as_str().unwrap_or_default());
        match ours.get(k) {
            Some(got) if same_value(&ours_to_json(got), &want) => {}
            Some(got) => problems.push(format!("{what}: option {k}: expected {want}, got {got:?}")),
            None => problems.push(format!("{what}: option {k} missing")),
        }
    }
    for k in ours.keys() {
        if !expected.contains_key(k) && !skip.contains(&k.as_str()) {
            problems.push(format!("{what}: unexpected option {k}"));
        }
    }
}

/// The class of an original type name (`uint32` and `int32` are both `int`).
fn type_class(name: &str) -> Option<ScalarType> {
    ScalarType::from_name(name)
}

fn kind_name(kind: RelationKind) -> &'static str {
    match kind {
        RelationKind::ManyToOne => "manytoone",
        RelationKind::OneToMany => "onetomany",
        RelationKind::OneToOne => "onetoone",
        RelationKind::ManyToMany => "manytomany",
    }
}

/// A link in the original's shape, for set comparison.
fn link_key(l: &Value) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        l["name"].as_str().unwrap_or_default(),
        l["link_type"].as_str().unwrap_or_default(),
        l["peer"].as_str().unwrap_or_default(),
        l["src_port"].as_str().unwrap_or_default(),
        l["dst_port"].as_str().unwrap_or_default(),
        l["through"].as_str().unwrap_or("-"),
        l["reverse_id"].as_str().unwrap_or("-"),
    )
}

fn our_link_key(l: &syncplane_xproto::Link) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        l.name,
        kind_name(l.kind),
        l.peer,
        l.src_port,
        l.dst_port.as_deref().unwrap_or_default(),
        l.through.as_deref().unwrap_or("-"),
        l.reverse_id.map_or("-".to_owned(), |i| i.to_string()),
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Compares one model; returns the parts that matched and records problems.
fn compare_model(
    path: &str,
    want: &Value,
    ir: &ResolvedSchema,
    parts: &mut BTreeMap<&'static str, usize>,
    problems: &mut Vec<String>,
) {
    let name = want["name"].as_str().unwrap_or_default();
    let at = format!("{path}: {name}");
    let Some(ours) = ir.model(name) else {
        problems.push(format!("{at}: missing"));
        return;
    };
    let before = problems.len();
    let bases: Vec<&str> = want["bases"]
        .as_array()
        .map(|b| b.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if bases != ours.bases {
        problems.push(format!("{at}: bases {bases:?} vs {:?}", ours.bases));
    }
    // The original leaves `app_label` null when neither the model nor its
    // file sets one, and its targets then use `core`; the IR says `core`.
    if want["app_label"].as_str().unwrap_or("core") != ours.app_label {
        problems.push(format!(
            "{at}: app_label {} vs {}",
            want["app_label"], ours.app_label
        ));
    }
    if want["policy"].as_str() != ours.policy.as_deref() {
        problems.push(format!(
            "{at}: policy {} vs {:?}",
            want["policy"], ours.policy
        ));
    }
    let empty = Map::new();
    compare_options(
        &format!("{at} (model)"),
        want["options"].as_object().unwrap_or(&empty),
        &ours.options,
        &[],
        problems,
    );
    *parts.entry("models").or_default() += usize::from(problems.len() == before);

    let before = problems.len();
    let own: Vec<_> = ours.fields.iter().filter(|f| f.origin == name).collect();
    let want_fields = want["fields"].as_array().cloned().unwrap_or_default();
    if want_fields.len() != own.len() {
        problems.push(format!(
            "{at}: {} fields expected, {} declared",
            want_fields.len(),
            own.len()
        ));
    }
    for wf in &want_fields {
        let fname = wf["name"].as_str().unwrap_or_default();
        let fat = format!("{at}.{fname}");
        let Some(f) = own.iter().find(|f| f.name == fname) else {
            problems.push(format!("{fat}: missing"));
            continue;
        };
        if wf["id"].as_i64() != Some(f.id) {
            problems.push(format!("{fat}: id {} vs {}", wf["id"], f.id));
        }
        let modifier = match f.modifier {
            Modifier::Required => "required",
            Modifier::Optional => "optional",
        };
        if wf["modifier"].as_str() != Some(modifier) {
            problems.push(format!("{fat}: modifier {} vs {modifier}", wf["modifier"]));
        }
        let opts = &wf["options"];
        match (&f.ty, wf["link"].as_bool() == Some(true)) {
            (FieldType::Scalar { scalar }, false) => {
                if type_class(wf["type"].as_str().unwrap_or_default()) != Some(*scalar) {
                    problems.push(format!("{fat}: type {} vs {scalar:?}", wf["type"]));
                }
            }
            (
                FieldType::Link {
                    link,
                    target,
                    reverse,
                    ..
                },
                true,
            ) => {
                let kind = kind_name(RelationKind::from(*link));
                if opts["model"].as_str() != Some(target.as_str())
                    || opts["port"].as_str() != reverse.as_deref()
                    || opts["link_type"].as_str() != Some(kind)
                {
                    problems.push(format!(
                        "{fat}: link {}->{}:{} vs {kind} {target}:{reverse:?}",
                        opts["link_type"], opts["model"], opts["port"]
                    ));
                }
            }
            (ty, link) => problems.push(format!("{fat}: link={link} vs {ty:?}")),
        }
        compare_options(
            &fat,
            opts.as_object().unwrap_or(&empty),
            &f.options,
            &["modifier", "type", "model", "port", "link_type"],
            problems,
        );
    }
    *parts.entry("fields").or_default() += usize::from(problems.len() == before);

    for (part, list, ours_list) in [
        ("links", &want["links"], &ours.links),
        ("rlinks", &want["rlinks"], &ours.rlinks),
    ] {
        // A file checked alone still sits on syncplane's built-in core,
        // whose links to the file's models (`Service.site` to a `Site`)
        // are real reverse links here; the original, given the file
        // alone, had no such models. Compare links among the given models.
        let ours_list: Vec<_> = ours_list
            .iter()
            .filter(|l| ir.model(&l.peer).is_some())
            .cloned()
            .collect();
        let before = problems.len();
        let want_keys = sorted(
            list.as_array()
                .map(|l| l.iter().map(link_key).collect())
                .unwrap_or_default(),
        );
        let our_keys = sorted(ours_list.iter().map(our_link_key).collect());
        if want_keys != our_keys {
            problems.push(format!(
                "{at}: {part}: expected {want_keys:?}, got {our_keys:?}"
            ));
        }
        *parts.entry(part).or_default() += usize::from(problems.len() == before);
    }
}

#[test]
fn the_resolved_ir_matches_the_original_model_table_file_by_file() {
    let corpus = corpus();
    let root = corpus.join("xproto");
    let expected_root = corpus.join("expected/ir");
    let mut problems = Vec::new();
    let mut compared = 0;
    for path in files_under(&expected_root, ".json") {
        let files = inputs(&root, &path);
        let schema = match Schema::resolve(&files) {
            Ok(schema) => schema,
            Err(e) if expected_failure(&path).is_some() => {
                println!("ir: {path}: rejected on purpose ({})", e.0[0]);
                continue;
            }
            Err(e) => {
                problems.push(format!("{path}: {e}"));
                continue;
            }
        };
        if expected_failure(&path).is_some() {
            problems.push(format!("{path}: accepted, but is listed as rejected"));
        }
        let text =
            std::fs::read_to_string(expected_root.join(format!("{path}.json"))).expect("readable");
        let want: Value = serde_json::from_str(&text).expect("expected json");
        let ir = ResolvedSchema::build(&schema, &files);
        let start = problems.len();

        let want_names = sorted(
            want["models"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|m| m["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        );
        let our_names: Vec<String> = ir.models.iter().map(|m| m.name.clone()).collect();
        if want_names != our_names {
            problems.push(format!("{path}: models {want_names:?} vs {our_names:?}"));
        }
        let empty = Map::new();
        compare_options(
            &format!("{path} (file)"),
            want["file_options"].as_object().unwrap_or(&empty),
            &ir.file_options,
            &[],
            &mut problems,
        );
        let mut want_policies: Vec<&String> = want["policies"]
            .as_object()
            .map(|p| p.keys().collect())
            .unwrap_or_default();
        want_policies.sort();
        let our_policies: Vec<&String> = ir.policies.keys().collect();
        if want_policies != our_policies {
            problems.push(format!(
                "{path}: policies {want_policies:?} vs {our_policies:?}"
            ));
        }
        for (name, policy) in &ir.policies {
            let tree = policy.expr.to_original_json();
            if want["policies"][name] != tree {
                problems.push(format!(
                    "{path}: policy {name}: expected {}, got {tree}",
                    want["policies"][name]
                ));
            }
        }
        let mut parts = BTreeMap::new();
        let models = want["models"].as_array().cloned().unwrap_or_default();
        for model in &models {
            compare_model(&path, model, &ir, &mut parts, &mut problems);
        }
        let summary: Vec<String> = parts
            .iter()
            .map(|(part, ok)| format!("{part} {ok}/{}", models.len()))
            .collect();
        let verdict = if problems.len() == start {
            "match"
        } else {
            "DIFFER"
        };
        println!(
            "ir: {path}: {verdict}: {}, policies {}",
            summary.join(", "),
            ir.policies.len()
        );
        compared += 1;
    }
    assert!(compared >= 30, "compared only {compared} files");
    assert!(
        problems.is_empty(),
        "{} mismatch(es):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
