//! `unique` across a model's subclasses.
//!
//! Each concrete model has a table of its own, and its unique indexes hold
//! within that table (`registry::unique_indexes`). A unique field of a
//! concrete model with concrete subclasses (`Service.name`, which
//! `ExampleService` inherits) is unique across all of their tables, as in
//! Django, whose subclasses keep the base's fields in the base's table.
//! That part is checked here, after the write, in the same transaction: the
//! store's one connection serialises transactions, so no other writer can
//! slip in between the check and the commit.

use serde_json::Value;
use syncplane_store::Condition;
use syncplane_xproto::{Field, Schema};

use crate::core::CoreTx;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::registry::{LIVE, stored_fields, to_sql};

impl CoreTx {
    /// Refuses `object` (just written; `before` it, for an update) when a
    /// live object of another table of its unique fields' scope has the
    /// same values. Values an update leaves as they were are not checked.
    pub(crate) async fn check_unique_across(
        &mut self,
        before: Option<&Object>,
        object: &Object,
    ) -> Result<()> {
        if object.fields.get("deleted") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        let registry = std::sync::Arc::clone(self.registry_arc());
        let schema = registry.schema();
        for field in stored_fields(schema, &object.model) {
            let with: Vec<&str> = match field.option_str("unique_with") {
                Some(with) => with.split(',').map(str::trim).collect(),
                None if field.flag("unique") => Vec::new(),
                None => continue,
            };
            let others = other_tables(schema, &object.model, &field.name);
            if others.is_empty() {
                continue;
            }
            let mut key: Vec<&Field> = vec![field];
            key.extend(with.iter().filter_map(|w| {
                stored_fields(schema, &object.model)
                    .into_iter()
                    .find(|f| f.name == *w || f.column_name() == *w)
            }));
            let unchanged = before.is_some_and(|b| {
                key.iter()
                    .all(|f| b.fields.get(&f.column_name()) == object.fields.get(&f.column_name()))
            });
            if unchanged {
                continue;
            }
            let mut conditions = vec![Condition::Sql(LIVE)];
            let mut has_null = false;
            for part in &key {
                let value = object
                    .fields
                    .get(&part.column_name())
                    .cloned()
                    .unwrap_or(Value::Null);
                match to_sql(&object.model, part, &value)? {
                    syncplane_store::SqlValue::Null => has_null = true,
                    v => conditions.push(Condition::Eq(part.column_name(), v)),
                }
            }
            // NULLs never clash.
            if has_null {
                continue;
            }
            for other in others {
                let table = registry.table(&other)?.clone();
                if self.store_tx().count(&table, &conditions).await? > 0 {
                    let message = match key.get(1..).filter(|rest| !rest.is_empty()) {
                        None => format!("must be unique (a {other} has it)"),
                        Some(rest) => {
                            let names: Vec<&str> = rest.iter().map(|f| f.name.as_str()).collect();
                            format!(
                                "must be unique together with {} (a {other} has them)",
                                names.join(", ")
                            )
                        }
                    };
                    return Err(Error::invalid(&object.model, &field.name, message));
                }
            }
        }
        Ok(())
    }
}

/// The concrete models other than `model` whose objects share `field`'s
/// uniqueness with it: the concrete descendants of its farthest concrete
/// ancestor that has the field.
fn other_tables(schema: &Schema, model: &str, field: &str) -> Vec<String> {
    let top = schema
        .ancestors(model)
        .into_iter()
        .rev()
        .filter(|a| schema.model(a).is_some_and(|m| !m.is_abstract()))
        .find(|a| schema.field(a, field).is_some())
        .unwrap_or(model);
    schema
        .concrete_descendants(top)
        .into_iter()
        .map(|m| m.name.clone())
        .filter(|name| name != model)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use crate::Core;

    fn map(value: serde_json::Value) -> Map<String, serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[tokio::test]
    async fn a_unique_field_of_a_base_is_unique_across_its_subclasses_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse(
            "shop.xproto",
            "option app_label = \"shop\";\nmessage Widget (Service) { optional string color = 1; }",
        )
        .expect("parses");
        core.register_models(&[file]).await.expect("models");
        core.create("Service", map(json!({"name": "a"})))
            .await
            .expect("service a");
        let error = core
            .create("Widget", map(json!({"name": "a"})))
            .await
            .expect_err("taken by a Service");
        assert_eq!(
            error.to_string(),
            "Widget.name: must be unique (a Service has it)"
        );
        let widget = core
            .create("Widget", map(json!({"name": "b"})))
            .await
            .expect("widget b");
        let error = core
            .create("Service", map(json!({"name": "b"})))
            .await
            .expect_err("taken by a Widget");
        assert_eq!(
            error.to_string(),
            "Service.name: must be unique (a Widget has it)"
        );
        // Other fields change freely; a deleted object's name is free.
        core.update(widget.id, map(json!({"color": "red"})))
            .await
            .expect("update");
        core.delete(widget.id).await.expect("delete");
        core.create("Service", map(json!({"name": "b"})))
            .await
            .expect("free again");
    }
}
