//! The error body every client-facing error uses, in the Anthropic API's own shape:
//! `{"type":"error","error":{"type":"not_found_error","message":"…"}}`.
//!
//! Claude Code parses this shape and shows the message to the user, so messages are short,
//! say what to do, and never carry a URL, a key or any other secret.

use serde::Serialize;
use std::borrow::Cow;

/// Anthropic's error types, with the HTTP status each one goes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    RequestTooLarge,
    RateLimit,
    Api,
    Overloaded,
}

impl ApiErrorKind {
    /// The `error.type` string of the Anthropic API.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimit => "rate_limit_error",
            Self::Api => "api_error",
            Self::Overloaded => "overloaded_error",
        }
    }

    /// The status Anthropic answers this error type with.
    pub fn default_status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Authentication => 401,
            Self::Permission => 403,
            Self::NotFound => 404,
            Self::RequestTooLarge => 413,
            Self::RateLimit => 429,
            Self::Api => 500,
            Self::Overloaded => 529,
        }
    }
}

/// A client-facing error: status, Anthropic error type and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: ApiErrorKind,
    pub message: Cow<'static, str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    message: &'a str,
}

impl ApiError {
    pub const fn new(status: u16, kind: ApiErrorKind, message: &'static str) -> Self {
        Self {
            status,
            kind,
            message: Cow::Borrowed(message),
        }
    }

    /// An error with a message built at run time (never from a secret).
    pub fn owned(status: u16, kind: ApiErrorKind, message: String) -> Self {
        Self {
            status,
            kind,
            message: Cow::Owned(message),
        }
    }

    /// The answer for every access key that does not authenticate: unknown, revoked,
    /// expired or malformed keys all get these same bytes.
    pub const KEY_NOT_FOUND: ApiError = ApiError::new(
        404,
        ApiErrorKind::NotFound,
        "Unknown access key. Check the /ak/<access key> part of ANTHROPIC_BASE_URL.",
    );

    /// The serialised JSON body.
    pub fn body(&self) -> Vec<u8> {
        let envelope = Envelope {
            ty: "error",
            error: Body {
                ty: self.kind.type_name(),
                message: &self.message,
            },
        };
        // Serialising two strings into a Vec cannot fail.
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_anthropic_shape() {
        let v: serde_json::Value = serde_json::from_slice(&ApiError::KEY_NOT_FOUND.body()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "not_found_error");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("access key")
        );
    }

    #[test]
    fn kinds_carry_anthropic_statuses() {
        assert_eq!(ApiErrorKind::RequestTooLarge.default_status(), 413);
        assert_eq!(ApiErrorKind::Overloaded.default_status(), 529);
        assert_eq!(ApiErrorKind::RateLimit.type_name(), "rate_limit_error");
    }
}
