//! `syncplane demo`: the XOS hello-world tutorial, end to end, in one process.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use syncplane_core::field;

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::{Value, json};
use syncplane_core::ADMIN_EMAIL;
use syncplane_platform::{Host, HostConfig, Manifest, RetryPolicy, ServicePackage};

use crate::args::DemoArgs;
use crate::client::Client;
use crate::serve::{serve_host, shutdown_signal};

const HELLO_DIR: &str = env!("SYNCPLANE_HELLO_WORLD_DIR");
const MANIFEST: &str = include_str!(concat!(
    env!("SYNCPLANE_HELLO_WORLD_DIR"),
    "/syncplane.toml"
));
const XPROTO: &str = include_str!(concat!(
    env!("SYNCPLANE_HELLO_WORLD_DIR"),
    "/models/hello-world.xproto"
));
const RECIPE: &str = include_str!(concat!(
    env!("SYNCPLANE_HELLO_WORLD_DIR"),
    "/samples/hello-world.yaml"
));
const SYNC_SERVICE: &[u8] = include_bytes!(concat!(
    env!("SYNCPLANE_HELLO_WORLD_WASM"),
    "/sync_hello_world_service.wasm"
));
const SYNC_INSTANCE: &[u8] = include_bytes!(concat!(
    env!("SYNCPLANE_HELLO_WORLD_WASM"),
    "/sync_hello_world_service_instance.wasm"
));

const INSTANCES: &str = "/xosapi/v1/hello-world/helloworldserviceinstances";
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The hello-world package compiled into this binary.
fn hello_world_package() -> anyhow::Result<ServicePackage> {
    let manifest = Manifest::parse(&format!("{HELLO_DIR}/syncplane.toml"), MANIFEST)?;
    Ok(ServicePackage {
        manifest,
        xproto: BTreeMap::from([("models/hello-world.xproto".to_owned(), XPROTO.to_owned())]),
        model_deps: None,
        components: BTreeMap::from([
            ("sync_hello_world_service".to_owned(), SYNC_SERVICE.to_vec()),
            (
                "sync_hello_world_service_instance".to_owned(),
                SYNC_INSTANCE.to_vec(),
            ),
        ]),
    })
}

fn say(line: &str) {
    println!("\n==> {line}");
}

/// Polls `path` until `done` holds for the object (`None` once it is gone);
/// the demo is a client, so it watches the REST API as a user would.
async fn poll(
    client: &Client,
    path: &str,
    what: &str,
    done: impl Fn(Option<&Value>) -> bool,
) -> anyhow::Result<Option<Value>> {
    let started = Instant::now();
    loop {
        let object = client.get_optional(path).await?;
        if done(object.as_ref()) {
            return Ok(object);
        }
        if started.elapsed() > WAIT_LIMIT {
            bail!("gave up waiting for {what} after {WAIT_LIMIT:?}; last state: {object:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls an existing object until `done` holds.
async fn wait_for(
    client: &Client,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    poll(client, path, what, |o| o.is_some_and(&done))
        .await?
        .with_context(|| format!("{path} disappeared while waiting for {what}"))
}

fn status(o: &Value) -> String {
    format!(
        "backend_code={} backend_status={:?}",
        o[field::BACKEND_CODE],
        o[field::BACKEND_STATUS].as_str().unwrap_or("")
    )
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let data = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let password = "letmein".to_owned();
    let mut config = HostConfig::new(data.path());
    config.admin_password = Some(password.clone());
    config.engine.retry = RetryPolicy {
        retry_interval: Duration::from_secs(1),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(4),
        backoff_disabled: false,
    };
    let host = Host::open(config)
        .await
        .context("cannot open the demo data directory")?;
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api = syncplane_api::ApiConfig::default();
    let server = tokio::spawn(serve_host(host, listener, None, api, async move {
        let _ = stop_rx.await;
    }));
    let client = Client::new(&base, ADMIN_EMAIL, &password);

    say(&format!(
        "syncplane demo: server on {base}, data in {}",
        data.path().display()
    ));
    let mut summary = Vec::new();

    say("installing the hello-world service (2 sync steps as WebAssembly components)");
    let installed = client.install(&hello_world_package()?, &[]).await?;
    println!(
        "installed: models {}, steps {}",
        installed["models"], installed["sync_steps"]
    );

    say("applying the tutorial's TOSCA recipe (POST /run)");
    println!("{}", client.run_tosca(RECIPE).await?);
    let items = client.json(Method::GET, INSTANCES, None).await?;
    let id = items["items"][0]["id"]
        .as_i64()
        .context("the recipe created no HelloWorldServiceInstance")?;
    let path = format!("{INSTANCES}/{id}");
    let started = Instant::now();
    let o = wait_for(&client, &path, "the instance to sync", |o| {
        o[field::BACKEND_CODE] == 1
    })
    .await?;
    summary.push(format!(
        "created and synced HelloWorldServiceInstance {id} in {:?} ({})",
        started.elapsed(),
        status(&o)
    ));

    say("hello_to = \"Tyrion Lannister\": the step defers (\"Maybe later\"), no error state");
    client
        .json(
            Method::PUT,
            &path,
            Some(&json!({ "hello_to": "Tyrion Lannister" })),
        )
        .await?;
    let o = wait_for(&client, &path, "the deferral", |o| {
        o[field::BACKEND_STATUS] == "Maybe later"
    })
    .await?;
    summary.push(format!("deferred: {}", status(&o)));

    say(
        "hello_to = \"Joffrey Baratheon\": the step fails (\"Maybe not\") and is retried with backoff",
    );
    client
        .json(
            Method::PUT,
            &path,
            Some(&json!({ "hello_to": "Joffrey Baratheon" })),
        )
        .await?;
    let o = wait_for(&client, &path, "two failed attempts", |o| {
        o[field::BACKEND_CODE] == 2
            && serde_json::from_str::<Value>(o[field::BACKEND_REGISTER].as_str().unwrap_or("{}"))
                .is_ok_and(|r| r["failures"].as_i64() >= Some(2))
    })
    .await?;
    summary.push(format!(
        "failed and retried: {} backend_register={}",
        status(&o),
        o[field::BACKEND_REGISTER]
    ));

    say("hello_to = \"Daenerys Targaryen\": synced again");
    client
        .json(
            Method::PUT,
            &path,
            Some(&json!({ "hello_to": "Daenerys Targaryen" })),
        )
        .await?;
    let o = wait_for(&client, &path, "the resync", |o| {
        o[field::BACKEND_CODE] == 1
    })
    .await?;
    summary.push(format!("recovered: {}", status(&o)));

    say("deleting the instance: delete-record runs, then the object is purged");
    client.json(Method::DELETE, &path, None).await?;
    let started = Instant::now();
    poll(&client, &path, "the purge", |o| o.is_none()).await?;
    summary.push(format!("deleted and purged in {:?}", started.elapsed()));

    say("summary");
    for line in &summary {
        println!("  - {line}");
    }

    if args.keep_serving {
        say(&format!(
            "still serving on {base} as {ADMIN_EMAIL} / {password}; Ctrl-C to stop"
        ));
        shutdown_signal().await;
    }
    let _ = stop_tx.send(());
    server.await.context("server task failed")??;
    Ok(ExitCode::SUCCESS)
}
