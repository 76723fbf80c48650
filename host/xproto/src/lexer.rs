//! Tokens of the xproto language.

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

    fn lex(src: &str) -> Vec<Token> {
        Token::lexer(src).map(|t| t.expect("valid token")).collect()
    }

    #[test]
    fn comments_are_skipped_and_strings_unescaped() {
        let toks = lex("option x = \"a\\\"b\"; // c\n/* d */ 'e'");
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
    fn link_arrows_and_ids_lex_as_separate_tokens() {
        let toks = lex("owner->Service:service_instances = 2:1009");
        assert_eq!(toks[1], Token::Arrow);
        assert_eq!(toks[3], Token::Colon);
        assert_eq!(toks[6], Token::Int(2));
        assert_eq!(toks[8], Token::Int(1009));
    }
}
