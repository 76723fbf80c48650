//! The `.proto` files the server is built from: fixed ones in XOS's shape,
//! and `xos.proto` / `watch.proto` generated from the installed models,
//! compiled at run time with `protox` into a [`DescriptorPool`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use prost_reflect::DescriptorPool;
use protox::file::{ChainFileResolver, File as ProtoFile, FileResolver, GoogleFileResolver};
use syncplane_core::Registry;
use syncplane_xproto::{File, OptionValue, Options, Schema};
use syncplane_xproto_gen::{Target, generate};

use crate::error::{Error, Result};

/// XOS's `common.proto`: the request of `Get`/`Delete` and of `Filter`.
pub const COMMON_PROTO: &str = r#"// The messages XOS's API shares between models.
syntax = "proto3";

package xos;

message ID {
  int32 id = 1;
}

message QueryElement {
  enum QueryOperator {
    EQUAL = 0;
    GREATER_THAN = 1;
    LESS_THAN = 2;
    GREATER_THAN_OR_EQUAL = 3;
    LESS_THAN_OR_EQUAL = 4;
    IEXACT = 5;
  }
  QueryOperator operator = 1;
  bool invert = 2;
  string name = 3;
  oneof value {
    string sValue = 4;
    int32 iValue = 5;
  }
}

message Query {
  enum QueryKind {
    DEFAULT = 0;
    ALL = 1;
    SYNCHRONIZER_DIRTY_OBJECTS = 2;
    SYNCHRONIZER_DELETED_OBJECTS = 3;
    SYNCHRONIZER_DIRTY_POLICIES = 4;
    SYNCHRONIZER_DELETED_POLICIES = 5;
  }
  QueryKind kind = 1;
  repeated QueryElement elements = 2;
}
"#;

/// XOS's `xosoptions.proto`: the options generated messages carry, by
/// which clients find links, bookkeeping and content types.
pub const XOSOPTIONS_PROTO: &str = r#"// Options on XOS's generated messages and fields.
syntax = "proto3";

package xos;

import "google/protobuf/descriptor.proto";

message FieldValidation {
  bool nonNull = 1;
  int32 maxLength = 2;
}

message ForeignKeyRule {
  string modelName = 1;
  string reverseFieldName = 2;
}

message ReverseForeignKeyRule {
  string modelName = 1;
}

message ManyToManyForeignKeyRule {
  string modelName = 1;
}

message ManyToManyReverseForeignKeyRule {
  string modelName = 1;
}

extend google.protobuf.FieldOptions {
  FieldValidation val = 1001;
  ForeignKeyRule foreignKey = 1002;
  ReverseForeignKeyRule reverseForeignKey = 1003;
  ManyToManyForeignKeyRule manyToManyForeignKey = 1004;
  ManyToManyReverseForeignKeyRule reverseManyToManyForeignKey = 1005;
  bool feedbackState = 1006;
  bool bookkeepingState = 1007;
  bool guiHidden = 1008;
}

extend google.protobuf.MessageOptions {
  string contentTypeId = 1001;
}
"#;

/// `annotations.proto` as XOS ships it (Google's HTTP annotation, under a
/// flat file name).
pub const ANNOTATIONS_PROTO: &str = r#"syntax = "proto3";

package google.api;

import "http.proto";
import "google/protobuf/descriptor.proto";

extend google.protobuf.MethodOptions {
  HttpRule http = 72295728;
}
"#;

/// `http.proto`: Google's `HttpRule`, which `annotations.proto` uses.
pub const HTTP_PROTO: &str = r#"syntax = "proto3";

package google.api;

message HttpRule {
  string selector = 1;
  oneof pattern {
    string get = 2;
    string put = 3;
    string post = 4;
    string delete = 5;
    string patch = 6;
    CustomHttpPattern custom = 8;
  }
  string body = 7;
  string response_body = 12;
  repeated HttpRule additional_bindings = 11;
}

message CustomHttpPattern {
  string kind = 1;
  string path = 2;
}
"#;

/// The package of the watch service (beyond XOS): its own, so that event
/// message names cannot clash with model names.
pub const WATCH_PACKAGE: &str = "syncplane.watch";

/// The fully qualified name of the XOS model service.
pub const XOS_SERVICE: &str = "xos.xos";

/// The fully qualified name of the watch service.
pub const WATCH_SERVICE: &str = "syncplane.watch.Watch";

/// The files clients compile, by name, and what the server serves.
#[derive(Debug)]
pub struct Descriptors {
    /// The registry they were built from.
    pub(crate) registry: Arc<Registry>,
    /// Every message and service.
    pub pool: DescriptorPool,
    /// The `.proto` texts by file name.
    pub files: BTreeMap<String, String>,
    /// The compiled set, imports included (for reflection).
    pub file_descriptor_set: prost_types::FileDescriptorSet,
}

/// The schema's models as xproto files, one per source file (with the
/// file's `app_label`), the core's first: what the generator numbers
/// against, as `syncplane gen proto` does with the files themselves.
fn model_files(schema: &Schema) -> Vec<File> {
    let mut files: BTreeMap<(bool, String), File> = BTreeMap::new();
    for model in schema.models() {
        let name = model.location.file.clone();
        let file = files
            .entry((name != "core.xproto", name.clone()))
            .or_insert_with(|| {
                let mut options = Options::new();
                options.insert(
                    "app_label".to_owned(),
                    OptionValue::Str(model.app_label.clone()),
                );
                File {
                    name,
                    options,
                    policies: Vec::new(),
                    models: Vec::new(),
                    enums: Vec::new(),
                }
            });
        file.models.push(model.clone());
    }
    for file in files.values_mut() {
        file.models
            .sort_by_key(|m| (m.location.line, m.location.column));
    }
    files.into_values().collect()
}

/// `watch.proto`: `Watch<Model>(WatchRequest) returns (stream <Model>Event)`
/// for every concrete model.
fn watch_proto(schema: &Schema) -> String {
    let mut text = format!(
        "// Generated by syncplane: watch the change log of each model.\n\
         syntax = \"proto3\";\n\n\
         package {WATCH_PACKAGE};\n\n\
         import \"xos.proto\";\n\n\
         message WatchRequest {{\n\
         \x20 // Changes after this sequence number; unset: from now on.\n\
         \x20 optional uint64 since = 1;\n\
         }}\n\n\
         enum Kind {{\n\
         \x20 KIND_UNSPECIFIED = 0;\n\
         \x20 CREATED = 1;\n\
         \x20 UPDATED = 2;\n\
         \x20 DELETED = 3;\n\
         }}\n"
    );
    let models: Vec<&str> = schema
        .models()
        .filter(|m| !m.is_abstract())
        .map(|m| m.name.as_str())
        .collect();
    for model in &models {
        let _ = write!(
            text,
            "\nmessage {model}Event {{\n\
             \x20 uint64 seq = 1;\n\
             \x20 Kind kind = 2;\n\
             \x20 int32 id = 3;\n\
             \x20 // The object when the event is sent; unset once purged.\n\
             \x20 xos.{model} object = 4;\n\
             }}\n"
        );
    }
    text.push_str("\nservice Watch {\n");
    for model in &models {
        let _ = writeln!(
            text,
            "  rpc Watch{model}(WatchRequest) returns (stream {model}Event);"
        );
    }
    text.push_str("}\n");
    text
}

/// The fixed files and the generated ones, by name.
fn proto_files(registry: &Registry) -> Result<BTreeMap<String, String>> {
    let schema = registry.schema();
    let xos = generate(Target::Proto, schema, &model_files(schema)).map_err(Error::Generate)?;
    Ok(BTreeMap::from([
        ("xos.proto".to_owned(), xos),
        ("watch.proto".to_owned(), watch_proto(schema)),
        ("common.proto".to_owned(), COMMON_PROTO.to_owned()),
        ("xosoptions.proto".to_owned(), XOSOPTIONS_PROTO.to_owned()),
        ("annotations.proto".to_owned(), ANNOTATIONS_PROTO.to_owned()),
        ("http.proto".to_owned(), HTTP_PROTO.to_owned()),
    ]))
}

/// Resolves imports among the served files.
struct Served(BTreeMap<String, String>);

impl FileResolver for Served {
    fn open_file(&self, name: &str) -> std::result::Result<ProtoFile, protox::Error> {
        match self.0.get(name) {
            Some(text) => ProtoFile::from_source(name, text),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

impl Descriptors {
    /// Generates and compiles the files for the models of `registry`.
    ///
    /// # Errors
    ///
    /// [`Error::Generate`] or [`Error::Compile`]: a bug, or models whose
    /// names protobuf cannot take; the server logs it and answers
    /// `UNAVAILABLE`.
    pub fn build(registry: Arc<Registry>) -> Result<Descriptors> {
        let files = proto_files(&registry)?;
        let mut resolver = ChainFileResolver::new();
        resolver.add(Served(files.clone()));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler
            .open_files(["xos.proto", "watch.proto"])
            .map_err(|e| Error::Compile(Box::new(e)))?;
        Ok(Descriptors {
            registry,
            pool: compiler.descriptor_pool(),
            file_descriptor_set: compiler.file_descriptor_set(),
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_registry() -> Arc<Registry> {
        let file = syncplane_xproto::parse("core.xproto", syncplane_xproto::CORE_XPROTO)
            .expect("core parses");
        let schema = Schema::default()
            .with_files(std::slice::from_ref(&file))
            .expect("core valid");
        Arc::new(Registry::new(schema))
    }

    #[test]
    fn the_core_models_compile_into_the_xos_service() {
        let descriptors = Descriptors::build(core_registry()).expect("compiles");
        let xos = descriptors
            .pool
            .get_service_by_name(XOS_SERVICE)
            .expect("service xos");
        let methods: Vec<String> = xos.methods().map(|m| m.name().to_owned()).collect();
        for method in [
            "ListSite",
            "GetSite",
            "CreateSite",
            "UpdateSite",
            "DeleteSite",
            "FilterSite",
        ] {
            assert!(
                methods.iter().any(|m| m == method),
                "{method} in {methods:?}"
            );
        }
        let site = descriptors
            .pool
            .get_message_by_name("xos.Site")
            .expect("Site");
        let name = site.get_field_by_name("name").expect("name");
        assert!(name.containing_oneof().is_some(), "scalars are in a oneof");
        assert_eq!(
            site.get_field_by_name("class_names")
                .expect("class_names")
                .number(),
            2046
        );
        assert!(
            descriptors
                .pool
                .get_service_by_name(WATCH_SERVICE)
                .and_then(|w| w.methods().find(|m| m.name() == "WatchSite"))
                .is_some_and(|m| m.is_server_streaming())
        );
    }
}
