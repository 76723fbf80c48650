//! `syncplane audit`: the server's audit log as a table.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use crate::args::AuditArgs;
use crate::client::Client;

pub async fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let mut query = url_params(&[
        ("model", args.model.clone()),
        ("user", args.user.clone()),
        (
            "since",
            args.since
                .map(|ago| (syncplane_core::now_secs() - ago.as_secs_f64()).to_string()),
        ),
        ("limit", Some(args.limit.to_string())),
    ]);
    if !query.is_empty() {
        query.insert(0, '?');
    }
    let answer = client
        .json(
            reqwest::Method::GET,
            &format!("/syncplane/v1/audit{query}"),
            None,
        )
        .await
        .context("cannot read the audit log")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    crate::output::write_stdout(&render(&answer))?;
    Ok(ExitCode::SUCCESS)
}

/// `a=1&b=2`, encoded, for the pairs that have a value.
fn url_params(pairs: &[(&str, Option<String>)]) -> String {
    let mut url = reqwest::Url::parse("http://localhost/").expect("a valid URL");
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    url.query().unwrap_or_default().to_owned()
}

fn render(answer: &Value) -> String {
    use std::fmt::Write as _;
    let empty = Vec::new();
    let items = answer["items"].as_array().unwrap_or(&empty);
    if items.is_empty() {
        return "no audit entries\n".to_owned();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20}  {:<36}  {:<8}  {:<24}  fields",
        "time (UTC)", "principal", "op", "object"
    );
    for item in items {
        let time = item["time"]
            .as_f64()
            .map(|t| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0)),
                )
                .to_string()
            })
            .unwrap_or_default();
        let object = format!(
            "{} {}",
            item["model"].as_str().unwrap_or("?"),
            item["object_id"]
        );
        let _ = writeln!(
            out,
            "{:<20}  {:<36}  {:<8}  {:<24}  {}",
            time.trim_end_matches('Z'),
            item["principal"].as_str().unwrap_or("?"),
            item["operation"].as_str().unwrap_or("?"),
            object,
            item["fields"]
        );
    }
    out
}
