use super::*;
use crate::parse;

const SRC: &str = "option app_label = \"t\";\n\
    message XOSBase { option abstract = True; required string created = 2; required bool deleted = 3; }\n\
    message Site (XOSBase) { required string name = 1; }\n\
    message Service (XOSBase, AttributeMixin) { required string name = 1; optional manytoone site->Site:services = 2:1001; }\n\
    message Hello (Service) { option plural = \"Helloes\"; required string hello_to = 1; required manytoone peer->Site:hellos = 2:1002; optional manytoone other->Service:others = 3; }\n";

fn ir() -> ResolvedSchema {
    let file = parse("t.xproto", SRC).expect("parses");
    let schema = Schema::new()
        .with_files(std::slice::from_ref(&file))
        .expect("valid");
    ResolvedSchema::build(&schema, std::slice::from_ref(&file))
}

fn numbers(model: &ResolvedModel) -> Vec<(&str, &str, i64)> {
    model
        .fields
        .iter()
        .map(|f| (f.origin.as_str(), f.name.as_str(), f.proto_number))
        .collect()
}

#[test]
fn field_numbers_grow_by_a_hundred_per_inheritance_level() {
    let ir = ir();
    let hello = ir.model("Hello").expect("Hello");
    assert_eq!(
        numbers(hello),
        [
            ("XOSBase", "created", 2),
            ("XOSBase", "deleted", 3),
            ("Service", "name", 101),
            ("Service", "site", 102),
            ("Hello", "hello_to", 201),
            ("Hello", "peer", 202),
            ("Hello", "other", 203),
        ]
    );
    assert_eq!(hello.ancestors, ["Service", "XOSBase"]);
    assert_eq!(hello.plural, "helloes");
    assert_eq!(ir.model("Site").expect("Site").plural, "sites");
    let site = hello
        .fields
        .iter()
        .find(|f| f.name == "site")
        .expect("site");
    assert_eq!(site.column.as_deref(), Some("site_id"));
    assert_eq!(site.id, 2);
}

#[test]
fn file_options_are_inherited_into_models() {
    let ir = ir();
    let hello = ir.model("Hello").expect("Hello");
    assert_eq!(
        hello.options.get("app_label"),
        Some(&OptionValue::Str("t".into()))
    );
    assert_eq!(ir.file_options.len(), 1);
}

#[test]
fn reverse_links_are_computed_on_the_direct_target_and_numbered() {
    let ir = ir();
    let site = ir.model("Site").expect("Site");
    let names: Vec<_> = site
        .rlinks
        .iter()
        .map(|l| (l.src_port.as_str(), l.peer.as_str(), l.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("services", "Service", RelationKind::OneToMany),
            ("hellos", "Hello", RelationKind::OneToMany)
        ]
    );
    let numbers: Vec<_> = site
        .reverse_fields
        .iter()
        .map(|r| (r.name.as_str(), r.proto_number))
        .collect();
    assert_eq!(numbers, [("services", 1001), ("hellos", 1002)]);
    // Reverse links of a base are offset by 100 on the descendant;
    // unnumbered ones are numbered from 1900.
    let hello = ir.model("Hello").expect("Hello");
    let numbers: Vec<_> = hello
        .reverse_fields
        .iter()
        .map(|r| (r.origin.as_str(), r.name.as_str(), r.proto_number))
        .collect();
    assert_eq!(numbers, [("Service", "others", 1900)]);
    let links: Vec<_> = hello.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(links, ["peer", "other"]);
}

#[test]
fn the_ir_round_trips_through_json() {
    let ir = ir();
    let json = serde_json::to_string(&ir).expect("serializes");
    let back: ResolvedSchema = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, ir);
    assert!(json.contains("\"ir_version\":1"), "{json}");
}
