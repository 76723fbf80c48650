//! The audit log: one entry per write, in the write's own transaction.
//!
//! Every create, update, delete and feedback write through [`CoreTx`]
//! appends who made it ([`crate::Principal::describe`]), what, to which object, and
//! the fields it set, with passwords and secrets redacted. The entry
//! commits with the change or not at all: there is no change without its
//! record. Bookkeeping the engine writes (sync outcomes, purges) is not a
//! change of the model and is not audited.

use serde::Serialize;
use serde_json::{Map, Value};
use syncplane_store::{Column, ColumnType, Condition, Row, SqlValue, TableSpec};

use crate::core::{Core, CoreTx};
use crate::error::Result;
use crate::time::now_secs;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Entries one query returns at most.
pub const MAX_ENTRIES: u32 = 10_000;

const TABLE: &str = "sp_audit";

/// The audit table.
pub(crate) fn table_spec() -> TableSpec {
    let column = |name: &str, ty: ColumnType, indexed: bool| Column {
        name: name.to_owned(),
        ty,
        indexed,
        default: None,
    };
    TableSpec {
        name: TABLE.to_owned(),
        columns: vec![
            column("time", ColumnType::Real, true),
            column("principal", ColumnType::Text, true),
            column("operation", ColumnType::Text, false),
            column("model", ColumnType::Text, true),
            column("object_id", ColumnType::Integer, false),
            column("fields", ColumnType::Text, false),
        ],
        partial_indexes: Vec::new(),
    }
}

/// One audited write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// The entry's number, in the order of writes.
    pub id: i64,
    /// When, seconds since the epoch.
    pub time: f64,
    /// Who: `user <email>`, `service <name> step <step>` or `host`.
    pub principal: String,
    /// `create`, `update`, `delete` or `feedback`.
    pub operation: String,
    /// The object's model.
    pub model: String,
    /// The object's id.
    pub object_id: i64,
    /// The fields the write set (secrets redacted).
    pub fields: Map<String, Value>,
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only writes to this model.
    pub model: Option<String>,
    /// Only writes by this principal, as [`AuditEntry::principal`] says it
    /// (`user admin@opencord.org`); a bare e-mail means that user.
    pub principal: Option<String>,
    /// Only writes at or after this time (seconds since the epoch).
    pub since: Option<f64>,
    /// At most this many, oldest first (capped at [`MAX_ENTRIES`]).
    pub limit: Option<u32>,
}

/// Whether a field's value must not be written to the log.
pub(crate) fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token"]
        .iter()
        .any(|word| name.contains(word))
}

/// `fields` with secret values replaced by [`REDACTED`].
pub(crate) fn redacted(fields: Map<String, Value>) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(name, value)| {
            let value = if is_secret(&name) && !value.is_null() {
                Value::String(REDACTED.to_owned())
            } else {
                value
            };
            (name, value)
        })
        .collect()
}

impl CoreTx {
    /// Appends the audit entry of a write made in this transaction.
    pub(crate) async fn audit(
        &mut self,
        operation: &str,
        model: &str,
        object_id: i64,
        fields: Map<String, Value>,
    ) -> Result<()> {
        let row = Row::from([
            ("time".to_owned(), SqlValue::Real(now_secs())),
            (
                "principal".to_owned(),
                SqlValue::Text(self.actor().describe()),
            ),
            ("operation".to_owned(), SqlValue::Text(operation.to_owned())),
            ("model".to_owned(), SqlValue::Text(model.to_owned())),
            ("object_id".to_owned(), SqlValue::Integer(object_id)),
            (
                "fields".to_owned(),
                SqlValue::Text(Value::Object(redacted(fields)).to_string()),
            ),
        ]);
        self.store_tx().append(&table_spec(), &row).await?;
        Ok(())
    }
}

impl CoreTx {
    /// Appends the audit entries of writes of one `operation` to objects
    /// of `model` made in this transaction, several per statement:
    /// `entries` pairs an object id with the fields set.
    pub(crate) async fn audit_many(
        &mut self,
        operation: &str,
        model: &str,
        entries: impl IntoIterator<Item = (i64, Map<String, Value>)>,
    ) -> Result<()> {
        let time = SqlValue::Real(now_secs());
        let principal = SqlValue::Text(self.actor().describe());
        let operation = SqlValue::Text(operation.to_owned());
        let model = SqlValue::Text(model.to_owned());
        // Whether a name is secret, worked out once per field name.
        let mut secret: std::collections::HashMap<String, bool> = Default::default();
        let rows: Vec<Row> = entries
            .into_iter()
            .map(|(object_id, mut fields)| {
                for (name, value) in fields.iter_mut() {
                    let is = match secret.get(name) {
                        Some(&is) => is,
                        None => {
                            let is = is_secret(name);
                            secret.insert(name.clone(), is);
                            is
                        }
                    };
                    if is && !value.is_null() {
                        *value = Value::String(REDACTED.to_owned());
                    }
                }
                Row::from([
                    ("time".to_owned(), time.clone()),
                    ("principal".to_owned(), principal.clone()),
                    ("operation".to_owned(), operation.clone()),
                    ("model".to_owned(), model.clone()),
                    ("object_id".to_owned(), SqlValue::Integer(object_id)),
                    (
                        "fields".to_owned(),
                        SqlValue::Text(Value::Object(fields).to_string()),
                    ),
                ])
            })
            .collect();
        self.store_tx().insert_many(&table_spec(), &rows).await?;
        Ok(())
    }
}

impl Core {
    /// Audit entries matching `query`, oldest first.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut conditions = Vec::new();
        if let Some(model) = &query.model {
            conditions.push(Condition::Eq("model".into(), SqlValue::Text(model.clone())));
        }
        if let Some(principal) = &query.principal {
            let principal = if principal.contains(' ') {
                principal.clone()
            } else {
                format!("user {principal}")
            };
            conditions.push(Condition::Eq("principal".into(), SqlValue::Text(principal)));
        }
        if let Some(since) = query.since {
            conditions.push(Condition::AtLeast("time".into(), SqlValue::Real(since)));
        }
        let limit = query.limit.unwrap_or(MAX_ENTRIES).min(MAX_ENTRIES);
        let spec = table_spec();
        let rows = self
            .begin()
            .await?
            .store_tx()
            .select(&spec, &conditions, Some(limit))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, row)| {
                let text = |name: &str| match row.get(name) {
                    Some(SqlValue::Text(t)) => t.clone(),
                    _ => String::new(),
                };
                AuditEntry {
                    id,
                    time: match row.get("time") {
                        Some(SqlValue::Real(t)) => *t,
                        _ => 0.0,
                    },
                    principal: text("principal"),
                    operation: text("operation"),
                    model: text("model"),
                    object_id: match row.get("object_id") {
                        Some(SqlValue::Integer(i)) => *i,
                        _ => 0,
                    },
                    fields: serde_json::from_str(&text("fields")).unwrap_or_default(),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passwords_secrets_and_tokens_are_redacted() {
        let Value::Object(fields) = json!({
            "name": "n", "password": "p", "api_secret": "s", "Token": "t", "cleared_password": null,
        }) else {
            unreachable!()
        };
        let out = redacted(fields);
        assert_eq!(out["name"], "n");
        for name in ["password", "api_secret", "Token"] {
            assert_eq!(out[name], REDACTED, "{name}");
        }
        assert_eq!(out["cleared_password"], Value::Null);
    }
}
