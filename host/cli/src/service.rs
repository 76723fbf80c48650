//! `syncplane service ...`: install, inspect and configure services on a
//! running server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::args::{
    ConfigArgs, InspectArgs, InstallArgs, LimitsArgs, ListArgs, PackArgs, RollbackArgs, SecretArgs,
    ShowArgs, UninstallArgs,
};
use base64::Engine as _;

use crate::client::{Client, package_from_dir, package_from_path, read_packed_bytes};

/// `service install` (and `service upgrade`, with `upgrade`): shows what
/// the package asks for, then installs it when the server's policy (with
/// `--allow`) allows all of it; `--dry-run` prints the plan instead.
pub async fn install(args: InstallArgs, upgrade: bool) -> anyhow::Result<ExitCode> {
    check_allows(&args.allow)?;
    let client = Client::from_args(&args.server)?;
    let mut dependencies = Vec::new();
    // A packed file goes to the server as it is, so that the server checks
    // its digests and signatures itself.
    let (package, file) = if args.path.is_file() {
        let (bytes, packed) = read_packed_bytes(&args.path)?;
        (
            packed.package,
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        )
    } else if let Some(reference) = crate::registry::as_reference(&args.path) {
        // Pulled and verified here, then sent as the file it makes: the
        // server checks it again, against its trust policy.
        let pulled =
            crate::registry::pull_verified(&reference, &args.reach, args.allow_unsigned).await?;
        eprintln!("pulled {} ({})", pulled.reference, pulled.packed.digest);
        // The services it depends on that the server lacks, from the same
        // registry, verified alike; the server installs them first.
        for dependency in
            crate::registry::pull_dependencies(&client, &pulled, &args.reach, args.allow_unsigned)
                .await?
        {
            eprintln!(
                "pulled {} ({}), a dependency",
                dependency.reference, dependency.packed.digest
            );
            dependencies.push(base64::engine::general_purpose::STANDARD.encode(dependency.archive));
        }
        (
            pulled.packed.package,
            Some(base64::engine::general_purpose::STANDARD.encode(pulled.archive)),
        )
    } else {
        (package_from_path(&args.path)?, None)
    };
    let source = |package: &syncplane_platform::ServicePackage| match &file {
        Some(file) => ("file", json!(file)),
        None => ("package", json!(package)),
    };
    let name = &package.manifest.service.name;
    if upgrade
        && client
            .get_optional(&format!("/syncplane/v1/services/{name}"))
            .await?
            .is_none()
    {
        bail!("service `{name}` is not installed; use `syncplane service install`");
    }
    let (field, value) = source(&package);
    let body = json!({
        field: value,
        "dependencies": dependencies,
        "allow": args.allow,
        "allow_unsigned": args.allow_unsigned,
    });
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
    let body = json!({
        field: value,
        "dependencies": dependencies,
        "allow": args.allow,
        "dry_run": args.dry_run,
        "allow_downgrade": args.allow_downgrade,
        "allow_unsigned": args.allow_unsigned,
        "accept_grants": args.accept_grants,
    });
    let answer = client
        .json(reqwest::Method::POST, "/syncplane/v1/services", Some(&body))
        .await
        .context(if args.dry_run {
            "planning the change failed"
        } else {
            "installing the service failed"
        })?;
    if args.dry_run {
        print!("{}", render_plan(&answer));
        return Ok(ExitCode::SUCCESS);
    }
    for with in answer["installed_with"].as_array().into_iter().flatten() {
        println!(
            "installed {} {} (a dependency)",
            with["name"].as_str().unwrap_or("?"),
            with["version"].as_str().unwrap_or("?")
        );
    }
    println!(
        "installed {} {}: models {}; sync steps {}",
        answer["name"].as_str().unwrap_or("?"),
        answer["version"].as_str().unwrap_or("?"),
        answer["models"],
        answer["sync_steps"],
    );
    Ok(ExitCode::SUCCESS)
}

/// `service rollback NAME [--dry-run]`.
pub async fn rollback(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let path = format!(
        "/syncplane/v1/services/{}/rollback?dry_run={}",
        args.name, args.dry_run
    );
    let answer = client
        .json(reqwest::Method::POST, &path, None)
        .await
        .context("rolling back failed")?;
    if args.dry_run {
        print!("{}", render_plan(&answer));
    } else {
        println!(
            "rolled {} back to {}",
            answer["name"].as_str().unwrap_or("?"),
            answer["version"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `service uninstall NAME [--purge]`.
pub async fn uninstall(args: UninstallArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    if args.purge {
        eprintln!(
            "deleting the objects of {} and waiting for their teardown ...",
            args.name
        );
    }
    let path = format!("/syncplane/v1/services/{}?purge={}", args.name, args.purge);
    let answer = client
        .json(reqwest::Method::DELETE, &path, None)
        .await
        .context("uninstalling failed")?;
    let purged: Vec<String> = answer["purged"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| format!("{} {}", c["model"].as_str().unwrap_or("?"), c["objects"]))
                .collect()
        })
        .unwrap_or_default();
    if purged.is_empty() {
        println!("uninstalled {}", args.name);
    } else {
        println!("uninstalled {} (purged {})", args.name, purged.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `service list`.
pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let answer = client
        .json(reqwest::Method::GET, "/syncplane/v1/services", None)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let empty = Vec::new();
    let items = answer["items"].as_array().unwrap_or(&empty);
    if items.is_empty() {
        println!("no services installed");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<12} {:<9} {:<20} previous",
        "name", "version", "state", "installed at"
    );
    for item in items {
        println!(
            "{:<24} {:<12} {:<9} {:<20} {}",
            item["name"].as_str().unwrap_or("?"),
            item["version"].as_str().unwrap_or("?"),
            item["state"].as_str().unwrap_or("?"),
            when(&item["installed_at"]),
            item["previous_version"].as_str().unwrap_or("-"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `service show NAME`.
pub async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let Some(answer) = client
        .get_optional(&format!("/syncplane/v1/services/{}", args.name))
        .await?
    else {
        bail!("no service `{}` is installed", args.name);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", render_installed(&answer));
    }
    Ok(ExitCode::SUCCESS)
}

/// `service history NAME`.
pub async fn history(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let Some(answer) = client
        .get_optional(&format!("/syncplane/v1/services/{}/history", args.name))
        .await?
    else {
        bail!("service `{}` was never installed", args.name);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let entries = answer["entries"].as_array().cloned().unwrap_or_default();
    for entry in &entries {
        let text = |key: &str| entry[key].as_str().unwrap_or("-").to_owned();
        println!(
            "{}  {:<9} {:<10} by {}",
            when(&entry["time"]),
            text("action"),
            text("version"),
            text("by")
        );
        if let Some(digest) = entry["digest"].as_str() {
            println!("    digest  {digest}");
        }
        for signer in entry["signers"].as_array().into_iter().flatten() {
            println!("    signer  {}", signer.as_str().unwrap_or("?"));
        }
        if let Some(rule) = entry["rule"].as_str() {
            println!("    trust   {rule}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Seconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS`.
fn when(value: &Value) -> String {
    value
        .as_f64()
        .filter(|s| *s > 0.0)
        .and_then(|s| chrono::DateTime::from_timestamp(s as i64, 0))
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

/// A resolved plan, as `--dry-run` prints it.
fn render_plan(plan: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan: {} {} {} -> {}",
        plan["action"].as_str().unwrap_or("?"),
        plan["service"].as_str().unwrap_or("?"),
        plan["from_version"].as_str().unwrap_or("(not installed)"),
        plan["to_version"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(out, "  models added:    {}", list_of(&plan["models_added"]));
    let removed: Vec<String> = plan["models_removed"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    format!(
                        "{} ({} objects)",
                        m["model"].as_str().unwrap_or("?"),
                        m["objects"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  models removed:  {}",
        if removed.is_empty() {
            "none".to_owned()
        } else {
            removed.join(", ")
        }
    );
    for change in plan["models_changed"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  model {} ({} objects): added [{}] removed [{}] changed [{}]",
            change["model"].as_str().unwrap_or("?"),
            change["objects"],
            strings(&change["fields_added"]).join(", "),
            strings(&change["fields_removed"]).join(", "),
            strings(&change["fields_changed"]).join(", "),
        );
    }
    let _ = writeln!(out, "  steps added:     {}", list_of(&plan["steps_added"]));
    let _ = writeln!(
        out,
        "  steps removed:   {}",
        list_of(&plan["steps_removed"])
    );
    let _ = writeln!(out, "  steps replaced:  {}", list_of(&plan["steps_kept"]));
    let _ = writeln!(out, "  grants added:    {}", list_of(&plan["grants_added"]));
    let _ = writeln!(
        out,
        "  grants removed:  {}",
        list_of(&plan["grants_removed"])
    );
    // The plan's `diff` is the one the inspection printed just before.
    let blockers = strings(&plan["blockers"]);
    if blockers.is_empty() {
        out.push_str("  nothing blocks it (dry run: nothing was changed)\n");
    } else {
        out.push_str("  blocked by:\n");
        for b in blockers {
            let _ = writeln!(out, "    - {b}");
        }
    }
    out
}

/// The changes from the installed version, when the answer has them.
fn render_diff(out: &mut String, diff: &Value) {
    if diff.is_object() {
        out.push_str("  changes from the installed version:\n");
        for line in crate::diff::render(diff).lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
}

/// `service inspect PATH|NAME`.
pub async fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    check_allows(&args.allow)?;
    let path = Path::new(&args.target);
    if path.is_file() || crate::registry::as_reference(path).is_some() {
        return inspect_packed(path, &args).await;
    }
    let client = Client::from_args(&args.server)?;
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

/// `service inspect FILE.spkg`: what the file holds, then what the server
/// says of it, or what its manifest asks for when no server answers.
async fn inspect_packed(path: &Path, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let (bytes, packed) = match crate::registry::as_reference(path) {
        Some(reference) => {
            let pulled = crate::registry::pull_verified(&reference, &args.reach, true).await?;
            (pulled.archive, pulled.packed)
        }
        None => read_packed_bytes(path)?,
    };
    let body = json!({
        "file": base64::engine::general_purpose::STANDARD.encode(bytes),
        "allow": args.allow,
    });
    let server = match Client::from_args(&args.server) {
        Ok(client) => {
            client
                .json(
                    reqwest::Method::POST,
                    "/syncplane/v1/services/inspect",
                    Some(&body),
                )
                .await
        }
        Err(e) => Err(e),
    };
    if args.json {
        let answer = json!({
            "file": path.display().to_string(),
            "digest": packed.digest,
            "files": packed.files,
            "inspection": server.as_ref().ok(),
            "manifest": packed.package.manifest,
            "imports": packed.package.inspect_imports(),
        });
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = render_packed_files(path, &packed);
    match server {
        Ok(inspection) => out.push_str(&render_inspection(&inspection)),
        Err(e) => {
            let manifest = &packed.package.manifest;
            let _ = writeln!(
                out,
                "package {} {} (the server was not asked: {e:#})",
                manifest.service.name, manifest.service.version
            );
            let caps = serde_json::to_value(&manifest.capabilities)?;
            render_capabilities(&mut out, &caps);
            let imports = serde_json::to_value(packed.package.inspect_imports())?;
            render_imports(&mut out, &imports);
            if let Err(e) = packed.package.check_imports() {
                let _ = writeln!(out, "  refused: {e}");
            }
        }
    }
    crate::output::write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn render_packed_files(path: &Path, packed: &syncplane_platform::archive::PackedService) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  digest {}", path.display(), packed.digest);
    for file in &packed.files {
        let _ = writeln!(
            out,
            "  {:>10}  {}  {}",
            human_bytes(file.bytes),
            &file.sha256[..16],
            file.path
        );
    }
    out
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}

/// `service pack [DIR] [-o FILE]`: builds the service when its manifest
/// asks, then writes it as one file.
pub fn pack(args: &PackArgs) -> anyhow::Result<ExitCode> {
    // Builds the components first, as install does.
    package_from_dir(&args.path)?;
    let (bytes, packed) = syncplane_platform::archive::PackedService::pack(&args.path)
        .with_context(|| format!("cannot pack {}", args.path.display()))?;
    let manifest = &packed.package.manifest;
    let output = args.output.clone().unwrap_or_else(|| {
        format!(
            "{}-{}.{}",
            manifest.service.name,
            manifest.service.version,
            syncplane_platform::archive::ARCHIVE_EXT
        )
        .into()
    });
    std::fs::write(&output, &bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    if args.json {
        let answer = json!({
            "file": output.display().to_string(),
            "bytes": bytes.len(),
            "digest": packed.digest,
            "files": packed.files,
        });
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let mut out = render_packed_files(&output, &packed);
        let _ = writeln!(
            out,
            "packed {} {} into {} ({})",
            manifest.service.name,
            manifest.service.version,
            output.display(),
            human_bytes(bytes.len() as u64)
        );
        crate::output::write_stdout(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `service config NAME [key=value...]`.
pub async fn config(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
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
    let client = Client::from_args(&args.server)?;
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

/// `service limits NAME [--max-objects N ...] [--reset]`: shows the
/// service's limits, after changing those given.
pub async fn limits(args: LimitsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let path = format!("/syncplane/v1/services/{}/limits", args.name);
    let mut change = serde_json::Map::new();
    if args.reset {
        for field in [
            "max_objects",
            "concurrency",
            "invocations_per_sec",
            "memory_mib",
            "deadline_ms",
            "idle_unload_ms",
        ] {
            change.insert(field.to_owned(), Value::Null);
        }
    }
    for (field, value) in [
        ("max_objects", &args.max_objects),
        ("concurrency", &args.concurrency),
        ("invocations_per_sec", &args.rate),
        ("memory_mib", &args.memory_mib),
        ("deadline_ms", &args.deadline),
        ("idle_unload_ms", &args.idle_unload),
    ] {
        if let Some(value) = value {
            change.insert(field.to_owned(), value.clone());
        }
    }
    let answer = if change.is_empty() {
        client
            .json(reqwest::Method::GET, &path, None)
            .await
            .context("reading the limits failed")?
    } else {
        client
            .json(reqwest::Method::PUT, &path, Some(&Value::Object(change)))
            .await
            .context("setting the limits failed")?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", render_limits(&answer));
    }
    Ok(ExitCode::SUCCESS)
}

/// A limit that may be absent (`null`: none).
pub(crate) fn or_unlimited(value: &Value) -> String {
    match value {
        Value::Null => "unlimited".to_owned(),
        other => other.to_string(),
    }
}

/// A deadline in milliseconds, as people write it.
pub(crate) fn millis(value: &Value) -> String {
    value.as_u64().map_or_else(
        || "?".to_owned(),
        |ms| humantime::format_duration(std::time::Duration::from_millis(ms)).to_string(),
    )
}

fn render_limits(report: &Value) -> String {
    let limits = &report["limits"];
    let set = &report["overrides"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "limits of {}:",
        report["service"].as_str().unwrap_or("?")
    );
    let rows = [
        (
            "max objects",
            "max_objects",
            or_unlimited(&limits["max_objects"]),
        ),
        (
            "concurrency",
            "concurrency",
            limits["concurrency"].to_string(),
        ),
        (
            "invocations/s",
            "invocations_per_sec",
            or_unlimited(&limits["invocations_per_sec"]),
        ),
        (
            "memory",
            "memory_mib",
            format!("{} MiB", limits["memory_mib"]),
        ),
        ("deadline", "deadline_ms", millis(&limits["deadline_ms"])),
        (
            "idle unload",
            "idle_unload_ms",
            millis(&limits["idle_unload_ms"]),
        ),
    ];
    for (label, field, value) in rows {
        let origin = if set.get(field).is_some() {
            "set for this service"
        } else if field == "memory_mib" && !report["requested_memory_mib"].is_null() {
            "asked by its manifest"
        } else {
            "server default"
        };
        let _ = writeln!(out, "  {:<15} {value:<12} ({origin})", format!("{label}:"));
    }
    out
}

fn check_allows(allows: &[String]) -> anyhow::Result<()> {
    for allow in allows {
        allow
            .parse::<syncplane_platform::capability::Allow>()
            .map_err(|e| anyhow::anyhow!("--allow {e}"))?;
    }
    Ok(())
}

/// Each component's imports: how many this host serves, and each one it
/// does not (`--json` lists them all).
fn render_imports(out: &mut String, imports: &Value) {
    let Some(imports) = imports.as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    let mut by_step: BTreeMap<&str, (usize, Vec<String>)> = BTreeMap::new();
    for import in imports {
        let entry = by_step
            .entry(import["step"].as_str().unwrap_or("?"))
            .or_default();
        if import["served"] == true {
            entry.0 += 1;
        } else {
            entry.1.push(format!(
                "{} NOT SERVED: {}",
                import["import"].as_str().unwrap_or("?"),
                import["note"].as_str().unwrap_or("?")
            ));
        }
    }
    out.push_str("  imports:\n");
    for (step, (served, missing)) in by_step {
        let _ = writeln!(out, "    {step}: {served} served");
        for line in missing {
            let _ = writeln!(out, "      {line}");
        }
    }
}

fn refused(inspection: &Value) -> bool {
    inspection["refused"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
        || inspection["trust"]["allowed"] == false
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

fn list_of(value: &Value) -> String {
    let items = strings(value);
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn render_capabilities(out: &mut String, caps: &Value) {
    let _ = writeln!(out, "  outbound HTTP:  {}", list_of(&caps["outbound_http"]));
    let _ = writeln!(
        out,
        "  reads models:   {}",
        list_of(&caps["models"]["read"])
    );
    let _ = writeln!(
        out,
        "  writes models:  {}",
        list_of(&caps["models"]["write"])
    );
    let _ = writeln!(out, "  config:         {}", list_of(&caps["config"]));
    let _ = writeln!(out, "  secrets:        {}", list_of(&caps["secrets"]));
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
    let _ = writeln!(out, "  models:         {}", list_of(&i["models"]));
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
    render_imports(&mut out, &i["imports"]);
    if let Some(requires) = i["requires"].as_str() {
        let _ = writeln!(out, "  requires:       syncplane {requires}");
    }
    for d in i["dependencies"].as_array().into_iter().flatten() {
        let (service, requirement) = (
            d["service"].as_str().unwrap_or("?"),
            d["requirement"].as_str().unwrap_or("?"),
        );
        let state = match (d["installed"].as_str(), d["met"].as_bool()) {
            (Some(v), Some(true)) => format!("{v} installed"),
            (Some(v), _) => format!("{v} installed, DOES NOT MATCH: upgrade {service} first"),
            (None, _) => match d["comes_with_install"].as_str() {
                Some(v) => format!("{v} comes with this install"),
                None => "NOT INSTALLED".to_owned(),
            },
        };
        let _ = writeln!(out, "  depends on:     {service} {requirement}: {state}");
    }
    render_diff(&mut out, &i["diff"]);
    if let Some(digest) = i["digest"].as_str() {
        let _ = writeln!(out, "  digest:         {digest}");
        let signers = strings(&i["signers"]);
        let _ = writeln!(
            out,
            "  signed by:      {}",
            if signers.is_empty() {
                "nobody".to_owned()
            } else {
                signers.join(", ")
            }
        );
    }
    for key in strings(&i["new_signers"]) {
        let _ = writeln!(
            out,
            "  NEW SIGNER:     {key} did not sign the installed version of {}",
            i["name"].as_str().unwrap_or("?")
        );
    }
    if i["trust"]["policy"] == true {
        let verdict = if i["trust"]["allowed"] == true {
            "allowed"
        } else {
            "REFUSED"
        };
        let _ = writeln!(
            out,
            "  trust policy:   {verdict}: {}",
            i["trust"]["rule"].as_str().unwrap_or("?")
        );
    }
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
    let _ = writeln!(
        out,
        "  state:          {}, installed {}",
        service["state"].as_str().unwrap_or("?"),
        when(&service["installed_at"])
    );
    let _ = writeln!(
        out,
        "  previous:       {}",
        service["previous_version"].as_str().unwrap_or("none")
    );
    let objects: Vec<String> = shown["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| format!("{} ({})", m["model"].as_str().unwrap_or("?"), m["objects"]))
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  models:         {}",
        if objects.is_empty() {
            list_of(&service["models"])
        } else {
            objects.join(", ")
        }
    );
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
    let limits = &shown["limits"];
    if limits.is_object() {
        let _ = writeln!(
            out,
            "  limits:         max objects {}, concurrency {}, {} invocations/s, {} MiB memory, deadline {} (`service limits` changes them)",
            or_unlimited(&limits["max_objects"]),
            limits["concurrency"],
            or_unlimited(&limits["invocations_per_sec"]),
            limits["memory_mib"],
            millis(&limits["deadline_ms"]),
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
