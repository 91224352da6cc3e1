//! Decrypting a Carbon ciphertext in memory, exactly as the kernel does, to learn only whether
//! it opens. The plaintext never leaves this module: every function returns an [`Outcome`].
//!
//! * user stores and `CryptoUtil` (4.4.x): BouncyCastle `"RSA"` = textbook RSA, no padding; the
//!   plaintext is the block with its leading NUL bytes stripped.
//! * secure vault (cipher tool): SunJCE `"RSA"` = `RSA/ECB/PKCS1Padding`.
//! * later kernels: `org.wso2.CipherTransformation` (OAEP with SHA-1) and the self-contained
//!   JSON form `{"c":..,"t":..,"tp":..,"tpd":"SHA-1"}`, Base64 once more.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::traits::PublicKeyParts;
use serde::Serialize;

/// How a value was (or claims to be) encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// BouncyCastle `"RSA"`: no padding (Carbon 4.4.x user stores, `CryptoUtil`).
    RawRsa,
    /// `RSA/ECB/PKCS1Padding` (the secure-vault cipher tool).
    Pkcs1,
    /// `RSA/ECB/OAEPwithSHA1andMGF1Padding` (kernel 4.4.23+ default).
    OaepSha1,
}

impl Scheme {
    /// A Java transformation name, as `org.wso2.CipherTransformation` or a JSON `"t"` gives it.
    pub fn from_transformation(t: &str) -> Option<Scheme> {
        let t = t.trim().to_ascii_lowercase();
        match t.as_str() {
            "rsa" | "rsa/ecb/nopadding" | "rsa/none/nopadding" => Some(Scheme::RawRsa),
            "rsa/ecb/pkcs1padding" | "rsa/none/pkcs1padding" | "rsa/pkcs1" => Some(Scheme::Pkcs1),
            "rsa/ecb/oaepwithsha1andmgf1padding" | "rsa/none/oaepwithsha1andmgf1padding" => {
                Some(Scheme::OaepSha1)
            }
            _ => None,
        }
    }
}

/// What trying a value gave. Never holds the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Opens(Scheme),
    /// It does not open with this key; `reason` says what failed, `thumbprint` is the SHA-1
    /// of the certificate a self-contained value names (the key it needs).
    Fails {
        reason: String,
        thumbprint: Option<String>,
    },
    /// A form this tool recognises but cannot check.
    Unsupported(String),
}

/// The fewest leading NUL bytes a genuine no-padding block of a short password has: a wrong
/// key gives a uniformly random block, which has them with probability 2^-64. (A plaintext
/// longer than the modulus minus 8 bytes cannot be told apart and is reported as failing.)
const MIN_RAW_ZEROS: usize = 8;

fn fails(reason: impl Into<String>) -> Outcome {
    Outcome::Fails {
        reason: reason.into(),
        thumbprint: None,
    }
}

/// Base64 as Carbon writes it (it may be wrapped or indented in a file).
fn decode(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

/// The plaintext is usable as a password: text without control characters.
fn plausible(plain: &[u8]) -> bool {
    !plain.is_empty() && std::str::from_utf8(plain).is_ok_and(|s| !s.chars().any(char::is_control))
}

/// `c^d mod n` as a block of the modulus' size (left-padded with NULs), or why not.
fn raw_block(key: &rsa::PrivateKey, ct: &[u8]) -> Result<Vec<u8>, Outcome> {
    let size = key.size();
    if ct.len() > size {
        return Err(fails(format!(
            "the ciphertext is {} bytes but the key is {size} bytes: made with a larger key",
            ct.len()
        )));
    }
    let n = key.n();
    let c = rsa::BoxedUint::from_be_slice(ct, n.as_ref().bits_precision())
        .map_err(|_| fails("not an RSA ciphertext"))?;
    if c >= *n.as_ref() {
        return Err(fails(
            "the ciphertext is not below this key's modulus: made with another key",
        ));
    }
    // No blinding: an offline check of files on the operator's own machine.
    let m = rsa::hazmat::rsa_decrypt_and_check::<NoRng>(key, None, &c)
        .map_err(|_| fails("RSA decryption failed"))?;
    let bytes = m.to_be_bytes();
    let digits = &bytes[bytes.iter().take_while(|&&b| b == 0).count()..];
    let mut block = vec![0u8; size.saturating_sub(digits.len())];
    block.extend_from_slice(digits);
    Ok(block)
}

fn decrypt_raw(key: &rsa::PrivateKey, ct: &[u8]) -> Outcome {
    let block = match raw_block(key, ct) {
        Ok(block) => block,
        Err(outcome) => return outcome,
    };
    let zeros = block.iter().take_while(|&&b| b == 0).count();
    if zeros >= MIN_RAW_ZEROS && plausible(&block[zeros..]) {
        Outcome::Opens(Scheme::RawRsa)
    } else {
        fails("decrypts to noise: encrypted with another key, or altered")
    }
}

/// PKCS#1 v1.5 type 2, checked explicitly: `00 02 PS(>= 8 non-zero) 00 M`. (The `rsa` crate's
/// own decryption answers a bad padding with a synthetic message — implicit rejection — which
/// cannot tell "does not open" apart.)
fn decrypt_pkcs1(key: &rsa::PrivateKey, ct: &[u8]) -> Outcome {
    let block = match raw_block(key, ct) {
        Ok(block) => block,
        Err(outcome) => return outcome,
    };
    let bad =
        || fails("PKCS#1 v1.5 padding does not check: encrypted with another key, or altered");
    if block.len() < 11 || block[0] != 0 || block[1] != 2 {
        return bad();
    }
    let Some(sep) = block[2..].iter().position(|&b| b == 0) else {
        return bad();
    };
    if sep < 8 {
        return bad();
    }
    if plausible(&block[2 + sep + 1..]) {
        Outcome::Opens(Scheme::Pkcs1)
    } else {
        fails("decrypts to bytes that are not text")
    }
}

/// The type `rsa_decrypt_and_check` needs when it is given no RNG; never called.
struct NoRng;

impl rsa::rand_core::TryRng for NoRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        dest.fill(0);
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for NoRng {}

/// Tries `text` (Base64, as stored) with `key`, reading it as `scheme` unless it is a
/// self-contained JSON value, which names its own transformation.
pub fn try_open(key: &rsa::PrivateKey, cert_sha1: &str, text: &str, scheme: Scheme) -> Outcome {
    let Some(bytes) = decode(text) else {
        return fails("not Base64");
    };
    // A binary ciphertext starts with `{` once in 256: only JSON that parses is self-contained.
    if bytes.first() == Some(&b'{')
        && let Ok(value) = serde_json::from_slice::<SelfContained>(&bytes)
    {
        return try_self_contained(key, cert_sha1, value);
    }
    open_bytes(key, &bytes, scheme)
}

fn open_bytes(key: &rsa::PrivateKey, ct: &[u8], scheme: Scheme) -> Outcome {
    match scheme {
        Scheme::RawRsa => decrypt_raw(key, ct),
        Scheme::Pkcs1 => decrypt_pkcs1(key, ct),
        Scheme::OaepSha1 => match key.decrypt(rsa::Oaep::<sha1::Sha1>::new(), ct) {
            Ok(plain) if plausible(&plain) => Outcome::Opens(Scheme::OaepSha1),
            Ok(_) => fails("decrypts to bytes that are not text"),
            Err(_) => fails("OAEP padding does not check: encrypted with another key, or altered"),
        },
    }
}

#[derive(serde::Deserialize)]
struct SelfContained {
    c: String,
    t: Option<String>,
    tp: Option<String>,
    tpd: Option<String>,
}

fn try_self_contained(key: &rsa::PrivateKey, cert_sha1: &str, value: SelfContained) -> Outcome {
    let transformation = value.t.as_deref().unwrap_or("RSA");
    let Some(scheme) = Scheme::from_transformation(transformation) else {
        return Outcome::Unsupported(format!(
            "self-contained value with transformation {transformation}"
        ));
    };
    let Some(ct) = decode(&value.c) else {
        return fails("self-contained value whose \"c\" is not Base64");
    };
    let ours = cert_sha1.replace(':', "");
    let wanted = value.tp.map(|tp| tp.to_ascii_uppercase());
    if let Some(tp) = &wanted
        && value
            .tpd
            .as_deref()
            .is_none_or(|d| d.eq_ignore_ascii_case("SHA-1"))
        && *tp != ours
    {
        return Outcome::Fails {
            reason: "made for another certificate".into(),
            thumbprint: Some(tp.clone()),
        };
    }
    match open_bytes(key, &ct, scheme) {
        Outcome::Fails { reason, .. } => Outcome::Fails {
            reason,
            thumbprint: wanted,
        },
        other => other,
    }
}
