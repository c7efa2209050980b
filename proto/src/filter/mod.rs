//! RocketMQ's SQL92 property filter (`ExpressionType.SQL92`): compile a consumer's selector
//! once, evaluate it against many messages' properties. Pure: no I/O.
//!
//! Semantics follow the reference's `filter` module (`SelectorParser.jj` and the classes in
//! `filter/expression`): keywords are case-insensitive; property values are strings; `<`,
//! `<=`, `>`, `>=` and `=` convert a string property to the literal's type (`int`, `long`,
//! `double`, boolean); a property that does not convert makes evaluation fail, which the
//! reference's pull filter counts as "no match"; a missing property is NULL and an
//! expression that evaluates to NULL does not match. `TAGS` is an ordinary property (the
//! message's tags live in the `TAGS` property).
//!
//! Work is bounded: a selector longer than [`MAX_EXPRESSION_LEN`] bytes or nested deeper
//! than [`MAX_DEPTH`] is refused at compile time, so evaluation recursion is at most
//! [`MAX_DEPTH`] frames and its time is linear in the selector and property sizes.

mod eval;
mod lexer;
mod parser;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use eval::{Expr, Val};

/// Longest selector accepted, in bytes (the reference has no cap).
pub const MAX_EXPRESSION_LEN: usize = 16 * 1024;

/// Deepest nesting accepted: of parentheses and unary operators while parsing, and of the
/// compiled tree (`AND` / `OR` chains are flattened, so long chains do not count).
pub const MAX_DEPTH: usize = 64;

/// A selector that does not compile: where (byte offset into the selector) and why.
///
/// The reference answers a bad selector at CHECK_CLIENT_CONFIG (46) with
/// SUBSCRIPTION_PARSE_FAILED (23) and the exception's message as remark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the selector where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

impl ParseError {
    fn new(offset: usize, reason: impl Into<String>) -> Self {
        ParseError { offset, reason: reason.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid MessageSelector at offset {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Where evaluation reads a message's properties.
pub trait PropertySource {
    /// The value of property `name`, or `None` when the message has none.
    fn property(&self, name: &str) -> Option<&str>;
}

impl PropertySource for HashMap<String, String> {
    fn property(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl PropertySource for BTreeMap<String, String> {
    fn property(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// A message's raw properties string, `name\u{1}value\u{2}...`, read in place. As in the
/// reference's decoder, an item without `\u{1}` is skipped and a later duplicate wins.
#[derive(Debug, Clone, Copy)]
pub struct RawProperties<'a>(pub &'a str);

impl PropertySource for RawProperties<'_> {
    fn property(&self, name: &str) -> Option<&str> {
        self.0
            .rsplit('\u{2}')
            .filter_map(|item| item.split_once('\u{1}'))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// A compiled SQL92 selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Compiles `selector`, refusing what the reference refuses and what exceeds the caps.
    pub fn compile(selector: &str) -> Result<Filter, ParseError> {
        if selector.len() > MAX_EXPRESSION_LEN {
            return Err(ParseError::new(
                MAX_EXPRESSION_LEN,
                format!("expression longer than {MAX_EXPRESSION_LEN} bytes"),
            ));
        }
        let expr = parser::Parser::new(selector).selector()?;
        Ok(Filter { expr })
    }

    /// Whether a message with these properties passes: the selector evaluates to TRUE.
    /// NULL, FALSE and an evaluation failure all mean "no".
    pub fn matches(&self, props: &dyn PropertySource) -> bool {
        matches!(self.expr.eval(props), Ok(Val::Bool(true)))
    }

    /// Whether a stored record (the commit-log layout) passes, read in place: its
    /// PROPERTIES make the selector TRUE. A record that does not decode does not pass;
    /// properties that are not UTF-8 are read as the reference's decoder does (lossily).
    pub fn matches_record(&self, record: &[u8]) -> bool {
        let Ok(view) = crate::message::RecordView::new(record) else { return false };
        let Ok(raw) = view.properties() else { return false };
        self.matches(&RawProperties(&String::from_utf8_lossy(raw)))
    }
}
