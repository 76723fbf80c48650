//! Protobuf for the gRPC API, as the original `protoapi` target lays it out.

use serde::Serialize;
use syncplane_xproto::{FieldType, ProtoScalar, ResolvedField, ResolvedSchema, ScalarType};

use crate::error::Result;
use crate::render::{quoted, render};

#[derive(Serialize)]
struct ProtoModel {
    name: String,
    content_type: String,
    fields: Vec<ProtoField>,
    reverse: Vec<ProtoReverse>,
    /// Whether the model has objects of its own, and so RPCs.
    concrete: bool,
}

#[derive(Serialize)]
struct ProtoField {
    name: String,
    ty: &'static str,
    number: i64,
    repeated: bool,
    options: String,
}

#[derive(Serialize)]
struct ProtoReverse {
    name: String,
    number: i64,
    peer: String,
}

/// The original's `xproto_api_type`: dates are doubles (seconds), links
/// `int32` ids, other scalars the exact type declared.
fn api_type(field: &ResolvedField) -> &'static str {
    match &field.ty {
        FieldType::Link { .. } => "int32",
        FieldType::Scalar { .. } if field.option_str("content_type") == Some("date") => "double",
        FieldType::Scalar { scalar } => field
            .proto_type
            .unwrap_or(ProtoScalar::of_class(*scalar))
            .name(),
    }
}

/// The original's `xproto_api_opts`.
fn api_options(field: &ResolvedField) -> String {
    let mut options = Vec::new();
    if let (
        Some(max),
        FieldType::Scalar {
            scalar: ScalarType::String,
        },
    ) = (field.options.get("max_length"), &field.ty)
        && let Some(max) = serde_json::to_value(max).ok().and_then(|v| v.as_i64())
    {
        options.push(format!("(val).maxLength = {max}"));
    }
    for (flag, option) in [
        ("feedback_state", "(feedbackState) = true"),
        ("gui_hidden", "(guiHidden) = true"),
        ("bookkeeping_state", "(bookkeepingState) = true"),
    ] {
        if field.flag(flag) {
            options.push(option.to_owned());
        }
    }
    if field.options.get("null") == Some(&syncplane_xproto::OptionValue::Bool(false)) {
        options.push("(val).nonNull = true".to_owned());
    }
    if let FieldType::Link {
        target, reverse, ..
    } = &field.ty
    {
        // A `manytomany` link is a list of ids (no column): XOS's
        // generator marks it `manyToManyForeignKey`, by which clients tell
        // a writable id list from a reverse one.
        if field.column.is_none() {
            options.push(format!(
                "(manyToManyForeignKey).modelName = {}",
                quoted(target)
            ));
            return format!(" [{}]", options.join(", "));
        }
        options.push(format!("(foreignKey).modelName = {}", quoted(target)));
        if let Some(reverse) = reverse {
            options.push(format!(
                "(foreignKey).reverseFieldName = {}",
                quoted(reverse)
            ));
        }
    }
    if options.is_empty() {
        String::new()
    } else {
        format!(" [{}]", options.join(", "))
    }
}

pub(crate) fn generate(ir: &ResolvedSchema) -> Result<String> {
    let models: Vec<ProtoModel> = ir
        .models
        .iter()
        .map(|m| ProtoModel {
            name: m.name.clone(),
            content_type: format!("{}.{}", m.app_label, m.name.to_ascii_lowercase()),
            fields: m
                .fields
                .iter()
                .map(|f| ProtoField {
                    name: match (&f.ty, f.column.as_deref()) {
                        (FieldType::Link { .. }, None) => format!("{}_ids", f.name),
                        (_, Some(column)) => column.to_owned(),
                        (_, None) => f.name.clone(),
                    },
                    ty: api_type(f),
                    number: f.proto_number,
                    repeated: f.column.is_none() || f.repeated,
                    options: api_options(f),
                })
                .collect(),
            reverse: m
                .reverse_fields
                .iter()
                .map(|r| ProtoReverse {
                    name: format!("{}_ids", r.name),
                    number: r.proto_number,
                    peer: quoted(&r.peer),
                })
                .collect(),
            concrete: !m.is_abstract,
        })
        .collect();
    render("proto", minijinja::context! { models })
}

#[cfg(test)]
mod tests {
    use crate::testing::hello;
    use crate::{Target, generate};

    #[test]
    fn a_corpus_service_is_numbered_as_the_original() {
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/xproto");
        let load = |path: &str| {
            let text = std::fs::read_to_string(corpus.join(path))
                .unwrap_or_else(|e| panic!("the corpus ships in shared/ beside the checkout: {e}"));
            syncplane_xproto::parse(path, &text).expect("parses")
        };
        let files = [
            load("xos/core.xproto"),
            load("simpleexampleservice/simpleexampleservice.xproto"),
        ];
        let schema = syncplane_xproto::Schema::resolve(&files).expect("valid");
        let proto = generate(Target::Proto, &schema, &files[1..]).expect("proto");
        // XOSBase, ServiceInstance, ServiceInstanceWithCompute2, then the
        // model itself: four levels, offsets 0, 100, 200, 300.
        for line in [
            "string name = 101 [(val).maxLength = 200];",
            "int32 compute_instance_id = 201 [",
            "string tenant_message = 301 [(val).maxLength = 256];",
            "int32 foreground_color_id = 302 [",
            "repeated int32 serviceinstance_foreground_colors_ids = 1001 [",
            "repeated int32 serviceinstance_background_colors_ids = 1002 [",
        ] {
            assert!(proto.contains(line), "{line} missing in\n{proto}");
        }
        assert!(
            !proto.contains("message Site {"),
            "only the service's models"
        );
    }

    #[test]
    fn fields_are_numbered_by_inheritance_level() {
        let (schema, files) = hello();
        let proto = generate(Target::Proto, &schema, &files).expect("proto");
        // XOSBase keeps its numbers, ServiceInstance's are +100, the
        // service's own +200.
        assert!(
            proto.contains("message HelloWorldServiceInstance {"),
            "{proto}"
        );
        assert!(proto.contains("int32 id = 1;"), "{proto}");
        assert!(
            proto.contains("double created = 2 [(bookkeepingState) = true];"),
            "{proto}"
        );
        assert!(
            proto.contains("string name = 101 [(val).maxLength = 200];"),
            "{proto}"
        );
        assert!(proto.contains("string hello_to = 201;"), "{proto}");
        assert!(
            proto.contains("int32 greeter_id = 202 [(foreignKey).modelName = \"HelloWorldService\", (foreignKey).reverseFieldName = \"greetings\"];"),
            "{proto}"
        );
        assert!(
            proto.contains("string hello_from = 201 [(val).maxLength = 64];"),
            "{proto}"
        );
        // Reverse links: Service's `service_instances` from the core, then
        // the service's own `greetings` one level down (+100).
        assert!(
            proto.contains("repeated int32 greetings_ids = 1101 [(reverseForeignKey).modelName = \"HelloWorldServiceInstance\"];"),
            "{proto}"
        );
        assert!(
            proto.contains(
                "rpc GetHelloWorldServiceInstance(ID) returns (HelloWorldServiceInstance);"
            ),
            "{proto}"
        );
        // Served files import only each other and well-known types.
        assert!(!proto.contains("annotations"), "{proto}");
        // XOS's numbers for the class and content type of every object.
        assert!(
            proto.contains("string class_names = 2046 [(bookkeepingState) = true];"),
            "{proto}"
        );
        assert!(
            proto.contains("string self_content_type_id = 2047 [(bookkeepingState) = true];"),
            "{proto}"
        );
    }

    // See: issue 16, §4 (`uint32` came out as `int32`).
    #[test]
    fn scalars_keep_their_exact_protobuf_type() {
        let file = syncplane_xproto::parse(
            "t.xproto",
            "option app_label = \"t\";\n\
             message T (XOSBase) {\n\
               optional uint32 vlan = 1;\n\
               optional int64 big = 2;\n\
               optional double ratio = 3;\n\
               optional bytes blob = 4;\n\
               optional int32 plain = 5;\n\
               repeated string tags = 6;\n\
             }",
        )
        .expect("parses");
        let files = [file];
        let schema = syncplane_xproto::Schema::resolve(&files).expect("valid");
        let proto = generate(Target::Proto, &schema, &files).expect("proto");
        for line in [
            "uint32 vlan = 101;",
            "int64 big = 102;",
            "double ratio = 103;",
            "bytes blob = 104;",
            "int32 plain = 105;",
            "repeated string tags = 106;",
        ] {
            assert!(proto.contains(line), "{line} missing in\n{proto}");
        }
    }
}
