//! The request signature of RocketMQ's plain ACL (ACL 1.0), wire-compatible with the
//! reference's Java clients.
//!
//! Pure: no I/O, no clocks. The client signs with [`sign_request`]; the broker checks with
//! [`verify`]. The reference facts this module builds on (RocketMQ 5.1.4):
//!
//! - `acl/common/AclClientRPCHook.doBeforeRequest`: the client first adds `AccessKey` and,
//!   when it has one, `SecurityToken` to the ext fields, then signs, then adds `Signature`.
//! - `AclClientRPCHook.parseRequestContent` + `AclUtils.combineRequestContent`: the content is
//!   the *values* (not the keys) of every ext field except `Signature`, concatenated in the
//!   key order of a Java `TreeMap<String, String>` (UTF-16 code-unit order), as UTF-8,
//!   followed by the raw body bytes.
//! - `acl/plain/PlainAccessResource.parse` (broker side): the same, except that the
//!   `_UNIQUE_KEY_QUERY` field is also left out when the request's `version` is at most
//!   `V4_9_3` (ordinal 399 in `common/MQVersion.java`).
//! - `acl/common/AclSigner`: HmacSHA1 keyed with the UTF-8 bytes of the secret key, the MAC
//!   base64-encoded (standard alphabet, padded: 20 bytes give 28 characters).
//! - `PlainPermissionManager.validate` compares the two base64 strings; ramjet decodes the
//!   given one (strictly) and compares the tags in constant time (`Mac::verify_slice`).
//!
//! Known weakness, kept for compatibility: values are joined without separators or keys,
//! so characters can move between adjacent fields without changing the signature
//! (`b=TopicA, c=TBW102` and `b=TopicAT, c=BW102` sign alike), and nothing binds a
//! signature to a time, so a captured request can be replayed. Only TLS closes both.
//!
//! ```text
//! content = value(k1) ‖ value(k2) ‖ … ‖ body      k1 < k2 < … (Signature excluded)
//! Signature = base64(HmacSHA1(key = utf8(secretKey), content))
//! ```

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::command::ExtFields;

/// Ext field that carries the account's access key.
pub const ACCESS_KEY: &str = "AccessKey";
/// Ext field that carries the signature.
pub const SIGNATURE: &str = "Signature";
/// Ext field that carries an optional security token (signed, never checked by the
/// reference's plain validator).
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// The unique-key query flag (`MixAll.UNIQUE_MSG_QUERY_FLAG`), left out of the broker's
/// content for old clients.
pub const UNIQUE_MSG_QUERY_FLAG: &str = "_UNIQUE_KEY_QUERY";
/// `MQVersion.Version.V4_9_3.ordinal()`: requests at or below it have
/// [`UNIQUE_MSG_QUERY_FLAG`] left out of the content the broker checks.
pub const VERSION_V4_9_3: i32 = 399;

/// What a client needs to sign requests.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account's access key, sent in clear.
    pub access_key: String,
    /// The shared secret; never sent.
    pub secret_key: String,
    /// Optional security token, sent and signed when present.
    pub security_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("security_token", &self.security_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Which side builds the content: they differ only in the unique-key query flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRule {
    /// The client's rule: every field but `Signature`.
    Client,
    /// The broker's rule for a request of this `version`: also leaves out
    /// `_UNIQUE_KEY_QUERY` when `version <= VERSION_V4_9_3`.
    Broker {
        /// The request header's `version`.
        version: i32,
    },
}

/// The bytes that are signed: the sorted ext field values (see the module doc), then `body`.
///
/// A key that occurs twice counts once, with its last value, as a Java map built from the
/// decoded header would hold it.
///
/// ```
/// use ramjet_proto::acl::{signed_content, ContentRule};
/// use ramjet_proto::ExtFields;
/// let mut ext = ExtFields::new();
/// ext.insert("b", "2");
/// ext.insert("a", "1");
/// ext.insert("Signature", "x");
/// assert_eq!(signed_content(&ext, b"body", ContentRule::Client), b"12body");
/// ```
pub fn signed_content(ext: &ExtFields, body: &[u8], rule: ContentRule) -> Vec<u8> {
    let values = signed_values(ext, rule);
    let len = body.len() + values.iter().map(|v| v.len()).sum::<usize>();
    let mut content = Vec::with_capacity(len);
    for value in values {
        content.extend_from_slice(value.as_bytes());
    }
    content.extend_from_slice(body);
    content
}

/// The values that are signed, in order (the content without the body; see the module
/// doc). Borrows from `ext`: nothing is copied but the list of references.
fn signed_values(ext: &ExtFields, rule: ContentRule) -> Vec<&str> {
    let skip_unique = matches!(rule, ContentRule::Broker { version } if version <= VERSION_V4_9_3);
    let mut pairs: Vec<(&str, &str)> = ext
        .iter()
        .filter(|(k, _)| *k != SIGNATURE && !(skip_unique && *k == UNIQUE_MSG_QUERY_FLAG))
        .collect();
    // Java's String.compareTo orders by UTF-16 code units, which differs from UTF-8 byte
    // order only for characters above U+FFFF against U+E000..U+FFFF. A stable sort keeps
    // duplicates in arrival order so the last one can win below.
    pairs.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    let mut values = Vec::with_capacity(pairs.len());
    for (i, (key, value)) in pairs.iter().enumerate() {
        let overridden = pairs.get(i + 1).is_some_and(|(next, _)| next == key);
        if !overridden {
            values.push(*value);
        }
    }
    values
}

/// The HMAC of the request's content, fed field by field and then the body, so the body
/// is never copied. `None` only if the MAC refused the key, which HMAC never does (RFC 2104
/// hashes long keys, pads short ones); the caller treats it as a failure, not a panic.
fn content_mac(
    ext: &ExtFields,
    body: &[u8],
    rule: ContentRule,
    secret_key: &str,
) -> Option<Hmac<Sha1>> {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()).ok()?;
    for value in signed_values(ext, rule) {
        mac.update(value.as_bytes());
    }
    mac.update(body);
    Some(mac)
}

/// `base64(HmacSHA1(utf8(secret_key), content))`, as `AclSigner.calSignature`.
///
/// ```
/// // python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b'12345678',
/// //   b'hello',hashlib.sha1).digest()).decode())"
/// assert_eq!(ramjet_proto::acl::signature(b"hello", "12345678"),
///            "XDYb11J68gEBTjsZbXd1ri9i2fM=");
/// ```
pub fn signature(content: &[u8], secret_key: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here; the fallback
    // keeps this free of panics anyway.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()) else {
        return String::new();
    };
    mac.update(content);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Signs a request in place as the reference's `AclClientRPCHook` does: sets `AccessKey`
/// (and `SecurityToken` when the credentials have one), then `Signature` over all fields
/// and `body` (streamed into the MAC: the body is not copied).
///
/// Call it last, after every other ext field is set: a field added afterwards breaks the
/// signature.
///
/// ```
/// use ramjet_proto::acl::{sign_request, verify, Credentials, ContentRule};
/// use ramjet_proto::ExtFields;
/// let creds = Credentials {
///     access_key: "RocketMQ".into(),
///     secret_key: "12345678".into(),
///     security_token: None,
/// };
/// let mut ext = ExtFields::new();
/// ext.insert("topic", "TopicA");
/// sign_request(&mut ext, b"body", &creds);
/// assert!(verify(&ext, b"body", ContentRule::Client, "12345678"));
/// ```
pub fn sign_request(ext: &mut ExtFields, body: &[u8], credentials: &Credentials) {
    ext.insert(ACCESS_KEY, credentials.access_key.as_str());
    if let Some(token) = &credentials.security_token {
        ext.insert(SECURITY_TOKEN, token.as_str());
    }
    let signature = content_mac(ext, body, ContentRule::Client, &credentials.secret_key)
        .map(|mac| base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    ext.insert(SIGNATURE, signature);
}

/// Length of an HmacSHA1 tag in bytes.
const MAC_BYTES: usize = 20;

/// True when the request's `Signature` field equals the signature of its content under
/// `secret_key`. A missing `Signature` is false.
///
/// The content is streamed into the MAC (the body is not copied) and the given signature
/// is base64-decoded and compared with `Mac::verify_slice`, in constant time. The decoder
/// is strict (canonical padding and trailing bits), so exactly one text decodes to a given
/// tag: the check accepts what the reference's string comparison accepts, no more.
pub fn verify(ext: &ExtFields, body: &[u8], rule: ContentRule, secret_key: &str) -> bool {
    let Some(given) = ext.get(SIGNATURE) else {
        return false;
    };
    // A valid signature is 28 characters; anything decoding to more than a tag is wrong.
    let mut tag = [0u8; MAC_BYTES + 3];
    let Ok(n) = base64::engine::general_purpose::STANDARD.decode_slice(given, &mut tag) else {
        return false;
    };
    let Some(mac) = content_mac(ext, body, rule, secret_key) else {
        return false;
    };
    n == MAC_BYTES && mac.verify_slice(&tag[..n]).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(pairs: &[(&str, &str)]) -> ExtFields {
        let mut e = ExtFields::new();
        for (k, v) in pairs {
            e.push((*k).to_string(), (*v).to_string());
        }
        e
    }

    // Goal: the content is values only, in key order, Signature left out, body appended.
    #[test]
    fn content_is_sorted_values_then_body() {
        let e = ext(&[("topic", "T"), ("AccessKey", "ak"), ("Signature", "s"), ("a", "1")]);
        // Sorted keys: AccessKey < Signature < a < topic (uppercase before lowercase).
        assert_eq!(signed_content(&e, b"BODY", ContentRule::Client), b"ak1TBODY");
        assert_eq!(signed_content(&e, b"", ContentRule::Client), b"ak1T");
    }

    // Goal: wire compatibility includes the reference's lack of separators: moving a
    // character across a field boundary keeps the content (and so the signature).
    #[test]
    fn content_has_no_separators_as_the_reference() {
        let a = ext(&[("b", "TopicA"), ("c", "TBW102")]);
        let b = ext(&[("b", "TopicAT"), ("c", "BW102")]);
        let rule = ContentRule::Client;
        assert_eq!(signed_content(&a, b"", rule), signed_content(&b, b"", rule));
    }

    // Goal: the unique-key flag is excluded only by the broker and only for old versions.
    #[test]
    fn unique_key_query_flag_excluded_for_old_versions_only() {
        let e = ext(&[("topic", "T"), (UNIQUE_MSG_QUERY_FLAG, "true")]);
        assert_eq!(signed_content(&e, b"", ContentRule::Client), b"trueT");
        let old = ContentRule::Broker { version: VERSION_V4_9_3 };
        assert_eq!(signed_content(&e, b"", old), b"T");
        let new = ContentRule::Broker { version: VERSION_V4_9_3 + 1 };
        assert_eq!(signed_content(&e, b"", new), b"trueT");
    }

    // Goal: a duplicated key counts once with its last value (Java map semantics).
    #[test]
    fn duplicate_key_last_value_wins() {
        let e = ext(&[("k", "first"), ("j", "J"), ("k", "last")]);
        assert_eq!(signed_content(&e, b"", ContentRule::Client), b"Jlast");
    }

    // Goal: ordering is Java's UTF-16 order, not UTF-8 byte order. U+FFFD (one UTF-16 unit,
    // 0xFFFD) sorts after U+1F600 (surrogates 0xD83D..) in Java, before it in UTF-8 bytes.
    #[test]
    fn key_order_is_utf16() {
        let e = ext(&[("\u{FFFD}", "A"), ("\u{1F600}", "B")]);
        assert_eq!(signed_content(&e, b"", ContentRule::Client), b"BA");
    }

    // Goal: the MAC matches an independent implementation. Expected values from:
    //   python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(
    //     b'12345678', b'hello', hashlib.sha1).digest()).decode())"
    //   -> XDYb11J68gEBTjsZbXd1ri9i2fM=
    //   python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(
    //     b'12345678', b'RocketMQ0TopicA{\"k\":1}', hashlib.sha1).digest()).decode())"
    //   -> 3jOIPUHn7HtmDMJpesz+WJof04A=
    #[test]
    fn signature_matches_python_hmac() {
        assert_eq!(signature(b"hello", "12345678"), "XDYb11J68gEBTjsZbXd1ri9i2fM=");
    }

    const SIGNED_REQUEST: &str = "3jOIPUHn7HtmDMJpesz+WJof04A=";

    // Goal: sign_request adds AccessKey before signing, so the key is part of the content.
    #[test]
    fn sign_request_signs_access_key_and_body() {
        let creds = Credentials {
            access_key: "RocketMQ".into(),
            secret_key: "12345678".into(),
            security_token: None,
        };
        let mut e = ext(&[("topic", "TopicA"), ("queueId", "0")]);
        sign_request(&mut e, br#"{"k":1}"#, &creds);
        // Sorted: AccessKey, queueId, topic.
        assert_eq!(e.get(SIGNATURE), Some(SIGNED_REQUEST));
        assert_eq!(e.get(ACCESS_KEY), Some("RocketMQ"));
        assert!(verify(&e, br#"{"k":1}"#, ContentRule::Broker { version: 401 }, "12345678"));
    }

    // Goal: any change to a value, the body, the key or the signature fails verification.
    #[test]
    fn verify_refuses_tampering() {
        let creds = Credentials {
            access_key: "RocketMQ".into(),
            secret_key: "12345678".into(),
            security_token: Some("tok".into()),
        };
        let mut e = ext(&[("topic", "TopicA")]);
        sign_request(&mut e, b"body", &creds);
        assert_eq!(e.get(SECURITY_TOKEN), Some("tok"));
        let rule = ContentRule::Client;
        assert!(verify(&e, b"body", rule, "12345678"));
        assert!(!verify(&e, b"bodY", rule, "12345678"));
        assert!(!verify(&e, b"body", rule, "12345679"));
        let mut tampered = e.clone();
        tampered.insert("topic", "TopicB");
        assert!(!verify(&tampered, b"body", rule, "12345678"));
        let mut added = e.clone();
        added.insert("extra", "x");
        assert!(!verify(&added, b"body", rule, "12345678"));
        let mut bad_sig = e.clone();
        bad_sig.insert(SIGNATURE, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert!(!verify(&bad_sig, b"body", rule, "12345678"));
        let mut short_sig = e.clone();
        short_sig.insert(SIGNATURE, "");
        assert!(!verify(&short_sig, b"body", rule, "12345678"));
        let unsigned = ext(&[("topic", "TopicA"), (ACCESS_KEY, "RocketMQ")]);
        assert!(!verify(&unsigned, b"body", rule, "12345678"));
    }

    // Goal: the decoded comparison accepts exactly the reference's string: a text with
    // other trailing bits (same tag under a lax decoder), no padding, or extra characters
    // is refused.
    #[test]
    fn verify_accepts_only_the_canonical_text() {
        let creds = Credentials {
            access_key: "RocketMQ".into(),
            secret_key: "12345678".into(),
            security_token: None,
        };
        let mut e = ext(&[("topic", "TopicA"), ("queueId", "0")]);
        sign_request(&mut e, br#"{"k":1}"#, &creds);
        let rule = ContentRule::Client;
        assert!(verify(&e, br#"{"k":1}"#, rule, "12345678"));
        for variant in [
            "3jOIPUHn7HtmDMJpesz+WJof04B=",
            "3jOIPUHn7HtmDMJpesz+WJof04A",
            "3jOIPUHn7HtmDMJpesz+WJof04A=AAAA",
        ] {
            let mut v = e.clone();
            v.insert(SIGNATURE, variant);
            assert!(!verify(&v, br#"{"k":1}"#, rule, "12345678"), "{variant}");
        }
    }

    #[test]
    fn credentials_debug_hides_secret() {
        let creds = Credentials {
            access_key: "ak".into(),
            secret_key: "verysecret".into(),
            security_token: Some("tok".into()),
        };
        let text = format!("{creds:?}");
        assert!(!text.contains("verysecret") && !text.contains("tok\""));
    }
}
