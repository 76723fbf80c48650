//! The service package manifest (`syncplane.toml`), as authors write it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use syncplane_runtime::capability::Grants;

use crate::error::{Error, Result};
use crate::subscription::Subscription;

/// The manifest file name in a service directory.
pub const MANIFEST_FILE: &str = "syncplane.toml";

/// A service package manifest.
///
/// ```toml
/// manifest_version = 1
///
/// [service]
/// name = "hello-world"
/// version = "1.0.0"
/// xproto = ["models/hello-world.xproto"]
///
/// [build]
/// cargo = true
///
/// [[sync_steps]]
/// name = "sync_hello_world_service"
/// component = "target/wasm32-wasip2/release/sync_hello_world_service.wasm"
/// observes = "HelloWorldService"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The manifest format; this host reads version 1.
    pub manifest_version: u32,
    /// What the service is.
    pub service: ServiceSection,
    /// How to build the components from source, if they are built here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSection>,
    /// The service's sync steps.
    #[serde(default)]
    pub sync_steps: Vec<SyncStepSection>,
    /// The service's event steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_steps: Vec<EventStepSection>,
    /// The service's pull steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_steps: Vec<PullStepSection>,
    /// The service's model policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_policies: Vec<ModelPolicySection>,
    /// What the service's components may reach beyond their own models:
    /// outbound HTTP, config values, secrets, other services' models.
    /// Nothing when absent.
    #[serde(default, skip_serializing_if = "is_default")]
    pub capabilities: Grants,
    /// Where the service's event steps get their events; the host's
    /// in-process bus when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bus: Option<EventBusSection>,
    /// The services this one needs installed (it extends or links their
    /// models, or relies on what they sync), each with the versions it
    /// works with as a semantic-version requirement: `onos = "^2.1"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, String>,
    /// Views the GUI offers for this service (its extensions of the GUI):
    /// named lists of its models' objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gui_views: Vec<GuiViewSection>,
}

/// The most `[[gui_views]]` one service may declare.
pub const MAX_GUI_VIEWS: usize = 20;

/// One `[[gui_views]]` entry: a named view of the service's objects that
/// the GUI lists on the service's section and in its navigation. A view is
/// data, never code: no script or markup of a package reaches a page.
///
/// ```toml
/// [[gui_views]]
/// title = "Failing greetings"
/// model = "HelloWorldServiceInstance"
/// query = "failed=1&ordering=-updated"
/// description = "Instances whose sync failed, latest change first"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuiViewSection {
    /// What the view is called (one line, at most 80 characters).
    pub title: String,
    /// One of the service's models.
    pub model: String,
    /// The list's URL query, as the GUI writes it: filters
    /// (`hello_to__icontains=x`), `failed=1`, `ordering=-updated`,
    /// `page_size`. Checked when the view is opened, as any URL is.
    #[serde(default)]
    pub query: String,
    /// A sentence saying what the view shows (at most 300 characters).
    #[serde(default)]
    pub description: String,
}

impl GuiViewSection {
    /// Why the view cannot be shown, if it cannot.
    fn problem(&self) -> Option<String> {
        let title = &self.title;
        if title.trim().is_empty() || title.chars().count() > 80 || title.contains(['\n', '\r']) {
            return Some(format!(
                "[[gui_views]] title {title:?} must be one line of 1 to 80 characters"
            ));
        }
        if self.description.chars().count() > 300 {
            return Some(format!(
                "[[gui_views]] `{title}`: the description is over 300 characters"
            ));
        }
        if self.query.len() > 500
            || self.query.contains(['#', '\n', '\r', ' '])
            || self.query.starts_with('?')
        {
            return Some(format!(
                "[[gui_views]] `{title}`: query {:?} must be a URL query without `?`, spaces or `#`, at most 500 bytes",
                self.query
            ));
        }
        None
    }
}

/// `[event_bus]`.
///
/// ```toml
/// [event_bus]
/// kind = "kafka"
/// endpoint = "127.0.0.1:9092"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBusSection {
    /// `in-process` (the default) or `kafka`.
    pub kind: EventBusKind,
    /// For `kafka`: `host:port` of a bootstrap broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// The kinds of event bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventBusKind {
    /// The host's own bus (`syncplane event publish`).
    InProcess,
    /// A Kafka-compatible broker.
    Kafka,
}

/// One `[[model_policies]]` entry.
///
/// ```toml
/// [[model_policies]]
/// name = "zone_policy"
/// component = "target/wasm32-wasip2/release/zone_policy.wasm"
/// model = "Zone"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPolicySection {
    /// The policy name, unique in the service (among all its steps).
    pub name: String,
    /// The component file, relative to the manifest.
    pub component: String,
    /// The model it polices (and every concrete model inheriting it).
    pub model: String,
}

/// One `[[pull_steps]]` entry.
///
/// ```toml
/// [[pull_steps]]
/// name = "pull_regions"
/// component = "target/wasm32-wasip2/release/pull_regions.wasm"
/// interval = "30s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullStepSection {
    /// The step name, unique in the service (among all its steps).
    pub name: String,
    /// The component file, relative to the manifest.
    pub component: String,
    /// How often to call `pull-records`, e.g. `30s` or `5m`; at least 100ms.
    pub interval: String,
}

impl PullStepSection {
    /// The interval as a duration.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] for text that is not a duration or is under 100 ms.
    pub fn interval(&self) -> Result<std::time::Duration> {
        let interval = humantime::parse_duration(&self.interval).map_err(|e| {
            Error::Manifest(format!(
                "pull step `{}`: interval {:?} is not a duration ({e}); write e.g. \"30s\"",
                self.name, self.interval
            ))
        })?;
        if interval < std::time::Duration::from_millis(100) {
            return Err(Error::Manifest(format!(
                "pull step `{}`: interval {:?} is shorter than 100ms",
                self.name, self.interval
            )));
        }
        Ok(interval)
    }
}

/// One `[[event_steps]]` entry.
///
/// ```toml
/// [[event_steps]]
/// name = "track_regions"
/// component = "target/wasm32-wasip2/release/track_regions.wasm"
/// topics = ["regions"]          # or: pattern = "regions\\..*"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventStepSection {
    /// The step name, unique in the service (among all its steps).
    pub name: String,
    /// The component file, relative to the manifest.
    pub component: String,
    /// The topics whose events the step receives; or `pattern`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// A regular expression: the step receives events of every topic whose
    /// whole name matches it. Exactly one of `topics` and `pattern`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl EventStepSection {
    /// What the step listens to.
    ///
    /// # Errors
    ///
    /// Neither or both of `topics` and `pattern`, or a bad pattern.
    pub fn subscription(&self) -> std::result::Result<Subscription, String> {
        match (&self.pattern, self.topics.is_empty()) {
            (Some(_), false) => Err(format!(
                "event step `{}` has both `topics` and `pattern`; give one",
                self.name
            )),
            (None, true) => Err(format!(
                "event step `{}` subscribes to no topic: give `topics` or `pattern`",
                self.name
            )),
            (None, false) => Ok(Subscription::Topics(self.topics.clone())),
            (Some(pattern), true) => Subscription::pattern(pattern).map_err(|e| e.to_string()),
        }
    }
}

/// The most memory a manifest may ask for one instance, in MiB (wasm32's
/// whole address space).
pub const MAX_MEMORY_MIB: u64 = 4096;

/// `[service]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// The service name, e.g. `hello-world`.
    pub name: String,
    /// The service version, reported to users.
    pub version: String,
    /// Who publishes the service, e.g. `acme`: with it, the package's full
    /// name is `acme/hello-world`, the name signatures sign and trust
    /// policies match (`packages = ["acme/*"]`). Letters, digits, `-` and
    /// `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// A one-line description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The xproto files with the service's models, relative to the manifest.
    pub xproto: Vec<String>,
    /// A model dependency file in the original `model-deps` JSON format
    /// (`{"User": [["Site", "site", "users"]]}`), relative to the manifest;
    /// its dependencies order syncs on top of those xproto links give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_deps: Option<String>,
    /// The syncplane versions the service runs on, as a semantic-version
    /// requirement (`">=0.4"`), for host behaviour its WIT imports cannot
    /// express. Any host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
    /// Keep a step's instance between its calls instead of instantiating
    /// afresh for each ([`syncplane_runtime::warm`]): what the guest keeps
    /// in memory survives from one call to the next. Worth it for Python
    /// and JavaScript components, whose start costs milliseconds.
    /// Default: `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reuse_instances: bool,
    /// Linear memory one of the service's instances needs, in MiB: its
    /// limit (and what it reserves under `serve --guest-memory-max`)
    /// unless the operator sets one (`service limits NAME --memory-mib`),
    /// and never more than the host's `--memory-limit-mib`. Default: the
    /// host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
}

/// `[build]`: which toolchain builds the components from source. At most
/// one of the three is true.
///
/// ```toml
/// [build]
/// python = true   # src/<name>.py -> the component each step names
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// Run `cargo build --release --target wasm32-wasip2` before installing.
    #[serde(default)]
    pub cargo: bool,
    /// Build each step's component from `src/<stem>.py` with
    /// componentize-py, `<stem>` being its component file's stem.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub python: bool,
    /// Build each step's component from `src/<stem>.js` with esbuild and
    /// componentize-js, `<stem>` being its component file's stem.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub js: bool,
}

/// A toolchain `[build]` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    /// `cargo = true`.
    Cargo,
    /// `python = true`.
    Python,
    /// `js = true`.
    Js,
}

impl BuildSection {
    /// The toolchain chosen, if any (the manifest check refuses more than
    /// one).
    pub fn toolchain(&self) -> Option<Toolchain> {
        [
            (self.cargo, Toolchain::Cargo),
            (self.python, Toolchain::Python),
            (self.js, Toolchain::Js),
        ]
        .into_iter()
        .find_map(|(on, toolchain)| on.then_some(toolchain))
    }
}

/// One `[[sync_steps]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncStepSection {
    /// The step name, unique in the service.
    pub name: String,
    /// The component file, relative to the manifest.
    pub component: String,
    /// The models whose objects the step synchronizes: one name or a list.
    /// A model stands for itself and every concrete model inheriting it.
    pub observes: Observes,
}

/// `observes = "Model"` or `observes = ["A", "B"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OneOrMany", into = "OneOrMany")]
pub struct Observes(pub Vec<String>);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Observes {
    fn from(v: OneOrMany) -> Self {
        match v {
            OneOrMany::One(s) => Observes(vec![s]),
            OneOrMany::Many(v) => Observes(v),
        }
    }
}

impl From<Observes> for OneOrMany {
    fn from(v: Observes) -> Self {
        match <[String; 1]>::try_from(v.0) {
            Ok([one]) => OneOrMany::One(one),
            Err(many) => OneOrMany::Many(many),
        }
    }
}

/// A TOML error as `origin:line:column: message`.
pub fn toml_error(origin: &str, text: &str, e: &toml::de::Error) -> String {
    let at = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{origin}:{line}:{column}")
        })
        .unwrap_or_else(|| origin.to_owned());
    format!("{at}: {}", e.message())
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Manifest {
    /// The package's full name: `publisher/name`, or the name alone when
    /// the manifest names no publisher.
    pub fn full_name(&self) -> String {
        match &self.service.publisher {
            Some(publisher) => format!("{publisher}/{}", self.service.name),
            None => self.service.name.clone(),
        }
    }

    /// Every `(step, model)` a sync step observes or a model policy polices:
    /// the models whose objects the service's components are handed.
    pub fn observed(&self) -> impl Iterator<Item = (&String, &String)> {
        self.sync_steps
            .iter()
            .flat_map(|s| s.observes.0.iter().map(move |m| (&s.name, m)))
            .chain(self.model_policies.iter().map(|p| (&p.name, &p.model)))
    }

    /// Every step's `(name, component file)`, of every kind of step.
    pub fn step_components(&self) -> impl Iterator<Item = (&String, &String)> {
        self.sync_steps
            .iter()
            .map(|s| (&s.name, &s.component))
            .chain(self.event_steps.iter().map(|s| (&s.name, &s.component)))
            .chain(self.pull_steps.iter().map(|s| (&s.name, &s.component)))
            .chain(self.model_policies.iter().map(|s| (&s.name, &s.component)))
    }

    /// Parses and checks a manifest; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] with the file, line and column of a syntax error,
    /// an unknown key, or an invalid value.
    pub fn parse(origin: &str, text: &str) -> Result<Manifest> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| Error::Manifest(toml_error(origin, text, &e)))?;
        manifest.check(origin)?;
        Ok(manifest)
    }

    /// Checks values that the format alone does not.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`].
    pub fn check(&self, origin: &str) -> Result<()> {
        let bad = |m: String| Err(Error::Manifest(format!("{origin}: {m}")));
        if self.manifest_version != 1 {
            return bad(format!(
                "manifest_version {} is not supported by this host (it reads version 1)",
                self.manifest_version
            ));
        }
        if !is_name(&self.service.name) {
            return bad(format!(
                "service name {:?} must be letters, digits, `-` and `_`",
                self.service.name
            ));
        }
        if let Some(publisher) = &self.service.publisher
            && !is_name(publisher)
        {
            return bad(format!(
                "publisher {publisher:?} must be letters, digits, `-` and `_`"
            ));
        }
        if self.service.version.contains(['\n', '\r']) {
            return bad(format!(
                "version {:?} must be one line",
                self.service.version
            ));
        }
        // Step names are unique across all kinds of step: they key the
        // package's components.
        let mut seen = std::collections::BTreeSet::new();
        let names = self
            .sync_steps
            .iter()
            .map(|s| &s.name)
            .chain(self.event_steps.iter().map(|s| &s.name))
            .chain(self.pull_steps.iter().map(|s| &s.name))
            .chain(self.model_policies.iter().map(|s| &s.name));
        for name in names {
            if !is_name(name) {
                return bad(format!(
                    "step name {name:?} must be letters, digits, `-` and `_`"
                ));
            }
            if !seen.insert(name) {
                return bad(format!("step `{name}` is declared twice"));
            }
        }
        if let Some(build) = &self.build
            && [build.cargo, build.python, build.js]
                .iter()
                .filter(|on| **on)
                .count()
                > 1
        {
            return bad("[build]: choose one toolchain of `cargo`, `python` and `js`".into());
        }
        if let Some(m) = self.service.memory_mib
            && !(1..=MAX_MEMORY_MIB).contains(&m)
        {
            return bad(format!(
                "memory_mib = {m} is out of range: 1 to {MAX_MEMORY_MIB} (MiB of linear memory one instance needs)"
            ));
        }
        if let Some(requires) = &self.service.requires
            && let Err(e) = semver::VersionReq::parse(requires)
        {
            return bad(format!(
                "requires = {requires:?} is not a version requirement ({e}); write e.g. \">=0.4\""
            ));
        }
        for (dependency, requirement) in &self.dependencies {
            if !is_name(dependency) {
                return bad(format!(
                    "[dependencies]: {dependency:?} is not a service name (letters, digits, `-` and `_`)"
                ));
            }
            if *dependency == self.service.name {
                return bad(format!(
                    "[dependencies]: the service `{dependency}` cannot depend on itself"
                ));
            }
            if let Err(e) = semver::VersionReq::parse(requirement) {
                return bad(format!(
                    "[dependencies]: {dependency} = {requirement:?} is not a version requirement ({e}); write e.g. \"^2.1\""
                ));
            }
        }
        if self.gui_views.len() > MAX_GUI_VIEWS {
            return bad(format!(
                "{} [[gui_views]]: at most {MAX_GUI_VIEWS}",
                self.gui_views.len()
            ));
        }
        if let Some(problem) = self.gui_views.iter().find_map(GuiViewSection::problem) {
            return bad(problem);
        }
        for step in &self.sync_steps {
            if step.observes.0.is_empty() {
                return bad(format!("step `{}` observes no model", step.name));
            }
        }
        for step in &self.event_steps {
            if let Err(message) = step.subscription() {
                return bad(message);
            }
        }
        if let Some(bus) = &self.event_bus
            && bus.kind == EventBusKind::Kafka
            && bus.endpoint.as_deref().is_none_or(str::is_empty)
        {
            return bad("[event_bus] kind = \"kafka\" needs `endpoint = \"host:port\"`".into());
        }
        for step in &self.pull_steps {
            if let Err(e) = step.interval() {
                return bad(e.to_string());
            }
        }
        for (kind, names) in [
            ("config", &self.capabilities.config),
            ("secrets", &self.capabilities.secrets),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for name in names {
                if !is_name(name) {
                    return bad(format!(
                        "[capabilities] {kind}: name {name:?} must be letters, digits, `-` and `_`"
                    ));
                }
                if !seen.insert(name) {
                    return bad(format!("[capabilities] {kind}: `{name}` is listed twice"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_with_a_position() {
        let err = Manifest::parse(
            "syncplane.toml",
            "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\ncolour = 3\n",
        )
        .expect_err("unknown key");
        assert!(err.to_string().contains("syncplane.toml:6:1"), "{err}");
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn gui_views_are_checked_for_title_description_query_and_count() {
        let base = "manifest_version = 1\n[service]\nname = \"s\"\nversion = \"1\"\nxproto = []\n";
        let view = |fields: &str| format!("[[gui_views]]\nmodel = \"M\"\n{fields}\n");
        let ok = Manifest::parse(
            "m.toml",
            &format!(
                "{base}{}",
                view("title = \"Failing\"\nquery = \"failed=1\"")
            ),
        )
        .expect("a good view");
        assert_eq!(ok.gui_views[0].query, "failed=1");
        for (fields, says) in [
            ("title = \"\"", "must be one line of 1 to 80 characters"),
            (
                &format!("title = \"{}\"", "t".repeat(81)),
                "must be one line of 1 to 80 characters",
            ),
            (
                "title = \"t\"\nquery = \"?failed=1\"",
                "must be a URL query without `?`",
            ),
            (
                "title = \"t\"\nquery = \"a b\"",
                "must be a URL query without `?`",
            ),
            (
                &format!("title = \"t\"\ndescription = \"{}\"", "d".repeat(301)),
                "over 300 characters",
            ),
        ] {
            let err =
                Manifest::parse("m.toml", &format!("{base}{}", view(fields))).expect_err(fields);
            assert!(err.to_string().contains(says), "{fields}: {err}");
        }
        let many: String = (0..=MAX_GUI_VIEWS)
            .map(|i| view(&format!("title = \"v{i}\"")))
            .collect();
        let err = Manifest::parse("m.toml", &format!("{base}{many}")).expect_err("too many");
        assert!(err.to_string().contains("at most 20"), "{err}");
    }

    #[test]
    fn observes_takes_one_model_or_a_list() {
        let text = |observes: &str| {
            format!(
                "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\n\
                 [[sync_steps]]\nname = \"s\"\ncomponent = \"s.wasm\"\nobserves = {observes}\n"
            )
        };
        let one = Manifest::parse("m.toml", &text("\"A\"")).expect("one");
        assert_eq!(one.sync_steps[0].observes.0, ["A"]);
        let many = Manifest::parse("m.toml", &text("[\"A\", \"B\"]")).expect("many");
        assert_eq!(many.sync_steps[0].observes.0, ["A", "B"]);
        let none = Manifest::parse("m.toml", &text("[]")).expect_err("none");
        assert!(none.to_string().contains("observes no model"), "{none}");
    }

    #[test]
    fn an_event_step_subscribes_by_topics_or_by_a_pattern_never_both() {
        let base = "manifest_version = 1\n[service]\nname = \"s\"\nversion = \"1\"\nxproto = []\n";
        let event = |body: &str| {
            format!("{base}[[event_steps]]\nname = \"e\"\ncomponent = \"e.wasm\"\n{body}\n")
        };
        let by_pattern =
            Manifest::parse("m.toml", &event("pattern = \"regions\\\\..+\"")).expect("pattern");
        let subscription = by_pattern.event_steps[0].subscription().expect("compiles");
        assert!(subscription.matches("regions.eu") && !subscription.matches("regions"));
        let both = Manifest::parse("m.toml", &event("topics = [\"t\"]\npattern = \"t\""))
            .expect_err("both");
        assert!(
            both.to_string().contains("both `topics` and `pattern`"),
            "{both}"
        );
        let bad = Manifest::parse("m.toml", &event("pattern = \"(\"")).expect_err("bad regex");
        assert!(bad.to_string().contains("pattern `(`"), "{bad}");
    }

    #[test]
    fn event_steps_need_topics_and_names_unique_among_all_steps() {
        let base = "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\n\
                    [[sync_steps]]\nname = \"s\"\ncomponent = \"s.wasm\"\nobserves = \"A\"\n";
        let event = |name: &str, topics: &str| {
            format!(
                "{base}[[event_steps]]\nname = \"{name}\"\ncomponent = \"e.wasm\"\ntopics = {topics}\n"
            )
        };
        let ok = Manifest::parse("m.toml", &event("e", "[\"t\"]")).expect("valid");
        assert_eq!(ok.event_steps[0].topics, ["t"]);
        let none = Manifest::parse("m.toml", &event("e", "[]")).expect_err("no topics");
        assert!(
            none.to_string().contains("subscribes to no topic"),
            "{none}"
        );
        let twice = Manifest::parse("m.toml", &event("s", "[\"t\"]")).expect_err("dup");
        assert!(twice.to_string().contains("declared twice"), "{twice}");
    }

    #[test]
    fn pull_steps_need_a_sane_interval() {
        let pull = |interval: &str| {
            format!(
                "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\n\
                 [[pull_steps]]\nname = \"p\"\ncomponent = \"p.wasm\"\ninterval = \"{interval}\"\n"
            )
        };
        let ok = Manifest::parse("m.toml", &pull("2s")).expect("valid");
        assert_eq!(
            ok.pull_steps[0].interval().expect("interval"),
            std::time::Duration::from_secs(2)
        );
        let bad = Manifest::parse("m.toml", &pull("soon")).expect_err("not a duration");
        assert!(bad.to_string().contains("is not a duration"), "{bad}");
        let fast = Manifest::parse("m.toml", &pull("1ms")).expect_err("too short");
        assert!(fast.to_string().contains("shorter than 100ms"), "{fast}");
    }

    #[test]
    fn requirements_and_dependencies_must_be_version_requirements() {
        let text = |requires: &str, dependencies: &str| {
            format!(
                "manifest_version = 1\n[service]\nname = \"vtn\"\nversion = \"1.0.0\"\nxproto = []\n\
                 requires = \"{requires}\"\n[dependencies]\n{dependencies}\n"
            )
        };
        let ok = Manifest::parse("m.toml", &text(">=0.1", "onos = \"^2.1\"")).expect("valid");
        assert_eq!(ok.service.requires.as_deref(), Some(">=0.1"));
        assert_eq!(ok.dependencies["onos"], "^2.1");
        for (requires, dependencies, expected) in [
            (
                "soon",
                "",
                "requires = \"soon\" is not a version requirement",
            ),
            (
                ">=0.1",
                "onos = \"two\"",
                "onos = \"two\" is not a version requirement",
            ),
            (">=0.1", "vtn = \"1\"", "cannot depend on itself"),
            (">=0.1", "\"a b\" = \"1\"", "is not a service name"),
        ] {
            let bad = Manifest::parse("m.toml", &text(requires, dependencies))
                .expect_err(expected)
                .to_string();
            assert!(bad.contains(expected), "{bad}");
        }
    }

    #[test]
    fn capabilities_are_parsed_and_bad_origins_located() {
        let text = |origin: &str| {
            format!(
                "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\n\
                 [capabilities]\noutbound_http = [\"{origin}\"]\nconfig = [\"api_url\"]\nsecrets = [\"api_key\"]\n\
                 [capabilities.models]\nread = [\"core.Site\"]\nwrite = [\"other.*\"]\n"
            )
        };
        let ok = Manifest::parse("m.toml", &text("http://127.0.0.1:*")).expect("valid");
        assert_eq!(
            ok.capabilities.outbound_http[0].to_string(),
            "http://127.0.0.1:*"
        );
        assert_eq!(ok.capabilities.secrets, ["api_key"]);
        assert_eq!(ok.capabilities.models.write[0].to_string(), "other.*");
        let bad = Manifest::parse("m.toml", &text("127.0.0.1:80")).expect_err("origin");
        assert!(bad.to_string().contains("m.toml:7:"), "{bad}");
        assert!(bad.to_string().contains("is not an origin"), "{bad}");
    }

    #[test]
    fn build_names_one_toolchain() {
        let base = "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\n";
        let python = Manifest::parse("m.toml", &format!("{base}[build]\npython = true\n"))
            .expect("python alone is fine");
        assert_eq!(
            python.build.and_then(|b| b.toolchain()),
            Some(Toolchain::Python)
        );
        let js = Manifest::parse("m.toml", &format!("{base}[build]\njs = true\n")).expect("js");
        assert_eq!(js.build.and_then(|b| b.toolchain()), Some(Toolchain::Js));
        let err = Manifest::parse(
            "m.toml",
            &format!("{base}[build]\ncargo = true\npython = true\n"),
        )
        .expect_err("two toolchains");
        assert!(err.to_string().contains("choose one toolchain"), "{err}");
    }

    #[test]
    fn a_newer_manifest_version_is_refused() {
        let err = Manifest::parse(
            "m.toml",
            "manifest_version = 2\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\n",
        )
        .expect_err("version");
        assert!(
            err.to_string()
                .contains("manifest_version 2 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn memory_asked_by_a_manifest_must_fit_a_wasm32_instance() {
        let parse = |memory: &str| {
            Manifest::parse(
                "m.toml",
                &format!(
                    "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\nmemory_mib = {memory}\nreuse_instances = true\n"
                ),
            )
        };
        let ok = parse("16").expect("16 MiB");
        assert_eq!(ok.service.memory_mib, Some(16));
        assert!(ok.service.reuse_instances);
        for bad in ["0", "5000"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.to_string().contains("memory_mib"), "{err}");
        }
    }
}
