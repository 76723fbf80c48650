//! `syncplane service diff A B`: what changed from one package to
//! another, each a packed file or a registry reference.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
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
        crate::output::write_stdout(&render(&diff))?;
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

fn render(diff: &PackageDiff) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} ({}) -> {} {} ({})",
        diff.from.name,
        diff.from.version,
        diff.from.digest,
        diff.to.name,
        diff.to.version,
        diff.to.digest
    );
    for (what, changes) in [
        ("files", &diff.files),
        ("grants", &diff.grants),
        ("models", &diff.models),
        ("imports", &diff.imports),
        ("signers", &diff.signers),
    ] {
        if changes.is_empty() {
            let _ = writeln!(out, "{what}: unchanged");
            continue;
        }
        let _ = writeln!(out, "{what}:");
        for item in &changes.added {
            let _ = writeln!(out, "  + {item}");
        }
        for item in &changes.removed {
            let _ = writeln!(out, "  - {item}");
        }
        for item in &changes.changed {
            let _ = writeln!(out, "  ~ {item}");
        }
    }
    if diff.widens_grants() {
        out.push_str("the second package asks for more than the first (grants added)\n");
    }
    out
}
