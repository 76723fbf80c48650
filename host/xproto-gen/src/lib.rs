//! Generators from xproto models.
//!
//! # Brief overview
//!
//! Every generator reads the resolved IR ([`ResolvedSchema`]) of the models
//! of the files given, and returns text. [`generate`] is the one entry
//! point; [`Target`] names what to produce:
//!
//! | target | output |
//! |---|---|
//! | [`Target::Deps`] | the model dependency graph in the original `model-deps` JSON format |
//! | [`Target::Ir`] | the resolved IR as JSON |
//! | [`Target::Proto`] | protobuf for the gRPC API, with the original field numbering |
//! | [`Target::Openapi`] | OpenAPI 3 (JSON) for the REST API at `/xosapi/v1/<app_label>/<plural>` |
//! | [`Target::Tosca`] | TOSCA custom types (what `/custom_type/<name>` serves) |
//! | [`Target::Sql`] | `CREATE TABLE`s for SQLite or PostgreSQL, as the store lays tables out |
//! | [`Target::Rust`] | typed model structs for the Rust guest SDK |
//! | [`Target::Python`] | typed model dataclasses for the Python guest SDK |
//! | [`Target::Typescript`] / [`Target::Javascript`] | model types (`.d.ts`) and definitions (`.js`) for the JavaScript guest SDK |
//! | [`Target::Dot`] / [`Target::Svg`] | the model graph, as Graphviz text or an SVG picture |
//! | [`Target::Docs`] | a Markdown reference of the models |
//!
//! Text targets are `minijinja` templates (in `templates/`, embedded in the
//! binary); structured ones (JSON) are built with `serde_json`. Output is
//! deterministic: the same input gives the same bytes.
//!
//! ```
//! use syncplane_xproto_gen::{Target, generate};
//!
//! let file = syncplane_xproto::parse("hello.xproto", r#"
//!     option app_label = "hello";
//!     message HelloService (Service) { required string hello_from = 1; }
//! "#)?;
//! let files = [file];
//! let schema = syncplane_xproto::Schema::resolve(&files)?;
//! let proto = generate(Target::Proto, &schema, &files)?;
//! // Service's own fields start at 101, so HelloService's start at 201.
//! assert!(proto.contains("string hello_from = 201;"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod docs;
mod error;
mod graph;
mod openapi;
mod proto;
mod render;
mod rust;
mod sdk_models;
mod sql;
pub mod tosca;

use std::fmt;
use std::str::FromStr;

use syncplane_xproto::{File, ResolvedSchema, Schema};

pub use error::{Error, Result};

/// An SQL dialect for [`Target::Sql`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// SQLite, the embedded default.
    #[default]
    Sqlite,
    /// PostgreSQL, for several hosts sharing one database.
    Postgres,
}

/// What [`generate`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The model-deps JSON (`{"User": [["Site", "site", "users"]]}`).
    Deps,
    /// The resolved IR as JSON.
    Ir,
    /// Protobuf for the gRPC API.
    Proto,
    /// OpenAPI 3 for the REST API, as JSON.
    Openapi,
    /// TOSCA custom types, one YAML document per concrete model.
    Tosca,
    /// The tables, in the given dialect.
    Sql(Dialect),
    /// Typed model structs for the Rust guest SDK.
    Rust,
    /// Typed model dataclasses for the Python guest SDK.
    Python,
    /// Model types (a `.d.ts`) for the JavaScript guest SDK.
    Typescript,
    /// Model definitions (`model()` calls) for the JavaScript guest SDK.
    Javascript,
    /// The model graph in Graphviz's dot language.
    Dot,
    /// The model graph as SVG, laid out without Graphviz.
    Svg,
    /// A Markdown reference.
    Docs,
}

impl Target {
    /// Every target's name as the CLI spells it.
    pub const NAMES: &'static [&'static str] = &[
        "deps",
        "ir",
        "proto",
        "openapi",
        "tosca",
        "sql",
        "rust",
        "python",
        "typescript",
        "javascript",
        "dot",
        "svg",
        "docs",
    ];
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Deps => "deps",
            Target::Ir => "ir",
            Target::Proto => "proto",
            Target::Openapi => "openapi",
            Target::Tosca => "tosca",
            Target::Sql(_) => "sql",
            Target::Rust => "rust",
            Target::Python => "python",
            Target::Typescript => "typescript",
            Target::Javascript => "javascript",
            Target::Dot => "dot",
            Target::Svg => "svg",
            Target::Docs => "docs",
        })
    }
}

impl FromStr for Target {
    type Err = Error;

    /// Parses a target name; `sql` means SQLite (use [`Target::Sql`] for
    /// PostgreSQL).
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "deps" => Target::Deps,
            "ir" => Target::Ir,
            "proto" => Target::Proto,
            "openapi" => Target::Openapi,
            "tosca" => Target::Tosca,
            "sql" => Target::Sql(Dialect::Sqlite),
            "rust" => Target::Rust,
            "python" => Target::Python,
            "typescript" => Target::Typescript,
            "javascript" => Target::Javascript,
            "dot" => Target::Dot,
            "svg" => Target::Svg,
            "docs" => Target::Docs,
            other => return Err(Error::UnknownTarget(other.to_owned())),
        })
    }
}

/// Generates `target` for the models of `files`, resolved against `schema`
/// (which must contain them: [`Schema::resolve`] of the same files, or a
/// host's schema they were installed into). Models the files only reference
/// (bases, link targets) are not generated themselves.
///
/// # Errors
///
/// [`Error::Render`] when a template fails (a bug: templates are tested),
/// [`Error::Json`] when JSON cannot be written, [`Error::Layout`] when the
/// SVG layout fails.
pub fn generate(target: Target, schema: &Schema, files: &[File]) -> Result<String> {
    let ir = ResolvedSchema::build(schema, files);
    match target {
        Target::Deps => {
            let models = ir.models.iter().map(|m| m.name.as_str());
            let deps = syncplane_xproto::model_deps(schema, models);
            Ok(serde_json::to_string_pretty(&deps)?)
        }
        Target::Ir => Ok(serde_json::to_string_pretty(&ir)?),
        Target::Proto => proto::generate(&ir),
        Target::Openapi => openapi::generate(&ir),
        Target::Tosca => tosca::generate(schema, &ir),
        Target::Sql(dialect) => sql::generate(&ir, dialect),
        Target::Rust => rust::generate(&ir),
        Target::Python => sdk_models::python(&ir),
        Target::Typescript => sdk_models::typescript(&ir),
        Target::Javascript => sdk_models::javascript(&ir),
        Target::Dot => graph::dot(&ir),
        Target::Svg => graph::svg(&ir),
        Target::Docs => docs::generate(&ir),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use syncplane_xproto::{File, Schema};

    /// The hello-world service of the tutorial, on the built-in core.
    pub const HELLO: &str = r#"
option app_label = "hello-world";

message HelloWorldService (Service){
    option verbose_name = "Hello World Service";
    required string hello_from = 1 [help_text = "The name of who is saying hello", max_length = 64];
}

message HelloWorldServiceInstance (ServiceInstance){
    option owner_class_name="HelloWorldService";
    required string hello_to = 1 [help_text = "The name of who is being greeted"];
    optional manytoone greeter->HelloWorldService:greetings = 2:1001 [db_index = True];
}
"#;

    /// The hello-world files and their schema.
    pub fn hello() -> (Schema, Vec<File>) {
        let file = syncplane_xproto::parse("hello-world.xproto", HELLO).expect("parses");
        let files = vec![file];
        let schema = Schema::resolve(&files).expect("valid");
        (schema, files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_deterministic() {
        let (schema, files) = testing::hello();
        for name in Target::NAMES {
            let target: Target = name.parse().expect("known");
            let first = generate(target, &schema, &files).expect("generates");
            let second = generate(target, &schema, &files).expect("generates");
            assert!(!first.is_empty(), "{name} is empty");
            assert_eq!(first, second, "{name} differs between runs");
            assert_eq!(target.to_string(), *name);
        }
        let pg = generate(Target::Sql(Dialect::Postgres), &schema, &files).expect("sql");
        assert_eq!(
            pg,
            generate(Target::Sql(Dialect::Postgres), &schema, &files).expect("sql")
        );
    }

    #[test]
    fn every_target_renders_the_corpus_core() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpus/xproto/xos/core.xproto");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the corpus ships in shared/ beside the checkout: {e}"));
        let files = [syncplane_xproto::parse("core.xproto", &text).expect("parses")];
        let schema = Schema::resolve(&files).expect("valid");
        for name in Target::NAMES {
            let target: Target = name.parse().expect("known");
            let out = generate(target, &schema, &files).expect("generates");
            assert!(out.contains("Slice"), "{name} lacks the Slice model");
        }
        let rust = generate(Target::Rust, &schema, &files).expect("rust");
        syn::parse_file(&rust).unwrap_or_else(|e| panic!("{e}\n{rust}"));
        let openapi = generate(Target::Openapi, &schema, &files).expect("openapi");
        let doc: serde_json::Value = serde_json::from_str(&openapi).expect("json");
        assert!(doc["paths"]["/xosapi/v1/core/slices"].is_object());
    }

    #[test]
    fn repeated_and_enum_fields_are_shown_as_such() {
        let file = syncplane_xproto::parse(
            "k.xproto",
            "enum Kind { VM = 0; CONTAINER = 1; }\n\
             message K (XOSBase) { repeated string tags = 1; optional Kind kind = 2; }",
        )
        .expect("parses");
        let files = [file];
        let schema = Schema::resolve(&files).expect("valid");
        let proto = generate(Target::Proto, &schema, &files).expect("proto");
        assert!(proto.contains("  repeated string tags = 101;"), "{proto}");
        let docs = generate(Target::Docs, &schema, &files).expect("docs");
        assert!(docs.contains("| `tags` | string | repeated |"), "{docs}");
        assert!(
            docs.contains("| `kind` | enum `Kind` | optional |"),
            "{docs}"
        );
        let openapi: serde_json::Value =
            serde_json::from_str(&generate(Target::Openapi, &schema, &files).expect("openapi"))
                .expect("json");
        let tags = &openapi["components"]["schemas"]["K"]["properties"]["tags"];
        assert_eq!(tags["type"], "array", "{tags}");
        assert_eq!(tags["items"]["type"], "string", "{tags}");
        let rust = generate(Target::Rust, &schema, &files).expect("rust");
        assert!(rust.contains("pub tags: Vec<String>,"), "{rust}");
        assert!(rust.contains("pub kind: Option<i64>,"), "{rust}");
    }

    #[test]
    fn unknown_targets_are_errors() {
        let err = "pdf".parse::<Target>().expect_err("unknown");
        assert!(err.to_string().contains("pdf"), "{err}");
    }

    #[test]
    fn deps_and_ir_cover_only_the_given_files() {
        let (schema, files) = testing::hello();
        let deps: serde_json::Value =
            serde_json::from_str(&generate(Target::Deps, &schema, &files).expect("deps"))
                .expect("json");
        assert!(deps.get("Service").is_none(), "{deps}");
        assert_eq!(
            deps["HelloWorldServiceInstance"][0],
            serde_json::json!(["HelloWorldService", "greeter", "greetings"])
        );
        let ir: ResolvedSchema =
            serde_json::from_str(&generate(Target::Ir, &schema, &files).expect("ir"))
                .expect("ir json");
        let names: Vec<_> = ir.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["HelloWorldService", "HelloWorldServiceInstance"]);
    }
}
