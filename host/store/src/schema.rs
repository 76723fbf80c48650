//! Table descriptions.

use crate::backend::Dialect;
use crate::value::SqlValue;

/// The SQL storage class of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// 64-bit integers (also booleans as 0/1).
    Integer,
    /// Floating point numbers.
    Real,
    /// UTF-8 text.
    Text,
}

impl ColumnType {
    /// The type's name in SQL (`INTEGER`, `REAL`, `TEXT`).
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Integer => "INTEGER",
            ColumnType::Real => "REAL",
            ColumnType::Text => "TEXT",
        }
    }
}

/// One column of a table. Every column is nullable: required-ness is
/// checked by the layer that knows the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name; must be a plain identifier.
    pub name: String,
    /// Storage class.
    pub ty: ColumnType,
    /// Whether to keep an index on the column.
    pub indexed: bool,
    /// The value rows that exist when the column is added get.
    pub default: Option<SqlValue>,
}

/// An index over the rows that satisfy a predicate, so that a query for
/// those rows costs what they are, not what the table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialIndex {
    /// Suffix of the index name (the table name is prepended).
    pub name: String,
    /// The indexed columns.
    pub columns: Vec<String>,
    /// The `WHERE` predicate. A query uses the index only when it contains
    /// this exact text as a term: pass it as [`crate::Condition::Sql`].
    pub predicate: &'static str,
    /// Whether no two rows meeting the predicate may share the columns'
    /// values (NULLs aside): a write that would is refused by the
    /// database ([`crate::Error::Unique`]), so concurrent writers cannot
    /// both win.
    pub unique: bool,
}

/// A table of one model: an `id` primary key plus the given columns.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// Table name; must be a plain identifier.
    pub name: String,
    /// The columns other than `id`.
    pub columns: Vec<Column>,
    /// Indexes over subsets of the rows.
    pub partial_indexes: Vec<PartialIndex>,
}

impl TableSpec {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub(crate) fn create_sql(&self, dialect: Dialect) -> String {
        let mut sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (id {}",
            quote(&self.name),
            dialect.row_key()
        );
        for column in &self.columns {
            sql.push_str(&format!(
                ", {} {}",
                quote(&column.name),
                dialect.column_type(column.ty)
            ));
        }
        sql.push(')');
        sql
    }

    pub(crate) fn add_column_sql(&self, dialect: Dialect, column: &Column) -> String {
        format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            quote(&self.name),
            quote(&column.name),
            dialect.column_type(column.ty)
        )
    }

    pub(crate) fn index_sql(&self, dialect: Dialect, column: &Column) -> String {
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
            quote(&index_name(dialect, &self.name, &column.name)),
            quote(&self.name),
            quote(&column.name)
        )
    }
}

impl PartialIndex {
    pub(crate) fn create_sql(&self, dialect: Dialect, table: &str) -> String {
        let columns: Vec<String> = self.columns.iter().map(|c| quote(c)).collect();
        format!(
            "CREATE {}INDEX IF NOT EXISTS {} ON {} ({}) WHERE {}",
            if self.unique { "UNIQUE " } else { "" },
            quote(&index_name(dialect, table, &self.name)),
            quote(table),
            columns.join(", "),
            self.predicate
        )
    }
}

/// The name of index `suffix` of `table`: `table__suffix`, or, where the
/// engine would cut it (PostgreSQL keeps 63 bytes), its head and a hash
/// of the whole, so that two long names never become one.
pub(crate) fn index_name(dialect: Dialect, table: &str, suffix: &str) -> String {
    let name = format!("{table}__{suffix}");
    let max = dialect.max_identifier();
    if name.len() <= max {
        return name;
    }
    let tag = format!("_{:016x}", stable_hash(&name));
    let mut head = max - tag.len();
    while !name.is_char_boundary(head) {
        head -= 1;
    }
    format!("{}{tag}", &name[..head])
}

/// FNV-1a of `text`: stable across builds and platforms, unlike std's
/// hasher, so every host computes the same.
pub(crate) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Quotes an identifier for SQL.
pub(crate) fn quote(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    push_quoted(&mut out, ident);
    out
}

/// Appends `ident`, quoted, to `sql`: [`quote`] without an allocation of
/// its own, for statements built on every request.
pub(crate) fn push_quoted(sql: &mut String, ident: &str) {
    sql.push('"');
    for c in ident.chars() {
        if c == '"' {
            sql.push('"');
        }
        sql.push(c);
    }
    sql.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_inner_quotes() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn create_sql_quotes_identifiers() {
        let spec = TableSpec {
            name: "m_service".into(),
            columns: vec![Column {
                name: "name".into(),
                ty: ColumnType::Text,
                indexed: false,
                default: None,
            }],
            partial_indexes: Vec::new(),
        };
        assert_eq!(
            spec.create_sql(Dialect::Sqlite),
            "CREATE TABLE IF NOT EXISTS \"m_service\" (id INTEGER PRIMARY KEY, \"name\" TEXT)"
        );
        assert_eq!(
            spec.create_sql(Dialect::Postgres),
            "CREATE TABLE IF NOT EXISTS \"m_service\" (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \"name\" TEXT COLLATE \"C\")"
        );
    }

    #[test]
    fn long_index_names_stay_distinct_within_postgres_limit() {
        let table = "m_".to_owned() + &"a".repeat(50);
        let one = index_name(Dialect::Postgres, &table, "backend_status_and_more");
        let two = index_name(Dialect::Postgres, &table, "backend_status_and_less");
        assert!(one.len() <= 63 && two.len() <= 63, "{one} {two}");
        assert_ne!(one, two);
        assert_eq!(
            index_name(Dialect::Postgres, "m_site", "name"),
            "m_site__name"
        );
        assert_eq!(
            index_name(Dialect::Sqlite, &table, "backend_status_and_more"),
            format!("{table}__backend_status_and_more")
        );
    }
}
