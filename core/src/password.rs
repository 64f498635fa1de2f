//! Admin passwords: argon2id (the argon2 crate's defaults: 19 MiB, 2 passes, 1 lane, the
//! OWASP baseline) in PHC strings. Verifying against an unknown account runs the same work
//! against a fixed hash, so a login attempt takes as long whether or not the user exists.

use crate::secret::SecretString;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use std::sync::LazyLock;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be {MIN_LENGTH} to {MAX_LENGTH} characters")]
    Length,
    #[error("cannot hash the password")]
    Hash,
}

/// Checks the policy: length only (long passphrases beat composition rules).
pub fn check_policy(password: &SecretString) -> Result<(), PasswordError> {
    let n = password.expose().chars().count();
    if (MIN_LENGTH..=MAX_LENGTH).contains(&n) {
        Ok(())
    } else {
        Err(PasswordError::Length)
    }
}

/// The PHC string of `password` under a fresh random salt.
pub fn hash(password: &SecretString) -> Result<String, PasswordError> {
    check_policy(password)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| PasswordError::Hash)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Hash)?;
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Whether `password` matches the stored PHC string; a malformed one matches nothing.
pub fn verify(password: &SecretString, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

static DUMMY: LazyLock<String> = LazyLock::new(|| {
    hash(&SecretString::from("a password nobody has, for timing")).unwrap_or_default()
});

/// The same work as [`verify`], for a username that does not exist; always `false`.
pub fn verify_unknown(password: &SecretString) -> bool {
    let _ = verify(password, &DUMMY);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let pw = SecretString::from("correct horse battery staple");
        let a = hash(&pw).unwrap();
        let b = hash(&pw).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(!a.contains("horse"));
        assert!(verify(&pw, &a));
        assert!(!verify(
            &SecretString::from("correct horse battery stapler"),
            &a
        ));
        assert!(!verify(&pw, "not a hash"));
        assert!(!verify_unknown(&pw));
    }

    #[test]
    fn the_policy_is_a_length() {
        assert_eq!(
            hash(&SecretString::from("short")),
            Err(PasswordError::Length)
        );
        assert_eq!(
            check_policy(&SecretString::from("x".repeat(MAX_LENGTH + 1))),
            Err(PasswordError::Length)
        );
        assert!(check_policy(&SecretString::from("twelve chars")).is_ok());
    }
}
