//! The same operations on SQLite and on a real PostgreSQL server give the
//! same answers: the store's API means one thing whichever engine is
//! behind it.

use syncplane_store::{
    Column, ColumnType, Condition, Dialect, Error, HistoryQuery, HistoryRetention, HistoryRow,
    Location, OrderKey, PageQuery, PartialIndex, Row, SqlValue, Store, TableSpec,
};

fn spec() -> TableSpec {
    let column = |name: &str, ty, indexed| Column {
        name: name.into(),
        ty,
        indexed,
        default: None,
    };
    TableSpec {
        name: "m_thing".into(),
        columns: vec![
            column("name", ColumnType::Text, true),
            column("size", ColumnType::Integer, false),
            column("weight", ColumnType::Real, false),
            column("deleted", ColumnType::Integer, false),
        ],
        partial_indexes: vec![PartialIndex {
            name: "name_unique".into(),
            columns: vec!["name".into()],
            predicate: "deleted = 0",
            unique: true,
        }],
    }
}

fn row(name: Option<&str>, size: Option<i64>, weight: Option<f64>) -> Row {
    Row::from([
        (
            "name".to_owned(),
            name.map_or(SqlValue::Null, |n| SqlValue::Text(n.into())),
        ),
        (
            "size".to_owned(),
            size.map_or(SqlValue::Null, SqlValue::Integer),
        ),
        (
            "weight".to_owned(),
            weight.map_or(SqlValue::Null, SqlValue::Real),
        ),
        ("deleted".to_owned(), SqlValue::Integer(0)),
    ])
}

/// Everything the battery observed, to compare between engines.
#[derive(Debug, PartialEq)]
struct Observed {
    ids: Vec<i64>,
    all: Vec<(i64, Row)>,
    pages: Vec<Vec<i64>>,
    descending_pages: Vec<Vec<i64>>,
    contains: Vec<i64>,
    contains_case: Vec<i64>,
    empty_in: i64,
    min_size: Option<i64>,
    count_null_size: i64,
    unique: String,
    after_update_many: Vec<(i64, Row)>,
    changes: Vec<(i64, i64, String)>,
    bounds: (Option<i64>, i64),
    records: Vec<(String, String)>,
    duplicates: i64,
    appended: Vec<i64>,
    /// The history after trimming: (object, at_ms, outcome), newest first.
    history: Vec<(i64, i64, String)>,
}

async fn battery(store: &Store) -> Observed {
    let spec = spec();
    store.ensure_table(&spec).await.expect("table");
    // Ensuring it again changes nothing (columns exist, indexes exist).
    store.ensure_table(&spec).await.expect("table again");
    let mut tx = store.begin().await.expect("begin");
    let ids = tx.allocate_ids("Thing", 6).await.expect("ids");
    let rows = [
        row(Some("b"), Some(3), Some(1.5)),
        row(Some("B"), None, None),
        row(None, Some(1), Some(2.0)),
        row(Some("a_%"), Some(3), None),
        row(Some("ab"), Some(2), Some(-1.0)),
        row(None, None, Some(0.5)),
    ];
    for (id, row) in ids.iter().zip(&rows) {
        tx.insert(&spec, *id, row).await.expect("insert");
    }
    tx.commit().await.expect("commit");

    let all = store.select(&spec, &[], None).await.expect("select");
    let mut tx = store.begin().await.expect("begin");
    let order = [OrderKey::asc("name"), OrderKey::asc("id")];
    let descending = [OrderKey::desc("size"), OrderKey::asc("id")];
    let mut pages = Vec::new();
    let mut descending_pages = Vec::new();
    for (order, out) in [
        (&order[..], &mut pages),
        (&descending[..], &mut descending_pages),
    ] {
        let mut after: Option<Vec<SqlValue>> = None;
        loop {
            let page = tx
                .select_page(
                    &spec,
                    &PageQuery {
                        conditions: &[],
                        order,
                        after: after.as_deref(),
                        limit: 2,
                    },
                )
                .await
                .expect("page");
            if page.is_empty() {
                break;
            }
            let (id, values) = page.last().expect("row").clone();
            after = Some(
                order
                    .iter()
                    .map(|k| match k.column.as_str() {
                        "id" => SqlValue::Integer(id),
                        column => {
                            let at = spec.columns.iter().position(|c| c.name == column);
                            values[at.expect("column")].clone()
                        }
                    })
                    .collect(),
            );
            out.push(page.iter().map(|(id, _)| *id).collect());
        }
    }
    let ids_of = |rows: Vec<(i64, Row)>| rows.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    let contains = ids_of(
        tx.select(
            &spec,
            &[Condition::Contains {
                column: "name".into(),
                text: "b".into(),
                ignore_case: false,
            }],
            None,
        )
        .await
        .expect("contains"),
    );
    let contains_case = ids_of(
        tx.select(
            &spec,
            &[Condition::Contains {
                column: "name".into(),
                text: "_%".into(),
                ignore_case: true,
            }],
            None,
        )
        .await
        .expect("contains ignoring case"),
    );
    let empty_in = tx
        .count(&spec, &[Condition::In("size".into(), Vec::new())])
        .await
        .expect("count");
    let min_size = tx.min(&spec, "size", &[]).await.expect("min");
    let count_null_size = tx
        .count(&spec, &[Condition::IsNull("size".into())])
        .await
        .expect("count");
    // A second live "b" breaks the unique index.
    let twin = tx.allocate_id("Thing").await.expect("id");
    let unique = match tx.insert(&spec, twin, &row(Some("b"), None, None)).await {
        Err(error @ Error::Unique { .. }) => error.to_string(),
        other => panic!("expected a unique violation, got {other:?}"),
    };
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    let common = Row::from([("weight".to_owned(), SqlValue::Null)]);
    tx.update_many(
        &spec,
        &common,
        "name",
        &[
            (ids[0], SqlValue::Text("renamed".into())),
            (ids[2], SqlValue::Null),
            (999_999, SqlValue::Text("nobody".into())),
        ],
    )
    .await
    .expect("update many");
    tx.update_many(
        &spec,
        &Row::new(),
        "size",
        &[(ids[1], SqlValue::Integer(7))],
    )
    .await
    .expect("update many sizes");
    let last = tx
        .append_changes(
            &[(ids[0], "Thing", "updated"), (ids[2], "Thing", "updated")],
            100,
        )
        .await
        .expect("log");
    assert_eq!(last, Some(2));
    tx.put_record("ns", "k2", "two").await.expect("record");
    tx.put_record("ns", "k1", "one").await.expect("record");
    tx.put_record("ns", "k1", "uno").await.expect("record");
    tx.commit().await.expect("commit");
    // A rolled-back transaction's change numbers are not used.
    let mut dropped = store.begin().await.expect("begin");
    dropped
        .append_changes(&[(ids[3], "Thing", "lost")], 100)
        .await
        .expect("log");
    drop(dropped);
    let mut tx = store.begin().await.expect("begin");
    tx.append_changes(&[(ids[4], "Thing", "deleted")], 100)
        .await
        .expect("log");
    let records = tx.records("ns").await.expect("records");
    // Marking "renamed" deleted frees its name; two deleted rows may share it.
    tx.update(
        &spec,
        ids[0],
        &Row::from([("deleted".to_owned(), SqlValue::Integer(1))]),
    )
    .await
    .expect("update");
    let duplicates = tx
        .duplicates(
            &spec,
            &PartialIndex {
                name: "size_unique".into(),
                columns: vec!["size".into()],
                predicate: "deleted = 0",
                unique: true,
            },
        )
        .await
        .expect("duplicates");
    tx.commit().await.expect("commit");
    let after_update_many = store.select(&spec, &[], None).await.expect("select");
    let changes = store
        .changes_after(0, 10)
        .await
        .expect("changes")
        .into_iter()
        .map(|c| (c.seq, c.id, c.kind))
        .collect();
    let bounds = store.change_log_bounds().await.expect("bounds");

    let audit = TableSpec {
        name: "sp_audit_test".into(),
        columns: vec![Column {
            name: "what".into(),
            ty: ColumnType::Text,
            indexed: false,
            default: None,
        }],
        partial_indexes: Vec::new(),
    };
    store.ensure_table(&audit).await.expect("audit table");
    let mut tx = store.begin().await.expect("begin");
    let mut appended = Vec::new();
    for what in ["one", "two"] {
        let row = Row::from([("what".to_owned(), SqlValue::Text(what.into()))]);
        appended.push(tx.append(&audit, &row).await.expect("append"));
    }
    tx.commit().await.expect("commit");

    // The invocation history, trimmed to 10 rows, sparing the first and
    // latest failure of ids[0].
    let retention = HistoryRetention {
        keep: 10,
        max_age_ms: 1_000_000,
    };
    let mut tx = store.begin().await.expect("begin");
    for at in 0..30_i64 {
        let outcome = if at < 3 { "failed" } else { "done" };
        let object = if at < 3 { ids[0] } else { ids[1] };
        let row = HistoryRow {
            at_ms: at,
            object,
            model: "Thing".into(),
            service: "s".into(),
            step: "t".into(),
            kind: "sync".into(),
            outcome: outcome.into(),
            message: format!("{outcome} {at}"),
            ..HistoryRow::default()
        };
        tx.append_history(&[row], retention, at)
            .await
            .expect("history");
    }
    tx.commit().await.expect("commit");
    let history = store
        .history(&HistoryQuery {
            limit: 100,
            ..HistoryQuery::default()
        })
        .await
        .expect("history")
        .into_iter()
        .map(|e| (e.row.object, e.row.at_ms, e.row.outcome))
        .collect();

    Observed {
        ids,
        all,
        pages,
        descending_pages,
        contains,
        contains_case,
        empty_in,
        min_size,
        count_null_size,
        unique,
        after_update_many,
        changes,
        bounds,
        records,
        duplicates,
        appended,
        history,
    }
}

#[tokio::test]
async fn sqlite_and_postgres_answer_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::open(&dir.path().join("db.sqlite"))
        .await
        .expect("sqlite");
    assert_eq!(sqlite.dialect(), Dialect::Sqlite);
    let on_sqlite = battery(&sqlite).await;

    let server = syncplane_test_postgres::shared();
    let url = server.fresh_database();
    let postgres = Store::connect(&Location::parse(&url).expect("url"))
        .await
        .expect("postgres");
    assert_eq!(postgres.dialect(), Dialect::Postgres);
    let on_postgres = battery(&postgres).await;

    assert_eq!(on_sqlite, on_postgres);
    // And the answers are the ones the API promises, not merely equal.
    assert_eq!(on_sqlite.ids, [1, 2, 3, 4, 5, 6]);
    assert_eq!(on_sqlite.pages.concat(), [3, 6, 2, 4, 5, 1]);
    assert_eq!(on_sqlite.descending_pages.concat(), [1, 4, 5, 3, 2, 6]);
    assert_eq!(on_sqlite.contains, [1, 5]);
    assert_eq!(on_sqlite.contains_case, [4]);
    assert_eq!(on_sqlite.empty_in, 0);
    assert_eq!(on_sqlite.min_size, Some(1));
    assert_eq!(on_sqlite.count_null_size, 2);
    assert_eq!(
        on_sqlite.unique,
        "m_thing: the values of name must be unique"
    );
    let changes: Vec<i64> = on_sqlite.changes.iter().map(|c| c.0).collect();
    assert_eq!(changes, [1, 2, 3]);
    assert_eq!(on_sqlite.bounds, (Some(1), 3));
    assert_eq!(
        on_sqlite.records,
        [("k1".into(), "uno".into()), ("k2".into(), "two".into())]
    );
    assert_eq!(on_sqlite.duplicates, 0);
    assert_eq!(on_sqlite.appended, [1, 2]);
    let kept: Vec<i64> = on_sqlite.history.iter().map(|h| h.1).collect();
    assert_eq!(
        kept,
        [29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 2, 0],
        "the latest 10 and the first and latest failure"
    );
}

#[tokio::test]
async fn a_store_from_a_newer_syncplane_is_refused_on_both_engines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let url = syncplane_test_postgres::shared().fresh_database();
    for location in [Location::File(path), Location::parse(&url).expect("url")] {
        let store = Store::connect(&location).await.expect("open");
        let mut tx = store.begin().await.expect("begin");
        tx.put_record("x", "y", "z").await.expect("write");
        tx.commit().await.expect("commit");
        store.close().await;
        // A later syncplane recorded a version this one does not know.
        set_schema_version(&location, syncplane_store::SCHEMA_VERSION + 1).await;
        let error = Store::connect(&location).await.expect_err("refused");
        assert!(matches!(error, Error::TooNew { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("newer than this syncplane knows"),
            "{error}"
        );
    }
}

async fn set_schema_version(location: &Location, version: i64) {
    match location {
        Location::File(path) => {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("connect");
            sqlx::query("UPDATE sp_meta SET value = ? WHERE key = 'schema_version'")
                .bind(version)
                .execute(&mut conn)
                .await
                .expect("set version");
        }
        Location::Postgres(url) => {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query("UPDATE sp_meta SET value = $1 WHERE key = 'schema_version'")
                .bind(version)
                .execute(&mut conn)
                .await
                .expect("set version");
        }
    }
}

#[tokio::test]
async fn a_postgres_url_never_shows_its_password() {
    let location =
        Location::parse("postgres://app:s3cret@127.0.0.1:1/db?password=s3cret&sslmode=disable")
            .expect("url");
    assert_eq!(
        location.to_string(),
        "postgres://app:***@127.0.0.1:1/db?sslmode=disable"
    );
    assert!(!format!("{location:?}").contains("s3cret"));
    // Nothing listens on port 1: the error names the store without the password.
    let error = Store::connect(&location).await.expect_err("no server");
    let chain = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    assert!(!chain.contains("s3cret"), "{chain}");
    assert!(chain.contains("app:***@127.0.0.1:1/db"), "{chain}");
    assert!(Location::parse("mysql://x").is_err());
    assert_eq!(
        Location::parse("sqlite:///tmp/x.db").expect("file"),
        Location::File("/tmp/x.db".into())
    );
}

#[tokio::test]
async fn one_statement_bound_with_different_value_kinds_stores_each_value() {
    // The same INSERT text runs with a NULL, then text, in one column, and
    // an integer, then a float, in a float column: each row keeps what it
    // was given (PostgreSQL would misread values sent in the formats of
    // the statement's first run).
    let url = syncplane_test_postgres::shared().fresh_database();
    let dir = tempfile::tempdir().expect("tempdir");
    for location in [
        Location::File(dir.path().join("db.sqlite")),
        Location::parse(&url).expect("url"),
    ] {
        let store = Store::connect(&location).await.expect("open");
        store.ensure_table(&spec()).await.expect("table");
        let mut tx = store.begin().await.expect("begin");
        let given = [
            (SqlValue::Null, SqlValue::Integer(2)),
            (
                SqlValue::Text("a long name, longer than eight bytes".into()),
                SqlValue::Real(2.5),
            ),
            (SqlValue::Text("x".into()), SqlValue::Null),
            (SqlValue::Null, SqlValue::Real(-1.25)),
        ];
        for (i, (name, weight)) in given.iter().enumerate() {
            let row = Row::from([
                ("name".to_owned(), name.clone()),
                ("weight".to_owned(), weight.clone()),
                ("deleted".to_owned(), SqlValue::Integer(0)),
            ]);
            tx.insert(&spec(), i as i64 + 1, &row)
                .await
                .expect("insert");
            tx.update(&spec(), i as i64 + 1, &row)
                .await
                .expect("update");
        }
        tx.commit().await.expect("commit");
        let rows = store.select(&spec(), &[], None).await.expect("select");
        let stored: Vec<(SqlValue, SqlValue)> = rows
            .iter()
            .map(|(_, r)| (r["name"].clone(), r["weight"].clone()))
            .collect();
        assert_eq!(
            stored,
            [
                (SqlValue::Null, SqlValue::Real(2.0)),
                given[1].clone(),
                given[2].clone(),
                given[3].clone(),
            ],
            "{location}"
        );
    }
}

#[tokio::test]
async fn a_store_copied_to_postgres_and_back_holds_the_same_and_reuses_no_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::open(&dir.path().join("a.sqlite"))
        .await
        .expect("sqlite");
    battery(&sqlite).await;
    let postgres = Store::connect(
        &Location::parse(&syncplane_test_postgres::shared().fresh_database()).expect("url"),
    )
    .await
    .expect("postgres");
    let back = Store::open(&dir.path().join("b.sqlite"))
        .await
        .expect("sqlite");
    let there = syncplane_store::copy(&sqlite, &postgres, |_| {})
        .await
        .expect("to postgres");
    let again = syncplane_store::copy(&postgres, &back, |_| {})
        .await
        .expect("back");
    let rows = |tables: &[syncplane_store::CopiedTable], name: &str| {
        tables.iter().find(|t| t.name == name).map(|t| t.rows)
    };
    assert_eq!(rows(&there, "m_thing"), Some(6));
    assert_eq!(rows(&again, "m_thing"), Some(6));
    assert_eq!(rows(&there, "sp_audit_test"), Some(2));

    for store in [&postgres, &back] {
        assert_eq!(
            store.select(&spec(), &[], None).await.expect("rows"),
            sqlite.select(&spec(), &[], None).await.expect("rows")
        );
        assert_eq!(
            store.changes_after(0, 100).await.expect("changes"),
            sqlite.changes_after(0, 100).await.expect("changes")
        );
        assert_eq!(
            store.change_log_bounds().await.expect("bounds"),
            sqlite.change_log_bounds().await.expect("bounds")
        );
        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.records("ns").await.expect("records"),
            [("k1".into(), "uno".into()), ("k2".into(), "two".into())]
        );
        // Six ids were committed (a seventh was rolled back with its
        // transaction): the next is the seventh, on both engines.
        assert_eq!(tx.allocate_id("Thing").await.expect("id"), 7);
        let next = tx
            .append_changes(&[(7, "Thing", "created")], 100)
            .await
            .expect("log");
        assert_eq!(next, Some(4));
        tx.commit().await.expect("commit");
    }
    // The target must be empty.
    let error = syncplane_store::copy(&sqlite, &back, |_| {})
        .await
        .expect_err("not empty");
    assert!(error.to_string().contains("not empty"), "{error}");
}

#[tokio::test]
async fn writers_on_postgres_wait_for_each_other_and_one_that_waits_too_long_leaves_no_broken_connection()
 {
    // Two stores on one database are two hosts: their writing
    // transactions run one at a time, reads do not wait, and a writer that
    // cannot have its turn within the wait fails as busy without leaving
    // an aborted transaction on a pooled connection.
    let url = syncplane_test_postgres::shared().fresh_database();
    let location = Location::parse(&url).expect("url");
    let a = Store::connect(&location).await.expect("open a");
    let b = Store::connect(&location).await.expect("open b");
    a.ensure_table(&spec()).await.expect("table");
    let mut held = a.begin().await.expect("a writes");
    held.insert(&spec(), 1, &row(Some("first"), Some(1), None))
        .await
        .expect("insert");
    let mut read = b.begin_read().await.expect("b reads while a writes");
    assert!(
        read.get(&spec(), 1).await.expect("get").is_none(),
        "a has not committed"
    );
    drop(read);
    let started = std::time::Instant::now();
    let error = b
        .begin()
        .await
        .expect_err("b's writer waits for a's, then gives up");
    assert!(error.is_busy() || error.is_unavailable(), "{error}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    held.commit().await.expect("commit");
    // Every connection of b's pool still works.
    for _ in 0..8 {
        let mut tx = b.begin().await.expect("b writes now");
        assert!(tx.get(&spec(), 1).await.expect("get").is_some());
        tx.commit().await.expect("commit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_cancelled_while_it_waits_for_its_turn_leaves_no_transaction_open() {
    // A request whose client goes away is cancelled wherever it waits,
    // BEGIN included. The connection it was beginning on must not go back
    // to the pool with a transaction sqlx does not count: that one would
    // take the writers' lock once its turn came and hold it for good, so
    // no other host could write again.
    let url = syncplane_test_postgres::shared().fresh_database();
    let location = Location::parse(&url).expect("url");
    let a = Store::connect(&location).await.expect("open a");
    let b = Store::connect(&location).await.expect("open b");
    a.ensure_table(&spec()).await.expect("table");
    let held = b.begin().await.expect("b writes");
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(300), a.begin()).await;
    assert!(cancelled.is_err(), "a's writer waits for b's");
    drop(held);
    // b's turn ended; a's abandoned BEGIN would get the lock now.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut tx = b.begin().await.expect("b writes again");
    tx.insert(&spec(), 1, &row(Some("again"), Some(1), None))
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    // And every connection of a's pool begins cleanly.
    for _ in 0..8 {
        let mut tx = a.begin().await.expect("a writes");
        assert!(tx.get(&spec(), 1).await.expect("get").is_some());
        tx.commit().await.expect("commit");
        let mut read = a.begin_read().await.expect("a reads");
        assert!(read.get(&spec(), 1).await.expect("get").is_some());
    }
}
