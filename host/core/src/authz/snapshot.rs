//! The data a policy reads, loaded from a transaction as the evaluator
//! asks for it.
//!
//! The evaluator is synchronous and the store is not, so the evaluation is
//! retried: when the policy reaches data the snapshot lacks, the snapshot
//! notes what is missing and fails the evaluation; [`decide`] loads it and
//! evaluates again. Policies read a handful of rows, so a decision takes a
//! few rounds, and a snapshot shared by the decisions of one request (a
//! filtered list) answers most of them from memory.

use crate::bookkeeping::field;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value as Json;
use syncplane_xproto::{
    Access, EvalContext, EvalError, ObjectRef, PolicyEnv, PolicyExpr, Value, eval,
};

use crate::core::CoreTx;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::registry::Registry;

/// The most loads one decision may need before it is denied; policies
/// written as in the corpus need a few.
const MAX_ROUNDS: usize = 64;

/// Field equalities, as `exists` passes them.
type Equalities = Vec<(String, Value)>;

/// A query `exists` asked for: a model and field equalities.
type Query = (String, Equalities);

/// What the evaluator reached that the snapshot did not hold.
#[derive(Debug, Clone)]
pub(crate) enum Need {
    Object(i64),
    Query(Query),
    /// Every object of a model matching the fixed equalities of queries
    /// that differed only in the other (varying) fields.
    Broad(Query, Vec<String>),
}

/// The objects of a model matching fixed equalities, indexed by the
/// values of the fields that varied between the queries.
struct Broad {
    model: String,
    fixed: Equalities,
    varying: Vec<String>,
    /// Varying values (as [`values_key`] writes them) → object ids.
    index: HashMap<String, Vec<i64>>,
}

/// Rows a request's decisions have read so far.
pub(crate) struct Snapshot {
    registry: Arc<Registry>,
    objects: HashMap<i64, Object>,
    answers: HashMap<String, Vec<ObjectRef>>,
    /// What broad queries loaded.
    broad: Vec<Broad>,
    /// The first equalities asked of each (model, field names), to notice
    /// a query repeated with other values.
    first_asked: HashMap<(String, Vec<String>), Equalities>,
    missing: RefCell<Option<Need>>,
    /// An object quantifiers must not see: the one being written, which
    /// must not grant its own creation.
    hidden: Option<i64>,
    /// Objects quantifiers must not see either: a batch being created,
    /// whose objects must not grant each other's creation.
    hidden_batch: Option<Arc<HashSet<i64>>>,
}

impl Snapshot {
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        Snapshot {
            registry,
            objects: HashMap::new(),
            answers: HashMap::new(),
            broad: Vec::new(),
            first_asked: HashMap::new(),
            missing: RefCell::new(None),
            hidden: None,
            hidden_batch: None,
        }
    }

    /// Leaves `id` out of what `exists` and `forall` range over, so that
    /// an object being created or changed cannot grant itself access (as
    /// in XOS, which decided before saving).
    pub(crate) fn hiding(mut self, id: i64) -> Self {
        self.hidden = Some(id);
        self
    }

    /// As [`Snapshot::hiding`] for every object of `batch`.
    pub(crate) fn hiding_all(mut self, batch: Arc<HashSet<i64>>) -> Self {
        self.hidden_batch = Some(batch);
        self
    }

    /// The registry whose policies and models it decides with.
    pub(crate) fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Adds an object the caller already read (the one decided, the user).
    pub(crate) fn hold(&mut self, object: Object) {
        self.objects.insert(object.id, object);
    }

    /// As [`Snapshot::hold`], copying `object` only if it is not held yet
    /// (the user of every decision of a list).
    pub(crate) fn hold_once(&mut self, object: &Object) {
        self.objects
            .entry(object.id)
            .or_insert_with(|| object.clone());
    }

    /// Gives back a held object.
    pub(crate) fn release(&mut self, id: i64) -> Option<Object> {
        self.objects.remove(&id)
    }

    fn lack(&self, need: Need) -> EvalError {
        *self.missing.borrow_mut() = Some(need);
        EvalError::Env {
            message: "data not loaded yet".into(),
        }
    }

    async fn load(&mut self, tx: &mut CoreTx, need: Need) -> Result<()> {
        match need {
            Need::Object(id) => match tx.get(id).await? {
                Some(object) => {
                    self.objects.insert(id, object);
                }
                None => {
                    return Err(Error::NotFound {
                        model: "object".into(),
                        id,
                    });
                }
            },
            Need::Query((model, filters)) => {
                let names = filters.iter().map(|(n, _)| n.clone()).collect();
                self.first_asked
                    .entry((model.clone(), names))
                    .or_insert_with(|| filters.clone());
                let found = live(tx.list(&model, &to_json_filters(&filters)).await?);
                let refs = found.iter().map(object_ref).collect();
                for object in found {
                    self.objects.insert(object.id, object);
                }
                self.answers.insert(query_key(&model, &filters), refs);
            }
            Need::Broad((model, fixed), varying) => {
                let found = live(tx.list(&model, &to_json_filters(&fixed)).await?);
                let mut index: HashMap<String, Vec<i64>> = HashMap::new();
                for object in &found {
                    let values: Vec<Value> = varying
                        .iter()
                        .map(|name| self.value_of(object, name).unwrap_or(Value::Null))
                        .collect();
                    index
                        .entry(values_key(&values))
                        .or_default()
                        .push(object.id);
                }
                for object in found {
                    self.objects.insert(object.id, object);
                }
                self.broad.push(Broad {
                    model,
                    fixed,
                    varying,
                    index,
                });
            }
        }
        Ok(())
    }

    /// A field of a held object as a policy sees it.
    fn value_of(&self, object: &Object, name: &str) -> Option<Value> {
        if name == "id" {
            return Some(Value::Int(object.id));
        }
        let schema = self.registry.schema();
        if let Some(field) = schema.field(&object.model, name) {
            if let Some(target) = field.link_target() {
                if field.is_many() {
                    let ids = object.fields.get(&crate::many::ids_name(&field.name))?;
                    let refs = ids
                        .as_array()?
                        .iter()
                        .filter_map(Json::as_i64)
                        .map(|id| {
                            Value::Object(ObjectRef {
                                model: target.to_owned(),
                                id,
                            })
                        })
                        .collect();
                    return Some(Value::List(refs));
                }
                return Some(match object.fields.get(&field.column_name()) {
                    Some(Json::Number(n)) => n.as_i64().map_or(Value::Null, |id| {
                        Value::Object(ObjectRef {
                            model: target.to_owned(),
                            id,
                        })
                    }),
                    _ => Value::Null,
                });
            }
            return Some(from_json(object.fields.get(&field.column_name())));
        }
        object.fields.get(name).map(|v| from_json(Some(v)))
    }

    fn matches(&self, id: i64, filters: &[(String, Value)]) -> bool {
        let Some(object) = self.objects.get(&id) else {
            return false;
        };
        filters.iter().all(|(name, want)| {
            self.value_of(object, name)
                .is_some_and(|have| have.policy_eq(want))
        })
    }
}

impl PolicyEnv for Snapshot {
    fn field(&self, object: &ObjectRef, name: &str) -> Result<Value, EvalError> {
        let Some(held) = self.objects.get(&object.id) else {
            return Err(self.lack(Need::Object(object.id)));
        };
        if let Some(value) = self.value_of(held, name) {
            return Ok(value);
        }
        // A reverse link (`site.users`): the objects linking here.
        let reverse = self
            .registry
            .schema()
            .reverse_links(&held.model)
            .into_iter()
            .find(|r| r.name == name);
        match reverse {
            Some(reverse) => {
                let filters = vec![(reverse.field.clone(), Value::Int(held.id))];
                let key = query_key(&reverse.peer, &filters);
                match self.answers.get(&key) {
                    Some(refs) => Ok(Value::List(
                        refs.iter().cloned().map(Value::Object).collect(),
                    )),
                    None => Err(self.lack(Need::Query((reverse.peer, filters)))),
                }
            }
            None => Err(EvalError::Env {
                message: format!("{} has no field `{name}` a policy can read", held.model),
            }),
        }
    }

    fn objects(&self, model: &str) -> Result<Vec<ObjectRef>, EvalError> {
        self.objects_where(model, &[])
    }

    fn objects_where(
        &self,
        model: &str,
        filters: &[(String, Value)],
    ) -> Result<Vec<ObjectRef>, EvalError> {
        let mut found = self.find(model, filters)?;
        found.retain(|o| {
            Some(o.id) != self.hidden
                && !self
                    .hidden_batch
                    .as_ref()
                    .is_some_and(|b| b.contains(&o.id))
        });
        Ok(found)
    }

    fn policy(&self, name: &str) -> Option<&PolicyExpr> {
        self.registry.schema().policy(name).map(|p| &p.expr)
    }
}

impl Snapshot {
    /// [`PolicyEnv::objects_where`], before hiding.
    fn find(&self, model: &str, filters: &[(String, Value)]) -> Result<Vec<ObjectRef>, EvalError> {
        if let Some(refs) = self.answers.get(&query_key(model, filters)) {
            return Ok(refs.clone());
        }
        for broad in &self.broad {
            if broad.model != model || !broad.fixed.iter().all(|f| filters.contains(f)) {
                continue;
            }
            let varying: Option<Vec<Value>> = broad
                .varying
                .iter()
                .map(|name| {
                    filters
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                })
                .collect();
            let Some(varying) = varying else {
                continue;
            };
            return Ok(broad
                .index
                .get(&values_key(&varying))
                .into_iter()
                .flatten()
                .filter(|id| self.matches(**id, filters))
                .filter_map(|id| self.objects.get(id).map(object_ref))
                .collect());
        }
        let names: Vec<String> = filters.iter().map(|(n, _)| n.clone()).collect();
        if let Some(first) = self.first_asked.get(&(model.to_owned(), names)) {
            // Asked before with other values (one per object of a list):
            // fetch what the equal part matches once, filter in memory.
            let (fixed, varying): (Vec<_>, Vec<_>) =
                filters.iter().cloned().partition(|f| first.contains(f));
            let varying = varying.into_iter().map(|(name, _)| name).collect();
            return Err(self.lack(Need::Broad((model.to_owned(), fixed), varying)));
        }
        Err(self.lack(Need::Query((model.to_owned(), filters.to_vec()))))
    }
}

/// Decides `expr` for the object `target` as `user` would access it, both
/// held by `snapshot`, loading what the policy reads through `tx`. An
/// expression that cannot be decided (an error in the policy or data it
/// cannot read) denies, and says why in the log.
pub(crate) async fn decide(
    tx: &mut CoreTx,
    snapshot: &mut Snapshot,
    expr: &PolicyExpr,
    target: &ObjectRef,
    user: Option<&ObjectRef>,
    access: Access,
) -> Result<bool> {
    for _ in 0..MAX_ROUNDS {
        match decide_held(snapshot, expr, target, user, access) {
            Decided::Granted(granted) => return Ok(granted),
            Decided::Needs(need) => match snapshot.load(tx, need).await {
                Ok(()) => {}
                Err(e) if e.is_client_error() => {
                    tracing::warn!(model = %target.model, object.id = target.id, error = %e, "policy reads data that is not there; denied");
                    return Ok(false);
                }
                Err(e) => return Err(e),
            },
        }
    }
    tracing::warn!(model = %target.model, object.id = target.id, "policy read too much data; denied");
    Ok(false)
}

/// What one evaluation of a policy on what a snapshot holds gave.
pub(crate) enum Decided {
    /// The decision (an expression that cannot be decided denies).
    Granted(bool),
    /// The policy reads data the snapshot does not hold yet.
    Needs(Need),
}

/// Evaluates `expr` once on what `snapshot` holds, reading nothing.
pub(crate) fn decide_held(
    snapshot: &Snapshot,
    expr: &PolicyExpr,
    target: &ObjectRef,
    user: Option<&ObjectRef>,
    access: Access,
) -> Decided {
    let ctx = EvalContext {
        env: snapshot,
        user: user.cloned(),
        access,
    };
    match eval(expr, target, &ctx) {
        Ok(granted) => Decided::Granted(granted),
        Err(error) => match snapshot.missing.borrow_mut().take() {
            Some(need) => Decided::Needs(need),
            None => {
                tracing::warn!(model = %target.model, object.id = target.id, %error, "policy could not be decided; denied");
                Decided::Granted(false)
            }
        },
    }
}

/// Objects not marked deleted: a deleted `Privilege` grants nothing.
fn live(objects: Vec<Object>) -> Vec<Object> {
    objects
        .into_iter()
        .filter(|o| o.fields.get(field::DELETED) != Some(&Json::Bool(true)))
        .collect()
}

pub(crate) fn object_ref(object: &Object) -> ObjectRef {
    ObjectRef {
        model: object.model.clone(),
        id: object.id,
    }
}

fn from_json(value: Option<&Json>) -> Value {
    match value {
        None | Some(Json::Null) => Value::Null,
        Some(Json::Bool(b)) => Value::Bool(*b),
        Some(Json::Number(n)) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_f64().map(Value::Float))
            .unwrap_or(Value::Null),
        Some(Json::String(s)) => Value::Str(s.clone()),
        Some(Json::Array(_) | Json::Object(_)) => Value::Null,
    }
}

fn to_json_filters(filters: &[(String, Value)]) -> Vec<(String, Json)> {
    filters
        .iter()
        .map(|(name, value)| {
            let json = match value {
                Value::Null => Json::Null,
                Value::Bool(b) => Json::Bool(*b),
                Value::Int(i) => Json::from(*i),
                Value::Float(f) => Json::from(*f),
                Value::Str(s) => Json::String(s.clone()),
                Value::Object(o) => Json::from(o.id),
                Value::List(_) => Json::Null,
            };
            (name.clone(), json)
        })
        .collect()
}

/// A map key for field values: integers and the ids of objects alike, as
/// [`Value::policy_eq`] compares them.
fn values_key(values: &[Value]) -> String {
    let normal: Vec<Value> = values
        .iter()
        .map(|v| match v {
            Value::Object(o) => Value::Int(o.id),
            Value::Float(f) if f.fract() == 0.0 => Value::Int(*f as i64),
            other => other.clone(),
        })
        .collect();
    format!("{normal:?}")
}

fn query_key(model: &str, filters: &[(String, Value)]) -> String {
    format!("{model}{filters:?}")
}
