//! TOSCA errors.

/// What is wrong with a recipe. Every variant is the recipe author's to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not valid YAML, or not shaped like a TOSCA recipe.
    #[error("recipe is not valid TOSCA YAML{}: {message}", location.as_ref().map(|l| format!(" at line {}, column {}", l.0, l.1)).unwrap_or_default())]
    Syntax {
        /// Line and column, when known.
        location: Option<(usize, usize)>,
        /// The parser's explanation.
        message: String,
    },
    /// The recipe goes past one of the [`crate::Limits`]; it was not
    /// parsed any further.
    #[error("recipe refused: {limit}{}", location.map(|l| format!(" at line {}, column {}", l.0, l.1)).unwrap_or_default())]
    Limit {
        /// Which limit, and its value.
        limit: crate::LimitExceeded,
        /// Line and column (1-based) where the limit was passed, when known.
        location: Option<(usize, usize)>,
    },
    /// An import names a type that does not exist.
    #[error(
        "import `{import}` does not name an installed model (expected custom_types/<model>.yaml)"
    )]
    UnknownImport {
        /// The import as written.
        import: String,
    },
    /// A node template has a type that is not an installed concrete model.
    #[error("node template `{template}`: unknown type `{ty}`{hint}")]
    UnknownType {
        /// The template.
        template: String,
        /// The type as written.
        ty: String,
        /// A suggestion.
        hint: String,
    },
    /// A property is not a writable field of the model.
    #[error("node template `{template}`: {model} has no property `{property}`{hint}")]
    UnknownProperty {
        /// The template.
        template: String,
        /// The model.
        model: String,
        /// The property as written.
        property: String,
        /// Why, or what exists.
        hint: String,
    },
    /// A requirement is malformed or points nowhere.
    #[error("node template `{template}`: requirement `{requirement}`: {message}")]
    BadRequirement {
        /// The template.
        template: String,
        /// The requirement (link field) name.
        requirement: String,
        /// What is wrong.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
