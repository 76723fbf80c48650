//! A model as the GUI shows it: its definition ([`ModelDef`], which
//! honours `gui_hidden`) with each field sorted into what users write,
//! what the synchronizer writes back (feedback) and XOS's bookkeeping.

use serde::Serialize;
use syncplane_api::AppState;
use syncplane_core::{FieldDef, ModelDef, Registry};
use syncplane_xproto::{FieldType, ScalarType};

use crate::error::GuiError;
use crate::values;

/// Who writes a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    /// Users, through forms.
    Writable,
    /// The synchronizer (`feedback_state`): read-only in forms.
    Feedback,
    /// XOS's bookkeeping (the fields of `XOSBase`, `id`): the status panel
    /// shows them.
    Bookkeeping,
}

/// One field of a [`ModelView`].
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FieldView {
    /// The name objects carry (`site_id` for the link `site`).
    pub(crate) name: String,
    /// What a page calls it (`site` for `site_id`).
    pub(crate) label: String,
    /// The widget: `string`, `text`, `number`, `float`, `boolean`, `date`,
    /// `select`, `link`, `many` (a `manytomany` link: `<field>_ids`).
    pub(crate) widget: &'static str,
    /// Who writes it.
    pub(crate) role: Role,
    /// Whether a value is required.
    pub(crate) required: bool,
    /// `max_length`.
    pub(crate) max_length: Option<i64>,
    /// `min_value`.
    pub(crate) min: Option<i64>,
    /// `max_value`.
    pub(crate) max: Option<i64>,
    /// The choices of a `select`, as `(value, label)`.
    pub(crate) choices: Vec<(String, String)>,
    /// The help text.
    pub(crate) help_text: String,
    /// For a link, the model it points to.
    pub(crate) link_model: Option<String>,
    /// Whether its value is secret: never shown.
    pub(crate) secret: bool,
    /// The default a new object's form starts with.
    pub(crate) default: Option<String>,
}

/// A model with its fields sorted for pages.
#[derive(Debug, Clone)]
pub(crate) struct ModelView {
    /// The definition.
    pub(crate) def: ModelDef,
    /// Every field shown, in definition order (`id` first).
    pub(crate) fields: Vec<FieldView>,
}

impl ModelView {
    /// The fields users write.
    pub(crate) fn writable(&self) -> impl Iterator<Item = &FieldView> {
        self.fields.iter().filter(|f| f.role == Role::Writable)
    }

    /// The fields a list shows as columns: `id`, `name` first if there is
    /// one, then up to five more that users write and that fit a cell.
    pub(crate) fn columns(&self) -> Vec<&FieldView> {
        let mut columns: Vec<&FieldView> = self.fields.iter().filter(|f| f.name == "id").collect();
        let fits = |f: &&FieldView| f.widget != "text" && f.widget != "many" && !f.secret;
        columns.extend(self.writable().filter(|f| f.name == "name"));
        columns.extend(
            self.writable()
                .filter(|f| f.name != "name")
                .filter(fits)
                .take(5),
        );
        columns
    }

    /// The field named `name` (or whose link is named so).
    pub(crate) fn field(&self, name: &str) -> Option<&FieldView> {
        self.fields
            .iter()
            .find(|f| f.name == name || (f.link_model.is_some() && f.label == name))
    }
}

/// The view of `model`.
///
/// # Errors
///
/// [`GuiError::NotFound`] when no model of that name has objects or it is
/// `gui_hidden`.
pub(crate) fn model_view(state: &AppState, model: &str) -> Result<ModelView, GuiError> {
    let registry = state.host.core().registry();
    let def = syncplane_core::modeldefs(&registry)
        .into_iter()
        .find(|d| d.name == model)
        .ok_or_else(|| GuiError::NotFound(format!("there is no model `{model}`")))?;
    Ok(view(&registry, def))
}

fn view(registry: &Registry, def: ModelDef) -> ModelView {
    let schema = registry.schema();
    let all = schema.all_fields(&def.name);
    let base: Vec<String> = schema
        .all_fields("XOSBase")
        .iter()
        .map(|f| f.column_name())
        .collect();
    let mut fields = Vec::new();
    // `id` first, then the fields in the order the model defines them.
    let ordered = std::iter::once(None).chain(all.iter().map(|f| Some(f.column_name())));
    for column in ordered {
        let name = column.unwrap_or_else(|| "id".to_owned());
        let Some(field_def) = def.fields.iter().find(|f| f.name == name) else {
            continue;
        };
        let source = all.iter().find(|f| f.column_name() == name);
        let role = if name == "id" || base.contains(&name) {
            Role::Bookkeeping
        } else if field_def.read_only {
            Role::Feedback
        } else {
            Role::Writable
        };
        let float = source.is_some_and(|f| {
            matches!(
                f.ty,
                FieldType::Scalar {
                    scalar: ScalarType::Float
                }
            )
        });
        fields.push(field_view(field_def, role, float));
    }
    // Many-to-many links, which model definitions leave out (as XOS's
    // did): written as `<field>_ids` lists of ids.
    for field in all.iter().filter(|f| f.is_many() && !f.flag("gui_hidden")) {
        fields.push(FieldView {
            name: syncplane_core::ids_name(&field.name),
            label: field.name.clone(),
            widget: "many",
            role: if field.is_user_writable() {
                Role::Writable
            } else {
                Role::Feedback
            },
            required: false,
            max_length: None,
            min: None,
            max: None,
            choices: Vec::new(),
            help_text: field.option_str("help_text").unwrap_or_default().to_owned(),
            link_model: field.link_target().map(str::to_owned),
            secret: false,
            default: None,
        });
    }
    ModelView { def, fields }
}

fn field_view(def: &FieldDef, role: Role, float: bool) -> FieldView {
    let bound = |name: &str| {
        def.validators
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.int_value)
    };
    let link_model = def.relation.as_ref().map(|r| r.model.clone());
    let widget = match def.ty {
        _ if link_model.is_some() => "link",
        "string" if float => "float",
        other => match other {
            "text" => "text",
            "number" => "number",
            "boolean" => "boolean",
            "date" => "date",
            "select" => "select",
            _ => "string",
        },
    };
    FieldView {
        label: if link_model.is_some() {
            def.name.strip_suffix("_id").unwrap_or(&def.name).to_owned()
        } else {
            def.name.clone()
        },
        name: def.name.clone(),
        widget,
        role,
        required: def.validators.iter().any(|v| v.name == "required"),
        max_length: bound("maxlength"),
        min: bound("min"),
        max: bound("max"),
        choices: def
            .options
            .iter()
            .flatten()
            .map(|c| (c.id.clone(), c.label.clone()))
            .collect(),
        help_text: def.help_text.clone(),
        secret: values::is_secret(&def.name),
        default: def.default.clone().filter(|d| d != "null"),
        link_model,
    }
}
