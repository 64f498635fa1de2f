//! Responses the gateway writes itself: Anthropic-shaped errors and the health endpoints.

use bytes::Bytes;
use ccp_core::api_error::ApiError;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

pub const REQUEST_ID_HEADER: &str = "x-ccp-request-id";

/// Writes a complete JSON response.
pub async fn json(
    session: &mut Session,
    status: u16,
    body: Vec<u8>,
    request_id: &str,
    retry_after_secs: Option<u32>,
) -> Result<()> {
    json_advising(session, status, body, request_id, (retry_after_secs, None)).await
}

/// [`json`] with retry advice: `retry-after` seconds and `x-should-retry`.
pub async fn json_advising(
    session: &mut Session,
    status: u16,
    body: Vec<u8>,
    request_id: &str,
    (retry_after_secs, should_retry): (Option<u32>, Option<bool>),
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(5))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header(REQUEST_ID_HEADER, request_id)?;
    if let Some(secs) = retry_after_secs {
        resp.insert_header("retry-after", secs.to_string())?;
    }
    if let Some(retry) = should_retry {
        resp.insert_header("x-should-retry", if retry { "true" } else { "false" })?;
    }
    // A request body we did not read would be taken for the next request on this
    // connection; close it instead of draining up to 32 MiB of it.
    if !session.is_body_empty() && session.as_downstream().body_bytes_read() == 0 {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await
}

pub async fn api_error(
    session: &mut Session,
    err: &ApiError,
    request_id: &str,
    advice: (Option<u32>, Option<bool>),
) -> Result<()> {
    json_advising(session, err.status, err.body(), request_id, advice).await
}
