//! `carbon_db::Session`, the one way other crates reach a database: a server creates and drops
//! a database, read-write sessions run scripts, read-only sessions are refused writes by the
//! database itself, and errors name the database without its password.

use carbon_db::testkit::{self, TestDb};
use carbon_db::{DbError, DbUrl, Session, Vendor, error_chain};

use crate::support::url;

const SCRIPT: &str = "-- a user-store style script\n\
    CREATE TABLE UM_T (ID INTEGER, NAME VARCHAR(20));\n\
    INSERT INTO UM_T VALUES (1, 'a');\n\
    INSERT INTO UM_T VALUES (2, NULL);\n";

/// Everything a caller does with a session, on one database `db` (created by whoever).
fn check_session(db: &DbUrl) {
    Session::read_write(db).unwrap().run_script(SCRIPT).unwrap();

    let mut ro = Session::read_only(db).unwrap();
    let rows = ro.query_text("SELECT NAME FROM UM_T ORDER BY ID").unwrap();
    assert_eq!(rows, [vec![Some("a".to_owned())], vec![None]]);
    assert!(ro.size_bytes().unwrap() > 0);
    // The database refuses, not our care.
    let e = ro.execute("INSERT INTO UM_T VALUES (3, 'c')").unwrap_err();
    assert!(matches!(e, DbError::Session { .. }), "{e:?}");
    assert_eq!(ro.query_text("SELECT NAME FROM UM_T").unwrap().len(), 2);
}

/// A server database: created through the session API, used, dropped.
fn check_server(vendor: Vendor) {
    let reserved = TestDb::reserve(vendor);
    let server = DbUrl::parse_server(&testkit::server_url(vendor).unwrap()).unwrap();
    let db = carbon_db::create_database(&server, reserved.name()).unwrap();
    assert!(carbon_db::contents(&db).unwrap().exists);
    check_session(&db);
    // A second create of the same name fails and names the database.
    let e = carbon_db::create_database(&server, reserved.name()).unwrap_err();
    assert!(e.to_string().contains(reserved.name()), "{e}");
    carbon_db::drop_database(&server, reserved.name()).unwrap();
    assert!(!carbon_db::contents(&db).unwrap().exists);
}

#[test]
fn postgres_session_create_use_drop() {
    check_server(Vendor::Postgres);
}

#[test]
fn mysql_session_create_use_drop() {
    check_server(Vendor::MySql);
}

#[test]
fn sqlite_session_read_only_and_never_creates_a_file() {
    let db = TestDb::new(Vendor::Sqlite);
    check_session(&url(&db));
    let missing = db.dir().unwrap().join("absent.db");
    let missing_url = DbUrl::parse(&format!("sqlite:{}", missing.display())).unwrap();
    for open in [Session::read_only, Session::read_write] {
        let e = open(&missing_url).unwrap_err();
        assert!(matches!(e, DbError::SourceMissing { .. }), "{e:?}");
    }
    assert!(!missing.exists());
}

/// A failing statement's error names the database, gives the server's reason once, and never
/// the password the URL carried.
#[test]
fn session_errors_name_the_database_not_its_password() {
    for vendor in [Vendor::Postgres, Vendor::MySql] {
        let db = TestDb::new(vendor);
        let with_password = url(&db).with_credentials(
            Some(default_user(vendor).to_owned()),
            Some("pw-s3cret".to_owned()),
        );
        // PostgreSQL (trust) accepts any password; MariaDB's root refuses a wrong one, and
        // that refusal must be as discreet as a failed query.
        let (e, reason) = match Session::read_write(&with_password) {
            Ok(mut session) => (
                session
                    .query_text("SELECT * FROM NO_SUCH_TABLE")
                    .unwrap_err(),
                "NO_SUCH_TABLE",
            ),
            Err(e) => (e, "ACCESS DENIED"),
        };
        let text = error_chain(&e);
        assert!(text.contains(db.name()), "{vendor}: {text}");
        assert!(
            text.to_ascii_uppercase().contains(reason),
            "{vendor}: {text}"
        );
        assert!(!text.contains("pw-s3cret"), "{vendor}: {text}");
    }
}

fn default_user(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Postgres => "postgres",
        _ => "root",
    }
}
