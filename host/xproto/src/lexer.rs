//! Tokens of the xproto language, and the comments between them.

use std::ops::Range;

use logos::Logos;

/// One xproto token. Whitespace and comments are skipped.
#[derive(Logos, Debug, Clone, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
#[logos(skip r"/\*([^*]|\*+[^*/])*\*+/")]
pub(crate) enum Token {
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_owned())]
    Ident(String),
    #[regex(r"-?[0-9]+", |lex| lex.slice().parse::<i64>().ok(), priority = 3)]
    Int(i64),
    #[regex(r"-?[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?", |lex| lex.slice().parse::<f64>().ok())]
    Float(f64),
    #[regex(r#""([^"\\\n]|\\.)*""#, |lex| unescape(lex.slice()))]
    #[regex(r#"'([^'\\\n]|\\.)*'"#, |lex| unescape(lex.slice()))]
    Str(String),
    #[token(";")]
    Semi,
    #[token("=")]
    Eq,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token("::")]
    ColonColon,
    #[token(":")]
    Colon,
    #[token("->")]
    Arrow,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("/")]
    Slash,
    #[token("+")]
    Plus,
    /// Characters that only appear inside policy expressions.
    #[regex(r"[*&|.!%]")]
    Other,
}

/// A comment as written (`// ...` or `/* ... */`), kept for the formatter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Comment {
    /// Byte range in the source.
    pub span: Range<usize>,
    /// The comment's text, without trailing whitespace.
    pub text: String,
    /// Whether it follows a token on the same line (`x = 1; // why`).
    pub trailing: bool,
}

/// A source file split into tokens and comments.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lexed {
    /// Tokens with their byte ranges.
    pub tokens: Vec<(Token, Range<usize>)>,
    /// Comments in source order.
    pub comments: Vec<Comment>,
}

/// Splits `source` into tokens and comments.
///
/// # Errors
///
/// The byte range of the first piece of text that is no token.
pub(crate) fn lex(source: &str) -> Result<Lexed, Range<usize>> {
    let mut out = Lexed::default();
    let mut lexer = Token::lexer(source);
    let mut gap_start = 0;
    while let Some(tok) = lexer.next() {
        let span = lexer.span();
        match tok {
            Ok(tok) => {
                collect_comments(
                    source,
                    gap_start..span.start,
                    !out.tokens.is_empty(),
                    &mut out.comments,
                );
                gap_start = span.end;
                out.tokens.push((tok, span));
            }
            Err(()) => return Err(span),
        }
    }
    collect_comments(
        source,
        gap_start..source.len(),
        !out.tokens.is_empty(),
        &mut out.comments,
    );
    Ok(out)
}

/// Finds the comments in a gap between tokens, which logos skipped: the gap
/// holds only whitespace and comments.
fn collect_comments(source: &str, gap: Range<usize>, after_token: bool, out: &mut Vec<Comment>) {
    let Some(text) = source.get(gap.clone()) else {
        return;
    };
    let mut i = 0;
    let mut on_token_line = after_token;
    while i < text.len() {
        let rest = &text[i..];
        let len = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if let Some(body) = rest.strip_prefix("/*") {
            body.find("*/").map_or(rest.len(), |end| end + 4)
        } else {
            let c = rest.chars().next().map_or(1, char::len_utf8);
            if rest.starts_with('\n') {
                on_token_line = false;
            }
            i += c;
            continue;
        };
        let start = gap.start + i;
        out.push(Comment {
            span: start..start + len,
            text: rest[..len].trim_end().to_owned(),
            trailing: on_token_line,
        });
        i += len;
    }
}

fn unescape(quoted: &str) -> String {
    let inner = &quoted[1..quoted.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Token {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("`{s}`"),
            Token::Int(i) => format!("number `{i}`"),
            Token::Float(f) => format!("number `{f}`"),
            Token::Str(s) => format!("string {s:?}"),
            Token::Semi => "`;`".into(),
            Token::Eq => "`=`".into(),
            Token::LParen => "`(`".into(),
            Token::RParen => "`)`".into(),
            Token::LBrace => "`{`".into(),
            Token::RBrace => "`}`".into(),
            Token::LBracket => "`[`".into(),
            Token::RBracket => "`]`".into(),
            Token::Comma => "`,`".into(),
            Token::ColonColon => "`::`".into(),
            Token::Colon => "`:`".into(),
            Token::Arrow => "`->`".into(),
            Token::Lt => "`<`".into(),
            Token::Gt => "`>`".into(),
            Token::Slash => "`/`".into(),
            Token::Plus => "`+`".into(),
            Token::Other => "symbol".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Vec<Token> {
        Token::lexer(src).map(|t| t.expect("valid token")).collect()
    }

    #[test]
    fn comments_are_skipped_and_strings_unescaped() {
        let toks = tokens("option x = \"a\\\"b\"; // c\n/* d */ 'e'");
        assert_eq!(
            toks,
            vec![
                Token::Ident("option".into()),
                Token::Ident("x".into()),
                Token::Eq,
                Token::Str("a\"b".into()),
                Token::Semi,
                Token::Str("e".into()),
            ]
        );
    }

    #[test]
    fn comments_are_kept_with_their_place() {
        let src = "// lead\nmessage A { // trail\n  /* inner */ x\n}\n// end";
        let lexed = lex(src).expect("lexes");
        let texts: Vec<_> = lexed
            .comments
            .iter()
            .map(|c| (c.text.as_str(), c.trailing))
            .collect();
        assert_eq!(
            texts,
            [
                ("// lead", false),
                ("// trail", true),
                ("/* inner */", false),
                ("// end", false)
            ]
        );
        assert_eq!(&src[lexed.comments[1].span.clone()], "// trail");
        assert_eq!(lexed.tokens.len(), 5);
    }

    #[test]
    fn the_first_bad_character_is_reported_by_range() {
        assert_eq!(lex("message A { # }").expect_err("fails"), 12..13);
    }

    #[test]
    fn link_arrows_and_ids_lex_as_separate_tokens() {
        let toks = tokens("owner->Service:service_instances = 2:1009");
        assert_eq!(toks[1], Token::Arrow);
        assert_eq!(toks[3], Token::Colon);
        assert_eq!(toks[6], Token::Int(2));
        assert_eq!(toks[8], Token::Int(1009));
    }
}
