//! Protobuf field numbers, computed as the original generator does (see
//! the parent module's docs).

use std::collections::BTreeMap;

use super::{RelationKind, ReverseField};
use crate::ir::{Field, FieldType, File, Model, OptionValue};
use crate::schema::Schema;

/// Bases nest far less deep than this in any real schema; the guard only
/// keeps a malformed (unvalidated) schema from recursing forever.
const MAX_DEPTH: usize = 64;

/// The order in which links are seen: the original reads its input files in
/// order, so reverse links (and the automatic numbers from 1900) follow the
/// files as given. Models from files not given (the built-in core) come first.
pub(super) struct SourceOrder {
    files: Vec<String>,
}

impl SourceOrder {
    pub(super) fn new(files: &[File]) -> Self {
        SourceOrder {
            files: files.iter().map(|f| f.name.clone()).collect(),
        }
    }

    fn rank(&self, file: &str) -> usize {
        self.files
            .iter()
            .position(|f| f == file)
            .map_or(0, |i| i + 1)
    }

    /// Links of any model whose target is exactly `target`, with the
    /// model holding each, in source order.
    pub(super) fn links_to<'a>(
        &self,
        schema: &'a Schema,
        target: &str,
    ) -> Vec<(&'a str, &'a Field)> {
        let mut out: Vec<(&str, &Field)> = schema
            .models()
            .flat_map(|m| m.fields.iter().map(move |f| (m.name.as_str(), f)))
            .filter(|(_, f)| f.link_target() == Some(target))
            .collect();
        out.sort_by_key(|(_, f)| {
            (
                self.rank(&f.location.file),
                f.location.file.clone(),
                f.location.line,
                f.location.column,
            )
        });
        out
    }
}

/// `(declaring model, field name)` → protobuf number, for every field of
/// `name` including inherited ones. A field listed twice (redefined, or
/// reached through two bases) keeps its last number.
pub(super) fn field_numbers(schema: &Schema, name: &str) -> BTreeMap<(String, String), i64> {
    let Some(model) = schema.model(name) else {
        return BTreeMap::new();
    };
    let mut list = base_fields(schema, model, 0);
    list.extend(model.fields.iter().map(|f| (model.name.as_str(), f)));
    let mut out = BTreeMap::new();
    // `id` is number 1 and belongs to the first model in the list, so it
    // never moves the offset.
    let mut last = list.first().map(|(accessor, _)| *accessor);
    let mut offset = 0;
    for (accessor, field) in list {
        if Some(accessor) != last {
            last = Some(accessor);
            offset += 100;
        }
        out.insert(
            (accessor.to_owned(), field.name.clone()),
            field.number + offset,
        );
    }
    out
}

/// The original's `xproto_base_fields`: each base's bases first, then its
/// fields; a model with `no_sync`/`no_policy` drops the bookkeeping fields
/// those options make pointless.
fn base_fields<'a>(
    schema: &'a Schema,
    model: &'a Model,
    depth: usize,
) -> Vec<(&'a str, &'a Field)> {
    let mut out = through_bases(schema, model, depth, &mut |b| {
        b.fields.iter().map(|f| (b.name.as_str(), f)).collect()
    });
    let truthy = |key: &str| {
        model
            .options
            .get(key)
            .is_some_and(|v| *v != OptionValue::Bool(false))
    };
    if truthy("no_sync") {
        out.retain(|(_, f)| f.name != "backend_status" && f.name != "backend_code");
    }
    if truthy("no_policy") {
        out.retain(|(_, f)| f.name != "policy_status" && f.name != "policy_code");
    }
    out
}

/// One reverse link with the model it is attributed to for numbering.
struct Reverse<'a> {
    accessor: &'a str,
    peer: &'a str,
    field: &'a Field,
}

fn base_reverses<'a>(
    schema: &'a Schema,
    order: &SourceOrder,
    model: &'a Model,
    depth: usize,
) -> Vec<Reverse<'a>> {
    through_bases(schema, model, depth, &mut |b| {
        own_reverses(schema, order, b)
    })
}

/// The original's walk over bases: for each base in order, what its own
/// bases give (recursively), then what `own` gives for the base itself.
/// A base reached twice counts twice, as in the original.
fn through_bases<'a, T>(
    schema: &'a Schema,
    model: &'a Model,
    depth: usize,
    own: &mut impl FnMut(&'a Model) -> Vec<T>,
) -> Vec<T> {
    let mut out = Vec::new();
    if depth > MAX_DEPTH {
        return out;
    }
    for base in &model.bases {
        let Some(b) = schema.model(base) else {
            continue;
        };
        out.extend(through_bases(schema, b, depth + 1, own));
        out.extend(own(b));
    }
    out
}

fn own_reverses<'a>(schema: &'a Schema, order: &SourceOrder, model: &'a Model) -> Vec<Reverse<'a>> {
    order
        .links_to(schema, &model.name)
        .into_iter()
        .map(|(peer, field)| Reverse {
            accessor: model.name.as_str(),
            peer,
            field,
        })
        .collect()
}

/// The original's `xproto_rlinks`: named reverse relations of the model and
/// its bases, numbered by reverse id plus an offset that grows by 100 each
/// time the targeted model changes; unnumbered ones from 1900.
pub(super) fn reverse_fields(
    schema: &Schema,
    order: &SourceOrder,
    name: &str,
) -> Vec<ReverseField> {
    let Some(model) = schema.model(name) else {
        return Vec::new();
    };
    let mut list = base_reverses(schema, order, model, 0);
    list.extend(own_reverses(schema, order, model));
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    let mut offset = 0;
    let mut auto = 1900;
    for r in list {
        let FieldType::Link {
            link,
            reverse: Some(reverse),
            ..
        } = &r.field.ty
        else {
            continue;
        };
        if reverse.contains('+') || r.field.name.contains('+') {
            continue;
        }
        match last {
            None => last = Some(r.accessor),
            Some(l) if l != r.accessor => {
                last = Some(r.accessor);
                offset += 100;
            }
            Some(_) => {}
        }
        let proto_number = match r.field.reverse_number {
            Some(id) => id + offset,
            None => {
                auto += 1;
                auto - 1
            }
        };
        out.push(ReverseField {
            name: reverse.clone(),
            peer: r.peer.to_owned(),
            peer_field: r.field.name.clone(),
            origin: r.accessor.to_owned(),
            kind: RelationKind::reverse(*link),
            proto_number,
        });
    }
    out
}
