//! `carbon-upgrade verify home|server` end to end: the built binary over a fixture home on a
//! real SQLite staging database, and the live command's failure paths and exit codes.

use std::path::Path;
use std::process::Command;

use carbon_config::fixture::{CarbonVersion, DatasourceSpec, HomeSpec, write_home};
use carbon_config::secret::Secret;
use carbon_db::Vendor;
use carbon_db::fixture::{Scale, generate_sqlite};
use carbon_db::testkit::TestDb;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn verify(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"));
    cmd.arg("verify").args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A 4.4.7 home on a SQLite staging database filled with the tiny Carbon fixture, with
/// user-store files matching its secondary UM_DOMAIN rows (WSO2.COM for even tenant ids).
fn upgraded(dir: &Path) -> (TestDb, Vec<i64>) {
    let db = TestDb::new(Vendor::Sqlite);
    let summary = generate_sqlite(&mut db.sqlite_conn(), &Scale::tiny()).unwrap();
    let mut spec = HomeSpec::new(CarbonVersion::V4_4_7);
    spec.tenant_ids = summary.tenant_ids.clone();
    spec.datasources = vec![DatasourceSpec {
        url: format!("jdbc:sqlite:{}", db.sqlite_path().display()),
        username: String::new(),
        password: Secret::Empty,
        driver_class_name: "org.sqlite.JDBC".into(),
        ..DatasourceSpec::carbon_h2()
    }];
    write_home(dir, &spec).unwrap();
    // The tests' own secondary domains, whatever the fixture chose: WSO2.COM for the
    // super tenant and each even tenant id.
    let conn = db.sqlite_conn();
    conn.execute_batch(
        "DELETE FROM UM_DOMAIN WHERE UM_DOMAIN_NAME NOT IN ('PRIMARY', 'INTERNAL', 'APPLICATION', 'WORKFLOW')",
    )
    .unwrap();
    let owners =
        std::iter::once(-1234).chain(summary.tenant_ids.iter().copied().filter(|id| id % 2 == 0));
    for (i, tenant) in owners.enumerate() {
        conn.execute(
            "INSERT INTO UM_DOMAIN (UM_DOMAIN_ID, UM_DOMAIN_NAME, UM_TENANT_ID) VALUES (?1, 'WSO2.COM', ?2)",
            (900_000 + i as i64, tenant),
        )
        .unwrap();
    }
    let template =
        std::fs::read_to_string(dir.join("repository/deployment/server/userstores/wso2_com.xml"))
            .unwrap();
    for id in &summary.tenant_ids {
        let stores = dir.join(format!("repository/tenants/{id}/userstores"));
        for entry in std::fs::read_dir(&stores).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        if id % 2 == 0 {
            std::fs::write(stores.join("wso2_com.xml"), &template).unwrap();
        }
    }
    (db, summary.tenant_ids)
}

#[test]
fn home_consistent_exits_0_and_broken_exits_1_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (db, tenants) = upgraded(dir.path());
    let home = dir.path().to_str().unwrap();

    let run = verify(&["home", "--home", home], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with("0 errors, 0 warnings, 3 info\n"),
        "{}",
        run.stdout
    );

    let run = verify(&["home", "--home", home, "--json"], &[]);
    assert_eq!(run.code, 0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "info")
    );

    let odd = tenants.iter().find(|id| *id % 2 != 0).unwrap();
    std::fs::remove_dir_all(dir.path().join(format!("repository/tenants/{odd}"))).unwrap();
    let run = verify(&["home", "--home", home], &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let text = run
        .stdout
        .replace(&db.sqlite_path().display().to_string(), "[STAGING]");
    insta::assert_snapshot!(text);
}

#[test]
fn home_that_is_not_one_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = verify(&["home", "--home", dir.path().to_str().unwrap()], &[]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("error: verify home: product home "),
        "{}",
        run.stderr
    );
    let run = verify(&["home", "--home", ".", "--db", "oracle:thin:@x"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("error: --db: "), "{}", run.stderr);
}

const SECRET: &str = "Sup3r-Secret-Admin";

/// Skips the tenant, userstore and user checks.
const NO_DATA_CHECKS: [&str; 6] = ["--tenants", "0", "--userstores", "0", "--users", "0"];

/// `server --url URL --user admin --password-env VERIFY_PW EXTRA...`
fn server_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "server",
        "--url",
        url,
        "--user",
        "admin",
        "--password-env",
        "VERIFY_PW",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn server_down_exits_1_without_showing_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let args = server_args(&url, &NO_DATA_CHECKS);
    let run = verify(&args, &[("VERIFY_PW", SECRET)]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("cannot connect to {url}")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
    let mut json_args = args.clone();
    json_args.push("--json");
    let run = verify(&json_args, &[("VERIFY_PW", SECRET)]);
    assert_eq!(run.code, 1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["findings"][0]["check"], "connect");
}

/// (extra flags, environment, expected text on stderr).
type BadInput<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn server_bad_input_exits_2() {
    let base = server_args("https://127.0.0.1:9443", &[]);
    let cases: &[BadInput<'_>] = &[
        (
            &[],
            &[],
            "--password-env: environment variable VERIFY_PW is not set",
        ),
        (
            &["--insecure", "--ca-cert", "x.pem"],
            &[("VERIFY_PW", SECRET)],
            "cannot be used with",
        ),
        (&[], &[("VERIFY_PW", SECRET)], "--userstore-db"),
        (
            &[
                "--userstores",
                "0",
                "--tenants",
                "0",
                "--ca-cert",
                "/nonexistent/ca.pem",
            ],
            &[("VERIFY_PW", SECRET)],
            "CA certificate /nonexistent/ca.pem",
        ),
    ];
    for (extra, env, expected) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let run = verify(&args, env);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{extra:?}: {}", run.stderr);
        assert!(!run.stderr.contains(SECRET));
    }
}

/// A one-request SOAP responder: answers `getServerData` and hands back what it received.
fn server_data_responder() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
        }
        let body = "<?xml version='1.0' encoding='UTF-8'?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>\
                    <ns:getServerDataResponse xmlns:ns=\"http://org.apache.axis2/xsd\"><ns:return xmlns:ax=\"http://common.admin.server.carbon.wso2.org/xsd\">\
                    <ax:carbonVersion>4.4.7</ax:carbonVersion><ax:dbURL>jdbc:postgresql://db:5432/WSO2_STAGING</ax:dbURL><ax:serverName>WSO2 API Manager</ax:serverName>\
                    </ns:return></ns:getServerDataResponse></soapenv:Body></soapenv:Envelope>";
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
        String::from_utf8(request).unwrap()
    });
    (url, thread)
}

#[test]
fn server_answering_exits_0_and_sends_basic_auth_and_soap_action() {
    let (url, responder) = server_data_responder();
    let mut args = server_args(&url, &NO_DATA_CHECKS);
    args.push("--json");
    let run = verify(&args, &[("VERIFY_PW", SECRET)]);
    let request = responder.join().unwrap();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings[0]["check"], "server-data");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Carbon 4.4.7"),
        "{findings:?}"
    );
    // Without --home the database cannot be judged: a warning, not a pass.
    assert_eq!(findings[1]["check"], "server-db");
    assert_eq!(findings[1]["severity"], "warning");
    let lower = request.to_ascii_lowercase();
    assert!(
        lower.starts_with("post /services/serveradmin http/1.1"),
        "{request}"
    );
    assert!(
        lower.contains("soapaction: \"urn:getserverdata\""),
        "{request}"
    );
    // Basic base64("admin:Sup3r-Secret-Admin").
    assert!(
        request.contains("Basic YWRtaW46U3VwM3ItU2VjcmV0LUFkbWlu"),
        "{request}"
    );
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
}

/// With `--old-home`, a finding the old home and database have too is pre-existing: a warning
/// (exit 0), an error with `--strict` (exit 1); one only the new home has is introduced.
#[test]
fn home_pre_existing_findings_warn_unless_strict_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new");
    let old = dir.path().join("old");
    let (_db, tenants) = upgraded(&new);
    let status = Command::new("cp")
        .arg("-a")
        .arg(&new)
        .arg(&old)
        .status()
        .unwrap();
    assert!(status.success());
    for home in [&new, &old] {
        std::fs::remove_file(home.join("repository/deployment/server/userstores/wso2_com.xml"))
            .unwrap();
    }
    let (new_arg, old_arg) = (new.to_str().unwrap(), old.to_str().unwrap());
    let args = ["home", "--home", new_arg, "--old-home", old_arg];

    let run = verify(&args, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("warning userstore-file")
            && run.stdout.contains("domain WSO2.COM of tenant -1234")
            && run.stdout.contains("(pre-existing)"),
        "{}",
        run.stdout
    );

    let run = verify(&[&args[..], &["--strict"]].concat(), &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("error   userstore-file"),
        "{}",
        run.stdout
    );

    let odd = tenants.iter().find(|id| *id % 2 != 0).unwrap();
    std::fs::remove_dir_all(new.join(format!("repository/tenants/{odd}"))).unwrap();
    let run = verify(&args, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("tenant-folder") && run.stdout.contains("(introduced)"),
        "{}",
        run.stdout
    );

    let run = verify(&["home", "--home", new_arg, "--strict"], &[]);
    assert_eq!(run.code, 2, "--strict needs --old-home: {}", run.stderr);
}

/// `--userstore-db` names a server: without a database name (with or without the slash) it is
/// accepted, and the command goes on to what is really missing (`--home`).
#[test]
fn server_userstore_db_may_be_a_bare_server_url() {
    for url in [
        "postgres://user@127.0.0.1:5432/",
        "postgres://user@127.0.0.1:5432",
        "jdbc:mariadb://user@127.0.0.1:3306/",
        "jdbc:mariadb://user@127.0.0.1:3306",
    ] {
        let run = verify(
            &server_args("https://127.0.0.1:9443", &["--userstore-db", url]),
            &[("VERIFY_PW", SECRET)],
        );
        assert_eq!(run.code, 2, "{url}: {}", run.stderr);
        assert!(
            !run.stderr.contains("no database name") && run.stderr.contains("--home"),
            "{url}: {}",
            run.stderr
        );
    }
}
