use syncplane_store::PageQuery;

use serde_json::{Map, Value, json};

use super::*;
use crate::{Core, Principal};

/// A service model inheriting `Service`, so that a list of services spans
/// two tables.
const SHOP: &str = r#"option app_label = "shop";
message Widget (Service) { optional string color = 1; optional int32 size = 2; }"#;

async fn core() -> (tempfile::TempDir, Core) {
    let dir = tempfile::tempdir().expect("tempdir");
    let core = Core::open(&dir.path().join("db.sqlite"))
        .await
        .expect("open");
    let file = syncplane_xproto::parse("shop.xproto", SHOP).expect("parses");
    core.register_models(&[file]).await.expect("models");
    (dir, core)
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

fn parse(core: &Core, model: &str, query: &str) -> Result<Query, QueryError> {
    Query::parse(&core.registry(), model, &pairs(query))
}

async fn user(core: &Core, email: &str, admin: bool) -> Principal {
    let user = core
        .create(
            "User",
            map(json!({ "email": email, "password": "", "firstname": "f", "lastname": "l", "is_admin": admin })),
        )
        .await
        .expect("user");
    Principal::User(user)
}

/// The ids of every page of `query`, following `next`, and how many pages.
async fn all_pages(core: &Core, who: &Principal, model: &str, query: &str) -> (Vec<i64>, usize) {
    let first = parse(core, model, query).expect("query");
    let mut listing = core.query_as(who, model, &first).await.expect("page");
    let mut ids: Vec<i64> = listing.objects.iter().map(|o| o.id).collect();
    let mut pages = 1;
    while let Some(cursor) = listing.next.take() {
        let next = parse(core, model, &format!("{query}&cursor={cursor}")).expect("next");
        listing = core.query_as(who, model, &next).await.expect("page");
        assert!(!listing.objects.is_empty(), "a `next` leads to objects");
        ids.extend(listing.objects.iter().map(|o| o.id));
        pages += 1;
        assert!(pages < 1000, "paging does not end");
    }
    (ids, pages)
}

#[tokio::test]
async fn wrong_parameters_are_refused_naming_the_parameter() {
    let (_dir, core) = core().await;
    let cases = [
        ("Site", "nope=1", "nope", "Site has no field `nope`"),
        ("Site", "id=abc", "id", "`abc` is not an integer"),
        (
            "Site",
            "site_url=a&site_url=b",
            "site_url",
            "more than once",
        ),
        ("Site", "enabled__gt=true", "enabled__gt", "a boolean"),
        ("Site", "enabled=maybe", "enabled", "not true or false"),
        (
            "Site",
            "longitude__lt=east",
            "longitude__lt",
            "not a number",
        ),
        (
            "Site",
            "created__gte=yesterday",
            "created__gte",
            "seconds since the epoch",
        ),
        (
            "Site",
            "backend_code__contains=1",
            "backend_code__contains",
            "text fields only",
        ),
        (
            "Site",
            "name__isnull=true",
            "name__isnull",
            "required, never null",
        ),
        (
            "Service",
            "site__isnull=perhaps",
            "site__isnull",
            "not true or false",
        ),
        (
            "Site",
            "name__like=a",
            "name__like",
            "unknown lookup `__like`",
        ),
        ("Site", "id__in=1,x,3", "id__in", "`x` is not an integer"),
        ("Site", "page_size=0", "page_size", "from 1 to 1000"),
        ("Site", "page_size=1001", "page_size", "from 1 to 1000"),
        ("Site", "page=0", "page", "from 1"),
        ("Site", "page=102", "page", "follow the `next` link"),
        ("Site", "page=2&cursor=x", "cursor", "cannot be combined"),
        (
            "Site",
            "cursor=bogus",
            "cursor",
            "not a cursor this server made",
        ),
        ("Site", "ordering=nope", "ordering", "no field `nope`"),
        ("Site", "ordering=name,,id", "ordering", "empty field name"),
        ("Site", "ordering=name,-name", "ordering", "named twice"),
        ("User", "password=x", "password", "secret"),
        (
            "User",
            "password__isnull=false",
            "password__isnull",
            "secret",
        ),
        ("User", "ordering=-password", "ordering", "secret"),
    ];
    for (model, query, parameter, says) in cases {
        let error = parse(&core, model, query).expect_err(query);
        assert_eq!(error.parameter, parameter, "{query}: {error}");
        assert!(error.message.contains(says), "{query}: {error}");
    }
    // A cursor made for another order.
    let cursor = parse(&core, "Site", "ordering=name")
        .expect("query")
        .cursor_after(&[SqlValue::Text("a".into()), SqlValue::Integer(3)]);
    let error = parse(&core, "Site", &format!("cursor={cursor}")).expect_err("other order");
    assert_eq!(error.parameter, "cursor");
    assert!(error.message.contains("ordering=name,id"), "{error}");
    // What is right parses, links by name or column.
    for query in [
        "",
        "name=a&enabled=true&longitude__gte=1.5&ordering=-name,created&page_size=1000",
        "id__in=1,2&page=101",
        "name__icontains=%25&login_base__contains=_&abbreviated_name__gt=m",
    ] {
        parse(&core, "Site", query).unwrap_or_else(|e| panic!("{query}: {e}"));
    }
    for query in [
        "site=3",
        "site_id__in=1,2",
        "site__isnull=true",
        "site_id__gt=0",
    ] {
        parse(&core, "Service", query).unwrap_or_else(|e| panic!("{query}: {e}"));
    }
}

#[tokio::test]
async fn filters_of_every_kind_select_the_matching_objects() {
    let (_dir, core) = core().await;
    let admin = user(&core, "root@x.org", true).await;
    let mut sites = Vec::new();
    for (i, name) in ["alpha", "Beta", "gamma", "50% off", "under_score", "delta"]
        .iter()
        .enumerate()
    {
        let site = core
            .create(
                "Site",
                map(json!({ "name": name, "login_base": format!("l{i}"), "enabled": i % 2 == 0, "longitude": i as f64 })),
            )
            .await
            .expect("site");
        sites.push(site.id);
    }
    let with_site = core
        .create("Service", map(json!({ "name": "s1", "site_id": sites[0] })))
        .await
        .expect("service")
        .id;
    let without = core
        .create("Service", map(json!({ "name": "s2" })))
        .await
        .expect("service")
        .id;
    let widget = core
        .create(
            "Widget",
            map(json!({ "name": "w1", "site_id": sites[1], "color": "red", "size": 3 })),
        )
        .await
        .expect("widget")
        .id;
    let ids = |model: &'static str, query: &str| {
        let core = core.clone();
        let admin = admin.clone();
        let query = query.to_owned();
        async move {
            let query = parse(&core, model, &query).unwrap_or_else(|e| panic!("{query}: {e}"));
            core.query_as(&admin, model, &query)
                .await
                .expect("page")
                .objects
                .iter()
                .map(|o| o.id)
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(ids("Site", "name=gamma").await, [sites[2]]);
    assert_eq!(
        ids("Site", "name__in=alpha,delta,none").await,
        [sites[0], sites[5]]
    );
    assert_eq!(
        ids("Site", "enabled=false").await,
        [sites[1], sites[3], sites[5]]
    );
    assert_eq!(ids("Site", "longitude__gt=3").await, [sites[4], sites[5]]);
    assert_eq!(
        ids("Site", "longitude__gte=3&longitude__lt=5").await,
        [sites[3], sites[4]]
    );
    assert_eq!(ids("Site", "longitude__lte=0").await, [sites[0]]);
    // Text compares byte-wise: upper case sorts first.
    assert_eq!(ids("Site", "name__lt=alpha").await, [sites[1], sites[3]]);
    assert_eq!(ids("Site", "name__contains=ta").await, [sites[1], sites[5]]);
    assert_eq!(ids("Site", "name__contains=Bet").await, [sites[1]]);
    assert_eq!(ids("Site", "name__contains=bet").await, Vec::<i64>::new());
    assert_eq!(ids("Site", "name__icontains=bET").await, [sites[1]]);
    // LIKE's wildcards match themselves.
    assert_eq!(ids("Site", "name__icontains=%").await, [sites[3]]);
    assert_eq!(ids("Site", "name__icontains=_").await, [sites[4]]);
    assert_eq!(ids("Site", &format!("id={}", sites[2])).await, [sites[2]]);
    // Links by name or column, across the tables of Service and Widget.
    assert_eq!(ids("Service", "site__isnull=true").await, [without]);
    assert_eq!(
        ids("Service", "site_id__isnull=false").await,
        [with_site, widget]
    );
    assert_eq!(
        ids("Service", &format!("site={}", sites[1])).await,
        [widget]
    );
    assert_eq!(ids("Widget", "color=red&size__gte=3").await, [widget]);
    // Deleted objects are listed (as before) unless filtered out.
    core.delete(sites[2]).await.expect("delete");
    assert_eq!(ids("Site", "deleted=true").await, [sites[2]]);
    assert!(!ids("Site", "deleted=false").await.contains(&sites[2]));
}

#[tokio::test]
async fn pages_across_two_tables_cover_every_object_once_in_order() {
    let (_dir, core) = core().await;
    let admin = user(&core, "root@x.org", true).await;
    let mut tx = core.begin().await.expect("tx");
    for i in 0..40 {
        // Names are unique (`Service.name` is, across its subclasses'
        // tables too) and interleave across the two tables; kinds tie
        // within and across them (ties by id).
        let name = format!("n{i}");
        let model = if i % 3 == 0 { "Widget" } else { "Service" };
        tx.create(
            model,
            map(json!({ "name": name, "kind": if i % 2 == 0 { "data" } else { "oss" } })),
        )
        .await
        .expect("create");
    }
    tx.commit().await.expect("commit");
    for ordering in [
        "",
        "&ordering=name",
        "&ordering=-name",
        "&ordering=kind,-name",
        "&ordering=kind",
        "&ordering=-id",
    ] {
        let everything =
            parse(&core, "Service", &format!("page_size=1000{ordering}")).expect("query");
        let whole = core
            .query_as(&admin, "Service", &everything)
            .await
            .expect("all");
        assert_eq!(whole.objects.len(), 40);
        assert_eq!(whole.next, None);
        let expected: Vec<i64> = whole.objects.iter().map(|o| o.id).collect();
        for size in [1, 6, 13, 39, 40] {
            let (ids, pages) = all_pages(
                &core,
                &admin,
                "Service",
                &format!("page_size={size}{ordering}"),
            )
            .await;
            assert_eq!(ids, expected, "page_size {size}{ordering}");
            assert_eq!(pages, 40_usize.div_ceil(size), "page_size {size}{ordering}");
        }
        // Numbered pages are the same pages.
        let third =
            parse(&core, "Service", &format!("page_size=6&page=3{ordering}")).expect("query");
        let third = core
            .query_as(&admin, "Service", &third)
            .await
            .expect("page 3");
        let ids: Vec<i64> = third.objects.iter().map(|o| o.id).collect();
        assert_eq!(ids, expected[12..18], "page 3{ordering}");
    }
    // The order is the one asked for.
    let by_name = parse(&core, "Service", "page_size=1000&ordering=-name").expect("query");
    let names: Vec<String> = core
        .query_as(&admin, "Service", &by_name)
        .await
        .expect("page")
        .objects
        .iter()
        .map(|o| o.str_field("name").unwrap_or_default().to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted);
}

#[tokio::test]
async fn a_user_pages_through_only_the_objects_they_may_read() {
    let (_dir, core) = core().await;
    let alice = user(&core, "alice@x.org", false).await;
    let alice_id = alice.user().expect("user").id;
    let mut granted = Vec::new();
    let mut tx = core.begin().await.expect("tx");
    for i in 0..120 {
        let model = if i % 4 == 0 { "Widget" } else { "Service" };
        let service = tx
            .create(model, map(json!({ "name": format!("s{i:03}") })))
            .await
            .expect("service");
        // Alice may read one in seven, spread over both tables.
        if i % 7 == 3 {
            tx.create(
                "Privilege",
                map(json!({ "accessor_id": alice_id, "object_type": "Service", "object_id": service.id, "permission": "role:user" })),
            )
            .await
            .expect("privilege");
            granted.push((i, service.id));
        }
    }
    tx.commit().await.expect("commit");
    let (ids, pages) = all_pages(&core, &alice, "Service", "page_size=5").await;
    let granted_ids: Vec<i64> = granted.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, granted_ids);
    assert_eq!(pages, granted.len().div_ceil(5));
    // Filtered and ordered, still only hers.
    let (ids, _) = all_pages(
        &core,
        &alice,
        "Service",
        "page_size=2&ordering=-name&name__gte=s050",
    )
    .await;
    let mut expected: Vec<i64> = granted
        .iter()
        .filter(|(i, _)| *i >= 50)
        .map(|(_, id)| *id)
        .collect();
    expected.reverse();
    assert_eq!(ids, expected);
    // Her page 2 is her objects 6 to 10, not the table's.
    let second = parse(&core, "Service", "page_size=5&page=2").expect("query");
    let second = core
        .query_as(&alice, "Service", &second)
        .await
        .expect("page");
    let ids: Vec<i64> = second.objects.iter().map(|o| o.id).collect();
    assert_eq!(ids, granted_ids[5..10]);
}

#[tokio::test]
async fn filtered_pages_are_read_through_an_index() {
    let (_dir, core) = core().await;
    let registry = core.registry();
    let mut tx = core.begin().await.expect("tx");
    for (model, query, index) in [
        // `name` is unique, so indexed; a link column is indexed.
        (
            "Site",
            "name__gte=site-0500&name__lt=site-0600",
            "m_site__name",
        ),
        ("Site", "name__in=a,b,c", "m_site__name"),
        ("Service", "site_id=12", "m_service__site_id"),
        ("User", "email=a@b.org", "m_user__email"),
    ] {
        let query = parse(&core, model, query).expect("query");
        let conditions = query.conditions();
        // The first page and a page after a cursor.
        for after in [None, Some(&[SqlValue::Integer(5)][..])] {
            let page = PageQuery {
                conditions: &conditions,
                order: query.order(),
                after,
                limit: 101,
            };
            let table = registry.table(model).expect("table");
            let plan = tx
                .store_tx()
                .select_page_plan(table, &page)
                .await
                .expect("plan");
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "{model} {conditions:?} after {after:?}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "{model} {conditions:?} after {after:?}: {plan:?}"
            );
        }
    }
}

/// The ids and `next` of one page through [`Core::query_as`] and through a
/// read transaction's [`CoreTx::query_as`]: they must agree.
async fn both_ways(core: &Core, who: &Principal, model: &str, query: &str) -> (Vec<i64>, bool) {
    let parsed = parse(core, model, query).expect("query");
    let quick = core.query_as(who, model, &parsed).await.expect("page");
    let mut tx = core.begin_read().await.expect("read tx");
    let slow = tx.query_as(who, model, &parsed).await.expect("page");
    assert_eq!(quick, slow, "{model}?{query}");
    let ids = quick.objects.iter().map(|o| o.id).collect();
    (ids, quick.next.is_some())
}

#[tokio::test]
async fn a_list_answered_in_one_statement_is_the_transactions_answer() {
    let (_dir, core) = core().await;
    let admin = user(&core, "admin@x.org", true).await;
    let bob = user(&core, "bob@x.org", false).await;
    let mut tx = core.begin().await.expect("tx");
    let mut sites = Vec::new();
    for i in 0..30 {
        let site = tx
            .create(
                "Site",
                map(json!({ "name": format!("s{i:02}"), "login_base": format!("s{i:02}") })),
            )
            .await
            .expect("site");
        sites.push(site.id);
    }
    tx.commit().await.expect("commit");
    // Site: one table, no many-to-many field, and its policy lets anyone
    // read without other data: answered in one statement.
    for who in [&admin, &bob] {
        let query = parse(&core, "Site", "page_size=7").expect("query");
        assert!(
            core.query_in_one_read(who, "Site", &query)
                .await
                .expect("read")
                .is_some()
        );
        assert_eq!(
            both_ways(&core, who, "Site", "page_size=7").await,
            (sites[..7].to_vec(), true)
        );
        assert_eq!(
            both_ways(&core, who, "Site", "page_size=7&page=5").await,
            (sites[28..].to_vec(), false)
        );
        let mut last: Vec<i64> = sites[26..].to_vec();
        last.reverse();
        assert_eq!(
            both_ways(&core, who, "Site", "ordering=-name&page_size=4").await,
            (last, true)
        );
        assert_eq!(
            both_ways(&core, who, "Site", "name__gte=s25").await,
            (sites[25..].to_vec(), false)
        );
        let (ids, _) = all_pages(&core, who, "Site", "page_size=4").await;
        assert_eq!(ids, sites);
    }
    // A model of two tables, or a policy that reads privileges, needs the
    // transaction; the answer is the same either way.
    let query = parse(&core, "Service", "").expect("query");
    assert!(
        core.query_in_one_read(&admin, "Service", &query)
            .await
            .expect("read")
            .is_none()
    );
    let mut tx = core.begin().await.expect("tx");
    let service = tx
        .create("Widget", map(json!({ "name": "w" })))
        .await
        .expect("widget");
    tx.commit().await.expect("commit");
    let query = parse(&core, "Widget", "").expect("query");
    assert!(
        core.query_in_one_read(&bob, "Widget", &query)
            .await
            .expect("read")
            .is_none(),
        "bob's read of a service needs his privileges"
    );
    assert_eq!(both_ways(&core, &bob, "Widget", "").await, (vec![], false));
    assert_eq!(
        both_ways(&core, &admin, "Widget", "").await,
        (vec![service.id], false)
    );
}
