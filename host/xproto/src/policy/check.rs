//! Type-checking policies against the models of a [`Schema`].
//!
//! A policy is checked once for every model it guards (`message M::p`, a
//! validator of `M`, or the target of a `*p(link)` call from a checked
//! policy), with `obj` typed as that model; a policy nothing uses is checked
//! without a type for `obj`.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::Warning;
use crate::error::ParseError;
use crate::ir::{FieldType, File, LinkKind, Location, ScalarType};
use crate::schema::Schema;

use super::ast::{CompareOp, ExprKind, PolicyExpr, PolicyPath, Term, TermKind};
use super::validator::parse_validators;

/// What a term stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    /// A scalar: a field, a constant, `ctx.write_access`, a policy call.
    Scalar(ScalarType),
    /// One object of a model.
    Object(String),
    /// A collection of objects of a model.
    Many(String),
    /// `None`.
    Null,
}

impl Resolved {
    fn describe(&self) -> String {
        match self {
            Resolved::Scalar(ScalarType::String) => "a string".into(),
            Resolved::Scalar(ScalarType::Bool) => "a bool".into(),
            Resolved::Scalar(ScalarType::Int) => "an integer".into(),
            Resolved::Scalar(ScalarType::Float) => "a number".into(),
            Resolved::Object(m) => format!("a `{m}`"),
            Resolved::Many(m) => format!("a collection of `{m}`"),
            Resolved::Null => "None".into(),
        }
    }
}

/// A term as written, for messages.
fn term_text(term: &Term) -> String {
    match &term.kind {
        TermKind::Path(p) => p.text(),
        TermKind::Str(s) => format!("{s:?}"),
        TermKind::Int(i) => i.to_string(),
        TermKind::Float(f) => f.to_string(),
        TermKind::Bool(true) => "True".into(),
        TermKind::Bool(false) => "False".into(),
        TermKind::Null => "None".into(),
        TermKind::Call { policy, arg } => format!("*{policy}({})", arg.text()),
        TermKind::Python(text) => format!("{{{{ {text} }}}}"),
    }
}

/// Checks the policies of `files` and every policy use by their models,
/// against `schema` (which already holds the files' models and policies).
pub(crate) fn check_policies(
    schema: &Schema,
    files: &[&File],
    errors: &mut Vec<ParseError>,
    warnings: &mut Vec<Warning>,
) {
    let mut checker = Checker {
        schema,
        done: BTreeSet::new(),
        members: BTreeMap::new(),
        reverse_members: BTreeMap::new(),
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
    /// What each model's members lead to, built once per model: looking
    /// fields up through inheritance for every path segment is slow.
    members: BTreeMap<String, BTreeMap<String, Resolved>>,
    /// Reverse relations by model, listed on the first miss in `members`.
    reverse_members: BTreeMap<String, BTreeMap<String, Resolved>>,
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
            ExprKind::Term(t) => {
                self.term(t, obj, bound);
            }
            ExprKind::Compare { op, lhs, rhs } => {
                let l = self.term(lhs, obj, bound);
                let r = self.term(rhs, obj, bound);
                if let (Some(l), Some(r)) = (l, r) {
                    self.compare(*op, (lhs, &l), (rhs, &r), &expr.location);
                }
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

    /// Checks a term; what it stands for, when that is known.
    fn term(&mut self, term: &Term, obj: Option<&str>, bound: &[String]) -> Option<Resolved> {
        match &term.kind {
            TermKind::Path(path) => self.path(path, obj, bound, &term.location),
            TermKind::Call { policy, arg } => {
                if self.schema.policy(policy).is_none() {
                    self.error(&term.location, format!("policy `{policy}` is not defined"));
                    return None;
                }
                let model = obj?;
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
                Some(Resolved::Scalar(ScalarType::Bool))
            }
            TermKind::Python(text) => {
                let Some(membership) = super::python::parse(text) else {
                    self.error(
                        &term.location,
                        format!(
                            "python escape `{{{{ {} }}}}` cannot be evaluated: syncplane understands only `{{{{ 'text' in obj.field }}}}` and `{{{{ 'text' not in obj.field }}}}`",
                            text.trim()
                        ),
                    );
                    return None;
                };
                match self.path(&membership.haystack, obj, bound, &term.location) {
                    Some(Resolved::Scalar(ScalarType::String)) | None => {}
                    Some(other) => self.error(
                        &term.location,
                        format!(
                            "`{}` in a python escape is {}, not a string",
                            membership.haystack.text(),
                            other.describe()
                        ),
                    ),
                }
                Some(Resolved::Scalar(ScalarType::Bool))
            }
            TermKind::Str(_) => Some(Resolved::Scalar(ScalarType::String)),
            TermKind::Int(_) => Some(Resolved::Scalar(ScalarType::Int)),
            TermKind::Float(_) => Some(Resolved::Scalar(ScalarType::Float)),
            TermKind::Bool(_) => Some(Resolved::Scalar(ScalarType::Bool)),
            TermKind::Null => Some(Resolved::Null),
        }
    }

    /// `=` needs operands of one kind (numbers mix, an object matches its
    /// id, related models match); `in` needs a collection (or a string).
    fn compare(
        &mut self,
        op: CompareOp,
        (lhs, l): (&Term, &Resolved),
        (rhs, r): (&Term, &Resolved),
        at: &Location,
    ) {
        let written = format!("{} {} {}", term_text(lhs), op.symbol(), term_text(rhs));
        let problem = match (op, r) {
            (CompareOp::Eq, _) if self.comparable(l, r) => None,
            (CompareOp::In, Resolved::Many(m))
                if self.comparable(l, &Resolved::Object(m.clone())) =>
            {
                None
            }
            (CompareOp::In, Resolved::Scalar(ScalarType::String))
                if matches!(l, Resolved::Scalar(ScalarType::String) | Resolved::Null) =>
            {
                None
            }
            (CompareOp::In, Resolved::Many(_) | Resolved::Scalar(ScalarType::String))
            | (CompareOp::Eq, _) => Some(format!(
                "`{written}` compares {} with {}",
                l.describe(),
                r.describe()
            )),
            (CompareOp::In, _) => Some(format!(
                "`{written}`: the right side of `in` is {}, not a collection",
                r.describe()
            )),
        };
        if let Some(message) = problem {
            self.error(at, message);
        }
    }

    fn comparable(&self, a: &Resolved, b: &Resolved) -> bool {
        use Resolved::{Many, Null, Object, Scalar};
        let numeric = |s: &ScalarType| matches!(s, ScalarType::Int | ScalarType::Float);
        match (a, b) {
            (Null, _) | (_, Null) => true,
            (Scalar(x), Scalar(y)) => x == y || (numeric(x) && numeric(y)),
            (Object(_), Scalar(ScalarType::Int)) | (Scalar(ScalarType::Int), Object(_)) => true,
            (Object(m), Object(n)) => self.schema.is_a(m, n) || self.schema.is_a(n, m),
            (Many(m), Many(n)) => m == n,
            _ => false,
        }
    }

    /// Checks a dotted path; what it leads to, when that is known.
    fn path(
        &mut self,
        path: &PolicyPath,
        obj: Option<&str>,
        bound: &[String],
        at: &Location,
    ) -> Option<Resolved> {
        let (first, rest) = path.segments.split_first()?;
        let rel = |segments: &[String]| PolicyPath {
            segments: segments.to_vec(),
            call: path.call,
        };
        match first.as_str() {
            "obj" => self.follow_reporting(obj?, &rel(rest), path, at),
            "ctx" => match rest.first().map(String::as_str) {
                Some("user") => {
                    if self.schema.model("User").is_none() {
                        self.error(at, format!("`{}` needs a `User` model", path.text()));
                        None
                    } else {
                        self.follow_reporting("User", &rel(&rest[1..]), path, at)
                    }
                }
                Some("read_access" | "write_access") if rest.len() == 1 && !path.call => {
                    Some(Resolved::Scalar(ScalarType::Bool))
                }
                Some(attribute @ ("read_access" | "write_access")) => {
                    self.error(
                        at,
                        format!(
                            "`ctx.{attribute}` is a boolean; `{}` does not exist",
                            path.text()
                        ),
                    );
                    None
                }
                _ => {
                    self.error(
                        at,
                        format!(
                            "unknown context `{}` (expected `ctx.user`, `ctx.read_access` or `ctx.write_access`)",
                            path.text()
                        ),
                    );
                    None
                }
            },
            name if bound.iter().any(|b| b == name) => {
                self.schema.model(name)?;
                self.follow_reporting(name, &rel(rest), path, at)
            }
            name => {
                self.error(
                    at,
                    format!(
                        "unknown name `{name}` in `{}` (expected `obj`, `ctx` or a model bound by `exists`/`forall`)",
                        path.text()
                    ),
                );
                None
            }
        }
    }

    fn follow_reporting(
        &mut self,
        model: &str,
        rel: &PolicyPath,
        whole: &PolicyPath,
        at: &Location,
    ) -> Option<Resolved> {
        let offset = whole.segments.len() - rel.segments.len();
        match self.resolve(model, rel, whole, offset) {
            Ok(r) => Some(r),
            Err(message) => {
                self.error(at, message);
                None
            }
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
        &mut self,
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
                Resolved::Scalar(_) | Resolved::Null => {
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
    fn member(&mut self, model: &str, name: &str) -> Option<Resolved> {
        let schema = self.schema;
        let members = self
            .members
            .entry(model.to_owned())
            .or_insert_with(|| model_members(schema, model));
        if let Some(found) = members.get(name) {
            return Some(found.clone());
        }
        // Reverse relations are rarely named and costly to list: only on a miss.
        let reverse = self
            .reverse_members
            .entry(model.to_owned())
            .or_insert_with(|| {
                schema
                    .reverse_links(model)
                    .into_iter()
                    .map(|r| (r.name, Resolved::Many(r.peer)))
                    .collect()
            });
        reverse.get(name).cloned()
    }
}

/// The members a path may name on `model` besides reverse relations:
/// `id`/`pk`, own and inherited fields, `<link>_id` columns.
fn model_members(schema: &Schema, model: &str) -> BTreeMap<String, Resolved> {
    let mut out = BTreeMap::new();
    for field in schema.all_fields(model) {
        let resolved = match &field.ty {
            FieldType::Scalar { scalar } => Resolved::Scalar(*scalar),
            FieldType::Link {
                link: LinkKind::ManyToMany,
                target,
                ..
            } => Resolved::Many(target.clone()),
            FieldType::Link { target, .. } => {
                out.entry(format!("{}_id", field.name))
                    .or_insert(Resolved::Scalar(ScalarType::Int));
                Resolved::Object(target.clone())
            }
        };
        out.insert(field.name.clone(), resolved);
    }
    out.insert("id".into(), Resolved::Scalar(ScalarType::Int));
    out.insert("pk".into(), Resolved::Scalar(ScalarType::Int));
    out
}
