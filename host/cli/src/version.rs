//! `syncplane version [--json]`: this build and the WIT packages it serves
//! to components.

use std::process::ExitCode;

use serde_json::json;
use syncplane_runtime::served::SERVED;

use crate::args::VersionArgs;

/// `version [--json]`.
pub fn version(args: &VersionArgs) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    if args.json {
        let packages: Vec<_> = SERVED
            .iter()
            .map(|p| {
                json!({
                    "package": p.package,
                    "versions": p.versions.iter().map(|(low, high)| json!({"from": low, "to": high})).collect::<Vec<_>>(),
                    "range": p.range(),
                    "interfaces": p.interfaces.iter().map(|(v, names)| (v.to_string(), json!(names))).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "syncplane": version, "wit": packages }))?
        );
    } else {
        println!("syncplane {version}");
        println!("serves WIT packages:");
        for package in SERVED {
            println!("  {:<18} {}", package.package, package.range());
        }
    }
    Ok(ExitCode::SUCCESS)
}
