//! The tables the store keeps for these models, as `host/core`'s registry
//! lays them out: one table `m_<model in lower case>` per concrete model,
//! inherited fields flattened into it, links as `<name>_id` columns, an
//! `id` shared with the `sp_objects` table, and the engine's internal
//! columns. `manytomany` links have no column.

use serde::Serialize;
use syncplane_xproto::{FieldType, ResolvedField, ResolvedSchema, ScalarType};

use crate::Dialect;
use crate::error::Result;
use crate::render::render;

/// Columns the engine keeps in every model table (see `host/core`'s
/// registry: change and enacted sequence numbers, retry bookkeeping).
const INTERNAL_COLUMNS: &[&str] = &["_change_seq", "_enacted_seq", "_next_retry", "_failures"];

#[derive(Serialize)]
struct Table {
    model: String,
    name: String,
    columns: Vec<Column>,
    indexes: Vec<Index>,
}

#[derive(Serialize)]
struct Column {
    name: String,
    ty: &'static str,
    comment: String,
}

#[derive(Serialize)]
struct Index {
    name: String,
    column: String,
}

#[derive(Clone, Copy)]
enum Storage {
    Integer,
    Real,
    Text,
}

impl Storage {
    fn sql(self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Storage::Integer, Dialect::Sqlite) => "INTEGER",
            (Storage::Real, Dialect::Sqlite) => "REAL",
            (Storage::Integer, Dialect::Postgres) => "BIGINT",
            (Storage::Real, Dialect::Postgres) => "DOUBLE PRECISION",
            (Storage::Text, _) => "TEXT",
        }
    }
}

/// Dates are strings in xproto and seconds since the epoch when stored.
fn storage(field: &ResolvedField) -> Storage {
    match &field.ty {
        FieldType::Link { .. } => Storage::Integer,
        FieldType::Scalar { .. } if field.option_str("content_type") == Some("date") => {
            Storage::Real
        }
        FieldType::Scalar { scalar } => match scalar {
            ScalarType::String => Storage::Text,
            ScalarType::Bool | ScalarType::Int => Storage::Integer,
            ScalarType::Float => Storage::Real,
        },
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub(crate) fn generate(ir: &ResolvedSchema, dialect: Dialect) -> Result<String> {
    let tables: Vec<Table> = ir
        .models
        .iter()
        .filter(|m| !m.is_abstract)
        .map(|m| {
            let name = format!("m_{}", m.name.to_ascii_lowercase());
            let mut columns = Vec::new();
            let mut indexes = Vec::new();
            for field in &m.fields {
                let Some(column) = &field.column else {
                    continue;
                };
                let comment = match &field.ty {
                    FieldType::Link { target, .. } => format!("{} -> {target}", field.origin),
                    FieldType::Scalar { .. } => field.origin.clone(),
                };
                columns.push(Column {
                    name: quote(column),
                    ty: storage(field).sql(dialect),
                    comment,
                });
                if field.flag("db_index") || field.link_target().is_some() {
                    indexes.push(Index {
                        name: quote(&format!("{name}__{column}")),
                        column: quote(column),
                    });
                }
            }
            for internal in INTERNAL_COLUMNS {
                columns.push(Column {
                    name: quote(internal),
                    ty: Storage::Integer.sql(dialect),
                    comment: "engine bookkeeping".into(),
                });
            }
            Table {
                model: m.name.clone(),
                name: quote(&name),
                columns,
                indexes,
            }
        })
        .collect();
    let dialect_name = match dialect {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
    };
    let id_type = Storage::Integer.sql(dialect);
    render(
        "sql",
        minijinja::context! { tables, dialect => dialect_name, id_type },
    )
}

#[cfg(test)]
mod tests {
    use crate::testing::hello;
    use crate::{Dialect, Target, generate};

    #[test]
    fn one_table_per_concrete_model_with_inherited_columns() {
        let (schema, files) = hello();
        let sql = generate(Target::Sql(Dialect::Sqlite), &schema, &files).expect("sql");
        assert!(
            sql.contains("CREATE TABLE IF NOT EXISTS \"m_helloworldserviceinstance\" (\n    id INTEGER PRIMARY KEY,"),
            "{sql}"
        );
        assert!(sql.contains("    \"hello_to\" TEXT,"), "{sql}");
        assert!(sql.contains("    \"owner_id\" INTEGER,"), "{sql}");
        assert!(sql.contains("    \"created\" REAL,"), "{sql}");
        assert!(
            sql.contains("    \"_failures\" INTEGER -- engine bookkeeping\n);"),
            "{sql}"
        );
        assert!(
            sql.contains("CREATE INDEX IF NOT EXISTS \"m_helloworldserviceinstance__greeter_id\" ON \"m_helloworldserviceinstance\" (\"greeter_id\");"),
            "{sql}"
        );
        let pg = generate(Target::Sql(Dialect::Postgres), &schema, &files).expect("sql");
        assert!(pg.contains("    id BIGINT PRIMARY KEY,"), "{pg}");
        assert!(pg.contains("    \"created\" DOUBLE PRECISION,"), "{pg}");
        assert!(pg.contains("    \"hello_to\" TEXT,"), "{pg}");
        assert!(!pg.contains("INTEGER"), "{pg}");
    }
}
