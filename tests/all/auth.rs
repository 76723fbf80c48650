//! Authentication (issue 14 §2): sessions, `x-xossession`, API tokens,
//! revocation, expiry, storage, and rate limits of failed sign-ins.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{ADMIN, BIN, PASSWORD, Server, assert_success, describe};

const SITES: &str = "/xosapi/v1/core/sites";

/// How a request authenticates.
enum As<'a> {
    Bearer(&'a str),
    XosSession(&'a str),
    Basic(&'a str, &'a str),
}

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    auth: As<'_>,
    body: Option<Value>,
) -> reqwest::Response {
    let request = reqwest::Client::new().request(method, format!("{}{path}", server.url));
    let request = match auth {
        As::Bearer(token) => request.bearer_auth(token),
        As::XosSession(token) => request.header("x-xossession", token),
        As::Basic(user, password) => request.basic_auth(user, Some(password)),
    };
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("request")
}

async fn status_of(server: &Server, path: &str, auth: As<'_>) -> u16 {
    send(server, reqwest::Method::GET, path, auth, None)
        .await
        .status()
        .as_u16()
}

/// `POST /syncplane/v1/login`: status and answer.
async fn login(server: &Server, username: &str, password: &str) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{}/syncplane/v1/login", server.url))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login");
    let status = response.status().as_u16();
    let retry_after = crate::util::retry_after(&response);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, retry_after)
}

/// A session token of `username`, asserting the login succeeded.
async fn session(server: &Server, username: &str, password: &str) -> String {
    let (status, body, _) = login(server, username, password).await;
    assert_eq!(status, 200, "login: {body}");
    body["token"].as_str().expect("a token").to_owned()
}

/// Runs a `syncplane` client command with a token and no password.
fn cli_with_token(server: &Server, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SYNCPLANE_SERVER", &server.url)
        .env_remove("SYNCPLANE_PASSWORD")
        .env("SYNCPLANE_TOKEN", token)
        .output()
        .expect("run syncplane")
}

/// Creates a user with `password` as the admin; returns its id.
async fn create_user(server: &Server, email: &str, password: &str) -> i64 {
    server
        .create(
            "/xosapi/v1/core/users",
            json!({ "email": email, "password": password, "username": "someone" }),
        )
        .await
}

#[tokio::test]
async fn login_returns_a_token_that_works_as_bearer_and_as_x_xossession() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let (status, body, _) = login(&server, ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token");
    assert!(token.len() >= 43, "a short token: {token}");
    let now = chrono::Utc::now().timestamp() as f64;
    let expires = body["expires_at"].as_f64().expect("expires_at");
    // The default session lifetime is 24 hours.
    assert!(
        (expires - now - 86_400.0).abs() < 120.0,
        "expires_at {expires}, now {now}"
    );

    assert_eq!(status_of(&server, SITES, As::Bearer(token)).await, 200);
    assert_eq!(status_of(&server, SITES, As::XosSession(token)).await, 200);
    let recipe = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    s:\n      type: tosca.nodes.Site\n      properties:\n        name: via-session\n        login_base: vs\n";
    let response = reqwest::Client::new()
        .post(format!("{}/run", server.url))
        .header("x-xossession", token)
        .body(recipe)
        .send()
        .await
        .expect("POST /run");
    assert_eq!(
        response.status().as_u16(),
        200,
        "{:?}",
        response.text().await
    );

    let forged = format!("{}x", token);
    assert_eq!(status_of(&server, SITES, As::Bearer(&forged)).await, 401);
    assert_eq!(
        status_of(&server, SITES, As::XosSession("nonsense")).await,
        401
    );
    let (status, body, _) = login(&server, ADMIN, "wrong").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.get("token").is_none(), "{body}");
    let (status, _, _) = login(&server, "nobody@example.org", PASSWORD).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn logout_revokes_the_presented_session_only() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let first = session(&server, ADMIN, PASSWORD).await;
    let second = session(&server, ADMIN, PASSWORD).await;
    let response = send(
        &server,
        reqwest::Method::POST,
        "/syncplane/v1/logout",
        As::XosSession(&first),
        None,
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(status_of(&server, SITES, As::Bearer(&first)).await, 401);
    assert_eq!(status_of(&server, SITES, As::Bearer(&second)).await, 200);

    // Logging out needs a session: a password has none to end.
    let response = send(
        &server,
        reqwest::Method::POST,
        "/syncplane/v1/logout",
        As::Basic(ADMIN, PASSWORD),
        None,
    )
    .await;
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn a_password_change_revokes_the_users_sessions_and_api_tokens() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let id = create_user(&server, "ops@example.org", "old-password").await;
    let user_session = session(&server, "ops@example.org", "old-password").await;
    let response = send(
        &server,
        reqwest::Method::POST,
        "/syncplane/v1/tokens",
        As::Basic("ops@example.org", "old-password"),
        Some(json!({ "name": "ci" })),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let api_token = response.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let admin_session = session(&server, ADMIN, PASSWORD).await;
    for token in [&user_session, &api_token, &admin_session] {
        assert_eq!(status_of(&server, SITES, As::Bearer(token)).await, 200);
    }

    server
        .put(
            &format!("/xosapi/v1/core/users/{id}"),
            json!({ "password": "new-password" }),
        )
        .await;

    assert_eq!(
        status_of(&server, SITES, As::Bearer(&user_session)).await,
        401
    );
    assert_eq!(status_of(&server, SITES, As::Bearer(&api_token)).await, 401);
    // Another user's session is untouched.
    assert_eq!(
        status_of(&server, SITES, As::Bearer(&admin_session)).await,
        200
    );
    let old = As::Basic("ops@example.org", "old-password");
    assert_eq!(status_of(&server, SITES, old).await, 401);
    let new = As::Basic("ops@example.org", "new-password");
    assert_eq!(status_of(&server, SITES, new).await, 200);

    // The same through TOSCA, whose transaction hashes ahead of time.
    let fresh = session(&server, "ops@example.org", "new-password").await;
    let recipe = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    u:\n      type: tosca.nodes.User\n      properties:\n        email: ops@example.org\n        password: third-password\n";
    let (status, body) = server.tosca(recipe, ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_of(&server, SITES, As::Bearer(&fresh)).await, 401);
    let third = As::Basic("ops@example.org", "third-password");
    assert_eq!(status_of(&server, SITES, third).await, 200);
}

#[tokio::test]
async fn an_expired_session_token_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--session-ttl", "1s")]);
    let (status, body, _) = login(&server, ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token");
    let expires = body["expires_at"].as_f64().expect("expires_at");
    let lifetime = expires - body["created"].as_f64().expect("created");
    assert!((lifetime - 1.0).abs() < 1e-6, "lifetime {lifetime}");
    assert_eq!(status_of(&server, SITES, As::Bearer(token)).await, 200);
    // Let the second pass (not a timing assertion: expiry is by the clock).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status_of(&server, SITES, As::Bearer(token)).await, 401);
    assert_eq!(status_of(&server, SITES, As::XosSession(token)).await, 401);
    // The expired session is gone from the list.
    let listed = server.get("/syncplane/v1/tokens").await;
    assert_eq!(listed["items"], json!([]), "{listed}");
}

#[tokio::test]
async fn api_tokens_from_the_cli_are_shown_once_listed_without_secret_and_revocable() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let output = server.cli(&["token", "create", "--name", "ci-bot", "--expires", "2h"]);
    let stdout = assert_success(&output);
    let token = stdout.trim().to_owned();
    assert!(
        token.starts_with("spa_") && !token.contains(char::is_whitespace),
        "stdout is not the token alone: {stdout:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ci-bot") && stderr.contains("only this once"),
        "{stderr}"
    );
    assert!(!stderr.contains(&token), "{stderr}");

    // The token drives the CLI and the API without a password.
    let listed = cli_with_token(&server, &token, &["token", "list"]);
    let table = assert_success(&listed);
    assert!(table.contains("ci-bot") && table.contains("api"), "{table}");
    assert!(!table.contains(&token), "{table}");
    let json = assert_success(&server.cli(&["token", "list", "--json"]));
    assert!(json.contains("ci-bot") && !json.contains(&token), "{json}");
    assert!(!json.contains("spa_"), "{json}");
    assert_eq!(status_of(&server, SITES, As::Bearer(&token)).await, 200);

    // An API token cannot mint others.
    let refused = cli_with_token(&server, &token, &["token", "create"]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{}",
        describe(&refused)
    );
    // A second token of the same name is refused.
    let again = server.cli(&["token", "create", "--name", "ci-bot"]);
    assert!(!again.status.success(), "{}", describe(&again));

    let revoked = assert_success(&server.cli(&["token", "revoke", "ci-bot"]));
    assert!(revoked.contains("ci-bot"), "{revoked}");
    assert_eq!(status_of(&server, SITES, As::Bearer(&token)).await, 401);
    let after = assert_success(&server.cli(&["token", "list"]));
    assert!(!after.contains("ci-bot"), "{after}");
    let unknown = server.cli(&["token", "revoke", "ci-bot"]);
    assert!(!unknown.status.success(), "{}", describe(&unknown));

    // Revoking by id works too.
    let token = assert_success(&server.cli(&["token", "create", "--expires", "never"]));
    let listed = server.get("/syncplane/v1/tokens").await;
    let item = &listed["items"][0];
    assert_eq!(item["expires"], Value::Null, "{listed}");
    let id = item["id"].as_str().expect("id");
    assert_success(&server.cli(&["token", "revoke", id]));
    assert_eq!(
        status_of(&server, SITES, As::Bearer(token.trim())).await,
        401
    );
}

#[tokio::test]
async fn admins_list_and_revoke_other_users_tokens_and_nobody_else_does() {
    const ALICE: &str = "alice@example.org";
    const MALLORY: &str = "mallory@example.org";
    const AUDITOR: &str = "auditor@example.org";
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let alice = create_user(&server, ALICE, "alice-pw").await;
    create_user(&server, MALLORY, "mallory-pw").await;
    server
        .create(
            "/xosapi/v1/core/users",
            json!({ "email": AUDITOR, "password": "auditor-pw", "is_admin": true, "is_readonly": true }),
        )
        .await;
    let alice_session = session(&server, ALICE, "alice-pw").await;
    let answer = send(
        &server,
        reqwest::Method::POST,
        "/syncplane/v1/tokens",
        As::Bearer(&alice_session),
        Some(json!({ "name": "ci" })),
    )
    .await;
    assert_eq!(answer.status(), 201);
    let issued: Value = answer.json().await.expect("json");
    let alice_token = issued["token"].as_str().expect("token").to_owned();
    let alice_token_id = issued["id"].as_str().expect("id").to_owned();
    let tokens_of = |email: &str| format!("/syncplane/v1/tokens?user={email}");
    let status = |method: reqwest::Method, path: String, auth: As<'static>| {
        let server = &server;
        async move {
            send(server, method, &path, auth, None)
                .await
                .status()
                .as_u16()
        }
    };
    use reqwest::Method;

    // Others' tokens are not for users that are not admins.
    let mallory = || As::Basic(MALLORY, "mallory-pw");
    assert_eq!(status(Method::GET, tokens_of(ALICE), mallory()).await, 403);
    let revoke_ci = format!("/syncplane/v1/tokens/ci?user={ALICE}");
    assert_eq!(
        status(Method::DELETE, revoke_ci.clone(), mallory()).await,
        403
    );
    // Without naming the user, alice's token is one mallory does not have.
    let by_id = format!("/syncplane/v1/tokens/{alice_token_id}");
    assert_eq!(status(Method::DELETE, by_id, mallory()).await, 404);
    // Naming oneself (in any case) is the same as not naming anyone.
    let own = status(
        Method::GET,
        tokens_of("Alice@Example.org"),
        As::Basic(ALICE, "alice-pw"),
    )
    .await;
    assert_eq!(own, 200);
    // A read-only admin lists them but revokes nothing.
    let auditor = || As::Basic(AUDITOR, "auditor-pw");
    assert_eq!(status(Method::GET, tokens_of(ALICE), auditor()).await, 200);
    assert_eq!(
        status(Method::DELETE, revoke_ci.clone(), auditor()).await,
        403
    );
    let admin = || As::Basic(ADMIN, PASSWORD);
    assert_eq!(
        status(Method::GET, tokens_of("nobody@example.org"), admin()).await,
        404
    );
    assert_eq!(
        status_of(&server, SITES, As::Bearer(&alice_token)).await,
        200
    );

    // The admin, through the CLI.
    let table = assert_success(&server.cli(&["token", "list", "--user", ALICE]));
    assert!(
        table.contains("ci") && table.contains("api") && table.contains("session"),
        "{table}"
    );
    assert!(!table.contains(&alice_token), "{table}");
    let mine = assert_success(&server.cli(&["token", "list"]));
    assert!(!mine.contains("ci"), "the admin's own list: {mine}");
    let revoked = assert_success(&server.cli(&["token", "revoke", "--user", ALICE, "ci"]));
    assert!(revoked.contains("ci"), "{revoked}");
    assert_eq!(
        status_of(&server, SITES, As::Bearer(&alice_token)).await,
        401
    );
    assert_eq!(
        status_of(&server, SITES, As::Bearer(&alice_session)).await,
        200,
        "only the named token is revoked"
    );
    let unknown = server.cli(&["token", "revoke", "--user", ALICE, "ci"]);
    assert!(!unknown.status.success(), "{}", describe(&unknown));

    // Audited as the admin's, naming alice and the token.
    let audit = server
        .get(&format!("/syncplane/v1/audit?user={ADMIN}"))
        .await;
    let entries: Vec<&Value> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["operation"] == "revoke-token")
        .collect();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["model"], "User");
    assert_eq!(entries[0]["object_id"], alice);
    assert_eq!(
        entries[0]["fields"],
        json!({ "id": alice_token_id, "name": "ci", "kind": "api" })
    );
}

#[tokio::test]
async fn tokens_are_stored_hashed_and_never_logged() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with_env(data.path(), &[], &[("RUST_LOG", "debug")]);
    let (status, body, _) = login(&server, ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let session_token = body["token"].as_str().expect("token").to_owned();
    let session_id = body["id"].as_str().expect("id").to_owned();
    let api_token = assert_success(&server.cli(&["token", "create", "--name", "stored"]))
        .trim()
        .to_owned();
    // Use both, and present a wrong one, so that every path could log them.
    assert_eq!(
        status_of(&server, SITES, As::Bearer(&session_token)).await,
        200
    );
    assert_eq!(
        status_of(&server, SITES, As::XosSession(&api_token)).await,
        200
    );
    let wrong = format!("{api_token}0");
    assert_eq!(status_of(&server, SITES, As::Bearer(&wrong)).await, 401);
    let log = server.log();
    server.kill();

    let stored = crate::util::stored_bytes(data.path());
    // The records are there (by the digest, whose prefix is the id) ...
    assert!(stored.contains(&session_id), "no token record in the store");
    // ... and the tokens are not.
    for token in [&session_token, &api_token] {
        assert!(
            !stored.contains(token.as_str()),
            "a token is stored in clear"
        );
        let secret = token.split_at(4).1;
        assert!(
            !stored.contains(secret),
            "a token's secret is stored in clear"
        );
    }

    assert!(log.contains("token issued"), "debug logging is off:\n{log}");
    for secret in [&session_token, &api_token, &wrong] {
        assert!(
            !log.contains(secret.as_str()),
            "a token is in the log:\n{log}"
        );
    }
    assert!(!log.contains(PASSWORD), "the password is in the log");
}

#[tokio::test]
async fn failed_sign_ins_beyond_the_limits_get_429_while_a_token_client_keeps_working() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        data.path(),
        &[
            ("--login-limit-user", "3/1m"),
            ("--login-limit-address", "6/1m"),
        ],
    );
    let token = session(&server, ADMIN, PASSWORD).await;

    // Per user: three wrong passwords for the admin, then 429 before any
    // check, even with the right password, by login or Basic auth.
    for _ in 0..3 {
        assert_eq!(
            status_of(&server, SITES, As::Basic(ADMIN, "wrong")).await,
            401
        );
    }
    let (status, body, retry_after) = login(&server, ADMIN, PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    let wait: u64 = retry_after
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let response = send(
        &server,
        reqwest::Method::GET,
        SITES,
        As::Basic(ADMIN, PASSWORD),
        None,
    )
    .await;
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
    // The token, from the same address, is not slowed nor refused.
    assert_eq!(status_of(&server, SITES, As::Bearer(&token)).await, 200);
    assert_eq!(status_of(&server, SITES, As::XosSession(&token)).await, 200);

    // Per address: three more failures (unknown users) fill 127.0.0.1's
    // bucket of six; then a user never seen is refused too.
    for i in 0..3 {
        let email = format!("nobody-{i}@example.org");
        assert_eq!(status_of(&server, SITES, As::Basic(&email, "x")).await, 401);
    }
    let (status, body, retry_after) = login(&server, "fresh@example.org", "x").await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some());
    assert_eq!(status_of(&server, SITES, As::Bearer(&token)).await, 200);
    let log = server.log();
    assert!(log.contains("rate-limited"), "no warning logged:\n{log}");
}

// See: issue 14 §2 (a flood of wrong passwords): the checks waiting for
// the hashing pool are bounded; beyond the bound a sign-in is refused at
// once, and token clients never wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_beyond_the_password_check_queue_get_503_at_once_and_tokens_keep_working() {
    const FLOOD: usize = 48;
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        data.path(),
        &[
            ("--login-limit-user", "off"),
            ("--login-limit-address", "off"),
            ("--password-check-queue", "2"),
        ],
    );
    let token = session(&server, ADMIN, PASSWORD).await;
    let url = format!("{}{SITES}", server.url);
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let response = reqwest::Client::new()
                    .get(url)
                    .basic_auth(ADMIN, Some(format!("wrong-{i}")))
                    .send()
                    .await
                    .expect("request");
                let retry_after = crate::util::retry_after(&response);
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                (status, started.elapsed(), retry_after, body)
            })
        })
        .collect();
    // Meanwhile a token client is answered.
    for _ in 0..5 {
        assert_eq!(status_of(&server, SITES, As::Bearer(&token)).await, 200);
    }
    let mut refused = Vec::new();
    let mut wrong = 0;
    for answer in flood {
        let (status, elapsed, retry_after, body) = answer.await.expect("task");
        match status {
            401 => wrong += 1,
            503 => {
                assert!(retry_after.is_some(), "503 without Retry-After: {body}");
                assert!(body.contains("password check"), "{body}");
                refused.push(elapsed);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        !refused.is_empty(),
        "no sign-in of {FLOOD} was refused ({wrong} checked)"
    );
    let slowest = refused.iter().max().expect("one");
    assert!(
        *slowest < Duration::from_secs(2),
        "a refusal took {slowest:?}: it waited"
    );
    // The queue drains: the right password works again.
    assert_eq!(
        status_of(&server, SITES, As::Basic(ADMIN, PASSWORD)).await,
        200
    );
    eprintln!(
        "{} of {FLOOD} refused with 503 (slowest {slowest:?}), {wrong} checked",
        refused.len()
    );
}
