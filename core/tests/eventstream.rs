//! The event-stream decoder against golden frames that botocore's own decoder verified
//! (fixtures/bedrock/golden_frames.json, from the shared Bedrock reference).

#![allow(clippy::unwrap_used)]

use ccp_core::translate::eventstream::{EventStreamDecoder, StreamFrame};
use proptest::prelude::*;

struct Golden {
    name: String,
    message_type: String,
    type_header: String,
    payload: Vec<u8>,
    bytes: Vec<u8>,
}

fn golden() -> Vec<Golden> {
    let text = include_str!("fixtures/bedrock/golden_frames.json");
    let frames: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
    frames
        .into_iter()
        .map(|f| {
            let message_type = f["headers"][":message-type"].as_str().unwrap().to_owned();
            let type_key = if message_type == "event" {
                ":event-type"
            } else {
                ":exception-type"
            };
            Golden {
                name: f["name"].as_str().unwrap().to_owned(),
                type_header: f["headers"][type_key].as_str().unwrap().to_owned(),
                message_type,
                payload: f["payload"].as_str().unwrap().as_bytes().to_vec(),
                bytes: hex::decode(f["hex"].as_str().unwrap()).unwrap(),
            }
        })
        .collect()
}

fn expected(g: &Golden) -> StreamFrame {
    if g.message_type == "event" {
        StreamFrame::Event {
            event_type: g.type_header.clone(),
            payload: g.payload.clone().into(),
        }
    } else {
        StreamFrame::Exception {
            exception_type: g.type_header.clone(),
            payload: g.payload.clone().into(),
        }
    }
}

fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<StreamFrame> {
    let mut decoder = EventStreamDecoder::new();
    let mut frames = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().copied().filter(|c| *c < bytes.len()).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for end in points {
        decoder.push(&bytes[start..end]);
        start = end;
        while let Some(frame) = decoder.next_frame().unwrap() {
            frames.push(frame);
        }
    }
    assert!(!decoder.has_partial_frame());
    frames
}

#[test]
fn every_golden_frame_decodes_to_its_headers_and_payload() {
    let frames = golden();
    assert_eq!(frames.len(), 16);
    for g in &frames {
        let decoded = decode_in_pieces(&g.bytes, &[]);
        assert_eq!(decoded, vec![expected(g)], "{}", g.name);
    }
}

#[test]
fn a_whole_stream_decodes_in_order_from_one_buffer() {
    let frames = golden();
    let all: Vec<u8> = frames.iter().flat_map(|g| g.bytes.clone()).collect();
    let want: Vec<StreamFrame> = frames.iter().map(expected).collect();
    assert_eq!(decode_in_pieces(&all, &[]), want);
    // One byte at a time is the worst case for chunking.
    let every_byte: Vec<usize> = (1..all.len()).collect();
    assert_eq!(decode_in_pieces(&all, &every_byte), want);
}

#[test]
fn a_flipped_byte_is_a_checksum_error() {
    let g = &golden()[0];
    for position in [5, 20, g.bytes.len() / 2, g.bytes.len() - 1] {
        let mut bytes = g.bytes.clone();
        bytes[position] ^= 0x40;
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&bytes);
        let outcome = decoder.next_frame();
        assert!(
            outcome.is_err() || matches!(outcome, Ok(None)),
            "position {position}: {outcome:?}"
        );
        if position >= 12 {
            assert!(
                outcome.is_err(),
                "position {position} is covered by the message CRC"
            );
        }
    }
}

#[test]
fn a_truncated_stream_leaves_a_partial_frame() {
    let g = &golden()[1];
    let mut decoder = EventStreamDecoder::new();
    decoder.push(&g.bytes[..g.bytes.len() - 3]);
    assert!(decoder.next_frame().unwrap().is_none());
    assert!(
        decoder.has_partial_frame(),
        "end of body here means a cut stream"
    );
}

proptest! {
    #[test]
    fn any_split_gives_the_same_frames(cuts in prop::collection::vec(0usize..4000, 0..40)) {
        let frames = golden();
        let all: Vec<u8> = frames.iter().flat_map(|g| g.bytes.clone()).collect();
        let want: Vec<StreamFrame> = frames.iter().map(expected).collect();
        prop_assert_eq!(decode_in_pieces(&all, &cuts), want);
    }
}
