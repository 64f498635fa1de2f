//! Failover bookkeeping: which requests may use Bedrock, the teed request body, what the
//! Plan attempt came to, and the Plan stream watch that turns a cut stream into an SSE error.

use crate::bedrock::{Operation, ServedStats};
use bytes::Bytes;
use ccp_core::api_error::{ApiError, ApiErrorKind};
use ccp_core::routing::circuit::Route;
use pingora::http::ResponseHeader;

/// Set on a request that may be served by Bedrock: a Messages call by a key that has a
/// Bedrock key.
#[derive(Debug)]
pub struct Failover {
    pub operation: Operation,
    /// What the circuit breaker chose.
    pub route: Route,
    /// The request body as it went to Plan (reference-counted chunks, no copies).
    pub tee: Vec<Bytes>,
    pub tee_len: u64,
    /// `request_body_filter` saw the end of the body.
    pub body_complete: bool,
    /// The breaker has been told how the Plan attempt ended.
    pub outcome_recorded: bool,
}

impl Failover {
    pub fn new(operation: Operation, route: Route) -> Self {
        Self {
            operation,
            route,
            tee: Vec::new(),
            tee_len: 0,
            body_complete: false,
            outcome_recorded: false,
        }
    }

    pub fn push(&mut self, chunk: &Bytes) {
        if !chunk.is_empty() {
            self.tee_len += chunk.len() as u64;
            self.tee.push(chunk.clone());
        }
    }

    /// The whole body in one buffer (one copy, only on the Bedrock path).
    pub fn body(&self) -> Bytes {
        match self.tee.as_slice() {
            [one] => one.clone(),
            chunks => {
                let mut all = Vec::with_capacity(usize::try_from(self.tee_len).unwrap_or(0));
                for c in chunks {
                    all.extend_from_slice(c);
                }
                Bytes::from(all)
            }
        }
    }
}

/// Which way a request went, for the log and metering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathTaken {
    Plan,
    PlanThenBedrock,
    BedrockDirect,
}

impl PathTaken {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::PlanThenBedrock => "plan_bedrock",
            Self::BedrockDirect => "bedrock",
        }
    }
}

/// Plan response headers worth keeping when the Plan answer has to be reproduced: the ones
/// Claude Code's retry logic and error messages read.
fn is_kept_plan_header(name: &str) -> bool {
    matches!(
        name,
        "retry-after" | "x-should-retry" | "request-id" | "content-type"
    ) || name.starts_with("anthropic-ratelimit-")
}

/// A Plan answer that triggered failover, kept to be sent if Bedrock fails too.
#[derive(Debug, Clone)]
pub struct PlanFailure {
    pub status: u16,
    headers: Vec<(String, Vec<u8>)>,
}

impl PlanFailure {
    pub fn from_response(resp: &ResponseHeader) -> Self {
        Self {
            status: resp.status.as_u16(),
            headers: resp
                .headers
                .iter()
                .filter(|(name, _)| is_kept_plan_header(name.as_str()))
                .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// The Plan status with its headers and an Anthropic error body of the matching type.
    /// (The Plan body itself was not read: the connection was dropped when the status came.)
    pub fn response(&self, request_id: &str) -> pingora::Result<(Box<ResponseHeader>, Vec<u8>)> {
        let kind = match self.status {
            429 => ApiErrorKind::RateLimit,
            529 | 503 => ApiErrorKind::Overloaded,
            _ => ApiErrorKind::Api,
        };
        let message = format!(
            "The Anthropic API answered {}; the Bedrock fallback could not serve the request either.",
            self.status
        );
        let body = ApiError::owned(self.status, kind, message).body();
        let mut resp = ResponseHeader::build(self.status, Some(self.headers.len() + 3))?;
        for (name, value) in &self.headers {
            if name != "content-type" {
                resp.append_header(name.clone(), value.as_slice())?;
            }
        }
        resp.insert_header("content-type", "application/json")?;
        resp.insert_header("content-length", body.len().to_string())?;
        resp.insert_header(crate::respond::REQUEST_ID_HEADER, request_id)?;
        Ok((Box::new(resp), body))
    }
}

/// Watches a Plan SSE response for its end: `message_stop` or an `error` event. A stream
/// that ends without either gets an `overloaded_error` event, never a silent clean end.
#[derive(Debug, Default)]
pub struct SseWatch {
    pub complete: bool,
    /// The end of the previous chunk, so a marker split across chunks is still found.
    tail: Vec<u8>,
}

/// At a line start: JSON escapes newlines, so model text in a `data:` line cannot fake one.
const END_MARKERS: [&[u8]; 2] = [b"\nevent: message_stop", b"\nevent: error"];
const TAIL: usize = 24;

impl SseWatch {
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.complete || chunk.is_empty() {
            return;
        }
        let found = |hay: &[u8]| {
            END_MARKERS
                .iter()
                .any(|m| memchr::memmem::find(hay, m).is_some())
        };
        if self.tail.is_empty() {
            self.complete = found(chunk);
        } else {
            let head = &chunk[..chunk.len().min(TAIL)];
            let mut seam = std::mem::take(&mut self.tail);
            seam.extend_from_slice(head);
            self.complete = found(&seam) || found(chunk);
        }
        let keep = chunk.len().min(TAIL);
        self.tail = chunk[chunk.len() - keep..].to_vec();
    }

    /// The SSE error event for a cut stream.
    pub fn cut_event() -> Bytes {
        let mut out = Vec::new();
        ccp_core::translate::stream::sse_error(
            &mut out,
            "overloaded_error",
            "The upstream stream ended before the message was complete. Retry the request.",
        );
        Bytes::from(out)
    }
}

/// Bedrock's part of a request, for the log.
#[derive(Debug, Default)]
pub struct BedrockLeg {
    pub stats: ServedStats,
    pub status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plan_failure_keeps_retry_headers_only() {
        let mut resp = ResponseHeader::build(429, None).unwrap();
        resp.insert_header("retry-after", "7").unwrap();
        resp.insert_header("anthropic-ratelimit-requests-remaining", "0")
            .unwrap();
        resp.insert_header("set-cookie", "s=1").unwrap();
        resp.insert_header("content-type", "application/json")
            .unwrap();
        let failure = PlanFailure::from_response(&resp);
        let (out, body) = failure.response("rid").unwrap();
        assert_eq!(out.status.as_u16(), 429);
        assert_eq!(out.headers["retry-after"], "7");
        assert_eq!(out.headers["anthropic-ratelimit-requests-remaining"], "0");
        assert!(out.headers.get("set-cookie").is_none());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
    }

    proptest! {
        #[test]
        fn end_markers_are_found_across_any_split(split in 0usize..60, error in any::<bool>()) {
            let stream: &[u8] = if error {
                b"event: ping\ndata: {}\n\nevent: error\ndata: {}\n\n"
            } else {
                b"event: ping\ndata: {}\n\nevent: message_stop\ndata: {}\n\n"
            };
            let split = split.min(stream.len());
            let mut w = SseWatch::default();
            w.observe(&stream[..split]);
            w.observe(&stream[split..]);
            prop_assert!(w.complete);
            let mut cut = SseWatch::default();
            cut.observe(&stream[..stream.len() / 3]);
            prop_assert!(!cut.complete);
            // Model text quoting the marker does not count.
            let mut fake = SseWatch::default();
            fake.observe(br#"event: content_block_delta
data: {"delta":{"text":"\n\nevent: message_stop\n\n"}}

"#);
            prop_assert!(!fake.complete);
        }
    }
}
