//! Bedrock error responses → the Anthropic error the client gets (reference §4.2).
//!
//! The error code comes from the `x-amzn-ErrorType` header, parsed as botocore does
//! (`code.split(':')[0].rsplit('#')[-1]`), else from the body's `__type` / `code`, else from
//! the status. Gateway-side faults (credentials, model mapping) are `api_error` 500: never
//! blamed on the client.

use crate::api_error::{ApiError, ApiErrorKind};
use serde::Deserialize;

/// A Bedrock error, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockError {
    pub status: u16,
    /// e.g. `ThrottlingException`; empty when nothing named it.
    pub code: String,
    pub message: String,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(rename = "__type")]
    type_name: Option<String>,
    #[serde(alias = "Code")]
    code: Option<String>,
    #[serde(rename = "originalStatusCode")]
    original_status_code: Option<u16>,
}

fn short_code(raw: &str) -> &str {
    let head = raw.split(':').next().unwrap_or(raw);
    head.rsplit('#').next().unwrap_or(head)
}

impl BedrockError {
    pub fn parse(status: u16, error_type_header: Option<&str>, body: &[u8]) -> (Self, Option<u16>) {
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let code = error_type_header
            .or(parsed.type_name.as_deref())
            .or(parsed.code.as_deref())
            .map(short_code)
            .unwrap_or_default()
            .to_owned();
        (
            Self {
                status,
                code,
                message: parsed.message.unwrap_or_default(),
            },
            parsed.original_status_code,
        )
    }

    /// Bedrock refused the request over its thinking: a signature it does not accept ("Invalid
    /// `signature` in `thinking` block"), or a thinking-history rule ("a final assistant
    /// message must start with a thinking block", "thinking or redacted_thinking blocks in
    /// the latest assistant message cannot be modified", a `reasoningContent` complaint).
    /// Worth one retry without thinking.
    pub fn is_thinking_problem(&self) -> bool {
        self.status == 400 && {
            let m = self.message.to_ascii_lowercase();
            m.contains("signature")
                || m.contains("thinking")
                || m.contains("reasoningcontent")
                || m.contains("reasoning block")
        }
    }

    /// The client-facing error.
    pub fn to_api_error(&self, original_status: Option<u16>) -> ApiError {
        use ApiErrorKind::*;
        let (status, kind) = match self.code.as_str() {
            "ThrottlingException" | "ServiceQuotaExceededException" => (429, RateLimit),
            "ModelNotReadyException" | "ServiceUnavailableException" => (529, Overloaded),
            "ModelTimeoutException" => (504, Api),
            "ModelErrorException" | "ModelStreamErrorException" => match original_status {
                Some(429) => (429, RateLimit),
                Some(503 | 529) => (529, Overloaded),
                _ => (500, Api),
            },
            "ValidationException" => {
                let lower = self.message.to_ascii_lowercase();
                if is_gateway_config_problem(&lower) {
                    (500, Api)
                } else {
                    (400, InvalidRequest)
                }
            }
            "AccessDeniedException"
            | "ResourceNotFoundException"
            | "UnrecognizedClientException"
            | "InternalServerException" => (500, Api),
            _ => match self.status {
                429 => (429, RateLimit),
                503 => (529, Overloaded),
                401 | 403 | 404 => (500, Api),
                400..=499 => (400, InvalidRequest),
                _ => (500, Api),
            },
        };
        let message = match (kind, status) {
            (InvalidRequest, _) if looks_like_context_overflow(&self.message) => {
                format!("prompt is too long (Amazon Bedrock: {})", self.message)
            }
            (InvalidRequest, _) => format!("Amazon Bedrock rejected the request: {}", self.message),
            (RateLimit, _) => "Amazon Bedrock is rate limiting this key. Retry shortly.".to_owned(),
            (Overloaded, _) => "Amazon Bedrock is overloaded. Retry shortly.".to_owned(),
            (_, 504) => "Amazon Bedrock did not answer in time.".to_owned(),
            // Credential or mapping faults: the client can do nothing about them.
            _ => "The gateway's Bedrock fallback failed; an administrator has to check its \
                  Bedrock key and model mapping."
                .to_owned(),
        };
        ApiError::owned(status, kind, message)
    }
}

/// ValidationExceptions that are the gateway's fault (reference §7.17).
fn is_gateway_config_problem(lower: &str) -> bool {
    lower.contains("on-demand throughput")
        || lower.contains("inference profile")
        || lower.contains("model identifier is invalid")
        || lower.contains("did not allow prompt caching")
}

fn looks_like_context_overflow(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("too long")
        || m.contains("too many tokens")
        || m.contains("context length")
        || m.contains("context window")
        || m.contains("maximum context")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, header: Option<&str>, body: &str) -> ApiError {
        let (err, original) = BedrockError::parse(status, header, body.as_bytes());
        err.to_api_error(original)
    }

    #[test]
    fn the_reference_table() {
        let cases: &[(u16, &str, u16, &str)] = &[
            (
                400,
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                400,
                "invalid_request_error",
            ),
            (403, "AccessDeniedException", 500, "api_error"),
            (404, "ResourceNotFoundException", 500, "api_error"),
            (429, "ThrottlingException", 429, "rate_limit_error"),
            (
                400,
                "ServiceQuotaExceededException",
                429,
                "rate_limit_error",
            ),
            (429, "ModelNotReadyException", 529, "overloaded_error"),
            (503, "ServiceUnavailableException", 529, "overloaded_error"),
            (500, "InternalServerException", 500, "api_error"),
            (408, "ModelTimeoutException", 504, "api_error"),
            (401, "", 500, "api_error"),
            (418, "", 400, "invalid_request_error"),
            (502, "", 500, "api_error"),
        ];
        for &(status, header, want_status, want_type) in cases {
            let header = (!header.is_empty()).then_some(header);
            let e = map(status, header, r#"{"message":"m"}"#);
            assert_eq!(
                (e.status, e.kind.type_name()),
                (want_status, want_type),
                "{status} {header:?}"
            );
        }
    }

    #[test]
    fn codes_come_from_the_header_then_the_body() {
        let (e, _) = BedrockError::parse(
            400,
            None,
            br#"{"__type":"com.amazon#ThrottlingException","Message":"slow"}"#,
        );
        assert_eq!(e.code, "ThrottlingException");
        assert_eq!(e.message, "slow");
        let e = map(
            424,
            Some("ModelErrorException"),
            r#"{"message":"x","originalStatusCode":529}"#,
        );
        assert_eq!((e.status, e.kind.type_name()), (529, "overloaded_error"));
        let e = map(
            424,
            Some("ModelErrorException"),
            r#"{"message":"x","originalStatusCode":429}"#,
        );
        assert_eq!(e.status, 429);
    }

    #[test]
    fn context_overflow_and_config_faults() {
        let e = map(
            400,
            Some("ValidationException"),
            r#"{"message":"Input is too long for requested model."}"#,
        );
        assert!(e.message.starts_with("prompt is too long"), "{}", e.message);
        let e = map(
            400,
            Some("ValidationException"),
            r#"{"message":"Invocation of model ID x with on-demand throughput isn't supported."}"#,
        );
        assert_eq!((e.status, e.kind.type_name()), (500, "api_error"));
        let (sig, _) = BedrockError::parse(
            400,
            Some("ValidationException"),
            br#"{"message":"messages.1.content.0: Invalid `signature` in `thinking` block"}"#,
        );
        assert!(sig.is_thinking_problem());
        for message in [
            "messages.3.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a thinking block",
            "messages.1.content.1: `thinking` or `redacted_thinking` blocks in the latest assistant message cannot be modified.",
            "The model returned the following errors: reasoningContent is not supported here",
        ] {
            let body = serde_json::to_vec(&serde_json::json!({ "message": message })).unwrap();
            let (e, _) = BedrockError::parse(400, Some("ValidationException"), &body);
            assert!(e.is_thinking_problem(), "{message}");
        }
        let (other, _) =
            BedrockError::parse(400, Some("ValidationException"), br#"{"message":"bad"}"#);
        assert!(!other.is_thinking_problem());
        let (throttled, _) = BedrockError::parse(
            429,
            Some("ThrottlingException"),
            br#"{"message":"thinking too fast"}"#,
        );
        assert!(!throttled.is_thinking_problem());
    }
}
