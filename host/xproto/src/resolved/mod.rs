//! The resolved IR: what every generator and every other crate reads.
//!
//! A [`ResolvedSchema`] is built from a validated [`Schema`] and the files
//! whose models it covers. Unlike the per-file [`crate::File`], each
//! [`ResolvedModel`] has its inheritance resolved (every field, inherited
//! ones included, with the model that declares it), its links and reverse
//! links computed, its options merged with the file's, and the protobuf
//! field numbers the original generator would give it.
//!
//! # Stability
//!
//! The IR is versioned by [`IR_VERSION`]. Within a version, fields are only
//! added (with a serde default), never renamed or removed; maps are sorted
//! and lists have a documented order, so serialized IR is deterministic.
//!
//! # Field numbering
//!
//! As the original generator (`xproto_fields`, `xproto_rlinks`):
//!
//! - fields are listed depth first from the furthest base (each base's own
//!   bases first, then its fields), then the model's own; `id` comes first
//!   and is number 1. Each time the declaring model changes along that list,
//!   the offset grows by 100, so `XOSBase` fields keep their numbers, a
//!   direct descendant's fields are numbered from 101, the next level from 201.
//! - reverse links use their declared reverse id plus the same kind of
//!   offset over the chain of models that are targeted; reverse links
//!   without a reverse id are numbered from 1900 in order. Reverse links
//!   named `+` (or unnamed) have no number and no reverse field.

mod numbering;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ir::ProtoScalar;
use crate::ir::{Field, FieldType, File, LinkKind, Modifier, OptionValue, Options, Policy};
use crate::schema::Schema;

/// The version of the IR's serialized form.
pub const IR_VERSION: u32 = 1;

/// The resolved models of a set of files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedSchema {
    /// [`IR_VERSION`].
    pub ir_version: u32,
    /// File-level options of the given files; a key set by several files
    /// keeps the last file's value, as when the original reads the files
    /// one after the other.
    pub file_options: Options,
    /// The models of the given files, sorted by name.
    pub models: Vec<ResolvedModel>,
    /// The policies of the given files, by name.
    pub policies: BTreeMap<String, Policy>,
}

/// One model with its inheritance resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedModel {
    /// The model's name, e.g. `HelloWorldServiceInstance`.
    pub name: String,
    /// The model's `app_label` option, else its file's, else `core` (the
    /// original's targets fall back the same way).
    pub app_label: String,
    /// The file the model is defined in.
    pub file: String,
    /// The model policy named after `::`, if any.
    pub policy: Option<String>,
    /// The bases as declared, mixins (`AttributeMixin`, ...) included.
    pub bases: Vec<String>,
    /// The ancestors that are models, nearest first.
    pub ancestors: Vec<String>,
    /// Whether the model is `abstract` (no objects, no table, no collection).
    pub is_abstract: bool,
    /// The model's options; file options the model does not set are
    /// inherited, as in the original generator.
    pub options: Options,
    /// The REST collection name: the `plural` option in lower case, else
    /// the lower-case name plus `s` (`/xosapi/v1/<app_label>/<plural>`).
    pub plural: String,
    /// Every field, inherited ones first (furthest ancestor first); a field
    /// redefined lower down replaces the inherited one in place.
    pub fields: Vec<ResolvedField>,
    /// The links the model declares itself, in source order.
    pub links: Vec<Link>,
    /// The links of other models that target this model directly, seen from
    /// here (`User.site->Site:users` is `users` on `Site`), in source order.
    pub rlinks: Vec<Link>,
    /// The reverse relations of this model and its ancestors that have a
    /// name, numbered as the original generator does; the order is the
    /// numbering order.
    pub reverse_fields: Vec<ReverseField>,
}

/// A field as a model sees it (own or inherited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedField {
    /// The field's name (for links, without `_id`).
    pub name: String,
    /// The model that declares the field.
    pub origin: String,
    /// `required` or `optional`.
    pub modifier: Modifier,
    /// Scalar or link, with the link's target, reverse name and through model.
    #[serde(flatten)]
    pub ty: FieldType,
    /// The number written in the xproto file.
    pub id: i64,
    /// The reverse id written after `:` for links.
    pub reverse_id: Option<i64>,
    /// The protobuf field number in this model (see the module docs).
    pub proto_number: i64,
    /// The stored column (`<name>_id` for links); `None` for `manytomany`
    /// links, which have no column of their own.
    pub column: Option<String>,
    /// Whether users (REST, TOSCA) may write it ([`Field::is_user_writable`]).
    pub writable: bool,
    /// Whether the field was declared `repeated` (a plain protobuf list).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
    /// The `enum` a field is typed with (it then holds the value's number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_type: Option<String>,
    /// The exact protobuf type of a scalar field ([`Field::proto_scalar`]);
    /// `None` for links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_type: Option<ProtoScalar>,
    /// The field's options as written.
    pub options: Options,
}

impl ResolvedField {
    /// A string option of the field.
    pub fn option_str(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(OptionValue::as_str)
    }

    /// Whether a boolean option is `True`.
    pub fn flag(&self, name: &str) -> bool {
        self.options.get(name).and_then(OptionValue::as_bool) == Some(true)
    }

    /// The link target, if this is a link.
    pub fn link_target(&self) -> Option<&str> {
        match &self.ty {
            FieldType::Link { target, .. } => Some(target),
            FieldType::Scalar { .. } => None,
        }
    }
}

/// How many objects are on each side of a relation, seen from one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationKind {
    /// Many of these point to one peer (a `manytoone` link).
    ManyToOne,
    /// One of these is pointed to by many peers (the reverse of `manytoone`).
    OneToMany,
    /// `onetoone`, either way.
    OneToOne,
    /// `manytomany`, either way.
    ManyToMany,
}

/// A link's kind seen from the model that declares it.
impl From<LinkKind> for RelationKind {
    fn from(kind: LinkKind) -> Self {
        match kind {
            LinkKind::ManyToOne => RelationKind::ManyToOne,
            LinkKind::OneToOne => RelationKind::OneToOne,
            LinkKind::ManyToMany => RelationKind::ManyToMany,
        }
    }
}

impl RelationKind {
    /// The same relation seen from the other end.
    pub fn reverse(kind: LinkKind) -> Self {
        match kind {
            LinkKind::ManyToOne => RelationKind::OneToMany,
            LinkKind::OneToOne => RelationKind::OneToOne,
            LinkKind::ManyToMany => RelationKind::ManyToMany,
        }
    }
}

/// A link seen from one end, in the original generator's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The name of the declaring field (the same on both ends).
    pub name: String,
    /// The relation seen from this end.
    pub kind: RelationKind,
    /// The model at the other end.
    pub peer: String,
    /// The name on this end: the field for a link, the reverse name for a
    /// reverse link.
    pub src_port: String,
    /// The name on the other end; `None` when the link names no reverse.
    pub dst_port: Option<String>,
    /// The join model of a `manytomany` link.
    pub through: Option<String>,
    /// The declared reverse id.
    pub reverse_id: Option<i64>,
    /// The declaring field's options.
    pub options: Options,
}

/// A named reverse relation as a field of the target model (the gRPC API's
/// `repeated int32 <name>_ids`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReverseField {
    /// The reverse name (`users` on `Site`).
    pub name: String,
    /// The model holding the link (`User`).
    pub peer: String,
    /// The link field on the peer (`site`).
    pub peer_field: String,
    /// The model the link targets (this model or an ancestor).
    pub origin: String,
    /// The relation seen from this end.
    pub kind: RelationKind,
    /// The protobuf field number (see the module docs).
    pub proto_number: i64,
}

impl ResolvedSchema {
    /// The IR of the models of `files`, resolved against `schema` (which
    /// must contain them, e.g. [`Schema::resolve`] of the same files).
    /// Models of `files` that `schema` does not know are skipped.
    pub fn build(schema: &Schema, files: &[File]) -> ResolvedSchema {
        let mut file_options = Options::new();
        let mut policies = BTreeMap::new();
        for file in files {
            for (k, v) in &file.options {
                file_options.insert(k.clone(), v.clone());
            }
            for policy in &file.policies {
                policies
                    .entry(policy.name.clone())
                    .or_insert_with(|| policy.clone());
            }
        }
        let order = numbering::SourceOrder::new(files);
        let mut models: Vec<ResolvedModel> = files
            .iter()
            .flat_map(|f| f.models.iter().map(move |m| (f, m)))
            .filter_map(|(file, m)| {
                let model = schema.model(&m.name)?;
                Some(resolve_model(schema, &order, &file.options, model))
            })
            .collect();
        models.sort_by(|a, b| a.name.cmp(&b.name));
        models.dedup_by(|a, b| a.name == b.name);
        ResolvedSchema {
            ir_version: IR_VERSION,
            file_options,
            models,
            policies,
        }
    }

    /// A model by name.
    pub fn model(&self, name: &str) -> Option<&ResolvedModel> {
        self.models.iter().find(|m| m.name == name)
    }
}

impl ResolvedModel {
    /// One model of `schema`, resolved without its file: its options are
    /// its own (file options are not inherited), and reverse links are
    /// ordered by file name, then position. `None` for an unknown model.
    pub fn resolve(schema: &Schema, name: &str) -> Option<ResolvedModel> {
        let model = schema.model(name)?;
        Some(resolve_model(
            schema,
            &numbering::SourceOrder::new(&[]),
            &Options::new(),
            model,
        ))
    }
}

fn resolve_model(
    schema: &Schema,
    order: &numbering::SourceOrder,
    file_options: &Options,
    model: &crate::Model,
) -> ResolvedModel {
    let mut options = model.options.clone();
    for (k, v) in file_options {
        options.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let numbers = numbering::field_numbers(schema, &model.name);
    let fields = schema
        .all_fields_with_origin(&model.name)
        .into_iter()
        .map(|(origin, f)| ResolvedField {
            name: f.name.clone(),
            proto_number: numbers
                .get(&(origin.to_owned(), f.name.clone()))
                .copied()
                .unwrap_or(f.number),
            origin: origin.to_owned(),
            modifier: f.modifier,
            ty: f.ty.clone(),
            id: f.number,
            reverse_id: f.reverse_number,
            column: (!f.is_many()).then(|| f.column_name()),
            writable: f.is_user_writable(),
            repeated: f.repeated,
            enum_type: f.enum_type.clone(),
            proto_type: f.proto_scalar(),
            options: f.options.clone(),
        })
        .collect();
    let links = model.fields.iter().filter_map(forward_link).collect();
    let rlinks = order
        .links_to(schema, &model.name)
        .into_iter()
        .filter_map(|(peer, f)| reverse_link(peer, f))
        .collect();
    ResolvedModel {
        name: model.name.clone(),
        app_label: model
            .option_str("app_label")
            .unwrap_or(&model.app_label)
            .to_owned(),
        file: model.location.file.clone(),
        policy: model.policy.clone(),
        bases: model.bases.clone(),
        ancestors: schema
            .ancestors(&model.name)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        is_abstract: model.is_abstract(),
        plural: model
            .option_str("plural")
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| format!("{}s", model.name.to_ascii_lowercase())),
        options,
        fields,
        links,
        rlinks,
        reverse_fields: numbering::reverse_fields(schema, order, &model.name),
    }
}

fn forward_link(field: &Field) -> Option<Link> {
    let FieldType::Link {
        link,
        target,
        reverse,
        through,
    } = &field.ty
    else {
        return None;
    };
    Some(Link {
        name: field.name.clone(),
        kind: RelationKind::from(*link),
        peer: target.clone(),
        src_port: field.name.clone(),
        dst_port: reverse.clone(),
        through: through.clone(),
        reverse_id: field.reverse_number,
        options: field.options.clone(),
    })
}

fn reverse_link(peer: &str, field: &Field) -> Option<Link> {
    let FieldType::Link {
        link,
        reverse,
        through,
        ..
    } = &field.ty
    else {
        return None;
    };
    Some(Link {
        name: field.name.clone(),
        kind: RelationKind::reverse(*link),
        peer: peer.to_owned(),
        src_port: reverse.clone().unwrap_or_default(),
        dst_port: Some(field.name.clone()),
        through: through.clone(),
        reverse_id: field.reverse_number,
        options: field.options.clone(),
    })
}

#[cfg(test)]
mod tests;
