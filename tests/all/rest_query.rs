//! REST lists users can query (issue 16 §3), through the real binary:
//! filters of each kind, ordering, pages followed by their `next` links
//! with no object twice and none missing, `400`s naming the parameter,
//! the security policies still deciding what a user sees, and
//! `/xosapi/v1/modeldefs`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::util::{ADMIN, PASSWORD, Server};

const SITES: &str = "/xosapi/v1/core/sites";
const SERVICES: &str = "/xosapi/v1/core/services";
const USERS: &str = "/xosapi/v1/core/users";
const PRIVILEGES: &str = "/xosapi/v1/core/privileges";

const ALICE: (&str, &str) = ("alice@a.example", "pa55-word");

/// Creates `objects` in one batch; returns their ids in order.
async fn create_all(server: &Server, collection: &str, objects: Vec<Value>) -> Vec<i64> {
    let (status, created) = server
        .request(Method::POST, collection, Some(Value::Array(objects)))
        .await;
    assert_eq!(status, 201, "{created}");
    created
        .as_array()
        .expect("created")
        .iter()
        .map(|o| o["id"].as_i64().expect("id"))
        .collect()
}

/// The ids of one page (as the admin) and its `next` link.
async fn page(server: &Server, path: &str) -> (Vec<i64>, Option<String>) {
    page_as(server, (ADMIN, PASSWORD), path).await
}

async fn page_as(server: &Server, who: (&str, &str), path: &str) -> (Vec<i64>, Option<String>) {
    let (status, body) = server.request_as(who, Method::GET, path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    let ids = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_i64().expect("id"))
        .collect();
    (ids, body["next"].as_str().map(str::to_owned))
}

/// The ids of every page from `path` on, following `next`; and how many
/// pages there were.
async fn every_page(server: &Server, who: (&str, &str), path: &str) -> (Vec<i64>, usize) {
    let mut all = Vec::new();
    let mut pages = 0;
    let mut next = Some(path.to_owned());
    while let Some(path) = next {
        let (ids, link) = page_as(server, who, &path).await;
        assert!(!ids.is_empty() || pages == 0, "{path} led to an empty page");
        all.extend(ids);
        pages += 1;
        assert!(pages <= 1000, "paging does not end");
        next = link;
    }
    (all, pages)
}

/// The ids of `items`, for the `filter` on the sites; asserts 200.
async fn sites_where(server: &Server, filter: &str) -> Vec<i64> {
    page(server, &format!("{SITES}?{filter}")).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_of_each_kind_and_ordering_select_and_sort_the_objects() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let names = ["alpha", "Beta", "gamma", "50% off", "under_score", "delta"];
    let sites = create_all(
        &server,
        SITES,
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                json!({
                    "name": name, "login_base": format!("l{i}"),
                    "enabled": i % 2 == 0, "longitude": i as f64 * 1.5,
                })
            })
            .collect(),
    )
    .await;
    let services = create_all(
        &server,
        SERVICES,
        vec![
            json!({ "name": "s-a", "site_id": sites[0] }),
            json!({ "name": "s-b", "site_id": sites[1] }),
            json!({ "name": "s-none" }),
        ],
    )
    .await;

    // Exact values of each type, by field name or link column.
    assert_eq!(sites_where(&server, "name=gamma").await, [sites[2]]);
    assert_eq!(sites_where(&server, "login_base=l4").await, [sites[4]]);
    assert_eq!(
        sites_where(&server, &format!("id={}", sites[3])).await,
        [sites[3]]
    );
    assert_eq!(
        sites_where(&server, "enabled=false").await,
        [sites[1], sites[3], sites[5]]
    );
    assert_eq!(sites_where(&server, "longitude=3").await, [sites[2]]);
    let on_site = |site: i64, by: &str| format!("{SERVICES}?{by}={site}");
    assert_eq!(
        page(&server, &on_site(sites[1], "site")).await.0,
        [services[1]]
    );
    assert_eq!(
        page(&server, &on_site(sites[0], "site_id")).await.0,
        [services[0]]
    );
    // Lists, bounds, text, nulls; combined with AND.
    assert_eq!(
        sites_where(&server, "name__in=alpha,delta,nowhere").await,
        [sites[0], sites[5]]
    );
    assert_eq!(
        sites_where(&server, &format!("id__in={},{}", sites[4], sites[1])).await,
        [sites[1], sites[4]]
    );
    assert_eq!(
        sites_where(&server, "longitude__gt=4.5").await,
        [sites[4], sites[5]]
    );
    assert_eq!(
        sites_where(&server, "longitude__gte=4.5").await,
        [sites[3], sites[4], sites[5]]
    );
    assert_eq!(sites_where(&server, "longitude__lt=1.5").await, [sites[0]]);
    assert_eq!(
        sites_where(&server, "longitude__lte=1.5").await,
        [sites[0], sites[1]]
    );
    assert_eq!(
        sites_where(&server, "longitude__gt=1&longitude__lt=7&enabled=true").await,
        [sites[2], sites[4]]
    );
    assert_eq!(
        sites_where(&server, "name__contains=ta").await,
        [sites[1], sites[5]]
    );
    assert_eq!(
        sites_where(&server, "name__contains=bet").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        sites_where(&server, "name__icontains=bET").await,
        [sites[1]]
    );
    // `%` and `_` are themselves, not wildcards (`%25` is `%` in a URL).
    assert_eq!(
        sites_where(&server, "name__icontains=%25").await,
        [sites[3]]
    );
    assert_eq!(sites_where(&server, "name__icontains=_").await, [sites[4]]);
    assert_eq!(
        page(&server, &format!("{SERVICES}?site__isnull=true"))
            .await
            .0,
        [services[2]]
    );
    assert_eq!(
        page(&server, &format!("{SERVICES}?site_id__isnull=false"))
            .await
            .0,
        [services[0], services[1]]
    );

    // Ordering: by a field either way, several fields, ties by id.
    let ordered = |query: &str| {
        let server = &server;
        let query = query.to_owned();
        async move {
            let (status, body) = server
                .request(Method::GET, &format!("{SITES}?{query}"), None)
                .await;
            assert_eq!(status, 200, "{query}: {body}");
            body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|o| o["name"].as_str().expect("name").to_owned())
                .collect::<Vec<String>>()
        }
    };
    let mut by_name: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    by_name.sort();
    assert_eq!(ordered("ordering=name").await, by_name);
    by_name.reverse();
    assert_eq!(ordered("ordering=-name").await, by_name);
    assert_eq!(
        ordered("ordering=enabled,-longitude").await,
        ["delta", "50% off", "Beta", "under_score", "gamma", "alpha"]
    );
    assert_eq!(
        ordered("ordering=-id&enabled=true").await,
        ["under_score", "gamma", "alpha"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_query_parameters_are_400_naming_the_parameter() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let cases = [
        (SITES, "nope=1", "nope"),
        (SITES, "id=abc", "id"),
        (SITES, "enabled__gt=true", "enabled__gt"),
        (SITES, "enabled=maybe", "enabled"),
        (SITES, "longitude__lt=east", "longitude__lt"),
        (SITES, "name__isnull=true", "name__isnull"),
        (SITES, "name__like=a", "name__like"),
        (SITES, "backend_code__contains=1", "backend_code__contains"),
        (SITES, "page_size=0", "page_size"),
        (SITES, "page_size=1001", "page_size"),
        (SITES, "page=zero", "page"),
        (SITES, "page=500", "page"),
        (SITES, "cursor=made-up", "cursor"),
        (SITES, "page=2&cursor=x", "cursor"),
        (SITES, "ordering=nope", "ordering"),
        (SITES, "name=a&name=b", "name"),
        (USERS, "password=x", "password"),
        (USERS, "ordering=password", "ordering"),
        (SERVICES, "site__isnull=yes", "site__isnull"),
    ];
    for (collection, query, parameter) in cases {
        let (status, body) = server
            .request(Method::GET, &format!("{collection}?{query}"), None)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
        let message = body["error"].as_str().expect("error");
        assert!(
            message.starts_with(&format!("query parameter `{parameter}`: ")),
            "{query}: {message}"
        );
    }
    // A cursor is for the ordering it was made for.
    create_all(
        &server,
        SITES,
        (0..3).map(|i| json!({ "name": format!("s{i}") })).collect(),
    )
    .await;
    let (_, next) = page(&server, &format!("{SITES}?ordering=-name&page_size=1")).await;
    let next = next.expect("a next page");
    let cursor = next.split("cursor=").nth(1).expect("cursor");
    let (status, body) = server
        .request(
            Method::GET,
            &format!("{SITES}?ordering=name&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["parameter"], "cursor");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("ordering=-name,id"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_followed_by_next_list_every_object_once_even_while_objects_come_and_go() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let sites = create_all(
        &server,
        SITES,
        (0..250)
            .map(|i| json!({ "name": format!("site-{:03}", (i * 37) % 250), "longitude": (i % 9) as f64 }))
            .collect(),
    )
    .await;

    // By default: 100 a page, by id, with a next link while there are more.
    let (first, next) = page(&server, SITES).await;
    assert_eq!(first, sites[..100]);
    let next = next.expect("a next page");
    assert!(next.starts_with("/xosapi/v1/core/sites?cursor="), "{next}");
    let (all, pages) = every_page(&server, (ADMIN, PASSWORD), SITES).await;
    assert_eq!(all, sites);
    assert_eq!(pages, 3);
    // Any page size, any order: the pages together are the whole list.
    for ordering in [
        "",
        "&ordering=name",
        "&ordering=-longitude,name",
        "&ordering=-id",
    ] {
        let (whole, pages) = every_page(
            &server,
            (ADMIN, PASSWORD),
            &format!("{SITES}?page_size=1000{ordering}"),
        )
        .await;
        assert_eq!(pages, 1);
        assert_eq!(whole.len(), 250);
        for size in [1, 7, 100] {
            let (paged, pages) = every_page(
                &server,
                (ADMIN, PASSWORD),
                &format!("{SITES}?page_size={size}{ordering}"),
            )
            .await;
            assert_eq!(paged, whole, "page_size={size}{ordering}");
            assert_eq!(
                pages,
                250_usize.div_ceil(size),
                "page_size={size}{ordering}"
            );
        }
        // Numbered pages are the same slices.
        let (third, _) = page(&server, &format!("{SITES}?page_size=30&page=3{ordering}")).await;
        assert_eq!(third, whole[60..90], "page 3{ordering}");
    }
    // Filters are kept in the next link.
    let (filtered, _) = every_page(
        &server,
        (ADMIN, PASSWORD),
        &format!("{SITES}?longitude__gte=7&page_size=4"),
    )
    .await;
    let expected: Vec<i64> = sites
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 9 >= 7)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(filtered, expected);

    // Objects created and deleted between two pages: nothing seen twice,
    // nothing that stayed goes missing.
    let (first, next) = page(&server, &format!("{SITES}?ordering=name&page_size=50")).await;
    let mut seen = first.clone();
    let early = server
        .create(SITES, json!({ "name": "site-000-early" }))
        .await;
    let late = server
        .create(SITES, json!({ "name": "site-999-late" }))
        .await;
    let (status, _) = server
        .request(Method::DELETE, &format!("{SITES}/{}", first[0]), None)
        .await;
    assert_eq!(status, 200);
    let (rest, _) = every_page(&server, (ADMIN, PASSWORD), &next.expect("next")).await;
    seen.extend(rest);
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "an object was listed twice");
    assert!(
        !seen.contains(&early),
        "sorts before the cursor: not in later pages"
    );
    assert!(
        seen.contains(&late),
        "sorts after the cursor: in a later page"
    );
    for id in &sites {
        assert!(seen.contains(id), "site {id} went missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_pages_through_only_what_the_policies_let_them_read() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let alice = server
        .create(
            USERS,
            json!({ "email": ALICE.0, "password": ALICE.1, "firstname": "Alice", "lastname": "A" }),
        )
        .await;
    let services = create_all(
        &server,
        SERVICES,
        (0..40)
            .map(|i| json!({ "name": format!("svc-{i:02}") }))
            .collect(),
    )
    .await;
    // Alice holds a privilege on every fourth service.
    let granted: Vec<i64> = services.iter().copied().skip(1).step_by(4).collect();
    create_all(
        &server,
        PRIVILEGES,
        granted
            .iter()
            .map(|id| {
                json!({
                    "accessor_id": alice, "accessor_type": "User", "object_type": "Service",
                    "object_id": id, "permission": "role:user",
                })
            })
            .collect(),
    )
    .await;

    let (hers, pages) = every_page(&server, ALICE, &format!("{SERVICES}?page_size=3")).await;
    assert_eq!(hers, granted);
    assert_eq!(pages, granted.len().div_ceil(3));
    let (everything, _) = every_page(&server, (ADMIN, PASSWORD), SERVICES).await;
    assert_eq!(everything, services);
    // Her numbered pages count her services, not the table's.
    let (second, _) = page_as(&server, ALICE, &format!("{SERVICES}?page_size=3&page=2")).await;
    assert_eq!(second, granted[3..6]);
    // Filters and ordering narrow what she may read, never widen it.
    let (filtered, _) = every_page(
        &server,
        ALICE,
        &format!("{SERVICES}?name__gte=svc-20&ordering=-name&page_size=2"),
    )
    .await;
    let mut expected: Vec<i64> = granted
        .iter()
        .copied()
        .filter(|id| *id >= services[20])
        .collect();
    expected.reverse();
    assert_eq!(filtered, expected);
    let hidden = services[0];
    let (none, next) = page_as(&server, ALICE, &format!("{SERVICES}?id={hidden}")).await;
    assert!(none.is_empty() && next.is_none());
    // Users: she sees herself only, whatever she asks for.
    let (users, _) = page_as(&server, ALICE, &format!("{USERS}?email__contains=@")).await;
    assert_eq!(users, [alice]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modeldefs_describe_every_model_and_field_for_signed_in_users() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let (status, body) = server
        .request_as(
            ("nobody@x.org", "wrong"),
            Method::GET,
            "/xosapi/v1/modeldefs",
            None,
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let defs = server.get("/xosapi/v1/modeldefs").await;
    let items = defs["items"].as_array().expect("items");
    let site = items.iter().find(|m| m["name"] == "Site").expect("Site");
    assert_eq!(site["app"], "core");
    assert_eq!(site["verbose_name"], "Site");
    let field = |name: &str| {
        site["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no field {name} in {site}"))
    };
    assert_eq!(
        field("name"),
        json!({
            "name": "name", "hint": "Name for this Site", "help_text": "Name for this Site",
            "type": "string", "read_only": false,
            "validators": [{"name": "maxlength", "int_value": 200}, {"name": "required", "bool_value": true}],
        })
    );
    assert_eq!(field("id")["read_only"], true);
    assert_eq!(field("backend_status")["read_only"], true);
    assert_eq!(field("enabled")["type"], "boolean");
    assert_eq!(field("enabled")["default"], "true");
    assert_eq!(field("site_url")["validators"][1]["name"], "url");
    let relations = site["relations"].as_array().expect("relations");
    assert!(
        relations.contains(&json!({"model": "User", "type": "onetomany", "on_field": "site"})),
        "{relations:?}"
    );
    let service = items
        .iter()
        .find(|m| m["name"] == "ServiceInstance")
        .expect("ServiceInstance");
    let owner = service["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "owner_id")
        .expect("owner_id");
    assert_eq!(
        owner["relation"],
        json!({"model": "Service", "type": "manytoone", "on_field": "owner"})
    );
    // Any signed-in user may read them.
    let alice = json!({ "email": ALICE.0, "password": ALICE.1, "firstname": "A", "lastname": "A" });
    server.create(USERS, alice).await;
    let (status, as_alice) = server
        .request_as(ALICE, Method::GET, "/xosapi/v1/modeldefs", None)
        .await;
    assert_eq!(status, 200, "{as_alice}");
    assert_eq!(as_alice, defs);
}
