//! `syncplane service ...`: install, inspect and configure services on a
//! running server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::args::{ConfigArgs, InspectArgs, InstallArgs, SecretArgs};
use crate::client::{Client, package_from_dir};

/// `service install`: shows what the package asks for, then installs it
/// when the server's policy (with `--allow`) allows all of it.
pub async fn install(args: InstallArgs) -> anyhow::Result<ExitCode> {
    check_allows(&args.allow)?;
    let package = package_from_dir(&args.path)?;
    let client = Client::from_args(&args.server);
    let body = json!({ "package": package, "allow": args.allow });
    let inspection = client
        .json(
            reqwest::Method::POST,
            "/syncplane/v1/services/inspect",
            Some(&body),
        )
        .await
        .context("checking the package failed")?;
    eprint!("{}", render_inspection(&inspection));
    if refused(&inspection) {
        eprintln!("not installed: nothing was changed on the server");
        return Ok(ExitCode::FAILURE);
    }
    let installed = client
        .install(&package, &args.allow)
        .await
        .context("installing the service failed")?;
    println!(
        "installed {} {}: models {}; sync steps {}",
        installed["name"].as_str().unwrap_or("?"),
        installed["version"].as_str().unwrap_or("?"),
        installed["models"],
        installed["sync_steps"],
    );
    Ok(ExitCode::SUCCESS)
}

/// `service inspect PATH|NAME`.
pub async fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    check_allows(&args.allow)?;
    let client = Client::from_args(&args.server);
    let path = Path::new(&args.target);
    let answer = if path.join(syncplane_platform::MANIFEST_FILE).is_file() {
        let package = package_from_dir(path)?;
        let body = json!({ "package": package, "allow": args.allow });
        client
            .json(
                reqwest::Method::POST,
                "/syncplane/v1/services/inspect",
                Some(&body),
            )
            .await
            .context("inspecting the package failed")?
    } else {
        let Some(shown) = client
            .get_optional(&format!("/syncplane/v1/services/{}", args.target))
            .await?
        else {
            bail!(
                "`{}` is neither a service directory (no {} in it) nor an installed service",
                args.target,
                syncplane_platform::MANIFEST_FILE
            );
        };
        shown
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else if answer.get("service").is_some() {
        print!("{}", render_installed(&answer));
    } else {
        print!("{}", render_inspection(&answer));
    }
    Ok(ExitCode::SUCCESS)
}

/// `service config NAME [key=value...]`.
pub async fn config(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server);
    let settings = if args.values.is_empty() {
        client
            .json(
                reqwest::Method::GET,
                &format!("/syncplane/v1/services/{}", args.name),
                None,
            )
            .await?["settings"]
            .take()
    } else {
        let mut values = BTreeMap::new();
        for pair in &args.values {
            let Some((key, value)) = pair.split_once('=') else {
                bail!("`{pair}`: write KEY=VALUE (KEY= unsets the value)");
            };
            values.insert(key.to_owned(), value.to_owned());
        }
        client
            .json(
                reqwest::Method::PUT,
                &format!("/syncplane/v1/services/{}/config", args.name),
                Some(&json!(values)),
            )
            .await
            .context("setting the config failed")?
    };
    print!("{}", render_settings(&settings));
    Ok(ExitCode::SUCCESS)
}

/// `service secret NAME KEY [--file F | --unset]`: the value comes from
/// stdin or a file and is never printed.
pub async fn secret(args: SecretArgs) -> anyhow::Result<ExitCode> {
    let value = if args.unset {
        String::new()
    } else if let Some(file) = &args.file {
        std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the secret from {}", file.display()))?
    } else {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            eprintln!("value of secret `{}` (end with Ctrl-D):", args.key);
        }
        let mut value = String::new();
        std::io::stdin()
            .take(64 << 10)
            .read_to_string(&mut value)
            .context("cannot read the secret from stdin")?;
        value
    };
    let value = value.strip_suffix('\n').unwrap_or(&value).to_owned();
    if value.is_empty() && !args.unset {
        bail!("the secret is empty; to remove it, pass --unset");
    }
    let client = Client::from_args(&args.server);
    client
        .put_text(
            &format!("/syncplane/v1/services/{}/secrets/{}", args.name, args.key),
            value,
        )
        .await
        .context("setting the secret failed")?;
    if args.unset {
        println!("secret `{}` of {} unset", args.key, args.name);
    } else {
        println!("secret `{}` of {} set", args.key, args.name);
    }
    Ok(ExitCode::SUCCESS)
}

fn check_allows(allows: &[String]) -> anyhow::Result<()> {
    for allow in allows {
        allow
            .parse::<syncplane_platform::capability::Allow>()
            .map_err(|e| anyhow::anyhow!("--allow {e}"))?;
    }
    Ok(())
}

fn refused(inspection: &Value) -> bool {
    inspection["refused"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn list(value: &Value) -> String {
    let items = strings(value);
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn render_capabilities(out: &mut String, caps: &Value) {
    let _ = writeln!(out, "  outbound HTTP:  {}", list(&caps["outbound_http"]));
    let _ = writeln!(out, "  reads models:   {}", list(&caps["models"]["read"]));
    let _ = writeln!(out, "  writes models:  {}", list(&caps["models"]["write"]));
    let _ = writeln!(out, "  config:         {}", list(&caps["config"]));
    let _ = writeln!(out, "  secrets:        {}", list(&caps["secrets"]));
}

/// What a package asks for, as install and inspect print it.
fn render_inspection(i: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "package {} {}",
        i["name"].as_str().unwrap_or("?"),
        i["version"].as_str().unwrap_or("?")
    );
    let _ = writeln!(out, "  models:         {}", list(&i["models"]));
    for kind in ["sync_steps", "model_policies", "pull_steps", "event_steps"] {
        let steps = strings(&i["steps"][kind]);
        if !steps.is_empty() {
            let _ = writeln!(
                out,
                "  {:<15} {}",
                format!("{}:", kind.replace('_', " ")),
                steps.join(", ")
            );
        }
    }
    render_capabilities(&mut out, &i["capabilities"]);
    let limits = &i["limits"];
    let _ = writeln!(
        out,
        "  limits:         {} ms per call, {} MiB memory, HTTP {} ms / {} bytes, {} log bytes",
        limits["deadline_ms"],
        limits["memory_mib"],
        limits["http_timeout_ms"],
        limits["http_body_bytes"],
        limits["log_bytes"]
    );
    let refused = strings(&i["refused"]);
    if refused.is_empty() {
        out.push_str("  the server's policy allows everything it asks for\n");
    } else {
        out.push_str("  refused by the server's policy:\n");
        for r in refused {
            let _ = writeln!(out, "    - {r}");
        }
    }
    out
}

fn render_installed(shown: &Value) -> String {
    let service = &shown["service"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "service {} {}",
        service["name"].as_str().unwrap_or("?"),
        service["version"].as_str().unwrap_or("?")
    );
    let _ = writeln!(out, "  models:         {}", list(&service["models"]));
    let steps: Vec<String> = service["sync_steps"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let _ = writeln!(out, "  sync steps:     {}", steps.join(", "));
    render_capabilities(&mut out, &service["capabilities"]);
    let allowed = strings(&service["allowed"]);
    if !allowed.is_empty() {
        let _ = writeln!(
            out,
            "  installed with: --allow {}",
            allowed.join(" --allow ")
        );
    }
    out.push_str(&render_settings(&shown["settings"]));
    out
}

fn render_settings(settings: &Value) -> String {
    let mut out = String::new();
    for name in strings(&settings["config_declared"]) {
        let value = settings["config"][&name].as_str().unwrap_or("(unset)");
        let _ = writeln!(out, "  config {name} = {value}");
    }
    if let Some(secrets) = settings["secrets"].as_object() {
        for (name, set) in secrets {
            let state = if set.as_bool() == Some(true) {
                "set"
            } else {
                "unset"
            };
            let _ = writeln!(out, "  secret {name}: {state}");
        }
    }
    out
}
