//! Incremental decoding of Bedrock's `application/vnd.amazon.eventstream` response body.
//!
//! Framing and both CRC checks are done by AWS's own decoder (`aws-smithy-eventstream`); this
//! wrapper feeds it whatever chunks the network delivers, keeps at most one partial frame,
//! and classifies each complete frame by its `:message-type` header.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::{Bytes, BytesMut};

/// One complete frame, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFrame {
    /// `:message-type = event`; `event_type` is e.g. `contentBlockDelta`, payload is JSON.
    Event { event_type: String, payload: Bytes },
    /// `:message-type = exception`; e.g. `throttlingException` with `{"message":…}`.
    Exception {
        exception_type: String,
        payload: Bytes,
    },
    /// `:message-type = error`, described by its `:error-code` / `:error-message` headers.
    Error { code: String, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum EventStreamError {
    /// A CRC mismatch, an impossible length or a malformed header: the stream is unusable.
    #[error("malformed event-stream frame: {0}")]
    Malformed(String),
    #[error("event-stream frame without a usable :message-type header")]
    MissingType,
}

/// Feeds chunks in, takes frames out.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    decoder: MessageFrameDecoder,
    buffer: BytesMut,
    /// The inner decoder has consumed a prelude and is waiting for the rest of that frame.
    mid_frame: bool,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes as they arrived from the network.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<StreamFrame>, EventStreamError> {
        let before = self.buffer.len();
        match self.decoder.decode_frame(&mut self.buffer) {
            Ok(DecodedFrame::Complete(message)) => {
                self.mid_frame = false;
                classify(message).map(Some)
            }
            Ok(DecodedFrame::Incomplete) => {
                self.mid_frame |= self.buffer.len() < before;
                Ok(None)
            }
            Err(err) => Err(EventStreamError::Malformed(err.to_string())),
        }
    }

    /// Whether bytes of an unfinished frame are held: at end of stream, a truncated body.
    pub fn has_partial_frame(&self) -> bool {
        self.mid_frame || !self.buffer.is_empty()
    }
}

fn header_str<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

fn classify(message: Message) -> Result<StreamFrame, EventStreamError> {
    let owned = |name| header_str(&message, name).map(str::to_owned);
    match header_str(&message, ":message-type") {
        Some("event") => Ok(StreamFrame::Event {
            event_type: owned(":event-type").ok_or(EventStreamError::MissingType)?,
            payload: message.payload().clone(),
        }),
        Some("exception") => Ok(StreamFrame::Exception {
            exception_type: owned(":exception-type").ok_or(EventStreamError::MissingType)?,
            payload: message.payload().clone(),
        }),
        Some("error") => Ok(StreamFrame::Error {
            code: owned(":error-code").unwrap_or_default(),
            message: owned(":error-message").unwrap_or_default(),
        }),
        _ => Err(EventStreamError::MissingType),
    }
}
