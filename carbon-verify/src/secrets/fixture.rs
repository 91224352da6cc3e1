//! Test fixtures for the secrets check (feature `fixture`): keystores made by `keytool`, values
//! encrypted by `openssl` exactly as Carbon does, and a minimal product home holding them.
//! Only for tests and demos: the plaintexts are the caller's test values.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Scheme, StoreFormat};

/// A keystore to make with `keytool -genkeypair`.
#[derive(Debug, Clone)]
pub struct KeystoreSpec {
    /// File name under `repository/resources/security`.
    pub file: String,
    pub format: StoreFormat,
    pub password: String,
    pub alias: String,
    pub bits: u32,
    pub validity_days: u32,
    pub cn: String,
}

impl KeystoreSpec {
    pub fn new(file: &str, format: StoreFormat, password: &str) -> KeystoreSpec {
        KeystoreSpec {
            file: file.to_owned(),
            format,
            password: password.to_owned(),
            alias: "wso2carbon".to_owned(),
            bits: 2048,
            validity_days: 3650,
            cn: "localhost".to_owned(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self.format {
            StoreFormat::Jks => "JKS",
            StoreFormat::Pkcs12 => "PKCS12",
        }
    }
}

fn run(cmd: &mut Command, input: Option<&[u8]>) -> io::Result<Vec<u8>> {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(data)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

pub const SECURITY_DIR: &str = "repository/resources/security";

/// Makes the keystore in `home/repository/resources/security/<file>`; returns its path.
pub fn make_keystore(home: &Path, spec: &KeystoreSpec) -> io::Result<PathBuf> {
    let dir = home.join(SECURITY_DIR);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(&spec.file);
    run(
        Command::new("keytool")
            .arg("-genkeypair")
            .args(["-storetype", spec.type_name()])
            .arg("-keystore")
            .arg(&path)
            .args(["-storepass", &spec.password, "-keypass", &spec.password])
            .args(["-alias", &spec.alias, "-keyalg", "RSA"])
            .args([
                "-keysize",
                &spec.bits.to_string(),
                "-sigalg",
                "SHA256withRSA",
            ])
            .args(["-validity", &spec.validity_days.to_string()])
            .args(["-dname", &format!("CN={}, O=WSO2, C=US", spec.cn)]),
        None,
    )?;
    Ok(path)
}

/// Imports the certificate `pem` as a trusted entry of the keystore at `path`.
pub fn import_cert(
    path: &Path,
    store_type: &str,
    password: &str,
    alias: &str,
    pem: &Path,
) -> io::Result<()> {
    run(
        Command::new("keytool")
            .args(["-importcert", "-noprompt", "-storetype", store_type])
            .arg("-keystore")
            .arg(path)
            .args(["-storepass", password, "-alias", alias])
            .arg("-file")
            .arg(pem),
        None,
    )
    .map(drop)
}

/// The certificate of `alias` as PEM, written next to `out`.
pub fn export_cert(path: &Path, password: &str, alias: &str, out: &Path) -> io::Result<()> {
    run(
        Command::new("keytool")
            .args(["-exportcert", "-rfc"])
            .arg("-keystore")
            .arg(path)
            .args(["-storepass", password, "-alias", alias])
            .arg("-file")
            .arg(out),
        None,
    )
    .map(drop)
}

/// `keytool -list -v` SHA-256 fingerprints, in keytool's order (to check our reader).
pub fn keytool_fingerprints(path: &Path, password: &str) -> io::Result<Vec<String>> {
    let out = run(
        Command::new("keytool")
            .args(["-list", "-v"])
            .arg("-keystore")
            .arg(path)
            .args(["-storepass", password]),
        None,
    )?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("SHA256: ").map(str::to_owned))
        .collect())
}

/// Encrypts `plain` with the certificate `pem` as Carbon does, Base64 (standard, one line).
/// `RawRsa` left-pads to the modulus size (`key_bytes`) with NULs, like BouncyCastle's "RSA".
pub fn encrypt(pem: &Path, plain: &str, scheme: Scheme, key_bytes: usize) -> io::Result<String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["pkeyutl", "-encrypt", "-certin", "-inkey"])
        .arg(pem);
    let input = match scheme {
        Scheme::RawRsa => {
            cmd.args(["-pkeyopt", "rsa_padding_mode:none"]);
            let mut block = vec![0u8; key_bytes.saturating_sub(plain.len())];
            block.extend_from_slice(plain.as_bytes());
            block
        }
        Scheme::Pkcs1 => {
            cmd.args(["-pkeyopt", "rsa_padding_mode:pkcs1"]);
            plain.as_bytes().to_vec()
        }
        Scheme::OaepSha1 => {
            cmd.args(["-pkeyopt", "rsa_padding_mode:oaep"]).args([
                "-pkeyopt",
                "rsa_oaep_md:sha1",
                "-pkeyopt",
                "rsa_mgf1_md:sha1",
            ]);
            plain.as_bytes().to_vec()
        }
    };
    let ct = run(&mut cmd, Some(&input))?;
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.encode(ct))
}

/// The password element of carbon.xml: plain, or a secure-vault alias.
#[derive(Debug, Clone)]
pub enum Password {
    Plain(String),
    Alias(String),
}

impl Password {
    fn element(&self, tag: &str) -> String {
        match self {
            Password::Plain(p) => format!("<{tag}>{p}</{tag}>"),
            Password::Alias(a) => format!("<{tag} svns:secretAlias=\"{a}\"></{tag}>"),
        }
    }
}

/// A minimal carbon.xml naming `keystore` (and `truststore`, if any, with the same password).
pub fn write_carbon_xml(
    home: &Path,
    keystore: &KeystoreSpec,
    password: &Password,
    truststore: Option<&KeystoreSpec>,
) -> io::Result<()> {
    let dir = home.join("repository/conf");
    std::fs::create_dir_all(&dir)?;
    let trust = truststore.map_or(String::new(), |t| {
        format!(
            "\n        <TrustStore>\n            <Location>${{carbon.home}}/{SECURITY_DIR}/{}</Location>\n            <Type>{}</Type>\n            <Password>{}</Password>\n        </TrustStore>",
            t.file,
            t.type_name(),
            t.password
        )
    });
    let xml = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<Server xmlns="http://wso2.org/projects/carbon/carbon.xml" xmlns:svns="http://org.wso2.securevault/configuration">
    <Name>Test Server</Name>
    <Version>4.4.7</Version>
    <Security>
        <KeyStore>
            <Location>${{carbon.home}}/{SECURITY_DIR}/{}</Location>
            <Type>{}</Type>
            {}
            <KeyAlias>{}</KeyAlias>
            {}
        </KeyStore>{trust}
    </Security>
</Server>
"#,
        keystore.file,
        keystore.type_name(),
        password.element("Password"),
        keystore.alias,
        password.element("KeyPassword"),
    );
    std::fs::write(dir.join("carbon.xml"), xml)
}

/// A JDBC secondary user store whose `password` is `ciphertext` (`encrypted="true"`), in the
/// super tenant's (`tenant` = None) or a tenant's `userstores` directory.
pub fn write_user_store(
    home: &Path,
    tenant: Option<i64>,
    domain: &str,
    ciphertext: &str,
) -> io::Result<PathBuf> {
    let dir = match tenant {
        None => home.join("repository/deployment/server/userstores"),
        Some(id) => home.join(format!("repository/tenants/{id}/userstores")),
    };
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.xml", domain.replace('.', "_")));
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<UserStoreManager class="org.wso2.carbon.user.core.jdbc.JDBCUserStoreManager">
    <Property name="driverName">org.postgresql.Driver</Property>
    <Property name="url">jdbc:postgresql://127.0.0.1:5432/users</Property>
    <Property name="userName">carbon</Property>
    <Property encrypted="true" name="password">{ciphertext}</Property>
    <Property name="DomainName">{domain}</Property>
</UserStoreManager>
"#
    );
    std::fs::write(&path, xml)?;
    Ok(path)
}

/// `repository/conf/security/cipher-text.properties` with these `alias=value` lines
/// (`[plain]` values are written as given).
pub fn write_cipher_text(home: &Path, entries: &[(&str, &str)]) -> io::Result<()> {
    let path = home.join(super::CIPHER_TEXT);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::from("# secure vault\n");
    for (alias, value) in entries {
        text.push_str(&format!("{alias}={value}\n"));
    }
    std::fs::write(path, text)
}
