//! Ordered reads a page at a time: `ORDER BY` the caller's keys and a
//! keyset ("the rows after this one") instead of `OFFSET`, so that a page
//! deep into a table costs what the first one does and rows created or
//! deleted between two pages neither repeat nor go missing.

use crate::backend::Dialect;
use crate::error::Result;
use crate::schema::{TableSpec, push_quoted, quote};
use crate::store::{Store, StoreTx, decode_values};
use crate::value::{Condition, SqlValue};

/// One key of an ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    /// The column (`id` included).
    pub column: String,
    /// Largest first. SQLite puts `NULL` first in ascending order and last
    /// in descending order; [`SqlValue::sql_cmp`] agrees.
    pub descending: bool,
}

impl OrderKey {
    /// Ascending on `column`.
    pub fn asc(column: impl Into<String>) -> Self {
        OrderKey {
            column: column.into(),
            descending: false,
        }
    }

    /// Descending on `column`.
    pub fn desc(column: impl Into<String>) -> Self {
        OrderKey {
            column: column.into(),
            descending: true,
        }
    }
}

/// What [`StoreTx::select_page`] reads.
///
/// # Assumptions
///
/// `order` is a total order: its last key is a unique column (`id`).
/// Otherwise rows equal on every key may be skipped or repeated between
/// pages.
#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    /// Rows must match all of these.
    pub conditions: &'a [Condition],
    /// The order, ending with a unique column.
    pub order: &'a [OrderKey],
    /// Only rows after the row whose key values (one per key of `order`)
    /// these are; from the first row when `None`.
    pub after: Option<&'a [SqlValue]>,
    /// At most this many rows.
    pub limit: u32,
}

impl PageQuery<'_> {
    fn sql(&self, dialect: Dialect, spec: &TableSpec) -> (String, Vec<SqlValue>) {
        // About 30 bytes a column: one allocation for the whole statement.
        let mut sql = String::with_capacity(64 + 32 * spec.columns.len());
        sql.push_str("SELECT id");
        for column in &spec.columns {
            sql.push_str(", ");
            push_quoted(&mut sql, &column.name);
        }
        sql.push_str(" FROM ");
        push_quoted(&mut sql, &spec.name);
        let mut binds = Vec::new();
        let mut terms = 0;
        let mut and = |sql: &mut String| {
            sql.push_str(if terms == 0 { " WHERE " } else { " AND " });
            terms += 1;
        };
        for condition in self.conditions {
            and(&mut sql);
            condition.render(dialect, &mut sql, &mut binds);
        }
        if let Some(after) = self.after {
            // A bound on the first key alone lets SQLite seek in an index
            // on it; the exact "after" comes next. (On a single key, the
            // "after" is that bound already.)
            if let (Some(first), Some(value)) = (self.order.first(), after.first())
                && self.order.len() > 1
                && !first.descending
                && *value != SqlValue::Null
            {
                and(&mut sql);
                sql.push_str(&format!("{} >= ?", quote(&first.column)));
                binds.push(value.clone());
            }
            and(&mut sql);
            let leading = if dialect == Dialect::Sqlite && self.steers_to_a_range_index(spec) {
                Leading::Unindexed
            } else {
                Leading::Plain
            };
            after_sql(dialect, self.order, after, leading, &mut sql, &mut binds);
        }
        sql.push_str(" ORDER BY ");
        let keys: Vec<String> = self
            .order
            .iter()
            .map(|k| {
                // PostgreSQL sorts NULL last ascending; SQLite (and
                // `SqlValue::sql_cmp`) first.
                let direction = match (dialect, k.descending) {
                    (Dialect::Sqlite, false) => "ASC",
                    (Dialect::Sqlite, true) => "DESC",
                    (Dialect::Postgres, false) => "ASC NULLS FIRST",
                    (Dialect::Postgres, true) => "DESC NULLS LAST",
                };
                format!("{} {direction}", quote(&k.column))
            })
            .collect();
        sql.push_str(&keys.join(", "));
        sql.push_str(&format!(" LIMIT {}", self.limit));
        (sql, binds)
    }
}

impl PageQuery<'_> {
    /// Whether the page is in `id` order alone and a condition bounds an
    /// indexed column by a range. SQLite (without statistics) then prefers
    /// to walk the table from the cursor's id on, in id order, testing
    /// each row — which reads the whole rest of the table when few rows
    /// match — over reading the range from the column's index and sorting
    /// it. Writing the cursor's term `+id > ?` takes the walk off the
    /// table, so a filtered page costs what matches, not what follows.
    /// (Equalities need nothing: SQLite seeks `column = ? AND rowid > ?`.)
    fn steers_to_a_range_index(&self, spec: &TableSpec) -> bool {
        let [only] = self.order else {
            return false;
        };
        only.column == "id"
            && self.conditions.iter().any(|c| match c {
                Condition::Less(column, _)
                | Condition::Greater(column, _)
                | Condition::AtMost(column, _)
                | Condition::AtLeast(column, _) => spec.column(column).is_some_and(|c| c.indexed),
                _ => false,
            })
    }
}

/// How the first key's column is written in the "after" term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leading {
    /// As is: SQLite may seek on it.
    Plain,
    /// `+column`: SQLite may not use an index (or the rowid) for it.
    Unindexed,
}

/// The rows after `values` in `order`: nested as `(k1 > v1 OR (k1 IS v1
/// AND (k2 > v2 OR ...)))`, with `NULL`s where SQLite sorts them (first
/// ascending, last descending). Fewer values than keys compare the
/// leading keys only.
fn after_sql(
    dialect: Dialect,
    order: &[OrderKey],
    values: &[SqlValue],
    leading: Leading,
    sql: &mut String,
    binds: &mut Vec<SqlValue>,
) {
    let pairs: Vec<(&OrderKey, &SqlValue)> = order.iter().zip(values).collect();
    let Some(((key, value), rest)) = pairs.split_first() else {
        sql.push_str(dialect.boolean(true));
        return;
    };
    let column = match leading {
        Leading::Plain => quote(&key.column),
        Leading::Unindexed => format!("+{}", quote(&key.column)),
    };
    sql.push('(');
    match (key.descending, value) {
        (false, SqlValue::Null) => sql.push_str(&format!("{column} IS NOT NULL")),
        (false, value) => {
            sql.push_str(&format!("{column} > ?"));
            binds.push((*value).clone());
        }
        // Nothing sorts after NULL in descending order but other NULLs.
        (true, SqlValue::Null) => sql.push_str(dialect.boolean(false)),
        (true, value) => {
            sql.push_str(&format!("{column} < ? OR {column} IS NULL"));
            binds.push((*value).clone());
        }
    }
    if !rest.is_empty() {
        // `IS NULL` rather than a NULL bind: PostgreSQL types a bound NULL,
        // and a bigint NULL does not compare with a text column.
        if **value == SqlValue::Null {
            sql.push_str(&format!(" OR ({column} IS NULL AND "));
        } else {
            sql.push_str(&format!(" OR ({column} {} ? AND ", dialect.is()));
            binds.push((*value).clone());
        }
        let (keys, values): (Vec<OrderKey>, Vec<SqlValue>) = rest
            .iter()
            .map(|(k, v)| ((*k).clone(), (*v).clone()))
            .unzip();
        after_sql(dialect, &keys, &values, Leading::Plain, sql, binds);
        sql.push(')');
    }
    sql.push(')');
}

impl Store {
    /// [`StoreTx::select_page`] outside a transaction, on a read-only
    /// connection where the store has them ([`Store::begin_read`]): one
    /// statement, one snapshot, and no `BEGIN`/`ROLLBACK` round trips.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Query`] when the statement fails.
    pub async fn select_page(
        &self,
        spec: &TableSpec,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(i64, Vec<SqlValue>)>> {
        let (sql, binds) = query.sql(self.dialect(), spec);
        self.read_pool()
            .fetch(&sql, &binds, |r| decode_values(spec, r))
            .await
    }
}

impl StoreTx {
    /// Reads up to `query.limit` rows of `spec` matching `query.conditions`,
    /// in `query.order`, after `query.after`: each row's values in the order
    /// of `spec.columns`, as [`StoreTx::select_values`] gives them.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Query`] when the statement fails.
    pub async fn select_page(
        &mut self,
        spec: &TableSpec,
        query: &PageQuery<'_>,
    ) -> Result<Vec<(i64, Vec<SqlValue>)>> {
        let (sql, binds) = query.sql(self.dialect(), spec);
        self.conn
            .fetch(&sql, &binds, |r| decode_values(spec, r))
            .await
    }

    /// SQLite's plan for [`StoreTx::select_page`], one line per step: lets
    /// tests check that a filtered page is read through an index.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Query`] when the statement fails.
    pub async fn select_page_plan(
        &mut self,
        spec: &TableSpec,
        query: &PageQuery<'_>,
    ) -> Result<Vec<String>> {
        let (sql, binds) = query.sql(self.dialect(), spec);
        self.plan(&sql, &binds).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, ColumnType};
    use crate::{Row, Store};

    fn spec() -> TableSpec {
        let column = |name: &str, ty, indexed| Column {
            name: name.into(),
            ty,
            indexed,
            default: None,
        };
        TableSpec {
            name: "m_item".into(),
            columns: vec![
                column("name", ColumnType::Text, true),
                column("size", ColumnType::Integer, false),
                column("owner_id", ColumnType::Integer, true),
            ],
            partial_indexes: Vec::new(),
        }
    }

    /// 30 rows: names with gaps and NULLs, sizes repeating, two owners.
    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        store.ensure_table(&spec()).await.expect("table");
        let mut tx = store.begin().await.expect("begin");
        for id in 1..=30_i64 {
            let name = if id % 7 == 0 {
                SqlValue::Null
            } else {
                SqlValue::Text(format!("n{:02}", (id * 13) % 31))
            };
            let size = if id % 5 == 0 {
                SqlValue::Null
            } else {
                SqlValue::Integer(id % 4)
            };
            let row = Row::from([
                ("name".to_owned(), name),
                ("size".to_owned(), size),
                ("owner_id".to_owned(), SqlValue::Integer(id % 2)),
            ]);
            tx.insert(&spec(), id, &row).await.expect("insert");
        }
        tx.commit().await.expect("commit");
        (dir, store)
    }

    /// Every row in `order` read `per_page` at a time, following the keys
    /// of each page's last row.
    async fn paged(
        store: &Store,
        order: &[OrderKey],
        conditions: &[Condition],
        per_page: u32,
    ) -> Vec<i64> {
        let spec = spec();
        let at = |column: &str| spec.columns.iter().position(|c| c.name == column);
        let mut tx = store.begin().await.expect("begin");
        let mut after: Option<Vec<SqlValue>> = None;
        let mut ids = Vec::new();
        loop {
            let query = PageQuery {
                conditions,
                order,
                after: after.as_deref(),
                limit: per_page,
            };
            let rows = tx.select_page(&spec, &query).await.expect("page");
            let Some((id, values)) = rows.last() else {
                return ids;
            };
            after = Some(
                order
                    .iter()
                    .map(|k| match at(&k.column) {
                        Some(i) => values[i].clone(),
                        None => SqlValue::Integer(*id),
                    })
                    .collect(),
            );
            ids.extend(rows.iter().map(|(id, _)| *id));
        }
    }

    #[tokio::test]
    async fn pages_in_any_order_with_nulls_cover_every_row_once_in_sqlite_order() {
        let (_dir, store) = store().await;
        let orders = [
            vec![OrderKey::asc("id")],
            vec![OrderKey::desc("id")],
            vec![OrderKey::asc("name"), OrderKey::asc("id")],
            vec![OrderKey::desc("name"), OrderKey::asc("id")],
            vec![
                OrderKey::asc("size"),
                OrderKey::desc("name"),
                OrderKey::asc("id"),
            ],
            vec![
                OrderKey::desc("size"),
                OrderKey::asc("name"),
                OrderKey::desc("id"),
            ],
        ];
        let spec = spec();
        let rows = store.select_values(&spec, &[], None).await.expect("rows");
        let key = |id: i64, values: &[SqlValue], column: &str| match spec
            .columns
            .iter()
            .position(|c| c.name == column)
        {
            Some(i) => values[i].clone(),
            None => SqlValue::Integer(id),
        };
        for order in &orders {
            let whole = paged(&store, order, &[], 1000).await;
            // SQLite's order is the one `sql_cmp` gives (merges rely on it).
            let mut sorted = rows.clone();
            sorted.sort_by(|(a, va), (b, vb)| {
                order
                    .iter()
                    .map(|k| {
                        let o = key(*a, va, &k.column).sql_cmp(&key(*b, vb, &k.column));
                        if k.descending { o.reverse() } else { o }
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let sorted: Vec<i64> = sorted.iter().map(|(id, _)| *id).collect();
            assert_eq!(whole, sorted, "{order:?}");
            for per_page in [1, 4, 7] {
                assert_eq!(
                    paged(&store, order, &[], per_page).await,
                    whole,
                    "{order:?} by {per_page}"
                );
            }
        }
        // With a filter, only matching rows, in the same order.
        let owner = [Condition::Eq("owner_id".into(), SqlValue::Integer(1))];
        let order = [OrderKey::desc("size"), OrderKey::asc("id")];
        let odd = paged(&store, &order, &owner, 3).await;
        let all = paged(&store, &order, &[], 1000).await;
        let expected: Vec<i64> = all.into_iter().filter(|id| id % 2 == 1).collect();
        assert_eq!(odd, expected);
    }

    #[tokio::test]
    async fn a_filtered_page_is_read_through_the_index_of_the_filtered_column() {
        let (_dir, store) = store().await;
        let mut tx = store.begin().await.expect("begin");
        let order = [OrderKey::asc("id")];
        let after = [SqlValue::Integer(10)];
        for conditions in [
            vec![Condition::Eq("owner_id".into(), SqlValue::Integer(1))],
            vec![
                Condition::AtLeast("name".into(), SqlValue::Text("n10".into())),
                Condition::Less("name".into(), SqlValue::Text("n12".into())),
            ],
            vec![Condition::In(
                "name".into(),
                vec![SqlValue::Text("n01".into()), SqlValue::Text("n02".into())],
            )],
        ] {
            let query = PageQuery {
                conditions: &conditions,
                order: &order,
                after: Some(&after),
                limit: 101,
            };
            let plan = tx.select_page_plan(&spec(), &query).await.expect("plan");
            assert!(
                plan.iter().any(|step| step.contains("USING INDEX")),
                "{conditions:?}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "{conditions:?}: {plan:?}"
            );
        }
        // Ordered by an indexed column: the index gives the order.
        let order = [OrderKey::asc("name"), OrderKey::asc("id")];
        let query = PageQuery {
            conditions: &[],
            order: &order,
            after: Some(&[SqlValue::Text("n05".into()), SqlValue::Integer(3)]),
            limit: 101,
        };
        let plan = tx.select_page_plan(&spec(), &query).await.expect("plan");
        assert!(
            plan.iter().any(|step| step.contains("m_item__name")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }
}
