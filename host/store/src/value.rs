//! Values, rows and row conditions.

use std::collections::BTreeMap;

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
}

/// A row: column name to value. `id` is passed separately.
pub type Row = BTreeMap<String, SqlValue>;

/// A condition on a row, rendered to a SQL `WHERE` clause with bound values.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `column = value`.
    Eq(String, SqlValue),
    /// `column IS NULL`.
    IsNull(String),
    /// `lower(column) = lower(text)`: equal ignoring ASCII case.
    EqIgnoreCase(String, String),
    /// `column <= value`.
    AtMost(String, SqlValue),
    /// `column >= value`.
    AtLeast(String, SqlValue),
    /// `left < right`, two columns.
    ColumnLess(String, String),
    /// Any of the conditions holds.
    Any(Vec<Condition>),
    /// `column IN (values...)`; false when `values` is empty. Keep the
    /// values under SQLite's 32,766 bound parameters per statement.
    In(String, Vec<SqlValue>),
    /// A fixed predicate written by the caller, rendered verbatim (no bound
    /// values). Used where the text must equal a partial index's `WHERE`
    /// so that SQLite picks the index; never build it from user input.
    Sql(&'static str),
}

impl Condition {
    pub(crate) fn render(&self, sql: &mut String, binds: &mut Vec<SqlValue>) {
        use crate::schema::quote;
        match self {
            Condition::Eq(c, v) => {
                sql.push_str(&format!("{} = ?", quote(c)));
                binds.push(v.clone());
            }
            Condition::IsNull(c) => sql.push_str(&format!("{} IS NULL", quote(c))),
            Condition::EqIgnoreCase(c, text) => {
                sql.push_str(&format!("lower({}) = lower(?)", quote(c)));
                binds.push(SqlValue::Text(text.clone()));
            }
            Condition::AtMost(c, v) => {
                sql.push_str(&format!("{} <= ?", quote(c)));
                binds.push(v.clone());
            }
            Condition::AtLeast(c, v) => {
                sql.push_str(&format!("{} >= ?", quote(c)));
                binds.push(v.clone());
            }
            Condition::ColumnLess(a, b) => sql.push_str(&format!("{} < {}", quote(a), quote(b))),
            Condition::Sql(predicate) => {
                sql.push('(');
                sql.push_str(predicate);
                sql.push(')');
            }
            Condition::In(c, values) => {
                if values.is_empty() {
                    sql.push('0');
                    return;
                }
                sql.push_str(&format!("{} IN (", quote(c)));
                for (i, v) in values.iter().enumerate() {
                    sql.push_str(if i == 0 { "?" } else { ", ?" });
                    binds.push(v.clone());
                }
                sql.push(')');
            }
            Condition::Any(all) => {
                sql.push('(');
                for (i, c) in all.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(" OR ");
                    }
                    c.render(sql, binds);
                }
                if all.is_empty() {
                    sql.push('0');
                }
                sql.push(')');
            }
        }
    }
}
