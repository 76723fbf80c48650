//! Type-checking policies against the models of a [`Schema`].
//!
//! A policy is checked once for every model it guards (`message M::p`, a
//! validator of `M`, or the target of a `*p(link)` call from a checked
//! policy), with `obj` typed as that model; a policy nothing uses is checked
//! without a type for `obj`.

use std::collections::BTreeSet;

use crate::diagnostic::Warning;
use crate::error::ParseError;
use crate::ir::{FieldType, File, LinkKind, Location};
use crate::schema::Schema;

use super::ast::{ExprKind, PolicyExpr, PolicyPath, Term, TermKind};
use super::validator::parse_validators;

/// What a path leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    /// A scalar (or `ctx.read_access`).
    Scalar,
    /// One object of a model.
    Object(String),
    /// A collection of objects of a model.
    Many(String),
}

/// Checks the policies of `files` and every policy use by their models,
/// against `schema` (which already holds the files' models and policies).
pub(crate) fn check_policies(
    schema: &Schema,
    files: &[File],
    errors: &mut Vec<ParseError>,
    warnings: &mut Vec<Warning>,
) {
    let mut checker = Checker {
        schema,
        done: BTreeSet::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    for model in files.iter().flat_map(|f| &f.models) {
        if let Some(name) = &model.policy {
            if schema.policy(name).is_some() {
                checker.check(name, Some(&model.name));
            } else {
                checker.error(
                    &model.location,
                    format!(
                        "model `{}` is guarded by unknown policy `{name}`",
                        model.name
                    ),
                );
            }
        }
        let Some(value) = model.options.get("validators") else {
            continue;
        };
        let Some(text) = value.as_str() else {
            checker.error(
                &model.location,
                format!("option `validators` of `{}` must be a string", model.name),
            );
            continue;
        };
        match parse_validators(text) {
            Err(message) => checker.error(&model.location, format!("`{}`: {message}", model.name)),
            Ok(validators) => {
                for v in validators {
                    if schema.policy(&v.policy).is_some() {
                        checker.check(&v.policy, Some(&model.name));
                    } else {
                        checker.error(
                            &model.location,
                            format!(
                                "validator of `{}` names unknown policy `{}`",
                                model.name, v.policy
                            ),
                        );
                    }
                }
            }
        }
    }
    for policy in files.iter().flat_map(|f| &f.policies) {
        if !checker.done.iter().any(|(name, _)| name == &policy.name) {
            checker.check(&policy.name, None);
        }
    }
    dedup_into(checker.errors, errors);
    dedup_into(checker.warnings, warnings);
}

/// A policy checked for several models can report the same problem twice.
fn dedup_into<E: ToString>(found: Vec<E>, out: &mut Vec<E>) {
    let mut seen = BTreeSet::new();
    for e in found {
        if seen.insert(e.to_string()) {
            out.push(e);
        }
    }
}

struct Checker<'s> {
    schema: &'s Schema,
    /// (policy, model of `obj`) pairs checked or being checked.
    done: BTreeSet<(String, Option<String>)>,
    errors: Vec<ParseError>,
    warnings: Vec<Warning>,
}

impl Checker<'_> {
    fn error(&mut self, at: &Location, message: String) {
        self.errors.push(ParseError::new(at.clone(), message));
    }

    fn check(&mut self, name: &str, obj: Option<&str>) {
        if !self.done.insert((name.to_owned(), obj.map(str::to_owned))) {
            return;
        }
        let Some(policy) = self.schema.policy(name) else {
            return;
        };
        let mut bound = Vec::new();
        self.expr(&policy.expr, obj, &mut bound);
    }

    fn expr(&mut self, expr: &PolicyExpr, obj: Option<&str>, bound: &mut Vec<String>) {
        match &expr.kind {
            ExprKind::Term(t) => self.term(t, obj, bound),
            ExprKind::Compare { lhs, rhs, .. } => {
                self.term(lhs, obj, bound);
                self.term(rhs, obj, bound);
            }
            ExprKind::Not(e) | ExprKind::Group(e) => self.expr(e, obj, bound),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs, obj, bound);
                self.expr(rhs, obj, bound);
            }
            ExprKind::Quantified {
                quantifier,
                model,
                body,
            } => {
                if self.schema.model(model).is_none() {
                    self.error(
                        &expr.location,
                        format!(
                            "`{} {model}`: unknown model `{model}`",
                            quantifier.keyword()
                        ),
                    );
                }
                bound.push(model.clone());
                self.expr(body, obj, bound);
                bound.pop();
            }
        }
    }

    fn term(&mut self, term: &Term, obj: Option<&str>, bound: &[String]) {
        match &term.kind {
            TermKind::PolicyPath(path) => {
                self.path(path, obj, bound, &term.location);
            }
            TermKind::Call { policy, arg } => {
                if self.schema.policy(policy).is_none() {
                    self.error(&term.location, format!("policy `{policy}` is not defined"));
                    return;
                }
                let Some(model) = obj else {
                    return;
                };
                match self.follow(model, arg, &term.location) {
                    Some(Resolved::Object(target)) => self.check(policy, Some(&target)),
                    Some(_) => self.error(
                        &term.location,
                        format!(
                            "the argument `{}` of `*{policy}` is not a link to one object of `{model}`",
                            arg.text()
                        ),
                    ),
                    None => {}
                }
            }
            TermKind::Python(_) => self.warnings.push(Warning::new(
                term.location.clone(),
                "python escapes (`{{ ... }}`) are kept but syncplane cannot evaluate them; the policy will deny".into(),
            )),
            TermKind::Str(_)
            | TermKind::Int(_)
            | TermKind::Float(_)
            | TermKind::Bool(_)
            | TermKind::Null => {}
        }
    }

    fn path(&mut self, path: &PolicyPath, obj: Option<&str>, bound: &[String], at: &Location) {
        let Some((first, rest)) = path.segments.split_first() else {
            return;
        };
        let rel = |segments: &[String]| PolicyPath {
            segments: segments.to_vec(),
            call: path.call,
        };
        match first.as_str() {
            "obj" => {
                if let Some(model) = obj {
                    self.follow_reporting(model, &rel(rest), path, at);
                }
            }
            "ctx" => match rest.first().map(String::as_str) {
                Some("user") => {
                    if rest.len() > 1 {
                        if self.schema.model("User").is_none() {
                            self.error(at, format!("`{}` needs a `User` model", path.text()));
                        } else {
                            self.follow_reporting("User", &rel(&rest[1..]), path, at);
                        }
                    }
                }
                Some("read_access" | "write_access") if rest.len() == 1 && !path.call => {}
                Some(attribute @ ("read_access" | "write_access")) => self.error(
                    at,
                    format!("`ctx.{attribute}` is a boolean; `{}` does not exist", path.text()),
                ),
                _ => self.error(
                    at,
                    format!(
                        "unknown context `{}` (expected `ctx.user`, `ctx.read_access` or `ctx.write_access`)",
                        path.text()
                    ),
                ),
            },
            name if bound.iter().any(|b| b == name) => {
                if self.schema.model(name).is_some() {
                    self.follow_reporting(name, &rel(rest), path, at);
                }
            }
            name => self.error(
                at,
                format!(
                    "unknown name `{name}` in `{}` (expected `obj`, `ctx` or a model bound by `exists`/`forall`)",
                    path.text()
                ),
            ),
        }
    }

    fn follow_reporting(
        &mut self,
        model: &str,
        rel: &PolicyPath,
        whole: &PolicyPath,
        at: &Location,
    ) {
        let offset = whole.segments.len() - rel.segments.len();
        if let Err(message) = self.resolve(model, rel, whole, offset) {
            self.error(at, message);
        }
    }

    fn follow(&mut self, model: &str, rel: &PolicyPath, at: &Location) -> Option<Resolved> {
        match self.resolve(model, rel, rel, 0) {
            Ok(r) => Some(r),
            Err(message) => {
                self.error(at, message);
                None
            }
        }
    }

    /// Follows `rel` from an object of `model`; errors name the prefix of
    /// `whole` (of which `rel` is the tail from segment `offset`).
    fn resolve(
        &self,
        model: &str,
        rel: &PolicyPath,
        whole: &PolicyPath,
        offset: usize,
    ) -> Result<Resolved, String> {
        let mut current = Resolved::Object(model.to_owned());
        let count = rel.segments.len();
        for (i, segment) in rel.segments.iter().enumerate() {
            let prefix = || whole.segments[..offset + i].join(".");
            if rel.call && i + 1 == count {
                return match (&current, segment.as_str()) {
                    (Resolved::Many(_), "all") => Ok(current),
                    _ => Err(format!(
                        "`{}`: only `all()` may be called, on a collection",
                        whole.text()
                    )),
                };
            }
            current = match &current {
                Resolved::Object(m) => self.member(m, segment).ok_or_else(|| {
                    format!("`{}`: model `{m}` has no field `{segment}`", whole.text())
                })?,
                Resolved::Scalar => {
                    return Err(format!(
                        "`{}`: `{}` is not an object, it has no field `{segment}`",
                        whole.text(),
                        prefix()
                    ));
                }
                Resolved::Many(_) => {
                    return Err(format!(
                        "`{}`: `{}` is a collection; test membership with `in`",
                        whole.text(),
                        prefix()
                    ));
                }
            };
        }
        Ok(current)
    }

    /// A field, `id`, `<link>_id` or reverse relation of `model`.
    fn member(&self, model: &str, name: &str) -> Option<Resolved> {
        if name == "id" || name == "pk" {
            return Some(Resolved::Scalar);
        }
        if let Some(field) = self.schema.field(model, name) {
            return Some(match &field.ty {
                FieldType::Scalar { .. } => Resolved::Scalar,
                FieldType::Link {
                    link: LinkKind::ManyToMany,
                    target,
                    ..
                } => Resolved::Many(target.clone()),
                FieldType::Link { target, .. } => Resolved::Object(target.clone()),
            });
        }
        if let Some(link) = name.strip_suffix("_id")
            && self
                .schema
                .field(model, link)
                .is_some_and(|f| f.link_target().is_some())
        {
            return Some(Resolved::Scalar);
        }
        self.schema
            .reverse_links(model)
            .into_iter()
            .find(|r| r.name == name)
            .map(|r| Resolved::Many(r.peer))
    }
}
