//! The GUI's install review (`/ui/services/install`) over plain HTTP: an
//! allowed package is reviewed, then installed on confirmation; packages
//! the trust policy refuses (unsigned when signatures are required, a
//! grant over the publisher's ceiling) say why and offer no confirmation;
//! a forged upload changes nothing; a user who is not an administrator
//! gets no page.

use std::path::Path;

use serde_json::json;

use crate::gui_http::{Client, client, csrf, location, sign_in};
use crate::marketplace::{generate_key, pack, sign};
use crate::util::{ADMIN, PASSWORD, Server};

const BOUNDARY: &str = "gui-install-test-boundary-7f3a";

/// Uploads `file` through the install form, with `token` as the CSRF
/// field; the page's status and text.
async fn upload(http: &Client, token: &str, file: &Path) -> (u16, String) {
    upload_with(http, token, file, &[]).await
}

/// As [`upload`], with the form's other `fields` (install options).
async fn upload_with(
    http: &Client,
    token: &str,
    file: &Path,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let bytes = std::fs::read(file).expect("package file");
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n");
    for (name, value) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"p.spkg\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    ));
    let mut body = body.into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let response = http
        .send(
            http.http
                .post(format!("{}/ui/services/install", http.base))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body),
        )
        .await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Confirms the review `page` with the session's CSRF `token`.
async fn confirm(http: &Client, token: &str, page: &str) -> reqwest::Response {
    let pending = confirm_token(page);
    http.post(
        "/ui/services/install/confirm",
        &[("csrf", token), ("token", pending.as_str())],
    )
    .await
}

/// The value of the hidden `token` field of the confirm form.
fn confirm_token(html: &str) -> String {
    let at = html
        .find("name=\"token\" value=\"")
        .expect("a confirm form")
        + 20;
    html[at..].split('"').next().expect("its value").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_install_review_shows_the_plan_installs_on_confirm_and_refuses_untrusted_packages() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let acme = generate_key(work, "acme", None);
    let trust = work.join("trust.toml");
    std::fs::write(
        &trust,
        format!(
            "require_signature = true\n\
             [[publisher]]\nname = \"acme\"\nkeys = [\"{acme}\"]\npackages = [\"acme/*\"]\n\
             grants_ceiling = {{ outbound_http = [\"https://*.acme.example:443\"] }}\n"
        ),
    )
    .expect("trust file");
    let plain = pack(work, "acme", "1.0.0", "");
    let signed = work.join("signed.spkg");
    sign(&plain, &work.join("acme.key"), None, &signed);
    let greedy = pack(
        work,
        "acme",
        "1.0.0",
        "[capabilities]\noutbound_http = [\"https://evil.example:443\"]\n",
    );
    let greedy_signed = work.join("greedy-signed.spkg");
    sign(&greedy, &work.join("acme.key"), None, &greedy_signed);

    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        data.path(),
        &[("--trust", trust.to_str().expect("utf-8 path"))],
    );
    let http = client(&server);
    let token = sign_in(&http, ADMIN, PASSWORD).await;
    let services = http.get("/ui/services").await.text().await.expect("body");
    assert!(
        services.contains("href=\"/ui/services/install\""),
        "{services}"
    );
    let form = http.get("/ui/services/install").await;
    assert_eq!(form.status(), 200);
    let form = form.text().await.expect("body");
    assert!(form.contains("enctype=\"multipart/form-data\""), "{form}");
    assert_eq!(csrf(&form), token);

    // Unsigned, with signatures required: why, and no confirmation.
    let (status, page) = upload(&http, &token, &plain).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"not-allowed\""), "{page}");
    assert!(page.contains("carries no signature"), "{page}");
    assert!(!page.contains("id=\"confirm\""), "{page}");
    // Signed, but asking for a host over the publisher's ceiling.
    let (_, page) = upload(&http, &token, &greedy_signed).await;
    assert!(page.contains("id=\"not-allowed\""), "{page}");
    assert!(page.contains("evil.example"), "{page}");
    assert!(!page.contains("id=\"confirm\""), "{page}");
    // A forged upload is refused before it is read.
    let (status, _) = upload(&http, "forged", &signed).await;
    assert_eq!(status, 403);
    // Not a package at all.
    let (status, page) = upload(&http, &token, &trust).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("not a packed service"), "{page}");

    // Signed and within the policy: the plan, then the install.
    let (status, page) = upload(&http, &token, &signed).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("id=\"trust-refused\""), "{page}");
    assert!(page.contains("Plan: install"), "{page}");
    assert!(page.contains("HelloWorldService"), "{page}");
    // As the page escapes it (a base64 key may hold `/`).
    let shown = acme.replace('/', "&#x2f;");
    assert!(page.contains(&shown), "the signer is shown: {page}");
    assert!(page.contains("id=\"confirm\""), "{page}");
    let (list_status, before) = server
        .request(reqwest::Method::GET, "/syncplane/v1/services", None)
        .await;
    assert_eq!(list_status, 200);
    assert!(
        !before.to_string().contains("hello-world"),
        "nothing installed yet: {before}"
    );
    let pending = confirm_token(&page);
    // The confirmation needs the session's CSRF token too.
    let forged = http
        .post(
            "/ui/services/install/confirm",
            &[("csrf", "forged"), ("token", pending.as_str())],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let confirmed = http
        .post(
            "/ui/services/install/confirm",
            &[("csrf", token.as_str()), ("token", pending.as_str())],
        )
        .await;
    assert_eq!(confirmed.status(), 303, "{:?}", confirmed.text().await);
    assert_eq!(location(&confirmed), "/ui/services#service-hello-world");
    let (_, after) = server
        .request(reqwest::Method::GET, "/syncplane/v1/services", None)
        .await;
    assert!(after.to_string().contains("\"hello-world\""), "{after}");
    // A review is confirmed once.
    let again = http
        .post(
            "/ui/services/install/confirm",
            &[("csrf", token.as_str()), ("token", pending.as_str())],
        )
        .await;
    assert_eq!(again.status(), 400);

    // An upgrade: the plan says from which version, and the grants it adds.
    let newer = pack(
        work,
        "acme",
        "1.0.1",
        "[capabilities]\nconfig = [\"greeting\"]\n",
    );
    let newer_signed = work.join("newer-signed.spkg");
    sign(&newer, &work.join("acme.key"), None, &newer_signed);
    let (_, page) = upload(&http, &token, &newer_signed).await;
    assert!(page.contains("Plan: upgrade from 1.0.0 to 1.0.1"), "{page}");
    assert!(page.contains("added config greeting"), "{page}");
    assert!(page.contains("id=\"confirm\""), "{page}");
    // Trusted, but asking for a host the operator's policy does not allow
    // (within the publisher's ceiling, without `--allow`).
    let outbound = pack(
        work,
        "acme",
        "1.0.2",
        "[capabilities]\noutbound_http = [\"https://api.acme.example:443\"]\n",
    );
    let outbound_signed = work.join("outbound-signed.spkg");
    sign(&outbound, &work.join("acme.key"), None, &outbound_signed);
    let (_, page) = upload(&http, &token, &outbound_signed).await;
    assert!(page.contains("id=\"grants-refused\""), "{page}");
    assert!(page.contains("id=\"not-allowed\""), "{page}");
    assert!(!page.contains("id=\"confirm\""), "{page}");
    // The operator allows it for this install, as `--allow` would.
    let allow = [("allow", "outbound_http=https://api.acme.example:443")];
    let (_, page) = upload_with(&http, &token, &outbound_signed, &allow).await;
    assert!(!page.contains("id=\"grants-refused\""), "{page}");
    assert!(
        page.contains("--allow outbound_http=https:&#x2f;&#x2f;api.acme.example:443"),
        "{page}"
    );
    assert!(page.contains("id=\"confirm\""), "{page}");
    let bad = [(
        "allow",
        "outbound_http=https://api.acme.example:443\nnonsense",
    )];
    let (status, page) = upload_with(&http, &token, &outbound_signed, &bad).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("allowed capabilities, line 2"), "{page}");

    // Someone who is not an administrator sees no link and gets no page.
    server
        .create(
            "/xosapi/v1/core/users",
            json!({ "email": "alice@example.org", "password": "alice-pw", "username": "alice" }),
        )
        .await;
    let alice = client(&server);
    let alice_token = sign_in(&alice, "alice@example.org", "alice-pw").await;
    let services = alice.get("/ui/services").await.text().await.expect("body");
    assert!(!services.contains("/ui/services/install"), "{services}");
    assert_eq!(alice.get("/ui/services/install").await.status(), 403);
    let (status, _) = upload(&alice, &alice_token, &signed).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_upgrades_rolls_back_and_uninstalls_after_reviewing_each_and_the_history_lists_them()
 {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let first = pack(work, "acme", "1.0.0", "");
    let second = pack(
        work,
        "acme",
        "1.0.1",
        "[capabilities]\nconfig = [\"greeting\"]\n",
    );
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let http = client(&server);
    let token = sign_in(&http, ADMIN, PASSWORD).await;
    let install = |file: std::path::PathBuf| {
        let (http, token) = (&http, token.clone());
        async move {
            let (status, page) = upload(http, &token, &file).await;
            assert_eq!(status, 200, "{page}");
            let confirmed = confirm(http, &token, &page).await;
            assert_eq!(confirmed.status(), 303);
            page
        }
    };
    install(first).await;
    // The upgrade's review says what changes from the installed version.
    let review = install(second).await;
    assert!(
        review.contains("id=\"plan-diff\"") && review.contains("+ config greeting"),
        "{review}"
    );

    let services = http.get("/ui/services").await.text().await.expect("body");
    for link in [
        "href=\"/ui/services/hello-world/history\"",
        "href=\"/ui/services/hello-world/rollback\"",
        "href=\"/ui/services/hello-world/uninstall\"",
    ] {
        assert!(services.contains(link), "{link}: {services}");
    }
    // Roll back: the plan first, then only a confirmation with the
    // session's CSRF token does it.
    let review = http.get("/ui/services/hello-world/rollback").await;
    assert_eq!(review.status(), 200);
    let review = review.text().await.expect("body");
    assert!(
        review.contains("Plan: 1.0.1 to 1.0.0") && review.contains("id=\"confirm\""),
        "{review}"
    );
    let forged = http
        .post("/ui/services/hello-world/rollback", &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status(), 403);
    let done = http
        .post(
            "/ui/services/hello-world/rollback",
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/ui/services#service-hello-world");
    let shown = server.get("/syncplane/v1/services/hello-world").await;
    assert_eq!(shown["service"]["version"], "1.0.0", "{shown}");

    // An older version needs the downgrade option.
    let older = pack(work, "acme", "0.9.0", "");
    let (_, page) = upload(&http, &token, &older).await;
    assert!(
        page.contains("id=\"not-allowed\"") && page.contains("0.9.0"),
        "{page}"
    );
    let downgrade = [("allow_downgrade", "1")];
    let (_, page) = upload_with(&http, &token, &older, &downgrade).await;
    assert!(
        page.contains("Plan: downgrade from 1.0.0 to 0.9.0") && page.contains("--allow-downgrade"),
        "{page}"
    );
    let confirmed = confirm(&http, &token, &page).await;
    assert_eq!(confirmed.status(), 303);
    let shown = server.get("/syncplane/v1/services/hello-world").await;
    assert_eq!(shown["service"]["version"], "0.9.0", "{shown}");

    // Uninstall: refused while objects remain, unless they go first.
    server
        .create(
            "/xosapi/v1/hello-world/helloworldservices",
            json!({ "name": "greeter", "hello_from": "GUI" }),
        )
        .await;
    let review = http
        .get("/ui/services/hello-world/uninstall")
        .await
        .text()
        .await
        .expect("body");
    assert!(
        review.contains("HelloWorldService: 1") && review.contains("id=\"purge\""),
        "{review}"
    );
    let refused = http
        .post(
            "/ui/services/hello-world/uninstall",
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(refused.status(), 409);
    let refused = refused.text().await.expect("body");
    assert!(refused.contains("still has objects"), "{refused}");
    let done = http
        .post(
            "/ui/services/hello-world/uninstall",
            &[("csrf", token.as_str()), ("purge", "1")],
        )
        .await;
    assert_eq!(done.status(), 303, "{:?}", done.text().await);
    let (_, after) = server
        .request(reqwest::Method::GET, "/syncplane/v1/services", None)
        .await;
    assert_eq!(after["items"], json!([]), "{after}");

    // The history, newest first, says who did each.
    let history = http
        .get("/ui/services/hello-world/history")
        .await
        .text()
        .await
        .expect("body");
    let order: Vec<usize> = [
        "<td>uninstall</td>",
        "<td>downgrade</td>",
        "<td>rollback</td>",
        "<td>upgrade</td>",
        "<td>install</td>",
    ]
    .iter()
    .map(|a| history.find(a).unwrap_or_else(|| panic!("{a}: {history}")))
    .collect();
    assert!(order.is_sorted(), "newest first: {order:?}");
    assert!(history.contains(&format!("user {ADMIN}")), "{history}");

    // Someone who is not an administrator gets none of these pages.
    server
        .create(
            "/xosapi/v1/core/users",
            json!({ "email": "bob@example.org", "password": "bob-pw", "username": "bob" }),
        )
        .await;
    let other = client(&server);
    sign_in(&other, "bob@example.org", "bob-pw").await;
    for page in ["history", "rollback", "uninstall"] {
        let answer = other.get(&format!("/ui/services/hello-world/{page}")).await;
        assert_eq!(answer.status(), 403, "{page}");
    }
}
