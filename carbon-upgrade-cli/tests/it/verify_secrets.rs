//! `carbon-upgrade verify secrets`: keystores made by keytool, values encrypted by openssl as
//! Carbon does, run at -vvv; not one plaintext or password in stdout, stderr or any file.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use carbon_verify::secrets::Scheme;
use carbon_verify::secrets::StoreFormat;
use carbon_verify::secrets::fixture::{
    KeystoreSpec, Password, SECURITY_DIR, encrypt, export_cert, make_keystore, write_carbon_xml,
    write_cipher_text, write_user_store,
};

use crate::support::{code, stderr, tree_digest};

const OLD_KS_PW: &str = "OldKs-Pw-u83K";
const NEW_KS_PW: &str = "NewKs-Pw-p10Z";
const STORE_PW: &str = "SuperStore-Pw-7Qx";
const TENANT_PW: &str = "TenantStore-Pw-2Lm";
const VAULT_PW: &str = "VaultEntry-Pw-9Rt";
const ALIAS: &str = "Carbon.Security.KeyStore.Password";

pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"));
    cmd.arg("-vvv")
        .args(args)
        .stdin(Stdio::null())
        .env_remove("CARBON_KEYSTORE_PASSWORD")
        .env_remove("CARBON_OLD_KEYSTORE_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_clean(out: &Output) {
    let all = format!("{}{}", stdout(out), stderr(out));
    for secret in [OLD_KS_PW, NEW_KS_PW, STORE_PW, TENANT_PW, VAULT_PW] {
        assert_eq!(all.matches(secret).count(), 0, "{secret} leaked:\n{all}");
    }
}

/// A home with its own keystore (password behind a vault alias) and values encrypted with
/// `values_from`'s certificate.
fn home(
    dir: &Path,
    format: StoreFormat,
    password: &str,
    cn: &str,
) -> (KeystoreSpec, std::path::PathBuf) {
    let mut spec = KeystoreSpec::new("wso2carbon.ks", format, password);
    spec.cn = cn.into();
    let ks = make_keystore(dir, &spec).unwrap();
    let pem = dir.join("cert.pem");
    export_cert(&ks, password, &spec.alias, &pem).unwrap();
    write_carbon_xml(dir, &spec, &Password::Alias(ALIAS.into()), None).unwrap();
    (spec, pem)
}

/// Two user stores and a vault (the keystore password entries and a datasource password),
/// encrypted with the certificate `pem` whose keystore password is `ks_pw`.
fn values(dir: &Path, pem: &Path, ks_pw: &str) {
    let key_bytes = 256;
    let raw = |p| encrypt(pem, p, Scheme::RawRsa, key_bytes).unwrap();
    write_user_store(dir, None, "wso2.com", &raw(STORE_PW)).unwrap();
    write_user_store(dir, Some(3), "tenant.com", &raw(TENANT_PW)).unwrap();
    let pkcs1 = |p| encrypt(pem, p, Scheme::Pkcs1, key_bytes).unwrap();
    write_cipher_text(
        dir,
        &[
            (ALIAS, &pkcs1(ks_pw)),
            (
                "Datasources.WSO2_CARBON_DB.Configuration.Password",
                &pkcs1(VAULT_PW),
            ),
        ],
    )
    .unwrap();
}

#[test]
fn verify_secrets_opens_reports_and_never_prints_a_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    let (_, old_pem) = home(&old, StoreFormat::Jks, OLD_KS_PW, "old-custom");
    values(&old, &old_pem, OLD_KS_PW);
    home(&new, StoreFormat::Pkcs12, NEW_KS_PW, "new-stock");
    values(&new, &old_pem, OLD_KS_PW); // replicated from the old home
    let (old_digest, new_digest) = (tree_digest(&old), tree_digest(&new));
    let old_s = old.to_str().unwrap();
    let new_s = new.to_str().unwrap();

    // The old home opens everything with its own key.
    let out = run(
        &["verify", "secrets", "--home", old_s],
        &[("CARBON_KEYSTORE_PASSWORD", OLD_KS_PW)],
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("4 of 4 encrypted value(s) open"),
        "{}",
        stdout(&out)
    );
    assert_clean(&out);

    // The new home with the old one to compare: each value named with both keys, exit 1.
    let env = [
        ("CARBON_KEYSTORE_PASSWORD", NEW_KS_PW),
        ("CARBON_OLD_KEYSTORE_PASSWORD", OLD_KS_PW),
    ];
    let out = run(
        &["verify", "secrets", "--home", new_s, "--old-home", old_s],
        &env,
    );
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("0 of 4 encrypted value(s) open"), "{text}");
    for object in [
        "repository/deployment/server/userstores/wso2_com.xml:6 UserStoreManager/Property[@name='password']",
        "repository/tenants/3/userstores/tenant_com.xml:6 UserStoreManager/Property[@name='password']",
        "repository/conf/security/cipher-text.properties:3 Datasources.WSO2_CARBON_DB.Configuration.Password",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(object))
            .unwrap_or_else(|| panic!("{object}:\n{text}"));
        assert!(
            line.contains("does not open") && line.contains("it needs the old home's key"),
            "{line}"
        );
    }
    assert_clean(&out);

    // JSON: the same verdicts, no value.
    let out = run(
        &[
            "verify",
            "secrets",
            "--home",
            new_s,
            "--old-home",
            old_s,
            "--json",
        ],
        &env,
    );
    assert_eq!(code(&out), 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let values = json["values"].as_array().unwrap();
    assert_eq!(values.len(), 4);
    assert!(
        values
            .iter()
            .all(|v| v["opens"] == false && v["needs"].is_string())
    );
    assert_clean(&out);

    // Wrong password: one line, exit 2, nothing printed on stdout.
    let out = run(
        &["verify", "secrets", "--home", new_s],
        &[("CARBON_KEYSTORE_PASSWORD", "Wrong-Pw-000")],
    );
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("error: verify secrets: keystore ") && last.contains("password is wrong"),
        "{err}"
    );
    assert!(!err.contains("Wrong-Pw-000"));
    assert_clean(&out);

    // Nothing written anywhere.
    assert_eq!(tree_digest(&old), old_digest);
    assert_eq!(tree_digest(&new), new_digest);
}

/// The runbook on an embedded (SQLite) pair whose old home encrypted its tenants' user-store
/// passwords with its own key and whose new home has another: preflight announces the key
/// change, verify-home fails naming each value and the key it needs; with the old keystore
/// carried into the new home, the run completes and the report counts the values that open.
#[test]
fn runbook_secrets_custom_old_key_sqlite() {
    use carbon_config::fixture::{
        CarbonVersion, ContentScale, DatasourceSpec, HomeSpec, write_home,
    };
    use carbon_db::Vendor;
    use carbon_db::fixture::{self, Scale};
    use carbon_db::testkit::TestDb;

    let source = TestDb::new(Vendor::Sqlite);
    let summary = fixture::generate_sqlite(&mut source.sqlite_conn(), &Scale::tiny()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (old, new, state) = (
        dir.path().join("old"),
        dir.path().join("new"),
        dir.path().join("state"),
    );
    let datasource = DatasourceSpec::carbon_sqlite();
    let mut old_spec = HomeSpec::new(CarbonVersion::V4_4_6);
    old_spec.port_offset = 3;
    old_spec.tenant_ids = summary.tenant_ids.clone();
    old_spec.datasources = vec![datasource.clone()];
    write_home(&old, &old_spec).unwrap();
    let embedded = old.join("repository/database/WSO2CARBON_DB.db");
    std::fs::create_dir_all(embedded.parent().unwrap()).unwrap();
    std::fs::copy(source.sqlite_path(), embedded).unwrap();
    let mut new_spec = HomeSpec::new(CarbonVersion::V4_4_7);
    new_spec.tenant_ids = Vec::new();
    new_spec.content = ContentScale::Tiny;
    new_spec.datasources = vec![datasource];
    write_home(&new, &new_spec).unwrap();

    // Real keystores where the fixture has placeholders: the old home's own key, another in
    // the new home (its "stock" one); carbon.xml already names wso2carbon.jks / wso2carbon.
    let keystore = |home: &Path, cn: &str| {
        let ks = home.join(SECURITY_DIR).join("wso2carbon.jks");
        std::fs::remove_file(&ks).unwrap();
        let mut spec = KeystoreSpec::new("wso2carbon.jks", StoreFormat::Jks, "wso2carbon");
        spec.cn = cn.into();
        make_keystore(home, &spec).unwrap();
        let pem = home.join("../").join(format!("{cn}.pem"));
        export_cert(&ks, "wso2carbon", "wso2carbon", &pem).unwrap();
        pem
    };
    let old_pem = keystore(&old, "old-custom");
    keystore(&new, "new-stock");
    // The tenants' user-store passwords, encrypted with the old key as Carbon 4.4 does.
    let mut stores = 0;
    for tenant in &summary.tenant_ids {
        let userstores = old.join(format!("repository/tenants/{tenant}/userstores"));
        for entry in std::fs::read_dir(&userstores).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let dummy = format!("ZHVtbXktY2lwaGVydGV4dC0{tenant}");
            assert!(text.contains(&dummy), "{text}");
            let ct = encrypt(&old_pem, TENANT_PW, Scheme::RawRsa, 256).unwrap();
            std::fs::write(&path, text.replace(&dummy, &ct)).unwrap();
            stores += 1;
        }
    }
    assert!(stores >= 1);
    // A custom bundle the operator dropped in, carried because upgrade.toml says so.
    let jar = "repository/components/dropins/custom-auth_1.0.0.jar";
    std::fs::create_dir_all(old.join(jar).parent().unwrap()).unwrap();
    std::fs::write(old.join(jar), b"PK\x03\x04 custom bundle").unwrap();
    let config = dir.path().join("upgrade.toml");
    std::fs::write(&config, "[carry]\ncomponents = true\n").unwrap();
    let old_digest = tree_digest(&old);
    let args = |cmd: &'static str| {
        vec![
            cmd.to_owned(),
            "--old-home".into(),
            old.display().to_string(),
            "--new-home".into(),
            new.display().to_string(),
            "--state-dir".into(),
            state.display().to_string(),
            "--config".into(),
            config.display().to_string(),
        ]
    };
    let run_cmd = |cmd: &'static str| {
        let a = args(cmd);
        run(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    };
    let out = run_cmd("plan");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains(&format!("[copy] {jar} 18 bytes sha256 ")),
        "{plan}"
    );
    assert!(plan.contains("may need rebuilding"), "{plan}");
    assert!(
        plan.contains("[conflict] repository/resources/security/wso2carbon.jks"),
        "{plan}"
    );
    let out = run_cmd("run");
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{}{err}", stdout(&out));
    assert!(
        err.contains("verify-home") && err.contains("does not open"),
        "{err}"
    );
    let last = err.lines().rfind(|l| l.starts_with("error:")).unwrap();
    assert!(last.starts_with("error: step verify-home"), "{last}");
    assert_eq!(
        last.matches("it needs the old home's key").count(),
        stores,
        "{last}"
    );
    assert_clean(&out);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("report.json")).unwrap()).unwrap();
    let preflight = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "preflight")
        .unwrap()["detail"]["checks"]
        .to_string();
    assert!(preflight.contains("is not the old one"), "{preflight}");
    assert!(preflight.contains("encrypted secrets"), "{preflight}");
    // carry-over ran before verify-home: the bundle is in the new home, recorded.
    assert_eq!(
        std::fs::read(new.join(jar)).unwrap(),
        b"PK\x03\x04 custom bundle"
    );
    let md = std::fs::read_to_string(state.join("report.md")).unwrap();
    assert!(md.contains(&format!("- copied `{jar}`")), "{md}");

    // Carried: the old keystore in the new home; the resumed run completes.
    std::fs::copy(
        old.join(SECURITY_DIR).join("wso2carbon.jks"),
        new.join(SECURITY_DIR).join("wso2carbon.jks"),
    )
    .unwrap();
    let out = run_cmd("resume");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_clean(&out);
    let md = std::fs::read_to_string(state.join("report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "encrypted values: {stores} of {stores} open with the new home's key"
        )),
        "{md}"
    );
    assert_eq!(tree_digest(&old), old_digest, "the old home is untouched");
}
