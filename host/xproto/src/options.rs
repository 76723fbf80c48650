//! The option names syncplane knows. Others are kept in the IR and reported
//! as warnings, so a typo (`max_lenght`) does not pass silently.

/// Message options, also accepted at the top of a file (where the original
/// let them apply to every message): the reference's list, plus `kind`,
/// `description` and the original's internal ones the core uses.
pub(crate) const MODEL_OPTIONS: &[&str] = &[
    "abstract",
    "app_label",
    "custom_header",
    "custom_python",
    "description",
    "gui_hidden",
    "kind",
    "legacy",
    "name",
    "owner_class_name",
    "plural",
    "policy_implemented",
    "singular",
    "skip_django",
    "skip_init",
    "sync_implemented",
    "tosca_description",
    "tosca_key",
    "validators",
    "verbose_name",
];

/// Field options of the reference.
pub(crate) const FIELD_OPTIONS: &[&str] = &[
    "auto_now_add",
    "blank",
    "bookkeeping_state",
    "choices",
    "content_type",
    "db_index",
    "default",
    "feedback_state",
    "gui_hidden",
    "help_text",
    "max_length",
    "max_value",
    "min_value",
    "null",
    "text",
    "tosca_key",
    "tosca_key_one_of",
    "unique",
    "unique_with",
    "validators",
    "verbose_name",
];
