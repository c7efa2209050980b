//! Client text made safe to echo in a remark or a log line: bounded, printable, plain.
//!
//! A value a client sent (a header field, a config value, a topic name) may be megabytes
//! long. Echoing it whole, or `Debug`-escaped (up to six bytes per byte), can push a
//! response header past the 24-bit header length. Every echo goes through [`clip`].

/// Bytes of one client value that a remark echoes before it is cut.
pub const ECHO_BYTES_MAX: usize = 256;

/// Longest suffix [`clip`] appends: `…(+N bytes)` with N up to `usize::MAX`.
pub const CUT_MARK_BYTES_MAX: usize = "…(+ bytes)".len() + 20;

/// `value` cut to its first `max` bytes (on a character boundary) with `…(+N bytes)`
/// appended when N bytes were cut; control characters become `?`.
///
/// The result is at most `max + CUT_MARK_BYTES_MAX` bytes and is not escaped, so a JSON
/// encoding of it grows by at most the escapes of `"` and `\`.
pub fn clip(value: &str, max: usize) -> String {
    let mut end = value.len().min(max);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let kept = &value[..end];
    let mut out = String::with_capacity(end + CUT_MARK_BYTES_MAX);
    out.extend(kept.chars().map(|c| if c.is_control() { '?' } else { c }));
    if end < value.len() {
        out.push_str(&format!("…(+{} bytes)", value.len() - end));
    }
    out
}

/// [`clip`] with [`ECHO_BYTES_MAX`].
pub fn clip_echo(value: &str) -> String {
    clip(value, ECHO_BYTES_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(clip("TopicTest", 256), "TopicTest");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn long_text_is_cut_with_a_mark() {
        let v = "a".repeat(1000);
        assert_eq!(clip(&v, 4), "aaaa…(+996 bytes)");
    }

    #[test]
    fn control_characters_are_replaced_not_escaped() {
        assert_eq!(clip("a\u{1}b\nc", 256), "a?b?c");
        let v = "\u{1}".repeat(3_500_000);
        let c = clip(&v, ECHO_BYTES_MAX);
        assert!(c.len() <= ECHO_BYTES_MAX + CUT_MARK_BYTES_MAX, "{}", c.len());
        assert!(c.ends_with("…(+3499744 bytes)"), "{c}");
    }

    #[test]
    fn cut_never_splits_a_character() {
        // "é" is two bytes: a cut at 3 keeps one whole "é" and marks 3 bytes cut.
        assert_eq!(clip("ééé", 3), "é…(+4 bytes)");
    }
}
