//! The xproto modelling language.
//!
//! # Brief overview
//!
//! - [`parse`] turns one source file into a [`File`]: its options, policies
//!   and [`Model`]s with their [`Field`]s, each with a [`Location`].
//! - [`Schema`] puts files together (a service's files on top of the core
//!   models), checks that they fit, and answers questions about inheritance:
//!   [`Schema::all_fields`], [`Schema::is_a`], [`Schema::concrete_descendants`].
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

mod error;
mod ir;
mod lexer;
mod parser;
mod schema;

pub use error::{Error, ParseError, Result, ValidationErrors};
pub use ir::{
    Field, FieldType, File, LinkKind, Location, Model, Modifier, OptionValue, Options, Policy,
    ScalarType,
};
pub use parser::parse;
pub use schema::Schema;
