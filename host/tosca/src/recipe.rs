//! Parsing recipes and planning them against the installed models.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value};
use syncplane_xproto::Schema;

use crate::error::{Error, Result};

const NODE_PREFIX: &str = "tosca.nodes.";

/// A parsed recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The recipe's description.
    pub description: Option<String>,
    /// `imports`, as written.
    pub imports: Vec<String>,
    /// The node templates in recipe order.
    pub templates: Vec<NodeTemplate>,
}

/// One node template: an object to create or update.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTemplate {
    /// The template's name in the recipe.
    pub name: String,
    /// The model (the type without `tosca.nodes.`).
    pub model: String,
    /// Property values, as JSON.
    pub properties: Map<String, Value>,
    /// `must-exist`: the object must already exist; it is never created.
    pub must_exist: bool,
    /// Links to other templates: link field name → template name.
    pub requirements: BTreeMap<String, String>,
    /// Requirements named more than once, as a `manytomany` link's are
    /// (one entry per target): field name → template names, in order.
    pub many: BTreeMap<String, Vec<String>>,
}

impl NodeTemplate {
    /// Every requirement, `(field, template)`, singles then the targets of
    /// each many-to-many field.
    pub fn all_requirements(&self) -> impl Iterator<Item = (&String, &String)> {
        self.requirements.iter().chain(
            self.many
                .iter()
                .flat_map(|(field, nodes)| nodes.iter().map(move |n| (field, n))),
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    #[allow(dead_code, reason = "checked by serde only")]
    tosca_definitions_version: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    imports: Vec<String>,
    topology_template: RawTopology,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    #[serde(default)]
    node_templates: serde_yaml_ng::Mapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    properties: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    requirements: Vec<BTreeMap<String, RawRequirement>>,
}

#[derive(Deserialize)]
struct RawRequirement {
    node: String,
    #[allow(
        dead_code,
        reason = "accepted for compatibility; links are typed by the model"
    )]
    #[serde(default)]
    relationship: Option<String>,
}

fn syntax(e: serde_yaml_ng::Error) -> Error {
    Error::Syntax {
        location: e.location().map(|l| (l.line(), l.column())),
        message: e.to_string(),
    }
}

/// Parses a recipe's YAML, after checking it against the default
/// [`Limits`](crate::Limits).
///
/// # Errors
///
/// [`Error::Limit`] for a recipe past a limit; [`Error::Syntax`] for
/// invalid YAML or an unexpected shape.
pub fn parse_recipe(text: &str) -> Result<Recipe> {
    let limits = crate::Limits::default();
    crate::limits::check(text, &limits)?;
    let raw: RawRecipe = serde_yaml_ng::from_str(text).map_err(syntax)?;
    let count = raw.topology_template.node_templates.len();
    if count > limits.max_templates {
        return Err(Error::Limit {
            limit: crate::LimitExceeded::Templates {
                count,
                max: limits.max_templates,
            },
            location: None,
        });
    }
    let mut templates = Vec::new();
    for (name, body) in raw.topology_template.node_templates {
        let name = match name {
            serde_yaml_ng::Value::String(s) => s,
            other => {
                return Err(Error::Syntax {
                    location: None,
                    message: format!("node template names must be strings, got {other:?}"),
                });
            }
        };
        let body: RawTemplate = serde_yaml_ng::from_value(body).map_err(|e| Error::Syntax {
            location: None,
            message: format!("node template `{name}`: {e}"),
        })?;
        let model = body
            .ty
            .strip_prefix(NODE_PREFIX)
            .unwrap_or(&body.ty)
            .to_owned();
        let mut properties = Map::new();
        let mut must_exist = false;
        for (key, value) in body.properties {
            let json = serde_json::to_value(&value).map_err(|e| Error::Syntax {
                location: None,
                message: format!("node template `{name}`, property `{key}`: {e}"),
            })?;
            if key == "must-exist" {
                must_exist = json.as_bool().unwrap_or(false);
            } else {
                properties.insert(key, json);
            }
        }
        let mut listed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in body.requirements {
            for (field, req) in entry {
                listed.entry(field).or_default().push(req.node);
            }
        }
        let mut requirements = BTreeMap::new();
        let mut many = BTreeMap::new();
        for (field, mut nodes) in listed {
            if nodes.len() == 1 {
                requirements.insert(field, nodes.remove(0));
            } else {
                many.insert(field, nodes);
            }
        }
        templates.push(NodeTemplate {
            name,
            model: model.clone(),
            properties,
            must_exist,
            requirements,
            many,
        });
        if !body.ty.starts_with(NODE_PREFIX) {
            let last = templates.len() - 1;
            return Err(Error::UnknownType {
                template: templates[last].name.clone(),
                ty: body.ty,
                hint: format!(" (types are written `{NODE_PREFIX}<Model>`)"),
            });
        }
    }
    Ok(Recipe {
        description: raw.description,
        imports: raw.imports,
        templates,
    })
}

impl Recipe {
    /// Checks the recipe against the installed models and orders the
    /// templates so that every template comes after those it requires.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownImport`], [`Error::UnknownType`],
    /// [`Error::UnknownProperty`], [`Error::BadRequirement`].
    pub fn plan(&self, schema: &Schema) -> Result<Vec<NodeTemplate>> {
        for import in &self.imports {
            let name = import
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".yaml"))
                .unwrap_or(import);
            if schema
                .model_by_lowercase(&name.to_ascii_lowercase())
                .is_none()
            {
                return Err(Error::UnknownImport {
                    import: import.clone(),
                });
            }
        }
        for template in &self.templates {
            self.check_template(schema, template)?;
        }
        order(&self.templates)
    }

    fn check_template(&self, schema: &Schema, t: &NodeTemplate) -> Result<()> {
        let model = schema
            .model(&t.model)
            .filter(|m| !m.is_abstract())
            .ok_or_else(|| Error::UnknownType {
                template: t.name.clone(),
                ty: format!("{NODE_PREFIX}{}", t.model),
                hint: match schema.model_by_lowercase(&t.model.to_ascii_lowercase()) {
                    Some(m) => format!(" (did you mean `{NODE_PREFIX}{}`?)", m.name),
                    None => " (no installed model has that name)".into(),
                },
            })?;
        let fields = schema.all_fields(&model.name);
        for property in t.properties.keys() {
            let field = fields
                .iter()
                .find(|f| &f.name == property || &f.column_name() == property);
            let hint = match field {
                None => String::new(),
                Some(f) if f.link_target().is_some() => {
                    format!(" (`{}` is a link: give it as a requirement)", f.name)
                }
                Some(f) if !f.is_user_writable() => " (it is maintained by syncplane)".into(),
                Some(_) => continue,
            };
            return Err(Error::UnknownProperty {
                template: t.name.clone(),
                model: model.name.clone(),
                property: property.clone(),
                hint,
            });
        }
        for (field, _) in t.all_requirements() {
            if !fields
                .iter()
                .any(|f| &f.name == field && f.link_target().is_some())
            {
                return Err(Error::BadRequirement {
                    template: t.name.clone(),
                    requirement: field.clone(),
                    message: format!("{} has no link field `{field}`", model.name),
                });
            }
        }
        for field in t.many.keys() {
            if fields.iter().any(|f| &f.name == field && !f.is_many()) {
                return Err(Error::BadRequirement {
                    template: t.name.clone(),
                    requirement: field.clone(),
                    message: format!(
                        "`{field}` of {} links to one object: name it once",
                        model.name
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Orders `templates` so every template comes after those it requires:
/// a depth-first order over the recipe's own templates, iterative and
/// indexed by name, so a long chain of requirements costs linear time and
/// no stack.
fn order(templates: &[NodeTemplate]) -> Result<Vec<NodeTemplate>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let index: HashMap<&str, usize> = templates
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    // Each template's requirements as template indexes, in field order.
    let mut targets = Vec::with_capacity(templates.len());
    for t in templates {
        let mut required = Vec::with_capacity(t.requirements.len());
        for (field, node) in t.all_requirements() {
            let target =
                index
                    .get(node.as_str())
                    .copied()
                    .ok_or_else(|| Error::BadRequirement {
                        template: t.name.clone(),
                        requirement: field.clone(),
                        message: format!("no node template named `{node}` in this recipe"),
                    })?;
            required.push(target);
        }
        targets.push(required);
    }
    let mut marks = vec![Mark::New; templates.len()];
    let mut ordered = Vec::with_capacity(templates.len());
    for root in 0..templates.len() {
        if marks[root] != Mark::New {
            continue;
        }
        marks[root] = Mark::Visiting;
        // (template, how many of its requirements were looked at)
        let mut stack = vec![(root, 0usize)];
        while let Some((at, next)) = stack.last_mut() {
            let at = *at;
            if let Some(&target) = targets[at].get(*next) {
                *next += 1;
                match marks[target] {
                    Mark::Done => {}
                    Mark::Visiting => {
                        return Err(Error::BadRequirement {
                            template: templates[target].name.clone(),
                            requirement: String::new(),
                            message: "templates require each other in a cycle".into(),
                        });
                    }
                    Mark::New => {
                        marks[target] = Mark::Visiting;
                        stack.push((target, 0));
                    }
                }
            } else {
                marks[at] = Mark::Done;
                ordered.push(templates[at].clone());
                stack.pop();
            }
        }
    }
    Ok(ordered)
}

/// The fields that identify an existing object for a template: those marked
/// `tosca_key`, else `name` when the model has one.
pub fn key_fields(schema: &Schema, model: &str) -> Vec<String> {
    let fields = schema.all_fields(model);
    let keys: Vec<String> = fields
        .iter()
        .filter(|f| f.flag("tosca_key"))
        .map(|f| f.column_name())
        .collect();
    if !keys.is_empty() {
        return keys;
    }
    fields
        .iter()
        .filter(|f| f.name == "name")
        .map(|f| f.name.clone())
        .collect()
}
