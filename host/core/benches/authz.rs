//! What authorization costs a filtered list: an admin's list of 100,000
//! services against a plain user's, who may see the 1,000 of them they hold
//! a privilege on (`service_policy`: `exists Privilege: ... &
//! Privilege.object_id = obj.id`). The target (issue 14) is a user's list
//! at most twice an admin's; the ratio is printed at the end.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use syncplane_core::{Core, Principal};

const SERVICES: usize = 100_000;
const GRANTED_EVERY: usize = 100;

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn lists(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let (core, admin, user) = rt.block_on(async {
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        core.ensure_admin("bench-admin").await.expect("admin");
        let mut tx = core.begin().await.expect("tx");
        let user = tx
            .create(
                "User",
                map(json!({ "email": "u@example.org", "password": "", "firstname": "u", "lastname": "u" })),
            )
            .await
            .expect("user");
        for i in 0..SERVICES {
            let service = tx
                .create("Service", map(json!({ "name": format!("s{i}") })))
                .await
                .expect("service");
            if i % GRANTED_EVERY == 0 {
                tx.create(
                    "Privilege",
                    map(json!({
                        "accessor_id": user.id, "object_type": "Service",
                        "object_id": service.id, "permission": "role:user",
                    })),
                )
                .await
                .expect("privilege");
            }
        }
        tx.commit().await.expect("commit");
        let admin = core
            .list("User")
            .await
            .expect("users")
            .into_iter()
            .find(|u| u.fields.get("is_admin") == Some(&Value::Bool(true)))
            .expect("admin");
        (core, Principal::User(admin), Principal::User(user))
    });
    let visible = rt
        .block_on(core.list_as(&user, "Service"))
        .expect("list")
        .len();
    assert_eq!(visible, SERVICES / GRANTED_EVERY);
    let mut group = c.benchmark_group("list_as_100k_services");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("admin", |b| {
        b.iter(|| rt.block_on(core.list_as(&admin, "Service")).expect("list"))
    });
    group.bench_function("user_with_1000_privileges", |b| {
        b.iter(|| rt.block_on(core.list_as(&user, "Service")).expect("list"))
    });
    group.finish();
    let time = |who: &Principal| {
        let started = Instant::now();
        for _ in 0..3 {
            rt.block_on(core.list_as(who, "Service")).expect("list");
        }
        started.elapsed() / 3
    };
    let (a, u) = (time(&admin), time(&user));
    println!(
        "admin {a:?}, user {u:?}: a user's filtered list costs {:.2}x an admin's",
        u.as_secs_f64() / a.as_secs_f64()
    );
}

criterion_group!(benches, lists);
criterion_main!(benches);
