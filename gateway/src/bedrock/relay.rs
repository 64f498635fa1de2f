//! The streaming relay: Converse event-stream frames in, Anthropic SSE out, header held
//! back until the first translated byte.

use super::wire::write_stream_header;
use super::{Call, Outcome, UNREACHABLE, failed};
use bytes::Bytes;
use ccp_core::api_error::{ApiError, ApiErrorKind};
use ccp_core::translate::eventstream::{EventStreamDecoder, StreamFrame};
use ccp_core::translate::stream::{StreamTranslator, map_stream_exception};
use pingora::proxy::Session;
use serde_json::Value;
use std::time::Instant;

impl Call<'_> {
    /// Decodes event-stream frames as they arrive and writes the SSE they translate to. The
    /// response header goes out with the first translated bytes; until then a failure is
    /// still an unserved request.
    pub(super) async fn relay_stream(
        &self,
        session: &mut Session,
        mut response: reqwest::Response,
        message_id: &str,
        started: Instant,
    ) -> Outcome {
        let mut decoder = EventStreamDecoder::new();
        let mut translator = StreamTranslator::new(message_id, self.model_name);
        let mut out = Vec::with_capacity(8 * 1024);
        let mut stats = self.stats(true);
        let mut header_sent = false;
        loop {
            let chunk = response.chunk().await;
            let (chunk, upstream_done) = match chunk {
                Ok(Some(chunk)) => (chunk, false),
                Ok(None) => (Bytes::new(), true),
                Err(e) => {
                    tracing::warn!(request_id = %self.request_id, error = %e.without_url(), "Bedrock stream broke");
                    if !header_sent {
                        return failed(UNREACHABLE);
                    }
                    stats.broken_stream = true;
                    (Bytes::new(), true)
                }
            };
            decoder.push(&chunk);
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        if !header_sent && let Some(error) = first_frame_error(&frame) {
                            return failed(error);
                        }
                        translator.on_frame(&frame, &mut out);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(request_id = %self.request_id, error = %e, "malformed Bedrock stream");
                        if !header_sent {
                            return failed(UNREACHABLE);
                        }
                        stats.broken_stream = true;
                        translator.finish(&mut out);
                        break;
                    }
                }
            }
            let done = upstream_done || translator.is_finished() || stats.broken_stream;
            if done {
                if !translator.is_finished() {
                    stats.broken_stream = true;
                }
                translator.finish(&mut out);
            }
            if !header_sent && (done || !out.is_empty()) {
                if out.is_empty() {
                    return failed(UNREACHABLE);
                }
                stats.first_byte = Some(started.elapsed());
                if write_stream_header(session, self.request_id, &self.model.model_id)
                    .await
                    .is_err()
                {
                    return Outcome::ClientGone;
                }
                header_sent = true;
            }
            if !out.is_empty() || done {
                let data = Bytes::from(std::mem::replace(&mut out, Vec::with_capacity(8 * 1024)));
                if session.write_response_body(Some(data), done).await.is_err() {
                    return Outcome::ClientGone;
                }
            }
            if done {
                stats.usage = translator.usage();
                return Outcome::Served {
                    status: 200,
                    stats: Box::new(stats),
                };
            }
        }
    }
}

/// A first frame that is an exception means Bedrock failed before answering anything.
fn first_frame_error(frame: &StreamFrame) -> Option<ApiError> {
    let (kind, message) = match frame {
        StreamFrame::Event { .. } => return None,
        StreamFrame::Exception {
            exception_type,
            payload,
        } => {
            let status = serde_json::from_slice::<Value>(payload)
                .ok()
                .and_then(|v| v.get("originalStatusCode").and_then(Value::as_u64))
                .and_then(|s| u16::try_from(s).ok());
            (
                map_stream_exception(exception_type, status),
                "Amazon Bedrock failed before answering. Retry shortly.",
            )
        }
        StreamFrame::Error { .. } => ("api_error", "Amazon Bedrock failed before answering."),
    };
    let kind = match kind {
        "rate_limit_error" => ApiErrorKind::RateLimit,
        "overloaded_error" => ApiErrorKind::Overloaded,
        "invalid_request_error" => ApiErrorKind::InvalidRequest,
        _ => ApiErrorKind::Api,
    };
    Some(ApiError::new(kind.default_status(), kind, message))
}
