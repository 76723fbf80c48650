//! The xproto modelling language.
//!
//! # Brief overview
//!
//! - [`parse`] turns one source file into a [`File`]: its options, policies
//!   and [`Model`]s with their [`Field`]s, each with a [`Location`].
//! - [`Schema`] puts files together (a service's files on top of the core
//!   models), checks that they fit, and answers questions about inheritance:
//!   [`Schema::all_fields`], [`Schema::is_a`], [`Schema::concrete_descendants`].
//!   [`Schema::resolve`] checks files alone, against the built-in core.
//! - [`ResolvedSchema`] is the stable IR every generator reads: inheritance
//!   resolved, links and reverse links computed, the original field numbering.
//! - [`Policy`] expressions are typed trees ([`PolicyExpr`]), type-checked
//!   by [`Schema`] against the models and decided by [`eval`] over a
//!   [`PolicyEnv`]; [`Model::validators`] lists the policies a model is
//!   validated with.
//! - [`model_deps`] renders the dependency graph in the original
//!   `model-deps` format.
//! - [`parse_full`] also returns the file's [`Warning`]s (unknown or repeated
//!   options) and its comments; [`format`] / [`format_source`] print it
//!   back canonically with them (`syncplane xproto fmt`).
//! - [`render`] draws errors and warnings ([`Diagnostic`]) with a snippet of
//!   the source and a caret under the place.
//!
//! ```
//! let core = syncplane_xproto::parse("core.xproto", "message Service { required string name = 1; }")?;
//! let svc = syncplane_xproto::parse("hello.xproto", r#"
//!     option app_label = "hello";
//!     message HelloService (Service) { required string hello_from = 1; }
//! "#)?;
//! let schema = syncplane_xproto::Schema::new().with_files(&[core, svc])?;
//! let fields: Vec<_> = schema.all_fields("HelloService").iter().map(|f| f.name.as_str()).collect();
//! assert_eq!(fields, ["name", "hello_from"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod choices;
mod deps;
mod diagnostic;
mod error;
mod field_check;
mod fmt;
mod ir;
mod layout;
mod lexer;
mod options;
mod parser;
mod policy;
mod resolved;
mod schema;

pub use choices::choice_pairs;
pub use deps::{Dependency, model_deps};
pub use diagnostic::{Diagnostic, Severity, Warning, render};
pub use error::{Error, ParseError, Result, ValidationErrors};
pub use fmt::{format, format_file, format_source};
pub use ir::{
    Enum, EnumValue, Field, FieldType, File, LinkKind, Location, Model, Modifier, OptionValue,
    Options, Policy, ProtoScalar, ScalarType,
};
pub use parser::{Parsed, parse, parse_full};
pub use policy::{
    Access, BinaryOp, CompareOp, EvalContext, EvalError, ExprKind, ObjectRef, PolicyEnv,
    PolicyExpr, PolicyPath, Quantifier, Term, TermKind, Validator, Value, eval, parse_policy_expr,
    parse_validators,
};
pub use resolved::{
    IR_VERSION, Link, RelationKind, ResolvedField, ResolvedModel, ResolvedSchema, ReverseField,
};
pub use schema::{ReverseLink, Schema};

/// syncplane's built-in core models (`XOSBase`, `User`, `Site`, `Service`,
/// `ServiceInstance`, ...), modelled on XOS's core. Service files extend them.
pub const CORE_XPROTO: &str = include_str!("../models/core.xproto");

/// The file name the built-in core models are reported under.
pub const CORE_FILE: &str = "core.xproto";
