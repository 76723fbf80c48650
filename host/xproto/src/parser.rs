//! A recursive-descent parser over the logos token stream.

use logos::Logos;

use crate::error::ParseError;
use crate::ir::{
    Field, FieldType, File, LinkKind, Location, Model, Modifier, OptionValue, Options, Policy,
    ScalarType,
};
use crate::lexer::Token;

/// Parses one xproto source file.
///
/// # Errors
///
/// Returns the first syntax error, with `file:line:column`.
pub fn parse(file_name: &str, source: &str) -> Result<File, ParseError> {
    Parser::new(file_name, source)?.file()
}

struct Parser<'s> {
    file: String,
    source: &'s str,
    tokens: Vec<(Token, std::ops::Range<usize>)>,
    pos: usize,
    line_starts: Vec<usize>,
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
        };
        let mut lexer = Token::lexer(source);
        while let Some(tok) = lexer.next() {
            match tok {
                Ok(tok) => parser.tokens.push((tok, lexer.span())),
                Err(()) => {
                    let at = parser.location(lexer.span().start);
                    return Err(ParseError::new(
                        at,
                        format!("unexpected character(s) `{}`", lexer.slice()),
                    ));
                }
            }
        }
        Ok(parser)
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

    fn file(mut self) -> Result<File, ParseError> {
        let mut file = File {
            name: self.file.clone(),
            options: Options::new(),
            policies: Vec::new(),
            models: Vec::new(),
        };
        while self.peek().is_some() {
            if self.at_keyword("option") {
                let (name, value) = self.option_statement()?;
                file.options.insert(name, value);
            } else if self.at_keyword("policy") {
                file.policies.push(self.policy()?);
            } else if self.at_keyword("message") {
                file.models.push(self.message()?);
            } else {
                return self.error("`option`, `policy` or `message`");
            }
        }
        let app_label = file.app_label().unwrap_or("core").to_owned();
        for model in &mut file.models {
            model.app_label = app_label.clone();
        }
        Ok(file)
    }

    /// `option name = value;`
    fn option_statement(&mut self) -> Result<(String, OptionValue), ParseError> {
        self.bump(); // `option`
        let name = self.ident("an option name")?;
        self.expect(Token::Eq, "`=` after the option name")?;
        let value = self.literal()?;
        self.expect(Token::Semi, "`;` after the option")?;
        Ok((name, value))
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

    /// `policy name < expression >`; the expression is kept as text.
    fn policy(&mut self) -> Result<Policy, ParseError> {
        let location = self.here();
        self.bump(); // `policy`
        let name = self.ident("a policy name")?;
        let open = self.here();
        self.expect(Token::Lt, "`<` to open the policy expression")?;
        let start = self.tokens.get(self.pos).map(|(_, s)| s.start);
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
        let text = self.source[start.unwrap_or(end)..end].trim().to_owned();
        Ok(Policy {
            name,
            text,
            location,
        })
    }

    /// `message Name(::policy)? ((Base, ...))? { ... }`
    fn message(&mut self) -> Result<Model, ParseError> {
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
        let mut model = Model {
            name,
            policy,
            bases,
            options: Options::new(),
            fields: Vec::new(),
            app_label: String::new(),
            location,
        };
        loop {
            match self.peek() {
                Some(Token::RBrace) => {
                    self.pos += 1;
                    break;
                }
                Some(Token::Semi) => self.pos += 1,
                Some(Token::Ident(k)) if k == "option" => {
                    let (name, value) = self.option_statement()?;
                    model.options.insert(name, value);
                }
                Some(Token::Ident(k)) if k == "required" || k == "optional" => {
                    model.fields.push(self.field()?);
                }
                None => return self.error(&format!("`}}` to close message `{}`", model.name)),
                _ => return self.error("`option`, `required`, `optional` or `}`"),
            }
        }
        Ok(model)
    }

    /// `required|optional type name = N [opts];` or
    /// `required|optional manytoone name->Target:reverse = N:M [opts];`
    fn field(&mut self) -> Result<Field, ParseError> {
        let location = self.here();
        let modifier = match self.bump() {
            Some(Token::Ident(k)) if k == "required" => Modifier::Required,
            _ => Modifier::Optional,
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
            other => match ScalarType::from_name(other) {
                Some(scalar) => (self.ident("a field name")?, FieldType::Scalar { scalar }),
                None => {
                    return Err(ParseError::new(
                        type_at,
                        format!(
                            "unknown field type `{other}` (expected string, bool, int32, uint32, int64, uint64, float, double, manytoone, onetoone or manytomany)"
                        ),
                    ));
                }
            },
        };
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
                let key = self.ident("a field option name")?;
                self.expect(Token::Eq, "`=` after the field option name")?;
                let value = self.literal()?;
                options.insert(key, value);
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
            location,
        })
    }
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
    fn an_unclosed_message_is_reported_at_the_end() {
        let err =
            parse("bad.xproto", "message A {\n  required string a = 1;\n").expect_err("fails");
        assert!(err.to_string().contains("to close message `A`"), "{err}");
    }
}
