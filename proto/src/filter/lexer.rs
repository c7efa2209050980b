//! Tokens of RocketMQ's SQL92 selector grammar (`SelectorParser.jj`), scanned lazily.
//!
//! The scanner is pulled one token at a time by the parser, like the reference's generated
//! token manager, so text after the point where the grammar stops reading is never scanned.

use super::ParseError;

/// One token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: Kind,
    pub offset: usize,
}

/// Token kinds. Keywords are case-insensitive; literals keep their decoded text.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Not,
    And,
    Or,
    Between,
    In,
    True,
    False,
    Null,
    Is,
    Contains,
    StartsWith,
    EndsWith,
    /// `0 | [1-9][0-9]*[lL]?`, suffix kept.
    Decimal(String),
    /// Floating literal text, e.g. `5.`, `.5E10`, `5e-3`.
    Float(String),
    /// String literal with `''` already decoded to `'`.
    Str(String),
    /// Property name.
    Id(String),
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Eof,
}

/// The scanner over the selector text.
pub(super) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

const KEYWORDS: [(&str, Kind); 12] = [
    ("NOT", Kind::Not),
    ("AND", Kind::And),
    ("OR", Kind::Or),
    ("BETWEEN", Kind::Between),
    ("IN", Kind::In),
    ("TRUE", Kind::True),
    ("FALSE", Kind::False),
    ("NULL", Kind::Null),
    ("IS", Kind::Is),
    ("CONTAINS", Kind::Contains),
    ("STARTSWITH", Kind::StartsWith),
    ("ENDSWITH", Kind::EndsWith),
];

fn is_id_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

fn is_id_part(b: u8) -> bool {
    is_id_start(b) || b.is_ascii_digit()
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.bytes().get(i).copied()
    }

    /// Skips whitespace and comments. A `--` comment counts only when a line end closes it
    /// (as in the reference); otherwise the `-` is a token.
    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match self.at(self.pos) {
                Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0c) => self.pos += 1,
                Some(b'-') if self.at(self.pos + 1) == Some(b'-') => {
                    let rest = &self.bytes()[self.pos..];
                    match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                        Some(end) => {
                            self.pos += end + 1;
                            if rest[end] == b'\r' && self.at(self.pos) == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        None => return Ok(()),
                    }
                }
                Some(b'/') if self.at(self.pos + 1) == Some(b'*') => {
                    match self.src[self.pos + 2..].find("*/") {
                        Some(end) => self.pos += 2 + end + 2,
                        None => {
                            return Err(ParseError::new(self.pos, "unterminated comment"));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Scans the next token.
    pub(super) fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let start = self.pos;
        let Some(b) = self.at(start) else {
            return Ok(Token { kind: Kind::Eof, offset: start });
        };
        let kind = match b {
            b'\'' => self.string(start)?,
            b'0'..=b'9' | b'.' => self.number(start)?,
            b if is_id_start(b) => {
                let len = self.bytes()[start..].iter().take_while(|&&c| is_id_part(c)).count();
                let word = &self.src[start..start + len];
                self.pos = start + len;
                KEYWORDS
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(word))
                    .map(|(_, kind)| kind.clone())
                    .unwrap_or_else(|| Kind::Id(word.to_owned()))
            }
            _ => {
                let next = self.at(start + 1);
                let (kind, len) = match (b, next) {
                    (b'<', Some(b'>')) => (Kind::Ne, 2),
                    (b'<', Some(b'=')) => (Kind::Le, 2),
                    (b'>', Some(b'=')) => (Kind::Ge, 2),
                    (b'<', _) => (Kind::Lt, 1),
                    (b'>', _) => (Kind::Gt, 1),
                    (b'=', _) => (Kind::Eq, 1),
                    (b'(', _) => (Kind::LParen, 1),
                    (b')', _) => (Kind::RParen, 1),
                    (b',', _) => (Kind::Comma, 1),
                    (b'+', _) => (Kind::Plus, 1),
                    (b'-', _) => (Kind::Minus, 1),
                    _ => {
                        let ch = self.src[start..].chars().next().unwrap_or('?');
                        return Err(ParseError::new(start, format!("unexpected character {ch:?}")));
                    }
                };
                self.pos = start + len;
                kind
            }
        };
        Ok(Token { kind, offset: start })
    }

    fn string(&mut self, start: usize) -> Result<Kind, ParseError> {
        let mut out = String::new();
        let mut i = start + 1;
        loop {
            let Some(rest) = self.src.get(i..) else {
                return Err(ParseError::new(start, "unterminated string literal"));
            };
            match rest.find('\'') {
                None => return Err(ParseError::new(start, "unterminated string literal")),
                Some(q) => {
                    out.push_str(&rest[..q]);
                    i += q + 1;
                    if self.at(i) == Some(b'\'') {
                        out.push('\'');
                        i += 1;
                    } else {
                        self.pos = i;
                        return Ok(Kind::Str(out));
                    }
                }
            }
        }
    }

    fn digits(&self, from: usize) -> usize {
        self.bytes()[from..].iter().take_while(|b| b.is_ascii_digit()).count()
    }

    /// Length of an exponent `[eE][+-]?[0-9]+` at `from`, or 0.
    fn exponent(&self, from: usize) -> usize {
        if !matches!(self.at(from), Some(b'e' | b'E')) {
            return 0;
        }
        let sign = usize::from(matches!(self.at(from + 1), Some(b'+' | b'-')));
        let d = self.digits(from + 1 + sign);
        if d == 0 {
            0
        } else {
            1 + sign + d
        }
    }

    /// Longest match of the decimal and floating literal rules.
    fn number(&mut self, start: usize) -> Result<Kind, ParseError> {
        let int = self.digits(start);
        let float_len = if int == 0 {
            // "." digits+ exponent?
            let frac = self.digits(start + 1);
            if frac == 0 {
                return Err(ParseError::new(start, "unexpected character '.'"));
            }
            1 + frac + self.exponent(start + 1 + frac)
        } else if self.at(start + int) == Some(b'.') {
            let frac = self.digits(start + int + 1);
            int + 1 + frac + self.exponent(start + int + 1 + frac)
        } else {
            let e = self.exponent(start + int);
            if e == 0 {
                0
            } else {
                int + e
            }
        };
        let decimal_len = if int == 0 {
            0
        } else if self.at(start) == Some(b'0') {
            1
        } else {
            int + usize::from(matches!(self.at(start + int), Some(b'l' | b'L')))
        };
        if float_len > decimal_len {
            self.pos = start + float_len;
            Ok(Kind::Float(self.src[start..self.pos].to_owned()))
        } else {
            self.pos = start + decimal_len;
            Ok(Kind::Decimal(self.src[start..self.pos].to_owned()))
        }
    }
}
