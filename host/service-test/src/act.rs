//! Running one test: fixtures, then each action through the engine, the
//! runtime or the host exactly as a server runs it, then its
//! expectations.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{Map, Value};
use syncplane_core::{Object, field};
use syncplane_engine::{CallOutcome, Event, PassScope};

use crate::compare::{fields_match, show, values_match};
use crate::format::{
    Action, Expect, ExpectedOutcome, Fixture, LoadedFile, PolicyOn, Seg, Step, TestCase,
};
use crate::session::{Reset, Session};
use crate::{Failure, TestResult};

/// How a call ended, as the store (or the call) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Observed {
    Ok,
    Deferred(String),
    Failed(String),
    Trap {
        cause: String,
        message: String,
    },
    /// Nothing ran for the object: it is still waiting.
    NotRun(String),
}

impl Observed {
    /// From a status text of a failed call: a trap when the host says so.
    fn failed(message: String) -> Observed {
        match message
            .strip_prefix("trap (")
            .and_then(|rest| rest.split_once("):"))
        {
            Some((cause, _)) => Observed::Trap {
                cause: cause.to_owned(),
                message,
            },
            None => Observed::Failed(message),
        }
    }

    fn of_call(outcome: CallOutcome) -> Observed {
        match outcome {
            CallOutcome::Done => Observed::Ok,
            CallOutcome::Deferred(m) => Observed::Deferred(m),
            CallOutcome::Failed(m) => Observed::failed(m),
        }
    }

    fn kind(&self) -> Option<ExpectedOutcome> {
        match self {
            Observed::Ok => Some(ExpectedOutcome::Ok),
            Observed::Deferred(_) => Some(ExpectedOutcome::Deferred),
            Observed::Failed(_) => Some(ExpectedOutcome::Failed),
            Observed::Trap { .. } => Some(ExpectedOutcome::Trap),
            Observed::NotRun(_) => None,
        }
    }

    fn message(&self) -> Option<&str> {
        match self {
            Observed::Ok => None,
            Observed::Deferred(m) | Observed::Failed(m) | Observed::NotRun(m) => Some(m),
            Observed::Trap { message, .. } => Some(message),
        }
    }

    fn describe(&self) -> String {
        match self {
            Observed::Ok => "ok".to_owned(),
            Observed::Deferred(m) => format!("deferred: {m}"),
            Observed::Failed(m) => format!("failed: {m}"),
            Observed::Trap { message, .. } => message.clone(),
            Observed::NotRun(why) => format!("nothing ran ({why})"),
        }
    }
}

/// Which bookkeeping shows an object's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sync,
    Policy,
}

/// One test being run.
struct Run<'a> {
    session: &'a Session,
    file: &'a LoadedFile,
    index: usize,
    /// Fixtures by name.
    ids: BTreeMap<String, i64>,
    /// The object whose outcome `advance` reports: the last one acted on.
    last: Option<(String, Kind)>,
    failures: Vec<Failure>,
    logs: Vec<String>,
}

/// Runs test `index` of `file` on `session`.
pub(crate) async fn run_test(session: &Session, file: &LoadedFile, index: usize) -> TestResult {
    let started = Instant::now();
    let test = &file.file.tests[index];
    let mut run = Run {
        session,
        file,
        index,
        ids: BTreeMap::new(),
        last: None,
        failures: Vec::new(),
        logs: Vec::new(),
    };
    run.run(test).await;
    TestResult {
        file: file.path.clone(),
        name: test.name.clone(),
        line: file.line_of(&[Seg::Key("tests"), Seg::Index(index)]),
        failures: run.failures,
        logs: run.logs,
        duration: started.elapsed(),
    }
}

impl Run<'_> {
    fn line(&self, path: &[Seg<'_>]) -> usize {
        let mut full = vec![Seg::Key("tests"), Seg::Index(self.index)];
        full.extend_from_slice(path);
        self.file.line_of(&full)
    }

    fn fail(&mut self, path: &[Seg<'_>], message: String) {
        let line = self.line(path);
        self.failures.push(Failure { line, message });
    }

    async fn run(&mut self, test: &TestCase) {
        let file = &self.file.file;
        let mut config = file.config.clone();
        config.extend(test.config.clone());
        let mut secrets = file.secrets.clone();
        secrets.extend(test.secrets.clone());
        self.session.logs.clear();
        if let Err(e) = self.session.reset(&config, &secrets).await {
            let (key, message) = match e {
                Reset::Store(m) => ("name", format!("cannot start the test: {m}")),
                Reset::Config(m) => ("config", format!("config: {m}")),
                Reset::Secrets(m) => ("secrets", format!("secrets: {m}")),
            };
            self.fail(&[Seg::Key(key)], message);
            return;
        }
        let steps: Vec<Step> = std::iter::once(test.first_step())
            .chain(test.then.iter().cloned())
            .collect();
        // A fixture whose `handle-create` a test runs is made unpoliced.
        let unpoliced: BTreeSet<String> = steps
            .iter()
            .filter_map(|s| match s.action() {
                Ok(Action::Policy {
                    object,
                    on: PolicyOn::Create,
                    ..
                }) => Some(object),
                _ => None,
            })
            .collect();
        let shared = file.fixtures.iter().map(|f| (f, None));
        let own = test.fixtures.iter().enumerate().map(|(i, f)| (f, Some(i)));
        for (fixture, own_index) in shared.chain(own).collect::<Vec<_>>() {
            let path: Vec<Seg<'_>> = match own_index {
                Some(i) => vec![Seg::Key("fixtures"), Seg::Index(i)],
                None => vec![Seg::Key("name")],
            };
            if let Err(message) = self
                .create(fixture, !unpoliced.contains(&fixture.name))
                .await
            {
                let place = if own_index.is_some() {
                    String::new()
                } else {
                    " (a fixture of the file)".to_owned()
                };
                self.fail(
                    &path,
                    format!("fixture `{}`{place}: {message}", fixture.name),
                );
                self.logs = self.session.logs.take();
                return;
            }
        }
        for (n, step) in steps.iter().enumerate() {
            let at: Vec<Seg<'_>> = if n == 0 {
                Vec::new()
            } else {
                vec![Seg::Key("then"), Seg::Index(n - 1)]
            };
            self.step(step, &at).await;
            if !self.failures.is_empty() {
                break;
            }
        }
    }

    async fn create(&mut self, fixture: &Fixture, police: bool) -> Result<(), String> {
        if self.ids.contains_key(&fixture.name) {
            return Err("another fixture has this name".into());
        }
        let fields = self.resolve_map(&fixture.fields)?;
        let object = self
            .session
            .create_fixture(&fixture.model, fields, police)
            .await
            .map_err(|e| format!("{e:#}"))?;
        self.ids.insert(fixture.name.clone(), object.id);
        Ok(())
    }

    /// `value` with every `{ref: NAME}` replaced by the fixture's id.
    fn resolve(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::Object(map) if map.len() == 1 && map.contains_key("ref") => {
                let name = map["ref"].as_str().ok_or("`ref` takes a fixture's name")?;
                Value::from(self.id(name)?)
            }
            Value::Object(map) => Value::Object(self.resolve_map(map)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }

    fn resolve_map(&self, map: &Map<String, Value>) -> Result<Map<String, Value>, String> {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
            .collect()
    }

    fn id(&self, name: &str) -> Result<i64, String> {
        self.ids.get(name).copied().ok_or_else(|| {
            let known: Vec<&str> = self.ids.keys().map(String::as_str).collect();
            format!(
                "no fixture is named `{name}` (fixtures: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )
        })
    }

    async fn step(&mut self, step: &Step, at: &[Seg<'_>]) {
        let Ok(action) = step.action() else {
            // Checked when the file was read.
            return;
        };
        let before: BTreeSet<i64> = match self.session.objects().await {
            Ok(all) => all.into_keys().collect(),
            Err(e) => {
                self.fail(at, format!("the store failed: {e:#}"));
                return;
            }
        };
        self.session.backend.reset(&step.http);
        let calls_before = self.session.invocations();
        let observed = self.act(&action).await;
        let calls = self.session.invocations() - calls_before;
        let problems = self.session.backend.finish();
        let step_logs = self.session.logs.take();
        self.logs.extend(step_logs.iter().cloned());
        let observed = match observed {
            Ok(observed) => observed,
            Err(message) => {
                self.fail(at, message);
                return;
            }
        };
        if !problems.is_empty() {
            // What the step did next follows from the wrong exchange:
            // its expectations would only repeat it.
            for problem in problems {
                let mut path = at.to_vec();
                if let Some(i) = problem.exchange {
                    path.extend([Seg::Key("http"), Seg::Index(i)]);
                }
                self.fail(&path, problem.message);
            }
            if let Some(observed) = observed {
                self.fail(
                    at,
                    format!(
                        "(expectations not checked: the HTTP traffic differs) the step ended {}",
                        observed.describe()
                    ),
                );
            }
            return;
        }
        let mut at_expect = at.to_vec();
        at_expect.push(Seg::Key("expect"));
        self.check(&step.expect, observed, &before, &at_expect)
            .await;
        self.check_logs_and_calls(&step.expect, &step_logs, calls, &at_expect);
    }

    /// Does `action`; what it observed, or why it could not be done.
    async fn act(&mut self, action: &Action) -> Result<Option<Observed>, String> {
        let host = &self.session.host;
        let core = host.core();
        let store = |e: syncplane_core::Error| format!("{e:#}");
        match action {
            Action::Sync { object, changes } => {
                let id = self.id(object)?;
                self.change(id, changes.as_ref()).await?;
                self.session
                    .police_all()
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let report = host
                    .engine()
                    .run_pass_of(PassScope::Steps)
                    .await
                    .map_err(|e| format!("the engine failed: {e:#}"))?;
                self.last = Some((object.clone(), Kind::Sync));
                if report.handled == 0 {
                    return Err(format!(
                        "the engine ran nothing for `{object}`: does a sync step of the service observe its model?"
                    ));
                }
                Ok(Some(sync_outcome(core.get(id).await.map_err(store)?)))
            }
            Action::Delete { object } => {
                let id = self.id(object)?;
                core.delete(id).await.map_err(store)?;
                self.session
                    .police_all()
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                host.engine()
                    .run_pass_of(PassScope::Steps)
                    .await
                    .map_err(|e| format!("the engine failed: {e:#}"))?;
                self.last = Some((object.clone(), Kind::Sync));
                Ok(Some(sync_outcome(core.get(id).await.map_err(store)?)))
            }
            Action::Policy {
                object,
                on,
                changes,
            } => {
                let id = self.id(object)?;
                match on {
                    PolicyOn::Create => {
                        if let Some(changes) = changes {
                            let changes = self.resolve_map(changes)?;
                            core.update(id, changes).await.map_err(store)?;
                        }
                    }
                    PolicyOn::Update => self.change(id, changes.as_ref()).await?,
                    PolicyOn::Delete => {
                        core.delete(id).await.map_err(store)?;
                    }
                }
                let report = host
                    .engine()
                    .run_pass_of(PassScope::Policies)
                    .await
                    .map_err(|e| format!("the engine failed: {e:#}"))?;
                self.last = Some((object.clone(), Kind::Policy));
                if report.handled == 0 {
                    return Err(format!(
                        "the engine ran no policy for `{object}`: does a model policy of the service police its model?"
                    ));
                }
                Ok(Some(policy_outcome(core.get(id).await.map_err(store)?)))
            }
            Action::Pull { step } => {
                let outcome = host
                    .run_pull_step(&self.session.service, step)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                self.last = None;
                Ok(Some(Observed::of_call(outcome)))
            }
            Action::Event(spec) => {
                let value = match &spec.value {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                let event = Event {
                    topic: spec.topic.clone(),
                    key: spec.key.clone(),
                    value,
                    timestamp: self.session.clock_secs(),
                };
                let outcome = host
                    .deliver_event(&self.session.service, &spec.step, &event)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                self.last = None;
                Ok(Some(Observed::of_call(outcome)))
            }
            Action::Advance(by) => {
                self.session.clock.advance(*by);
                host.engine()
                    .run_pass_of(PassScope::All)
                    .await
                    .map_err(|e| format!("the engine failed: {e:#}"))?;
                let Some((name, kind)) = self.last.clone() else {
                    return Ok(None);
                };
                let object = core.get(self.id(&name)?).await.map_err(store)?;
                Ok(Some(match kind {
                    Kind::Sync => sync_outcome(object),
                    Kind::Policy => policy_outcome(object),
                }))
            }
        }
    }

    /// A user's update of `id` (`changes`), or a touch without changes:
    /// either way a new version, pending again.
    async fn change(&self, id: i64, changes: Option<&Map<String, Value>>) -> Result<(), String> {
        let core = self.session.host.core();
        match changes {
            Some(changes) => {
                let changes = self.resolve_map(changes)?;
                core.update(id, changes)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
            }
            None => {
                let touch = async {
                    let mut tx = core.begin().await?;
                    tx.touch(id).await?;
                    tx.commit().await
                };
                touch.await.map_err(|e| format!("{e:#}"))?;
            }
        }
        Ok(())
    }

    async fn check(
        &mut self,
        expect: &Expect,
        observed: Option<Observed>,
        before: &BTreeSet<i64>,
        at: &[Seg<'_>],
    ) {
        let key = |k: &'static str| {
            let mut p = at.to_vec();
            p.push(Seg::Key(k));
            p
        };
        if expect.outcome.is_some()
            || expect.message.is_some()
            || expect.message_contains.is_some()
            || expect.trap.is_some()
        {
            match &observed {
                None => self.fail(
                    &key("outcome"),
                    "outcome: this action has no outcome to check (`advance` reports the object acted on before it)".into(),
                ),
                Some(observed) => self.check_outcome(expect, observed, &key),
            }
        }
        let all = match self.session.objects().await {
            Ok(all) => all,
            Err(e) => {
                self.fail(at, format!("the store failed: {e:#}"));
                return;
            }
        };
        for (name, fields) in &expect.objects {
            let mut path = key("objects");
            path.push(Seg::Key(name));
            let id = match self.id(name) {
                Ok(id) => id,
                Err(message) => {
                    self.fail(&path, format!("objects.{name}: {message}"));
                    continue;
                }
            };
            let expected = match self.resolve_map(fields) {
                Ok(e) => e,
                Err(message) => {
                    self.fail(&path, format!("objects.{name}: {message}"));
                    continue;
                }
            };
            let Some(object) = all.get(&id) else {
                self.fail(
                    &path,
                    format!("objects.{name}: the object (id {id}) no longer exists: it was purged"),
                );
                continue;
            };
            for (field, want, got) in fields_match(&expected, &object.fields) {
                let mut at_field = path.clone();
                at_field.push(Seg::Key(field));
                let got = got.map_or_else(
                    || format!("(no field `{field}` in {})", object.model),
                    |v| show(&v),
                );
                self.fail(
                    &at_field,
                    format!(
                        "objects.{name}.{field} ({} {id})\n  expected: {}\n  actual:   {got}",
                        object.model,
                        show(want)
                    ),
                );
            }
        }
        if let Some(expected) = &expect.created {
            let created: Vec<&Object> = all.values().filter(|o| !before.contains(&o.id)).collect();
            self.check_created(expected, &created, &key("created"));
        }
        if let Some(names) = &expect.deleted {
            for name in names {
                let id = match self.id(name) {
                    Ok(id) => id,
                    Err(message) => {
                        self.fail(&key("deleted"), format!("deleted: {message}"));
                        continue;
                    }
                };
                if let Some(object) = all.get(&id)
                    && !object.is_deleted()
                {
                    self.fail(
                        &key("deleted"),
                        format!("deleted: `{name}` ({} {id}) is not deleted", object.model),
                    );
                }
            }
        }
    }

    fn check_logs_and_calls(
        &mut self,
        expect: &Expect,
        logs: &[String],
        calls: u64,
        at: &[Seg<'_>],
    ) {
        let key = |k: &'static str| {
            let mut p = at.to_vec();
            p.push(Seg::Key(k));
            p
        };
        for text in &expect.logs {
            if !logs.iter().any(|line| line.contains(text.as_str())) {
                let mut shown = String::new();
                for line in logs {
                    shown.push_str("\n    ");
                    shown.push_str(line);
                }
                self.fail(
                    &key("logs"),
                    format!(
                        "logs: no log record of this action contains {text:?}; its records were:{}",
                        if shown.is_empty() {
                            " none".to_owned()
                        } else {
                            shown
                        }
                    ),
                );
            }
        }
        if let Some(want) = expect.invocations
            && want != calls
        {
            self.fail(
                &key("invocations"),
                format!("invocations of the service's sync steps\n  expected: {want}\n  actual:   {calls}"),
            );
        }
    }

    fn check_outcome<'p>(
        &mut self,
        expect: &Expect,
        observed: &Observed,
        key: &dyn Fn(&'static str) -> Vec<Seg<'p>>,
    ) {
        if let Some(want) = expect.outcome
            && observed.kind() != Some(want)
        {
            self.fail(
                &key("outcome"),
                format!(
                    "outcome\n  expected: {}\n  actual:   {}",
                    want.name(),
                    observed.describe()
                ),
            );
        }
        let message = observed.message().unwrap_or_default();
        if let Some(want) = &expect.message
            && want != message
        {
            self.fail(
                &key("message"),
                format!("message\n  expected: {want:?}\n  actual:   {message:?}"),
            );
        }
        if let Some(want) = &expect.message_contains
            && !message.contains(want.as_str())
        {
            self.fail(
                &key("message_contains"),
                format!("message\n  expected to contain: {want:?}\n  actual: {message:?}"),
            );
        }
        if let Some(want) = &expect.trap {
            let actual = match observed {
                Observed::Trap { cause, .. } => cause.clone(),
                other => format!("no trap ({})", other.describe()),
            };
            if *want != actual {
                self.fail(
                    &key("trap"),
                    format!("trap cause\n  expected: {want}\n  actual:   {actual}"),
                );
            }
        }
    }

    fn check_created(
        &mut self,
        expected: &[crate::format::ExpectedObject],
        created: &[&Object],
        at: &[Seg<'_>],
    ) {
        let mut left: Vec<&Object> = created.to_vec();
        let mut missing = Vec::new();
        for (i, want) in expected.iter().enumerate() {
            let fields = match self.resolve_map(&want.fields) {
                Ok(f) => f,
                Err(message) => {
                    self.fail(at, format!("created[{i}]: {message}"));
                    return;
                }
            };
            let found = left.iter().position(|o| {
                o.model == want.model
                    && fields
                        .iter()
                        .all(|(k, v)| o.fields.get(k).is_some_and(|a| values_match(v, a)))
            });
            match found {
                Some(p) => {
                    left.remove(p);
                }
                None => missing.push((i, want.model.clone(), fields)),
            }
        }
        if missing.is_empty() && left.is_empty() {
            return;
        }
        let mut text = format!(
            "created: expected {} object{}, the action created {}",
            expected.len(),
            if expected.len() == 1 { "" } else { "s" },
            created.len()
        );
        for (i, model, fields) in &missing {
            text.push_str(&format!(
                "\n  not created: [{i}] {model} {}",
                show(&Value::Object(fields.clone()))
            ));
        }
        for object in &left {
            text.push_str(&format!(
                "\n  created, not expected: {} {} {}",
                object.model,
                object.id,
                show(&Value::Object(user_fields(object)))
            ));
        }
        let path = match missing.first() {
            Some((i, ..)) => {
                let mut p = at.to_vec();
                p.push(Seg::Index(*i));
                p
            }
            None => at.to_vec(),
        };
        self.fail(&path, text);
    }
}

/// An object's fields without bookkeeping, to show what was created.
fn user_fields(object: &Object) -> Map<String, Value> {
    const BOOKKEEPING: &[&str] = &[
        "created",
        "updated",
        "enacted",
        "policed",
        "backend_register",
        "backend_need_delete",
        "backend_need_reap",
        "changed_by_step",
        "changed_by_policy",
        "leaf_model_name",
        "policy_code",
        "policy_status",
        "backend_code",
        "backend_status",
        "deleted",
        "write_protect",
        "lazy_blocked",
        "no_sync",
        "no_policy",
    ];
    object
        .fields
        .iter()
        .filter(|(k, v)| !BOOKKEEPING.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The outcome of an object's sync (or teardown) as the engine recorded
/// it; a purged object was torn down.
fn sync_outcome(object: Option<Object>) -> Observed {
    let Some(object) = object else {
        return Observed::Ok;
    };
    let status = object
        .str_field(field::BACKEND_STATUS)
        .unwrap_or_default()
        .to_owned();
    match object
        .fields
        .get(field::BACKEND_CODE)
        .and_then(Value::as_i64)
    {
        Some(1) => Observed::Ok,
        Some(2) => Observed::failed(status),
        _ if status.is_empty() => Observed::NotRun("it is still pending".into()),
        _ => Observed::Deferred(status),
    }
}

/// The outcome of an object's model policies as the engine recorded it.
fn policy_outcome(object: Option<Object>) -> Observed {
    let Some(object) = object else {
        return Observed::NotRun("the object is gone".into());
    };
    let status = object
        .str_field(field::POLICY_STATUS)
        .unwrap_or_default()
        .to_owned();
    match object
        .fields
        .get(field::POLICY_CODE)
        .and_then(Value::as_i64)
    {
        Some(1) => Observed::Ok,
        Some(2) => Observed::failed(status),
        _ if status.is_empty() => Observed::NotRun("its policies have not run".into()),
        _ => Observed::Deferred(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_starting_with_trap_is_a_trap_with_its_cause() {
        assert_eq!(
            Observed::failed("trap (crash): step `s` of service `x` trapped".into()),
            Observed::Trap {
                cause: "crash".into(),
                message: "trap (crash): step `s` of service `x` trapped".into()
            }
        );
        assert_eq!(
            Observed::failed("Maybe not".into()),
            Observed::Failed("Maybe not".into())
        );
    }
}
