//! What the Bedrock leg reads and writes around the translation: request-body decoding,
//! capped upstream reads, and the response headers the client gets.

use super::{Cause, MAX_ERROR_BODY, MODEL_HEADER, Outcome, UPSTREAM_HEADER, Unusable, bad_body};
use crate::respond;
use bytes::Bytes;
use ccp_core::api_error::{ApiError, ApiErrorKind};
use ccp_core::translate::errors::BedrockError;
use ccp_core::translate::stream::StreamUsage;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde_json::Value;
use std::io::Read;

pub(super) fn usage_from_json(usage: &Value) -> StreamUsage {
    let get = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    StreamUsage {
        input_tokens: get("input_tokens"),
        output_tokens: get("output_tokens"),
        cache_read_input_tokens: get("cache_read_input_tokens"),
        cache_creation_input_tokens: get("cache_creation_input_tokens"),
    }
}

/// About four bytes of text a token, counted over the translated input.
pub(super) fn estimate_tokens(input: &serde_json::Map<String, Value>) -> u64 {
    let bytes = serde_json::to_vec(input).map_or(0, |v| v.len());
    (bytes as u64).div_ceil(4).max(1)
}

/// Undoes `Content-Encoding: gzip` (Claude Code can be told to compress bodies), bounded
/// by the body limit so a small bomb cannot expand without end.
pub(super) fn decode_body<'a>(
    body: &'a [u8],
    encoding: Option<&str>,
    limit: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, Outcome> {
    match encoding.map(str::trim) {
        None | Some("") | Some("identity") => Ok(std::borrow::Cow::Borrowed(body)),
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
            let mut out = Vec::with_capacity(body.len() * 4);
            let mut decoder = flate2::read::MultiGzDecoder::new(body).take(limit + 1);
            decoder
                .read_to_end(&mut out)
                .map_err(|_| bad_body("The gzip request body cannot be decoded."))?;
            if out.len() as u64 > limit {
                return Err(Outcome::NotServed {
                    error: ApiError::new(
                        413,
                        ApiErrorKind::RequestTooLarge,
                        "The decompressed request body is larger than the gateway accepts.",
                    ),
                    cause: Cause::Unusable(Unusable::BadBody(
                        "the decompressed body is over the size limit".into(),
                    )),
                });
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        Some(_) => Err(bad_body(
            "Unsupported Content-Encoding for the Bedrock fallback (gzip only).",
        )),
    }
}

/// A client-supplied string made safe to echo: printable ASCII, at most 100 characters.
pub(super) fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

pub(super) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, ()> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| ())? {
        if body.len() + chunk.len() > cap {
            return Err(());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(super) async fn read_error(response: reqwest::Response) -> (BedrockError, Option<u16>) {
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_capped(response, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    BedrockError::parse(status, header.as_deref(), &body)
}

pub(super) fn json_header(
    status: u16,
    len: usize,
    request_id: &str,
    model_id: &str,
) -> Result<Box<ResponseHeader>, ()> {
    let mut h = ResponseHeader::build(status, Some(7)).map_err(|_| ())?;
    h.insert_header("content-type", "application/json")
        .and_then(|_| h.insert_header("content-length", len.to_string()))
        .and_then(|_| h.insert_header(respond::REQUEST_ID_HEADER, request_id))
        .and_then(|_| h.insert_header(UPSTREAM_HEADER, "bedrock"))
        .and_then(|_| h.insert_header(MODEL_HEADER, model_id))
        .map_err(|_| ())?;
    Ok(Box::new(h))
}

pub(super) async fn write_json(
    session: &mut Session,
    status: u16,
    body: Vec<u8>,
    request_id: &str,
    model_id: &str,
) -> Result<(), ()> {
    let header = json_header(status, body.len(), request_id, model_id)?;
    session
        .write_response_header(header, false)
        .await
        .map_err(|_| ())?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await
        .map_err(|_| ())
}

pub(super) async fn write_stream_header(
    session: &mut Session,
    request_id: &str,
    model_id: &str,
) -> Result<(), ()> {
    let mut h = ResponseHeader::build(200, Some(7)).map_err(|_| ())?;
    h.insert_header("content-type", "text/event-stream")
        .and_then(|_| h.insert_header("cache-control", "no-cache"))
        .and_then(|_| h.insert_header("transfer-encoding", "chunked"))
        .and_then(|_| h.insert_header(respond::REQUEST_ID_HEADER, request_id))
        .and_then(|_| h.insert_header(UPSTREAM_HEADER, "bedrock"))
        .and_then(|_| h.insert_header(MODEL_HEADER, model_id))
        .map_err(|_| ())?;
    session
        .write_response_header(Box::new(h), false)
        .await
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bodies_are_decoded_within_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"model":"m"}"#).unwrap();
        let packed = gz.finish().unwrap();
        let plain = decode_body(&packed, Some("gzip"), 1024).ok().unwrap();
        assert_eq!(&*plain, br#"{"model":"m"}"#);
        assert!(matches!(
            decode_body(b"not gzip", Some("gzip"), 1024),
            Err(Outcome::NotServed {
                cause: Cause::Unusable(Unusable::BadBody(_)),
                ..
            })
        ));
        // A bomb: 10 MB of zeros in a few KB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 10 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(matches!(
            decode_body(&bomb, Some("gzip"), 1 << 20),
            Err(Outcome::NotServed { error, .. }) if error.status == 413
        ));
        assert!(decode_body(b"x", Some("br"), 1024).is_err());
        assert!(matches!(
            decode_body(b"x", None, 1024),
            Ok(std::borrow::Cow::Borrowed(_))
        ));
    }

    #[test]
    fn echoed_model_names_are_tamed() {
        assert_eq!(printable("claude\n\u{1b}[31mx"), "claude[31mx");
        assert_eq!(printable(&"m".repeat(500)).len(), 100);
    }
}
