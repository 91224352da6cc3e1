//! A reader for Sun's JKS keystore format (`0xFEEDFEED`), the type Carbon 4.4.x ships
//! (`wso2carbon.jks`). No maintained Rust crate reads it, and the format is small:
//!
//! ```text
//! u32 magic 0xFEEDFEED, u32 version (1 or 2), u32 count, then per entry:
//!   u32 tag (1 = private key, 2 = trusted certificate), UTF alias, u64 date (ms)
//!   tag 1: u32 len + EncryptedPrivateKeyInfo (DER), u32 chain length, certificates
//!   tag 2: a certificate
//!   certificate: (version 2 only) UTF type ("X.509"), u32 len + DER
//! 20 bytes: SHA-1(password as UTF-16BE || "Mighty Aphrodite" || everything before)
//! ```
//!
//! `UTF` is Java's `writeUTF`: a u16 length and modified UTF-8. A private key is protected
//! with Sun's `KeyProtector` (OID 1.3.6.1.4.1.42.2.17.1.1): `salt(20) || data || check(20)`,
//! keystream = SHA-1(password || salt), SHA-1(password || previous), ...; the plain data is a
//! PKCS#8 `PrivateKeyInfo` and `check` = SHA-1(password || plain). Passwords are UTF-16BE.

use sha1::{Digest, Sha1};

const MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
const WHITENER: &[u8] = b"Mighty Aphrodite";
/// DER of OID 1.3.6.1.4.1.42.2.17.1.1 (Sun's key protector).
const KEY_PROTECTOR_OID: &[u8] = &[
    0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x11, 0x01, 0x01,
];

/// Why a JKS file or one of its keys could not be read. Holds no password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JksError {
    #[error("not a JKS keystore")]
    NotJks,
    #[error("a JCEKS keystore, which this tool does not read (convert it to PKCS12 with keytool)")]
    Jceks,
    #[error("the keystore password is wrong (or the file was altered)")]
    BadPassword,
    #[error("the key password is wrong (or the key was altered)")]
    BadKeyPassword,
    #[error("damaged at byte {0}")]
    Truncated(usize),
    #[error("{0}")]
    Format(String),
}

/// One entry, certificates as DER.
#[derive(Clone)]
pub enum JksEntry {
    Key {
        alias: String,
        /// The protected key (`EncryptedPrivateKeyInfo`); open with [`recover_key`].
        protected: Vec<u8>,
        chain: Vec<Vec<u8>>,
    },
    Cert {
        alias: String,
        der: Vec<u8>,
    },
}

impl std::fmt::Debug for JksEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JksEntry::Key { alias, chain, .. } => write!(f, "Key({alias}, chain {})", chain.len()),
            JksEntry::Cert { alias, .. } => write!(f, "Cert({alias})"),
        }
    }
}

impl JksEntry {
    pub fn alias(&self) -> &str {
        match self {
            JksEntry::Key { alias, .. } | JksEntry::Cert { alias, .. } => alias,
        }
    }
}

/// Whether `bytes` start like a JKS (or JCEKS) file.
pub fn looks_like_jks(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && matches!(be32(&bytes[..4]), MAGIC | JCEKS_MAGIC)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn utf16be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JksError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(JksError::Truncated(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u16(&mut self) -> Result<usize, JksError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u32(&mut self) -> Result<u32, JksError> {
        self.take(4).map(be32)
    }
    fn len32(&mut self) -> Result<usize, JksError> {
        let n = self.u32()?;
        usize::try_from(n).map_err(|_| JksError::Truncated(self.at))
    }
    fn utf(&mut self) -> Result<String, JksError> {
        let n = self.u16()?;
        // Modified UTF-8 differs from UTF-8 only for NUL and supplementary characters, which
        // aliases do not use; a lossy read keeps the rest exact.
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn cert(&mut self, version: u32) -> Result<Vec<u8>, JksError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != "X.509" {
                return Err(JksError::Format(format!("certificate type {kind}")));
            }
        }
        let n = self.len32()?;
        Ok(self.take(n)?.to_vec())
    }
}

/// Reads every entry after checking the file's integrity digest with `password`.
pub fn parse(bytes: &[u8], password: &str) -> Result<Vec<JksEntry>, JksError> {
    if bytes.len() < 4 {
        return Err(JksError::NotJks);
    }
    match be32(&bytes[..4]) {
        MAGIC => {}
        JCEKS_MAGIC => return Err(JksError::Jceks),
        _ => return Err(JksError::NotJks),
    }
    if bytes.len() < 32 {
        return Err(JksError::Truncated(bytes.len()));
    }
    let (body, digest) = bytes.split_at(bytes.len() - 20);
    let mut sha = Sha1::new();
    sha.update(utf16be(password));
    sha.update(WHITENER);
    sha.update(body);
    if sha.finalize().as_slice() != digest {
        return Err(JksError::BadPassword);
    }
    let mut r = Reader { bytes: body, at: 4 };
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(JksError::Format(format!("version {version}")));
    }
    let count = r.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        r.take(8)?; // creation date
        match tag {
            1 => {
                let n = r.len32()?;
                let protected = r.take(n)?.to_vec();
                let chain_len = r.u32()?;
                let chain = (0..chain_len)
                    .map(|_| r.cert(version))
                    .collect::<Result<Vec<_>, _>>()?;
                entries.push(JksEntry::Key {
                    alias,
                    protected,
                    chain,
                });
            }
            2 => {
                let der = r.cert(version)?;
                entries.push(JksEntry::Cert { alias, der });
            }
            other => return Err(JksError::Format(format!("entry tag {other}"))),
        }
    }
    if r.at != body.len() {
        return Err(JksError::Format("bytes after the last entry".into()));
    }
    Ok(entries)
}

/// A DER TLV at the start of `b`: (tag, contents, rest).
fn tlv(b: &[u8]) -> Result<(u8, &[u8], &[u8]), JksError> {
    let bad = || JksError::Format("bad protected key encoding".into());
    let (&tag, rest) = b.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Opens a key protected by Sun's `KeyProtector`; returns the PKCS#8 DER.
pub fn recover_key(protected: &[u8], key_password: &str) -> Result<Vec<u8>, JksError> {
    let (tag, info, _) = tlv(protected)?;
    let (alg_tag, alg, rest) = tlv(info)?;
    let (data_tag, data, _) = tlv(rest)?;
    if tag != 0x30 || alg_tag != 0x30 || data_tag != 0x04 {
        return Err(JksError::Format("bad protected key encoding".into()));
    }
    if !alg.starts_with(KEY_PROTECTOR_OID) {
        return Err(JksError::Format(
            "the key is not protected with Sun's JKS key protector".into(),
        ));
    }
    if data.len() < 40 {
        return Err(JksError::Format("protected key too short".into()));
    }
    let (salt, rest) = data.split_at(20);
    let (encrypted, check) = rest.split_at(rest.len() - 20);
    let password = utf16be(key_password);
    let mut plain = Vec::with_capacity(encrypted.len());
    let mut digest: Vec<u8> = salt.to_vec();
    for chunk in encrypted.chunks(20) {
        let mut sha = Sha1::new();
        sha.update(&password);
        sha.update(&digest);
        digest = sha.finalize().to_vec();
        plain.extend(chunk.iter().zip(&digest).map(|(c, k)| c ^ k));
    }
    let mut sha = Sha1::new();
    sha.update(&password);
    sha.update(&plain);
    if sha.finalize().as_slice() != check {
        return Err(JksError::BadKeyPassword);
    }
    Ok(plain)
}
