//! HTTP transport for the admin services: SOAP 1.1 over HTTPS (or plain HTTP for test
//! servers), HTTP Basic authentication, a chosen trust anchor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use carbon_config::Secret;

use crate::error::VerifyError;
use crate::soap::{self, Request, Response};
use crate::xml::Element;

/// Which certificates the client trusts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// The Mozilla roots (webpki-roots).
    #[default]
    WebPki,
    /// Only the certificates of this PEM file (e.g. the product's `wso2carbon` certificate).
    CaCert(PathBuf),
    /// No verification at all (`--insecure`).
    Insecure,
}

/// A user name (`admin`, or `admin@tenant.com`) and password for HTTP Basic.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub user: String,
    pub password: Secret,
}

/// Why a call did not produce a response element. `Display` is one line without secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "TLS with {url} failed: {reason} (trust its certificate with --ca-cert PEM, or use --insecure)"
    )]
    Tls { url: String, reason: String },
    #[error("{operation} as {user}: not authorised (HTTP {status})")]
    Unauthorized {
        operation: String,
        user: String,
        status: u16,
    },
    #[error("{operation}: SOAP fault {code}: {string}")]
    Fault {
        operation: String,
        code: String,
        string: String,
    },
    #[error("{operation}: unexpected HTTP {status}{detail}")]
    Http {
        operation: String,
        status: u16,
        detail: String,
    },
    #[error("{operation}: unreadable response: {reason}")]
    BadResponse { operation: String, reason: String },
}

impl CallError {
    /// Whether every further call to this server would fail the same way.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            CallError::Unreachable { .. } | CallError::Tls { .. } | CallError::Unauthorized { .. }
        )
    }

    /// Whether the server said "access denied" (as a fault or a status).
    pub fn is_access_denied(&self) -> bool {
        match self {
            CallError::Unauthorized { .. } => true,
            CallError::Fault { string, .. } => {
                let s = string.to_ascii_lowercase();
                s.contains("access denied")
                    || s.contains("unauthorized")
                    || s.contains("not authorized")
            }
            _ => false,
        }
    }
}

/// A client for one server.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// `base` is `https://host:9443` (or `http://` for a test server), without `/services`.
    pub fn new(base: &str, trust: &Trust, timeout: Duration) -> Result<Client, VerifyError> {
        let base = base
            .trim_end_matches('/')
            .trim_end_matches("/services")
            .to_owned();
        let bad = |reason: &str| VerifyError::ServerUrl {
            url: carbon_db::redact_raw(&base),
            reason: reason.to_owned(),
        };
        let rest = if let Some(rest) = base.strip_prefix("https://") {
            rest
        } else if let Some(rest) = base.strip_prefix("http://") {
            rest
        } else {
            return Err(bad(
                "expected https://host:port (or http:// for a test server)",
            ));
        };
        if rest.is_empty() || rest.contains('@') {
            return Err(bad(if rest.is_empty() {
                "no host"
            } else {
                "credentials do not belong in the URL; use --user and --password-env"
            }));
        }
        let tls = match trust {
            Trust::WebPki => ureq::tls::TlsConfig::builder().build(),
            Trust::Insecure => ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
            Trust::CaCert(path) => {
                let pem = std::fs::read(path).map_err(|e| VerifyError::CaCert {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let mut certs = Vec::new();
                for item in ureq::tls::parse_pem(&pem) {
                    match item {
                        Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
                        Ok(_) => {}
                        Err(e) => {
                            return Err(VerifyError::CaCert {
                                path: path.clone(),
                                reason: e.to_string(),
                            });
                        }
                    }
                }
                if certs.is_empty() {
                    return Err(VerifyError::CaCert {
                        path: path.clone(),
                        reason: "no PEM certificate in the file".into(),
                    });
                }
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
                    .build()
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(Client { agent, base })
    }

    /// The base URL (no credentials ever live in it).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request. In-only operations return `None` (HTTP 202, empty body).
    pub fn call(
        &self,
        request: &Request,
        creds: &Credentials,
    ) -> Result<Option<Element>, CallError> {
        let url = format!("{}/services/{}", self.base, request.service);
        let operation = format!("{}.{}", request.service, request.operation);
        tracing::debug!(%url, %operation, user = %creds.user, "SOAP call");
        let auth = format!(
            "Basic {}",
            base64(
                format!(
                    "{}:{}",
                    creds.user,
                    creds.password.plain().unwrap_or_default()
                )
                .as_bytes()
            )
        );
        let result = self
            .agent
            .post(&url)
            .header("Content-Type", "text/xml; charset=UTF-8")
            .header("SOAPAction", request.soap_action())
            .header("Authorization", auth)
            .send(request.envelope());
        let response = match result {
            Ok(response) => response,
            Err(err) => return Err(classify(&self.base, err)),
        };
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .read_to_string()
            .map_err(|e| CallError::BadResponse {
                operation: operation.clone(),
                reason: e.to_string(),
            })?;
        if status == 401 || status == 403 {
            return Err(CallError::Unauthorized {
                operation,
                user: creds.user.clone(),
                status,
            });
        }
        if body.trim().is_empty() {
            return if status == 202 || status == 200 {
                Ok(None)
            } else {
                Err(CallError::Http {
                    operation,
                    status,
                    detail: " with an empty body".into(),
                })
            };
        }
        match soap::parse_response(&body) {
            Ok(Response::Fault(fault)) => Err(CallError::Fault {
                operation,
                code: fault.code,
                string: fault.string,
            }),
            Ok(Response::Element(element)) if status == 200 => Ok(Some(element)),
            Ok(Response::Empty) if status == 200 || status == 202 => Ok(None),
            Ok(Response::Empty) => Err(CallError::Http {
                operation,
                status,
                detail: String::new(),
            }),
            Ok(Response::Element(_)) => Err(CallError::Http {
                operation,
                status,
                detail: String::new(),
            }),
            Err(reason) if status == 200 || status == 202 => {
                Err(CallError::BadResponse { operation, reason })
            }
            Err(_) => Err(CallError::Http {
                operation,
                status,
                detail: String::new(),
            }),
        }
    }
}

fn classify(base: &str, err: ureq::Error) -> CallError {
    let url = base.to_owned();
    let https = base.starts_with("https://");
    match err {
        ureq::Error::Io(io) => {
            use std::io::ErrorKind as K;
            let unreachable = matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::NotFound
                    | K::AddrNotAvailable
                    | K::HostUnreachable
                    | K::NetworkUnreachable
                    | K::TimedOut
            );
            if https && !unreachable {
                CallError::Tls {
                    url,
                    reason: io.to_string(),
                }
            } else {
                CallError::Unreachable {
                    url,
                    reason: io.to_string(),
                }
            }
        }
        ureq::Error::Rustls(e) => CallError::Tls {
            url,
            reason: e.to_string(),
        },
        ureq::Error::Tls(e) => CallError::Tls {
            url,
            reason: e.to_string(),
        },
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => {
            CallError::Unreachable {
                url,
                reason: err.to_string(),
            }
        }
        other if https => CallError::Tls {
            url,
            reason: other.to_string(),
        },
        other => CallError::Unreachable {
            url,
            reason: other.to_string(),
        },
    }
}

/// Standard base64 with padding.
pub(crate) fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
