//! Hostile values: what a decode error echoes is bounded, and encoding a header that is
//! too large is an error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::BytesMut;
use proptest::prelude::*;
use ramjet_proto::command::REMARK_BYTES_MAX;
use ramjet_proto::frame::{
    encode_frame, encode_frame_head, encode_frame_to_bytes, HEADER_BYTES_MAX,
};
use ramjet_proto::header::{CommandHeader, PullMessageRequestHeader};
use ramjet_proto::text::{clip, CUT_MARK_BYTES_MAX, ECHO_BYTES_MAX};
use ramjet_proto::{binary_header, EncodeError, ExtFields, Header, SerializeType};

/// The attack of issue 12: a PULL_MESSAGE whose `queueId` is 3.5 MB of `\x01`.
fn hostile_pull_fields() -> ExtFields {
    let mut ext = ExtFields::new();
    ext.insert("consumerGroup", "g");
    ext.insert("topic", "t");
    ext.insert("queueId", "\u{1}".repeat(3_500_000));
    ext.insert("queueOffset", "0");
    ext.insert("maxMsgNums", "32");
    ext.insert("sysFlag", "0");
    ext.insert("commitOffset", "0");
    ext.insert("suspendTimeoutMillis", "0");
    ext
}

#[test]
fn a_huge_invalid_field_is_echoed_clipped_and_plain() {
    let err = PullMessageRequestHeader::decode(&hostile_pull_fields()).unwrap_err();
    let text = err.to_string();
    assert!(text.len() < 400, "remark of {} bytes", text.len());
    assert!(text.contains("queueId"), "{text}");
    assert!(text.contains("…(+3499744 bytes)"), "{text}");
    assert!(!text.contains("\\u{1}"), "Debug escapes: {text}");
}

#[test]
fn a_header_over_24_bits_is_an_error_and_leaves_the_buffer_alone() {
    for st in [SerializeType::Json, SerializeType::RocketMq] {
        let mut h = Header::request(11, 1, st);
        h.ext_fields.insert("big", "x".repeat(HEADER_BYTES_MAX + 1));
        let mut dst = BytesMut::from(&b"keep"[..]);
        let err = encode_frame(&h, b"body", &mut dst).unwrap_err();
        assert!(matches!(err, EncodeError::HeaderTooLarge { .. }), "{err}");
        assert_eq!(&dst[..], b"keep");
        let err = encode_frame_head(&h, 4, &mut dst).unwrap_err();
        assert!(matches!(err, EncodeError::HeaderTooLarge { .. }), "{err}");
        assert_eq!(&dst[..], b"keep");
    }
}

#[test]
fn a_frame_over_31_bits_is_an_error() {
    let h = Header::request(11, 1, SerializeType::RocketMq);
    let mut dst = BytesMut::new();
    let err = encode_frame_head(&h, i32::MAX as usize, &mut dst).unwrap_err();
    assert!(matches!(err, EncodeError::FrameTooLarge { .. }), "{err}");
    assert!(dst.is_empty());
}

#[test]
fn a_binary_key_over_i16_is_an_error() {
    let mut h = Header::request(11, 1, SerializeType::RocketMq);
    h.ext_fields.insert("k".repeat(40_000), "v");
    let err = encode_frame_to_bytes(&h, b"").unwrap_err();
    assert_eq!(err, EncodeError::KeyTooLong { length: 40_000 });
    // The JSON encoding has no such limit.
    h.serialize_type = SerializeType::Json;
    encode_frame_to_bytes(&h, b"").expect("encodes");
}

#[test]
fn a_long_remark_is_clipped_by_the_builder() {
    let h = Header::request(11, 1, SerializeType::RocketMq).with_remark("r".repeat(1 << 24));
    let remark = h.remark.clone().unwrap();
    assert!(remark.len() <= REMARK_BYTES_MAX + CUT_MARK_BYTES_MAX);
    encode_frame_to_bytes(&h, b"").expect("a clipped remark encodes");
    let short = Header::request(11, 1, SerializeType::Json).with_remark("line one\nline two");
    assert_eq!(short.remark.as_deref(), Some("line one\nline two"));
}

proptest! {
    #[test]
    fn clip_is_bounded_printable_and_a_prefix(value in any::<String>(), max in 0usize..64) {
        let out = clip(&value, max);
        prop_assert!(out.len() <= max + CUT_MARK_BYTES_MAX);
        prop_assert!(!out.chars().any(char::is_control));
        let printable: String =
            value.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
        if value.len() <= max {
            prop_assert_eq!(out, printable);
        } else {
            let kept = out.rsplit_once('…').map(|(k, _)| k).unwrap_or("");
            prop_assert!(printable.starts_with(kept));
            prop_assert!(out.ends_with(" bytes)"));
        }
    }

    /// Whatever ext fields a header has, encoding either succeeds with a frame that
    /// decodes, or fails without touching the buffer.
    #[test]
    fn encoding_never_panics(
        key_len in prop_oneof![0usize..8, 32_760usize..32_780],
        value_len in 0usize..70_000,
        binary in any::<bool>(),
    ) {
        let st = if binary { SerializeType::RocketMq } else { SerializeType::Json };
        let mut h = Header::request(11, 1, st);
        h.ext_fields.insert("k".repeat(key_len), "v".repeat(value_len));
        let mut dst = BytesMut::new();
        match encode_frame(&h, b"", &mut dst) {
            Ok(()) => {
                let frame = ramjet_proto::frame::decode_frame(&mut dst, usize::MAX)
                    .expect("decodes").expect("whole");
                prop_assert_eq!(frame.header.ext_fields, h.ext_fields);
            }
            Err(_) => prop_assert!(dst.is_empty()),
        }
    }
}

#[test]
fn echo_limit_is_the_documented_one() {
    assert_eq!(ECHO_BYTES_MAX, 256);
    // The binary decoder of a hostile header still works on a clipped error's header.
    let h =
        Header::request(11, 1, SerializeType::RocketMq).with_remark(clip(&"\u{1}".repeat(10), 4));
    let mut dst = BytesMut::new();
    binary_header::encode(&h, &mut dst);
    assert_eq!(binary_header::decode(&dst).unwrap().remark.as_deref(), Some("????…(+6 bytes)"));
}
