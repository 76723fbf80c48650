//! Values, rows and row conditions.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::backend::Dialect;

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
    /// `column < value`.
    Less(String, SqlValue),
    /// `column > value`.
    Greater(String, SqlValue),
    /// `column IS NOT NULL`.
    NotNull(String),
    /// The text column contains `text`: case-sensitive (`instr`), or
    /// ignoring ASCII case (`LIKE` with `%`, `_` and `\` in `text`
    /// escaped, so they match themselves).
    Contains {
        /// The column.
        column: String,
        /// What it must contain.
        text: String,
        /// Whether ASCII case is ignored.
        ignore_case: bool,
    },
    /// A fixed predicate written by the caller, rendered verbatim (no bound
    /// values). Used where the text must equal a partial index's `WHERE`
    /// so that SQLite picks the index; never build it from user input.
    Sql(&'static str),
}

impl Condition {
    pub(crate) fn render(&self, dialect: Dialect, sql: &mut String, binds: &mut Vec<SqlValue>) {
        use crate::schema::quote;
        // A comparison with NULL is never true; PostgreSQL would also
        // refuse a bigint-typed NULL against a text column.
        if let Condition::Eq(_, SqlValue::Null)
        | Condition::AtMost(_, SqlValue::Null)
        | Condition::AtLeast(_, SqlValue::Null)
        | Condition::Less(_, SqlValue::Null)
        | Condition::Greater(_, SqlValue::Null) = self
        {
            sql.push_str(dialect.boolean(false));
            return;
        }
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
            Condition::Less(c, v) => {
                sql.push_str(&format!("{} < ?", quote(c)));
                binds.push(v.clone());
            }
            Condition::Greater(c, v) => {
                sql.push_str(&format!("{} > ?", quote(c)));
                binds.push(v.clone());
            }
            Condition::NotNull(c) => sql.push_str(&format!("{} IS NOT NULL", quote(c))),
            Condition::Contains {
                column,
                text,
                ignore_case: false,
            } => {
                let find = match dialect {
                    Dialect::Sqlite => "instr",
                    Dialect::Postgres => "strpos",
                };
                sql.push_str(&format!("{find}({}, ?) > 0", quote(column)));
                binds.push(SqlValue::Text(text.clone()));
            }
            Condition::Contains {
                column,
                text,
                ignore_case: true,
            } => {
                // SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does.
                let like = match dialect {
                    Dialect::Sqlite => "LIKE",
                    Dialect::Postgres => "ILIKE",
                };
                sql.push_str(&format!("{} {like} ? ESCAPE '\\'", quote(column)));
                binds.push(SqlValue::Text(format!("%{}%", like_escape(text))));
            }
            Condition::ColumnLess(a, b) => sql.push_str(&format!("{} < {}", quote(a), quote(b))),
            Condition::Sql(predicate) => {
                sql.push('(');
                sql.push_str(predicate);
                sql.push(')');
            }
            Condition::In(c, values) => {
                let values: Vec<&SqlValue> =
                    values.iter().filter(|v| **v != SqlValue::Null).collect();
                if values.is_empty() {
                    sql.push_str(dialect.boolean(false));
                    return;
                }
                sql.push_str(&format!("{} IN (", quote(c)));
                for (i, v) in values.into_iter().enumerate() {
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
                    c.render(dialect, sql, binds);
                }
                if all.is_empty() {
                    sql.push_str(dialect.boolean(false));
                }
                sql.push(')');
            }
        }
    }
}

/// `text` with `LIKE`'s wildcards (`%`, `_`) and the escape character
/// (`\`) escaped by `\`, so that it matches itself under `ESCAPE '\'`.
pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl SqlValue {
    /// Compares two values as SQLite's `ORDER BY` does with the `BINARY`
    /// collation: `NULL` first, then numbers (integers and reals by
    /// value), then text byte by byte.
    pub fn sql_cmp(&self, other: &SqlValue) -> Ordering {
        fn class(v: &SqlValue) -> u8 {
            match v {
                SqlValue::Null => 0,
                SqlValue::Integer(_) | SqlValue::Real(_) => 1,
                SqlValue::Text(_) => 2,
            }
        }
        match (self, other) {
            (SqlValue::Integer(a), SqlValue::Integer(b)) => a.cmp(b),
            (SqlValue::Integer(a), SqlValue::Real(b)) => cmp_int_real(*a, *b),
            (SqlValue::Real(a), SqlValue::Integer(b)) => cmp_int_real(*b, *a).reverse(),
            (SqlValue::Real(a), SqlValue::Real(b)) => a.total_cmp(b),
            (SqlValue::Text(a), SqlValue::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (a, b) => class(a).cmp(&class(b)),
        }
    }
}

/// An integer against a real, by value. Beyond 2^53 the cast rounds, which
/// only matters for values no field of ours holds.
fn cmp_int_real(a: i64, b: f64) -> Ordering {
    (a as f64).total_cmp(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(condition: &Condition) -> (String, Vec<SqlValue>) {
        let mut sql = String::new();
        let mut binds = Vec::new();
        condition.render(Dialect::Sqlite, &mut sql, &mut binds);
        (sql, binds)
    }

    #[test]
    fn contains_ignoring_case_escapes_like_wildcards() {
        let (sql, binds) = rendered(&Condition::Contains {
            column: "name".into(),
            text: r"50%_a\b".into(),
            ignore_case: true,
        });
        assert_eq!(sql, r#""name" LIKE ? ESCAPE '\'"#);
        assert_eq!(binds, [SqlValue::Text(r"%50\%\_a\\b%".into())]);
        let (sql, binds) = rendered(&Condition::Contains {
            column: "name".into(),
            text: "50%".into(),
            ignore_case: false,
        });
        assert_eq!(sql, r#"instr("name", ?) > 0"#);
        assert_eq!(binds, [SqlValue::Text("50%".into())]);
    }

    #[test]
    fn values_compare_as_sqlite_orders_them() {
        use SqlValue::*;
        let mut values = vec![
            Text("b".into()),
            Real(2.5),
            Null,
            Integer(3),
            Text("B".into()),
            Integer(-1),
            Real(2.0),
            Integer(2),
        ];
        values.sort_by(SqlValue::sql_cmp);
        assert_eq!(
            values,
            [
                Null,
                Integer(-1),
                Real(2.0),
                Integer(2),
                Real(2.5),
                Integer(3),
                Text("B".into()),
                Text("b".into())
            ]
        );
    }
}
