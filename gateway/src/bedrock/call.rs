//! One request's Bedrock call: translate, post, retry once without thinking when Bedrock
//! refuses it, and answer JSON or CountTokens (the stream relay is in `relay.rs`).

use super::wire::{
    estimate_tokens, json_header, printable, read_capped, read_error, usage_from_json, write_json,
};
use super::{
    Call, MAX_ERROR_BODY, MAX_JSON_RESPONSE, Operation, Outcome, ServedStats, UNREACHABLE, failed,
    untranslatable,
};
use bytes::Bytes;
use ccp_core::api_error::{ApiError, ApiErrorKind};
use ccp_core::translate::request::{TranslateOptions, translate};
use ccp_core::translate::response::converse_to_anthropic;
use pingora::proxy::Session;
use serde_json::{Value, json};
use std::time::Instant;

impl Call<'_> {
    pub(super) fn note_repairs(&self, labels: &[&'static str]) {
        let mut repairs = self.repairs.lock().unwrap_or_else(|e| e.into_inner());
        for label in labels {
            if !repairs.contains(label) {
                repairs.push(label);
            }
        }
    }

    pub(super) fn stats(&self, stream: bool) -> ServedStats {
        ServedStats {
            model_id: self.model.model_id.clone(),
            model_name: self.model_name.to_owned(),
            repairs: self
                .repairs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            stream,
            ..ServedStats::default()
        }
    }

    pub(super) fn translate(&self, strip_thinking: bool) -> Result<Vec<u8>, Outcome> {
        let options = TranslateOptions {
            max_output_tokens: self.model.max_output_tokens,
            betas: &self.request.betas,
            prompt_caching: true,
            strip_thinking,
        };
        let converse = if self.request.operation == Operation::CountTokens
            && self.parsed.get("max_tokens").is_none()
        {
            // count_tokens requests carry no max_tokens; Converse's shape wants one.
            let mut with_max = self.parsed.clone();
            with_max["max_tokens"] = json!(1);
            translate(&with_max, &options)
        } else {
            translate(self.parsed, &options)
        }
        .map_err(|e| untranslatable(e.to_string()))?;
        if !converse.repairs.is_empty() {
            let labels: Vec<&'static str> = converse.repairs.iter().map(|r| r.as_str()).collect();
            tracing::info!(request_id = %self.request_id, repairs = %labels.join(","),
                "conversation repaired for Bedrock");
            self.note_repairs(&labels);
        }
        serde_json::to_vec(&converse.body).map_err(|e| untranslatable(e.to_string()))
    }

    pub(super) async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, Outcome> {
        let sent = self
            .bedrock
            .http
            .post(url)
            .bearer_auth(self.credential.api_key.expose())
            .header("content-type", "application/json")
            .header(
                "accept",
                "application/json, application/vnd.amazon.eventstream",
            )
            .body(body)
            .send()
            .await;
        sent.map_err(|e| {
            // reqwest errors carry the URL (no secret in it, but keep logs template-only).
            tracing::warn!(request_id = %self.request_id, error = %e.without_url(), "Bedrock unreachable");
            failed(UNREACHABLE)
        })
    }

    /// Posts the Converse request; on a 400 about a thinking signature, once more without
    /// thinking. Returns a successful response or the client-facing error.
    pub(super) async fn converse(&self, action: &str) -> Result<reqwest::Response, Outcome> {
        let url = self
            .bedrock
            .url(&self.credential.region, &self.model.model_id, action);
        let mut strip_thinking = false;
        loop {
            let response = self.post(&url, self.translate(strip_thinking)?).await?;
            if response.status().is_success() {
                return Ok(response);
            }
            let error = read_error(response).await;
            if !strip_thinking && error.0.is_thinking_problem() {
                tracing::info!(request_id = %self.request_id, message = %printable(&error.0.message),
                    "Bedrock refused the request's thinking; retrying without thinking");
                self.note_repairs(&["thinking_off_after_refusal"]);
                strip_thinking = true;
                continue;
            }
            tracing::warn!(request_id = %self.request_id, status = error.0.status, code = %error.0.code,
                message = %printable(&error.0.message), "Bedrock answered an error");
            return Err(failed(error.0.to_api_error(error.1)));
        }
    }

    pub(super) fn message_id(response: &reqwest::Response, request_id: &str) -> String {
        let amzn = response
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(64)
                    .collect::<String>()
            })
            .filter(|v| !v.is_empty());
        format!("msg_bdrk_{}", amzn.as_deref().unwrap_or(request_id))
    }

    pub(super) async fn messages(&self, session: &mut Session) -> Outcome {
        let stream = self
            .parsed
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let started = Instant::now();
        let action = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        let response = match self.converse(action).await {
            Ok(r) => r,
            Err(outcome) => return outcome,
        };
        let message_id = Self::message_id(&response, self.request_id);
        if stream {
            self.relay_stream(session, response, &message_id, started)
                .await
        } else {
            let body = match read_capped(response, MAX_JSON_RESPONSE).await {
                Ok(body) => body,
                Err(()) => return failed(UNREACHABLE),
            };
            match converse_to_anthropic(&body, &message_id, self.model_name) {
                Ok(message) => {
                    let usage = message.get("usage").map(usage_from_json);
                    let body = serde_json::to_vec(&message).unwrap_or_default();
                    match write_json(session, 200, body, self.request_id, &self.model.model_id)
                        .await
                    {
                        Ok(()) => Outcome::Served {
                            status: 200,
                            stats: Box::new(ServedStats {
                                first_byte: Some(started.elapsed()),
                                usage,
                                ..self.stats(false)
                            }),
                        },
                        Err(()) => Outcome::ClientGone,
                    }
                }
                Err(e) => {
                    tracing::warn!(request_id = %self.request_id, error = %e, "unusable Converse response");
                    failed(ApiError::new(
                        502,
                        ApiErrorKind::Api,
                        "Amazon Bedrock returned a response the gateway cannot read.",
                    ))
                }
            }
        }
    }

    /// Bedrock CountTokens; if it fails, an estimate (about 4 bytes a token) labelled by the
    /// `x-ccp-token-estimate: true` header. Never a 404.
    pub(super) async fn count_tokens(&self, session: &mut Session) -> Outcome {
        let started = Instant::now();
        let converse: Value = match self.translate(false) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            Err(outcome) => return outcome,
        };
        let mut input = serde_json::Map::new();
        for field in [
            "messages",
            "system",
            "toolConfig",
            "additionalModelRequestFields",
        ] {
            if let Some(v) = converse.get(field) {
                input.insert(field.to_owned(), v.clone());
            }
        }
        let body = json!({"input": {"converse": input}});
        let url = self.bedrock.url(
            &self.credential.region,
            &self.model.model_id,
            "count-tokens",
        );
        let counted = match self
            .post(&url, serde_json::to_vec(&body).unwrap_or_default())
            .await
        {
            Ok(response) if response.status().is_success() => read_capped(response, MAX_ERROR_BODY)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v.get("inputTokens").and_then(Value::as_u64)),
            Ok(response) => {
                let (error, _) = read_error(response).await;
                tracing::info!(request_id = %self.request_id, status = error.status, code = %error.code,
                    "Bedrock CountTokens unavailable; answering an estimate");
                None
            }
            Err(_) => None,
        };
        let (tokens, estimated) = match counted {
            Some(n) => (n, false),
            None => (estimate_tokens(&input), true),
        };
        let body = serde_json::to_vec(&json!({"input_tokens": tokens})).unwrap_or_default();
        let mut header = match json_header(200, body.len(), self.request_id, &self.model.model_id) {
            Ok(h) => h,
            Err(()) => return Outcome::ClientGone,
        };
        if estimated {
            let _ = header.insert_header("x-ccp-token-estimate", "true");
        }
        if session.write_response_header(header, false).await.is_err()
            || session
                .write_response_body(Some(Bytes::from(body)), true)
                .await
                .is_err()
        {
            return Outcome::ClientGone;
        }
        Outcome::Served {
            status: 200,
            stats: Box::new(ServedStats {
                first_byte: Some(started.elapsed()),
                estimated,
                ..self.stats(false)
            }),
        }
    }
}
