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

/// XOS's `common.proto` (4.0.4): the request of `Get`/`Delete` and of
/// `Filter`, with XOS's operator and kind numbers.
pub const COMMON_PROTO: &str = r#"// The messages XOS's API shares between models (XOS 4.0.4's common.proto).
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
    CONTAINS = 6;
    ICONTAINS = 7;
    REGEX = 8;
    IREGEX = 9;
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

/// XOS's `xosoptions.proto` (4.0.4, same names and numbers): the options
/// generated messages carry. XOS's client (`xosapi`'s ORM) finds links
/// only through `foreignKey`, `reverseForeignKey` and
/// `manyToManyForeignKey`, and content types through `contentTypeId`.
pub const XOSOPTIONS_PROTO: &str = r#"// Options on XOS's generated messages and fields (XOS 4.0.4's xosoptions.proto).
syntax = "proto3";

package xos;

import "google/protobuf/descriptor.proto";

message ValRule {
  int32 maxLength = 1;
  bool nonNull = 2;
  bool unique = 3;
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

extend google.protobuf.FieldOptions {
  ValRule val = 1001;
  ForeignKeyRule foreignKey = 1002;
  ReverseForeignKeyRule reverseForeignKey = 1003;
  ManyToManyForeignKeyRule manyToManyForeignKey = 1004;
  bool guiHidden = 1005;
  bool feedbackState = 1006;
  bool bookkeepingState = 1007;
}

extend google.protobuf.MessageOptions {
  string contentTypeId = 1001;
}
"#;

/// XOS's `utility.proto`, the part syncplane serves: `Login` (a session
/// for `x-xossession`), `Logout`, `NoOp` and `AuthenticatedNoOp`.
pub const UTILITY_PROTO: &str = r#"// XOS's utility service (the part of XOS 4.0.4's utility.proto syncplane serves).
syntax = "proto3";

package xos;

import "google/protobuf/empty.proto";

message LoginRequest {
  string username = 1;
  string password = 2;
}

message LoginResponse {
  string sessionid = 1;
}

service utility {
  // A session token, sent back as metadata `x-xossession`; needs no credentials.
  rpc Login(LoginRequest) returns (LoginResponse);
  // Ends the session presented.
  rpc Logout(google.protobuf.Empty) returns (google.protobuf.Empty);
  // Answers at once; needs no credentials.
  rpc NoOp(google.protobuf.Empty) returns (google.protobuf.Empty);
  // Answers once the credentials are checked.
  rpc AuthenticatedNoOp(google.protobuf.Empty) returns (google.protobuf.Empty);
}
"#;

/// XOS's `dynamicload.proto`, the part its client calls on every
/// connect: `GetConvenienceMethods`. Services reach syncplane as packages
/// of WebAssembly components (`syncplane service install`), so there is
/// no Python to hand out and the list is empty.
pub const DYNAMICLOAD_PROTO: &str = r#"// XOS's dynamicload service (the part of XOS 4.0.4's dynamicload.proto syncplane serves).
syntax = "proto3";

package xos;

import "google/protobuf/empty.proto";

message APIConvenienceFile {
  string filename = 1;
  string contents = 2;
}

message ListConvenienceMethodsReply {
  repeated APIConvenienceFile convenience_methods = 1;
}

service dynamicload {
  // Python files XOS's client loads into its ORM; always empty here.
  rpc GetConvenienceMethods(google.protobuf.Empty) returns (ListConvenienceMethodsReply);
}
"#;

/// XOS's `modeldefs.proto`: what `GET /xosapi/v1/modeldefs` answers, as
/// messages.
pub const MODELDEFS_PROTO: &str = r#"// XOS's model definitions (XOS 4.0.4's modeldefs.proto).
syntax = "proto3";

package xos;

import "google/protobuf/empty.proto";

message FieldValidator {
  string name = 1;
  oneof val_value {
    bool bool_value = 2;
    int64 int_value = 3;
    string str_value = 4;
  }
}

message FieldOption {
  string id = 1;
  string label = 2;
}

message FieldRelation {
  string model = 1;
  string type = 2;
  string on_field = 3;
}

message ModelField {
  string name = 1;
  string hint = 2;
  string type = 3;
  FieldRelation relation = 4;
  repeated FieldValidator validators = 5;
  repeated FieldOption options = 6;
  string default = 7;
  bool read_only = 8;
}

message ModelDef {
  string name = 1;
  repeated ModelField fields = 2;
  repeated FieldRelation relations = 3;
  string app = 4;
  string verbose_name = 5;
  string description = 6;
  string sync_implemented = 7;
  string policy_implemented = 8;
}

message ModelDefs {
  repeated ModelDef items = 1;
}

service modeldefs {
  rpc ListModelDefs(google.protobuf.Empty) returns (ModelDefs);
}
"#;

/// XOS's (Chameleon's) `schema.proto`: how a client downloads the other
/// files. Compiled into the server, not listed by `GetSchema` (clients
/// ship it, as XOS's did).
pub const SCHEMA_PROTO: &str = r#"// How clients download the API's .proto files (Chameleon's schema.proto, as XOS 4.0.4 served it).
syntax = "proto3";

package schema;

import "google/protobuf/empty.proto";

message ProtoFile {
  // The file's name, flat (`xos.proto`).
  string file_name = 1;
  // Its text.
  string proto = 2;
  // A zlib-compressed FileDescriptorSet of the file and its imports.
  bytes descriptor = 3;
}

message Schemas {
  repeated ProtoFile protos = 1;
  // The file a REST gateway would be generated from.
  string swagger_from = 2;
  string yang_from = 3;
}

service SchemaService {
  // The files of the models installed now; needs no credentials.
  rpc GetSchema(google.protobuf.Empty) returns (Schemas);
}
"#;

/// The package of the watch service (beyond XOS): its own, so that event
/// message names cannot clash with model names.
pub const WATCH_PACKAGE: &str = "syncplane.watch";

/// The fully qualified name of the XOS model service.
pub const XOS_SERVICE: &str = "xos.xos";

/// XOS's utility service (`Login`, `NoOp`, ...).
pub const UTILITY_SERVICE: &str = "xos.utility";

/// XOS's dynamic load service (`GetConvenienceMethods`).
pub const DYNAMICLOAD_SERVICE: &str = "xos.dynamicload";

/// XOS's model definitions service (`ListModelDefs`).
pub const MODELDEFS_SERVICE: &str = "xos.modeldefs";

/// The service clients download the `.proto` files from.
pub const SCHEMA_SERVICE: &str = "schema.SchemaService";

/// The files `GetSchema` lists, in this order: every one imports only
/// files of this list and well-known types.
pub const SCHEMA_FILES: &[&str] = &[
    "xos.proto",
    "common.proto",
    "xosoptions.proto",
    "utility.proto",
    "dynamicload.proto",
    "modeldefs.proto",
    "watch.proto",
];

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
    /// What `GetSchema` answers, in [`SCHEMA_FILES`] order.
    pub schema: Vec<SchemaFile>,
}

/// One file of `GetSchema`'s answer.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    /// The flat file name (`xos.proto`).
    pub file_name: String,
    /// The `.proto` text.
    pub proto: String,
    /// A zlib-compressed `FileDescriptorSet` of the file and the files it
    /// imports, as XOS served it.
    pub descriptor: Vec<u8>,
}

/// The file `name` and everything it imports, imports first.
fn with_imports(pool: &DescriptorPool, name: &str) -> prost_types::FileDescriptorSet {
    fn visit(
        file: &prost_reflect::FileDescriptor,
        seen: &mut std::collections::BTreeSet<String>,
        out: &mut Vec<prost_types::FileDescriptorProto>,
    ) {
        if !seen.insert(file.name().to_owned()) {
            return;
        }
        for dependency in file.dependencies() {
            visit(&dependency, seen, out);
        }
        out.push(file.file_descriptor_proto().clone());
    }
    let mut file = Vec::new();
    if let Some(found) = pool.get_file_by_name(name) {
        visit(&found, &mut std::collections::BTreeSet::new(), &mut file);
    }
    prost_types::FileDescriptorSet { file }
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a `Vec` cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
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
         \x20 // Changes after this sequence number; unset: from now on. A oneof\n\
         \x20 // rather than proto3 `optional`, which older protoc plugins refuse\n\
         \x20 // (XOS's client compiles every file it downloads); same wire format.\n\
         \x20 oneof since_present {{\n\
         \x20   uint64 since = 1;\n\
         \x20 }}\n\
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
        ("utility.proto".to_owned(), UTILITY_PROTO.to_owned()),
        ("dynamicload.proto".to_owned(), DYNAMICLOAD_PROTO.to_owned()),
        ("modeldefs.proto".to_owned(), MODELDEFS_PROTO.to_owned()),
        ("schema.proto".to_owned(), SCHEMA_PROTO.to_owned()),
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
            .open_files(SCHEMA_FILES.iter().copied().chain(["schema.proto"]))
            .map_err(|e| Error::Compile(Box::new(e)))?;
        let pool = compiler.descriptor_pool();
        let schema = SCHEMA_FILES
            .iter()
            .map(|name| SchemaFile {
                file_name: (*name).to_owned(),
                proto: files.get(*name).cloned().unwrap_or_default(),
                descriptor: zlib(&prost::Message::encode_to_vec(&with_imports(&pool, name))),
            })
            .collect();
        Ok(Descriptors {
            registry,
            pool,
            file_descriptor_set: compiler.file_descriptor_set(),
            files,
            schema,
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

    // See: issue 21 (what XOS's client downloads on connect).
    #[test]
    fn get_schema_lists_flat_files_that_import_only_each_other() {
        use std::io::Read as _;
        let descriptors = Descriptors::build(core_registry()).expect("compiles");
        let names: Vec<&str> = descriptors
            .schema
            .iter()
            .map(|f| f.file_name.as_str())
            .collect();
        assert_eq!(names, SCHEMA_FILES);
        for file in &descriptors.schema {
            for line in file.proto.lines().filter(|l| l.starts_with("import ")) {
                let imported = line.trim_start_matches("import \"").trim_end_matches("\";");
                assert!(
                    imported.starts_with("google/protobuf/") || SCHEMA_FILES.contains(&imported),
                    "{} imports {imported}",
                    file.file_name
                );
            }
            let mut bytes = Vec::new();
            flate2::read::ZlibDecoder::new(file.descriptor.as_slice())
                .read_to_end(&mut bytes)
                .expect("zlib");
            let set: prost_types::FileDescriptorSet =
                prost::Message::decode(bytes.as_slice()).expect("a FileDescriptorSet");
            assert_eq!(
                set.file.last().and_then(|f| f.name.as_deref()),
                Some(file.file_name.as_str()),
                "the file comes last, after its imports"
            );
        }
        let options = descriptors
            .pool
            .get_extension_by_name("xos.foreignKey")
            .expect("xos.foreignKey");
        assert_eq!(options.number(), 1002, "XOS 4.0.4's number");
    }
}
