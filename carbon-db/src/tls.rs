//! TLS to database servers, exactly as much as the datasource URL asks for.
//!
//! Carbon's URLs are JDBC URLs, so the options are read with the JDBC drivers' meanings:
//! pgjdbc's `sslmode` / `ssl` / `sslfactory` / `sslrootcert`, MySQL Connector/J's `sslMode` /
//! `useSSL` / `requireSSL` / `verifyServerCertificate`, and MariaDB Connector/J's `sslMode` /
//! `useSsl` / `trustServerCertificate` / `disableSslHostnameVerification` / `serverSslCert`.
//! A URL that says nothing gets plain TCP, as before. The same mode is handed to the vendor's
//! own tools (`pg_dump`, `mariadb-dump`), so a backup travels the way the copy does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{DbError, DbUrl};

/// How a connection is protected; ordered from weakest to strongest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsMode {
    /// Plain TCP: what a URL without TLS options gets.
    #[default]
    Disable,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (libpq's and pgjdbc's `require`).
    Require,
    /// TLS; the certificate must chain to a trusted CA, whatever host name it names.
    VerifyCa,
    /// TLS; the certificate must chain to a trusted CA and name the host connected to.
    VerifyFull,
}

impl TlsMode {
    /// libpq's spelling, used when a URL is shown and for `PGSSLMODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    fn checks_chain(self) -> bool {
        self >= TlsMode::VerifyCa
    }

    /// Reads an explicit mode in any driver's spelling: libpq/pgjdbc (`verify-full`),
    /// Connector/J (`VERIFY_IDENTITY`, `PREFERRED`) or MariaDB Connector/J (`trust`).
    fn parse(value: &str) -> Option<TlsMode> {
        let v = value.trim().to_ascii_lowercase().replace('_', "-");
        Some(match v.as_str() {
            "disable" | "disabled" => TlsMode::Disable,
            "allow" | "prefer" | "preferred" => TlsMode::Prefer,
            "require" | "required" | "trust" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" | "verify-identity" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS a URL asks for: a mode and, for the verifying modes, the CA file to trust.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    pub mode: TlsMode,
    /// PEM file of trusted CA certificates (`sslrootcert`, `serverSslCert`). Without one,
    /// PostgreSQL uses `~/.postgresql/root.crt` as libpq does, then the Mozilla roots.
    pub root_cert: Option<PathBuf>,
}

/// Which JDBC driver's option meanings apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    /// `jdbc:mysql:` — MySQL Connector/J.
    ConnectorJ,
    /// `jdbc:mariadb:` — MariaDB Connector/J.
    MariaDb,
}

/// The TLS options found in a URL's query, before they are reconciled into a mode.
#[derive(Debug, Default)]
pub(crate) struct TlsParams {
    explicit: Option<TlsMode>,
    ssl: Option<bool>,
    require_ssl: Option<bool>,
    verify_cert: Option<bool>,
    trust_cert: Option<bool>,
    skip_host_check: Option<bool>,
    non_validating_factory: bool,
    keystore: bool,
    root_cert: Option<String>,
}

impl TlsParams {
    /// Takes one `key=value` option if it concerns TLS; `Err` names a value we cannot honour.
    pub(crate) fn take(&mut self, key: &str, value: &str) -> Result<(), String> {
        let flag = |v: &str| -> Result<bool, String> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                other => Err(format!("{key}={other:?} is neither true nor false")),
            }
        };
        match key.to_ascii_lowercase().as_str() {
            "sslmode" => {
                let mode = TlsMode::parse(value).ok_or_else(|| {
                    format!(
                        "sslmode={value:?} is not one of disable, prefer, require, verify-ca, verify-full"
                    )
                })?;
                self.explicit = Some(mode);
            }
            "ssl" | "usessl" => self.ssl = Some(flag(value)?),
            "requiressl" => self.require_ssl = Some(flag(value)?),
            "verifyservercertificate" => self.verify_cert = Some(flag(value)?),
            "trustservercertificate" => self.trust_cert = Some(flag(value)?),
            "disablesslhostnameverification" => self.skip_host_check = Some(flag(value)?),
            "sslfactory" => {
                self.non_validating_factory = value.ends_with("NonValidatingFactory");
            }
            "trustcertificatekeystoreurl" => self.keystore = !value.is_empty(),
            "sslrootcert" | "serversslcert" | "sslca" => self.root_cert = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }

    /// Reconciles the options the way the URL's own driver would, into one mode.
    pub(crate) fn resolve(
        self,
        dialect: Dialect,
        home: Option<&Path>,
    ) -> Result<TlsOptions, String> {
        let mode = match (self.explicit, dialect) {
            (Some(mode), _) => mode,
            (None, Dialect::Postgres) => match self.ssl {
                // pgjdbc: ssl=true means verify-full unless a non-validating factory is named.
                Some(true) if self.non_validating_factory => TlsMode::Require,
                Some(true) => TlsMode::VerifyFull,
                _ => TlsMode::Disable,
            },
            // Connector/J 8's mapping of its legacy options onto sslMode.
            (None, Dialect::ConnectorJ) => {
                if self.ssl == Some(false) {
                    TlsMode::Disable
                } else if self.verify_cert == Some(true) {
                    TlsMode::VerifyCa
                } else if self.require_ssl == Some(true) {
                    TlsMode::Require
                } else if self.ssl == Some(true) {
                    TlsMode::Prefer
                } else {
                    TlsMode::Disable
                }
            }
            // MariaDB Connector/J: useSsl validates unless told to trust.
            (None, Dialect::MariaDb) => match self.ssl {
                Some(true) if self.trust_cert == Some(true) => TlsMode::Require,
                Some(true) if self.skip_host_check == Some(true) => TlsMode::VerifyCa,
                Some(true) => TlsMode::VerifyFull,
                _ => TlsMode::Disable,
            },
        };
        if mode.checks_chain() && self.keystore && self.root_cert.is_none() {
            return Err(
                "trustCertificateKeyStoreUrl names a Java keystore, which cannot be read \
                        here; export the CA certificate as PEM and give serverSslCert=<file>"
                    .to_owned(),
            );
        }
        let root_cert = self
            .root_cert
            .filter(|p| !p.is_empty())
            .map(|p| crate::url::resolve(&p, home));
        Ok(TlsOptions { mode, root_cert })
    }
}

fn tls_error(url: &DbUrl, detail: impl std::fmt::Display) -> DbError {
    DbError::Connect {
        url: url.to_string(),
        detail: format!("TLS ({}): {detail}", url.tls().mode),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA certificates a verifying connection trusts.
fn root_store(url: &DbUrl) -> Result<RootCertStore, DbError> {
    let mut store = RootCertStore::empty();
    let libpq_default = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".postgresql/root.crt"))
        .filter(|p| url.vendor() == crate::Vendor::Postgres && p.is_file());
    match url
        .tls()
        .root_cert
        .as_deref()
        .map(Path::to_path_buf)
        .or(libpq_default)
    {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(&path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_error(url, format!("reading CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(tls_error(
                    url,
                    format!("CA file {} holds no PEM certificate", path.display()),
                ));
            }
            let (_, ignored) = store.add_parsable_certificates(certs);
            if store.is_empty() {
                return Err(tls_error(
                    url,
                    format!(
                        "CA file {}: {ignored} unusable certificate(s)",
                        path.display()
                    ),
                ));
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(store)
}

/// Checks the server's certificate as far as the mode asks: not at all, the chain, or the
/// chain and the name. Handshake signatures are always checked.
#[derive(Debug)]
struct ModeVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ModeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration that checks what the URL's mode asks.
fn client_config(url: &DbUrl) -> Result<rustls::ClientConfig, DbError> {
    let provider = provider();
    let mode = url.tls().mode;
    let chain = if mode.checks_chain() {
        let roots = Arc::new(root_store(url)?);
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| tls_error(url, e))?;
        Some(verifier)
    } else {
        None
    };
    let verifier = ModeVerifier {
        chain,
        check_name: mode == TlsMode::VerifyFull,
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(url, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

/// Opens a PostgreSQL session with `config` over the transport the URL asks for.
pub(crate) fn connect_postgres(
    url: &DbUrl,
    config: &postgres::Config,
) -> Result<postgres::Client, ConnectFailure> {
    use postgres::config::SslMode;
    let mut config = config.clone();
    let mode = url.tls().mode;
    if mode == TlsMode::Disable {
        config.ssl_mode(SslMode::Disable);
        return config
            .connect(postgres::NoTls)
            .map_err(ConnectFailure::Driver);
    }
    config.ssl_mode(if mode == TlsMode::Prefer {
        SslMode::Prefer
    } else {
        SslMode::Require
    });
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
        client_config(url).map_err(ConnectFailure::Setup)?,
    );
    config.connect(tls).map_err(ConnectFailure::Driver)
}

/// Why a PostgreSQL session could not be opened: our TLS setup, or the driver/server.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    Setup(DbError),
    Driver(postgres::Error),
}

/// The driver's TLS options for a MySQL/MariaDB URL (`None` for plain TCP).
pub(crate) fn mysql_ssl_opts(url: &DbUrl) -> Option<mysql::SslOpts> {
    let tls = url.tls();
    let opts = mysql::SslOpts::default();
    let opts = match tls.mode {
        TlsMode::Disable => return None,
        TlsMode::Prefer | TlsMode::Require => opts
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true),
        TlsMode::VerifyCa => opts.with_danger_skip_domain_validation(true),
        TlsMode::VerifyFull => opts,
    };
    Some(match &tls.root_cert {
        Some(path) => opts.with_root_cert_path(Some(path.clone())),
        None => opts,
    })
}

/// Opens a MySQL/MariaDB session; under `prefer`, a server without TLS gets a plain one.
pub(crate) fn connect_mysql(
    url: &DbUrl,
    builder: mysql::OptsBuilder,
) -> Result<mysql::Conn, mysql::Error> {
    let ssl = mysql_ssl_opts(url);
    if let (Some(path), Some(_)) = (&url.tls().root_cert, &ssl)
        && !path.is_file()
    {
        return Err(mysql::Error::IoError(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("TLS CA file {} does not exist", path.display()),
        )));
    }
    let prefer = url.tls().mode == TlsMode::Prefer;
    match mysql::Conn::new(builder.clone().ssl_opts(ssl)) {
        Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) if prefer => {
            mysql::Conn::new(builder.ssl_opts(None))
        }
        other => other,
    }
}

/// Environment for libpq tools (`pg_dump`), so they use the URL's TLS and nothing else.
pub(crate) fn libpq_env(url: &DbUrl) -> Vec<(&'static str, String)> {
    let tls = url.tls();
    let mut env = vec![("PGSSLMODE", tls.mode.as_str().to_owned())];
    if let Some(path) = &tls.root_cert {
        env.push(("PGSSLROOTCERT", path.display().to_string()));
    }
    env
}

/// Options for MariaDB/MySQL client tools (`mariadb-dump`, `mysqldump`).
pub(crate) fn mysql_tool_args(url: &DbUrl) -> Vec<String> {
    let tls = url.tls();
    let mut args = Vec::new();
    // The client cannot check a chain without the name, so `verify-ca` dumps after our own
    // sessions (preflight, copy) have checked the chain; `--ssl` alone falls back to plain
    // on a server without TLS, where those sessions would already have failed under `require`.
    if tls.mode != TlsMode::Disable {
        args.push("--ssl".to_owned());
    }
    if tls.mode == TlsMode::VerifyFull {
        args.push("--ssl-verify-server-cert".to_owned());
    }
    if let (Some(path), true) = (&tls.root_cert, tls.mode.checks_chain()) {
        args.push(format!("--ssl-ca={}", path.display()));
    }
    args
}
