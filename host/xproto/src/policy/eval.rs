//! Deciding a policy for one object.
//!
//! The evaluator knows nothing about storage: the host gives it a
//! [`PolicyEnv`] that reads fields, lists objects and looks up policies.

use crate::ir::Location;

use super::ast::{
    BinaryOp, CompareOp, ExprKind, PolicyExpr, PolicyPath, Quantifier, Term, TermKind,
};
use super::python;

/// How deep `*policy(...)` calls may nest before evaluation stops, so a
/// cycle in the data (or in the policies) cannot recurse forever.
pub const MAX_CALL_DEPTH: usize = 32;

/// A stored object, by its concrete model and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// The object's concrete model (not a base), e.g. `Slice`.
    pub model: String,
    /// The object's id.
    pub id: i64,
}

/// A value a policy reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An unset field or link (`None`).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// A string.
    Str(String),
    /// A linked object.
    Object(ObjectRef),
    /// The objects of a `manytomany` link or a reverse link.
    List(Vec<Value>),
}

impl Value {
    /// Truthiness as in the original's Python: `None`, `False`, `0`, `""`
    /// and empty lists are false; objects are true.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Object(_) => true,
            Value::List(l) => !l.is_empty(),
        }
    }

    /// Equality as `=` uses it: numbers by value, objects by model and id,
    /// an object and an integer by id, `None` only equal to `None`.
    pub fn policy_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => *a as f64 == *b,
            (Value::Object(o), Value::Int(i)) | (Value::Int(i), Value::Object(o)) => o.id == *i,
            _ => self == other,
        }
    }
}

/// The kind of access being decided, `ctx.read_access` / `ctx.write_access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading an object.
    Read,
    /// Creating, changing or deleting an object.
    Write,
}

/// The host's view of the data, as a policy sees it.
pub trait PolicyEnv {
    /// Field `name` of `object`: a scalar as itself, a set link as
    /// [`Value::Object`], an unset one as [`Value::Null`], a `manytomany` or
    /// reverse link as a [`Value::List`] of objects. `id` must be answered.
    ///
    /// # Errors
    ///
    /// Whatever stops the host reading the field; evaluation stops with it.
    fn field(&self, object: &ObjectRef, name: &str) -> Result<Value, EvalError>;

    /// Every object of `model`, including objects of models inheriting from
    /// it, for `exists Model: ...` and `forall Model: ...`.
    ///
    /// # Errors
    ///
    /// As [`PolicyEnv::field`].
    fn objects(&self, model: &str) -> Result<Vec<ObjectRef>, EvalError>;

    /// The objects of `model` (and of models inheriting from it) whose
    /// fields equal `filters`, for `exists Model: Model.f = x & ...`: the
    /// evaluator passes the equalities of the body whose other side does
    /// not depend on the bound object, so a host can answer from an index.
    /// It still checks the whole body on each object, so an answer may
    /// include objects that do not match (the default lists them all).
    ///
    /// # Errors
    ///
    /// As [`PolicyEnv::field`].
    fn objects_where(
        &self,
        model: &str,
        filters: &[(String, Value)],
    ) -> Result<Vec<ObjectRef>, EvalError> {
        let _ = filters;
        self.objects(model)
    }

    /// The policy named `name`, for `*name(link)`.
    fn policy(&self, name: &str) -> Option<&PolicyExpr>;
}

/// Who is asking, for what, and where the data is.
pub struct EvalContext<'a> {
    /// The data.
    pub env: &'a dyn PolicyEnv,
    /// The calling user (`ctx.user`), if any; `None` makes `ctx.user` null.
    pub user: Option<ObjectRef>,
    /// `ctx.read_access` is true for [`Access::Read`], `ctx.write_access`
    /// for [`Access::Write`].
    pub access: Access,
}

/// Why a policy could not be decided. A host should deny access when it
/// gets one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A name is neither `ctx`, `obj` nor a model bound by `exists`/`forall`.
    #[error(
        "{location}: unknown name `{name}` (expected `ctx`, `obj` or a model bound by `exists`/`forall`)"
    )]
    UnknownName {
        /// The name.
        name: String,
        /// Where it is used.
        location: Location,
    },
    /// `ctx.<name>` other than `user`, `read_access`, `write_access`.
    #[error("{location}: unknown context attribute `ctx.{name}`")]
    UnknownContext {
        /// The attribute.
        name: String,
        /// Where it is used.
        location: Location,
    },
    /// A path goes through a value that is not an object.
    #[error("{location}: `{path}` cannot be followed: `{segment}` is not an object")]
    NotAnObject {
        /// The whole path.
        path: String,
        /// The segment that is not an object.
        segment: String,
        /// Where the path is.
        location: Location,
    },
    /// A method call other than `all()` on a collection.
    #[error("{location}: `{path}`: only `all()` may be called, on a collection")]
    BadMethod {
        /// The whole path.
        path: String,
        /// Where the path is.
        location: Location,
    },
    /// `x in y` where `y` is not a collection or a string.
    #[error("{location}: the right side of `in` is not a collection")]
    NotACollection {
        /// Where the comparison is.
        location: Location,
    },
    /// `*name(...)` names no policy.
    #[error("{location}: policy `{name}` is not defined")]
    UnknownPolicy {
        /// The policy called.
        name: String,
        /// Where the call is.
        location: Location,
    },
    /// `*name(link)` where `link` is not a single object.
    #[error("{location}: the argument `{path}` of `*{name}` is not a link to one object")]
    BadCallArgument {
        /// The policy called.
        name: String,
        /// The argument.
        path: String,
        /// Where the call is.
        location: Location,
    },
    /// Policy calls nested deeper than [`MAX_CALL_DEPTH`].
    #[error("{location}: policy calls nest deeper than {MAX_CALL_DEPTH} (at `*{name}`)")]
    TooDeep {
        /// The policy called at the limit.
        name: String,
        /// Where the call is.
        location: Location,
    },
    /// `{{ python }}` escapes cannot be evaluated by syncplane.
    #[error("{location}: python escapes (`{{{{ ... }}}}`) cannot be evaluated")]
    PythonEscape {
        /// Where the escape is.
        location: Location,
    },
    /// The environment failed to answer.
    #[error("reading the data failed: {message}")]
    Env {
        /// What went wrong.
        message: String,
    },
}

/// Decides `expr` for the object `obj`.
///
/// `=` compares with [`Value::policy_eq`]; `in` tests membership in a
/// list (or a substring of a string); a term alone is tested for
/// [truthiness](Value::is_truthy); `a -> b` is `not a | b`; `exists M: body`
/// and `forall M: body` range over [`PolicyEnv::objects`]; a path through an
/// unset link is `None`; `*p(link)` decides `p` for the object `link` of
/// `obj` points to, and grants access when the link is unset, as in the
/// original.
///
/// # Errors
///
/// See [`EvalError`]: unknown names and policies, paths through scalars,
/// Python escapes, calls nested deeper than [`MAX_CALL_DEPTH`], and errors
/// of the environment. Terms are evaluated lazily (`a | b` does not look at
/// `b` when `a` holds), so an error in an unused branch is not reported.
///
/// `exists` asks the environment only for objects matching the body's
/// equalities on the bound model ([`PolicyEnv::objects_where`]); `forall`
/// lists every object of its model. The only `{{ python }}` escape
/// evaluated is `'literal' [not] in obj.path`; others are
/// [`EvalError::PythonEscape`] (and refused when the models load).
pub fn eval(expr: &PolicyExpr, obj: &ObjectRef, ctx: &EvalContext<'_>) -> Result<bool, EvalError> {
    Evaluator { ctx }.expr(
        expr,
        &Scope {
            obj,
            bound: Vec::new(),
            depth: 0,
        },
    )
}

struct Scope<'s> {
    obj: &'s ObjectRef,
    bound: Vec<(&'s str, ObjectRef)>,
    depth: usize,
}

struct Evaluator<'c, 'a> {
    ctx: &'c EvalContext<'a>,
}

impl Evaluator<'_, '_> {
    fn expr(&self, expr: &PolicyExpr, scope: &Scope<'_>) -> Result<bool, EvalError> {
        match &expr.kind {
            ExprKind::Term(t) => Ok(self.term(t, scope)?.is_truthy()),
            ExprKind::Compare { op, lhs, rhs } => {
                let l = self.term(lhs, scope)?;
                let r = self.term(rhs, scope)?;
                match op {
                    CompareOp::Eq => Ok(l.policy_eq(&r)),
                    CompareOp::In => match (&l, &r) {
                        (_, Value::List(items)) => Ok(items.iter().any(|i| l.policy_eq(i))),
                        (Value::Str(needle), Value::Str(hay)) => Ok(hay.contains(needle.as_str())),
                        _ => Err(EvalError::NotACollection {
                            location: expr.location.clone(),
                        }),
                    },
                }
            }
            ExprKind::Not(e) => Ok(!self.expr(e, scope)?),
            ExprKind::Group(e) => self.expr(e, scope),
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.expr(lhs, scope)?;
                match op {
                    BinaryOp::And if !l => Ok(false),
                    BinaryOp::Or if l => Ok(true),
                    BinaryOp::Implies if !l => Ok(true),
                    _ => self.expr(rhs, scope),
                }
            }
            ExprKind::Quantified {
                quantifier,
                model,
                body,
            } => {
                let want = *quantifier == Quantifier::Exists;
                let candidates = if want {
                    let filters = self.equalities(model, body, scope)?;
                    self.ctx.env.objects_where(model, &filters)?
                } else {
                    self.ctx.env.objects(model)?
                };
                for candidate in candidates {
                    let mut bound = scope.bound.clone();
                    bound.push((model.as_str(), candidate));
                    let inner = Scope {
                        obj: scope.obj,
                        bound,
                        depth: scope.depth,
                    };
                    if self.expr(body, &inner)? == want {
                        return Ok(want);
                    }
                }
                Ok(!want)
            }
        }
    }

    /// The conjuncts `Model.field = x` of an `exists Model:` body whose
    /// `x` does not mention `Model`, with `x` evaluated: what an index can
    /// answer. Objects (`obj`, `ctx.user`) are given by id.
    fn equalities(
        &self,
        model: &str,
        body: &PolicyExpr,
        scope: &Scope<'_>,
    ) -> Result<Vec<(String, Value)>, EvalError> {
        let mut conjuncts = Vec::new();
        conjuncts_of(body, &mut conjuncts);
        let mut filters = Vec::new();
        for conjunct in conjuncts {
            let ExprKind::Compare {
                op: CompareOp::Eq,
                lhs,
                rhs,
            } = &conjunct.kind
            else {
                continue;
            };
            for (bound, other) in [(lhs, rhs), (rhs, lhs)] {
                let Some(field) = bound_field(bound, model) else {
                    continue;
                };
                if mentions(other, model) {
                    continue;
                }
                let value = match self.term(other, scope)? {
                    Value::Object(o) => Value::Int(o.id),
                    Value::List(_) => continue,
                    v => v,
                };
                filters.push((field.to_owned(), value));
                break;
            }
        }
        Ok(filters)
    }

    fn term(&self, term: &Term, scope: &Scope<'_>) -> Result<Value, EvalError> {
        Ok(match &term.kind {
            TermKind::Path(p) => self.path(p, scope, &term.location)?,
            TermKind::Str(s) => Value::Str(s.clone()),
            TermKind::Int(i) => Value::Int(*i),
            TermKind::Float(f) => Value::Float(*f),
            TermKind::Bool(b) => Value::Bool(*b),
            TermKind::Null => Value::Null,
            TermKind::Python(text) => {
                let Some(membership) = python::parse(text) else {
                    return Err(EvalError::PythonEscape {
                        location: term.location.clone(),
                    });
                };
                let haystack = self.path(&membership.haystack, scope, &term.location)?;
                let found = match haystack {
                    Value::Str(s) => s.contains(membership.needle.as_str()),
                    Value::Null => false,
                    _ => {
                        return Err(EvalError::NotACollection {
                            location: term.location.clone(),
                        });
                    }
                };
                Value::Bool(found != membership.negated)
            }
            TermKind::Call { policy, arg } => {
                Value::Bool(self.call(policy, arg, scope, &term.location)?)
            }
        })
    }

    fn call(
        &self,
        name: &str,
        arg: &PolicyPath,
        scope: &Scope<'_>,
        location: &Location,
    ) -> Result<bool, EvalError> {
        let Some(policy) = self.ctx.env.policy(name) else {
            return Err(EvalError::UnknownPolicy {
                name: name.to_owned(),
                location: location.clone(),
            });
        };
        if scope.depth >= MAX_CALL_DEPTH {
            return Err(EvalError::TooDeep {
                name: name.to_owned(),
                location: location.clone(),
            });
        }
        let target = self.follow(Value::Object(scope.obj.clone()), arg, location)?;
        match target {
            // As the original: everybody has access to what an unset link points to.
            Value::Null => Ok(true),
            Value::Object(obj) => self.expr(
                policy,
                &Scope {
                    obj: &obj,
                    bound: Vec::new(),
                    depth: scope.depth + 1,
                },
            ),
            _ => Err(EvalError::BadCallArgument {
                name: name.to_owned(),
                path: arg.text(),
                location: location.clone(),
            }),
        }
    }

    fn path(
        &self,
        path: &PolicyPath,
        scope: &Scope<'_>,
        location: &Location,
    ) -> Result<Value, EvalError> {
        let (first, rest) = match path.segments.split_first() {
            Some(split) => split,
            None => (&String::new(), &[][..]),
        };
        let root = match first.as_str() {
            "obj" => Value::Object(scope.obj.clone()),
            "ctx" => {
                let attribute = rest.first().map(String::as_str).unwrap_or("");
                let value = match attribute {
                    "user" => self.ctx.user.clone().map_or(Value::Null, Value::Object),
                    "read_access" => Value::Bool(self.ctx.access == Access::Read),
                    "write_access" => Value::Bool(self.ctx.access == Access::Write),
                    other => {
                        return Err(EvalError::UnknownContext {
                            name: other.to_owned(),
                            location: location.clone(),
                        });
                    }
                };
                let rest = PolicyPath {
                    segments: rest[1..].to_vec(),
                    call: path.call,
                };
                return self.follow_from(value, &rest, path, location);
            }
            name => match scope.bound.iter().rev().find(|(n, _)| *n == name) {
                Some((_, o)) => Value::Object(o.clone()),
                None => {
                    return Err(EvalError::UnknownName {
                        name: name.to_owned(),
                        location: location.clone(),
                    });
                }
            },
        };
        let rest = PolicyPath {
            segments: rest.to_vec(),
            call: path.call,
        };
        self.follow_from(root, &rest, path, location)
    }

    /// Follows `rel` (relative to `value`), reporting errors against `whole`.
    fn follow_from(
        &self,
        mut value: Value,
        rel: &PolicyPath,
        whole: &PolicyPath,
        location: &Location,
    ) -> Result<Value, EvalError> {
        let count = rel.segments.len();
        for (i, segment) in rel.segments.iter().enumerate() {
            if rel.call && i + 1 == count {
                return match (segment.as_str(), value) {
                    ("all", list @ Value::List(_)) => Ok(list),
                    _ => Err(EvalError::BadMethod {
                        path: whole.text(),
                        location: location.clone(),
                    }),
                };
            }
            value = match value {
                Value::Object(o) => self.ctx.env.field(&o, segment)?,
                Value::Null => return Ok(Value::Null),
                _ => {
                    return Err(EvalError::NotAnObject {
                        path: whole.text(),
                        segment: whole.segments[..whole.segments.len() - count + i].join("."),
                        location: location.clone(),
                    });
                }
            };
        }
        Ok(value)
    }

    fn follow(
        &self,
        from: Value,
        rel: &PolicyPath,
        location: &Location,
    ) -> Result<Value, EvalError> {
        self.follow_from(from, rel, rel, location)
    }
}

/// The operands of the top-level `&`s of `expr` (through parentheses).
fn conjuncts_of<'e>(expr: &'e PolicyExpr, out: &mut Vec<&'e PolicyExpr>) {
    match &expr.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            conjuncts_of(lhs, out);
            conjuncts_of(rhs, out);
        }
        ExprKind::Group(inner) => conjuncts_of(inner, out),
        _ => out.push(expr),
    }
}

/// `field` when `term` is `Model.field` for the bound `model`.
fn bound_field<'t>(term: &'t Term, model: &str) -> Option<&'t str> {
    match &term.kind {
        TermKind::Path(p) if !p.call && p.segments.len() == 2 && p.segments[0] == model => {
            Some(&p.segments[1])
        }
        _ => None,
    }
}

/// Whether `term` could depend on the object bound to `model` (calls and
/// escapes are assumed to).
fn mentions(term: &Term, model: &str) -> bool {
    match &term.kind {
        TermKind::Path(p) => p.segments.first().is_some_and(|s| s == model),
        TermKind::Call { .. } | TermKind::Python(_) => true,
        TermKind::Str(_)
        | TermKind::Int(_)
        | TermKind::Float(_)
        | TermKind::Bool(_)
        | TermKind::Null => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::policy::parse_policy_expr;

    /// Objects by (model, id) with their fields; `Privilege` rows and users.
    #[derive(Default)]
    struct Memory {
        objects: BTreeMap<(String, i64), BTreeMap<String, Value>>,
        policies: BTreeMap<String, PolicyExpr>,
        /// The filters each `objects_where` was asked with.
        asked: std::cell::RefCell<Vec<Vec<(String, Value)>>>,
    }

    impl Memory {
        fn add(&mut self, model: &str, id: i64, fields: &[(&str, Value)]) -> ObjectRef {
            let mut map: BTreeMap<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            map.insert("id".into(), Value::Int(id));
            self.objects.insert((model.into(), id), map);
            ObjectRef {
                model: model.into(),
                id,
            }
        }

        fn define(&mut self, name: &str, text: &str) {
            let at = Location {
                file: "mem.xproto".into(),
                line: 1,
                column: 1,
            };
            self.policies
                .insert(name.into(), parse_policy_expr(text, &at).expect("parses"));
        }
    }

    impl PolicyEnv for Memory {
        fn field(&self, object: &ObjectRef, name: &str) -> Result<Value, EvalError> {
            self.objects
                .get(&(object.model.clone(), object.id))
                .and_then(|f| f.get(name).cloned())
                .ok_or_else(|| EvalError::Env {
                    message: format!("{}#{} has no {name}", object.model, object.id),
                })
        }

        fn objects(&self, model: &str) -> Result<Vec<ObjectRef>, EvalError> {
            Ok(self
                .objects
                .keys()
                .filter(|(m, _)| m == model)
                .map(|(m, id)| ObjectRef {
                    model: m.clone(),
                    id: *id,
                })
                .collect())
        }

        fn objects_where(
            &self,
            model: &str,
            filters: &[(String, Value)],
        ) -> Result<Vec<ObjectRef>, EvalError> {
            self.asked.borrow_mut().push(filters.to_vec());
            self.objects(model)
        }

        fn policy(&self, name: &str) -> Option<&PolicyExpr> {
            self.policies.get(name)
        }
    }

    fn user(mem: &mut Memory, id: i64, admin: bool) -> ObjectRef {
        mem.add("User", id, &[("is_admin", Value::Bool(admin))])
    }

    fn decide(
        mem: &Memory,
        policy: &str,
        obj: &ObjectRef,
        who: &ObjectRef,
        access: Access,
    ) -> bool {
        let ctx = EvalContext {
            env: mem,
            user: Some(who.clone()),
            access,
        };
        eval(&mem.policies[policy], obj, &ctx).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The corpus's slice policy, reduced: admins, the creator, and users
    /// with a privilege on the slice.
    fn world() -> (
        Memory,
        ObjectRef,
        ObjectRef,
        ObjectRef,
        ObjectRef,
        ObjectRef,
    ) {
        let mut mem = Memory::default();
        let admin = user(&mut mem, 1, true);
        let owner = user(&mut mem, 2, false);
        let other = user(&mut mem, 3, false);
        let granted = user(&mut mem, 4, false);
        let slice = mem.add("Slice", 10, &[("creator", Value::Object(owner.clone()))]);
        mem.add(
            "Privilege",
            100,
            &[
                ("accessor_id", Value::Int(4)),
                ("object_type", Value::Str("Slice".into())),
                ("object_id", Value::Int(10)),
                ("permission", Value::Str("role:admin".into())),
            ],
        );
        mem.define(
            "slice_policy",
            "ctx.user.is_admin | ctx.user = obj.creator
             | (exists Privilege: Privilege.accessor_id = ctx.user.id
                & Privilege.object_type = \"Slice\" & Privilege.object_id = obj.id
                & (ctx.write_access -> Privilege.permission = \"role:admin\"))",
        );
        (mem, slice, admin, owner, other, granted)
    }

    #[test]
    fn exists_asks_for_the_equalities_that_do_not_depend_on_the_bound_object() {
        let (mem, slice, _, _, other, _) = world();
        assert!(!decide(&mem, "slice_policy", &slice, &other, Access::Read));
        // `ctx.write_access -> ...` is not an equality: only the three are.
        assert_eq!(
            mem.asked.borrow().as_slice(),
            [vec![
                ("accessor_id".to_owned(), Value::Int(3)),
                ("object_type".to_owned(), Value::Str("Slice".into())),
                ("object_id".to_owned(), Value::Int(10)),
            ]]
        );
    }

    #[test]
    fn the_membership_escape_is_evaluated() {
        let mut mem = Memory::default();
        let who = user(&mut mem, 1, false);
        let spaced = mem.add("Slice", 1, &[("name", Value::Str("a b".into()))]);
        let plain = mem.add("Slice", 2, &[("name", Value::Str("ab".into()))]);
        mem.define("no_spaces", "{{ ' ' not in obj.name }}");
        assert!(!decide(&mem, "no_spaces", &spaced, &who, Access::Write));
        assert!(decide(&mem, "no_spaces", &plain, &who, Access::Write));
    }

    #[test]
    fn admins_creators_and_privileged_users_pass_and_others_do_not() {
        let (mem, slice, admin, owner, other, granted) = world();
        assert!(decide(&mem, "slice_policy", &slice, &admin, Access::Write));
        assert!(decide(&mem, "slice_policy", &slice, &owner, Access::Write));
        assert!(decide(
            &mem,
            "slice_policy",
            &slice,
            &granted,
            Access::Write
        ));
        assert!(!decide(&mem, "slice_policy", &slice, &other, Access::Read));
        assert!(!decide(&mem, "slice_policy", &slice, &other, Access::Write));
    }

    #[test]
    fn exists_needs_one_row_matching_every_condition() {
        let (mut mem, slice, _, _, _, granted) = world();
        mem.add(
            "Privilege",
            101,
            &[
                ("accessor_id", Value::Int(4)),
                ("object_type", Value::Str("Site".into())),
                ("object_id", Value::Int(10)),
                ("permission", Value::Str("role:admin".into())),
            ],
        );
        mem.define(
            "site_priv",
            "exists Privilege: Privilege.accessor_id = ctx.user.id & Privilege.object_type = \"Site\" & Privilege.object_id = obj.id",
        );
        mem.define(
            "no_site_priv",
            "forall Privilege: not Privilege.object_type = \"Site\"",
        );
        assert!(decide(&mem, "site_priv", &slice, &granted, Access::Read));
        assert!(!decide(
            &mem,
            "no_site_priv",
            &slice,
            &granted,
            Access::Read
        ));
        // The row that matched is gone: no single row satisfies all three.
        mem.objects.remove(&("Privilege".to_string(), 101));
        assert!(!decide(&mem, "site_priv", &slice, &granted, Access::Read));
        assert!(decide(&mem, "no_site_priv", &slice, &granted, Access::Read));
    }

    #[test]
    fn policy_calls_follow_links_and_unset_links_grant() {
        let (mut mem, slice, _, owner, other, _) = world();
        let network = mem.add("Network", 20, &[("owner", Value::Object(slice))]);
        let orphan = mem.add("Network", 21, &[("owner", Value::Null)]);
        mem.define("network_policy", "*slice_policy(owner)");
        assert!(decide(
            &mem,
            "network_policy",
            &network,
            &owner,
            Access::Write
        ));
        assert!(!decide(
            &mem,
            "network_policy",
            &network,
            &other,
            Access::Write
        ));
        assert!(decide(
            &mem,
            "network_policy",
            &orphan,
            &other,
            Access::Write
        ));
    }

    #[test]
    fn membership_implication_and_errors() {
        let (mut mem, slice, _, owner, other, _) = world();
        let net = mem.add(
            "Network",
            30,
            &[
                (
                    "permitted_slices",
                    Value::List(vec![Value::Object(slice.clone())]),
                ),
                // A link to itself, so `*loop(network)` never ends.
                (
                    "network",
                    Value::Object(ObjectRef {
                        model: "Network".into(),
                        id: 30,
                    }),
                ),
            ],
        );
        let port = mem.add(
            "Port",
            40,
            &[
                ("slice", Value::Object(slice)),
                ("network", Value::Object(net.clone())),
            ],
        );
        mem.define("v", "obj.slice in obj.network.permitted_slices.all()");
        mem.define("python", "{{ obj.name }}");
        mem.define("loop", "*loop(network)");
        mem.define("through_scalar", "obj.id.name");
        assert!(decide(&mem, "v", &port, &owner, Access::Read));
        let ctx = EvalContext {
            env: &mem,
            user: Some(other),
            access: Access::Read,
        };
        let err = eval(&mem.policies["python"], &port, &ctx).expect_err("python");
        assert!(matches!(err, EvalError::PythonEscape { .. }));
        let err = eval(&mem.policies["through_scalar"], &port, &ctx).expect_err("scalar");
        assert_eq!(
            err.to_string(),
            "mem.xproto:1:1: `obj.id.name` cannot be followed: `obj.id` is not an object"
        );
        let err = eval(&mem.policies["loop"], &net, &ctx).expect_err("loops");
        assert!(matches!(err, EvalError::TooDeep { .. }), "{err}");
    }
}
