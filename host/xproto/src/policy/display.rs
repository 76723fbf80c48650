//! Writing policy expressions back as source text.

use std::fmt;

use super::ast::{BinaryOp, ExprKind, PolicyExpr, Term, TermKind};

/// Binding strength of `not` and quantifiers, above every connective.
const UNARY: u8 = 4;

impl fmt::Display for PolicyExpr {
    /// The expression in the policy language, one line: groups written in
    /// the source are kept, and parentheses are added where the tree needs
    /// them (a looser connective under a tighter one, a quantifier followed
    /// by a connective), so the text reads back as the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self, 0, false)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TermKind::Path(p) => f.write_str(&p.text()),
            TermKind::Str(s) => write!(f, "\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
            TermKind::Int(i) => write!(f, "{i}"),
            TermKind::Float(x) => {
                // `2` would read back as an integer.
                let text = x.to_string();
                if text.contains('.') {
                    f.write_str(&text)
                } else {
                    write!(f, "{text}.0")
                }
            }
            TermKind::Bool(true) => f.write_str("True"),
            TermKind::Bool(false) => f.write_str("False"),
            TermKind::Null => f.write_str("None"),
            TermKind::Call { policy, arg } => write!(f, "*{policy}({})", arg.text()),
            TermKind::Python(text) => write!(f, "{{{{ {text} }}}}"),
        }
    }
}

/// Writes `expr` where its context binds with `min_precedence`; `followed`
/// says a connective comes after it at the same level (so a quantifier,
/// whose body extends to the right, must be closed by parentheses).
fn write_expr(
    f: &mut fmt::Formatter<'_>,
    expr: &PolicyExpr,
    min_precedence: u8,
    followed: bool,
) -> fmt::Result {
    let precedence = match &expr.kind {
        ExprKind::Binary { op, .. } => op.precedence(),
        ExprKind::Not(_) | ExprKind::Quantified { .. } => UNARY,
        ExprKind::Term(_) | ExprKind::Compare { .. } | ExprKind::Group(_) => UNARY + 1,
    };
    let open_ended = matches!(expr.kind, ExprKind::Quantified { .. }) && followed;
    if precedence < min_precedence || open_ended {
        f.write_str("(")?;
        write_expr(f, expr, 0, false)?;
        return f.write_str(")");
    }
    match &expr.kind {
        ExprKind::Term(t) => write!(f, "{t}"),
        ExprKind::Compare { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.symbol()),
        ExprKind::Not(inner) => {
            f.write_str("not ")?;
            write_expr(f, inner, UNARY, followed)
        }
        ExprKind::Quantified {
            quantifier,
            model,
            body,
        } => {
            write!(f, "{} {model}: ", quantifier.keyword())?;
            write_expr(f, body, 0, false)
        }
        ExprKind::Group(inner) => {
            f.write_str("(")?;
            write_expr(f, inner, 0, false)?;
            f.write_str(")")
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let p = op.precedence();
            // `->` groups to the right, `&` and `|` to the left.
            let (left_min, right_min) = if *op == BinaryOp::Implies {
                (p + 1, p)
            } else {
                (p, p + 1)
            };
            write_expr(f, lhs, left_min, true)?;
            write!(f, " {} ", op.symbol())?;
            write_expr(f, rhs, right_min, followed)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::Location;
    use crate::policy::{BinaryOp, ExprKind, PolicyExpr, parse_policy_expr};

    fn at() -> Location {
        Location {
            file: "d.xproto".into(),
            line: 1,
            column: 1,
        }
    }

    fn round_trip(text: &str) -> String {
        let expr = parse_policy_expr(text, &at()).expect("parses");
        let printed = expr.to_string();
        let again = parse_policy_expr(&printed, &at()).expect("printed text parses");
        assert_eq!(again.to_string(), printed);
        assert_eq!(again.to_original_json(), expr.to_original_json());
        printed
    }

    #[test]
    fn printing_keeps_groups_and_reads_back_as_the_same_tree() {
        assert_eq!(
            round_trip("ctx.user.is_admin\n | (exists P:P.a=\"x\\\"y\" & P.b = 2.0)"),
            "ctx.user.is_admin | (exists P: P.a = \"x\\\"y\" & P.b = 2.0)"
        );
        assert_eq!(
            round_trip("not a -> b -> *p(c.d) | {{ x }}"),
            "not a -> b -> *p(c.d) | {{ x }}"
        );
        assert_eq!(round_trip("x in y.all() & None"), "x in y.all() & None");
    }

    #[test]
    fn parentheses_are_added_where_a_built_tree_needs_them() {
        let leaf = |t: &str| parse_policy_expr(t, &at()).expect("parses");
        let node = |op, l: PolicyExpr, r: PolicyExpr| PolicyExpr {
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
            },
            location: at(),
        };
        let or = node(BinaryOp::Or, leaf("a"), leaf("b"));
        assert_eq!(
            node(BinaryOp::And, or.clone(), leaf("c")).to_string(),
            "(a | b) & c"
        );
        assert_eq!(
            node(BinaryOp::And, leaf("c"), or.clone()).to_string(),
            "c & (a | b)"
        );
        let and = node(BinaryOp::And, leaf("a"), leaf("b"));
        assert_eq!(
            node(BinaryOp::And, leaf("c"), and).to_string(),
            "c & (a & b)"
        );
        let imp = node(BinaryOp::Implies, leaf("a"), leaf("b"));
        assert_eq!(
            node(BinaryOp::Implies, imp, leaf("c")).to_string(),
            "(a -> b) -> c"
        );
        let quant = leaf("exists X: X.a");
        assert_eq!(
            node(BinaryOp::Or, quant.clone(), leaf("c")).to_string(),
            "(exists X: X.a) | c"
        );
        assert_eq!(
            node(BinaryOp::Or, leaf("c"), quant).to_string(),
            "c | exists X: X.a"
        );
    }
}
