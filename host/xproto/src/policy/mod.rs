//! Policies: boolean formulas in first-order logic that decide who may do
//! what to which object, and validators built from them.
//!
//! - [`PolicyExpr`] is the typed tree of `policy name < expr >`, read by
//!   [`parse_policy_expr`] (the xproto parser calls it for every policy) and
//!   written back by its `Display`.
//! - [`check`](crate::Schema) type-checks policies against the models when
//!   files are put into a [`Schema`](crate::Schema): `obj.field`, `ctx.user.field`,
//!   `exists Model: ...` and `*policy(link)` must all resolve.
//! - [`eval`] decides a policy for one object over a [`PolicyEnv`], the
//!   host's view of the data.
//! - [`Validator`] is one `policy:message` entry of a message's
//!   `option validators`.

mod ast;
pub(crate) mod check;
mod display;
mod eval;
mod parse;
mod python;
mod validator;

pub use ast::{BinaryOp, CompareOp, ExprKind, PolicyExpr, PolicyPath, Quantifier, Term, TermKind};
pub use eval::{Access, EvalContext, EvalError, ObjectRef, PolicyEnv, Value, eval};
pub use parse::parse_policy_expr;
pub use validator::{Validator, parse_validators};
