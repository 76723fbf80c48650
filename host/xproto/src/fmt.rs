//! Canonical formatting of xproto files (`syncplane xproto fmt`).
//!
//! The output parses to the same IR as the input, and formatting it again
//! changes nothing. What it normalises: four-space indentation, one
//! declaration per line, single spaces around `=` and after `,`, double
//! quotes for strings, `True`/`False`, `message Name::policy (A, B) {`,
//! empty option lists `[]` dropped, stray `;` dropped, at most one blank
//! line in a row and one between top-level blocks. What it keeps: the
//! order of declarations and of options, the spelling of scalar types,
//! comments (`//` and `/* */`) before and after declarations, blank lines
//! between fields. Comments inside a declaration (between a field's
//! options, say) move to the lines before it; comments inside a policy
//! stay in its text.
//!
//! ```
//! let src = "option app_label='x';\nmessage A(Service){ // the A\nrequired string a=1[max_length=10];}\n";
//! let out = syncplane_xproto::format_source("a.xproto", src)?;
//! assert_eq!(out, "option app_label = \"x\";\n\nmessage A (Service) { // the A\n    required string a = 1 [max_length = 10];\n}\n");
//! # Ok::<(), syncplane_xproto::ParseError>(())
//! ```

use std::fmt::Write as _;

use crate::error::ParseError;
use crate::ir::ProtoScalar;
use crate::ir::{
    Enum, Field, FieldType, File, LinkKind, Modifier, OptionValue, Options, ScalarType,
};
use crate::layout::{Anchor, Layout, Trivia};
use crate::parser::{Parsed, parse_full};

const INDENT: &str = "    ";

/// Parses `source` and formats it canonically, keeping its comments.
///
/// # Errors
///
/// The syntax error, if `source` does not parse.
pub fn format_source(file_name: &str, source: &str) -> Result<String, ParseError> {
    parse_full(file_name, source).map(|parsed| format(&parsed))
}

/// Formats a parsed file canonically, with its comments and the order its
/// declarations and options were written in.
pub fn format(parsed: &Parsed) -> String {
    Printer::new(&parsed.file, &parsed.layout).file()
}

/// Formats a file built without source text (no comments): options in
/// name order, then policies, enums and messages; integer fields as
/// `int32`, floating point ones as `float`.
pub fn format_file(file: &File) -> String {
    Printer::new(file, &Layout::default()).file()
}

struct Printer<'a> {
    file: &'a File,
    layout: &'a Layout,
    out: String,
}

/// What a top-level anchor is, to decide on blank lines.
fn is_block(anchor: &Anchor) -> bool {
    matches!(anchor, Anchor::Model(_) | Anchor::FileEnum(_))
}

fn same_kind(a: &Anchor, b: &Anchor) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

impl<'a> Printer<'a> {
    fn new(file: &'a File, layout: &'a Layout) -> Self {
        Printer {
            file,
            layout,
            out: String::new(),
        }
    }

    fn trivia(&self, anchor: &Anchor) -> Trivia {
        self.layout.trivia(anchor).cloned().unwrap_or_default()
    }

    /// The items in the order of the source, then any the layout does not
    /// know (a file built or changed in code).
    fn ordered(known: Option<&Vec<Anchor>>, all: Vec<Anchor>) -> Vec<Anchor> {
        let mut order: Vec<Anchor> = known
            .map(|k| k.iter().filter(|a| all.contains(a)).cloned().collect())
            .unwrap_or_default();
        for a in all {
            if !order.contains(&a) {
                order.push(a);
            }
        }
        order
    }

    fn option_names(&self, owner: &Anchor, options: &Options) -> Vec<String> {
        let all = options.keys().cloned().collect::<Vec<_>>();
        let mut names: Vec<String> = self
            .layout
            .option_order
            .get(owner)
            .map(|o| {
                o.iter()
                    .filter(|n| options.contains_key(*n))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for n in all {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }

    fn leading(&mut self, trivia: &Trivia, indent: &str) {
        for c in &trivia.leading {
            if c.is_empty() {
                self.out.push('\n');
            } else {
                let _ = writeln!(self.out, "{indent}{c}");
            }
        }
    }

    fn end_line(&mut self, trivia: &Trivia) {
        if let Some(t) = &trivia.trailing {
            self.out.push(' ');
            self.out.push_str(t);
        }
        self.out.push('\n');
    }

    fn file(mut self) -> String {
        let file = self.file;
        let mut all: Vec<Anchor> = self
            .option_names(&Anchor::FileEnd, &file.options)
            .into_iter()
            .map(Anchor::FileOption)
            .collect();
        all.extend((0..file.policies.len()).map(Anchor::Policy));
        all.extend((0..file.enums.len()).map(Anchor::FileEnum));
        all.extend((0..file.models.len()).map(Anchor::Model));
        let order = Self::ordered(Some(&self.layout.top), all);
        let mut previous: Option<&Anchor> = None;
        for anchor in &order {
            let trivia = self.trivia(anchor);
            if let Some(prev) = previous {
                let blank = trivia.blank_before
                    || is_block(prev)
                    || is_block(anchor)
                    || !same_kind(prev, anchor);
                if blank {
                    self.out.push('\n');
                }
            }
            self.leading(&trivia, "");
            match anchor {
                Anchor::FileOption(name) => {
                    if let Some(value) = file.options.get(name) {
                        let _ = write!(self.out, "option {name} = {};", value_text(value));
                    }
                    self.end_line(&trivia);
                }
                Anchor::Policy(i) => {
                    if let Some(p) = file.policies.get(*i) {
                        let _ = write!(self.out, "policy {} < {} >", p.name, p.text);
                    }
                    self.end_line(&trivia);
                }
                Anchor::FileEnum(i) => {
                    if let Some(e) = file.enums.get(*i) {
                        self.enumeration(None, *i, e, "");
                    }
                    // A comment after the closing brace went to `EnumClose`.
                }
                Anchor::Model(i) => self.model(*i),
                _ => {}
            }
            previous = Some(anchor);
        }
        let end = self.trivia(&Anchor::FileEnd);
        if !end.leading.is_empty() {
            if previous.is_some() {
                self.out.push('\n');
            }
            self.leading(&end, "");
        }
        self.out
    }

    fn model(&mut self, index: usize) {
        let Some(model) = self.file.models.get(index) else {
            return;
        };
        let open = self.trivia(&Anchor::ModelOpen(index));
        // Comments written inside the header go before it.
        self.leading(&open, "");
        let _ = write!(self.out, "message {}", model.name);
        if let Some(policy) = &model.policy {
            let _ = write!(self.out, "::{policy}");
        }
        if !model.bases.is_empty() {
            let _ = write!(self.out, " ({})", model.bases.join(", "));
        }
        self.out.push_str(" {");
        self.end_line(&open);

        let mut all: Vec<Anchor> = self
            .option_names(&Anchor::Model(index), &model.options)
            .into_iter()
            .map(|n| Anchor::ModelOption(index, n))
            .collect();
        all.extend((0..model.enums.len()).map(|n| Anchor::ModelEnum(index, n)));
        all.extend((0..model.fields.len()).map(|n| Anchor::Field(index, n)));
        let order = Self::ordered(self.layout.bodies.get(&index), all);
        for (n, anchor) in order.iter().enumerate() {
            let trivia = self.trivia(anchor);
            if n > 0 && trivia.blank_before {
                self.out.push('\n');
            }
            self.leading(&trivia, INDENT);
            match anchor {
                Anchor::ModelOption(_, name) => {
                    if let Some(value) = model.options.get(name) {
                        let _ = write!(self.out, "{INDENT}option {name} = {};", value_text(value));
                    }
                    self.end_line(&trivia);
                }
                Anchor::ModelEnum(_, n) => {
                    if let Some(e) = model.enums.get(*n) {
                        self.enumeration(Some(index), *n, e, INDENT);
                    }
                }
                Anchor::Field(_, n) => {
                    if let Some(field) = model.fields.get(*n) {
                        let text = self.field(anchor, field);
                        let _ = write!(self.out, "{INDENT}{text}");
                    }
                    self.end_line(&trivia);
                }
                _ => {}
            }
        }
        let close = self.trivia(&Anchor::ModelClose(index));
        self.leading(&close, INDENT);
        self.out.push('}');
        self.end_line(&close);
    }

    fn enumeration(&mut self, model: Option<usize>, index: usize, e: &Enum, indent: &str) {
        let open = self.trivia(&Anchor::EnumOpen(model, index));
        self.leading(&open, indent);
        let _ = write!(self.out, "{indent}enum {} {{", e.name);
        self.end_line(&open);
        for (n, value) in e.values.iter().enumerate() {
            let trivia = self.trivia(&Anchor::EnumValue(model, index, n));
            if n > 0 && trivia.blank_before {
                self.out.push('\n');
            }
            self.leading(&trivia, &format!("{indent}{INDENT}"));
            let _ = write!(
                self.out,
                "{indent}{INDENT}{} = {};",
                value.name, value.number
            );
            self.end_line(&trivia);
        }
        let close = self.trivia(&Anchor::EnumClose(model, index));
        self.leading(&close, &format!("{indent}{INDENT}"));
        let _ = write!(self.out, "{indent}}}");
        self.end_line(&close);
    }

    fn field(&self, anchor: &Anchor, field: &Field) -> String {
        let modifier = match field.modifier {
            _ if field.repeated => "repeated",
            Modifier::Required => "required",
            Modifier::Optional => "optional",
        };
        let mut text = format!("{modifier} ");
        match &field.ty {
            FieldType::Scalar { scalar } => {
                let name = match (&field.enum_type, self.layout.type_names.get(anchor)) {
                    (Some(e), _) => e.clone(),
                    (None, Some(written)) if ScalarType::from_name(written) == Some(*scalar) => {
                        written.clone()
                    }
                    (None, _) => field
                        .proto_type
                        .map_or(scalar_name(*scalar), ProtoScalar::name)
                        .to_owned(),
                };
                let _ = write!(text, "{name} {}", field.name);
            }
            FieldType::Link {
                link,
                target,
                reverse,
                through,
            } => {
                let kind = match link {
                    LinkKind::ManyToOne => "manytoone",
                    LinkKind::OneToOne => "onetoone",
                    LinkKind::ManyToMany => "manytomany",
                };
                let _ = write!(text, "{kind} {}->{target}", field.name);
                if let Some(through) = through {
                    let _ = write!(text, "/{through}");
                }
                if let Some(reverse) = reverse {
                    let _ = write!(text, ":{reverse}");
                }
            }
        }
        let _ = write!(text, " = {}", field.number);
        if let Some(reverse) = field.reverse_number {
            let _ = write!(text, ":{reverse}");
        }
        let names = self.option_names(anchor, &field.options);
        if !names.is_empty() {
            let options: Vec<String> = names
                .iter()
                .filter_map(|n| {
                    field
                        .options
                        .get(n)
                        .map(|v| format!("{n} = {}", value_text(v)))
                })
                .collect();
            let _ = write!(text, " [{}]", options.join(", "));
        }
        text.push(';');
        text
    }
}

fn scalar_name(scalar: ScalarType) -> &'static str {
    match scalar {
        ScalarType::String => "string",
        ScalarType::Bool => "bool",
        ScalarType::Int => "int32",
        ScalarType::Float => "float",
    }
}

/// An option value as the lexer reads it back.
fn value_text(value: &OptionValue) -> String {
    match value {
        OptionValue::Bool(true) => "True".to_owned(),
        OptionValue::Bool(false) => "False".to_owned(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::Float(f) => float_text(*f),
        OptionValue::Str(s) => quote(s),
        OptionValue::Ident(None) => "None".to_owned(),
        OptionValue::Ident(Some(name)) => name.clone(),
    }
}

/// Floats always with a fractional part, as the lexer needs one
/// (`1e-7` would read back as `1` and `e`).
fn float_text(f: f64) -> String {
    let text = format!("{f:?}");
    match text.find(['e', 'E']) {
        Some(e) if !text[..e].contains('.') => format!("{}.0{}", &text[..e], &text[e..]),
        _ => text,
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_order_are_kept() {
        let src = "\
// header

option name = 'svc';
option app_label = \"svc\"; // short

policy p <  obj.x = 1 >
/* about A */
message A::p (Service,Mixin){
  option verbose_name = \"A\";
  // the name
  required string name = 1 [null=False,db_index = True]; // why


  optional uint64 size = 2;
  repeated string tags = 3;
  enum Color { RED = 0; GREEN = 1; }
  optional Color color = 4 [default = RED];
  // last
}
// trailer
";
        let out = format_source("a.xproto", src).expect("parses");
        assert_eq!(
            out,
            "\
// header

option name = \"svc\";
option app_label = \"svc\"; // short

policy p < obj.x = 1 >

/* about A */
message A::p (Service, Mixin) {
    option verbose_name = \"A\";
    // the name
    required string name = 1 [null = False, db_index = True]; // why

    optional uint64 size = 2;
    repeated string tags = 3;
    enum Color {
        RED = 0;
        GREEN = 1;
    }
    optional Color color = 4 [default = RED];
    // last
}

// trailer
"
        );
        assert_eq!(format_source("a.xproto", &out).expect("parses"), out);
    }

    #[test]
    fn strings_and_floats_read_back_the_same() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(float_text(1.0), "1.0");
        assert_eq!(float_text(1e-7), "1.0e-7");
        assert_eq!(float_text(-2.5), "-2.5");
    }

    #[test]
    fn a_file_without_source_uses_canonical_names_and_order() {
        let file = crate::parse(
            "a",
            "message A { optional uint64 b = 1 [null = True, blank = True]; } option name = \"n\";",
        )
        .expect("parses");
        assert_eq!(
            format_file(&file),
            "option name = \"n\";\n\nmessage A {\n    optional uint64 b = 1 [blank = True, null = True];\n}\n"
        );
    }

    #[test]
    fn links_keep_through_models_reverses_and_ids() {
        let src = "message N { required manytomany p->Slice/N_p:available = 18:1005 []; optional manytoone i->Image:+ = 2; }";
        let out = format_source("n", src).expect("parses");
        assert_eq!(
            out,
            "message N {\n    required manytomany p->Slice/N_p:available = 18:1005;\n    optional manytoone i->Image:+ = 2;\n}\n"
        );
    }
}
