//! The error answer every route uses, `{"error": {"type": …, "message": …}}`, and how the
//! operations' and the store's errors become one.

use crate::ops::OpsError;
use salvo::http::StatusCode;
use salvo::oapi::{self, EndpointOutRegister, ToSchema};
use salvo::prelude::*;
use serde::Serialize;

/// An error answer: `{"error": {"type": …, "message": …}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiFailure {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid or expired session",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the admin store is unavailable; try again",
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            message,
        )
    }

    /// The shape every error status gets, whoever produced it (salvo's own 400/404/405
    /// included, through the catcher).
    pub(super) fn for_status(status: StatusCode) -> Self {
        let (kind, message) = match status.as_u16() {
            400 => (
                "invalid_request_error",
                "the request could not be parsed: check the JSON body, path and query parameters",
            ),
            401 => ("authentication_error", "invalid or expired session"),
            403 => ("permission_error", "not allowed"),
            404 => ("not_found_error", "no such resource"),
            405 => ("invalid_request_error", "method not allowed on this path"),
            413 => ("request_too_large", "the request body is too large"),
            415 => (
                "invalid_request_error",
                "the body must be JSON (Content-Type: application/json)",
            ),
            429 => ("rate_limit_error", "too many requests"),
            s if s < 500 => ("invalid_request_error", "the request was refused"),
            503 => ("unavailable", "the admin store is unavailable; try again"),
            _ => ("api_error", "internal error"),
        };
        Self::new(status, kind, message)
    }
}

impl From<OpsError> for ApiFailure {
    fn from(err: OpsError) -> Self {
        match err {
            OpsError::Invalid(message) => Self::invalid(message),
            OpsError::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found_error",
                format!("{what} not found"),
            ),
            OpsError::Conflict(message) => {
                Self::new(StatusCode::CONFLICT, "conflict_error", message)
            }
            OpsError::Unavailable { what, source } => {
                tracing::error!(error = %source, "{what} failed during an admin request");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!("{what} is unavailable; try again"),
                )
            }
        }
    }
}

impl From<ccp_core::store::StoreError> for ApiFailure {
    fn from(err: ccp_core::store::StoreError) -> Self {
        OpsError::from(err).into()
    }
}

#[async_trait]
impl Writer for ApiFailure {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        res.status_code(self.status);
        res.render(Json(ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                message: self.message,
            },
        }));
    }
}

impl EndpointOutRegister for ApiFailure {
    fn register(components: &mut oapi::Components, operation: &mut oapi::Operation) {
        for (status, what) in [
            (
                StatusCode::BAD_REQUEST,
                "Malformed request (body, path or query)",
            ),
            (
                StatusCode::UNAUTHORIZED,
                "Not logged in, or the session ended",
            ),
            (StatusCode::FORBIDDEN, "Not allowed"),
            (StatusCode::NOT_FOUND, "No such resource"),
            (StatusCode::CONFLICT, "Clashes with the current state"),
            (StatusCode::UNPROCESSABLE_ENTITY, "Breaks a validation rule"),
            (StatusCode::TOO_MANY_REQUESTS, "Too many failed logins"),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database cannot answer",
            ),
        ] {
            operation.responses.insert(
                status.as_str(),
                oapi::Response::new(what)
                    .add_content("application/json", ErrorBody::to_schema(components)),
            );
        }
    }
}
