//! A validated set of models from several files, with inheritance resolved.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::Warning;
use crate::error::{ParseError, ValidationErrors};
use crate::ir::{Field, FieldType, File, Model, Policy};

mod index;

use index::Index;

/// Bases that name the original project's Python mixins; they carry no fields.
const MIXIN_BASES: &[&str] = &["AttributeMixin", "PlModelMixIn", "AbstractBaseUser"];

/// Reverse link ids the original generator accepts.
const REVERSE_IDS: std::ops::RangeInclusive<i64> = 1000..=1899;

/// A relation seen from its target: `Site.users` for `User.site->Site:users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseLink {
    /// The reverse relation's name on the target (`users`).
    pub name: String,
    /// The model holding the link (`User`).
    pub peer: String,
    /// The link field on the peer (`site`).
    pub field: String,
}

/// The models known to a host, checked to fit together.
///
/// Link targets and bases always resolve inside the schema, so lookups by
/// name of a model reached through another model never fail.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    models: BTreeMap<String, Model>,
    policies: BTreeMap<String, Policy>,
    warnings: Vec<Warning>,
    /// Inheritance and reverse relations of `models`, rebuilt when they change.
    index: Index,
}

impl Schema {
    /// An empty schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// A schema of `files` alone, where bases and link targets that no file
    /// defines resolve to syncplane's built-in core models
    /// ([`CORE_XPROTO`](crate::CORE_XPROTO)); so a service file can be
    /// checked by itself.
    ///
    /// # Errors
    ///
    /// As [`Schema::with_files`].
    pub fn resolve(files: &[File]) -> Result<Schema, ValidationErrors> {
        let defined: BTreeSet<&str> = files
            .iter()
            .flat_map(|f| f.models.iter().map(|m| m.name.as_str()))
            .collect();
        static BUILTIN: std::sync::OnceLock<Result<File, ParseError>> = std::sync::OnceLock::new();
        let core = BUILTIN
            .get_or_init(|| crate::parse(crate::CORE_FILE, crate::CORE_XPROTO))
            .as_ref()
            .map_err(|e| ValidationErrors(vec![e.clone()]))?;
        // Only what is kept is copied: a service checked with its own core
        // file keeps few built-in models.
        // The built-in policies read the core models (`User`, `Privilege`,
        // `Site`, `Slice`, ...): files that bring their own (a core of
        // their own, a test's models) do not get them, as they would be
        // checked against other models.
        let own_core = core
            .models
            .iter()
            .any(|m| defined.contains(m.name.as_str()));
        let mut builtin = File {
            name: core.name.clone(),
            options: core.options.clone(),
            policies: Vec::new(),
            models: core
                .models
                .iter()
                .filter(|m| !defined.contains(m.name.as_str()))
                .cloned()
                .map(|mut m| {
                    if own_core {
                        m.policy = None;
                    }
                    m
                })
                .collect(),
            enums: core.enums.clone(),
        };
        // Built-in policies come along only for the built-in models kept
        // (and what they call), and a policy the files define wins.
        let own_policies: BTreeSet<&str> = files
            .iter()
            .flat_map(|f| f.policies.iter().map(|p| p.name.as_str()))
            .collect();
        let mut used: BTreeSet<String> = builtin
            .models
            .iter()
            .flat_map(|m| {
                m.policy
                    .iter()
                    .cloned()
                    .chain(m.validators().into_iter().map(|v| v.policy))
            })
            .collect();
        let mut pending: Vec<String> = used.iter().cloned().collect();
        while let Some(name) = pending.pop() {
            if let Some(policy) = core.policies.iter().find(|p| p.name == name) {
                for called in policy.expr.calls() {
                    if used.insert(called.to_owned()) {
                        pending.push(called.to_owned());
                    }
                }
            }
        }
        builtin.policies = core
            .policies
            .iter()
            .filter(|p| used.contains(&p.name) && !own_policies.contains(p.name.as_str()))
            .cloned()
            .collect();
        let all: Vec<&File> = std::iter::once(&builtin).chain(files).collect();
        Schema::new().add(&all)
    }

    /// Returns a new schema with the models of `files` added.
    ///
    /// # Errors
    ///
    /// Every problem at once: a model defined twice, a duplicate field name or
    /// number within a model, an unknown base or link target, an inheritance
    /// cycle, a field option that does not fit the field's type (`default`,
    /// `max_length`, `min_value`, `max_value`), a policy defined twice, and
    /// policies that do not fit the models: an unknown guarding policy or
    /// validator, `obj`/`ctx.user`/`Model.` paths through unknown fields,
    /// `exists`/`forall` over unknown models, calls of undefined policies.
    /// Problems that do not stop the files being used are kept as
    /// [`Schema::warnings`].
    pub fn with_files(&self, files: &[File]) -> Result<Schema, ValidationErrors> {
        let files: Vec<&File> = files.iter().collect();
        self.add(&files)
    }

    /// [`Schema::with_files`] over borrowed files.
    fn add(&self, files: &[&File]) -> Result<Schema, ValidationErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut next = self.clone();
        let mut batch_policies = BTreeSet::new();
        for file in files {
            for policy in &file.policies {
                // As models: re-adding from the same file replaces.
                let clash = !batch_policies.insert(policy.name.as_str())
                    || self
                        .policies
                        .get(&policy.name)
                        .is_some_and(|p| p.location.file != policy.location.file);
                if clash && let Some(existing) = next.policies.get(&policy.name) {
                    errors.push(ParseError::new(
                        policy.location.clone(),
                        format!(
                            "policy `{}` is already defined at {}",
                            policy.name, existing.location
                        ),
                    ));
                    continue;
                }
                next.policies.insert(policy.name.clone(), policy.clone());
            }
        }
        let mut batch_models = BTreeSet::new();
        for file in files {
            for model in &file.models {
                if !batch_models.insert(model.name.as_str())
                    && let Some(existing) = next.models.get(&model.name)
                {
                    errors.push(ParseError::new(
                        model.location.clone(),
                        format!(
                            "model `{}` is already defined at {}",
                            model.name, existing.location
                        ),
                    ));
                    continue;
                }
                if let Some(existing) = next.models.get(&model.name) {
                    // Re-adding a model from the same place (reinstalling a
                    // service) replaces it; a second definition elsewhere is an error.
                    if existing.location.file != model.location.file
                        || existing.app_label != model.app_label
                    {
                        errors.push(ParseError::new(
                            model.location.clone(),
                            format!(
                                "model `{}` is already defined at {}",
                                model.name, existing.location
                            ),
                        ));
                        continue;
                    }
                }
                next.models.insert(model.name.clone(), model.clone());
            }
        }
        next.index = Index::build(&next.models);
        for file in files {
            for model in &file.models {
                next.check_model(model, &mut errors);
                crate::field_check::check_field_options(model, &mut errors, &mut warnings);
            }
        }
        crate::policy::check::check_policies(&next, files, &mut errors, &mut warnings);
        if errors.is_empty() {
            next.warnings = warnings;
            Ok(next)
        } else {
            Err(ValidationErrors(errors))
        }
    }

    fn check_model(&self, model: &Model, errors: &mut Vec<ParseError>) {
        for base in &model.bases {
            if !self.models.contains_key(base) && !MIXIN_BASES.contains(&base.as_str()) {
                errors.push(ParseError::new(
                    model.location.clone(),
                    format!("model `{}` extends unknown model `{base}`", model.name),
                ));
            }
        }
        let mut names = BTreeSet::new();
        let mut numbers = BTreeSet::new();
        for field in &model.fields {
            if !names.insert(field.name.as_str()) {
                errors.push(ParseError::new(
                    field.location.clone(),
                    format!(
                        "field `{}` is defined twice in `{}`",
                        field.name, model.name
                    ),
                ));
            }
            if !numbers.insert(field.number) {
                errors.push(ParseError::new(
                    field.location.clone(),
                    format!(
                        "field number {} is used twice in `{}`",
                        field.number, model.name
                    ),
                ));
            }
            if let Some(target) = field.link_target()
                && !self.models.contains_key(target)
            {
                errors.push(ParseError::new(
                    field.location.clone(),
                    format!(
                        "link `{}` of `{}` points to unknown model `{target}`",
                        field.name, model.name
                    ),
                ));
            }
            if let Some(reverse_id) = field.reverse_number
                && !REVERSE_IDS.contains(&reverse_id)
            {
                errors.push(ParseError::new(
                    field.location.clone(),
                    format!(
                        "reverse id {reverse_id} of link `{}` in `{}` is outside {}..={} (as in the original generator)",
                        field.name,
                        model.name,
                        REVERSE_IDS.start(),
                        REVERSE_IDS.end()
                    ),
                ));
            }
        }
        self.check_reverse_names(model, errors);
        self.check_shadowing(model, errors);
        if self.index.ancestors(&model.name).is_none() {
            errors.push(ParseError::new(
                model.location.clone(),
                format!("model `{}` inherits from itself", model.name),
            ));
        }
    }

    /// The bases and link targets of `files` that neither this schema nor
    /// `files` define, as located errors: what a package misses, reported
    /// before anything else about it (a service written for another core
    /// names the model it lacks).
    pub fn missing_models(&self, files: &[File]) -> Vec<ParseError> {
        let defined = |name: &str| {
            self.models.contains_key(name)
                || MIXIN_BASES.contains(&name)
                || files
                    .iter()
                    .any(|f| f.models.iter().any(|m| m.name == name))
        };
        let mut errors = Vec::new();
        for model in files.iter().flat_map(|f| &f.models) {
            for base in model.bases.iter().filter(|b| !defined(b)) {
                errors.push(ParseError::new(
                    model.location.clone(),
                    format!("model `{}` extends unknown model `{base}`", model.name),
                ));
            }
            for field in &model.fields {
                if let Some(target) = field.link_target().filter(|t| !defined(t)) {
                    errors.push(ParseError::new(
                        field.location.clone(),
                        format!(
                            "link `{}` of `{}` points to unknown model `{target}`",
                            field.name, model.name
                        ),
                    ));
                }
            }
        }
        errors
    }

    /// A field must not re-declare one inherited from a concrete base: as
    /// in Django, which refuses such a clash, the base's column (and, for a
    /// link, its edge) would be lost. Fields of abstract bases (`XOSBase`)
    /// may be overridden, as Django allows.
    fn check_shadowing(&self, model: &Model, errors: &mut Vec<ParseError>) {
        let Some(ancestors) = self.index.ancestors(&model.name) else {
            return;
        };
        for field in &model.fields {
            let inherited = ancestors
                .iter()
                .filter_map(|a| self.models.get(a))
                .filter(|base| !base.is_abstract())
                .find_map(|base| {
                    base.fields
                        .iter()
                        .find(|f| f.name == field.name)
                        .map(|f| (base, f))
                });
            if let Some((base, original)) = inherited {
                errors.push(ParseError::new(
                    field.location.clone(),
                    format!(
                        "field `{}` of `{}` re-declares the field `{}.{}` it inherits (defined at {}); rename it or drop it",
                        field.name, model.name, base.name, original.name, original.location
                    ),
                ));
            }
        }
    }

    /// A reverse name must not clash with another reverse name or a field
    /// of the target (own or inherited).
    fn check_reverse_names(&self, model: &Model, errors: &mut Vec<ParseError>) {
        for field in &model.fields {
            let FieldType::Link {
                target,
                reverse: Some(reverse),
                ..
            } = &field.ty
            else {
                continue;
            };
            if reverse == "+" || !self.models.contains_key(target) {
                continue;
            }
            if self.field(target, reverse).is_some() {
                errors.push(ParseError::new(
                    field.location.clone(),
                    format!("reverse name `{reverse}` of link `{}.{}` clashes with field `{target}.{reverse}`", model.name, field.name),
                ));
            }
            let mut clashes = self
                .index
                .reverse_links_iter(target)
                .filter(|r| &r.name == reverse && !(r.peer == model.name && r.field == field.name));
            if let Some(other) = clashes.next() {
                errors.push(ParseError::new(
                    field.location.clone(),
                    format!(
                        "reverse name `{reverse}` of link `{}.{}` is also used by `{}.{}` on `{target}`",
                        model.name, field.name, other.peer, other.field
                    ),
                ));
            }
        }
    }

    /// The reverse relations on `target`: links of any model that point to
    /// `target` or one of its ancestors and name a reverse (`+` means none),
    /// models in name order, fields in declaration order.
    pub fn reverse_links(&self, target: &str) -> Vec<ReverseLink> {
        self.index.reverse_links_iter(target).cloned().collect()
    }

    /// Warnings about the files last added with [`Schema::with_files`]:
    /// checks the corpus of real services trips, kept as warnings so those
    /// files still load (a quoted number as an integer `default`,
    /// `max_length` on a link), and policies with `{{ python }}` escapes.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// A policy by name.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    /// All policies, sorted by name.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    /// A model by name.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// A model by its name in lower case, as used in URLs and TOSCA imports.
    pub fn model_by_lowercase(&self, lower: &str) -> Option<&Model> {
        self.models
            .values()
            .find(|m| m.name.to_ascii_lowercase() == lower)
    }

    /// All models, sorted by name.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.models.values()
    }

    /// The ancestors of a model (bases, their bases, ...), nearest first.
    pub fn ancestors(&self, name: &str) -> Vec<&str> {
        self.index
            .ancestors(name)
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect()
    }

    /// Whether `name` is `ancestor` or inherits from it.
    pub fn is_a(&self, name: &str, ancestor: &str) -> bool {
        name == ancestor
            || self
                .index
                .ancestors(name)
                .is_some_and(|a| a.iter().any(|a| a == ancestor))
    }

    /// Every field of a model, inherited ones first (the furthest ancestor's
    /// first); a field redefined lower down replaces the inherited one.
    pub fn all_fields(&self, name: &str) -> Vec<&Field> {
        self.all_fields_with_origin(name)
            .into_iter()
            .map(|(_, field)| field)
            .collect()
    }

    /// [`Schema::all_fields`], each with the name of the model declaring it.
    pub(crate) fn all_fields_with_origin(&self, name: &str) -> Vec<(&str, &Field)> {
        let mut chain: Vec<&str> = self.ancestors(name);
        chain.reverse();
        chain.push(name);
        let mut fields: Vec<(&str, &Field)> = Vec::new();
        for model in chain.iter().filter_map(|m| self.models.get(*m)) {
            for field in &model.fields {
                let entry = (model.name.as_str(), field);
                match fields.iter_mut().find(|(_, f)| f.name == field.name) {
                    Some(slot) => *slot = entry,
                    None => fields.push(entry),
                }
            }
        }
        fields
    }

    /// A field of a model, own or inherited.
    pub fn field(&self, model: &str, field: &str) -> Option<&Field> {
        // The nearest definition wins, as in `all_fields`.
        std::iter::once(model)
            .chain(
                self.index
                    .ancestors(model)
                    .unwrap_or_default()
                    .iter()
                    .map(String::as_str),
            )
            .filter_map(|m| self.models.get(m))
            .find_map(|m| m.fields.iter().find(|f| f.name == field))
    }

    /// Models that are `name` or inherit from it, concrete ones only.
    pub fn concrete_descendants(&self, name: &str) -> Vec<&Model> {
        self.models
            .values()
            .filter(|m| !m.is_abstract() && self.is_a(&m.name, name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn schema(srcs: &[(&str, &str)]) -> Result<Schema, ValidationErrors> {
        let files: Vec<File> = srcs
            .iter()
            .map(|(n, s)| parse(n, s).expect("parses"))
            .collect();
        Schema::new().with_files(&files)
    }

    #[test]
    fn inherited_fields_come_first() {
        let s = schema(&[(
            "a.xproto",
            "message Base { option abstract = True; required string a = 1; }\n\
             message Mid (Base) { required string b = 1; }\n\
             message Leaf (Mid, AttributeMixin) { required string c = 1; }",
        )])
        .expect("valid");
        let names: Vec<_> = s
            .all_fields("Leaf")
            .iter()
            .map(|f| f.name.clone())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(s.is_a("Leaf", "Base"));
        assert!(!s.is_a("Base", "Leaf"));
        let concrete: Vec<_> = s
            .concrete_descendants("Base")
            .iter()
            .map(|m| m.name.clone())
            .collect();
        assert_eq!(concrete, ["Leaf", "Mid"]);
    }

    #[test]
    fn all_semantic_errors_are_reported_together() {
        let err = schema(&[(
            "bad.xproto",
            "message A (Nope) {\n  required string x = 1;\n  required string x = 1;\n  required manytoone l->Missing:as = 2:1001;\n}",
        )])
        .expect_err("invalid");
        let text = err.to_string();
        assert!(
            text.contains("bad.xproto:1:1: model `A` extends unknown model `Nope`"),
            "{text}"
        );
        assert!(
            text.contains("bad.xproto:3:3: field `x` is defined twice in `A`"),
            "{text}"
        );
        assert!(text.contains("field number 1 is used twice"), "{text}");
        assert!(
            text.contains("bad.xproto:4:3: link `l` of `A` points to unknown model `Missing`"),
            "{text}"
        );
    }

    #[test]
    fn a_service_file_alone_resolves_against_the_builtin_core() {
        let file = parse(
            "svc.xproto",
            "message Hello (Service) { required manytoone home->Site:hellos = 1:1001; }",
        )
        .expect("parses");
        let schema = Schema::resolve(&[file]).expect("resolves");
        assert!(schema.is_a("Hello", "XOSBase"));
        let mine = parse(
            "mine.xproto",
            "message Service { required string name = 1; }",
        )
        .expect("parses");
        let schema = Schema::resolve(&[mine]).expect("own Service wins");
        assert_eq!(
            schema.model("Service").expect("defined").location.file,
            "mine.xproto"
        );
    }

    #[test]
    fn a_field_re_declaring_one_of_a_concrete_base_is_a_located_error() {
        let err = schema(&[(
            "s.xproto",
            "message S {}\n\
             message Base { required manytoone owner->S:owned = 1:1001; }\n\
             message Leaf (Base) {\n  required manytoone owner->S:leaves = 1:1002;\n}",
        )])
        .expect_err("shadowing");
        let text = err.to_string();
        assert!(
            text.contains("s.xproto:4:3: field `owner` of `Leaf` re-declares the field `Base.owner` it inherits (defined at s.xproto:2:"),
            "{text}"
        );
        // Abstract bases may be overridden, as in Django.
        schema(&[(
            "a.xproto",
            "message Base { option abstract = True; required string a = 1; }\n\
             message Leaf (Base) { optional string a = 1; }",
        )])
        .expect("an abstract base's field may be overridden");
    }

    #[test]
    fn two_messages_of_one_name_in_one_file_are_an_error() {
        let err = schema(&[(
            "d.xproto",
            "message Twice { required string a = 1; }\nmessage Twice { required string b = 1; }",
        )])
        .expect_err("duplicate");
        assert!(
            err.to_string()
                .contains("d.xproto:2:1: model `Twice` is already defined at d.xproto:1:1"),
            "{err}"
        );
    }

    #[test]
    fn reverse_ids_outside_the_original_range_are_errors() {
        let err = schema(&[(
            "r.xproto",
            "message S {}\nmessage A { required manytoone s->S:as = 1:7; }",
        )])
        .expect_err("bad reverse id");
        assert!(
            err.to_string()
                .contains("r.xproto:2:13: reverse id 7 of link `s` in `A` is outside 1000..=1899"),
            "{err}"
        );
    }

    #[test]
    fn reverse_names_must_not_clash() {
        let err = schema(&[(
            "r.xproto",
            "message S { required string as = 1; }\n\
             message A { required manytoone s->S:as = 1:1001; }\n\
             message B { required manytoone s->S:bs = 1:1002; required manytoone t->S:bs = 2:1003; }",
        )])
        .expect_err("clashes");
        let text = err.to_string();
        assert!(
            text.contains("reverse name `as` of link `A.s` clashes with field `S.as`"),
            "{text}"
        );
        assert!(
            text.contains("reverse name `bs` of link `B.s` is also used by `B.t` on `S`"),
            "{text}"
        );
        let ok = schema(&[(
            "r.xproto",
            "message S {}\nmessage A { required manytoone s->S:as = 1:1001; }",
        )])
        .expect("valid");
        assert_eq!(
            ok.reverse_links("S"),
            [ReverseLink {
                name: "as".into(),
                peer: "A".into(),
                field: "s".into()
            }]
        );
    }

    #[test]
    fn reverse_links_reach_through_ancestors_in_model_then_field_order() {
        let s = schema(&[(
            "r.xproto",
            "message Base { option abstract = True; required string a = 1; }\n\
             message Leaf (Base) { required string a = 1 [max_length = 3]; }\n\
             message B { required manytoone x->Leaf:bx = 1:1001; required manytoone y->Base:by = 2:1002; }\n\
             message A { required manytoone z->Base:az = 1:1003; required manytoone n->Leaf:+ = 2:1004; }",
        )])
        .expect("valid");
        let names = |target: &str| -> Vec<String> {
            s.reverse_links(target)
                .into_iter()
                .map(|r| format!("{}.{}:{}", r.peer, r.field, r.name))
                .collect()
        };
        assert_eq!(names("Leaf"), ["A.z:az", "B.x:bx", "B.y:by"]);
        assert_eq!(names("Base"), ["A.z:az", "B.y:by"]);
        // The nearest definition of a field wins.
        let a = s.field("Leaf", "a").expect("inherited name");
        assert_eq!(a.location.line, 2);
        assert!(s.field("Leaf", "nope").is_none());
    }

    #[test]
    fn inheritance_cycles_are_errors() {
        let err = schema(&[("c.xproto", "message A (B) {}\nmessage B (A) {}")]).expect_err("cycle");
        assert!(
            err.to_string().contains("model `A` inherits from itself"),
            "{err}"
        );
    }

    #[test]
    fn a_model_defined_in_two_files_is_an_error() {
        let err = schema(&[("a.xproto", "message A {}"), ("b.xproto", "message A {}")])
            .expect_err("duplicate");
        assert!(
            err.to_string()
                .contains("b.xproto:1:1: model `A` is already defined at a.xproto:1:1"),
            "{err}"
        );
    }
}
