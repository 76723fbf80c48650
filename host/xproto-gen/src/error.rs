//! Errors of the generators.

/// What can go wrong while generating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target name is not one of [`Target::NAMES`](crate::Target::NAMES).
    #[error("unknown generator target `{0}` (expected one of {names})", names = crate::Target::NAMES.join(", "))]
    UnknownTarget(String),
    /// A template failed to render.
    #[error("template `{template}` failed to render")]
    Render {
        /// The template's name.
        template: &'static str,
        /// What minijinja reported.
        #[source]
        source: minijinja::Error,
    },
    /// JSON output could not be written.
    #[error("cannot write JSON")]
    Json(#[from] serde_json::Error),
    /// The graph could not be laid out as SVG.
    #[error("cannot lay out the model graph: {0}")]
    Layout(String),
}

/// The generators' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
