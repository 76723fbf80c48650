//! The test file format (`tests/*.yaml` in a service directory), read
//! strictly: an unknown key is an error naming its file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Directories of other services whose models the fixtures use; only
    /// their models are installed (their components are not run).
    #[serde(default)]
    pub services: Vec<PathBuf>,
    /// Config values every test of the file starts with.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret values every test of the file starts with.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Objects every test of the file starts with.
    #[serde(default)]
    pub fixtures: Vec<Fixture>,
    /// The tests, run in order, each on a fresh set of objects.
    pub tests: Vec<TestCase>,
}

/// An object a test starts with. Fixtures are created in order, as
/// enacted and policed objects (the world as it is before the action):
/// only the object an action names runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// How actions and expectations refer to it.
    pub name: String,
    /// Its model: a model of the service, of core (`Site`), or of a
    /// service named in `services`.
    pub model: String,
    /// Its fields as REST takes them (`owner_id` for a link). A value
    /// `{ref: NAME}` is the id of the fixture `NAME`.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// One test: fixtures, config, an action with its HTTP exchanges and
/// expectations, then optional further actions (`then`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// The test's name, unique in its file; `--filter` matches it.
    pub name: String,
    /// Objects this test adds to the file's.
    #[serde(default)]
    pub fixtures: Vec<Fixture>,
    /// Config values over the file's.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret values over the file's.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Syncs the fixture of this name (see [`Step`]).
    #[serde(default)]
    pub sync: Option<String>,
    /// See [`Step::delete`].
    #[serde(default)]
    pub delete: Option<String>,
    /// See [`Step::policy`].
    #[serde(default)]
    pub policy: Option<String>,
    /// See [`Step::on`].
    #[serde(default)]
    pub on: Option<PolicyOn>,
    /// See [`Step::changes`].
    #[serde(default)]
    pub changes: Option<Map<String, Value>>,
    /// See [`Step::pull`].
    #[serde(default)]
    pub pull: Option<String>,
    /// See [`Step::event`].
    #[serde(default)]
    pub event: Option<EventSpec>,
    /// See [`Step::advance`].
    #[serde(default)]
    pub advance: Option<String>,
    /// See [`Step::http`].
    #[serde(default)]
    pub http: Vec<Exchange>,
    /// See [`Step::expect`].
    #[serde(default)]
    pub expect: Expect,
    /// Further actions, in order, each with its own exchanges and
    /// expectations, on the objects as the previous one left them.
    #[serde(default)]
    pub then: Vec<Step>,
}

impl TestCase {
    /// The test's first action, as a [`Step`].
    pub fn first_step(&self) -> Step {
        Step {
            sync: self.sync.clone(),
            delete: self.delete.clone(),
            policy: self.policy.clone(),
            on: self.on,
            changes: self.changes.clone(),
            pull: self.pull.clone(),
            event: self.event.clone(),
            advance: self.advance.clone(),
            http: self.http.clone(),
            expect: self.expect.clone(),
        }
    }
}

/// One action and what it must do. Exactly one of `sync`, `delete`,
/// `policy`, `pull`, `event` and `advance`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Syncs the fixture of this name: its sync steps run on it as the
    /// engine runs them (`changes` applied first, as a user's update).
    #[serde(default)]
    pub sync: Option<String>,
    /// Deletes the fixture of this name as a user would (with what
    /// cascades), then runs the teardown (`delete-record`) and purge.
    #[serde(default)]
    pub delete: Option<String>,
    /// Runs the model policies of the fixture of this name, for `on`.
    #[serde(default)]
    pub policy: Option<String>,
    /// Which policy handler runs: `create` (default; the fixture was never
    /// policed), `update` (after `changes`) or `delete` (the fixture is
    /// deleted first).
    #[serde(default)]
    pub on: Option<PolicyOn>,
    /// Field values changed, as a user's update, before `sync` or
    /// `policy`.
    #[serde(default)]
    pub changes: Option<Map<String, Value>>,
    /// Runs the pull step of this name once.
    #[serde(default)]
    pub pull: Option<String>,
    /// Hands one event to an event step.
    #[serde(default)]
    pub event: Option<EventSpec>,
    /// Moves the virtual clock forward by this long (`300ms`, `5s`), then
    /// runs whatever is due then: retries of failed and deferred objects.
    #[serde(default)]
    pub advance: Option<String>,
    /// The HTTP backend during this action: each exchange is a request the
    /// step must send and the response it gets. A request matching none
    /// fails the test (the step sees a failed request).
    #[serde(default)]
    pub http: Vec<Exchange>,
    /// What the action must have done.
    #[serde(default)]
    pub expect: Expect,
}

/// Which policy handler an action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyOn {
    /// `handle-create`.
    Create,
    /// `handle-update`.
    Update,
    /// `handle-delete`.
    Delete,
}

/// An event handed to an event step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// The event step.
    pub step: String,
    /// The topic.
    pub topic: String,
    /// The key, if any.
    #[serde(default)]
    pub key: Option<String>,
    /// The payload: text as is, anything else as JSON.
    #[serde(default)]
    pub value: Value,
}

/// A request the step must send, and the answer it gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// What the request must be.
    pub request: RequestSpec,
    /// What the step gets back.
    #[serde(default)]
    pub response: ResponseSpec,
    /// How many times the request must come. Default: 1.
    #[serde(default = "one")]
    pub times: u32,
    /// Whether the request may also not come at all.
    #[serde(default)]
    pub optional: bool,
}

fn one() -> u32 {
    1
}

/// What an expected request must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// The method. Default: `GET`.
    #[serde(default = "get")]
    pub method: String,
    /// The full URL, query included.
    pub url: String,
    /// Headers the request must have (others may be there too); names are
    /// not case sensitive.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body, exactly.
    #[serde(default)]
    pub body: Option<String>,
    /// The body as JSON, compared as values.
    #[serde(default)]
    pub json: Option<Value>,
}

fn get() -> String {
    "GET".to_owned()
}

/// The answer to an expected request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    /// The status. Default: 200.
    #[serde(default = "ok")]
    pub status: u16,
    /// Its headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Its body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// Its body as JSON (`content-type: application/json` is added).
    #[serde(default)]
    pub json: Option<Value>,
}

fn ok() -> u16 {
    200
}

impl Default for ResponseSpec {
    fn default() -> Self {
        ResponseSpec {
            status: 200,
            headers: BTreeMap::new(),
            body: None,
            json: None,
        }
    }
}

/// What an action must have done; what is left out is not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// How the call ended.
    #[serde(default)]
    pub outcome: Option<ExpectedOutcome>,
    /// The failure, deferral or trap message, exactly (`backend_status`,
    /// `policy_status`, the call's error).
    #[serde(default)]
    pub message: Option<String>,
    /// Text the message must contain.
    #[serde(default)]
    pub message_contains: Option<String>,
    /// The trap's cause: `crash`, `deadline`, `memory`, `output-limit`,
    /// `denied`, `host-error`.
    #[serde(default)]
    pub trap: Option<String>,
    /// Fixtures and the field values they must have now (others are not
    /// checked); `{ref: NAME}` is a fixture's id.
    #[serde(default)]
    pub objects: BTreeMap<String, Map<String, Value>>,
    /// Exactly the objects the action created, in any order.
    #[serde(default)]
    pub created: Option<Vec<ExpectedObject>>,
    /// Fixtures that must be deleted (marked, or purged) now.
    #[serde(default)]
    pub deleted: Option<Vec<String>>,
    /// Text each of which some guest log record of the action contains.
    #[serde(default)]
    pub logs: Vec<String>,
    /// How many times the service's sync steps (and delete steps) ran
    /// during the action: `0` says nothing was due.
    #[serde(default)]
    pub invocations: Option<u64>,
}

/// How a call may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedOutcome {
    /// Success.
    Ok,
    /// `Deferred(message)`.
    Deferred,
    /// `Failed(message)`.
    Failed,
    /// The host stopped the guest.
    Trap,
}

impl ExpectedOutcome {
    /// The name the format uses.
    pub fn name(self) -> &'static str {
        match self {
            ExpectedOutcome::Ok => "ok",
            ExpectedOutcome::Deferred => "deferred",
            ExpectedOutcome::Failed => "failed",
            ExpectedOutcome::Trap => "trap",
        }
    }
}

/// An object an action must have created.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedObject {
    /// Its model.
    pub model: String,
    /// Field values it must have.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// What an action does, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Sync a fixture.
    Sync {
        /// The fixture.
        object: String,
        /// A user's update first.
        changes: Option<Map<String, Value>>,
    },
    /// Delete a fixture and tear it down.
    Delete {
        /// The fixture.
        object: String,
    },
    /// Run policies on a fixture.
    Policy {
        /// The fixture.
        object: String,
        /// Which handler.
        on: PolicyOn,
        /// A user's update first.
        changes: Option<Map<String, Value>>,
    },
    /// Run a pull step.
    Pull {
        /// The step.
        step: String,
    },
    /// Hand an event to an event step.
    Event(EventSpec),
    /// Move the clock, run what is due.
    Advance(Duration),
}

impl Step {
    /// The one action this step names.
    ///
    /// # Errors
    ///
    /// A message when it names none, several, or keys that do not go with
    /// its action.
    pub fn action(&self) -> std::result::Result<Action, String> {
        let named: Vec<&str> = [
            ("sync", self.sync.is_some()),
            ("delete", self.delete.is_some()),
            ("policy", self.policy.is_some()),
            ("pull", self.pull.is_some()),
            ("event", self.event.is_some()),
            ("advance", self.advance.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if named.len() != 1 {
            return Err(format!(
                "a test (and each `then` entry) names exactly one action of sync, delete, policy, pull, event, advance; {}",
                if named.is_empty() {
                    "this names none".to_owned()
                } else {
                    format!("this names {}", named.join(", "))
                }
            ));
        }
        if self.on.is_some() && self.policy.is_none() {
            return Err("`on` goes with `policy`".into());
        }
        if self.changes.is_some() && self.sync.is_none() && self.policy.is_none() {
            return Err("`changes` goes with `sync` or `policy`".into());
        }
        if let Some(object) = &self.sync {
            return Ok(Action::Sync {
                object: object.clone(),
                changes: self.changes.clone(),
            });
        }
        if let Some(object) = &self.delete {
            return Ok(Action::Delete {
                object: object.clone(),
            });
        }
        if let Some(object) = &self.policy {
            let on = self.on.unwrap_or(PolicyOn::Create);
            if on == PolicyOn::Delete && self.changes.is_some() {
                return Err("`changes` does not go with `on: delete`".into());
            }
            return Ok(Action::Policy {
                object: object.clone(),
                on,
                changes: self.changes.clone(),
            });
        }
        if let Some(step) = &self.pull {
            return Ok(Action::Pull { step: step.clone() });
        }
        if let Some(event) = &self.event {
            return Ok(Action::Event(event.clone()));
        }
        let text = self.advance.as_deref().unwrap_or_default();
        humantime::parse_duration(text)
            .map(Action::Advance)
            .map_err(|e| format!("`advance: {text}` is not a duration (`300ms`, `5s`): {e}"))
    }
}

/// A test file read and parsed, with its text for locating lines.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// What it says.
    pub file: TestFile,
    /// The text, for [`LoadedFile::line_of`].
    text: String,
}

impl LoadedFile {
    /// Reads and parses `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Read`]; [`Error::Parse`] with the line and column of a
    /// syntax error, an unknown key or a value of the wrong type; also for
    /// two tests of one name and an action that is not exactly one.
    pub fn read(path: &Path) -> Result<LoadedFile> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        LoadedFile::parse(path, text)
    }

    /// Parses `text` as the file `path`.
    ///
    /// # Errors
    ///
    /// As [`LoadedFile::read`].
    pub fn parse(path: &Path, text: String) -> Result<LoadedFile> {
        let file: TestFile = serde_yaml_ng::from_str(&text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = e.to_string();
            // The location goes in front; drop its repetition at the end.
            let message = match message.rfind(" at line ") {
                Some(at) if line > 0 => message[..at].to_owned(),
                _ => message,
            };
            Error::Parse {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        })?;
        let loaded = LoadedFile {
            path: path.to_owned(),
            file,
            text,
        };
        loaded.check()?;
        Ok(loaded)
    }

    fn check(&self) -> Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for (index, test) in self.file.tests.iter().enumerate() {
            let at = |path: &[Seg<'_>]| {
                let mut full = vec![Seg::Key("tests"), Seg::Index(index)];
                full.extend_from_slice(path);
                self.line_of(&full)
            };
            if !names.insert(test.name.as_str()) {
                return Err(self.invalid(at(&[]), format!("two tests are named `{}`", test.name)));
            }
            if let Err(message) = test.first_step().action() {
                return Err(self.invalid(at(&[]), format!("test `{}`: {message}", test.name)));
            }
            for (n, step) in test.then.iter().enumerate() {
                if let Err(message) = step.action() {
                    return Err(self.invalid(
                        at(&[Seg::Key("then"), Seg::Index(n)]),
                        format!("test `{}`, then #{}: {message}", test.name, n + 1),
                    ));
                }
            }
        }
        Ok(())
    }

    fn invalid(&self, line: usize, message: String) -> Error {
        Error::Parse {
            path: self.path.clone(),
            line,
            column: 0,
            message,
        }
    }

    /// The line (1-based) of the value at `path`, e.g. `tests[2].expect.
    /// objects.zone.backend_status`, found in the text as far as it goes;
    /// 0 when not even the first part is found. Best effort: the file is
    /// expected in YAML's block style, one key a line.
    pub fn line_of(&self, path: &[Seg<'_>]) -> usize {
        let lines: Vec<&str> = self.text.lines().collect();
        // The lines of the current value, and the indent of its keys or
        // list dashes.
        let (mut from, mut end, mut child) = (0, lines.len(), 0);
        let mut found = 0;
        for seg in path {
            let hit = match seg {
                Seg::Key(key) => {
                    (from..end).find(|&i| key_indent(lines[i]) == child && is_key(lines[i], key))
                }
                Seg::Index(n) => (from..end)
                    .filter(|&i| indent_of(lines[i]) == child && is_dash(lines[i]))
                    .nth(*n),
            };
            let Some(i) = hit else { break };
            found = i + 1;
            let own = match seg {
                Seg::Key(_) => key_indent(lines[i]),
                Seg::Index(_) => indent_of(lines[i]),
            };
            end = (i + 1..end)
                .find(|&j| !blank(lines[j]) && indent_of(lines[j]) <= own)
                .unwrap_or(end);
            match seg {
                Seg::Key(_) => {
                    from = i + 1;
                    child = (from..end)
                        .find(|&j| !blank(lines[j]))
                        .map_or(usize::MAX, |j| indent_of(lines[j]));
                }
                // A list item's first key sits on its dash line.
                Seg::Index(_) => {
                    from = i;
                    child = key_indent(lines[i]);
                }
            }
        }
        found
    }
}

/// One part of a path into a test file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A list item.
    Index(usize),
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Where a line's key starts: after the dash of a list item.
fn key_indent(line: &str) -> usize {
    let rest = line.trim_start();
    match rest.strip_prefix('-') {
        Some(after) if after.starts_with(' ') => {
            indent_of(line) + 1 + (after.len() - after.trim_start().len())
        }
        _ => indent_of(line),
    }
}

fn is_dash(line: &str) -> bool {
    let t = line.trim_start();
    t == "-" || t.starts_with("- ")
}

fn blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

fn is_key(line: &str, key: &str) -> bool {
    let t = line.trim_start().trim_start_matches("- ").trim_start();
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_prefix(key))
        .and_then(|t| t.strip_prefix('"'))
        .or_else(|| t.strip_prefix(key));
    t.is_some_and(|rest| rest.starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
config:
  api_url: http://127.0.0.1:8081
fixtures:
  - name: svc
    model: HelloWorldService
    fields: {hello_from: Jhon Snow}
tests:
  - name: greets
    sync: svc
    expect:
      outcome: ok
      objects:
        svc:
          backend_status: OK
  - name: fails
    sync: svc
    then:
      - advance: 1s
        expect:
          outcome: failed
";

    fn loaded(text: &str) -> Result<LoadedFile> {
        LoadedFile::parse(Path::new("tests/t.yaml"), text.to_owned())
    }

    #[test]
    fn a_file_parses_and_its_lines_are_found_by_path() {
        let f = loaded(FILE).expect("parses");
        assert_eq!(f.file.tests.len(), 2);
        assert_eq!(f.line_of(&[Seg::Key("tests"), Seg::Index(0)]), 8);
        assert_eq!(f.line_of(&[Seg::Key("tests"), Seg::Index(1)]), 15);
        let status = [
            Seg::Key("tests"),
            Seg::Index(0),
            Seg::Key("expect"),
            Seg::Key("objects"),
            Seg::Key("svc"),
            Seg::Key("backend_status"),
        ];
        assert_eq!(f.line_of(&status), 14);
        let then = [
            Seg::Key("tests"),
            Seg::Index(1),
            Seg::Key("then"),
            Seg::Index(0),
            Seg::Key("expect"),
            Seg::Key("outcome"),
        ];
        assert_eq!(f.line_of(&then), 20);
        // A key the test does not have: the nearest line that was found.
        let missing = [Seg::Key("tests"), Seg::Index(1), Seg::Key("expect")];
        assert_eq!(f.line_of(&missing), 15);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_file_line_and_column() {
        let text = FILE.replace(
            "    expect:\n      outcome: ok",
            "    expect:\n      outcom: ok",
        );
        let e = loaded(&text).expect_err("unknown key");
        let shown = e.to_string();
        assert!(shown.starts_with("tests/t.yaml:11:"), "{shown}");
        assert!(shown.contains("unknown field `outcom`"), "{shown}");
    }

    #[test]
    fn a_test_must_name_exactly_one_action() {
        let text = FILE.replace(
            "    sync: svc\n    expect:",
            "    sync: svc\n    pull: p\n    expect:",
        );
        let e = loaded(&text).expect_err("two actions");
        assert!(
            e.to_string().starts_with("tests/t.yaml:8:")
                && e.to_string().contains("this names sync, pull"),
            "{e}"
        );
        let text = FILE.replace("      - advance: 1s\n", "      - advance: soon\n");
        let e = loaded(&text).expect_err("bad duration");
        assert!(e.to_string().starts_with("tests/t.yaml:18:"), "{e}");
    }

    #[test]
    fn two_tests_of_one_name_are_refused() {
        let text = FILE.replace("name: fails", "name: greets");
        let e = loaded(&text).expect_err("duplicate");
        assert!(
            e.to_string().contains("two tests are named `greets`"),
            "{e}"
        );
    }
}
