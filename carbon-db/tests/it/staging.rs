//! What a database holds, how a run claims staging, and when a reset is allowed: never on a
//! database holding anything the source does not, never by dropping one the run did not create.

use carbon_db::staging::{self, Claim, Reset};
use carbon_db::testkit::TestDb;
use carbon_db::{CopyOptions, DbError, NoProgress, Vendor};
use mysql::prelude::Queryable;

use crate::support::url;

/// A database that holds no table, only objects an emptiness check on tables would miss.
fn tableless(vendor: Vendor) -> TestDb {
    let db = TestDb::new(vendor);
    match vendor {
        Vendor::Postgres => db
            .pg_client()
            .batch_execute(
                "CREATE VIEW v AS SELECT 1 AS one; CREATE SEQUENCE s;
                 CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            )
            .unwrap(),
        _ => {
            let mut c = db.mysql_conn();
            c.query_drop("CREATE VIEW v AS SELECT 1 AS one").unwrap();
            c.query_drop("CREATE PROCEDURE p() SELECT 1").unwrap();
            c.query_drop("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1")
                .unwrap();
        }
    }
    db
}

/// Data-driven: what each vendor's tableless database must be seen to hold.
fn check_contents(vendor: Vendor, expected: &[&str]) {
    let db = tableless(vendor);
    let held = carbon_db::contents(&url(&db)).unwrap();
    assert!(held.exists);
    let names: Vec<String> = held.objects.iter().map(ToString::to_string).collect();
    assert_eq!(names, expected);
    let e = staging::claim(&url(&db)).unwrap_err();
    assert!(matches!(e, DbError::TargetNotEmpty { .. }), "{e}");
    for object in expected {
        assert!(e.to_string().contains(object), "{e} does not name {object}");
    }
    // The copy refuses it with the same answer.
    let src = TestDb::new(vendor);
    let e =
        carbon_db::copy(&url(&src), &url(&db), &CopyOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(e, DbError::TargetNotEmpty { .. }), "{e}");
}

#[test]
fn postgres_contents_names_views_sequences_functions() {
    check_contents(
        Vendor::Postgres,
        &["function public.f()", "sequence public.s", "view public.v"],
    );
}

#[test]
fn mariadb_contents_names_views_procedures_events() {
    check_contents(Vendor::MySql, &["event e", "procedure p", "view v"]);
}

#[test]
fn postgres_contents_sees_types_triggers_schemas_and_extensions() {
    let db = TestDb::new(Vendor::Postgres);
    db.pg_client()
        .batch_execute(
            "CREATE SCHEMA audit; CREATE TYPE mood AS ENUM ('ok'); CREATE DOMAIN pos AS int;
             CREATE EXTENSION IF NOT EXISTS pg_trgm;",
        )
        .unwrap();
    let held = carbon_db::contents(&url(&db)).unwrap();
    let names: Vec<String> = held.objects.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "domain public.pos",
            "extension pg_trgm",
            "schema audit",
            "type public.mood"
        ],
        "objects of the extension are named through it"
    );
}

#[test]
fn absent_and_empty_databases_are_claimed_as_such() {
    for vendor in [Vendor::Postgres, Vendor::MySql] {
        let reserved = TestDb::reserve(vendor);
        assert_eq!(staging::claim(&url(&reserved)).unwrap(), Claim::Created);
        let empty = TestDb::new(vendor);
        assert_eq!(staging::claim(&url(&empty)).unwrap(), Claim::ProvedEmpty);
    }
}

/// A source with one table and a copy of it made into `target`.
fn copied_into(vendor: Vendor, target: &TestDb) -> TestDb {
    let src = TestDb::new(vendor);
    let ddl = "CREATE TABLE um_user (id int primary key, name varchar(20))";
    match vendor {
        Vendor::Postgres => src.pg_client().batch_execute(ddl).unwrap(),
        _ => src.mysql_conn().query_drop(ddl).unwrap(),
    }
    let report = carbon_db::copy(
        &url(&src),
        &url(target),
        &CopyOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(report.is_ok());
    src
}

#[test]
fn a_database_the_run_created_is_dropped_on_reset() {
    for vendor in [Vendor::Postgres, Vendor::MySql] {
        let target = TestDb::reserve(vendor);
        let src = copied_into(vendor, &target);
        let reset = staging::reset(&url(&src), &url(&target), Claim::Created).unwrap();
        assert_eq!(reset, Reset::Dropped, "{vendor}");
        assert!(!carbon_db::contents(&url(&target)).unwrap().exists);
    }
}

#[test]
fn a_database_the_run_proved_empty_is_emptied_not_dropped() {
    let target = TestDb::new(Vendor::Postgres);
    // Something only the database itself carries: it must survive the reset.
    target
        .pg_client()
        .batch_execute(&format!(
            "COMMENT ON DATABASE \"{}\" IS 'made by the operator'",
            target.name()
        ))
        .unwrap();
    let src = copied_into(Vendor::Postgres, &target);
    let reset = staging::reset(&url(&src), &url(&target), Claim::ProvedEmpty).unwrap();
    assert_eq!(reset, Reset::Emptied);
    let held = carbon_db::contents(&url(&target)).unwrap();
    assert!(held.exists && held.is_empty(), "{:?}", held.objects);
    let comment: Option<String> = target
        .pg_client()
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(comment.as_deref(), Some("made by the operator"));

    let target = TestDb::new(Vendor::MySql);
    let src = copied_into(Vendor::MySql, &target);
    let reset = staging::reset(&url(&src), &url(&target), Claim::ProvedEmpty).unwrap();
    assert_eq!(reset, Reset::Emptied);
    let held = carbon_db::contents(&url(&target)).unwrap();
    assert!(held.exists && held.is_empty(), "{:?}", held.objects);
}

#[test]
fn a_reset_refuses_objects_the_source_does_not_hold() {
    for vendor in [Vendor::Postgres, Vendor::MySql] {
        let target = tableless(vendor);
        let src = TestDb::new(vendor);
        for claim in [Claim::Created, Claim::ProvedEmpty] {
            let e = staging::reset(&url(&src), &url(&target), claim).unwrap_err();
            assert!(matches!(e, DbError::NotOurs { .. }), "{e}");
            assert_eq!(e.kind(), carbon_fs::ErrorKind::Unsafe);
            assert!(e.to_string().contains("view"), "{e}");
        }
        let held = carbon_db::contents(&url(&target)).unwrap();
        assert_eq!(held.objects.len(), 3, "{vendor}: nothing removed");
    }
}

#[test]
fn emptying_stops_at_someone_elses_session_and_names_it() {
    let target = TestDb::new(Vendor::Postgres);
    let src = copied_into(Vendor::Postgres, &target);
    let _operator = target.pg_client();
    let e = staging::reset(&url(&src), &url(&target), Claim::ProvedEmpty).unwrap_err();
    assert!(matches!(e, DbError::InUse { .. }), "{e}");
    assert!(e.to_string().contains("postgres@"), "{e}");
    let held = carbon_db::contents(&url(&target)).unwrap();
    assert!(!held.is_empty(), "nothing removed while in use");
}

#[test]
fn a_reset_never_touches_the_source_itself() {
    let src = TestDb::new(Vendor::Postgres);
    for claim in [Claim::Created, Claim::ProvedEmpty] {
        let e = staging::reset(&url(&src), &url(&src), claim).unwrap_err();
        assert!(matches!(e, DbError::SameDatabase { .. }), "{e}");
    }
    assert!(carbon_db::contents(&url(&src)).unwrap().exists);
}
