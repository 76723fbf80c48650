//! The model IR: what a parsed xproto file says, before bases are resolved.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::{PolicyExpr, Validator, parse_validators};

/// A position in a source file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The file name as given to the parser.
    pub file: String,
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The value of a file, message or field option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OptionValue {
    /// `True` / `False`.
    Bool(bool),
    /// An integer literal.
    Int(i64),
    /// A floating point literal.
    Float(f64),
    /// A quoted string.
    Str(String),
    /// `None`, or an unquoted identifier other than `True`/`False`/`None`.
    Ident(Option<String>),
}

impl OptionValue {
    /// The value as a string, when it is a quoted string or an identifier.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            OptionValue::Str(s) => Some(s),
            OptionValue::Ident(Some(s)) => Some(s),
            _ => None,
        }
    }

    /// The value as a boolean, when it is `True`/`False`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            OptionValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Options in declaration order are not needed by any consumer; a sorted map
/// keeps generated output deterministic.
pub type Options = BTreeMap<String, OptionValue>;

/// A parsed xproto file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    /// The file name as given to the parser.
    pub name: String,
    /// `option name = value;` at the top level.
    pub options: Options,
    /// `policy name < expr >`, in source order.
    pub policies: Vec<Policy>,
    /// The messages, in source order.
    pub models: Vec<Model>,
    /// Top-level `enum`s, in source order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enums: Vec<Enum>,
}

impl File {
    /// The file's `app_label` option, if given.
    pub fn app_label(&self) -> Option<&str> {
        self.options.get("app_label").and_then(OptionValue::as_str)
    }
}

/// A named policy expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// The policy's name.
    pub name: String,
    /// The expression between `<` and `>`, as written (trimmed).
    pub text: String,
    /// The expression, parsed.
    pub expr: PolicyExpr,
    /// Where the policy starts.
    pub location: Location,
}

/// A `message`: one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The model's name, e.g. `HelloWorldService`.
    pub name: String,
    /// The policy named after `::`, if any.
    pub policy: Option<String>,
    /// The base models in parentheses, in order.
    pub bases: Vec<String>,
    /// Message options.
    pub options: Options,
    /// The fields the message declares itself (inherited ones are not here).
    pub fields: Vec<Field>,
    /// The `app_label` of the file the model comes from.
    pub app_label: String,
    /// `enum`s declared inside the message, in source order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enums: Vec<Enum>,
    /// Where the message starts.
    pub location: Location,
}

impl Model {
    /// Whether the model is `abstract` (it has no objects of its own).
    pub fn is_abstract(&self) -> bool {
        self.options.get("abstract").and_then(OptionValue::as_bool) == Some(true)
    }

    /// A string option of the model.
    pub fn option_str(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(OptionValue::as_str)
    }

    /// The policies bound as validators by `option validators =
    /// "policy:message, ..."`, in order; empty without the option. A
    /// malformed list yields nothing here: [`Schema`](crate::Schema)
    /// validation reports it.
    pub fn validators(&self) -> Vec<Validator> {
        self.option_str("validators")
            .and_then(|v| parse_validators(v).ok())
            .unwrap_or_default()
    }
}

/// Whether a field must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modifier {
    /// `required`.
    Required,
    /// `optional`.
    Optional,
}

/// Scalar field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalarType {
    /// `string`.
    String,
    /// `bool`.
    Bool,
    /// `int32`, `uint32`, `int64`, `uint64`, `sint32`, ... .
    Int,
    /// `float`, `double`.
    Float,
}

impl ScalarType {
    /// Maps an xproto type name to its scalar type.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" | "bytes" => ScalarType::String,
            "bool" => ScalarType::Bool,
            "int32" | "uint32" | "int64" | "uint64" | "sint32" | "sint64" | "fixed32"
            | "fixed64" => ScalarType::Int,
            "float" | "double" => ScalarType::Float,
            _ => return None,
        })
    }
}

/// The exact protobuf scalar type a field was declared with. The
/// [`ScalarType`] class says how a value is stored and checked; this says
/// how it goes on the wire (`uint32` is not `int32` to a gRPC client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtoScalar {
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `bool`.
    Bool,
    /// `int32`.
    Int32,
    /// `uint32`.
    Uint32,
    /// `int64`.
    Int64,
    /// `uint64`.
    Uint64,
    /// `sint32`.
    Sint32,
    /// `sint64`.
    Sint64,
    /// `fixed32`.
    Fixed32,
    /// `fixed64`.
    Fixed64,
    /// `float`.
    Float,
    /// `double`.
    Double,
}

impl ProtoScalar {
    /// Maps an xproto type name to its protobuf scalar type.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => ProtoScalar::String,
            "bytes" => ProtoScalar::Bytes,
            "bool" => ProtoScalar::Bool,
            "int32" => ProtoScalar::Int32,
            "uint32" => ProtoScalar::Uint32,
            "int64" => ProtoScalar::Int64,
            "uint64" => ProtoScalar::Uint64,
            "sint32" => ProtoScalar::Sint32,
            "sint64" => ProtoScalar::Sint64,
            "fixed32" => ProtoScalar::Fixed32,
            "fixed64" => ProtoScalar::Fixed64,
            "float" => ProtoScalar::Float,
            "double" => ProtoScalar::Double,
            _ => return None,
        })
    }

    /// The type's name in protobuf.
    pub fn name(self) -> &'static str {
        match self {
            ProtoScalar::String => "string",
            ProtoScalar::Bytes => "bytes",
            ProtoScalar::Bool => "bool",
            ProtoScalar::Int32 => "int32",
            ProtoScalar::Uint32 => "uint32",
            ProtoScalar::Int64 => "int64",
            ProtoScalar::Uint64 => "uint64",
            ProtoScalar::Sint32 => "sint32",
            ProtoScalar::Sint64 => "sint64",
            ProtoScalar::Fixed32 => "fixed32",
            ProtoScalar::Fixed64 => "fixed64",
            ProtoScalar::Float => "float",
            ProtoScalar::Double => "double",
        }
    }

    /// The type a field of class `scalar` has when nothing more precise is
    /// known (IR written before [`Field::proto_type`] existed, fields built
    /// in code): `string`, `bool`, `int32`, `float`.
    pub fn of_class(scalar: ScalarType) -> Self {
        match scalar {
            ScalarType::String => ProtoScalar::String,
            ScalarType::Bool => ProtoScalar::Bool,
            ScalarType::Int => ProtoScalar::Int32,
            ScalarType::Float => ProtoScalar::Float,
        }
    }
}

/// The kind of a link field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// `manytoone`: this object points to one target.
    ManyToOne,
    /// `onetoone`.
    OneToOne,
    /// `manytomany`: a set of targets, kept in a join table.
    ManyToMany,
}

/// What a field holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FieldType {
    /// A scalar value.
    Scalar {
        /// Its type.
        scalar: ScalarType,
    },
    /// A link to an object of `target` (or one of its descendants).
    Link {
        /// `manytoone` or `onetoone`.
        link: LinkKind,
        /// The target model.
        target: String,
        /// The name of the reverse relation on the target, if given; `+`
        /// means "no reverse relation", as in Django.
        reverse: Option<String>,
        /// The join model of a `manytomany` link (`->Target/Through:rev`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through: Option<String>,
    },
}

/// A field of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The field's name (for links, without the `_id` suffix).
    pub name: String,
    /// `required` or `optional`.
    pub modifier: Modifier,
    /// Scalar or link.
    #[serde(flatten)]
    pub ty: FieldType,
    /// The field number after `=`.
    pub number: i64,
    /// The reverse id after `:` for links.
    pub reverse_number: Option<i64>,
    /// Field options in brackets.
    pub options: Options,
    /// Whether the field was declared `repeated` (a plain protobuf list, as
    /// the original parser accepted it); its `modifier` is then `Optional`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
    /// For a field typed with an `enum` of the same file (`optional Color c = 1;`),
    /// the enum's name; such a field holds the value's number
    /// (`ty` is an integer scalar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_type: Option<String>,
    /// The exact protobuf type of a scalar field, as written (`uint32`);
    /// `None` for links, enum-typed fields and IR that predates it. Read it
    /// through [`Field::proto_scalar`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_type: Option<ProtoScalar>,
    /// Where the field starts.
    pub location: Location,
}

impl Field {
    /// A string option of the field.
    pub fn option_str(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(OptionValue::as_str)
    }

    /// Whether a boolean option is `True`.
    pub fn flag(&self, name: &str) -> bool {
        self.options.get(name).and_then(OptionValue::as_bool) == Some(true)
    }

    /// Whether users (REST, TOSCA, gRPC) may write the field. Fields marked
    /// `bookkeeping_state` or `feedback_state` belong to the synchronizer
    /// and the host, the flags that steer it (`no_sync`, `no_policy`,
    /// `write_protect`, `lazy_blocked`) included: steps and importers set
    /// those through their own calls.
    pub fn is_user_writable(&self) -> bool {
        !(self.flag("bookkeeping_state") || self.flag("feedback_state"))
    }

    /// The link target, if this is a link.
    pub fn link_target(&self) -> Option<&str> {
        match &self.ty {
            FieldType::Link { target, .. } => Some(target),
            FieldType::Scalar { .. } => None,
        }
    }

    /// The protobuf type of a scalar field: as written, else its class's
    /// ([`ProtoScalar::of_class`]); `None` for links.
    pub fn proto_scalar(&self) -> Option<ProtoScalar> {
        match self.ty {
            FieldType::Scalar { scalar } => {
                Some(self.proto_type.unwrap_or(ProtoScalar::of_class(scalar)))
            }
            FieldType::Link { .. } => None,
        }
    }

    /// Whether the field is a `manytomany` link, which has no column of its own.
    pub fn is_many(&self) -> bool {
        matches!(
            self.ty,
            FieldType::Link {
                link: LinkKind::ManyToMany,
                ..
            }
        )
    }

    /// The name of the stored column: `<name>_id` for links, else the name.
    pub fn column_name(&self) -> String {
        match self.ty {
            FieldType::Link { .. } => format!("{}_id", self.name),
            FieldType::Scalar { .. } => self.name.clone(),
        }
    }
}

/// A plain protobuf `enum`: named integer constants, at the top level of a
/// file or inside a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enum {
    /// The enum's name.
    pub name: String,
    /// Its constants, in source order.
    pub values: Vec<EnumValue>,
    /// Where the enum starts.
    pub location: Location,
}

/// One constant of an [`Enum`]: `NAME = number;`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnumValue {
    /// The constant's name.
    pub name: String,
    /// Its number.
    pub number: i64,
    /// Where the constant is.
    pub location: Location,
}
