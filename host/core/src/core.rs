//! The [`Core`] handle and its transactions.

use crate::bookkeeping::field;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use syncplane_store::{Condition, Location, Row, SqlValue, Store, StoreTx, TableSpec};
use syncplane_xproto::{Field, File, Modifier, Schema};
use tokio::sync::broadcast;

use crate::auth::{Auth, AuthOptions};
use crate::authz::Principal;
use crate::deletion::Deletion;
use crate::error::{Error, Result};
use crate::object::{Change, ChangeKind, Object, SyncState};
use crate::quota::{Quotas, SharedQuotas};
use crate::registry::{
    CHANGE_SEQ, ENACTED_SEQ, FAILURES, NEXT_RETRY, POLICED_SEQ, Registry, from_sql, from_sql_as,
    is_bool, stored_fields, to_sql,
};
use crate::time::now_secs;
use crate::tokens;

pub use syncplane_xproto::CORE_XPROTO;

/// Bookkeeping flags that event steps, pull steps and policies may set when
/// they create an object ([`CoreTx::set_flags`]).
pub const IMPORT_FLAGS: &[&str] = &[field::NO_SYNC, field::WRITE_PROTECT];

/// The model registry, object CRUD with bookkeeping, and the change feed.
///
/// Cloning is cheap; clones share everything.
#[derive(Debug, Clone)]
pub struct Core {
    pub(crate) store: Store,
    registry: Arc<RwLock<Arc<Registry>>>,
    /// The built-in core models alone: services' models are added to it.
    core_schema: Arc<Schema>,
    pub(crate) feed: broadcast::Sender<Change>,
    /// Told when another host sharing the store changed the installed
    /// services ([`Core::subscribe_activations`]).
    pub(crate) activations: broadcast::Sender<()>,
    /// Told when another host sharing the store committed outcomes of
    /// leased work ([`Core::subscribe_outcomes_elsewhere`]).
    pub(crate) outcomes_elsewhere: broadcast::Sender<()>,
    /// Password hashing and the caches of successful checks.
    pub(crate) auth: Arc<Auth>,
    /// Object quotas per owner ([`Core::set_object_quota`]).
    pub(crate) quotas: SharedQuotas,
}

/// A change of a host record, written in the same transaction as the
/// tables of [`Core::activate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordWrite {
    /// Sets `key` of `namespace` to the value.
    Put {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Removes `key` of `namespace`.
    Delete {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
    },
}

/// Applies `records` in `tx`, and tells the other hosts sharing the store,
/// when it commits, to load the services and their settings again.
async fn apply_records(tx: &mut StoreTx, records: &[RecordWrite]) -> Result<()> {
    for record in records {
        apply_record(tx, record).await?;
    }
    if !records.is_empty() {
        tx.announce_activation().await?;
    }
    Ok(())
}

/// Applies one record write inside `tx`.
async fn apply_record(tx: &mut StoreTx, record: &RecordWrite) -> Result<()> {
    match record {
        RecordWrite::Put {
            namespace,
            key,
            value,
        } => tx.put_record(namespace, key, value).await?,
        RecordWrite::Delete { namespace, key } => tx.delete_record(namespace, key).await?,
    }
    Ok(())
}

impl Core {
    /// Opens the database file at `db_path` and installs the core models.
    ///
    /// # Errors
    ///
    /// When the database cannot be opened or prepared.
    pub async fn open(db_path: &Path) -> Result<Core> {
        Core::connect(&Location::File(db_path.to_owned())).await
    }

    /// Opens the store at `location` (an embedded file or a PostgreSQL
    /// database) and installs the core models.
    ///
    /// # Errors
    ///
    /// When the store cannot be opened or prepared.
    pub async fn connect(location: &Location) -> Result<Core> {
        let store = Store::connect(location).await?;
        let (feed, _) = broadcast::channel(4096);
        let file = syncplane_xproto::parse("core.xproto", CORE_XPROTO)
            .map_err(syncplane_xproto::Error::from)?;
        let core_schema = Schema::default()
            .with_files(std::slice::from_ref(&file))
            .map_err(syncplane_xproto::Error::from)?;
        let core = Core {
            store,
            registry: Arc::new(RwLock::new(Arc::new(Registry::default()))),
            core_schema: Arc::new(core_schema.clone()),
            feed,
            activations: broadcast::channel(16).0,
            outcomes_elsewhere: broadcast::channel(16).0,
            auth: Arc::new(Auth::new()),
            quotas: SharedQuotas::default(),
        };
        core.activate(core_schema, &[], &[]).await?;
        core.store.ensure_table(&crate::audit::table_spec()).await?;
        Ok(core)
    }

    /// Sets how users are authenticated (the credential cache); see
    /// [`AuthOptions`] for the defaults.
    pub fn set_auth_options(&self, options: AuthOptions) {
        self.auth.set_options(options);
    }

    /// A snapshot of the installed models.
    pub fn registry(&self) -> Arc<Registry> {
        match self.registry.read() {
            Ok(r) => Arc::clone(&r),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The built-in core models alone, to build a host's schema on:
    /// `core_schema().with_files(every service's files)`.
    pub fn core_schema(&self) -> &Schema {
        &self.core_schema
    }

    /// Switches to the models of `schema` in one transaction: creates or
    /// widens the tables it needs, drops the tables of `drop` (models that
    /// leave, whose tables the caller found empty), and applies `records`;
    /// then swaps the registry. Either all of it happens or none.
    ///
    /// # Errors
    ///
    /// When the database fails; nothing changed then.
    pub async fn activate(
        &self,
        schema: Schema,
        drop: &[String],
        records: &[RecordWrite],
    ) -> Result<()> {
        let current = self.registry();
        let next = Registry::new(schema);
        let mut tx = self.store.begin().await?;
        for table in next.tables() {
            tx.ensure_table(table).await?;
        }
        for join in next.all_joins() {
            tx.ensure_table(&join.table).await?;
        }
        for model in drop {
            // A model renamed only in case keeps its (lower-case) table.
            if next.schema().model(model).is_none()
                && let Ok(table) = current.table(model)
                && !next.tables().any(|t| t.name == table.name)
            {
                tx.drop_table(table).await?;
                for join in current.joins(model) {
                    tx.drop_table(&join.table).await?;
                }
            }
        }
        apply_records(&mut tx, records).await?;
        // Only activations that change the registry of services are the
        // moments the failpoints name (not the core models at open).
        if !records.is_empty() {
            crate::failpoint::hit("activate:before-commit");
        }
        tx.commit().await?;
        if !records.is_empty() {
            crate::failpoint::hit("activate:after-commit");
        }
        match self.registry.write() {
            Ok(mut r) => *r = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        Ok(())
    }

    /// Fields of `schema` whose tables keep a column of that name with
    /// another type (a field removed in an earlier version and added back
    /// with a different one): activating `schema` would fail on them.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn column_conflicts(&self, schema: &Schema) -> Result<Vec<String>> {
        let next = Registry::new(schema.clone());
        let mut tx = self.store.begin().await?;
        let mut conflicts = Vec::new();
        for (model, table) in next.tables_by_model() {
            let existing = tx.columns(&table.name).await?;
            for column in &table.columns {
                if let Some((_, declared)) = existing.iter().find(|(n, _)| n == &column.name)
                    && !declared.eq_ignore_ascii_case(column.ty.sql())
                {
                    conflicts.push(format!(
                        "field `{model}.{}` would be stored as {}, but its table keeps values of an earlier `{}` as {declared}; choose another field name",
                        column.name,
                        column.ty.sql(),
                        column.name
                    ));
                }
            }
        }
        Ok(conflicts)
    }

    /// Rules of `schema` that objects stored now would violate: a `unique`
    /// option added by an upgrade over values that repeat (activating
    /// `schema` would fail on them), and changed field rules (`choices`,
    /// `max_length`, ranges, `required`, ...) that live objects break. Each
    /// names the model, the field and how many objects.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn constraint_conflicts(&self, schema: &Schema) -> Result<Vec<String>> {
        let next = Registry::new(schema.clone());
        let mut tx = self.store.begin().await?;
        let mut conflicts = Vec::new();
        for (model, table) in next.tables_by_model() {
            for index in table.partial_indexes.iter().filter(|i| i.unique) {
                let count = tx.duplicates(table, index).await?;
                if count > 0 {
                    conflicts.push(format!(
                        "{model}: {count} objects share their {} with another, but the new version makes {} unique; change or delete them first",
                        index.columns.join(" and "),
                        if index.columns.len() == 1 { "it" } else { "them together" },
                    ));
                }
            }
        }
        // Fields whose rules change (a choice removed, a shorter
        // max_length, a range, `required`): the live objects they refuse.
        let current = self.registry();
        for (model, table) in next.tables_by_model() {
            let Some(old_model) = current.schema().model(model) else {
                continue;
            };
            let existing = tx.columns(&table.name).await?;
            let changed: Vec<&Field> = stored_fields(next.schema(), model)
                .into_iter()
                .filter(|f| f.is_user_writable() && f.link_target().is_none())
                .filter(|f| existing.iter().any(|(c, _)| *c == f.column_name()))
                .filter(|f| {
                    current
                        .schema()
                        .field(&old_model.name, &f.name)
                        .is_some_and(|old| old.options != f.options || old.modifier != f.modifier)
                })
                .collect();
            if changed.is_empty() {
                continue;
            }
            let rows = tx
                .select_values(table, &[Condition::Sql(crate::registry::LIVE)], None)
                .await?;
            for field in changed {
                let Some(at) = table
                    .columns
                    .iter()
                    .position(|c| c.name == field.column_name())
                else {
                    continue;
                };
                let mut refused = 0;
                let mut example = None;
                for (_, values) in &rows {
                    let value = from_sql(field, &values[at]);
                    let error = if value.is_null()
                        && field.modifier == Modifier::Required
                        && !crate::registry::is_date(field)
                    {
                        Some(Error::invalid(model, &field.name, "is required"))
                    } else {
                        to_sql(model, field, &value).err()
                    };
                    if let Some(error) = error {
                        refused += 1;
                        example.get_or_insert(error);
                    }
                }
                if let Some(example) = example {
                    conflicts.push(format!(
                        "{model}: {refused} objects break the new rules of `{}` (first: {example}); change them first",
                        field.name
                    ));
                }
            }
        }
        Ok(conflicts)
    }

    /// How many objects `model` and the concrete models inheriting it
    /// hold, those marked deleted included.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn object_count(&self, model: &str) -> Result<i64> {
        let registry = self.registry();
        registry.model(model)?;
        let mut tx = self.store.begin().await?;
        let mut total = 0;
        for concrete in registry.schema().concrete_descendants(model) {
            let table = registry.table(&concrete.name)?;
            total += tx.count(table, &[]).await?;
        }
        Ok(total)
    }

    /// Adds (or replaces) the models of `files`, creating or widening their
    /// tables, without a restart. Returns the names of the models added.
    ///
    /// # Errors
    ///
    /// [`Error::Xproto`] when the files do not fit with the installed models;
    /// nothing is installed then.
    pub async fn register_models(&self, files: &[File]) -> Result<Vec<String>> {
        let schema = self
            .registry()
            .schema()
            .with_files(files)
            .map_err(syncplane_xproto::Error::from)?;
        self.activate(schema, &[], &[]).await?;
        Ok(files
            .iter()
            .flat_map(|f| f.models.iter().map(|m| m.name.clone()))
            .collect())
    }

    /// Subscribes to activations by other hosts sharing the store: each
    /// message says the installed services changed there (or may have,
    /// after a lost connection) and should be loaded again.
    pub fn subscribe_activations(&self) -> broadcast::Receiver<()> {
        self.activations.subscribe()
    }

    /// Subscribes to the outcomes other hosts sharing the store commit:
    /// work that links to objects they worked on may go on. Lagging
    /// behind only means several came at once.
    pub fn subscribe_outcomes_elsewhere(&self) -> broadcast::Receiver<()> {
        self.outcomes_elsewhere.subscribe()
    }

    /// Subscribes to the change feed. Changes are sent after they commit.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    /// Starts a transaction; changes are published when it commits.
    ///
    /// # Errors
    ///
    /// When the database is unavailable.
    pub async fn begin(&self) -> Result<CoreTx> {
        let tx = self.store.begin().await?;
        Ok(self.transaction(tx))
    }

    /// Starts a transaction that only reads, on a read-only connection
    /// where the store has them ([`syncplane_store::Store::begin_read`]):
    /// API reads do not queue behind each other or behind a write. A write
    /// in it fails.
    ///
    /// # Errors
    ///
    /// When the database is unavailable.
    pub async fn begin_read(&self) -> Result<CoreTx> {
        let tx = self.store.begin_read().await?;
        Ok(self.transaction(tx))
    }

    fn transaction(&self, tx: syncplane_store::StoreTx) -> CoreTx {
        CoreTx {
            tx,
            registry: self.registry(),
            changes: Vec::new(),
            feed: self.feed.clone(),
            actor: Principal::Host,
            auth: Arc::clone(&self.auth),
            auth_changed: false,
            prehashed: HashMap::new(),
            quotas: crate::quota::snapshot(&self.quotas),
            quota_counts: HashMap::new(),
        }
    }

    /// Starts a transaction whose writes the audit log puts on `who`.
    ///
    /// # Errors
    ///
    /// When the database is unavailable.
    pub async fn begin_as(&self, who: Principal) -> Result<CoreTx> {
        let mut tx = self.begin().await?;
        tx.act_as(who);
        Ok(tx)
    }

    /// Starts a transaction that will write the clear-text `passwords` (of
    /// `User` objects it creates or updates): they are hashed first, off
    /// the async workers, so that no transaction is open while argon2 runs.
    /// A password the transaction writes that is not among them is still
    /// hashed, but while the transaction is open.
    ///
    /// # Errors
    ///
    /// When hashing fails or the database is unavailable.
    pub async fn begin_with_passwords<'a>(
        &self,
        passwords: impl IntoIterator<Item = &'a str>,
    ) -> Result<CoreTx> {
        let mut prehashed: HashMap<String, Vec<String>> = HashMap::new();
        for plain in passwords {
            if !plain.is_empty() {
                // One hash (and salt) per use, even of the same password.
                let hash = self.auth.hasher.hash(plain).await?;
                prehashed
                    .entry(tokens::digest(plain))
                    .or_default()
                    .push(hash);
            }
        }
        let mut tx = self.begin().await?;
        tx.prehashed = prehashed;
        Ok(tx)
    }

    /// A transaction to create a `model` object from `input`: a user's
    /// password is hashed before it opens.
    pub(crate) async fn begin_to_create(
        &self,
        model: &str,
        input: &Map<String, Value>,
    ) -> Result<CoreTx> {
        let password = password_of(input).filter(|_| model == "User");
        self.begin_with_passwords(password).await
    }

    /// A transaction to update object `id` from `input`: a user's password
    /// is hashed before it opens (looked up first, so as not to hash for
    /// nothing).
    pub(crate) async fn begin_to_update(
        &self,
        id: i64,
        input: &Map<String, Value>,
    ) -> Result<CoreTx> {
        let password = match password_of(input) {
            Some(p) if self.get(id).await?.is_some_and(|o| o.model == "User") => Some(p),
            _ => None,
        };
        self.begin_with_passwords(password).await
    }

    /// Creates an object in its own transaction.
    ///
    /// # Errors
    ///
    /// See [`CoreTx::create`].
    pub async fn create(&self, model: &str, input: Map<String, Value>) -> Result<Object> {
        let mut tx = self.begin_to_create(model, &input).await?;
        let object = tx.create(model, input).await?;
        tx.commit().await?;
        Ok(object)
    }

    /// Updates an object in its own transaction.
    ///
    /// # Errors
    ///
    /// See [`CoreTx::update`].
    pub async fn update(&self, id: i64, input: Map<String, Value>) -> Result<Object> {
        let mut tx = self.begin_to_update(id, &input).await?;
        let object = tx.update(id, input).await?;
        tx.commit().await?;
        Ok(object)
    }

    /// Marks an object deleted, with what cascades from it, in its own
    /// transaction.
    ///
    /// # Errors
    ///
    /// See [`CoreTx::delete`]; nothing is written then.
    pub async fn delete(&self, id: i64) -> Result<Deletion> {
        let mut tx = self.begin().await?;
        let deletion = tx.delete(id).await?;
        tx.commit().await?;
        Ok(deletion)
    }

    /// Stores a host record (e.g. an installed service package) under
    /// `namespace`/`key`, replacing an older one.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn put_record(&self, namespace: &str, key: &str, value: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.put_record(namespace, key, value).await?;
        Ok(tx.commit().await?)
    }

    /// The host record `key` of `namespace`, if there is one.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn record(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .store
            .begin_read()
            .await?
            .record(namespace, key)
            .await?)
    }

    /// Applies record writes in one transaction (no schema change).
    ///
    /// # Errors
    ///
    /// A database failure; nothing changed then.
    pub async fn write_records(&self, records: &[RecordWrite]) -> Result<()> {
        let mut tx = self.store.begin().await?;
        apply_records(&mut tx, records).await?;
        Ok(tx.commit().await?)
    }

    /// The keys of the host records under `namespace`, sorted.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn record_keys(&self, namespace: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .begin_read()
            .await?
            .record_keys(namespace)
            .await?)
    }

    /// All host records under `namespace`, sorted by key.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn records(&self, namespace: &str) -> Result<Vec<(String, String)>> {
        Ok(self.store.begin_read().await?.records(namespace).await?)
    }

    /// Reads an object by id, in its leaf model.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn get(&self, id: i64) -> Result<Option<Object>> {
        self.begin_read().await?.get(id).await
    }

    /// Lists the objects of `model` and of the models that inherit from it,
    /// including those marked deleted, ordered by id.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn list(&self, model: &str) -> Result<Vec<Object>> {
        let registry = self.registry();
        registry.model(model)?;
        if let [leaf] = registry.schema().concrete_descendants(model).as_slice()
            && registry.joins(&leaf.name).is_empty()
        {
            // One table: one statement is one snapshot, without the
            // transaction's BEGIN/ROLLBACK round trips.
            let table = registry.table(&leaf.name)?;
            let columns = registry.value_columns(&leaf.name)?;
            return Ok(self
                .store
                .select_values(table, &[], None)
                .await?
                .into_iter()
                .map(|(id, values)| columns.decode(&leaf.name, id, values))
                .collect());
        }
        self.begin().await?.list(model, &[]).await
    }
}

/// A transaction over model objects.
///
/// Reads see the transaction's own writes; the change feed hears of the
/// writes only after [`CoreTx::commit`]. Dropping the transaction discards
/// every write.
#[derive(Debug)]
pub struct CoreTx {
    tx: StoreTx,
    registry: Arc<Registry>,
    changes: Vec<Change>,
    feed: broadcast::Sender<Change>,
    /// Whom the audit log names for this transaction's writes.
    actor: Principal,
    auth: Arc<Auth>,
    /// Whether a user was written: the auth caches are invalid after commit.
    auth_changed: bool,
    /// Hashes of passwords computed before the transaction, by the digest
    /// of the clear text ([`Core::begin_with_passwords`]).
    prehashed: HashMap<String, Vec<String>>,
    /// The object quotas as the transaction began.
    pub(crate) quotas: Arc<Quotas>,
    /// Objects under each owner's quota, once counted in this transaction.
    pub(crate) quota_counts: HashMap<String, u64>,
}

impl CoreTx {
    /// Commits, then publishes the transaction's changes.
    ///
    /// # Errors
    ///
    /// When the commit fails; nothing was written then.
    pub async fn commit(mut self) -> Result<()> {
        crate::watch::log(&mut self.tx, &self.changes).await?;
        self.tx.commit().await?;
        if self.auth_changed {
            self.auth.invalidate();
        }
        for change in self.changes {
            // No receivers is fine: nobody is interested yet.
            let _ = self.feed.send(change);
        }
        Ok(())
    }

    /// The models this transaction works with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn registry_arc(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Password hashing and the authentication caches.
    pub(crate) fn auth(&self) -> Arc<Auth> {
        Arc::clone(&self.auth)
    }

    /// Puts this transaction's writes on `who` in the audit log (the host
    /// by default). Does not change what is allowed: see the `*_as`
    /// methods for that.
    pub fn act_as(&mut self, who: Principal) {
        self.actor = who;
    }

    /// Whom the audit log names for this transaction's writes.
    pub fn actor(&self) -> &Principal {
        &self.actor
    }

    /// What every write must satisfy, whoever makes it: the model's
    /// validators, and for users the rules of `authz/users.rs`.
    pub(crate) async fn check_written(
        &mut self,
        before: Option<&Object>,
        after: &Object,
    ) -> Result<()> {
        self.validate(after).await?;
        self.check_unique_across(before, after).await?;
        if self.registry.schema().is_a(&after.model, "User") {
            self.check_user_rules(before, Some(after)).await?;
        }
        Ok(())
    }

    /// Updates the given fields of an object, as a user change: the object's
    /// `updated` time and change sequence advance, so it becomes pending.
    ///
    /// Read-only fields may be sent back unchanged (as a client does that
    /// PUTs what it GOT); changing them is an error.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::InvalidField`].
    pub async fn update(&mut self, id: i64, mut input: Map<String, Value>) -> Result<Object> {
        let current = self.get_existing(id).await?;
        let registry = Arc::clone(&self.registry);
        let model = current.model.as_str();
        let table = registry.table(model)?;
        input.remove("id");
        let many = crate::many::take_many(&registry, model, &mut input)?;
        let mut row = Row::new();
        for field in stored_fields(registry.schema(), model) {
            let column = field.column_name();
            let Some(value) = input.remove(&column).or_else(|| input.remove(&field.name)) else {
                continue;
            };
            if !field.is_user_writable() {
                if current.fields.get(&column) == Some(&value) {
                    continue;
                }
                return Err(Error::invalid(
                    model,
                    &field.name,
                    "is maintained by syncplane and cannot be written",
                ));
            }
            if field.name == "password" && value.as_str() == Some("") {
                continue;
            }
            // Writing a field's current value is not a change: re-applying
            // the same recipe must not make the object pending again.
            if field.name != "password" && current.fields.get(&column) == Some(&value) {
                continue;
            }
            let value = self
                .prepare_value(model, field, value, &mut LinkTargets::default())
                .await?;
            row.insert(column, value);
        }
        crate::input::reject_unknown(model, &input)?;
        let mut changed: Vec<String> = row.keys().cloned().collect();
        if self
            .write_many(model, id, &many, &mut LinkTargets::default())
            .await?
        {
            changed.extend(many.iter().map(|(field, _)| crate::many::ids_name(field)));
        }
        if changed.is_empty() {
            return Ok(current);
        }
        row.insert("updated".into(), SqlValue::Real(now_secs()));
        let seq = self.tx.next_change_seq().await?;
        row.insert(CHANGE_SEQ.into(), SqlValue::Integer(seq));
        // A new version is worth trying at once, whatever the old one's backoff.
        row.insert(NEXT_RETRY.into(), SqlValue::Null);
        row.insert(FAILURES.into(), SqlValue::Integer(0));
        self.tx
            .update(table, id, &row)
            .await
            .map_err(|e| registry.write_error(model, e))?;
        if self.note_user_write(model) && row.contains_key("password") {
            // A new password ends every session and API token of the user.
            let revoked = tokens::revoke_all(&mut self.tx, id).await?;
            tracing::debug!(user.id = id, revoked, "password changed: tokens revoked");
        }
        self.changes.push(Change {
            id,
            model: model.to_owned(),
            kind: ChangeKind::Updated,
        });
        let updated = self.get_existing(id).await?;
        self.check_written(Some(&current), &updated).await?;
        let set: Map<String, Value> = changed
            .into_iter()
            .map(|column| {
                let value = updated.fields.get(&column).cloned().unwrap_or(Value::Null);
                (column, value)
            })
            .collect();
        self.audit("update", model, id, set).await?;
        Ok(updated)
    }

    /// Notes a write to `model`; returns whether it is a user, whose write
    /// invalidates the authentication caches after commit.
    pub(crate) fn note_user_write(&mut self, model: &str) -> bool {
        let is_user = self.registry.schema().is_a(model, "User");
        self.auth_changed |= is_user;
        is_user
    }

    /// Checks and converts one field value: link targets must exist, be of
    /// the right model and not be deleted; passwords are hashed. `links`
    /// remembers the targets looked up, for the other values of a batch.
    pub(crate) async fn prepare_value(
        &mut self,
        model: &str,
        field: &Field,
        value: Value,
        links: &mut LinkTargets,
    ) -> Result<SqlValue> {
        if let Some(target) = field.link_target()
            && let Some(target_id) = value.as_i64()
        {
            let found = match links.0.get(&target_id) {
                Some(known) => known.clone(),
                None => {
                    let found = self.get(target_id).await?.map(|linked| {
                        let deleted = linked.fields.get("deleted") == Some(&Value::Bool(true));
                        (linked.model, deleted)
                    });
                    links.0.insert(target_id, found.clone());
                    found
                }
            };
            match found {
                Some((linked, _)) if !self.registry.schema().is_a(&linked, target) => {
                    return Err(Error::invalid(
                        model,
                        &field.name,
                        format!("{linked} {target_id} is not a {target}"),
                    ));
                }
                // Nothing may link to a deleted object: it is about to be
                // purged, and the link would dangle.
                Some((linked, true)) => {
                    return Err(Error::invalid(
                        model,
                        &field.name,
                        format!("{linked} {target_id} is deleted"),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(Error::invalid(
                        model,
                        &field.name,
                        format!("{target} {target_id} does not exist"),
                    ));
                }
            }
        }
        if field.name == "password"
            && model == "User"
            && let Some(plain) = value.as_str()
            && !plain.is_empty()
        {
            let prehashed = self
                .prehashed
                .get_mut(&tokens::digest(plain))
                .and_then(Vec::pop);
            let hash = match prehashed {
                Some(hash) => hash,
                None => {
                    tracing::debug!(model, "password hashed inside a transaction");
                    self.auth.hasher.hash(plain).await?
                }
            };
            return Ok(SqlValue::Text(hash));
        }
        // A required field may not be set to null (bookkeeping and dates
        // the host fills in are not the user's to give).
        if field.modifier == Modifier::Required
            && value.is_null()
            && field.is_user_writable()
            && !crate::registry::is_date(field)
        {
            return Err(Error::invalid(model, &field.name, "is required"));
        }
        to_sql(model, field, &value)
    }

    /// Sets bookkeeping flags of `id` that importers may set: `no_sync`
    /// (sync steps leave the object alone, as for an object a pull step
    /// mirrors from a backend) and `write_protect` (the API may not change
    /// or delete it). A bookkeeping write: it makes nothing pending.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::Invalid`] for another flag name; a
    /// database failure.
    pub async fn set_flags(&mut self, id: i64, flags: &[(&str, bool)]) -> Result<()> {
        let current = self.get_existing(id).await?;
        let table = self.registry.table(&current.model)?.clone();
        let mut row = Row::new();
        for (name, on) in flags {
            if !IMPORT_FLAGS.contains(name) {
                return Err(Error::invalid(
                    &current.model,
                    name,
                    "is not a flag importers may set",
                ));
            }
            row.insert((*name).to_owned(), SqlValue::Integer(i64::from(*on)));
        }
        self.tx.update(&table, id, &row).await?;
        Ok(())
    }

    /// The bookkeeping of a new version: a fresh change sequence, `updated`,
    /// and no pending retry or failure count from the old one.
    pub(crate) async fn new_version(&mut self) -> Result<Row> {
        let seq = self.tx.next_change_seq().await?;
        Ok(Row::from([
            ("updated".to_owned(), SqlValue::Real(now_secs())),
            (CHANGE_SEQ.to_owned(), SqlValue::Integer(seq)),
            (NEXT_RETRY.to_owned(), SqlValue::Null),
            (FAILURES.to_owned(), SqlValue::Integer(0)),
        ]))
    }

    /// Counts `id` as changed without changing a value, so its steps run
    /// again (XOS's `save(always_update_timestamp=True)`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or a database failure.
    pub async fn touch(&mut self, id: i64) -> Result<()> {
        let current = self.get_existing(id).await?;
        let table = self.registry.table(&current.model)?.clone();
        let row = self.new_version().await?;
        self.tx.update(&table, id, &row).await?;
        self.audit("touch", &current.model, id, Map::new()).await?;
        self.changes.push(Change {
            id,
            model: current.model,
            kind: ChangeKind::Updated,
        });
        Ok(())
    }

    /// Reads an object by id in its leaf model.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn get(&mut self, id: i64) -> Result<Option<Object>> {
        let Some(model) = self.tx.model_of(id).await? else {
            return Ok(None);
        };
        let registry = Arc::clone(&self.registry);
        let Ok(table) = registry.table(&model) else {
            return Ok(None);
        };
        let Some(row) = self.tx.get(table, id).await? else {
            return Ok(None);
        };
        let mut object = [decode(&registry, &model, id, row)];
        if !registry.joins(&model).is_empty() {
            crate::many::attach(&mut self.tx, &registry, &mut object).await?;
        }
        let [object] = object;
        Ok(Some(object))
    }

    /// Reads an object that must exist.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], or a database failure.
    pub async fn get_existing(&mut self, id: i64) -> Result<Object> {
        self.get(id).await?.ok_or_else(|| Error::NotFound {
            model: "object".into(),
            id,
        })
    }

    /// Lists the objects of `model` and its descendants whose fields equal
    /// the given values, ordered by id.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`], [`Error::InvalidField`] for an unknown filter
    /// field, or a database failure.
    pub async fn list(&mut self, model: &str, filter: &[(String, Value)]) -> Result<Vec<Object>> {
        let registry = Arc::clone(&self.registry);
        registry.model(model)?;
        let mut out = Vec::new();
        for leaf in registry.schema().concrete_descendants(model) {
            let mut conditions = Vec::new();
            for (name, value) in filter {
                let field = stored_fields(registry.schema(), &leaf.name)
                    .into_iter()
                    .find(|f| &f.name == name || &f.column_name() == name)
                    .ok_or_else(|| Error::invalid(model, name, "unknown field"))?;
                conditions.push(match to_sql(model, field, value)? {
                    SqlValue::Null => Condition::IsNull(field.column_name()),
                    v => Condition::Eq(field.column_name(), v),
                });
            }
            let table = registry.table(&leaf.name)?;
            for (id, row) in self.tx.select(table, &conditions, None).await? {
                out.push(decode(&registry, &leaf.name, id, row));
            }
        }
        out.sort_by_key(|o| o.id);
        crate::many::attach(&mut self.tx, &registry, &mut out).await?;
        Ok(out)
    }

    pub(crate) fn store_tx(&mut self) -> &mut StoreTx {
        &mut self.tx
    }

    pub(crate) fn note(&mut self, change: Change) {
        self.changes.push(change);
    }

    pub(crate) fn table(&self, model: &str) -> Result<TableSpec> {
        self.registry.table(model).cloned()
    }
}

/// Link targets looked up while preparing values: their model and whether
/// they are deleted (`None`: no such object). Valid while the transaction
/// has not changed them, as within the preparation of one batch.
#[derive(Debug, Default)]
pub(crate) struct LinkTargets(HashMap<i64, Option<(String, bool)>>);

/// The clear-text password of an input, if it sets a non-empty one.
fn password_of(input: &Map<String, Value>) -> Option<&str> {
    input
        .get("password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
}

pub(crate) fn decode(registry: &Registry, model: &str, id: i64, row: Row) -> Object {
    decode_with(&stored_columns(registry, model), model, id, row)
}

/// The stored fields of `model` with their column names: worked out once
/// when many rows of one model are decoded.
pub(crate) fn stored_columns<'a>(registry: &'a Registry, model: &str) -> Vec<(String, &'a Field)> {
    stored_fields(registry.schema(), model)
        .into_iter()
        .map(|f| (f.column_name(), f))
        .collect()
}

/// Where an object's fields and sync state sit among a table's columns:
/// decodes rows of values (see `Store::select_values`) into objects.
/// Worked out once per model when the registry is built
/// ([`Registry::value_columns`]), not per read.
#[derive(Debug, Clone)]
pub(crate) struct ValueColumns {
    /// Each stored field: its column name, whether it holds a bool (stored
    /// as an integer) and its place among the table's columns.
    fields: Vec<(String, bool, Option<usize>)>,
    /// change_seq, enacted_seq, next_retry, failures, policed_seq.
    sync: [Option<usize>; 5],
}

impl ValueColumns {
    pub(crate) fn new(schema: &Schema, table: &TableSpec, model: &str) -> Self {
        let at = |name: &str| table.columns.iter().position(|c| c.name == name);
        ValueColumns {
            fields: stored_fields(schema, model)
                .into_iter()
                .map(|field| {
                    let column = field.column_name();
                    let i = at(&column);
                    (column, is_bool(field), i)
                })
                .collect(),
            sync: [CHANGE_SEQ, ENACTED_SEQ, NEXT_RETRY, FAILURES, POLICED_SEQ].map(at),
        }
    }

    /// The object in `values` (in the table's column order); the same as
    /// [`decode`] of the row with those values.
    pub(crate) fn decode(&self, model: &str, id: i64, mut values: Vec<SqlValue>) -> Object {
        let int = |values: &[SqlValue], i: Option<usize>| match i.and_then(|i| values.get(i)) {
            Some(SqlValue::Integer(v)) => Some(*v),
            _ => None,
        };
        let [change, enacted, retry, failures, policed] = self.sync;
        let sync = SyncState {
            change_seq: int(&values, change).unwrap_or_default(),
            enacted_seq: int(&values, enacted),
            next_retry_ms: int(&values, retry),
            failures: int(&values, failures).unwrap_or_default(),
            policed_seq: int(&values, policed),
        };
        let mut fields = Map::new();
        for (column, bool, i) in &self.fields {
            let value = match i.and_then(|i| values.get_mut(i)) {
                Some(v) => match std::mem::replace(v, SqlValue::Null) {
                    SqlValue::Text(s) => Value::String(s),
                    other => from_sql_as(*bool, &other),
                },
                None => Value::Null,
            };
            fields.insert(column.clone(), value);
        }
        Object {
            id,
            model: model.to_owned(),
            fields,
            sync,
        }
    }
}

/// [`decode`] with the model's [`stored_columns`] at hand.
pub(crate) fn decode_with(
    columns: &[(String, &Field)],
    model: &str,
    id: i64,
    mut row: Row,
) -> Object {
    let int = |row: &Row, c: &str| match row.get(c) {
        Some(SqlValue::Integer(i)) => Some(*i),
        _ => None,
    };
    let sync = SyncState {
        change_seq: int(&row, CHANGE_SEQ).unwrap_or_default(),
        enacted_seq: int(&row, ENACTED_SEQ),
        next_retry_ms: int(&row, NEXT_RETRY),
        failures: int(&row, FAILURES).unwrap_or_default(),
        policed_seq: int(&row, POLICED_SEQ),
    };
    let mut fields = Map::new();
    for (column, field) in columns {
        let value = match row.remove(column) {
            // Moved rather than copied, as `from_sql` would.
            Some(SqlValue::Text(s)) => Value::String(s),
            Some(value) => from_sql(field, &value),
            None => Value::Null,
        };
        fields.insert(column.clone(), value);
    }
    Object {
        id,
        model: model.to_owned(),
        fields,
        sync,
    }
}
