//! Every error the gateway answers itself, in one place: each knows its status, its Anthropic
//! error type, the message Claude Code shows the user, and the label it is counted under.
//!
//! Errors relayed from an upstream (a Plan 429 passed through, a Bedrock error translated)
//! are not here: the gateway did not decide those.
//!
//! (Over 400 lines only with its unit tests, which sit beside the table they check.)

use ccp_core::api_error::{ApiError, ApiErrorKind};
use pingora::{Error, ErrorSource, ErrorType};
use std::borrow::Cow;

/// Why the Anthropic API (Plan) could not be used, from the connection error Pingora saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFault {
    /// The Plan host resolved to no address (DNS down, or no network).
    NoAddress,
    Refused,
    Tls,
    ConnectTimeout,
    /// Connected, but the answer (or the rest of the request) did not move in time.
    ReadTimeout,
    Closed,
    Other,
}

impl PlanFault {
    pub fn from_error_type(etype: &ErrorType) -> Self {
        match etype {
            ErrorType::ConnectNoRoute => Self::NoAddress,
            ErrorType::ConnectRefused => Self::Refused,
            ErrorType::TLSHandshakeFailure
            | ErrorType::TLSHandshakeTimedout
            | ErrorType::TLSWantX509Lookup
            | ErrorType::InvalidCert
            | ErrorType::HandshakeError => Self::Tls,
            ErrorType::ConnectTimedout => Self::ConnectTimeout,
            ErrorType::ReadTimedout | ErrorType::WriteTimedout => Self::ReadTimeout,
            ErrorType::ConnectionClosed => Self::Closed,
            _ => Self::Other,
        }
    }

    /// The cause in words, for the client's message and the log.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoAddress => "its host name did not resolve to any address",
            Self::Refused => "the connection was refused",
            Self::Tls => "the TLS handshake failed",
            Self::ConnectTimeout => "connecting timed out",
            Self::ReadTimeout => "it stopped answering",
            Self::Closed => "it closed the connection before answering",
            Self::Other => "the connection failed",
        }
    }

    fn is_timeout(self) -> bool {
        matches!(self, Self::ConnectTimeout | Self::ReadTimeout)
    }
}

/// An error the gateway answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// A path outside `/ak/{key}/…` and the health checks.
    NotFound,
    /// A keyed path the gateway does not forward.
    UnknownApiPath,
    /// The access key is unknown, revoked, expired, or its user is disabled.
    KeyRejected,
    /// The key store could not be asked.
    AuthUnavailable,
    TooLarge,
    BadContentLength,
    UpgradeRefused,
    /// The request body arrived too slowly.
    ClientTimeout,
    /// The request body could not be read to its end (the client's connection failed).
    BodyUnreadable,
    /// Plan could not be used and nothing else served the request.
    Plan(PlanFault),
    /// Bedrock direct (circuit open) could not serve; the mapped Bedrock error.
    Bedrock(ApiError),
    /// A request head with a bare LF line ending.
    BareLineFeed,
    /// `Content-Length` and `Transfer-Encoding` in one request (a smuggling vector).
    AmbiguousFraming,
    /// An HTTP/1.0 request that may carry a body but has no `Content-Length`.
    LengthRequired,
    /// A fault in the gateway's own code (a hook failed for no network reason). No known
    /// input reaches it; it is counted so that one would be noticed.
    Internal,
    /// The user routes `bedrock_only` but the access key has no Bedrock API key.
    NoBedrockKey,
    /// A `bedrock_only` user's monthly Bedrock budget is used up.
    OverBudget {
        budget_micro_usd: i64,
        spend_micro_usd: i64,
        resets_at: chrono::DateTime<chrono::Utc>,
        /// Seconds from the refusal to `resets_at` (the gateway's clock; at least 1).
        resets_in_secs: u32,
    },
    /// A `bedrock_only` user's budget could not be checked (database unavailable).
    BudgetUnknown,
}

const PLAN_HELP: &str = "Retry shortly; if it persists, the gateway's administrator can check its network and CCP_PLAN_BASE_URL.";

impl GatewayError {
    /// The refusal of a `bedrock_only` request over its budget, at `now`.
    pub fn over_budget(
        budget_micro_usd: i64,
        spend_micro_usd: i64,
        resets_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let left = (resets_at - now).num_seconds().max(1);
        Self::OverBudget {
            budget_micro_usd,
            spend_micro_usd,
            resets_at,
            resets_in_secs: u32::try_from(left).unwrap_or(u32::MAX),
        }
    }

    /// The status, Anthropic error type and message sent to the client.
    pub fn api_error(&self) -> ApiError {
        use ApiErrorKind::*;
        let fixed = |status, kind, message: &'static str| ApiError::new(status, kind, message);
        match self {
            Self::NotFound => fixed(404, NotFound, "Not found."),
            Self::UnknownApiPath => fixed(
                404,
                NotFound,
                "Not found: the gateway forwards /v1/… and /api/… paths only.",
            ),
            Self::KeyRejected => ApiError::KEY_NOT_FOUND,
            Self::AuthUnavailable => fixed(
                503,
                Overloaded,
                "The gateway cannot check access keys right now. Retry shortly.",
            ),
            Self::TooLarge => fixed(
                413,
                RequestTooLarge,
                "Request body is larger than the gateway accepts (32 MiB by default).",
            ),
            Self::BadContentLength => fixed(400, InvalidRequest, "Invalid Content-Length header."),
            Self::UpgradeRefused => fixed(
                400,
                InvalidRequest,
                "Protocol upgrades are not supported on this endpoint.",
            ),
            Self::ClientTimeout => {
                fixed(408, InvalidRequest, "The request body arrived too slowly.")
            }
            Self::BodyUnreadable => fixed(
                400,
                InvalidRequest,
                "The request body could not be read to its end.",
            ),
            Self::Plan(fault) if fault.is_timeout() => ApiError {
                status: 504,
                kind: Api,
                message: Cow::Owned(format!(
                    "The Anthropic API did not answer in time: {}. {PLAN_HELP}",
                    fault.describe()
                )),
            },
            Self::Plan(fault) => ApiError {
                status: 502,
                kind: Api,
                message: Cow::Owned(format!(
                    "The gateway could not reach the Anthropic API: {}. {PLAN_HELP}",
                    fault.describe()
                )),
            },
            Self::Bedrock(error) => error.clone(),
            Self::BareLineFeed => fixed(
                400,
                InvalidRequest,
                "Malformed request: lines of the request head must end in CRLF.",
            ),
            Self::AmbiguousFraming => fixed(
                400,
                InvalidRequest,
                "Malformed request: Content-Length and Transfer-Encoding must not both be sent.",
            ),
            Self::LengthRequired => fixed(
                411,
                InvalidRequest,
                "An HTTP/1.0 request with a body needs a Content-Length header.",
            ),
            Self::Internal => fixed(500, Api, "Internal gateway error. Retry the request."),
            Self::NoBedrockKey => fixed(
                403,
                Permission,
                "This user is set to use Amazon Bedrock only, but this access key has no Bedrock API key. Ask the gateway's administrator to register one for this key.",
            ),
            Self::OverBudget {
                budget_micro_usd,
                spend_micro_usd,
                resets_at,
                ..
            } => ApiError {
                status: 429,
                kind: RateLimit,
                message: Cow::Owned(format!(
                    "This user's monthly Amazon Bedrock budget of ${} is used up (estimated spend this month, UTC: ${}). Bedrock is available again from {} or when the gateway's administrator raises the budget.",
                    ccp_core::money::format_usd(*budget_micro_usd),
                    ccp_core::money::format_usd(*spend_micro_usd),
                    resets_at.format("%Y-%m-%d %H:%M UTC"),
                )),
            },
            Self::BudgetUnknown => fixed(
                503,
                Overloaded,
                "The gateway cannot check this user's Bedrock budget right now. Retry shortly.",
            ),
        }
    }

    /// Extra response headers: `retry-after` (seconds) and whether the client should retry
    /// at all (`x-should-retry`, which the official SDKs obey before any retry-after).
    ///
    /// An exhausted budget says `x-should-retry: false` and a `retry-after` of the time left
    /// in the month: the SDKs then raise the 429 at once instead of retrying it (they only
    /// wait out a retry-after of 60 s or less), and Claude Code shows the message.
    pub fn retry_advice(&self) -> (Option<u32>, Option<bool>) {
        match self {
            Self::OverBudget { resets_in_secs, .. } => (Some(*resets_in_secs), Some(false)),
            Self::NoBedrockKey => (None, Some(false)),
            _ if self.api_error().status == 503 => (Some(5), None),
            _ => (None, None),
        }
    }

    /// The label this error is counted under (`ccp_gateway_errors{error=…}`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::UnknownApiPath => "unknown_api_path",
            Self::KeyRejected => "key_rejected",
            Self::AuthUnavailable => "auth_unavailable",
            Self::TooLarge => "too_large",
            Self::BadContentLength => "bad_content_length",
            Self::UpgradeRefused => "upgrade_refused",
            Self::ClientTimeout => "client_timeout",
            Self::BodyUnreadable => "body_unreadable",
            Self::Plan(fault) if fault.is_timeout() => "plan_timeout",
            Self::Plan(_) => "plan_unreachable",
            Self::Bedrock(_) => "bedrock_error",
            Self::BareLineFeed => "bare_lf",
            Self::AmbiguousFraming => "ambiguous_framing",
            Self::LengthRequired => "length_required",
            Self::Internal => "internal",
            Self::NoBedrockKey => "no_bedrock_key",
            Self::OverBudget { .. } => "over_budget",
            Self::BudgetUnknown => "budget_unknown",
        }
    }

    /// Every label, for tests and dashboards.
    pub const LABELS: [&'static str; 19] = [
        "not_found",
        "unknown_api_path",
        "key_rejected",
        "auth_unavailable",
        "too_large",
        "bad_content_length",
        "upgrade_refused",
        "client_timeout",
        "body_unreadable",
        "plan_timeout",
        "plan_unreachable",
        "bedrock_error",
        "bare_lf",
        "ambiguous_framing",
        "length_required",
        "internal",
        "no_bedrock_key",
        "over_budget",
        "budget_unknown",
    ];

    /// The answer to a proxying failure before any response byte went out, or `None` when the
    /// client is gone (nobody to answer). Connection failures are Plan's whatever source
    /// Pingora gave them; only an internal fault of another kind is a 500.
    pub fn from_proxy_failure(e: &Error) -> Option<Self> {
        match (e.esource(), e.etype()) {
            (_, ErrorType::HTTPStatus(413)) => Some(Self::TooLarge),
            (ErrorSource::Downstream, ErrorType::ReadTimedout) => Some(Self::ClientTimeout),
            (ErrorSource::Downstream, _) => None,
            (ErrorSource::Upstream, etype) => Some(Self::Plan(PlanFault::from_error_type(etype))),
            (_, etype) => match PlanFault::from_error_type(etype) {
                PlanFault::Other if !is_connection_error(etype) => Some(Self::Internal),
                fault => Some(Self::Plan(fault)),
            },
        }
    }
}

fn is_connection_error(etype: &ErrorType) -> bool {
    matches!(
        etype,
        ErrorType::ConnectError
            | ErrorType::SocketError
            | ErrorType::ConnectProxyFailure
            | ErrorType::ReadError
            | ErrorType::WriteError
            | ErrorType::H1Error
            | ErrorType::H2Error
            | ErrorType::InvalidHTTPHeader
    )
}

/// The error `upstream_peer` returns when the Plan host has no address: an upstream connect
/// failure, so it counts for the breaker and may fail over like a refused connection.
pub fn no_plan_address() -> Box<Error> {
    Error::create(
        ErrorType::ConnectNoRoute,
        ErrorSource::Upstream,
        Some("Plan upstream has no resolved address".into()),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(source: ErrorSource, etype: ErrorType) -> Box<Error> {
        Error::create(etype, source, None, None)
    }

    #[test]
    fn no_plan_connection_failure_is_a_500() {
        let upstream = [
            (ErrorType::ConnectNoRoute, 502, "did not resolve"),
            (ErrorType::ConnectRefused, 502, "refused"),
            (ErrorType::TLSHandshakeFailure, 502, "TLS"),
            (ErrorType::InvalidCert, 502, "TLS"),
            (ErrorType::ConnectionClosed, 502, "closed the connection"),
            (ErrorType::ConnectError, 502, "connection failed"),
            (ErrorType::ConnectTimedout, 504, "connecting timed out"),
            (ErrorType::ReadTimedout, 504, "stopped answering"),
        ];
        for source in [
            ErrorSource::Upstream,
            ErrorSource::Internal,
            ErrorSource::Unset,
        ] {
            for (etype, status, words) in &upstream {
                let e = GatewayError::from_proxy_failure(&failure(source.clone(), etype.clone()))
                    .expect("an answer");
                let api = e.api_error();
                assert_eq!(api.status, *status, "{etype:?} from {source:?}");
                assert_eq!(api.kind, ApiErrorKind::Api);
                assert!(api.message.contains(words), "{}", api.message);
            }
        }
        let closed = failure(ErrorSource::Downstream, ErrorType::ConnectionClosed);
        assert_eq!(GatewayError::from_proxy_failure(&closed), None);
        let slow = failure(ErrorSource::Downstream, ErrorType::ReadTimedout);
        assert_eq!(
            GatewayError::from_proxy_failure(&slow),
            Some(GatewayError::ClientTimeout)
        );
        let bug = failure(ErrorSource::Internal, ErrorType::InternalError);
        assert_eq!(
            GatewayError::from_proxy_failure(&bug),
            Some(GatewayError::Internal)
        );
        let big = failure(ErrorSource::Internal, ErrorType::HTTPStatus(413));
        assert_eq!(
            GatewayError::from_proxy_failure(&big),
            Some(GatewayError::TooLarge)
        );
    }

    #[test]
    fn every_error_has_a_listed_label_and_no_500() {
        let all = [
            GatewayError::NotFound,
            GatewayError::UnknownApiPath,
            GatewayError::KeyRejected,
            GatewayError::AuthUnavailable,
            GatewayError::TooLarge,
            GatewayError::BadContentLength,
            GatewayError::UpgradeRefused,
            GatewayError::ClientTimeout,
            GatewayError::BodyUnreadable,
            GatewayError::Plan(PlanFault::ReadTimeout),
            GatewayError::Plan(PlanFault::NoAddress),
            GatewayError::Bedrock(ApiError::new(429, ApiErrorKind::RateLimit, "x")),
            GatewayError::BareLineFeed,
            GatewayError::AmbiguousFraming,
            GatewayError::LengthRequired,
            GatewayError::Internal,
            GatewayError::NoBedrockKey,
            GatewayError::OverBudget {
                budget_micro_usd: 1_000_000,
                spend_micro_usd: 1_050_000,
                resets_at: chrono::Utc::now() + chrono::Duration::days(3),
                resets_in_secs: 3 * 86_400,
            },
            GatewayError::BudgetUnknown,
        ];
        let labels: Vec<_> = all.iter().map(GatewayError::label).collect();
        assert_eq!(labels, GatewayError::LABELS);
        for e in all.iter().filter(|e| **e != GatewayError::Internal) {
            assert_ne!(e.api_error().status, 500, "{e:?}");
        }
    }

    #[test]
    fn an_exhausted_budget_says_when_and_not_to_retry() {
        let now = chrono::Utc::now();
        let resets_at = now + chrono::Duration::hours(2);
        let over = GatewayError::over_budget(25_000_000, 25_012_500, resets_at, now);
        let error = over.api_error();
        assert_eq!((error.status, error.kind), (429, ApiErrorKind::RateLimit));
        assert!(
            error.message.contains("budget of $25.00"),
            "{}",
            error.message
        );
        assert!(error.message.contains("$25.0125"), "{}", error.message);
        let (retry_after, should_retry) = over.retry_advice();
        assert_eq!(should_retry, Some(false));
        assert_eq!(retry_after, Some(7_200));
        let late = GatewayError::over_budget(1, 2, resets_at, resets_at);
        assert_eq!(late.retry_advice().0, Some(1), "never 0: not a tight loop");
        assert_eq!(
            GatewayError::NoBedrockKey.retry_advice(),
            (None, Some(false))
        );
        assert_eq!(GatewayError::BudgetUnknown.retry_advice(), (Some(5), None));
        assert_eq!(GatewayError::TooLarge.retry_advice(), (None, None));
    }

    #[test]
    fn the_no_address_error_is_an_upstream_connect_failure() {
        let e = no_plan_address();
        assert_eq!(e.esource(), &ErrorSource::Upstream);
        assert_eq!(
            GatewayError::from_proxy_failure(&e),
            Some(GatewayError::Plan(PlanFault::NoAddress))
        );
    }
}
