//! Reading policy expressions: a small lexer and a recursive-descent parser.
//!
//! Grammar, loosest first (as the original's, except that a quantifier's
//! body extends as far to the right as possible; see [`PolicyExpr`]):
//!
//! ```text
//! expr    := or ( "->" expr )?                      right-associative
//! or      := and ( "|" and )*
//! and     := unary ( "&" unary )*
//! unary   := "not" unary | ("exists" | "forall") NAME ":" expr | primary
//! primary := "(" expr ")" | term ( ("=" | "in") term )?
//! term    := PATH | STRING | NUMBER | "True" | "False" | "None"
//!          | "*" NAME "(" PATH ")" | "{{" python "}}"
//! PATH    := NAME ( "." NAME )* "()"?
//! ```

use crate::error::ParseError;
use crate::ir::Location;

use super::ast::{
    BinaryOp, CompareOp, ExprKind, PolicyExpr, PolicyPath, Quantifier, Term, TermKind,
};

/// Parses the text of a policy expression (what is between `<` and `>`);
/// `start` is where `text` begins in its file, so errors and nodes carry
/// real file positions.
///
/// # Errors
///
/// The first syntax error, located.
pub fn parse_policy_expr(text: &str, start: &Location) -> Result<PolicyExpr, ParseError> {
    let locator = Locator::new(text, start);
    let tokens = lex(text, &locator)?;
    let mut parser = ExprParser {
        tokens,
        pos: 0,
        end: locator.locate(text.len()),
    };
    let expr = parser.expr()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(expr),
        Some(_) => parser.error("an operator (`&`, `|`, `->`) or the end of the policy"),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Path(PolicyPath),
    Str(String),
    Int(i64),
    Float(f64),
    Python(String),
    Keyword(&'static str),
    Colon,
    Implies,
    Or,
    And,
    Eq,
    Star,
    LParen,
    RParen,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Path(p) => format!("`{}`", p.text()),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Int(i) => format!("number `{i}`"),
            Tok::Float(f) => format!("number `{f}`"),
            Tok::Python(_) => "a `{{ python }}` escape".into(),
            Tok::Keyword(k) => format!("`{k}`"),
            Tok::Colon => "`:`".into(),
            Tok::Implies => "`->`".into(),
            Tok::Or => "`|`".into(),
            Tok::And => "`&`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Star => "`*`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
        }
    }
}

const KEYWORDS: &[&str] = &["exists", "forall", "not", "in", "True", "False", "None"];

/// Positions in a policy's text, which starts at `start` in its file.
struct Locator<'t> {
    text: &'t str,
    start: &'t Location,
    /// Byte offsets where lines after the first begin.
    line_starts: Vec<usize>,
}

impl<'t> Locator<'t> {
    fn new(text: &'t str, start: &'t Location) -> Self {
        let line_starts = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        Locator {
            text,
            start,
            line_starts,
        }
    }

    /// The location of byte `offset` of the text.
    fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let lines_before = self.line_starts.partition_point(|&s| s <= offset);
        let (line, column) = match lines_before.checked_sub(1) {
            None => (
                self.start.line,
                self.start.column + self.text[..offset].chars().count() as u32,
            ),
            Some(i) => {
                let line_start = self.line_starts[i];
                (
                    self.start.line + lines_before as u32,
                    self.text[line_start..offset].chars().count() as u32 + 1,
                )
            }
        };
        Location {
            file: self.start.file.clone(),
            line,
            column,
        }
    }
}

fn lex(text: &str, locator: &Locator<'_>) -> Result<Vec<(Tok, Location)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, message: String| Err(ParseError::new(locator.locate(at), message));
    while i < bytes.len() {
        let c = bytes[i];
        let at = i;
        let rest = &text[i..];
        let tok = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
            continue;
        } else if let Some(comment) = rest.strip_prefix("/*") {
            match comment.find("*/") {
                Some(end) => i += end + 4,
                None => return err(at, "unterminated `/*` comment".into()),
            }
            continue;
        } else if rest.starts_with("{{") {
            let Some(end) = rest.find("}}") else {
                return err(at, "`{{` python escape is not closed with `}}`".into());
            };
            i += end + 2;
            // As the original: strip the braces and the spaces next to them.
            let inner = rest[..end + 2]
                .trim_start_matches(['{', ' '])
                .trim_end_matches(['}', ' ']);
            Tok::Python(inner.to_owned())
        } else if rest.starts_with("->") {
            i += 2;
            Tok::Implies
        } else if c == b'"' {
            let mut value = String::new();
            let mut chars = rest[1..].char_indices();
            let mut closed = None;
            while let Some((j, ch)) = chars.next() {
                match ch {
                    '"' => {
                        closed = Some(j + 2);
                        break;
                    }
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '\n' => break,
                    other => value.push(other),
                }
            }
            let Some(len) = closed else {
                return err(at, "string is not closed with `\"`".into());
            };
            i += len;
            Tok::Str(value)
        } else if c.is_ascii_digit()
            || ((c == b'-' || c == b'+') && rest[1..].starts_with(|d: char| d.is_ascii_digit()))
        {
            let len = 1 + rest[1..]
                .find(|d: char| !d.is_ascii_digit() && d != '.')
                .unwrap_or(rest.len() - 1);
            let literal = &rest[..len];
            i += len;
            if literal.contains('.') {
                match literal.parse::<f64>() {
                    Ok(f) => Tok::Float(f),
                    Err(_) => return err(at, format!("invalid number `{literal}`")),
                }
            } else {
                match literal.parse::<i64>() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => return err(at, format!("invalid number `{literal}`")),
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let len = rest
                .find(|d: char| !(d.is_ascii_alphanumeric() || d == '_' || d == '.'))
                .unwrap_or(rest.len());
            let name = &rest[..len];
            i += len;
            if let Some(k) = KEYWORDS.iter().find(|k| **k == name) {
                Tok::Keyword(k)
            } else {
                let segments: Vec<String> = name.split('.').map(str::to_owned).collect();
                if segments.iter().any(String::is_empty) {
                    return err(at, format!("`{name}` is not a valid name"));
                }
                let call = text[i..].starts_with("()");
                if call {
                    i += 2;
                }
                Tok::Path(PolicyPath { segments, call })
            }
        } else {
            i += 1;
            match c {
                b':' => Tok::Colon,
                b'|' => Tok::Or,
                b'&' => Tok::And,
                b'=' => Tok::Eq,
                b'*' => Tok::Star,
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                _ => {
                    let ch = rest.chars().next().unwrap_or('?');
                    return err(at, format!("unexpected character `{ch}` in a policy"));
                }
            }
        };
        out.push((tok, locator.locate(at)));
    }
    Ok(out)
}

struct ExprParser {
    tokens: Vec<(Tok, Location)>,
    pos: usize,
    end: Location,
}

impl ExprParser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn here(&self) -> Location {
        self.tokens
            .get(self.pos)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| self.end.clone())
    }

    fn error<T>(&self, expected: &str) -> Result<T, ParseError> {
        let found = match self.peek() {
            Some(t) => t.describe(),
            None => "the end of the policy".into(),
        };
        Err(ParseError::new(
            self.here(),
            format!("expected {expected} in policy, found {found}"),
        ))
    }

    fn expr(&mut self) -> Result<PolicyExpr, ParseError> {
        let lhs = self.or()?;
        if self.peek() == Some(&Tok::Implies) {
            self.pos += 1;
            let rhs = self.expr()?;
            return Ok(binary(BinaryOp::Implies, lhs, rhs));
        }
        Ok(lhs)
    }

    /// `and ( "|" and )*`, left-associative.
    fn or(&mut self) -> Result<PolicyExpr, ParseError> {
        let mut lhs = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let rhs = self.and()?;
            lhs = binary(BinaryOp::Or, lhs, rhs);
        }
        Ok(lhs)
    }

    /// `unary ( "&" unary )*`, left-associative.
    fn and(&mut self) -> Result<PolicyExpr, ParseError> {
        let mut lhs = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let rhs = self.unary()?;
            lhs = binary(BinaryOp::And, lhs, rhs);
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<PolicyExpr, ParseError> {
        let location = self.here();
        match self.peek() {
            Some(Tok::Keyword("not")) => {
                self.pos += 1;
                let inner = self.unary()?;
                Ok(PolicyExpr {
                    kind: ExprKind::Not(Box::new(inner)),
                    location,
                })
            }
            Some(Tok::Keyword(k @ ("exists" | "forall"))) => {
                let quantifier = if *k == "exists" {
                    Quantifier::Exists
                } else {
                    Quantifier::Forall
                };
                self.pos += 1;
                let model = match self.peek() {
                    Some(Tok::Path(p)) if p.segments.len() == 1 && !p.call => p.segments[0].clone(),
                    _ => {
                        return self
                            .error(&format!("a model name after `{}`", quantifier.keyword()));
                    }
                };
                self.pos += 1;
                if self.peek() != Some(&Tok::Colon) {
                    return self.error(&format!("`:` after `{} {model}`", quantifier.keyword()));
                }
                self.pos += 1;
                let body = self.expr()?;
                Ok(PolicyExpr {
                    kind: ExprKind::Quantified {
                        quantifier,
                        model,
                        body: Box::new(body),
                    },
                    location,
                })
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.expr()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.error("`)`");
                }
                self.pos += 1;
                Ok(PolicyExpr {
                    kind: ExprKind::Group(Box::new(inner)),
                    location,
                })
            }
            _ => {
                let lhs = self.term()?;
                let op = match self.peek() {
                    Some(Tok::Eq) => CompareOp::Eq,
                    Some(Tok::Keyword("in")) => CompareOp::In,
                    _ => {
                        return Ok(PolicyExpr {
                            kind: ExprKind::Term(lhs),
                            location,
                        });
                    }
                };
                self.pos += 1;
                let rhs = self.term()?;
                Ok(PolicyExpr {
                    kind: ExprKind::Compare { op, lhs, rhs },
                    location,
                })
            }
        }
    }

    fn term(&mut self) -> Result<Term, ParseError> {
        let location = self.here();
        let Some(tok) = self.peek().cloned() else {
            return self.error("a condition");
        };
        let kind = match tok {
            Tok::Path(p) => TermKind::Path(p),
            Tok::Str(s) => TermKind::Str(s),
            Tok::Int(i) => TermKind::Int(i),
            Tok::Float(f) => TermKind::Float(f),
            Tok::Python(text) => TermKind::Python(text),
            Tok::Keyword("True") => TermKind::Bool(true),
            Tok::Keyword("False") => TermKind::Bool(false),
            Tok::Keyword("None") => TermKind::Null,
            Tok::Star => {
                self.pos += 1;
                let policy = match self.peek() {
                    Some(Tok::Path(p)) if p.segments.len() == 1 && !p.call => p.segments[0].clone(),
                    _ => return self.error("a policy name after `*`"),
                };
                self.pos += 1;
                if self.peek() != Some(&Tok::LParen) {
                    return self.error(&format!("`(` after `*{policy}`"));
                }
                self.pos += 1;
                let arg = match self.peek() {
                    Some(Tok::Path(p)) => p.clone(),
                    _ => {
                        return self
                            .error(&format!("a field of `obj` as the argument of `*{policy}`"));
                    }
                };
                self.pos += 1;
                if self.peek() != Some(&Tok::RParen) {
                    return self.error(&format!("`)` after the argument of `*{policy}`"));
                }
                TermKind::Call { policy, arg }
            }
            _ => return self.error("a condition"),
        };
        self.pos += 1;
        Ok(Term { kind, location })
    }
}

fn binary(op: BinaryOp, lhs: PolicyExpr, rhs: PolicyExpr) -> PolicyExpr {
    let location = lhs.location.clone();
    PolicyExpr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        location,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at() -> Location {
        Location {
            file: "p.xproto".into(),
            line: 3,
            column: 10,
        }
    }

    fn original(text: &str) -> serde_json::Value {
        parse_policy_expr(text, &at())
            .unwrap_or_else(|e| panic!("{e}"))
            .to_original_json()
    }

    #[test]
    fn quantifier_bodies_extend_to_the_right_but_the_original_shape_binds_them_tight() {
        let e = parse_policy_expr(
            "exists Privilege: Privilege.a = 1 & Privilege.b = \"x\"",
            &at(),
        )
        .expect("parses");
        let ExprKind::Quantified { body, .. } = &e.kind else {
            panic!("not a quantifier: {e:?}");
        };
        assert!(matches!(
            body.kind,
            ExprKind::Binary {
                op: BinaryOp::And,
                ..
            }
        ));
        assert_eq!(
            e.to_original_json(),
            json!({"&": [{"exists": ["Privilege", {"=": ["Privilege.a", "1"]}]}, {"=": ["Privilege.b", "\"x\""]}]})
        );
    }

    #[test]
    fn connectives_follow_the_original_precedence() {
        assert_eq!(
            original("a | b & c"),
            json!({"|": ["a", {"&": ["b", "c"]}]})
        );
        assert_eq!(
            original("a | b | c"),
            json!({"|": [{"|": ["a", "b"]}, "c"]})
        );
        assert_eq!(
            original("a -> b -> c"),
            json!({"->": ["a", {"->": ["b", "c"]}]})
        );
        assert_eq!(
            original("not a = b -> c"),
            json!({"->": [{"not": {"=": ["a", "b"]}}, "c"]})
        );
        assert_eq!(
            original("(a | b) & c"),
            json!({"&": [{"|": ["a", "b"]}, "c"]})
        );
        assert_eq!(
            original("x & exists P: P.a & P.b"),
            json!({"&": [{"&": ["x", {"exists": ["P", "P.a"]}]}, "P.b"]})
        );
    }

    #[test]
    fn calls_escapes_constants_and_membership_parse() {
        assert_eq!(
            original("*slice_policy(network.owner) & True | None"),
            json!({"|": [{"&": [{"policy": ["slice_policy", "network.owner"]}, "True"]}, "None"]})
        );
        assert_eq!(
            original("{{ ' ' not in obj.name }}"),
            json!({"python": "' ' not in obj.name"})
        );
        assert_eq!(
            original("obj.slice in obj.network.permitted_slices.all()"),
            json!({"in": ["obj.slice", "obj.network.permitted_slices.all()"]})
        );
        assert_eq!(
            original("forall X: X.n = -2.5 | X.m = 3.0"),
            json!({"|": [{"forall": ["X", {"=": ["X.n", "-2.5"]}]}, {"=": ["X.m", "3.0"]}]})
        );
    }

    #[test]
    fn nodes_carry_file_positions_across_lines() {
        let e = parse_policy_expr("a\n   | obj.b", &at()).expect("parses");
        let ExprKind::Binary { lhs, rhs, .. } = &e.kind else {
            panic!("not binary");
        };
        assert_eq!(lhs.location.to_string(), "p.xproto:3:10");
        assert_eq!(rhs.location.to_string(), "p.xproto:4:6");
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse_policy_expr("a & (b | c", &at()).expect_err("unclosed");
        assert_eq!(
            err.to_string(),
            "p.xproto:3:20: expected `)` in policy, found the end of the policy"
        );
        let err = parse_policy_expr("exists : a", &at()).expect_err("no model");
        assert!(
            err.to_string()
                .starts_with("p.xproto:3:17: expected a model name after `exists`"),
            "{err}"
        );
        let err = parse_policy_expr("a = = b", &at()).expect_err("double eq");
        assert!(err.to_string().contains("3:14"), "{err}");
        let err = parse_policy_expr("a b", &at()).expect_err("juxtaposed");
        assert!(err.to_string().contains("found `b`"), "{err}");
        let err = parse_policy_expr("a ? b", &at()).expect_err("bad char");
        assert!(
            err.to_string().contains("unexpected character `?`"),
            "{err}"
        );
    }
}
