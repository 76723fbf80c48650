//! The web GUI over plain HTTP (no browser): sessions that expire or end,
//! the event stream's resume by `Last-Event-ID`, what a user who is not an
//! administrator sees and may do, and the security headers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{ADMIN, PASSWORD, Server};

/// A browser without a browser: keeps the cookies it is sent (ignoring
/// their paths) and does not follow redirects, so the tests see them.
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    cookies: Mutex<BTreeMap<String, String>>,
}

pub(crate) fn client(server: &Server) -> Client {
    Client {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        base: server.url.clone(),
        cookies: Mutex::new(BTreeMap::new()),
    }
}

impl Client {
    fn cookie_header(&self) -> String {
        let cookies = self.cookies.lock().expect("cookies");
        cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&self, response: &reqwest::Response) {
        let mut cookies = self.cookies.lock().expect("cookies");
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().expect("a text cookie");
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || attributes.contains("Max-Age=0") {
                cookies.remove(name);
            } else {
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        self.keep(&response);
        response
    }

    /// `GET path`, with `headers`.
    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    /// The body of the page at `path`.
    pub(crate) async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("body")
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(self.http.post(format!("{}{path}", self.base)).form(form))
            .await
    }
}

/// The value of the first `name="csrf"` input of a page.
pub(crate) fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().expect("its value").to_owned()
}

/// Signs in through the login form; returns the session's CSRF token.
pub(crate) async fn sign_in(http: &Client, email: &str, password: &str) -> String {
    let form = http.get("/ui/login?next=/ui/services").await;
    assert_eq!(form.status(), 200);
    let token = csrf(&form.text().await.expect("body"));
    let answer = http
        .post(
            "/ui/login",
            &[
                ("csrf", token.as_str()),
                ("next", "/ui/services"),
                ("username", email),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(answer.status(), 303, "{:?}", answer.text().await);
    assert_eq!(answer.headers()["location"], "/ui/services");
    let page = http.get("/ui/services").await;
    assert_eq!(page.status(), 200);
    csrf(&page.text().await.expect("body"))
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_expired_session_goes_back_to_login_then_to_the_page_and_logout_ends_it() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--session-ttl", "2s")]);
    let http = client(&server);
    // Signed out: the login page, with the page asked for.
    let asked = http.get("/ui/m/Site?ordering=-name").await;
    assert_eq!(asked.status(), 303);
    assert_eq!(
        location(&asked),
        "/ui/login?next=%2Fui%2Fm%2FSite%3Fordering%3D-name"
    );
    let headers = asked.headers();
    assert!(
        headers["content-security-policy"]
            .to_str()
            .is_ok_and(|csp| csp.starts_with("default-src 'self'")),
        "{headers:?}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");

    sign_in(&http, ADMIN, PASSWORD).await;
    // Signed in, the login page goes straight on.
    let again = http.get("/ui/login?next=%2Fui%2Fm%2FSite").await;
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), "/ui/m/Site");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = http.get("/ui/m/Site").await;
    assert_eq!(expired.status(), 303);
    assert_eq!(
        location(&expired),
        "/ui/login?next=%2Fui%2Fm%2FSite&expired=1"
    );
    let login = http
        .get(&location(&expired))
        .await
        .text()
        .await
        .expect("body");
    assert!(login.contains("Your session has ended"), "{login}");
    // The page asked for is kept (escaped: `/` is `&#x2f;`).
    assert!(
        login.contains("name=\"next\" value=\"&#x2f;ui&#x2f;m&#x2f;Site\""),
        "{login}"
    );

    // Logout revokes the session: the same cookie no longer works.
    let csrf = sign_in(&http, ADMIN, PASSWORD).await;
    let refused = http.post("/ui/logout", &[("csrf", "wrong")]).await;
    assert_eq!(
        refused.status(),
        403,
        "a logout without the CSRF token is refused"
    );
    let out = http.post("/ui/logout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(location(&out), "/ui/login?out=1");
    let after = http.get("/ui/services").await;
    assert_eq!(after.status(), 303);
    assert!(location(&after).starts_with("/ui/login?next="), "{after:?}");
}

/// The `id:` lines of an event stream until `last` is seen (or 10 s).
async fn event_ids(response: reqwest::Response, last: i64) -> Vec<i64> {
    let mut response = response;
    let mut text = String::new();
    let mut ids = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
        ids = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .filter_map(|id| id.trim().parse().ok())
            .collect();
        if ids.contains(&last) {
            break;
        }
    }
    ids
}

#[tokio::test]
async fn the_event_stream_resumes_after_last_event_id_with_no_gap() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let http = client(&server);
    sign_in(&http, ADMIN, PASSWORD).await;
    for name in ["a", "b", "c"] {
        server
            .create(
                "/xosapi/v1/core/sites",
                json!({ "name": name, "login_base": name }),
            )
            .await;
    }
    // The admin (1), then the three sites (2, 3, 4): resuming after 2
    // gives 3 and 4, in order.
    let stream = http
        .get_with("/ui/events?model=Site", &[("last-event-id", "2")])
        .await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(event_ids(stream, 4).await, [3, 4]);
    // Too old a position (none is that far ahead) restarts from now.
    let stream = http.get("/ui/events?since=999").await;
    assert_eq!(stream.status(), 200);
}

#[tokio::test]
async fn a_user_who_is_not_an_admin_sees_and_changes_only_what_the_core_allows() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let alice = server
        .create(
            "/xosapi/v1/core/users",
            json!({ "email": "alice@example.org", "password": "alice-pw", "username": "alice" }),
        )
        .await;
    server
        .create(
            "/xosapi/v1/core/users",
            json!({ "email": "reader@example.org", "password": "reader-pw", "username": "reader", "is_readonly": true }),
        )
        .await;
    let http = client(&server);
    let csrf = sign_in(&http, "alice@example.org", "alice-pw").await;
    let users = http.get("/ui/m/User").await.text().await.expect("body");
    // The user policy: a user sees themself, not the admin.
    assert!(
        users.contains(&format!("data-object-id=\"{alice}\"")),
        "{users}"
    );
    assert!(!users.contains("data-object-id=\"1\""), "{users}");
    // The admin is not found, as in REST.
    let admin = http.get("/ui/m/User/1").await;
    assert_eq!(admin.status(), 404);
    // A link search finds only what the user may read.
    let found: serde_json::Value = http
        .get("/ui/m/User/search?q=example")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        found["items"],
        json!([{ "id": alice, "label": "alice@example.org" }]),
        "{found}"
    );
    // Unknown models and ids, and ids that are no number, are pages too.
    for path in [
        "/ui/m/Site/999",
        "/ui/m/Nope",
        "/ui/m/Site/abc",
        "/ui/m/Site/abc/edit",
        "/ui/nope",
    ] {
        let answer = http.get(path).await;
        assert_eq!(answer.status(), 404, "{path}");
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .is_ok_and(|t| t.starts_with("text/html")),
            "{path}"
        );
    }
    // Step details are for administrators.
    let services = http.get("/ui/services").await.text().await.expect("body");
    assert!(services.contains("shown to administrators"), "{services}");
    // A write the policy refuses is refused by the core, shown on the
    // form, and nothing is written.
    let edit = http
        .get(&format!("/ui/m/User/{alice}/edit"))
        .await
        .text()
        .await
        .expect("body");
    let version = edit
        .split("name=\"_version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a version in the edit form:\n{edit}"))
        .to_owned();
    let refused = http
        .post(
            &format!("/ui/m/User/{alice}/edit"),
            &[
                ("csrf", csrf.as_str()),
                ("_version", version.as_str()),
                ("email", "alice@example.org"),
                ("username", "alice"),
                ("is_admin", "true"),
                ("is_active", "true"),
            ],
        )
        .await;
    let status = refused.status();
    let page = refused.text().await.expect("body");
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("id=\"form-error\""), "{page}");
    let (_, alice_now) = server
        .request(
            reqwest::Method::GET,
            &format!("/xosapi/v1/core/users/{alice}"),
            None,
        )
        .await;
    assert_eq!(alice_now["is_admin"], false, "{alice_now}");

    // A read-only user is offered no form and refused one.
    let reader = client(&server);
    let reader_csrf = sign_in(&reader, "reader@example.org", "reader-pw").await;
    let list = reader.get("/ui/m/Site").await.text().await.expect("body");
    assert!(!list.contains("/ui/m/Site/new"), "{list}");
    let forged = reader
        .post(
            "/ui/m/Site/new",
            &[("csrf", reader_csrf.as_str()), ("name", "x")],
        )
        .await;
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn many_to_many_links_are_edited_as_lists_of_ids_and_shown_as_links() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let site = server
        .create(
            "/xosapi/v1/core/sites",
            json!({ "name": "s", "login_base": "s" }),
        )
        .await;
    let mut nodes = Vec::new();
    for name in ["n1", "n2"] {
        nodes.push(
            server
                .create(
                    "/xosapi/v1/core/nodes",
                    json!({ "name": name, "site": site }),
                )
                .await,
        );
    }
    let http = client(&server);
    let csrf = sign_in(&http, ADMIN, PASSWORD).await;
    let form = http
        .get("/ui/m/NodeLabel/new")
        .await
        .text()
        .await
        .expect("body");
    assert!(form.contains("name=\"node_ids\""), "{form}");
    let ids = format!("{}, {}", nodes[0], nodes[1]);
    let created = http
        .post(
            "/ui/m/NodeLabel/new",
            &[
                ("csrf", csrf.as_str()),
                ("name", "rack-1"),
                ("node_ids", ids.as_str()),
            ],
        )
        .await;
    assert_eq!(created.status(), 303, "{:?}", created.text().await);
    let detail_path = location(&created);
    let id: i64 = detail_path
        .trim_start_matches("/ui/m/NodeLabel/")
        .split('?')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("the new object's id");
    let (_, label) = server
        .request(
            reqwest::Method::GET,
            &format!("/xosapi/v1/core/nodelabels/{id}"),
            None,
        )
        .await;
    assert_eq!(label["node_ids"], json!(nodes), "{label}");
    let detail = http.get(&detail_path).await.text().await.expect("body");
    for node in &nodes {
        assert!(
            detail.contains(&format!("&#x2f;ui&#x2f;m&#x2f;Node&#x2f;{node}\"")),
            "{detail}"
        );
    }
    let edit = http
        .get(&format!("/ui/m/NodeLabel/{id}/edit"))
        .await
        .text()
        .await
        .expect("body");
    assert!(
        edit.contains(&format!("value=\"{}\"", ids.replace(',', "&#x2c;")))
            || edit.contains(&format!("value=\"{ids}\"")),
        "{edit}"
    );
    // An id that is not a number is refused by the core, nothing written.
    let refused = http
        .post(
            "/ui/m/NodeLabel/new",
            &[
                ("csrf", csrf.as_str()),
                ("name", "rack-2"),
                ("node_ids", "1, x"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400);
    let (_, labels) = server
        .request(
            reqwest::Method::GET,
            "/xosapi/v1/core/nodelabels?name=rack-2",
            None,
        )
        .await;
    assert_eq!(labels["items"], json!([]), "{labels}");
}

#[tokio::test]
async fn the_service_graph_draws_dependencies_as_links_with_a_table_saying_the_same() {
    use crate::lifecycle::package_dir;
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let base = package_dir(
        "zzz-base",
        "1.0.0",
        "option app_label = \"zzzbase\";\n\nmessage ZzzBase (XOSBase) {\n    required string name = 1;\n}\n",
        "",
    );
    crate::util::assert_success(&server.install(base.path(), &[]));
    let ext = package_dir(
        "aaa-ext",
        "1.0.0",
        "option app_label = \"aaaext\";\n\nmessage AaaLink (XOSBase) {\n    required string name = 1;\n    \
         optional manytoone base->ZzzBase:aaa_links = 2:1001;\n}\n",
        "",
    );
    crate::util::assert_success(&server.install(ext.path(), &[]));
    let http = client(&server);
    sign_in(&http, ADMIN, PASSWORD).await;
    let page = http.get("/ui/graph").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    let svg = &html[html.find("<svg").expect("an inline svg")..];
    let svg = &svg[..svg.find("</svg>").expect("its end")];
    for name in ["zzz-base", "aaa-ext"] {
        assert!(
            svg.contains(&format!(
                "<a class=\"node node-ok\" href=\"/ui/services#service-{name}\""
            )),
            "{svg}"
        );
    }
    assert!(svg.contains("✔"), "a symbol besides the colour: {svg}");
    assert_eq!(svg.matches("<line class=\"edge\"").count(), 1, "{svg}");
    assert!(svg.contains("aaa-ext depends on zzz-base"), "{svg}");
    let table = &html[html.find("id=\"graph-table\"").expect("the table")..];
    assert!(
        table.contains("its model `AaaLink` uses `ZzzBase`"),
        "{table}"
    );
    // The services page has the anchors the nodes lead to.
    let services = http.get("/ui/services").await.text().await.expect("body");
    assert!(services.contains("id=\"service-zzz-base\""), "{services}");

    // Where a node is: the `x` of the box after its link.
    fn x_of(html: &str, name: &str) -> i64 {
        let at = html
            .find(&format!("href=\"/ui/services#service-{name}\""))
            .expect("the node");
        let rect = &html[at..];
        let x = &rect[rect.find("<rect x=\"").expect("its box") + 9..];
        x.split('"').next().and_then(|v| v.parse().ok()).expect("x")
    }
    assert!(x_of(&html, "zzz-base") < x_of(&html, "aaa-ext"), "{html}");
    // An operator's constraint (the highest priority) places the nodes.
    server
        .create(
            "/xosapi/v1/core/servicegraphconstraints",
            json!({ "constraints": "[aaa-ext, [zzz-base]]", "priority": 5 }),
        )
        .await;
    server
        .create(
            "/xosapi/v1/core/servicegraphconstraints",
            json!({ "constraints": "not a list", "priority": 1 }),
        )
        .await;
    let html = http.get("/ui/graph").await.text().await.expect("body");
    assert!(x_of(&html, "aaa-ext") < x_of(&html, "zzz-base"), "{html}");
    assert!(
        html.contains("Placed as the service graph constraint"),
        "{html}"
    );
}

#[tokio::test]
async fn more_than_50_many_to_many_links_are_folded_on_the_detail_page() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let site = server
        .create(
            "/xosapi/v1/core/sites",
            json!({ "name": "s", "login_base": "s" }),
        )
        .await;
    let nodes: Vec<serde_json::Value> = (0..55)
        .map(|i| json!({ "name": format!("n{i:02}"), "site": site }))
        .collect();
    let (status, created) = server
        .request(
            reqwest::Method::POST,
            "/xosapi/v1/core/nodes",
            Some(serde_json::Value::Array(nodes)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let ids: Vec<i64> = created
        .as_array()
        .expect("created nodes")
        .iter()
        .map(|n| n["id"].as_i64().expect("id"))
        .collect();
    let label = server
        .create(
            "/xosapi/v1/core/nodelabels",
            json!({ "name": "rack", "node_ids": ids }),
        )
        .await;
    let http = client(&server);
    sign_in(&http, ADMIN, PASSWORD).await;
    let detail = http
        .get(&format!("/ui/m/NodeLabel/{label}"))
        .await
        .text()
        .await
        .expect("body");
    let folded = detail
        .find("<details class=\"more-links\">")
        .expect("folded links");
    assert!(
        detail[folded..].contains("<summary>5 more</summary>"),
        "{detail}"
    );
    let link = |id: i64| format!("&#x2f;ui&#x2f;m&#x2f;Node&#x2f;{id}\"");
    // The first 50 before the fold, the last 5 in it.
    assert!(detail[..folded].contains(&link(ids[49])), "{detail}");
    assert!(!detail[..folded].contains(&link(ids[50])), "{detail}");
    assert!(detail[folded..].contains(&link(ids[54])), "{detail}");
}
