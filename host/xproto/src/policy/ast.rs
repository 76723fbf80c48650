//! The typed syntax tree of policy expressions.

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::ir::Location;

/// A policy expression: a boolean formula over the object being checked
/// (`obj`), the calling context (`ctx`) and the data model (`exists`,
/// `forall`).
///
/// The tree follows the usual first-order-logic reading, in which a
/// quantifier's body extends as far to the right as possible:
/// `exists Privilege: A & B` means that one `Privilege` satisfies both `A`
/// and `B`. (The original parser bound quantifiers tighter than `&`;
/// [`PolicyExpr::to_original_json`] rebuilds its tree shape.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyExpr {
    /// What the expression is.
    pub kind: ExprKind,
    /// Where it starts.
    pub location: Location,
}

/// The kinds of policy expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExprKind {
    /// A term used as a condition: true when it is truthy (`obj.creator`:
    /// set; `ctx.user.is_admin`: true; a policy call: granted).
    Term(Term),
    /// `lhs = rhs` or `lhs in rhs`.
    Compare {
        /// `=` or `in`.
        op: CompareOp,
        /// The left operand.
        lhs: Term,
        /// The right operand.
        rhs: Term,
    },
    /// `not expr`.
    Not(Box<PolicyExpr>),
    /// `lhs & rhs`, `lhs | rhs`, `lhs -> rhs`.
    Binary {
        /// The connective.
        op: BinaryOp,
        /// The left operand.
        lhs: Box<PolicyExpr>,
        /// The right operand.
        rhs: Box<PolicyExpr>,
    },
    /// `exists Model: body` or `forall Model: body`; inside `body`,
    /// `Model.field` refers to the object the quantifier ranges over.
    Quantified {
        /// `exists` or `forall`.
        quantifier: Quantifier,
        /// The model ranged over, which is also the bound name.
        model: String,
        /// The condition.
        body: Box<PolicyExpr>,
    },
    /// `( expr )`: kept so that the source, and the original parser's tree
    /// shape, can be rebuilt; it means the same as `expr`.
    Group(Box<PolicyExpr>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    /// `=`: equality (objects compare by model family and id).
    Eq,
    /// `in`: membership in a collection (`obj.slice in obj.network.permitted_slices.all()`).
    In,
}

impl CompareOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::In => "in",
        }
    }
}

/// Binary connectives, loosest first: `->` (right-associative), `|`, `&`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryOp {
    /// `&`: both.
    And,
    /// `|`: either.
    Or,
    /// `->`: if the left holds, the right must too.
    Implies,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::And => "&",
            BinaryOp::Or => "|",
            BinaryOp::Implies => "->",
        }
    }

    /// Binding strength in the original grammar (higher binds tighter).
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::Implies => 1,
            BinaryOp::Or => 2,
            BinaryOp::And => 3,
        }
    }
}

/// `exists` or `forall`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantifier {
    /// At least one object satisfies the body.
    Exists,
    /// Every object satisfies the body.
    Forall,
}

impl Quantifier {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Quantifier::Exists => "exists",
            Quantifier::Forall => "forall",
        }
    }
}

/// An operand: a reference, a constant, a policy call or a Python escape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// What the term is.
    pub kind: TermKind,
    /// Where it starts.
    pub location: Location,
}

/// The kinds of term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermKind {
    /// A dotted reference: `obj.site.id`, `ctx.user.is_admin`,
    /// `Privilege.object_id`.
    Path(PolicyPath),
    /// A double-quoted string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    Null,
    /// `*policy(field)`: the named policy, applied to the object that
    /// `field` of `obj` links to; a link that is not set grants access, as
    /// in the original.
    Call {
        /// The policy called.
        policy: String,
        /// The link followed from `obj` (`site`, `network.owner`).
        arg: PolicyPath,
    },
    /// `{{ python expression }}`: kept as text (without the braces);
    /// syncplane cannot evaluate it.
    Python(String),
}

/// A dotted name, e.g. `obj.network.permitted_slices.all()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPath {
    /// The names between the dots: `["obj", "network", "permitted_slices", "all"]`.
    pub segments: Vec<String>,
    /// Whether the last segment is a method call (`all()`).
    pub call: bool,
}

impl PolicyPath {
    /// The path as written.
    pub fn text(&self) -> String {
        let mut out = self.segments.join(".");
        if self.call {
            out.push_str("()");
        }
        out
    }
}

impl Term {
    /// The term in the original parser's JSON shape: paths, numbers and
    /// constants as their text (strings keep their double quotes), calls as
    /// `{"policy": [name, arg]}`, escapes as `{"python": text}`. Numbers are
    /// written canonically (`+1` as `1`, `2.50` as `2.5`), where the
    /// original kept them as typed.
    pub fn to_original_json(&self) -> Json {
        match &self.kind {
            TermKind::Path(p) => Json::String(p.text()),
            TermKind::Str(s) => Json::String(format!(
                "\"{}\"",
                s.replace('\\', "\\\\").replace('"', "\\\"")
            )),
            TermKind::Int(i) => Json::String(i.to_string()),
            TermKind::Float(_) => Json::String(self.to_string()),
            TermKind::Bool(true) => Json::String("True".into()),
            TermKind::Bool(false) => Json::String("False".into()),
            TermKind::Null => Json::String("None".into()),
            TermKind::Call { policy, arg } => json!({ "policy": [policy, arg.text()] }),
            TermKind::Python(text) => json!({ "python": text }),
        }
    }
}

/// One element of an expression flattened back into source order.
enum Item {
    Atom(Json),
    Not,
    Quant(Quantifier, String),
    Op(BinaryOp),
    Open,
    Close,
}

impl PolicyExpr {
    /// The policies this expression calls (`*name(...)`), in source order,
    /// repeats included.
    pub fn calls(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_calls(&mut out);
        out
    }

    fn collect_calls<'a>(&'a self, out: &mut Vec<&'a str>) {
        let term = |t: &'a Term, out: &mut Vec<&'a str>| {
            if let TermKind::Call { policy, .. } = &t.kind {
                out.push(policy);
            }
        };
        match &self.kind {
            ExprKind::Term(t) => term(t, out),
            ExprKind::Compare { lhs, rhs, .. } => {
                term(lhs, out);
                term(rhs, out);
            }
            ExprKind::Not(e) | ExprKind::Group(e) => e.collect_calls(out),
            ExprKind::Quantified { body, .. } => body.collect_calls(out),
            ExprKind::Binary { lhs, rhs, .. } => {
                lhs.collect_calls(out);
                rhs.collect_calls(out);
            }
        }
    }

    /// The expression as the original parser's tree (xosgenx/plyxproto), the
    /// shape of `policies` in the original IR: `{"|": [a, b]}`,
    /// `{"not": a}`, `{"=": [a, b]}`, `{"exists": ["Privilege", a]}`,
    /// `{"policy": ["slice_policy", "owner"]}`, terms as text.
    ///
    /// The original parser bound `exists`/`forall` tighter than `&`, `|`
    /// and `->` (so `exists P: A & B` became `{"&": [{"exists": ["P", A]}, B]}`).
    /// To reproduce that exactly, the expression is flattened back into
    /// source order (groups keep their parentheses) and re-read with the
    /// original precedences.
    pub fn to_original_json(&self) -> Json {
        let mut items = Vec::new();
        self.flatten(&mut items);
        let mut reader = OriginalReader {
            items: &items,
            pos: 0,
        };
        reader.expr(0)
    }

    fn flatten(&self, out: &mut Vec<Item>) {
        match &self.kind {
            ExprKind::Term(t) => out.push(Item::Atom(t.to_original_json())),
            ExprKind::Compare { op, lhs, rhs } => out.push(Item::Atom(json!({
                op.symbol(): [lhs.to_original_json(), rhs.to_original_json()]
            }))),
            ExprKind::Not(e) => {
                out.push(Item::Not);
                e.flatten(out);
            }
            ExprKind::Binary { op, lhs, rhs } => {
                lhs.flatten(out);
                out.push(Item::Op(*op));
                rhs.flatten(out);
            }
            ExprKind::Quantified {
                quantifier,
                model,
                body,
            } => {
                out.push(Item::Quant(*quantifier, model.clone()));
                body.flatten(out);
            }
            ExprKind::Group(e) => {
                out.push(Item::Open);
                e.flatten(out);
                out.push(Item::Close);
            }
        }
    }
}

/// Precedence climbing over flattened items, with the original grammar's
/// precedences: `->` (right) < `|` < `&` < quantifiers < `not`.
struct OriginalReader<'a> {
    items: &'a [Item],
    pos: usize,
}

impl OriginalReader<'_> {
    fn expr(&mut self, min_precedence: u8) -> Json {
        let mut lhs = self.unary();
        while let Some(Item::Op(op)) = self.items.get(self.pos) {
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            self.pos += 1;
            let next_min = if *op == BinaryOp::Implies {
                precedence
            } else {
                precedence + 1
            };
            let rhs = self.expr(next_min);
            lhs = json!({ op.symbol(): [lhs, rhs] });
        }
        lhs
    }

    fn unary(&mut self) -> Json {
        let item = self.items.get(self.pos);
        self.pos += 1;
        match item {
            Some(Item::Atom(j)) => j.clone(),
            Some(Item::Not) => json!({ "not": self.unary() }),
            Some(Item::Quant(q, model)) => json!({ q.keyword(): [model, self.unary()] }),
            Some(Item::Open) => {
                let inner = self.expr(0);
                // The items come from a well-formed tree: a `Close` follows.
                self.pos += 1;
                inner
            }
            // Unreachable for items flattened from a tree.
            Some(Item::Op(_)) | Some(Item::Close) | None => Json::Null,
        }
    }
}
