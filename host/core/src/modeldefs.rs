//! Model definitions as XOS's GUI reads them (`GET /xosapi/v1/modeldefs`,
//! XOS's `modeldefs.proto` and its `modeldefs.xtarget` generator): every
//! model with objects, its fields with a UI type, help text, validators,
//! choices and defaults, and the relations it takes part in.

use serde::Serialize;
use syncplane_xproto::{Field, FieldType, LinkKind, Modifier, OptionValue, ScalarType};

use crate::registry::{Registry, is_date};

/// One model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDef {
    /// The model's name (`Site`).
    pub name: String,
    /// Its app (`core`, or the service's `app_label`).
    pub app: String,
    /// Its `verbose_name` option, else its name.
    pub verbose_name: String,
    /// Its `description` option, else empty.
    pub description: String,
    /// The fields, `id` included, by name; links as `<name>_id`.
    pub fields: Vec<FieldDef>,
    /// Links from this model (`manytoone`, `onetoone`) and to it
    /// (`onetomany`, named by the field of the linking model).
    pub relations: Vec<Relation>,
}

/// One field of a [`ModelDef`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDef {
    /// The name as objects carry it (`site_id` for the link `site`).
    pub name: String,
    /// The help text, else empty (XOS's name for it).
    pub hint: String,
    /// The same help text, under xproto's name.
    pub help_text: String,
    /// `string`, `text`, `number`, `boolean`, `date` or `select` (with
    /// `options`); as in XOS, floats are `string`.
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// For a link, the model it points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    /// Checks a form makes before sending: `required`, `maxlength`, `min`,
    /// `max`, `ip`, `url`, `email`.
    pub validators: Vec<Validator>,
    /// The allowed values of a `choices` field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<Choice>>,
    /// The default as XOS's GUI shows it (`"true"`, `"0"`, `"null"`, a
    /// string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Maintained by syncplane (bookkeeping and feedback fields, `id`):
    /// users cannot write it.
    pub read_only: bool,
}

/// A link between two models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relation {
    /// The model at the other end.
    pub model: String,
    /// `manytoone`, `onetoone` (links of this model) or `onetomany`
    /// (links of `model` to this one).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The link field: this model's for its own links, `model`'s for
    /// links to this one.
    pub on_field: String,
}

/// A validator of a [`FieldDef`]: `{"name": "maxlength", "int_value": 200}`
/// or `{"name": "required", "bool_value": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validator {
    /// What it checks.
    pub name: &'static str,
    /// The bound, for `maxlength`, `min`, `max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int_value: Option<i64>,
    /// `true`, for the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bool_value: Option<bool>,
}

/// One allowed value of a `choices` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// The stored value.
    pub id: String,
    /// What a form shows.
    pub label: String,
}

/// The definitions of every model that has objects (abstract models and
/// models marked `gui_hidden` are left out, as are fields marked
/// `gui_hidden` and `manytomany` links, as XOS did), by name.
pub fn modeldefs(registry: &Registry) -> Vec<ModelDef> {
    let schema = registry.schema();
    schema
        .models()
        .filter(|m| !m.is_abstract() && !flag(&m.options, "gui_hidden"))
        .map(|model| {
            let all = schema.all_fields(&model.name);
            let mut fields: Vec<FieldDef> = all
                .iter()
                .filter(|f| !f.flag("gui_hidden") && !f.is_many())
                .map(|f| field_def(f))
                .collect();
            fields.push(id_field());
            fields.sort_by(|a, b| a.name.cmp(&b.name));
            let mut relations: Vec<Relation> =
                all.iter().filter_map(|f| link_relation(f)).collect();
            relations.extend(
                schema
                    .reverse_links(&model.name)
                    .into_iter()
                    .map(|r| Relation {
                        model: r.peer,
                        kind: "onetomany",
                        on_field: r.field,
                    }),
            );
            ModelDef {
                name: model.name.clone(),
                app: model.app_label.clone(),
                verbose_name: model
                    .option_str("verbose_name")
                    .unwrap_or(&model.name)
                    .to_owned(),
                description: model
                    .option_str("description")
                    .unwrap_or_default()
                    .to_owned(),
                fields,
                relations,
            }
        })
        .collect()
}

fn flag(options: &syncplane_xproto::Options, name: &str) -> bool {
    match options.get(name) {
        Some(OptionValue::Bool(b)) => *b,
        // `gui_hidden = "True"` is written quoted in some services.
        Some(value) => value.as_str() == Some("True"),
        None => false,
    }
}

fn id_field() -> FieldDef {
    FieldDef {
        name: "id".into(),
        hint: String::new(),
        help_text: String::new(),
        ty: "number",
        relation: None,
        validators: Vec::new(),
        options: None,
        default: None,
        read_only: true,
    }
}

fn link_relation(field: &Field) -> Option<Relation> {
    let FieldType::Link { link, target, .. } = &field.ty else {
        return None;
    };
    let kind = match link {
        LinkKind::ManyToOne => "manytoone",
        LinkKind::OneToOne => "onetoone",
        LinkKind::ManyToMany => return None,
    };
    Some(Relation {
        model: target.clone(),
        kind,
        on_field: field.name.clone(),
    })
}

fn field_def(field: &Field) -> FieldDef {
    let help = field.option_str("help_text").unwrap_or_default().to_owned();
    let options = field.option_str("choices").and_then(choices);
    let ty = match &field.ty {
        _ if options.is_some() => "select",
        FieldType::Link { .. } => "number",
        FieldType::Scalar { scalar } => match scalar {
            ScalarType::String if is_date(field) => "date",
            ScalarType::String if field.flag("text") => "text",
            ScalarType::String => "string",
            ScalarType::Bool => "boolean",
            ScalarType::Int => "number",
            ScalarType::Float => "string",
        },
    };
    FieldDef {
        name: field.column_name(),
        hint: help.clone(),
        help_text: help,
        ty,
        relation: link_relation(field),
        validators: validators(field),
        options,
        default: field.options.get("default").map(gui_default),
        read_only: !field.is_user_writable(),
    }
}

fn validators(field: &Field) -> Vec<Validator> {
    let int = |name: &'static str, value: i64| Validator {
        name,
        int_value: Some(value),
        bool_value: None,
    };
    let yes = |name: &'static str| Validator {
        name,
        int_value: None,
        bool_value: Some(true),
    };
    let mut out = Vec::new();
    for (option, name) in [
        ("max_length", "maxlength"),
        ("min_value", "min"),
        ("max_value", "max"),
    ] {
        if let Some(OptionValue::Int(n)) = field.options.get(option) {
            out.push(int(name, *n));
        }
    }
    if let Some(content) = field.option_str("content_type")
        && let Some(name) = ["ip", "url", "email"].into_iter().find(|c| *c == content)
    {
        out.push(yes(name));
    }
    if field.modifier == Modifier::Required && !field.flag("blank") && field.is_user_writable() {
        out.push(yes("required"));
    }
    out
}

/// A default as XOS's GUI showed it.
fn gui_default(value: &OptionValue) -> String {
    match value {
        OptionValue::Bool(b) => b.to_string(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::Float(f) => f.to_string(),
        OptionValue::Str(s) => s.clone(),
        OptionValue::Ident(None) => "null".into(),
        OptionValue::Ident(Some(s)) => s.clone(),
    }
}

/// The pairs of a `choices` option whose elements are all strings:
/// `(('generic', 'Generic'), ('data', 'Data Plane'))`. `None` for any
/// other shape.
fn choices(text: &str) -> Option<Vec<Choice>> {
    crate::choices::pairs(text)?
        .into_iter()
        .map(|(id, label)| {
            Some(Choice {
                id: id?,
                label: label?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_read_from_a_python_tuple_of_pairs() {
        assert_eq!(
            choices(r#"(('none', 'None'), ("pub", 'Pub\'lic'))"#),
            Some(vec![
                Choice {
                    id: "none".into(),
                    label: "None".into()
                },
                Choice {
                    id: "pub".into(),
                    label: "Pub'lic".into()
                },
            ])
        );
        assert_eq!(choices("(('a',),)"), None);
        assert_eq!(choices("[x]"), None);
        assert_eq!(choices("(('a', 'b"), None);
    }

    #[tokio::test]
    async fn the_core_models_are_described_as_xos_gui_reads_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = crate::Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let defs = modeldefs(&core.registry());
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert!(
            names.contains(&"Site") && names.contains(&"User"),
            "{names:?}"
        );
        assert!(!names.contains(&"XOSBase"), "abstract models are left out");
        let service = defs.iter().find(|d| d.name == "Service").expect("Service");
        assert_eq!(service.app, "core");
        let field = |name: &str| {
            service
                .fields
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("no field {name}"))
        };
        let names: Vec<&str> = service.fields.iter().map(|f| f.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "fields by name");
        assert_eq!(field("id").ty, "number");
        assert!(field("id").read_only);
        let name = field("name");
        assert_eq!(name.ty, "string");
        assert_eq!(name.hint, "Unique name of service");
        assert!(name.validators.contains(&Validator {
            name: "maxlength",
            int_value: Some(30),
            bool_value: None
        }));
        assert!(name.validators.iter().any(|v| v.name == "required"));
        assert!(!name.read_only);
        let kind = field("kind");
        assert_eq!(kind.ty, "select");
        assert_eq!(kind.default.as_deref(), Some("generic"));
        assert_eq!(
            kind.options.as_ref().map(|o| o[1].clone()),
            Some(Choice {
                id: "data".into(),
                label: "Data Plane".into()
            })
        );
        let site = field("site_id");
        assert_eq!(site.ty, "number");
        assert_eq!(
            site.relation,
            Some(Relation {
                model: "Site".into(),
                kind: "manytoone",
                on_field: "site".into()
            })
        );
        assert!(field("backend_status").read_only);
        assert_eq!(field("created").ty, "date");
        assert_eq!(field("deleted").ty, "boolean");
        assert_eq!(field("deleted").default.as_deref(), Some("false"));
        assert!(
            !service.fields.iter().any(|f| f.name == "enabled"),
            "gui_hidden fields are left out"
        );
        assert!(service.relations.contains(&Relation {
            model: "ServiceInstance".into(),
            kind: "onetomany",
            on_field: "owner".into()
        }));
        let user = defs.iter().find(|d| d.name == "User").expect("User");
        assert!(!user.fields.iter().any(|f| f.name == "password"));
    }
}
