//! The secrets check against keystores made by `keytool` (JKS and PKCS12, RSA 2048) and values
//! encrypted by `openssl` exactly as Carbon 4.4.x does (no padding for user stores, PKCS#1 v1.5
//! for the secure vault), plus the stock 1024-bit `wso2carbon.jks` (conformance).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use carbon_config::Secret;
use carbon_verify::secrets::fixture::{
    self, KeystoreSpec, Password, encrypt, export_cert, import_cert, keytool_fingerprints,
    make_keystore, write_carbon_xml, write_cipher_text, write_user_store,
};
use carbon_verify::secrets::{
    Scheme, SecretsError, SecretsOptions, SecretsReport, Source, Store, StoreFormat, jks,
    verify_secrets,
};
use carbon_verify::{Finding, Severity};

const STORE_PASSWORD: &str = "Ks-Pw-8yQ2r";
const USER_STORE_PW: &str = "UserStorePw-1";
const TENANT_STORE_PW: &str = "TenantPw-K9 with space";
const PUBLISHER_PW: &str = "publisher-Pw-55";
const VAULT_PW: &str = "VaultDb-Pw-3";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A home whose keystore `spec` encrypted: two user stores (super tenant and tenant 1), an
/// event publisher with an `encrypted="true"` property, a vault with one encrypted and one
/// plain entry. The carbon.xml keystore password is `password`.
struct TestHome {
    root: PathBuf,
    spec: KeystoreSpec,
    pem: PathBuf,
}

fn key_bytes(spec: &KeystoreSpec) -> usize {
    (spec.bits / 8) as usize
}

fn keystore_home(dir: &Path, spec: &KeystoreSpec, password: &Password) -> TestHome {
    std::fs::create_dir_all(dir).unwrap();
    let ks = make_keystore(dir, spec).unwrap();
    let pem = dir.join("cert.pem");
    export_cert(&ks, &spec.password, &spec.alias, &pem).unwrap();
    write_carbon_xml(dir, spec, password, None).unwrap();
    TestHome {
        root: dir.to_path_buf(),
        spec: spec.clone(),
        pem,
    }
}

fn fill_values(home: &TestHome, encrypt_with: &TestHome) {
    let k = key_bytes(&encrypt_with.spec);
    let raw = |plain| encrypt(&encrypt_with.pem, plain, Scheme::RawRsa, k).unwrap();
    write_user_store(&home.root, None, "wso2.com", &raw(USER_STORE_PW)).unwrap();
    write_user_store(&home.root, Some(1), "tenant.store", &raw(TENANT_STORE_PW)).unwrap();
    let publisher = home
        .root
        .join("repository/deployment/server/eventpublishers/Session.xml");
    std::fs::create_dir_all(publisher.parent().unwrap()).unwrap();
    std::fs::write(
        &publisher,
        format!(
            "<eventPublisher name=\"Session\">\n  <to eventAdapterType=\"wso2event\">\n    <property name=\"username\">admin</property>\n    <property encrypted=\"true\" name=\"password\">{}</property>\n  </to>\n</eventPublisher>\n",
            raw(PUBLISHER_PW)
        ),
    )
    .unwrap();
    let vault = encrypt(&encrypt_with.pem, VAULT_PW, Scheme::Pkcs1, k).unwrap();
    // The keystore's own password, as the cipher tool stores it (carbon.xml may name it).
    let ks_pw = encrypt(
        &encrypt_with.pem,
        &encrypt_with.spec.password,
        Scheme::Pkcs1,
        k,
    )
    .unwrap();
    write_cipher_text(
        &home.root,
        &[
            ("Carbon.Security.KeyStore.Password", &ks_pw),
            ("Carbon.Security.KeyStore.KeyPassword", &ks_pw),
            ("Carbon.Security.TrustStore.Password", "[wso2carbon]"),
            ("Datasources.WSO2_CARBON_DB.Configuration.Password", &vault),
        ],
    )
    .unwrap();
}

pub fn options(home: &Path, password: Option<&str>) -> SecretsOptions {
    SecretsOptions {
        home: home.to_path_buf(),
        keystore_password: password.map(Secret::from),
        old_home: None,
        old_keystore_password: None,
        now: now(),
    }
}

pub fn findings(report: &SecretsReport, severity: Severity) -> Vec<&Finding> {
    report
        .report
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .collect()
}

/// No finding, error or debug output holds a plaintext or password.
fn assert_no_secret(text: &str) {
    for secret in [
        STORE_PASSWORD,
        USER_STORE_PW,
        TENANT_STORE_PW,
        PUBLISHER_PW,
        VAULT_PW,
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

fn check_all_open(format: StoreFormat, password: Password, env: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let spec = KeystoreSpec::new("custom.ks", format, STORE_PASSWORD);
    let home = keystore_home(dir.path(), &spec, &password);
    fill_values(&home, &home);
    let report = verify_secrets(&options(&home.root, env)).unwrap();
    let sources: Vec<_> = report.values.iter().map(|v| v.found.source).collect();
    assert_eq!(
        sources,
        [
            Source::Deployment,
            Source::UserStore,
            Source::UserStore,
            Source::SecureVault,
            Source::SecureVault,
            Source::SecureVault
        ],
        "{:#?}",
        report.values
    );
    assert!(
        report.values.iter().all(|v| v.opens),
        "{format:?} {:#?}",
        report.report
    );
    assert_eq!(report.opening(), 6);
    assert!(
        findings(&report, Severity::Error).is_empty(),
        "{:#?}",
        report.report
    );
    assert!(
        findings(&report, Severity::Warning).is_empty(),
        "{:#?}",
        report.report
    );
    assert_eq!(report.key.format, format);
    let user_stores: Vec<_> = report
        .values
        .iter()
        .filter(|v| v.found.source == Source::UserStore)
        .map(|v| (v.found.file.clone(), v.found.element.clone(), v.scheme))
        .collect();
    assert_eq!(
        user_stores,
        [
            (
                PathBuf::from("repository/deployment/server/userstores/wso2_com.xml"),
                "UserStoreManager/Property[@name='password']".to_owned(),
                Some(Scheme::RawRsa)
            ),
            (
                PathBuf::from("repository/tenants/1/userstores/tenant_store.xml"),
                "UserStoreManager/Property[@name='password']".to_owned(),
                Some(Scheme::RawRsa)
            ),
        ]
    );
    let json = serde_json::to_string(&report).unwrap();
    assert_no_secret(&json);
    assert_no_secret(&format!("{report:?}"));
}

#[test]
fn secrets_same_keystore_every_value_opens() {
    let alias = Password::Alias("Carbon.Security.KeyStore.Password".into());
    let cases: &[(StoreFormat, Password, Option<&str>)] = &[
        (
            StoreFormat::Jks,
            Password::Plain(STORE_PASSWORD.into()),
            None,
        ),
        (
            StoreFormat::Pkcs12,
            Password::Plain(STORE_PASSWORD.into()),
            None,
        ),
        (StoreFormat::Jks, alias.clone(), Some(STORE_PASSWORD)),
        (StoreFormat::Pkcs12, alias, Some(STORE_PASSWORD)),
    ];
    for (format, password, env) in cases {
        check_all_open(*format, password.clone(), *env);
    }
}

#[test]
fn secrets_custom_old_keystore_stock_new_reports_each_value() {
    let dir = tempfile::tempdir().unwrap();
    let old_spec = KeystoreSpec::new("wso2carbon.jks", StoreFormat::Jks, STORE_PASSWORD);
    let old = keystore_home(
        &dir.path().join("old"),
        &old_spec,
        &Password::Plain(STORE_PASSWORD.into()),
    );
    fill_values(&old, &old);
    // The new home: the same replicated values, a different (its own "stock") key.
    let mut new_spec = KeystoreSpec::new("wso2carbon.jks", StoreFormat::Jks, "wso2carbon");
    new_spec.cn = "new-stock".into();
    let new = keystore_home(
        &dir.path().join("new"),
        &new_spec,
        &Password::Plain("wso2carbon".into()),
    );
    fill_values(&new, &old);
    let mut opts = options(&new.root, None);
    opts.old_home = Some(old.root.clone());
    let report = verify_secrets(&opts).unwrap();
    assert_eq!(report.opening(), 0, "{:#?}", report.report);
    let old_fp = report.old_key.as_ref().unwrap().cert.sha256.clone();
    let new_fp = report.key.cert.sha256.clone();
    assert_ne!(old_fp, new_fp);
    let errors = findings(&report, Severity::Error);
    assert_eq!(errors.len(), 6, "{errors:#?}");
    for (error, value) in errors.iter().zip(&report.values) {
        assert!(error.object.contains(&value.found.element), "{error}");
        assert!(
            error.object.contains(&*value.found.file.to_string_lossy()),
            "{error}"
        );
        assert!(
            error.message.contains(&old_fp) && error.message.contains(&new_fp),
            "{error}"
        );
        assert!(error.message.starts_with("does not open"), "{error}");
        assert_eq!(value.needs.as_deref(), Some(old_fp.as_str()));
    }
    let warnings = findings(&report, Severity::Warning);
    assert!(
        warnings.iter().any(|w| w.check == "keystore-key"),
        "{warnings:#?}"
    );
    let text: Vec<String> = report
        .report
        .findings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_no_secret(&text.join("\n"));
    // Carried (the old keystore copied over the new one, carbon.xml naming it): every value opens.
    std::fs::copy(
        old.root.join(fixture::SECURITY_DIR).join("wso2carbon.jks"),
        new.root.join(fixture::SECURITY_DIR).join("wso2carbon.jks"),
    )
    .unwrap();
    write_carbon_xml(
        &new.root,
        &old_spec,
        &Password::Plain(STORE_PASSWORD.into()),
        None,
    )
    .unwrap();
    let carried = verify_secrets(&opts).unwrap();
    assert_eq!(carried.opening(), 6, "{:#?}", carried.report);
    insta::with_settings!({filters => vec![
        (r"([0-9A-F]{2}:){31}[0-9A-F]{2}", "[SHA-256]"),
        (r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]"),
        // Noise, or a random ciphertext above the other modulus: either is right.
        (r"does not open: [^;]*;", "does not open: [WHY];"),
    ]}, {
        insta::assert_snapshot!(text.join("\n"));
    });
}

#[test]
fn secrets_tampered_ciphertext_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let spec = KeystoreSpec::new("custom.p12", StoreFormat::Pkcs12, STORE_PASSWORD);
    let home = keystore_home(dir.path(), &spec, &Password::Plain(STORE_PASSWORD.into()));
    let good = encrypt(&home.pem, USER_STORE_PW, Scheme::RawRsa, key_bytes(&spec)).unwrap();
    // Flip one Base64 character in the middle: still Base64, another ciphertext.
    let mut bad: Vec<char> = good.chars().collect();
    let at = bad.len() / 2;
    bad[at] = if bad[at] == 'A' { 'B' } else { 'A' };
    let bad: String = bad.into_iter().collect();
    write_user_store(&home.root, None, "tampered", &bad).unwrap();
    write_user_store(&home.root, None, "good", &good).unwrap();
    let report = verify_secrets(&options(&home.root, None)).unwrap();
    let opens: Vec<_> = report
        .values
        .iter()
        .map(|v| {
            (
                v.found
                    .file
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                v.opens,
            )
        })
        .collect();
    assert_eq!(
        opens,
        [("good.xml".into(), true), ("tampered.xml".into(), false)]
    );
    let errors = findings(&report, Severity::Error);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].object.starts_with("repository/deployment/server/userstores/tampered.xml:6 UserStoreManager/Property[@name='password']"), "{}", errors[0]);
    assert!(
        errors[0].message.contains("the key it needs is unknown"),
        "{}",
        errors[0]
    );
}

#[test]
fn secrets_wrong_keystore_password_is_one_clear_line() {
    for format in [StoreFormat::Jks, StoreFormat::Pkcs12] {
        let dir = tempfile::tempdir().unwrap();
        let spec = KeystoreSpec::new("custom.ks", format, STORE_PASSWORD);
        let home = keystore_home(dir.path(), &spec, &Password::Plain("Not-The-Pw".into()));
        let err = verify_secrets(&options(&home.root, None)).unwrap_err();
        assert!(matches!(err, SecretsError::Keystore { .. }), "{err:?}");
        assert_eq!(err.kind(), carbon_fs::ErrorKind::BadInput);
        let line = carbon_fs::error_chain(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("custom.ks (carbon.xml Security/KeyStore)"),
            "{line}"
        );
        assert!(line.contains("password is wrong"), "{line}");
        assert!(
            !line.contains("Not-The-Pw") && !line.contains(STORE_PASSWORD),
            "{line}"
        );
        // Through the alias and the environment: the same.
        let home2 = keystore_home(
            &dir.path().join("alias"),
            &spec,
            &Password::Alias("Carbon.Security.KeyStore.Password".into()),
        );
        let err = verify_secrets(&options(&home2.root, Some("Wrong-Env-Pw"))).unwrap_err();
        let line = carbon_fs::error_chain(&err);
        assert!(
            line.contains("password is wrong") && !line.contains("Wrong-Env-Pw"),
            "{line}"
        );
    }
}

#[test]
fn secrets_vault_alias_without_entry() {
    let dir = tempfile::tempdir().unwrap();
    let spec = KeystoreSpec::new("custom.jks", StoreFormat::Jks, STORE_PASSWORD);
    // carbon.xml names an alias, no environment password, the vault lacks the entry.
    let home = keystore_home(
        dir.path(),
        &spec,
        &Password::Alias("Carbon.Security.KeyStore.Password".into()),
    );
    write_cipher_text(&home.root, &[("Other.Alias", "[x]")]).unwrap();
    let err = verify_secrets(&options(&home.root, None)).unwrap_err();
    assert_eq!(
        carbon_fs::error_chain(&err),
        "repository/conf/security/cipher-text.properties: secure-vault alias Carbon.Security.KeyStore.Password: carbon.xml names it for the keystore password but the vault has no such entry"
    );
    // An encrypted vault entry without the environment password: say which variable.
    write_cipher_text(
        &home.root,
        &[("Carbon.Security.KeyStore.Password", "c2VjcmV0")],
    )
    .unwrap();
    let line = carbon_fs::error_chain(&verify_secrets(&options(&home.root, None)).unwrap_err());
    assert!(
        line.ends_with("give it in CARBON_KEYSTORE_PASSWORD"),
        "{line}"
    );
    // A datasource naming an alias the vault lacks: an error finding, the rest still checked.
    let ds = home
        .root
        .join("repository/conf/datasources/master-datasources.xml");
    std::fs::create_dir_all(ds.parent().unwrap()).unwrap();
    std::fs::write(&ds, "<datasources-configuration xmlns:svns=\"http://org.wso2.securevault/configuration\">\n<password svns:secretAlias=\"Datasources.Missing.Password\"></password>\n</datasources-configuration>\n").unwrap();
    let report = verify_secrets(&options(&home.root, Some(STORE_PASSWORD))).unwrap();
    let errors = findings(&report, Severity::Error);
    let texts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(texts.iter().any(|t| t.contains("repository/conf/datasources/master-datasources.xml:2: secure-vault alias Datasources.Missing.Password has no entry")), "{texts:#?}");
}

#[test]
fn secrets_keystore_expiring_soon_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = KeystoreSpec::new("soon.p12", StoreFormat::Pkcs12, STORE_PASSWORD);
    spec.validity_days = 30;
    let home = keystore_home(dir.path(), &spec, &Password::Plain(STORE_PASSWORD.into()));
    let report = verify_secrets(&options(&home.root, None)).unwrap();
    let warnings = findings(&report, Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].check, "keystore-expiry");
    assert!(
        warnings[0].message.contains("(29 days)") || warnings[0].message.contains("(30 days)"),
        "{}",
        warnings[0]
    );
    // A year's validity: no warning.
    let dir = tempfile::tempdir().unwrap();
    spec.validity_days = 365;
    let home = keystore_home(dir.path(), &spec, &Password::Plain(STORE_PASSWORD.into()));
    assert!(
        findings(
            &verify_secrets(&options(&home.root, None)).unwrap(),
            Severity::Warning
        )
        .is_empty()
    );
}

#[test]
fn secrets_later_kernel_forms() {
    let dir = tempfile::tempdir().unwrap();
    let spec = KeystoreSpec::new("custom.jks", StoreFormat::Jks, STORE_PASSWORD);
    let home = keystore_home(dir.path(), &spec, &Password::Plain(STORE_PASSWORD.into()));
    let k = key_bytes(&spec);
    let report = verify_secrets(&options(&home.root, None)).unwrap();
    let sha1 = report.key.cert.sha1.replace(':', "");
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let oaep = encrypt(&home.pem, USER_STORE_PW, Scheme::OaepSha1, k).unwrap();
    let json = |tp: &str| {
        b64(&format!(
            r#"{{"c":"{oaep}","t":"RSA/ECB/OAEPwithSHA1andMGF1Padding","tp":"{tp}","tpd":"SHA-1"}}"#
        ))
    };
    write_user_store(&home.root, None, "a_selfcontained", &json(&sha1)).unwrap();
    write_user_store(
        &home.root,
        None,
        "b_othercert",
        &json("00112233445566778899AABBCCDDEEFF00112233"),
    )
    .unwrap();
    // carbon.properties switches plain values to OAEP (kernel 4.4.23+).
    write_user_store(&home.root, None, "c_oaep", &oaep).unwrap();
    std::fs::write(
        home.root.join("repository/conf/carbon.properties"),
        "org.wso2.CipherTransformation=RSA/ECB/OAEPwithSHA1andMGF1Padding\n",
    )
    .unwrap();
    let report = verify_secrets(&options(&home.root, None)).unwrap();
    let got: Vec<_> = report
        .values
        .iter()
        .map(|v| (v.opens, v.scheme, v.needs.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (true, Some(Scheme::OaepSha1), None),
            (
                false,
                None,
                Some("00112233445566778899AABBCCDDEEFF00112233".into())
            ),
            (true, Some(Scheme::OaepSha1), None),
        ]
    );
}

#[test]
fn secrets_jks_reader_matches_keytool() {
    let dir = tempfile::tempdir().unwrap();
    let spec = KeystoreSpec::new("k.jks", StoreFormat::Jks, STORE_PASSWORD);
    let ks = make_keystore(dir.path(), &spec).unwrap();
    // A trusted certificate entry too.
    let other = KeystoreSpec {
        file: "o.jks".into(),
        alias: "other".into(),
        cn: "other".into(),
        ..spec.clone()
    };
    let other_ks = make_keystore(dir.path(), &other).unwrap();
    let pem = dir.path().join("other.pem");
    export_cert(&other_ks, STORE_PASSWORD, "other", &pem).unwrap();
    import_cert(&ks, "JKS", STORE_PASSWORD, "trusted-other", &pem).unwrap();
    let bytes = std::fs::read(&ks).unwrap();
    let store = Store::read(&ks, &bytes, STORE_PASSWORD).unwrap();
    let mut ours: Vec<_> = store.certs.iter().map(|c| c.sha256.clone()).collect();
    let mut theirs = keytool_fingerprints(&ks, STORE_PASSWORD).unwrap();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    assert_eq!(store.certs.iter().filter(|c| c.key_entry).count(), 1);
    assert!(store.private_key("wso2carbon", STORE_PASSWORD).is_ok());
    assert!(
        matches!(store.private_key("wso2carbon", "wrong").unwrap_err().to_string().as_str(), s if s.contains("key password is wrong"))
    );
    assert!(matches!(
        jks::parse(&bytes, "wrong"),
        Err(jks::JksError::BadPassword)
    ));
    // Truncated anywhere: an error, never a panic.
    for cut in [0, 3, 4, 11, 40, bytes.len() / 2, bytes.len() - 21] {
        assert!(jks::parse(&bytes[..cut], STORE_PASSWORD).is_err());
    }
}

#[test]
fn secrets_carry_plans_keystores_vault_and_components() {
    use carbon_verify::secrets::carry::{CarryAction, CarryOptions, apply_carry, plan_carry};
    let opts = |components, old_dist| CarryOptions {
        password: Some(STORE_PASSWORD),
        components,
        old_dist,
    };
    let dir = tempfile::tempdir().unwrap();
    let (old_dir, new_dir) = (dir.path().join("old"), dir.path().join("new"));
    // Old: a custom keystore named in carbon.xml, its own wso2carbon.jks too, a vault, a
    // custom bundle in dropins and a patch. New: its own wso2carbon.jks, no custom.jks.
    let custom = KeystoreSpec::new("custom.jks", StoreFormat::Jks, STORE_PASSWORD);
    let old = keystore_home(&old_dir, &custom, &Password::Plain(STORE_PASSWORD.into()));
    fill_values(&old, &old);
    make_keystore(
        &old_dir,
        &KeystoreSpec::new("wso2carbon.jks", StoreFormat::Jks, "wso2carbon"),
    )
    .unwrap();
    let new_spec = KeystoreSpec::new("wso2carbon.jks", StoreFormat::Jks, "wso2carbon");
    keystore_home(&new_dir, &new_spec, &Password::Plain("wso2carbon".into()));
    let jar = old_dir.join("repository/components/dropins/custom-auth_1.0.0.jar");
    std::fs::create_dir_all(jar.parent().unwrap()).unwrap();
    std::fs::write(&jar, b"PK\x03\x04 a custom bundle").unwrap();
    let patch = old_dir.join("repository/components/patches/patch0001/org.wso2.carbon.core.jar");
    std::fs::create_dir_all(patch.parent().unwrap()).unwrap();
    std::fs::write(&patch, b"PK\x03\x04 a patch").unwrap();
    let lib = "repository/components/lib/shared.jar";
    for home in [&old_dir, &new_dir] {
        std::fs::create_dir_all(home.join("repository/components/lib")).unwrap();
        std::fs::write(home.join(lib), b"in both").unwrap();
    }
    let old_digest = std::fs::read_dir(&old_dir).unwrap().count();

    let plan = plan_carry(&old_dir, &new_dir, opts(false, None)).unwrap();
    let security: Vec<_> = plan
        .security
        .iter()
        .map(|f| (f.file.to_string_lossy().into_owned(), f.action))
        .collect();
    assert_eq!(
        security,
        [
            (
                "repository/resources/security/custom.jks".to_owned(),
                CarryAction::Copy
            ),
            (
                "repository/resources/security/wso2carbon.jks".to_owned(),
                CarryAction::Conflict
            ),
            (
                "repository/conf/security/cipher-text.properties".to_owned(),
                CarryAction::Copy
            ),
        ]
    );
    let custom_ks = &plan.security[0];
    let keys = carbon_verify::secrets::open_keys(&old_dir, None).unwrap();
    assert_eq!(
        custom_ks.fingerprint.as_deref(),
        Some(keys.cert.sha256.as_str())
    );
    assert!(
        plan.security[1]
            .fingerprint
            .as_deref()
            .unwrap()
            .contains(" → ")
    );
    let components: Vec<_> = plan
        .components
        .iter()
        .map(|f| (f.file.to_string_lossy().into_owned(), f.action, f.size))
        .collect();
    assert_eq!(
        components,
        [
            (
                "repository/components/dropins/custom-auth_1.0.0.jar".to_owned(),
                CarryAction::Listed,
                20
            ),
            (
                "repository/components/patches/patch0001/org.wso2.carbon.core.jar".to_owned(),
                CarryAction::Listed,
                12
            ),
        ]
    );
    assert_eq!(
        plan.components[0].sha256,
        carbon_fs::sha256_hex(b"PK\x03\x04 a custom bundle")
    );
    assert!(
        plan.warnings[0].contains("may need rebuilding"),
        "{:?}",
        plan.warnings
    );

    // Copied when asked; a second apply (a resumed run) copies nothing; the old home is as it was.
    // With the old distribution: the patch shipped with it (same bytes) is not the operator's.
    let dist = dir.path().join("dist");
    let shipped = dist.join("repository/components/patches/patch0001/org.wso2.carbon.core.jar");
    std::fs::create_dir_all(shipped.parent().unwrap()).unwrap();
    std::fs::write(&shipped, b"PK\x03\x04 a patch").unwrap();
    let with_dist = plan_carry(&old_dir, &new_dir, opts(false, Some(&dist))).unwrap();
    let added: Vec<_> = with_dist
        .components
        .iter()
        .map(|f| f.file.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        added,
        ["repository/components/dropins/custom-auth_1.0.0.jar"]
    );

    let plan = plan_carry(&old_dir, &new_dir, opts(true, None)).unwrap();
    let written = apply_carry(&old_dir, &new_dir, &plan).unwrap();
    assert_eq!(written.len(), 4, "{written:?}");
    assert_eq!(
        std::fs::read(new_dir.join("repository/components/dropins/custom-auth_1.0.0.jar")).unwrap(),
        b"PK\x03\x04 a custom bundle"
    );
    assert!(apply_carry(&old_dir, &new_dir, &plan).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&old_dir).unwrap().count(), old_digest);
    // Carried keystore and vault: the old values open in the new home once carbon.xml names it.
    write_carbon_xml(
        &new_dir,
        &custom,
        &Password::Plain(STORE_PASSWORD.into()),
        None,
    )
    .unwrap();
    fill_values(
        &TestHome {
            root: new_dir.clone(),
            spec: custom.clone(),
            pem: old.pem.clone(),
        },
        &old,
    );
    assert_eq!(
        verify_secrets(&options(&new_dir, None)).unwrap().opening(),
        6
    );
}

/// A binary ciphertext whose first byte is `{` (one in 256) is still a ciphertext, not a
/// self-contained JSON value (a flaky failure once showed this).
#[test]
fn secrets_ciphertext_starting_with_a_brace_is_not_json() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let spec = KeystoreSpec::new("custom.p12", StoreFormat::Pkcs12, STORE_PASSWORD);
    let home = keystore_home(dir.path(), &spec, &Password::Plain(STORE_PASSWORD.into()));
    let k = key_bytes(&spec);
    let braced = (0..4096)
        .map(|_| encrypt(&home.pem, VAULT_PW, Scheme::Pkcs1, k).unwrap())
        .find(|ct| {
            base64::engine::general_purpose::STANDARD
                .decode(ct)
                .unwrap()[0]
                == b'{'
        })
        .expect("one in 256 PKCS#1 ciphertexts starts with '{'");
    write_cipher_text(&home.root, &[("Braced.Password", &braced)]).unwrap();
    let report = verify_secrets(&options(&home.root, None)).unwrap();
    assert_eq!(report.values.len(), 1);
    assert!(report.values[0].opens, "{:#?}", report.report);
}

/// Trust-store entries the old home trusts and the new one lacks are listed.
#[test]
fn secrets_trust_store_entries_missing_in_the_new_home() {
    let dir = tempfile::tempdir().unwrap();
    let mut homes = Vec::new();
    for name in ["old", "new"] {
        let root = dir.path().join(name);
        let spec = KeystoreSpec::new("wso2carbon.jks", StoreFormat::Jks, "wso2carbon");
        let ks = make_keystore(&root, &spec).unwrap();
        let trust = KeystoreSpec::new("client-truststore.jks", StoreFormat::Jks, "wso2carbon");
        let pem = root.join("own.pem");
        export_cert(&ks, "wso2carbon", "wso2carbon", &pem).unwrap();
        let ts = root
            .join(fixture::SECURITY_DIR)
            .join("client-truststore.jks");
        import_cert(&ts, "JKS", "wso2carbon", "own", &pem).unwrap();
        write_carbon_xml(
            &root,
            &spec,
            &Password::Plain("wso2carbon".into()),
            Some(&trust),
        )
        .unwrap();
        homes.push((root, ts));
    }
    // The old trust store also trusts a partner's CA.
    let partner = KeystoreSpec {
        file: "partner.jks".into(),
        alias: "partner".into(),
        cn: "partner-ca".into(),
        ..KeystoreSpec::new("partner.jks", StoreFormat::Jks, "wso2carbon")
    };
    let partner_ks = make_keystore(dir.path(), &partner).unwrap();
    let partner_pem = dir.path().join("partner.pem");
    export_cert(&partner_ks, "wso2carbon", "partner", &partner_pem).unwrap();
    import_cert(&homes[0].1, "JKS", "wso2carbon", "partner-ca", &partner_pem).unwrap();
    let mut opts = options(&homes[1].0, None);
    opts.old_home = Some(homes[0].0.clone());
    let report = verify_secrets(&opts).unwrap();
    let missing: Vec<_> = findings(&report, Severity::Warning)
        .into_iter()
        .filter(|f| f.check == "truststore-entry")
        .map(|f| {
            (
                f.object.rsplit(' ').next().unwrap().to_owned(),
                f.message.contains("CN=partner-ca"),
            )
        })
        .collect();
    // The old home's own certificate and the partner's CA: both absent from the new store.
    assert_eq!(missing.len(), 2, "{:#?}", report.report);
    assert!(
        missing.contains(&("partner-ca".to_owned(), true)),
        "{missing:?}"
    );
}
