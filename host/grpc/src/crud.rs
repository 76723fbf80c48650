//! `service xos`: `List/Get/Create/Update/Delete/Filter<Model>`, through
//! the same core calls (and so the same authorization) as REST.

use std::cmp::Ordering;
use std::collections::HashMap;

use prost_reflect::{DynamicMessage, ReflectMessage as _, Value};
use serde_json::Value as Json;
use syncplane_api::User;
use syncplane_core::{DeleteOptions, MAX_IN_VALUES, MAX_PAGE_SIZE, Object, Principal, field};
use tonic::{Request, Status};

use crate::convert::{id_of, set_reverse_ids, to_input, to_message};
use crate::error::core_status;
use crate::service::Call;

/// Most objects one `List` or `Filter` answer holds: XOS's API has no
/// paging, so a larger answer is refused (`RESOURCE_EXHAUSTED`) rather
/// than built; REST pages (`/xosapi/v1/...?page_size=`) and `Watch`
/// serve models that large.
pub(crate) const MAX_LIST: usize = 100_000;

/// Refuses an answer of `count` objects past [`MAX_LIST`].
fn within_limit(model: &str, count: usize) -> Result<(), Status> {
    if count > MAX_LIST {
        return Err(Status::resource_exhausted(format!(
            "{count} {model} objects match, more than the {MAX_LIST} one answer holds: filter further, or page with REST"
        )));
    }
    Ok(())
}

/// What a method of `service xos` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    List,
    Filter,
    Get,
    Create,
    Update,
    Delete,
}

const OPERATIONS: &[(&str, Operation)] = &[
    ("List", Operation::List),
    ("Filter", Operation::Filter),
    ("Get", Operation::Get),
    ("Create", Operation::Create),
    ("Update", Operation::Update),
    ("Delete", Operation::Delete),
];

/// `ListSite` → (`List`, `Site`). Every method name is an operation
/// followed by a model name, as generated.
fn parse_method(name: &str) -> Option<(Operation, &str)> {
    OPERATIONS.iter().find_map(|(prefix, op)| {
        name.strip_prefix(prefix)
            .filter(|model| !model.is_empty())
            .map(|model| (*op, model))
    })
}

/// Answers one call of `service xos`.
pub(crate) async fn call(
    call: &Call,
    request: Request<DynamicMessage>,
) -> Result<DynamicMessage, Status> {
    let Some((operation, model)) = parse_method(call.method.name()) else {
        return Err(Status::unimplemented(format!(
            "no method `{}`",
            call.method.name()
        )));
    };
    let user = call.user(&request).await?;
    let update_fields: Option<Vec<String>> = request
        .metadata()
        .get("update_fields")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|f| f.trim().to_owned()).collect());
    let message = request.into_inner();
    let core = call.service.state.host.core();
    let who = user.principal();
    match operation {
        Operation::List => {
            let objects = core.list_as(&who, model).await.map_err(core_status)?;
            let live: Vec<Object> = objects
                .into_iter()
                .filter(|o| !o.flag(field::DELETED))
                .collect();
            within_limit(model, live.len())?;
            items(call, &who, model, live).await
        }
        Operation::Filter => {
            let objects = core.list_as(&who, model).await.map_err(core_status)?;
            let query = Query::read(&message)?;
            let mut kept = Vec::new();
            for object in objects {
                if query.matches(model, &object)? {
                    kept.push(object);
                }
            }
            within_limit(model, kept.len())?;
            items(call, &who, model, kept).await
        }
        Operation::Get => {
            let id = id_of(&message).ok_or_else(|| Status::invalid_argument("id: is required"))?;
            let object = object_in(call, &user, model, id).await?;
            one(call, &who, model, &object).await
        }
        Operation::Create => {
            let input = to_input(&message, None, &many_lists(call, model));
            let object = core
                .create_as(&who, model, input)
                .await
                .map_err(core_status)?;
            one(call, &who, model, &object).await
        }
        Operation::Update => {
            let id = id_of(&message)
                .ok_or_else(|| Status::invalid_argument(format!("{model}.id: is required")))?;
            refuse_write_protected(&object_in(call, &user, model, id).await?)?;
            let input = to_input(&message, update_fields.as_deref(), &many_lists(call, model));
            let object = core.update_as(&who, id, input).await.map_err(core_status)?;
            one(call, &who, model, &object).await
        }
        Operation::Delete => {
            let id = id_of(&message).ok_or_else(|| Status::invalid_argument("id: is required"))?;
            refuse_write_protected(&object_in(call, &user, model, id).await?)?;
            core.delete_as(&who, id, DeleteOptions::default())
                .await
                .map_err(core_status)?;
            Ok(DynamicMessage::new(call.method.output()))
        }
    }
}

/// `<Model>s { repeated <Model> items = 1; }`, reverse links filled.
async fn items(
    call: &Call,
    who: &Principal,
    model: &str,
    objects: Vec<Object>,
) -> Result<DynamicMessage, Status> {
    let output = call.method.output();
    let list = messages(call, who, model, &objects)
        .await?
        .into_iter()
        .map(Value::Message)
        .collect();
    let mut answer = DynamicMessage::new(output);
    answer
        .try_set_field_by_name("items", Value::List(list))
        .map_err(|e| Status::internal(format!("answer of {model}s: {e}")))?;
    Ok(answer)
}

/// One object as a message of `model`, reverse links filled.
async fn one(
    call: &Call,
    who: &Principal,
    model: &str,
    object: &Object,
) -> Result<DynamicMessage, Status> {
    let mut answer = messages(call, who, model, std::slice::from_ref(object)).await?;
    answer
        .pop()
        .ok_or_else(|| Status::internal(format!("answer of {model}")))
}

/// The objects as messages of `model`, with their reverse-link lists
/// (`site.nodes_ids`): the ids of the live objects linking to each, that
/// `who` may read, found with one query per reverse link and
/// [`MAX_IN_VALUES`] objects (not one per object).
async fn messages(
    call: &Call,
    who: &Principal,
    model: &str,
    objects: &[Object],
) -> Result<Vec<DynamicMessage>, Status> {
    let descriptor = call.message(model)?;
    let core = call.service.state.host.core();
    let registry = core.registry();
    let schema = registry.schema();
    let mut reverse: HashMap<(String, i64), Vec<i64>> = HashMap::new();
    let links: Vec<_> = schema
        .reverse_links(model)
        .into_iter()
        .filter(|r| {
            descriptor
                .get_field_by_name(&format!("{}_ids", r.name))
                .is_some()
        })
        // A `manytomany` link has no column to query; its reverse stays empty.
        .filter(|r| {
            schema
                .field(&r.peer, &r.field)
                .is_some_and(|f| !f.is_many())
        })
        .collect();
    for link in &links {
        let column = format!("{}_id", link.field);
        for chunk in objects.chunks(MAX_IN_VALUES) {
            let ids: Vec<String> = chunk.iter().map(|o| o.id.to_string()).collect();
            let mut cursor: Option<String> = None;
            loop {
                let mut pairs = vec![
                    (format!("{column}__in"), ids.join(",")),
                    ("deleted".to_owned(), "false".to_owned()),
                    ("page_size".to_owned(), MAX_PAGE_SIZE.to_string()),
                ];
                if let Some(cursor) = cursor.take() {
                    pairs.push(("cursor".to_owned(), cursor));
                }
                let query = syncplane_core::Query::parse(&registry, &link.peer, &pairs)
                    .map_err(|e| Status::internal(format!("reverse link {}: {e}", link.name)))?;
                let listing = core
                    .query_as(who, &link.peer, &query)
                    .await
                    .map_err(core_status)?;
                for peer in &listing.objects {
                    if let Some(target) = peer.fields.get(&column).and_then(Json::as_i64) {
                        reverse
                            .entry((link.name.clone(), target))
                            .or_default()
                            .push(peer.id);
                    }
                }
                match listing.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(objects
        .iter()
        .map(|object| {
            let mut message = to_message(&registry, &descriptor, object);
            for link in &links {
                if let Some(ids) = reverse.get(&(link.name.clone(), object.id)) {
                    set_reverse_ids(&mut message, &format!("{}_ids", link.name), ids);
                }
            }
            message
        })
        .collect())
}

/// The `manytomany` lists of `model` (`<field>_ids`), which clients write.
fn many_lists(call: &Call, model: &str) -> Vec<String> {
    let registry = call.service.state.host.core().registry();
    registry
        .schema()
        .all_fields(model)
        .into_iter()
        .filter(|f| f.is_many())
        .map(|f| format!("{}_ids", f.name))
        .collect()
}

/// Object `id` of `model` (or a descendant), if `user` may see it: an
/// object they may not read is not found, as REST answers.
async fn object_in(call: &Call, user: &User, model: &str, id: i64) -> Result<Object, Status> {
    let core = call.service.state.host.core();
    match core
        .get_as(&user.principal(), id)
        .await
        .map_err(core_status)?
    {
        Some(o) if core.registry().schema().is_a(&o.model, model) => Ok(o),
        _ => Err(Status::not_found(format!("{model} {id} does not exist"))),
    }
}

/// As REST: a `write_protect`ed object is not changed through the API.
fn refuse_write_protected(object: &Object) -> Result<(), Status> {
    if object.flag(field::WRITE_PROTECT) {
        return Err(Status::permission_denied(format!(
            "{} {} is write-protected: it cannot be changed or deleted through the API",
            object.model, object.id
        )));
    }
    Ok(())
}

/// XOS's `Query.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryKind {
    Default,
    All,
    DirtyObjects,
    DeletedObjects,
    DirtyPolicies,
    DeletedPolicies,
}

/// XOS's `QueryElement.operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equal,
    GreaterThan,
    LessThan,
    GreaterThanOrEqual,
    LessThanOrEqual,
    IExact,
    Contains,
    IContains,
}

#[derive(Debug)]
struct Element {
    operator: Operator,
    invert: bool,
    name: String,
    value: Json,
}

#[derive(Debug)]
struct Query {
    kind: QueryKind,
    elements: Vec<Element>,
}

fn int_field(message: &DynamicMessage, name: &str) -> i32 {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::EnumNumber(n) | Value::I32(n)) => *n,
        _ => 0,
    }
}

impl Query {
    fn read(message: &DynamicMessage) -> Result<Query, Status> {
        let kind = match int_field(message, "kind") {
            0 => QueryKind::Default,
            1 => QueryKind::All,
            2 => QueryKind::DirtyObjects,
            3 => QueryKind::DeletedObjects,
            4 => QueryKind::DirtyPolicies,
            5 => QueryKind::DeletedPolicies,
            other => {
                return Err(Status::invalid_argument(format!(
                    "kind: unknown kind {other}"
                )));
            }
        };
        let mut elements = Vec::new();
        if let Some(Value::List(list)) = message.get_field_by_name("elements").as_deref() {
            for item in list {
                let Value::Message(element) = item else {
                    continue;
                };
                elements.push(Element::read(element)?);
            }
        }
        Ok(Query { kind, elements })
    }

    /// Whether `object` is in the answer, as XOS's `Filter` decides.
    fn matches(&self, model: &str, object: &Object) -> Result<bool, Status> {
        let deleted = object.flag(field::DELETED);
        let kept = match self.kind {
            QueryKind::Default => !deleted,
            QueryKind::All => !deleted,
            QueryKind::DirtyObjects => {
                !deleted
                    && object.sync.is_dirty()
                    && !object.flag(field::LAZY_BLOCKED)
                    && !object.flag(field::NO_SYNC)
            }
            QueryKind::DeletedObjects => deleted,
            QueryKind::DirtyPolicies => {
                !deleted && !object.sync.is_policed() && !object.flag(field::NO_POLICY)
            }
            QueryKind::DeletedPolicies => deleted && !object.sync.is_policed(),
        };
        // As XOS: the elements narrow every kind but `ALL`.
        if !kept || self.kind == QueryKind::All {
            return Ok(kept);
        }
        for element in &self.elements {
            if !element.matches(model, object)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Element {
    fn read(message: &DynamicMessage) -> Result<Element, Status> {
        let operator = match int_field(message, "operator") {
            0 => Operator::Equal,
            1 => Operator::GreaterThan,
            2 => Operator::LessThan,
            3 => Operator::GreaterThanOrEqual,
            4 => Operator::LessThanOrEqual,
            5 => Operator::IExact,
            6 => Operator::Contains,
            7 => Operator::IContains,
            8 | 9 => {
                return Err(Status::invalid_argument(
                    "elements.operator: REGEX and IREGEX are not supported; use CONTAINS or ICONTAINS",
                ));
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "elements.operator: unknown operator {other}"
                )));
            }
        };
        let descriptor = message.descriptor();
        let has = |name: &str| {
            descriptor
                .get_field_by_name(name)
                .is_some_and(|f| message.has_field(&f))
        };
        let value = if has("iValue") {
            Json::from(int_field(message, "iValue"))
        } else if has("sValue") {
            match message.get_field_by_name("sValue").as_deref() {
                Some(Value::String(s)) => Json::String(s.clone()),
                _ => Json::String(String::new()),
            }
        } else {
            return Err(Status::invalid_argument(
                "elements.value: give iValue or sValue",
            ));
        };
        let name = match message.get_field_by_name("name").as_deref() {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let invert = matches!(
            message.get_field_by_name("invert").as_deref(),
            Some(Value::Bool(true))
        );
        Ok(Element {
            operator,
            invert,
            name,
            value,
        })
    }

    fn matches(&self, model: &str, object: &Object) -> Result<bool, Status> {
        let stored = if self.name == "id" {
            Some(Json::from(object.id))
        } else {
            object
                .fields
                .get(&self.name)
                .or_else(|| object.fields.get(&format!("{}_id", self.name)))
                .cloned()
        };
        let Some(stored) = stored.filter(|_| self.name != "password") else {
            return Err(Status::invalid_argument(format!(
                "{model}.{}: unknown field",
                self.name
            )));
        };
        let ordering = compare(&stored, &self.value);
        let hit = match self.operator {
            Operator::Equal => ordering == Some(Ordering::Equal),
            Operator::IExact => match (&stored, &self.value) {
                (Json::String(a), Json::String(b)) => a.to_lowercase() == b.to_lowercase(),
                _ => ordering == Some(Ordering::Equal),
            },
            Operator::GreaterThan => ordering == Some(Ordering::Greater),
            Operator::LessThan => ordering == Some(Ordering::Less),
            Operator::GreaterThanOrEqual => {
                matches!(ordering, Some(Ordering::Greater | Ordering::Equal))
            }
            Operator::LessThanOrEqual => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            Operator::Contains | Operator::IContains => {
                let (Json::String(stored), Json::String(wanted)) = (&stored, &self.value) else {
                    return Err(Status::invalid_argument(format!(
                        "{model}.{}: CONTAINS takes text, on a text field",
                        self.name
                    )));
                };
                if self.operator == Operator::Contains {
                    stored.contains(wanted.as_str())
                } else {
                    stored.to_lowercase().contains(&wanted.to_lowercase())
                }
            }
        };
        Ok(hit != self.invert)
    }
}

/// Orders a stored value against a query value: numbers as numbers,
/// booleans against `true`/`false`/`1`/`0`, strings as strings; `None`
/// when they cannot be compared (null, or a number against text that is
/// not one).
fn compare(stored: &Json, wanted: &Json) -> Option<Ordering> {
    match (stored, wanted) {
        (Json::Null, _) => None,
        (Json::Bool(b), w) => {
            let w = match w {
                Json::Bool(w) => *w,
                Json::Number(n) => n.as_i64()? != 0,
                Json::String(s) => match s.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return None,
                },
                _ => return None,
            };
            Some(b.cmp(&w))
        }
        (Json::Number(a), w) => {
            let w = match w {
                Json::Number(n) => n.as_f64()?,
                Json::String(s) => s.trim().parse().ok()?,
                _ => return None,
            };
            a.as_f64()?.partial_cmp(&w)
        }
        (Json::String(a), Json::String(b)) => Some(a.as_str().cmp(b)),
        (Json::String(a), Json::Number(n)) => Some(a.as_str().cmp(n.to_string().as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_past_the_list_limit_are_refused_saying_how_many() {
        within_limit("Site", MAX_LIST).expect("at the limit");
        let refused = within_limit("Site", MAX_LIST + 1).expect_err("past it");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().starts_with("100001 Site objects match"),
            "{refused:?}"
        );
    }

    #[test]
    fn method_names_split_into_operation_and_model() {
        assert_eq!(parse_method("ListSite"), Some((Operation::List, "Site")));
        assert_eq!(
            parse_method("GetListThing"),
            Some((Operation::Get, "ListThing"))
        );
        assert_eq!(parse_method("Get"), None);
        assert_eq!(parse_method("WatchSite"), None);
    }

    #[test]
    fn query_values_compare_with_stored_values_by_type() {
        assert_eq!(
            compare(&Json::from(5), &Json::from(3)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(&Json::Bool(true), &Json::String("True".into())),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(&Json::String("a".into()), &Json::String("b".into())),
            Some(Ordering::Less)
        );
        assert_eq!(compare(&Json::Null, &Json::from(1)), None);
    }
}
