//! What the IR leaves out of a source file but its author wants back from
//! `fmt`: comments, the order of declarations and options, blank lines.

use std::collections::HashMap;

/// A place in a file that comments attach to. Indexes count the models,
/// policies, enums, fields and enum values in source order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Anchor {
    /// `option name = ...;` at the top level.
    FileOption(String),
    /// The n-th policy.
    Policy(usize),
    /// The n-th top-level enum.
    FileEnum(usize),
    /// The n-th message.
    Model(usize),
    /// The end of the file.
    FileEnd,
    /// A message's opening `{`.
    ModelOpen(usize),
    /// A message option.
    ModelOption(usize, String),
    /// The n-th enum inside a message.
    ModelEnum(usize, usize),
    /// The n-th field of a message.
    Field(usize, usize),
    /// A message's closing `}`.
    ModelClose(usize),
    /// An enum's opening `{` (enum in a message or, with `None`, at the top level).
    EnumOpen(Option<usize>, usize),
    /// The n-th value of an enum.
    EnumValue(Option<usize>, usize, usize),
    /// An enum's closing `}`.
    EnumClose(Option<usize>, usize),
}

/// The comments around one anchor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Trivia {
    /// Comments on their own lines before the item, as written; an empty
    /// string stands for a blank line between them (or after the last).
    pub leading: Vec<String>,
    /// A comment after the item on its last line.
    pub trailing: Option<String>,
    /// Whether a blank line separated the item from what came before.
    pub blank_before: bool,
}

/// The layout of one parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Trivia by anchor.
    pub trivia: HashMap<Anchor, Trivia>,
    /// Top-level declarations in source order (file options, policies,
    /// enums, messages).
    pub top: Vec<Anchor>,
    /// Each message's body in source order (options, enums, fields).
    pub bodies: HashMap<usize, Vec<Anchor>>,
    /// The order options were written in, by the anchor of their owner:
    /// `FileEnd` for file options, `Model(i)` for message options,
    /// `Field(i, j)` for field options.
    pub option_order: HashMap<Anchor, Vec<String>>,
    /// The scalar type of a field as written (`uint64`, `double`), by its
    /// `Field` anchor: the IR keeps only the kind of scalar.
    pub type_names: HashMap<Anchor, String>,
}

impl Layout {
    /// The trivia of an anchor (empty if it has none).
    pub fn trivia(&self, anchor: &Anchor) -> Option<&Trivia> {
        self.trivia.get(anchor)
    }
}
