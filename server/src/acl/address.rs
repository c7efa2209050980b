//! White-list address patterns of `plain_acl.yml`, with the reference's exact semantics
//! (RocketMQ 5.1.4 `acl/plain/RemoteAddressStrategyFactory.java` and
//! `acl/common/AclUtils.java`).
//!
//! | pattern                               | kind     | matches                              |
//! |---------------------------------------|----------|--------------------------------------|
//! | empty or blank                        | Blank    | nothing                              |
//! | `*`, `*.*.*.*`, `*:*:*:*:*:*:*:*`     | Any      | every address                        |
//! | `192.168.1.{1,2,3}`, `2001:db8::{1,2}`| Set      | the listed addresses                 |
//! | `192.168.1.1,192.168.1.2`             | Set      | the listed addresses (no spaces)     |
//! | `192.168.*.*`, `192.168.1-10.*`       | RangeV4  | see below                            |
//! | `2001:db8::1-200`, `2001:db8::*`      | RangeV6  | see below                            |
//! | `192.168.1.1`, `2001:db8::1`          | One      | that address                         |
//!
//! A range pattern is decided by its *first* `*` or `a-b` octet after the first one (octet
//! 1, 2 or 3; the first octet cannot be a wildcard): the octets before it must equal the
//! remote's text, that octet must lie in `[a, b]` (`*` = `[0, 255]`), and every octet
//! after it is ignored, as in the reference (`192.168.*.5` matches `192.168.7.9`). IPv6
//! ranges work the same on the fully expanded, upper-case form (`0DB8:0000:…`), with
//! 16-bit hexadecimal groups.
//!
//! Where the reference would accept a pattern at load and then throw on every match (a
//! range with no usable wildcard, such as `*.1.2.3`), ramjet refuses the pattern at load.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A parsed white-list pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressPattern {
    /// An empty pattern: matches nothing (`BlankRemoteAddressStrategy`).
    Blank,
    /// Matches every address (`NullRemoteAddressStrategy`).
    Any,
    /// One of a set of addresses, each in [`remote_text`] form.
    Set(HashSet<String>),
    /// One address, in [`remote_text`] form.
    One(String),
    /// An IPv4 range on octet `index`, after the textual prefix `head` (ends with `.`).
    RangeV4 {
        /// The octets before the range, as written, each followed by `.`.
        head: String,
        /// Which octet (1..=3) the range applies to.
        index: usize,
        /// Lowest octet value allowed.
        start: u32,
        /// Highest octet value allowed.
        end: u32,
    },
    /// An IPv6 range on group `index` of the expanded form, after the prefix `head`.
    RangeV6 {
        /// The expanded, upper-case groups before the range.
        head: String,
        /// Which 16-bit group the range applies to.
        index: usize,
        /// Lowest group value allowed.
        start: u32,
        /// Highest group value allowed.
        end: u32,
    },
}

/// A pattern the reference refuses to load (its `AclException` at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// Why it was refused.
    pub reason: &'static str,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad address pattern {:?}: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for PatternError {}

/// The text the reference compares patterns with: dotted IPv4 (an IPv4-mapped IPv6
/// address counts as IPv4, as Java sees it), or IPv6 as eight upper-case 4-digit groups.
pub fn remote_text(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => expand_v6(&v6),
    }
}

fn expand_v6(v6: &Ipv6Addr) -> String {
    let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:04X}")).collect();
    groups.join(":")
}

/// `StringUtils.split(s, sep)`: split on `sep`, dropping empty tokens.
fn split_nonempty(s: &str, sep: char) -> Vec<&str> {
    s.split(sep).filter(|t| !t.is_empty()).collect()
}

impl AddressPattern {
    /// Parses one pattern as `RemoteAddressStrategyFactory.getRemoteAddressStrategy`.
    ///
    /// # Errors
    /// [`PatternError`] where the reference throws at load, and for a range pattern
    /// without a usable wildcard (which the reference would throw on at every match).
    pub fn parse(pattern: &str) -> Result<AddressPattern, PatternError> {
        let err = |reason| PatternError { pattern: pattern.to_string(), reason };
        if pattern.trim().is_empty() {
            return Ok(AddressPattern::Blank);
        }
        if matches!(pattern, "*" | "*.*.*.*" | "*:*:*:*:*:*:*:*") {
            return Ok(AddressPattern::Any);
        }
        if pattern.ends_with('}') {
            let sep = if pattern.contains(':') { ':' } else { '.' };
            let parts = split_nonempty(pattern, sep);
            if sep == '.' && parts.len() < 4 {
                return Err(err("a {..} list needs four dotted parts"));
            }
            let last = parts.last().copied().unwrap_or_default();
            if !last.starts_with('{') {
                return Err(err("a {..} list must be the last part"));
            }
            let prefix = pattern.split('{').next().unwrap_or_default();
            // `partialAddress.substring(1, length - 1)`: drop the braces.
            let inner = last.get(1..last.len() - 1).unwrap_or_default();
            let list: Vec<String> =
                split_nonempty(inner, ',').iter().map(|t| format!("{prefix}{t}")).collect();
            return address_set(list.iter().map(String::as_str)).map_err(err);
        }
        if pattern.contains(',') {
            return address_set(split_nonempty(pattern, ',').into_iter()).map_err(err);
        }
        if pattern.contains('*') || pattern.contains('-') {
            return if pattern.contains(':') {
                range_v6(pattern).map_err(err)
            } else {
                range_v4(pattern).map_err(err)
            };
        }
        one_address(pattern).map(AddressPattern::One).map_err(err)
    }

    /// True when `remote` matches, as the strategy's `match`.
    pub fn matches(&self, remote: IpAddr) -> bool {
        // The text form is built only for the patterns that compare text.
        let text = match self {
            AddressPattern::Blank => return false,
            AddressPattern::Any => return true,
            _ => remote_text(remote),
        };
        match self {
            AddressPattern::Blank => false,
            AddressPattern::Any => true,
            AddressPattern::Set(set) => set.contains(&text),
            AddressPattern::One(one) => *one == text,
            AddressPattern::RangeV4 { head, index, start, end } => {
                let IpAddr::V4(v4) = remote.to_canonical() else { return false };
                let octet = v4.octets().get(*index).copied().map(u32::from);
                text.starts_with(head.as_str()) && octet.is_some_and(|o| *start <= o && o <= *end)
            }
            AddressPattern::RangeV6 { head, index, start, end } => {
                let IpAddr::V6(_) = remote.to_canonical() else { return false };
                let group = text.get(5 * index..5 * index + 4);
                let value = group.and_then(|g| u32::from_str_radix(g, 16).ok());
                text.starts_with(head.as_str()) && value.is_some_and(|v| *start <= v && v <= *end)
            }
        }
    }
}

/// An exact address in [`remote_text`] form (`InetAddressValidator` + `expandIP`).
fn one_address(text: &str) -> Result<String, &'static str> {
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Ok(v4.to_string());
    }
    if let Ok(v6) = text.parse::<Ipv6Addr>() {
        return Ok(expand_v6(&v6));
    }
    Err("not an IPv4 or IPv6 address")
}

fn address_set<'a>(list: impl Iterator<Item = &'a str>) -> Result<AddressPattern, &'static str> {
    let set = list.map(one_address).collect::<Result<HashSet<_>, _>>()?;
    Ok(AddressPattern::Set(set))
}

/// `Integer.parseInt` in `radix`, accepting a leading sign as Java does.
fn parse_int(text: &str, radix: u32) -> Result<i64, &'static str> {
    i64::from_str_radix(text, radix).map_err(|_| "not a number")
}

/// One range part (`*` or `a-b`), as `analysis` / `ipv6Analysis`; `None` for a plain part.
fn range_part(value: &str, radix: u32, max: i64) -> Result<Option<(u32, u32)>, &'static str> {
    if value == "*" {
        return Ok(Some((0, max as u32)));
    }
    if !value.contains('-') {
        return Ok(None);
    }
    if value.starts_with('-') {
        return Err("a range cannot start with '-'");
    }
    let bounds = split_nonempty(value, '-');
    let (Some(a), Some(b)) = (bounds.first(), bounds.get(1)) else {
        return Err("a range needs two bounds");
    };
    let (start, end) = (parse_int(a, radix)?, parse_int(b, radix)?);
    if !(0..=max).contains(&start) || !(0..=max).contains(&end) || start > end {
        return Err("range bounds out of scope or reversed");
    }
    Ok(Some((start as u32, end as u32)))
}

fn range_v4(pattern: &str) -> Result<AddressPattern, &'static str> {
    let parts = split_nonempty(pattern, '.');
    for index in 1..=3 {
        let part = parts.get(index).ok_or("an IPv4 range needs four dotted parts")?;
        // The reference keeps going while `end == 0`, so `0-0` counts as no range.
        let Some((start, end)) = range_part(part.trim(), 10, 255)? else { continue };
        if end == 0 {
            continue;
        }
        // AclUtils.verify(pattern, index - 1): four parts, the leading ones in 0..=255.
        if parts.len() != 4 {
            return Err("an IPv4 range needs four dotted parts");
        }
        for p in parts.iter().take(index - 1) {
            if !(0..=255).contains(&parse_int(p.trim(), 10)?) {
                return Err("octet out of 0..=255");
            }
        }
        let head: String = parts.iter().take(index).map(|p| format!("{}.", p.trim())).collect();
        return Ok(AddressPattern::RangeV4 { head, index, start, end });
    }
    Err("no '*' or 'a-b' in octets 2 to 4")
}

fn range_v6(pattern: &str) -> Result<AddressPattern, &'static str> {
    ipv6_shape_check(pattern)?;
    let parts = split_nonempty(pattern, ':');
    for index in 1..parts.len() {
        let part = parts.get(index).copied().unwrap_or_default().trim();
        let Some((start, end)) = range_part(part, 16, 0xFFFF)? else { continue };
        if end == 0 {
            continue;
        }
        // AclUtils.verify(pattern, index - 1) on the expanded pattern.
        let expanded = expand_ip(pattern, 8);
        let groups = split_nonempty(&expanded, ':');
        for i in 0..index.saturating_sub(1) {
            let g = groups.get(i).ok_or("too few IPv6 groups")?;
            if !(0..=0xFFFF).contains(&parse_int(g, 16)?) {
                return Err("IPv6 group out of scope");
            }
        }
        let head = v6_head(pattern)?;
        let index = split_nonempty(&head, ':').len();
        return Ok(AddressPattern::RangeV6 { head, index, start, end });
    }
    Err("no '*' or 'a-b' group after the first")
}

/// `AclUtils.IPv6AddressCheck`: `*` only at the very end; `-` only in the last group, or
/// the second-to-last when the pattern ends in `*`.
fn ipv6_shape_check(pattern: &str) -> Result<(), &'static str> {
    let asterisk = pattern.find('*');
    if asterisk.is_some_and(|a| a != pattern.len() - 1) {
        return Err("'*' must be the last character");
    }
    if let Some(minus) = pattern.find('-') {
        let last = pattern.rfind(':').unwrap_or(0);
        let bound = match asterisk {
            None => Some(last),
            Some(_) => pattern.get(..last).and_then(|p| p.rfind(':')),
        };
        if bound.is_some_and(|b| minus <= b) {
            return Err("'-' allowed only in the last group");
        }
    }
    Ok(())
}

/// `AclUtils.v6ipProcess`: the expanded prefix before the range group.
fn v6_head(pattern: &str) -> Result<String, &'static str> {
    let (star, minus) = (pattern.contains('*'), pattern.contains('-'));
    let last = pattern.rfind(':').ok_or("no ':' in an IPv6 pattern")?;
    let (sub, part) = if star && minus {
        let second = pattern.get(..last).and_then(|p| p.rfind(':')).ok_or("too few groups")?;
        (pattern.get(..second).unwrap_or_default(), 6)
    } else {
        (pattern.get(..last).unwrap_or_default(), 7)
    };
    Ok(expand_ip(sub, part))
}

/// `AclUtils.expandIP(text, part)`: upper-case, widen `::` to reach `part` groups, pad
/// each group to four digits.
fn expand_ip(text: &str, part: usize) -> String {
    let mut text = text.to_uppercase();
    let separators = text.matches(':').count();
    if part > separators {
        let pad = ":".repeat(part - separators + 1);
        text = text.replace("::", &pad);
    }
    let groups: Vec<String> = text.split(':').map(|g| format!("{g:0>4}")).collect();
    groups.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, remote: &str) -> bool {
        let p = AddressPattern::parse(pattern).unwrap_or_else(|e| panic!("{e}"));
        p.matches(remote.parse().unwrap_or_else(|e| panic!("{remote}: {e}")))
    }

    // Goal: every pattern kind of the reference against matching and non-matching
    // addresses, including the reference's quirk that octets after the range are ignored.
    #[test]
    fn ipv4_patterns_match_as_the_reference() {
        assert!(m("*", "10.0.0.1") && m("*.*.*.*", "10.0.0.1") && m("*", "::1"));
        assert!(!m("", "10.0.0.1") && !m("   ", "10.0.0.1"));
        assert!(m("192.168.1.1", "192.168.1.1") && !m("192.168.1.1", "192.168.1.2"));
        assert!(m("192.168.*.*", "192.168.200.3") && !m("192.168.*.*", "192.169.0.1"));
        assert!(m("192.168.1.*", "192.168.1.77") && !m("192.168.1.*", "192.168.2.77"));
        assert!(m("192.168.1-10.*", "192.168.10.1") && !m("192.168.1-10.*", "192.168.11.1"));
        assert!(m("192.168.1.100-200", "192.168.1.150"));
        assert!(!m("192.168.1.100-200", "192.168.1.99"));
        assert!(m("10.*.*.*", "10.250.3.4") && !m("10.*.*.*", "11.0.0.0"));
        // Octets after the range are ignored, as in RangeRemoteAddressStrategy.match.
        assert!(m("192.168.*.5", "192.168.7.9"));
        assert!(m("192.168.1.{1,2,3}", "192.168.1.2") && !m("192.168.1.{1,2,3}", "192.168.1.4"));
        assert!(m("192.168.1.1,192.168.1.9", "192.168.1.9"));
        assert!(!m("192.168.1.1,192.168.1.9", "192.168.1.8"));
        // An IPv4-mapped IPv6 peer is its IPv4 address, as Java presents it.
        assert!(m("192.168.1.*", "::ffff:192.168.1.5"));
    }

    #[test]
    fn ipv6_patterns_match_as_the_reference() {
        assert!(m("2001:db8::1", "2001:0DB8:0:0:0:0:0:1") && !m("2001:db8::1", "2001:db8::2"));
        assert!(m("*:*:*:*:*:*:*:*", "fe80::1"));
        assert!(m("2001:db8::{1,2}", "2001:db8::2") && !m("2001:db8::{1,2}", "2001:db8::3"));
        assert!(m("2001:db8:0:0:0:0:0:1-ff", "2001:db8::fe"));
        assert!(!m("2001:db8:0:0:0:0:0:1-ff", "2001:db8::100"));
        assert!(m("2001:db8:0:0:0:0:0:*", "2001:db8::abcd"));
        assert!(!m("2001:db8:0:0:0:0:0:*", "2001:db9::abcd"));
        assert!(m("2001:db8:0:0:0:0:1-2:*", "2001:db8::2:9"));
        assert!(!m("2001:db8:0:0:0:0:1-2:*", "2001:db8::3:9"));
        assert!(!m("2001:db8:0:0:0:0:0:*", "10.0.0.1"));
    }

    // Goal: the patterns the reference refuses at load are refused, with a reason.
    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "192.168.1",
            "300.1.1.1",
            "192.168.1.1, 192.168.1.2",
            "192.168.{1,2}",
            "192.168.1.{1,x}",
            "192.168.-1.*",
            "192.168.10-1.*",
            "192.168.1.1-300",
            "*.1.2.3",
            "192.168.1",
            "2001:db8::*:1",
            "2001:db8:1-2::1",
            "not-an-address",
            "01.2.3.4",
        ] {
            assert!(AddressPattern::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn expand_ip_as_acl_utils() {
        assert_eq!(expand_ip("2001:db8::1", 8), "2001:0DB8:0000:0000:0000:0000:0000:0001");
        assert_eq!(
            remote_text("::1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
            "0000:0000:0000:0000:0000:0000:0000:0001"
        );
    }

    // Goal: no pattern text can panic the parser or the matcher (the file is input).
    // Method: every string of up to 5 characters over the characters the grammar uses.
    #[test]
    fn no_pattern_panics() {
        const ALPHABET: &[u8] = b"019.*-:{},f ";
        let remotes: [IpAddr; 3] = ["1.0.9.1", "::1", "ffff::1"]
            .map(|t| t.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let mut text = Vec::new();
        for len in 0..=5u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                let pattern = std::str::from_utf8(&text).unwrap_or_default();
                if let Ok(p) = AddressPattern::parse(pattern) {
                    for r in remotes {
                        let _ = p.matches(r);
                    }
                }
            }
        }
    }
}
