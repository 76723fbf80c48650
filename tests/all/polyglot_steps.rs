//! Model policies, pull steps and event steps written in Python and in
//! JavaScript (issue 17): a service made by `service new`, given one of
//! each beside its sync step, built with componentize-py or
//! componentize-js by `service install`, and run by the real binary: the
//! policy answers an object created over REST, the pull step imports an
//! object once, and the event step turns a published event into one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::toolchains::{componentize_js, componentize_py, service_new, syncplane};
use crate::util::{Server, assert_success};

/// Components are compiled when first loaded; generous for a busy machine.
const LIMIT: Duration = Duration::from_secs(120);

/// The three steps in Python, for model `model`.
fn python_steps(model: &str) -> [(&'static str, String); 3] {
    [
        (
            "police_items",
            format!(
                "from models import {model}\n\
                 from syncplane import ModelPolicy, declarative, export_model_policy\n\n\
                 class Police(ModelPolicy[{model}]):\n\
                 \x20   model = {model}\n\n\
                 \x20   def handle_create(self, o: {model}) -> None:\n\
                 \x20       if o.name.startswith(\"ask-\"):\n\
                 \x20           declarative.create(\"{model}\", {{\"name\": \"answer-\" + o.name[4:]}})\n\n\
                 WitWorld = export_model_policy(Police)\n"
            ),
        ),
        (
            "pull_items",
            format!(
                "from syncplane import PullStep, declarative, export_pull_step\n\n\
                 class Pull(PullStep):\n\
                 \x20   def pull_records(self) -> None:\n\
                 \x20       if not declarative.find(\"{model}\", \"name\", \"pulled\"):\n\
                 \x20           declarative.create(\"{model}\", {{\"name\": \"pulled\"}})\n\n\
                 WitWorld = export_pull_step(Pull)\n"
            ),
        ),
        (
            "track_items",
            format!(
                "from syncplane import Event, EventStep, declarative, export_event_step\n\n\
                 class Track(EventStep):\n\
                 \x20   def process_event(self, event: Event) -> None:\n\
                 \x20       declarative.create(\"{model}\", {{\"name\": \"event-\" + event.value}})\n\n\
                 WitWorld = export_event_step(Track)\n"
            ),
        ),
    ]
}

/// The three steps in JavaScript, for model `model`.
fn js_steps(model: &str) -> [(&'static str, String); 3] {
    [
        (
            "police_items",
            format!(
                "import {{ create, exportModelPolicy }} from \"syncplane-sdk/declarative\";\n\
                 import {{ {model} }} from \"./models.js\";\n\n\
                 const policy = {{\n\
                 \x20 handleCreate(o) {{\n\
                 \x20   if (o.name.startsWith(\"ask-\")) create(\"{model}\", {{ name: \"answer-\" + o.name.slice(4) }});\n\
                 \x20 }},\n\
                 }};\n\n\
                 export const {{ handleCreate, handleUpdate, handleDelete }} = exportModelPolicy({model}, policy);\n"
            ),
        ),
        (
            "pull_items",
            format!(
                "import {{ create, exportPullStep, find }} from \"syncplane-sdk/declarative\";\n\n\
                 export const {{ pullRecords }} = exportPullStep({{\n\
                 \x20 pullRecords() {{\n\
                 \x20   if (find(\"{model}\", \"name\", \"pulled\").length === 0) create(\"{model}\", {{ name: \"pulled\" }});\n\
                 \x20 }},\n\
                 }});\n"
            ),
        ),
        (
            "track_items",
            format!(
                "import {{ create, exportEventStep }} from \"syncplane-sdk/declarative\";\n\n\
                 export const {{ processEvent }} = exportEventStep({{\n\
                 \x20 processEvent(event) {{\n\
                 \x20   create(\"{model}\", {{ name: \"event-\" + event.value }});\n\
                 \x20 }},\n\
                 }});\n"
            ),
        ),
    ]
}

/// `service new NAME --lang LANG`, with the three steps added to its
/// sources and manifest.
fn service_with_steps(work: &Path, name: &str, lang: &str, model: &str) -> PathBuf {
    let dir = service_new(work, name, lang, model);
    let (steps, extension) = match lang {
        "python" => (python_steps(model), "py"),
        _ => (js_steps(model), "js"),
    };
    for (step, source) in &steps {
        std::fs::write(dir.join(format!("src/{step}.{extension}")), source).expect("step source");
    }
    let manifest = dir.join("syncplane.toml");
    let mut text = std::fs::read_to_string(&manifest).expect("manifest");
    text.push_str(&format!(
        "\n[[model_policies]]\nname = \"police_items\"\ncomponent = \"build/police_items.wasm\"\nmodel = \"{model}\"\n\
         \n[[pull_steps]]\nname = \"pull_items\"\ncomponent = \"build/pull_items.wasm\"\ninterval = \"200ms\"\n\
         \n[[event_steps]]\nname = \"track_items\"\ncomponent = \"build/track_items.wasm\"\ntopics = [\"{name}\"]\n"
    ));
    std::fs::write(&manifest, text).expect("manifest");
    dir
}

/// The names of the objects of `collection`, sorted.
async fn names(server: &Server, collection: &str) -> Vec<String> {
    let mut names: Vec<String> = server
        .list_all(collection)
        .await
        .iter()
        .filter_map(|o| o["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

async fn policies_pull_and_event_steps_run(
    lang: &str,
    name: &str,
    model: &str,
    env: &[(&str, PathBuf)],
) {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = service_with_steps(work.path(), name, lang, model);
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--step-timeout", "5s")]);
    let out = assert_success(&syncplane(
        Some(&server),
        &["service", "install", dir.to_str().expect("utf-8 path")],
        env,
    ));
    assert!(out.contains(&format!("installed {name} 0.1.0")), "{out}");
    let collection = format!("/xosapi/v1/{name}/{}s", model.to_lowercase());

    // The policy answers an object created over REST.
    server
        .create(&collection, json!({ "name": "ask-north" }))
        .await;
    // The event step turns an event into an object.
    assert_success(&syncplane(
        Some(&server),
        &["event", "publish", name, "south"],
        &[],
    ));
    let wanted = ["answer-north", "ask-north", "event-south", "pulled"];
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < LIMIT {
        seen = names(&server, &collection).await;
        if wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, wanted, "{lang}: {}", server.log());
    // The pull step keeps running and imports its object once.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(names(&server, &collection).await, wanted, "{lang}");
    let status = server.get("/syncplane/v1/status").await;
    let service = &status["services"][0];
    let pull = &service["pull_steps"][0];
    assert!(pull["runs"].as_u64() >= Some(2), "{status}");
    assert_eq!(pull["failed"], 0, "{status}");
    let events = &service["event_steps"][0];
    assert_eq!(events["events"], 1, "{status}");
    assert_eq!(events["failed"], 0, "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_policy_pull_step_and_event_step_run() {
    let env = [("SYNCPLANE_COMPONENTIZE_PY", componentize_py())];
    policies_pull_and_event_steps_run("python", "items-py", "ItemPy", &env).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_policy_pull_step_and_event_step_run() {
    let env = [("SYNCPLANE_COMPONENTIZE_JS", componentize_js())];
    policies_pull_and_event_steps_run("js", "items-js", "ItemJs", &env).await;
}
