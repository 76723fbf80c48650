//! A recursive-descent parser over the logos token stream.

use crate::diagnostic::Warning;
use crate::error::ParseError;
use crate::ir::{
    Enum, EnumValue, Field, FieldType, File, LinkKind, Location, Model, Modifier, OptionValue,
    Options, Policy, ProtoScalar, ScalarType,
};
use crate::layout::{Anchor, Layout, Trivia};
use crate::lexer::{Comment, Token};
use crate::options::{FIELD_OPTIONS, MODEL_OPTIONS};
use crate::policy::parse_policy_expr;

/// Parses one xproto source file.
///
/// # Errors
///
/// Returns the first syntax error, with `file:line:column`.
pub fn parse(file_name: &str, source: &str) -> Result<File, ParseError> {
    parse_full(file_name, source).map(|parsed| parsed.file)
}

/// A parsed file with what the IR leaves out: warnings, and the comments and
/// declaration order that [`format`](crate::format) puts back.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The file's IR.
    pub file: File,
    /// Warnings, in source order: unknown option names (the options are
    /// kept in the IR all the same), options given twice.
    pub warnings: Vec<Warning>,
    pub(crate) layout: Layout,
}

/// Parses one xproto source file, keeping warnings, comments and layout.
///
/// # Errors
///
/// As [`parse`].
pub fn parse_full(file_name: &str, source: &str) -> Result<Parsed, ParseError> {
    let mut parser = Parser::new(file_name, source)?;
    let file = parser.file()?;
    Ok(Parsed {
        file,
        warnings: parser.warnings,
        layout: parser.layout,
    })
}

/// Which option names a statement is checked against.
#[derive(Clone, Copy)]
enum OptionKind {
    File,
    Message,
    Field,
}

struct Parser<'s> {
    file: String,
    source: &'s str,
    tokens: Vec<(Token, std::ops::Range<usize>)>,
    pos: usize,
    line_starts: Vec<usize>,
    comments: Vec<Comment>,
    next_comment: usize,
    /// Comments read since the last anchor, waiting for the next one.
    pending: Trivia,
    layout: Layout,
    warnings: Vec<Warning>,
    /// Fields typed with a name that is no scalar: (model, field, type, where).
    enum_refs: Vec<(usize, usize, String, Location)>,
}

impl<'s> Parser<'s> {
    fn new(file: &str, source: &'s str) -> Result<Self, ParseError> {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut parser = Parser {
            file: file.to_owned(),
            source,
            tokens: Vec::new(),
            pos: 0,
            line_starts,
            comments: Vec::new(),
            next_comment: 0,
            pending: Trivia::default(),
            layout: Layout::default(),
            warnings: Vec::new(),
            enum_refs: Vec::new(),
        };
        match crate::lexer::lex(source) {
            Ok(lexed) => {
                parser.tokens = lexed.tokens;
                parser.comments = lexed.comments;
            }
            Err(span) => {
                let at = parser.location(span.start);
                return Err(ParseError::new(
                    at,
                    format!(
                        "unexpected character(s) `{}`",
                        source.get(span).unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(parser)
    }

    /// Byte offset of the current token (the end of the source past the last).
    fn offset(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.source.len(), |(_, span)| span.start)
    }

    /// End of the token before the current one.
    fn prev_end(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map_or(0, |(_, span)| span.end)
    }

    /// Moves the comments before the current token into `pending`, noting
    /// whether a blank line precedes what comes next.
    fn take_leading(&mut self) {
        let limit = self.offset();
        let mut from = self.prev_end();
        while let Some(c) = self.comments.get(self.next_comment) {
            if c.span.start >= limit {
                break;
            }
            let blank = blank_line(self.source.get(from..c.span.start).unwrap_or_default());
            if self.pending.leading.is_empty() {
                self.pending.blank_before |= blank;
            } else if blank {
                // An empty string stands for a blank line between comments.
                self.pending.leading.push(String::new());
            }
            self.pending.leading.push(c.text.clone());
            from = c.span.end;
            self.next_comment += 1;
        }
        let blank = blank_line(self.source.get(from..limit).unwrap_or_default());
        if self.pending.leading.is_empty() {
            self.pending.blank_before |= blank;
        } else if blank && self.pending.leading.last().is_some_and(|l| !l.is_empty()) {
            self.pending.leading.push(String::new());
        }
    }

    /// Drops comments inside an item that is kept as text (a policy).
    fn skip_comments_before(&mut self, end: usize) {
        while self
            .comments
            .get(self.next_comment)
            .is_some_and(|c| c.span.start < end)
        {
            self.next_comment += 1;
        }
    }

    /// Gives `anchor` the pending comments, the comments inside the item
    /// just read (they go before it) and any comment that follows on the
    /// line of its last token.
    fn attach(&mut self, anchor: Anchor) {
        let mut trivia = std::mem::take(&mut self.pending);
        let end = self.prev_end();
        while let Some(c) = self.comments.get(self.next_comment) {
            if c.span.start >= end {
                break;
            }
            trivia.leading.push(c.text.clone());
            self.next_comment += 1;
        }
        let limit = self.offset();
        while let Some(c) = self.comments.get(self.next_comment) {
            if !c.trailing || c.span.start >= limit {
                break;
            }
            trivia.trailing = Some(match trivia.trailing.take() {
                Some(t) => format!("{t} {}", c.text),
                None => c.text.clone(),
            });
            self.next_comment += 1;
        }
        if trivia != Trivia::default() {
            self.layout.trivia.insert(anchor, trivia);
        }
    }

    /// Inserts an option, warning about unknown names and repeats; `owner`
    /// keys the order the options were written in.
    fn add_option(
        &mut self,
        options: &mut Options,
        owner: Anchor,
        kind: OptionKind,
        (name, value, at): (String, OptionValue, usize),
    ) {
        let (known, what): (&[&str], &str) = match kind {
            OptionKind::File => (MODEL_OPTIONS, "file option"),
            OptionKind::Message => (MODEL_OPTIONS, "message option"),
            OptionKind::Field => (FIELD_OPTIONS, "field option"),
        };
        if !known.contains(&name.as_str()) {
            self.warnings.push(Warning::new(
                self.location(at),
                format!("unknown {what} `{name}` (kept, but syncplane does not use it)"),
            ));
        }
        if options.insert(name.clone(), value).is_some() {
            self.warnings.push(Warning::new(
                self.location(at),
                format!("{what} `{name}` is given twice; the last value counts"),
            ));
        } else {
            self.layout
                .option_order
                .entry(owner)
                .or_default()
                .push(name);
        }
    }

    fn location(&self, offset: usize) -> Location {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self.source[start..offset.min(self.source.len())]
            .chars()
            .count()
            + 1;
        Location {
            file: self.file.clone(),
            line: line as u32,
            column: column as u32,
        }
    }

    fn here(&self) -> Location {
        match self.tokens.get(self.pos) {
            Some((_, span)) => self.location(span.start),
            None => self.location(self.source.len()),
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn bump(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        tok
    }

    fn error<T>(&self, expected: &str) -> Result<T, ParseError> {
        let found = match self.peek() {
            Some(tok) => tok.describe(),
            None => "end of file".to_owned(),
        };
        Err(ParseError::new(
            self.here(),
            format!("expected {expected}, found {found}"),
        ))
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            self.error(what)
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token::Ident(name)) => {
                let name = name.clone();
                self.pos += 1;
                Ok(name)
            }
            _ => self.error(what),
        }
    }

    fn int(&mut self, what: &str) -> Result<i64, ParseError> {
        match self.peek() {
            Some(Token::Int(n)) => {
                let n = *n;
                self.pos += 1;
                Ok(n)
            }
            _ => self.error(what),
        }
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(k)) if k == keyword)
    }

    fn file(&mut self) -> Result<File, ParseError> {
        let mut file = File {
            name: self.file.clone(),
            options: Options::new(),
            policies: Vec::new(),
            models: Vec::new(),
            enums: Vec::new(),
        };
        loop {
            self.take_leading();
            if self.peek().is_none() {
                self.attach(Anchor::FileEnd);
                break;
            }
            let anchor = if self.at_keyword("option") {
                let option = self.option_statement()?;
                let anchor = Anchor::FileOption(option.0.clone());
                self.add_option(&mut file.options, Anchor::FileEnd, OptionKind::File, option);
                anchor
            } else if self.at_keyword("policy") {
                file.policies.push(self.policy()?);
                self.skip_comments_before(self.prev_end());
                Anchor::Policy(file.policies.len() - 1)
            } else if self.at_keyword("message") {
                let index = file.models.len();
                let model = self.message(index)?;
                file.models.push(model);
                Anchor::Model(index)
            } else if self.at_keyword("enum") {
                let index = file.enums.len();
                let declared = self.enum_decl(None, index)?;
                unique_enum(&file.enums, &declared)?;
                file.enums.push(declared);
                Anchor::FileEnum(index)
            } else if self.peek() == Some(&Token::Semi) {
                self.pos += 1;
                continue;
            } else {
                return self.error("`option`, `policy`, `message` or `enum`");
            };
            self.attach(anchor.clone());
            if !self.layout.top.contains(&anchor) {
                self.layout.top.push(anchor);
            }
        }
        let app_label = file.app_label().unwrap_or("core").to_owned();
        for model in &mut file.models {
            model.app_label = app_label.clone();
        }
        self.resolve_enum_types(&mut file)?;
        Ok(file)
    }

    /// Checks that every field typed with a name refers to an enum of its
    /// message or of the file.
    fn resolve_enum_types(&mut self, file: &mut File) -> Result<(), ParseError> {
        for (model, field, name, at) in std::mem::take(&mut self.enum_refs) {
            let declared = |enums: &[Enum]| enums.iter().any(|e| e.name == name);
            let Some(m) = file.models.get_mut(model) else {
                continue;
            };
            if !declared(&m.enums) && !declared(&file.enums) {
                return Err(ParseError::new(
                    at,
                    format!(
                        "unknown field type `{name}` (expected string, bool, int32, uint32, int64, uint64, float, double, manytoone, onetoone, manytomany or an enum of this file)"
                    ),
                ));
            }
            if let Some(f) = m.fields.get_mut(field) {
                f.enum_type = Some(name);
            }
        }
        Ok(())
    }

    /// `option name = value;`: the name, the value and the byte offset of the name (its location is
    /// computed only for a warning: options are many).
    fn option_statement(&mut self) -> Result<(String, OptionValue, usize), ParseError> {
        self.bump(); // `option`
        let at = self.offset();
        let name = self.ident("an option name")?;
        self.expect(Token::Eq, "`=` after the option name")?;
        let value = self.literal()?;
        self.expect(Token::Semi, "`;` after the option")?;
        Ok((name, value, at))
    }

    fn literal(&mut self) -> Result<OptionValue, ParseError> {
        let value = match self.peek() {
            Some(Token::Str(s)) => OptionValue::Str(s.clone()),
            Some(Token::Int(i)) => OptionValue::Int(*i),
            Some(Token::Float(f)) => OptionValue::Float(*f),
            Some(Token::Ident(i)) => match i.as_str() {
                "True" | "true" => OptionValue::Bool(true),
                "False" | "false" => OptionValue::Bool(false),
                "None" => OptionValue::Ident(None),
                other => OptionValue::Ident(Some(other.to_owned())),
            },
            _ => return self.error("a value (string, number, True, False or None)"),
        };
        self.pos += 1;
        Ok(value)
    }

    /// `policy name < expression >`: the extent is found on xproto tokens,
    /// then the text between is read as a [`PolicyExpr`](crate::PolicyExpr).
    fn policy(&mut self) -> Result<Policy, ParseError> {
        let location = self.here();
        self.bump(); // `policy`
        let name = self.ident("a policy name")?;
        let open = self.here();
        self.expect(Token::Lt, "`<` to open the policy expression")?;
        let body_start = self.tokens[self.pos - 1].1.end;
        let mut depth = 0usize;
        loop {
            match self.bump() {
                Some(Token::Lt) => depth += 1,
                Some(Token::Gt) if depth == 0 => break,
                Some(Token::Gt) => depth -= 1,
                Some(_) => {}
                None => {
                    return Err(ParseError::new(
                        open,
                        format!("policy `{name}` is not closed with `>`"),
                    ));
                }
            }
        }
        let end = self.tokens[self.pos - 1].1.start;
        let body = &self.source[body_start..end];
        let expr = parse_policy_expr(body, &self.location(body_start))?;
        Ok(Policy {
            name,
            text: body.trim().to_owned(),
            expr,
            location,
        })
    }

    /// `message Name(::policy)? ((Base, ...))? { ... }`; `index` counts the
    /// messages before it.
    fn message(&mut self, index: usize) -> Result<Model, ParseError> {
        let location = self.here();
        self.bump(); // `message`
        let name = self.ident("a message name")?;
        let policy = if self.peek() == Some(&Token::ColonColon) {
            self.pos += 1;
            Some(self.ident("a policy name after `::`")?)
        } else {
            None
        };
        let mut bases = Vec::new();
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            loop {
                bases.push(self.ident("a base model name")?);
                match self.peek() {
                    Some(Token::Comma) => self.pos += 1,
                    Some(Token::RParen) => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.error("`,` or `)` in the list of bases"),
                }
            }
        }
        self.expect(Token::LBrace, "`{` to open the message body")?;
        // The comments before `message` wait for the caller to attach them;
        // one after `{` belongs to the opening line.
        let outer = std::mem::take(&mut self.pending);
        self.attach(Anchor::ModelOpen(index));
        let mut model = Model {
            name,
            policy,
            bases,
            options: Options::new(),
            fields: Vec::new(),
            app_label: String::new(),
            enums: Vec::new(),
            location,
        };
        let mut body = Vec::new();
        loop {
            self.take_leading();
            let anchor = match self.peek() {
                Some(Token::RBrace) => {
                    self.pos += 1;
                    self.attach(Anchor::ModelClose(index));
                    break;
                }
                Some(Token::Semi) => {
                    self.pos += 1;
                    continue;
                }
                Some(Token::Ident(k)) if k == "option" => {
                    let option = self.option_statement()?;
                    let anchor = Anchor::ModelOption(index, option.0.clone());
                    self.add_option(
                        &mut model.options,
                        Anchor::Model(index),
                        OptionKind::Message,
                        option,
                    );
                    anchor
                }
                Some(Token::Ident(k)) if k == "enum" => {
                    let n = model.enums.len();
                    let declared = self.enum_decl(Some(index), n)?;
                    unique_enum(&model.enums, &declared)?;
                    model.enums.push(declared);
                    Anchor::ModelEnum(index, n)
                }
                Some(Token::Ident(k)) if k == "required" || k == "optional" || k == "repeated" => {
                    let n = model.fields.len();
                    model.fields.push(self.field(index, n)?);
                    Anchor::Field(index, n)
                }
                None => return self.error(&format!("`}}` to close message `{}`", model.name)),
                _ => {
                    return self
                        .error("`option`, `required`, `optional`, `repeated`, `enum` or `}`");
                }
            };
            self.attach(anchor.clone());
            if !body.contains(&anchor) {
                body.push(anchor);
            }
        }
        self.layout.bodies.insert(index, body);
        self.pending = outer;
        Ok(model)
    }

    /// `enum Name { A = 0; B = 1; }` in message `model` (or at the top level),
    /// the `index`-th enum there.
    fn enum_decl(&mut self, model: Option<usize>, index: usize) -> Result<Enum, ParseError> {
        let location = self.here();
        self.bump(); // `enum`
        let name = self.ident("an enum name")?;
        self.expect(Token::LBrace, "`{` to open the enum")?;
        let outer = std::mem::take(&mut self.pending);
        self.attach(Anchor::EnumOpen(model, index));
        let mut values = Vec::new();
        loop {
            self.take_leading();
            match self.peek() {
                Some(Token::RBrace) => {
                    self.pos += 1;
                    self.attach(Anchor::EnumClose(model, index));
                    break;
                }
                Some(Token::Semi) => self.pos += 1,
                Some(Token::Ident(_)) => {
                    let at = self.here();
                    let value = self.ident("an enum value name")?;
                    if values.iter().any(|v: &EnumValue| v.name == value) {
                        return Err(ParseError::new(
                            at,
                            format!("`{value}` is defined twice in enum `{name}`"),
                        ));
                    }
                    self.expect(Token::Eq, "`=` after the enum value name")?;
                    let number = self.int("the enum value's number")?;
                    self.expect(Token::Semi, "`;` after the enum value")?;
                    self.attach(Anchor::EnumValue(model, index, values.len()));
                    values.push(EnumValue {
                        name: value,
                        number,
                        location: at,
                    });
                }
                None => return self.error(&format!("`}}` to close enum `{name}`")),
                _ => return self.error("an enum value (`NAME = number;`) or `}`"),
            }
        }
        self.pending = outer;
        Ok(Enum {
            name,
            values,
            location,
        })
    }

    /// `required|optional|repeated type name = N [opts];` or
    /// `required|optional manytoone name->Target:reverse = N:M [opts];`;
    /// the `index`-th field of message `model`.
    fn field(&mut self, model: usize, index: usize) -> Result<Field, ParseError> {
        let location = self.here();
        let (modifier, repeated) = match self.bump() {
            Some(Token::Ident(k)) if k == "required" => (Modifier::Required, false),
            Some(Token::Ident(k)) if k == "repeated" => (Modifier::Optional, true),
            _ => (Modifier::Optional, false),
        };
        let type_at = self.here();
        let type_name = self.ident("a field type")?;
        let (name, ty) = match type_name.as_str() {
            "manytoone" | "onetoone" | "manytomany" => {
                let link = match type_name.as_str() {
                    "manytoone" => LinkKind::ManyToOne,
                    "onetoone" => LinkKind::OneToOne,
                    _ => LinkKind::ManyToMany,
                };
                let name = self.ident("a link field name")?;
                self.expect(Token::Arrow, "`->` after the link field name")?;
                let target = self.ident("the link's target model")?;
                let through = if self.peek() == Some(&Token::Slash) {
                    self.pos += 1;
                    Some(self.ident("the through model after `/`")?)
                } else {
                    None
                };
                let reverse = if self.peek() == Some(&Token::Colon) {
                    self.pos += 1;
                    if self.peek() == Some(&Token::Plus) {
                        self.pos += 1;
                        Some("+".to_owned())
                    } else {
                        Some(self.ident("the reverse relation name (or `+`) after `:`")?)
                    }
                } else {
                    None
                };
                (
                    name,
                    FieldType::Link {
                        link,
                        target,
                        reverse,
                        through,
                    },
                )
            }
            other => {
                let scalar = match ScalarType::from_name(other) {
                    Some(scalar) => {
                        self.layout
                            .type_names
                            .insert(Anchor::Field(model, index), other.to_owned());
                        scalar
                    }
                    None => {
                        // Checked once the whole file (and its enums) is read.
                        self.enum_refs
                            .push((model, index, other.to_owned(), type_at));
                        ScalarType::Int
                    }
                };
                (self.ident("a field name")?, FieldType::Scalar { scalar })
            }
        };
        let proto_type = ProtoScalar::from_name(&type_name);
        self.expect(Token::Eq, "`=` and the field number")?;
        let number = self.int("the field number")?;
        let reverse_number = if self.peek() == Some(&Token::Colon) {
            self.pos += 1;
            Some(self.int("the reverse field number after `:`")?)
        } else {
            None
        };
        let mut options = Options::new();
        if self.peek() == Some(&Token::LBracket) {
            self.pos += 1;
            while self.peek() != Some(&Token::RBracket) {
                let at = self.offset();
                let key = self.ident("a field option name")?;
                self.expect(Token::Eq, "`=` after the field option name")?;
                let value = self.literal()?;
                self.add_option(
                    &mut options,
                    Anchor::Field(model, index),
                    OptionKind::Field,
                    (key, value, at),
                );
                match self.peek() {
                    Some(Token::Comma) => self.pos += 1,
                    Some(Token::RBracket) => {}
                    _ => return self.error("`,` or `]` in the field options"),
                }
            }
            self.pos += 1; // `]`
        }
        self.expect(Token::Semi, "`;` after the field")?;
        Ok(Field {
            name,
            modifier,
            ty,
            number,
            reverse_number,
            options,
            repeated,
            enum_type: None,
            proto_type,
            location,
        })
    }
}

/// An enum's name must be new in its scope (the file, or its message).
fn unique_enum(scope: &[Enum], declared: &Enum) -> Result<(), ParseError> {
    match scope.iter().find(|e| e.name == declared.name) {
        Some(first) => Err(ParseError::new(
            declared.location.clone(),
            format!(
                "enum `{}` is already defined at {}",
                declared.name, first.location
            ),
        )),
        None => Ok(()),
    }
}

/// Whether whitespace between two items holds an empty line.
fn blank_line(gap: &str) -> bool {
    gap.matches('\n').count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"
option name = "hello-world";
option app_label = "hello-world";

message HelloWorldService (Service){
    required string hello_from = 1 [help_text = "The name of who is saying hello", null = False, db_index = False, blank = False];
}

message HelloWorldServiceInstance (ServiceInstance){
    option owner_class_name="HelloWorldService";
    required string hello_to = 1 [help_text = "The name of who is being greeted", null = False, db_index = False, blank = False];
}
"#;

    #[test]
    fn the_tutorial_models_parse() {
        let file = parse("hello-world.xproto", HELLO).expect("parses");
        assert_eq!(file.app_label(), Some("hello-world"));
        assert_eq!(file.models.len(), 2);
        let instance = &file.models[1];
        assert_eq!(instance.bases, vec!["ServiceInstance".to_owned()]);
        assert_eq!(
            instance.option_str("owner_class_name"),
            Some("HelloWorldService")
        );
        let field = &instance.fields[0];
        assert_eq!(field.name, "hello_to");
        assert_eq!(field.modifier, Modifier::Required);
        assert_eq!(
            field.option_str("help_text"),
            Some("The name of who is being greeted")
        );
        assert_eq!(field.options.get("null"), Some(&OptionValue::Bool(false)));
        assert_eq!(instance.location.line, 9);
    }

    #[test]
    fn links_policies_and_numbered_reverse_ids_parse() {
        let src = "policy p < ctx.user.is_admin | (exists X: X.a = obj.b) >\n\
                   message User::p (XOSBase) {\n  required manytoone site->Site:users = 10:1001 [db_index = True];\n}";
        let file = parse("core.xproto", src).expect("parses");
        assert_eq!(
            file.policies[0].text,
            "ctx.user.is_admin | (exists X: X.a = obj.b)"
        );
        let field = &file.models[0].fields[0];
        assert_eq!(field.link_target(), Some("Site"));
        assert_eq!(field.reverse_number, Some(1001));
        assert_eq!(field.column_name(), "site_id");
        assert_eq!(file.models[0].policy.as_deref(), Some("p"));
    }

    #[test]
    fn many_to_many_links_through_tables_and_plus_reverses_parse() {
        let src = "message N {\n  optional manytomany permitted->Slice/N_permitted:available = 18:1005 [];\n  required manytoone image->Image:+ = 2;\n}";
        let file = parse("n.xproto", src).expect("parses");
        let fields = &file.models[0].fields;
        assert!(fields[0].is_many());
        assert_eq!(
            fields[0].ty,
            FieldType::Link {
                link: LinkKind::ManyToMany,
                target: "Slice".into(),
                reverse: Some("available".into()),
                through: Some("N_permitted".into()),
            }
        );
        assert!(fields[0].options.is_empty());
        assert!(matches!(&fields[1].ty, FieldType::Link { reverse: Some(r), .. } if r == "+"));
    }

    #[test]
    fn a_missing_semicolon_is_reported_with_line_and_column() {
        let src = "message A {\n    required string name = 1\n}\n";
        let err = parse("bad.xproto", src).expect_err("fails");
        assert_eq!(
            err.to_string(),
            "bad.xproto:3:1: expected `;` after the field, found `}`"
        );
    }

    #[test]
    fn an_unknown_type_names_the_type() {
        let err =
            parse("bad.xproto", "message A {\n  required strin name = 1;\n}").expect_err("fails");
        assert!(
            err.to_string()
                .starts_with("bad.xproto:2:12: unknown field type `strin`"),
            "{err}"
        );
    }

    #[test]
    fn enums_and_repeated_fields_are_kept() {
        let src = "enum Kind { VM = 0; CONTAINER = 1; }\n\
                   message A {\n  enum Color { RED = 0; }\n  repeated string tags = 1;\n  optional Color c = 2 [default = RED];\n  optional Kind k = 3;\n}";
        let file = parse("a.xproto", src).expect("parses");
        assert_eq!(file.enums[0].name, "Kind");
        assert_eq!(file.enums[0].values[1].name, "CONTAINER");
        assert_eq!(file.enums[0].values[1].number, 1);
        let model = &file.models[0];
        assert_eq!(model.enums[0].values[0].location.line, 3);
        assert!(model.fields[0].repeated);
        assert!(!model.fields[1].repeated);
        assert_eq!(model.fields[1].enum_type.as_deref(), Some("Color"));
        assert_eq!(
            model.fields[1].ty,
            FieldType::Scalar {
                scalar: ScalarType::Int
            }
        );
        assert_eq!(model.fields[2].enum_type.as_deref(), Some("Kind"));
    }

    #[test]
    fn enum_names_and_constants_must_be_unique() {
        let err = parse("a.xproto", "enum E { A = 0; A = 1; }").expect_err("fails");
        assert_eq!(
            err.to_string(),
            "a.xproto:1:17: `A` is defined twice in enum `E`"
        );
        let err = parse(
            "a.xproto",
            "message M {\n  enum E { A = 0; }\n  enum E { B = 0; }\n}",
        )
        .expect_err("fails");
        assert_eq!(
            err.to_string(),
            "a.xproto:3:3: enum `E` is already defined at a.xproto:2:3"
        );
        // The same name in another scope is another enum.
        parse(
            "a.xproto",
            "enum E { A = 0; }\nmessage M { enum E { A = 0; } }",
        )
        .expect("parses");
    }

    #[test]
    fn an_enum_of_another_message_is_an_unknown_type() {
        let src = "message A { enum E { X = 0; } }\nmessage B {\n  optional E e = 1;\n}";
        let err = parse("a.xproto", src).expect_err("fails");
        assert!(
            err.to_string()
                .starts_with("a.xproto:3:12: unknown field type `E`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_and_repeated_options_are_kept_and_warned_about() {
        let src = "option colour = \"red\";\nmessage A {\n  option plural = \"as\";\n  option plural = \"aas\";\n  required string a = 1 [max_lenght = 3];\n}";
        let parsed = parse_full("a.xproto", src).expect("parses");
        let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "a.xproto:1:8: unknown file option `colour` (kept, but syncplane does not use it)",
                "a.xproto:4:10: message option `plural` is given twice; the last value counts",
                "a.xproto:5:26: unknown field option `max_lenght` (kept, but syncplane does not use it)",
            ]
        );
        let file = &parsed.file;
        assert_eq!(
            file.options.get("colour"),
            Some(&OptionValue::Str("red".into()))
        );
        assert_eq!(file.models[0].option_str("plural"), Some("aas"));
        assert!(file.models[0].fields[0].options.contains_key("max_lenght"));
    }

    #[test]
    fn an_unclosed_message_is_reported_at_the_end() {
        let err =
            parse("bad.xproto", "message A {\n  required string a = 1;\n").expect_err("fails");
        assert!(err.to_string().contains("to close message `A`"), "{err}");
    }
}
