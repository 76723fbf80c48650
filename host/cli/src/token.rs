//! `syncplane token create|list|revoke`: the caller's API tokens.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::args::{TokenCreateArgs, TokenListArgs, TokenRevokeArgs};
use crate::client::Client;

const TOKENS: &str = "/syncplane/v1/tokens";

/// A time in seconds since the epoch as UTC, or `never`.
fn when(v: &Value) -> String {
    v.as_f64()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs as i64, 0))
        .map_or_else(
            || "never".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// `syncplane token create`: prints the token alone on stdout, once.
pub async fn create(args: TokenCreateArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let body = json!({ "name": args.name, "expires": args.expires });
    let answer = client
        .json(reqwest::Method::POST, TOKENS, Some(&body))
        .await
        .context("creating the token failed")?;
    let token = answer["token"]
        .as_str()
        .context("the server's answer has no token")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("{token}");
    }
    eprintln!(
        "created API token `{}` (id {}), expires {}; it is shown only this once",
        answer["name"].as_str().unwrap_or("?"),
        answer["id"].as_str().unwrap_or("?"),
        when(&answer["expires_at"]),
    );
    Ok(ExitCode::SUCCESS)
}

/// `?user=EMAIL` when `user` is given, else nothing.
fn whose(user: Option<&str>) -> String {
    user.map(|u| format!("?user={}", encode_segment(u)))
        .unwrap_or_default()
}

/// `syncplane token list [--user EMAIL]`: live tokens, never a secret.
pub async fn list(args: TokenListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let path = format!("{TOKENS}{}", whose(args.user.as_deref()));
    let answer = client
        .json(reqwest::Method::GET, &path, None)
        .await
        .context("listing tokens failed")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer["items"])?);
        return Ok(ExitCode::SUCCESS);
    }
    let empty = Vec::new();
    let items = answer["items"].as_array().unwrap_or(&empty);
    if items.is_empty() {
        println!("no tokens");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16}  {:<24}  {:<7}  {:<23}  expires",
        "id", "name", "kind", "created"
    );
    for t in items {
        println!(
            "{:<16}  {:<24}  {:<7}  {:<23}  {}",
            t["id"].as_str().unwrap_or("?"),
            t["name"].as_str().unwrap_or("?"),
            t["kind"].as_str().unwrap_or("?"),
            when(&t["created"]),
            when(&t["expires"]),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `syncplane token revoke [--user EMAIL] NAME|ID`.
pub async fn revoke(args: TokenRevokeArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let path = format!(
        "{TOKENS}/{}{}",
        encode_segment(&args.which),
        whose(args.user.as_deref())
    );
    let answer = client
        .json(reqwest::Method::DELETE, &path, None)
        .await
        .context("revoking the token failed")?;
    println!(
        "revoked {} token `{}` (id {})",
        answer["revoked"]["kind"].as_str().unwrap_or("?"),
        answer["revoked"]["name"].as_str().unwrap_or("?"),
        answer["revoked"]["id"].as_str().unwrap_or("?"),
    );
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes what a path segment may not hold as is.
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_path_segment() {
        assert_eq!(encode_segment("ci-bot_1.x~"), "ci-bot_1.x~");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(whose(Some("a+b@x.org")), "?user=a%2Bb%40x.org");
        assert_eq!(whose(None), "");
    }

    #[test]
    fn times_print_as_utc_or_never() {
        assert_eq!(when(&json!(0.0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(&Value::Null), "never");
    }
}
