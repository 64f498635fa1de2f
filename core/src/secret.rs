//! Types for values that must never be printed: access keys, client credentials, Bedrock keys,
//! the pepper, passwords and signing secrets.
//!
//! [`Secret`] prints `[REDACTED]` through both `Debug` and `Display`, has no `Serialize`
//! implementation, and zeroes its memory when dropped. Reading the value takes an explicit
//! [`Secret::expose`] call, which is easy to find in review.

use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A value that is redacted when formatted and zeroed when dropped.
pub struct Secret<T: Zeroize>(Zeroizing<T>);

/// The most common secret: a string such as a token or an API key.
pub type SecretString = Secret<String>;

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret value itself. Callers must not log or store it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Self::new((*self.0).clone())
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"same secret", b"same secret"));
        assert!(!constant_time_eq(b"same secret", b"same secreT"));
        assert!(!constant_time_eq(b"same secret", b"same secret!"));
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let s = SecretString::from("sk-ant-CANARY-value");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([REDACTED])");
        assert_eq!(s.expose(), "sk-ant-CANARY-value");
    }

    #[test]
    fn clone_keeps_the_value() {
        let s = Secret::new(vec![1u8, 2, 3]);
        assert_eq!(s.clone().expose(), &vec![1, 2, 3]);
    }
}
