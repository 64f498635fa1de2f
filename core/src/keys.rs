//! Access keys: format, checksum, peppered digest and display mask.
//!
//! A key looks like `ccp_` + 43 base62 characters of randomness (256 bits) + 6 base62
//! characters of CRC-32 over everything before them. The prefix makes leaked keys easy to
//! grep for and easy for secret scanners to spot; the checksum rejects typos and random
//! guesses before any lookup. Only `HMAC-SHA256(pepper, key)` is ever stored.
//!
//! (Over 400 lines only with its unit tests, which sit beside the code they check.)

use crate::secret::{Secret, SecretString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::Path;

pub const ACCESS_KEY_PREFIX: &str = "ccp_";
const SECRET_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;
/// Length of every well-formed access key.
pub const ACCESS_KEY_LEN: usize = ACCESS_KEY_PREFIX.len() + SECRET_CHARS + CHECKSUM_CHARS;
/// Shortest pepper accepted: 32 bytes, the HMAC-SHA256 block half.
pub const MIN_PEPPER_LEN: usize = 32;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not an access key. Never shown to clients: every variant gets the same 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("an access key is {ACCESS_KEY_LEN} characters long")]
    Length,
    #[error("an access key starts with {ACCESS_KEY_PREFIX}")]
    Prefix,
    #[error("an access key holds only letters and digits after its prefix")]
    Charset,
    #[error("the access key checksum does not match (mistyped key?)")]
    Checksum,
}

/// A well-formed access key (format and checksum checked). Redacted when printed.
#[derive(Clone)]
pub struct AccessKey(SecretString);

impl AccessKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = String::with_capacity(ACCESS_KEY_LEN);
        key.push_str(ACCESS_KEY_PREFIX);
        let mut pool = [0u8; 64];
        while key.len() < ACCESS_KEY_PREFIX.len() + SECRET_CHARS {
            // The OS random source failing is unrecoverable for a key generator.
            #[allow(clippy::expect_used)]
            getrandom::fill(&mut pool).expect("the operating system's random source failed");
            // Rejection sampling: 248 = 4 * 62, so `b % 62` stays uniform.
            for b in pool.iter().filter(|b| **b < 248) {
                if key.len() == ACCESS_KEY_PREFIX.len() + SECRET_CHARS {
                    break;
                }
                key.push(BASE62[usize::from(*b % 62)] as char);
            }
        }
        for c in checksum_chars(key.as_bytes()) {
            key.push(char::from(c));
        }
        Self(SecretString::new(key))
    }

    /// Checks length, prefix, alphabet and checksum, without any lookup.
    pub fn parse(candidate: &str) -> Result<Self, KeyFormatError> {
        if candidate.len() != ACCESS_KEY_LEN {
            return Err(KeyFormatError::Length);
        }
        let Some(rest) = candidate.strip_prefix(ACCESS_KEY_PREFIX) else {
            return Err(KeyFormatError::Prefix);
        };
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyFormatError::Charset);
        }
        let (body, checksum) = candidate.split_at(ACCESS_KEY_LEN - CHECKSUM_CHARS);
        let expected = checksum_chars(body.as_bytes());
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &expected[..],
            checksum.as_bytes(),
        )) {
            return Err(KeyFormatError::Checksum);
        }
        Ok(Self(SecretString::new(candidate.to_owned())))
    }

    /// The raw key. Shown to a person once, at issue time; never logged or stored.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The display form, e.g. `ccp_ab12…wxyz`: enough to tell keys apart, useless to an attacker.
    pub fn masked(&self) -> String {
        mask(self.expose())
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessKey({})", self.masked())
    }
}

/// The display mask of a key-like string: prefix plus four characters, an ellipsis, the last
/// four characters. Strings too short to mask safely become `****`.
pub fn mask(key: &str) -> String {
    let head = ACCESS_KEY_PREFIX.len() + 4;
    if key.len() < head + 8 || !key.is_ascii() {
        return "****".to_owned();
    }
    format!("{}…{}", &key[..head], &key[key.len() - 4..])
}

/// The checksum characters (base62 ASCII) of a key's body: on the stack, as every request's
/// key check computes them.
fn checksum_chars(data: &[u8]) -> [u8; CHECKSUM_CHARS] {
    let mut n = u64::from(crc32fast::hash(data));
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// `HMAC-SHA256(pepper, key)`: what the database stores and the caches are keyed by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyDigest(pub [u8; 32]);

/// A digest hashes as its first eight bytes: the output of an HMAC under a secret pepper is
/// already uniform, and no one without the pepper can choose it, so hashing it again (SipHash,
/// by default) buys nothing. See [`DigestHashing`].
impl std::hash::Hash for KeyDigest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// The hasher of maps keyed by [`KeyDigest`]: it passes the digest's own bits through.
#[derive(Debug, Clone, Copy, Default)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    /// Only digests are hashed with it; anything else still gets a usable hash (FNV-1a).
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

pub type DigestHashing = std::hash::BuildHasherDefault<DigestHasher>;

impl KeyDigest {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({}…)", hex::encode(&self.0[..4]))
    }
}

/// The server-side HMAC key. Without it no digest can be computed; there is no fallback.
#[derive(Clone)]
pub struct Pepper {
    /// The keyed HMAC state, cloned per digest so the key schedule runs once.
    mac: Hmac<Sha256>,
}

/// Why a server-side secret (pepper, session key) could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error(
        "not configured: with PostgreSQL every instance must be given the same secret \
         (CCP_SESSION_SECRET or CCP_SESSION_SECRET_FILE)"
    )]
    Missing,
    #[error("the secret must be at least {MIN_PEPPER_LEN} bytes long")]
    TooShort,
    #[error("cannot read the pepper file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create the pepper file {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
}

impl Pepper {
    pub fn new(secret: &Secret<String>) -> Result<Self, SecretFileError> {
        let bytes = secret.expose().trim().as_bytes();
        if bytes.len() < MIN_PEPPER_LEN {
            return Err(SecretFileError::TooShort);
        }
        // HMAC accepts keys of any length, so this cannot fail.
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(bytes).map_err(|_| SecretFileError::TooShort)?;
        Ok(Self { mac })
    }

    /// Reads a pepper file; fails if it is missing or unreadable.
    pub fn from_file(path: &Path) -> Result<Self, SecretFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&SecretString::new(text))
    }

    /// Reads the pepper file, creating it the first time (see [`load_or_create_secret`]).
    /// Used only on the embedded default; production passes the pepper in explicitly.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretFileError> {
        Self::new(&load_or_create_secret(path)?)
    }

    pub fn digest(&self, key: &AccessKey) -> KeyDigest {
        let mut mac = self.mac.clone();
        mac.update(key.expose().as_bytes());
        KeyDigest(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

/// Reads a generated secret file, creating it the first time: 32 random bytes as hex, mode
/// 0600. Only for the embedded default, where this machine owns the database too.
pub fn load_or_create_secret(path: &Path) -> Result<SecretString, SecretFileError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map(SecretString::new)
            .map_err(|source| SecretFileError::Read {
                path: path.display().to_string(),
                source,
            })
    };
    if path.exists() {
        return read(path);
    }
    let create_err = |source| SecretFileError::Create {
        path: path.display().to_string(),
        source,
    };
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| create_err(std::io::Error::other(e.to_string())))?;
    let text = SecretString::new(hex::encode(raw));
    zeroize::Zeroize::zeroize(&mut raw);
    // Written aside, then linked into place: a concurrent reader never sees a half-written
    // file, and of two processes creating it at once, one wins and both use its secret.
    let aside = path.with_extension(format!("new-{}", std::process::id()));
    let _ = std::fs::remove_file(&aside);
    write_private_file(&aside, text.expose().as_bytes()).map_err(create_err)?;
    let linked = std::fs::hard_link(&aside, path);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(create_err(e)),
    }
}

/// Creates `path` with mode 0600 (never readable by others, even briefly) and writes `data`.
pub fn write_private_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pepper() -> Pepper {
        Pepper::new(&SecretString::from("0123456789abcdef0123456789abcdef")).unwrap()
    }

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = AccessKey::generate();
        let b = AccessKey::generate();
        assert_eq!(a.expose().len(), ACCESS_KEY_LEN);
        assert!(a.expose().starts_with("ccp_"));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(AccessKey::parse(a.expose()).unwrap().expose(), a.expose());
    }

    #[test]
    fn a_single_typo_fails_the_checksum() {
        let key = AccessKey::generate();
        let raw = key.expose();
        for pos in ACCESS_KEY_PREFIX.len()..ACCESS_KEY_LEN {
            let mut bytes = raw.as_bytes().to_vec();
            bytes[pos] = if bytes[pos] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(
                AccessKey::parse(&typo).unwrap_err(),
                KeyFormatError::Checksum,
                "pos {pos}"
            );
        }
    }

    #[test]
    fn malformed_keys_are_rejected_before_any_lookup() {
        let good = AccessKey::generate();
        let raw = good.expose();
        assert_eq!(AccessKey::parse("").unwrap_err(), KeyFormatError::Length);
        assert_eq!(
            AccessKey::parse(&"a".repeat(10_000)).unwrap_err(),
            KeyFormatError::Length
        );
        assert_eq!(
            AccessKey::parse(&raw.replacen("ccp_", "xyz_", 1)).unwrap_err(),
            KeyFormatError::Prefix
        );
        let with_slash = format!("{}%2F{}", &raw[..10], &raw[13..]);
        assert_eq!(
            AccessKey::parse(&with_slash).unwrap_err(),
            KeyFormatError::Charset
        );
        let unicode = format!("{}é{}", &raw[..10], &raw[12..]);
        assert_eq!(
            AccessKey::parse(&unicode).unwrap_err(),
            KeyFormatError::Charset
        );
    }

    #[test]
    fn digest_depends_on_key_and_pepper() {
        let key = AccessKey::generate();
        let other = AccessKey::generate();
        let p1 = pepper();
        let p2 = Pepper::new(&SecretString::from("another-pepper-another-pepper-xx")).unwrap();
        assert_eq!(p1.digest(&key), p1.digest(&key));
        assert_ne!(p1.digest(&key), p1.digest(&other));
        assert_ne!(p1.digest(&key), p2.digest(&key));
    }

    #[test]
    fn digest_matches_a_reference_hmac() {
        // RFC 4231-style check that we compute plain HMAC-SHA256(pepper, key).
        let key = AccessKey::parse(&{
            let body = format!("ccp_{}", "A".repeat(SECRET_CHARS));
            let sum = checksum_chars(body.as_bytes());
            format!("{body}{}", std::str::from_utf8(&sum).unwrap())
        })
        .unwrap();
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
        mac.update(key.expose().as_bytes());
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(pepper().digest(&key).0, expected);
    }

    #[test]
    fn short_peppers_are_refused() {
        assert!(matches!(
            Pepper::new(&SecretString::from("short")),
            Err(SecretFileError::TooShort)
        ));
    }

    #[test]
    fn pepper_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        let key = AccessKey::generate();
        let first = Pepper::load_or_create(&path).unwrap();
        let second = Pepper::load_or_create(&path).unwrap();
        assert_eq!(first.digest(&key), second.digest(&key));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn missing_pepper_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Pepper::from_file(&dir.path().join("nope")),
            Err(SecretFileError::Read { .. })
        ));
    }

    #[test]
    fn masks_show_prefix_and_tail_only() {
        let key = AccessKey::generate();
        let masked = key.masked();
        let raw = key.expose();
        assert_eq!(masked, format!("{}…{}", &raw[..8], &raw[raw.len() - 4..]));
        assert_eq!(mask("short"), "****");
        assert!(!format!("{key:?}").contains(&raw[8..raw.len() - 4]));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = AccessKey::parse(&s);
        }

        #[test]
        fn random_well_shaped_strings_almost_never_pass(body in "[A-Za-z0-9]{49}") {
            // 1 in 2^32 would pass by chance; proptest's 256 cases will not hit it.
            let candidate = format!("ccp_{body}");
            prop_assert!(AccessKey::parse(&candidate).is_err());
        }
    }
}
