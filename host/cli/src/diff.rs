//! `syncplane service diff A B`: what changed from one package to
//! another, each a packed file or a registry reference.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::Value;
use syncplane_platform::PackageDiff;
use syncplane_platform::archive::PackedService;

use crate::client::read_packed;
use crate::registry::{as_reference, pull_verified};
use crate::registry_args::{DiffArgs, ReachArgs};

/// `service diff A B [--json]`.
pub async fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let from = load(&args.from, &args.reach).await?;
    let to = load(&args.to, &args.reach).await?;
    let diff = PackageDiff::between(&from, &to)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&diff)?);
    } else {
        crate::output::write_stdout(&render(&serde_json::to_value(&diff)?))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A package from a file or, verified, from a registry (unsigned
/// accepted: it is compared, not installed).
async fn load(target: &str, reach: &ReachArgs) -> anyhow::Result<PackedService> {
    let path = Path::new(target);
    if path.is_file() {
        return read_packed(path);
    }
    match as_reference(path) {
        Some(reference) => Ok(pull_verified(&reference, reach, true).await?.packed),
        None => bail!("`{target}` is neither a packed service file nor a registry reference"),
    }
}

/// A diff (as `PackageDiff` serialises it) for people: the two sides,
/// then each respect, added `+`, removed `-`, changed `~`.
pub(crate) fn render(diff: &Value) -> String {
    let side = |s: &Value| {
        format!(
            "{} {} ({})",
            s["name"].as_str().unwrap_or("?"),
            s["version"].as_str().unwrap_or("?"),
            s["digest"].as_str().unwrap_or("?")
        )
    };
    let mut out = String::new();
    let _ = writeln!(out, "{} -> {}", side(&diff["from"]), side(&diff["to"]));
    for what in [
        "files",
        "grants",
        "models",
        "imports",
        "signers",
        "dependencies",
    ] {
        let changes = &diff[what];
        let items = |kind: &str| -> Vec<&str> {
            changes[kind]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        let (added, removed, changed) = (items("added"), items("removed"), items("changed"));
        if added.is_empty() && removed.is_empty() && changed.is_empty() {
            let _ = writeln!(out, "{what}: unchanged");
            continue;
        }
        let _ = writeln!(out, "{what}:");
        for (mark, list) in [("+", added), ("-", removed), ("~", changed)] {
            for item in list {
                let _ = writeln!(out, "  {mark} {item}");
            }
        }
    }
    if diff["grants"]["added"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        out.push_str("the second package asks for more than the first (grants added)\n");
    }
    out
}
