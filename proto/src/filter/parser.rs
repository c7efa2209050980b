//! Recursive-descent parser for the reference's grammar (`SelectorParser.jj`), with its
//! build-time checks (`ComparisonExpression.create*`, `ConstantExpression.create*`,
//! `asBooleanExpression`).
//!
//! Like the reference (`JmsSelector` has no `<EOF>`), parsing stops once an `orExpression`
//! is complete: tokens after it are ignored, but the one token peeked to decide that the
//! expression ended must still scan.

use std::collections::VecDeque;

use super::eval::{compare, CmpOp, Const, Expr, StrOp};
use super::lexer::{Kind, Lexer, Token};
use super::{ParseError, MAX_DEPTH};

pub(super) struct Parser<'a> {
    lexer: Lexer<'a>,
    ahead: VecDeque<Token>,
    depth: usize,
}

type PResult = Result<Expr, ParseError>;

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Parser { lexer: Lexer::new(src), ahead: VecDeque::new(), depth: 0 }
    }

    /// `JmsSelector`: an `orExpression` that must be boolean.
    pub(super) fn selector(&mut self) -> PResult {
        let at = self.peek(0)?.offset;
        let e = self.or_expr()?;
        as_boolean(e, at)
    }

    fn peek(&mut self, n: usize) -> Result<&Token, ParseError> {
        while self.ahead.len() <= n {
            let t = self.lexer.next_token()?;
            self.ahead.push_back(t);
        }
        Ok(&self.ahead[n])
    }

    fn peek_kind(&mut self, n: usize) -> Result<&Kind, ParseError> {
        Ok(&self.peek(n)?.kind)
    }

    fn bump(&mut self) -> Result<Token, ParseError> {
        self.peek(0)?;
        self.ahead.pop_front().ok_or_else(|| ParseError::new(0, "internal: empty lookahead"))
    }

    fn expect(&mut self, kind: &Kind, what: &str) -> Result<Token, ParseError> {
        let t = self.bump()?;
        if &t.kind == kind {
            Ok(t)
        } else {
            Err(unexpected(&t, what))
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(at, format!("expression nested deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> PResult {
        let at = self.peek(0)?.offset;
        let first = self.and_expr()?;
        if self.peek_kind(0)? != &Kind::Or {
            return Ok(first);
        }
        let mut terms = vec![as_boolean(first, at)?];
        while self.peek_kind(0)? == &Kind::Or {
            self.bump()?;
            let at = self.peek(0)?.offset;
            let e = self.and_expr()?;
            terms.push(as_boolean(e, at)?);
        }
        Ok(Expr::Or(terms))
    }

    fn and_expr(&mut self) -> PResult {
        let at = self.peek(0)?.offset;
        let first = self.equality()?;
        if self.peek_kind(0)? != &Kind::And {
            return Ok(first);
        }
        let mut terms = vec![as_boolean(first, at)?];
        while self.peek_kind(0)? == &Kind::And {
            self.bump()?;
            let at = self.peek(0)?.offset;
            let e = self.equality()?;
            terms.push(as_boolean(e, at)?);
        }
        Ok(Expr::And(terms))
    }

    fn equality(&mut self) -> PResult {
        let mut left = self.comparison()?;
        loop {
            let at = self.peek(0)?.offset;
            let kind = self.peek_kind(0)?.clone();
            left = match kind {
                Kind::Eq => {
                    self.bump()?;
                    let right = self.comparison()?;
                    create_equal(left, right, at)?
                }
                Kind::Ne => {
                    self.bump()?;
                    let right = self.comparison()?;
                    Expr::Not(Box::new(create_equal(left, right, at)?))
                }
                Kind::Is if self.peek_kind(1)? == &Kind::Null => {
                    self.bump()?;
                    self.bump()?;
                    is_null(left)
                }
                Kind::Is => {
                    self.bump()?;
                    self.expect(&Kind::Not, "NOT or NULL after IS")?;
                    self.expect(&Kind::Null, "NULL after IS NOT")?;
                    Expr::Not(Box::new(is_null(left)))
                }
                _ => return Ok(left),
            };
            check_depth(&left, at)?;
        }
    }

    fn comparison(&mut self) -> PResult {
        let mut left = self.unary()?;
        loop {
            let at = self.peek(0)?.offset;
            let (not, kind) = match self.peek_kind(0)?.clone() {
                Kind::Not => match self.peek_kind(1)? {
                    k @ (Kind::Contains
                    | Kind::StartsWith
                    | Kind::EndsWith
                    | Kind::Between
                    | Kind::In) => (true, k.clone()),
                    _ => return Ok(left),
                },
                k => (false, k),
            };
            let op = match kind {
                Kind::Gt => Some(CmpOp::Gt),
                Kind::Ge => Some(CmpOp::Ge),
                Kind::Lt => Some(CmpOp::Lt),
                Kind::Le => Some(CmpOp::Le),
                _ => None,
            };
            left = if let Some(op) = op {
                self.bump()?;
                let right = self.unary()?;
                create_cmp(op, left, right, at)?
            } else {
                if not {
                    self.bump()?;
                }
                match kind {
                    Kind::Contains | Kind::StartsWith | Kind::EndsWith => {
                        self.bump()?;
                        let search = self.string_literal()?;
                        let op = match kind {
                            Kind::Contains => StrOp::Contains,
                            Kind::StartsWith => StrOp::StartsWith,
                            _ => StrOp::EndsWith,
                        };
                        Expr::Str { op, not, expr: Box::new(left), search: search.into() }
                    }
                    Kind::Between => {
                        self.bump()?;
                        let low = self.unary()?;
                        self.expect(&Kind::And, "AND in BETWEEN")?;
                        let high = self.unary()?;
                        if not {
                            Expr::Or(vec![
                                create_cmp(CmpOp::Lt, left.clone(), low, at)?,
                                create_cmp(CmpOp::Gt, left, high, at)?,
                            ])
                        } else {
                            check_between_bounds(&low, &high, at)?;
                            Expr::And(vec![
                                create_cmp(CmpOp::Ge, left.clone(), low, at)?,
                                create_cmp(CmpOp::Le, left, high, at)?,
                            ])
                        }
                    }
                    Kind::In => {
                        self.bump()?;
                        self.expect(&Kind::LParen, "( after IN")?;
                        let mut list = vec![self.string_literal()?.into_boxed_str()];
                        while self.peek_kind(0)? == &Kind::Comma {
                            self.bump()?;
                            list.push(self.string_literal()?.into_boxed_str());
                        }
                        self.expect(&Kind::RParen, ", or ) in IN list")?;
                        let Expr::Prop(prop) = left else {
                            return Err(ParseError::new(at, "expected a property for IN"));
                        };
                        Expr::In { prop, list, not }
                    }
                    _ => return Ok(left),
                }
            };
            check_depth(&left, at)?;
        }
    }

    fn string_literal(&mut self) -> Result<String, ParseError> {
        let t = self.bump()?;
        match t.kind {
            Kind::Str(s) => Ok(s),
            _ => Err(unexpected(&t, "a string literal")),
        }
    }

    fn unary(&mut self) -> PResult {
        let at = self.peek(0)?.offset;
        self.enter(at)?;
        let e = match self.peek_kind(0)? {
            Kind::Plus => {
                self.bump()?;
                self.unary()
            }
            Kind::Minus => {
                self.bump()?;
                self.unary().map(|e| Expr::Neg(Box::new(e)))
            }
            Kind::Not => {
                self.bump()?;
                let at = self.peek(0)?.offset;
                self.unary().and_then(|e| Ok(Expr::Not(Box::new(as_boolean(e, at)?))))
            }
            _ => self.primary(),
        };
        self.depth -= 1;
        let e = e?;
        check_depth(&e, at)?;
        Ok(e)
    }

    fn primary(&mut self) -> PResult {
        let t = self.bump()?;
        Ok(match t.kind {
            Kind::Str(s) => Expr::Const(Const::Str(s.into())),
            Kind::Decimal(s) => Expr::Const(decimal(&s, t.offset)?),
            Kind::Float(s) => Expr::Const(float(&s, t.offset)?),
            Kind::True => Expr::Const(Const::Bool(true)),
            Kind::False => Expr::Const(Const::Bool(false)),
            Kind::Null => Expr::Const(Const::Null),
            Kind::Id(name) => Expr::Prop(name.into()),
            Kind::LParen => {
                let e = self.or_expr()?;
                self.expect(&Kind::RParen, ")")?;
                e
            }
            _ => return Err(unexpected(&t, "a literal, a property or (")),
        })
    }
}

fn unexpected(t: &Token, what: &str) -> ParseError {
    let found = match &t.kind {
        Kind::Eof => "end of expression".to_owned(),
        k => format!("{k:?}"),
    };
    ParseError::new(t.offset, format!("expected {what}, found {found}"))
}

fn check_depth(e: &Expr, at: usize) -> Result<(), ParseError> {
    if e.depth() > MAX_DEPTH {
        return Err(ParseError::new(at, format!("expression nested deeper than {MAX_DEPTH}")));
    }
    Ok(())
}

/// `asBooleanExpression`.
fn as_boolean(e: Expr, at: usize) -> PResult {
    if e.is_boolean() {
        Ok(e)
    } else if let Expr::Prop(_) = e {
        Ok(Expr::BoolCast(Box::new(e)))
    } else {
        Err(ParseError::new(at, "expression will not result in a boolean value"))
    }
}

fn is_null(left: Expr) -> Expr {
    Expr::Eq(Box::new(left), Box::new(Expr::Const(Const::Null)))
}

/// `createEqual`: no NULL constant operand; a boolean constant is not compared with
/// another kind of constant.
fn create_equal(left: Expr, right: Expr, at: usize) -> PResult {
    for e in [&left, &right] {
        if let Expr::Const(Const::Null) = e {
            return Err(ParseError::new(at, "NULL cannot be compared (use IS NULL)"));
        }
    }
    if let (Expr::Const(l), Expr::Const(_)) = (&left, &right) {
        if left.is_boolean() && !right.is_boolean() {
            let _ = l;
            return Err(ParseError::new(at, "a boolean constant cannot be compared with this"));
        }
    }
    Ok(Expr::Eq(Box::new(left), Box::new(right)))
}

/// `checkLessThanOperand` on both sides, then the comparison.
fn create_cmp(op: CmpOp, left: Expr, right: Expr, at: usize) -> PResult {
    for e in [&left, &right] {
        let ok = match e {
            Expr::Const(c) => matches!(c, Const::Int(_) | Const::Long(_) | Const::Double(_)),
            e => !e.is_boolean(),
        };
        if !ok {
            return Err(ParseError::new(at, "value cannot be compared with <, <=, >, >="));
        }
    }
    Ok(Expr::Cmp(op, Box::new(left), Box::new(right)))
}

/// `createBetween`'s check of two constant bounds.
fn check_between_bounds(low: &Expr, high: &Expr, at: usize) -> Result<(), ParseError> {
    if let (Expr::Const(l), Expr::Const(h)) = (low, high) {
        if matches!(l, Const::Null) || matches!(h, Const::Null) {
            return Err(ParseError::new(at, "illegal values of BETWEEN: NULL"));
        }
        let (lv, hv) = (l.val(), h.val());
        match compare(hv, lv) {
            Ok(std::cmp::Ordering::Less) => {
                return Err(ParseError::new(
                    at,
                    "illegal values of BETWEEN: the low bound must be <= the high bound",
                ))
            }
            Err(_) => return Err(ParseError::new(at, "illegal values of BETWEEN")),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// `ConstantExpression.createFromDecimal`: `int` when it fits, else `long`.
fn decimal(text: &str, at: usize) -> Result<Const, ParseError> {
    let digits = text.strip_suffix(['l', 'L']).unwrap_or(text);
    let v: i64 = digits
        .parse()
        .map_err(|_| ParseError::new(at, format!("integer literal {text} out of range")))?;
    Ok(i32::try_from(v).map_or(Const::Long(v), Const::Int))
}

/// `ConstantExpression.createFloat`: finite and not below `Double.MIN_VALUE` (so `0.0` is
/// refused, as in the reference).
fn float(text: &str, at: usize) -> Result<Const, ParseError> {
    let v: f64 =
        text.parse().map_err(|_| ParseError::new(at, format!("bad floating literal {text}")))?;
    if v > f64::MAX {
        return Err(ParseError::new(at, format!("{text} is greater than Double.MAX_VALUE")));
    }
    if v < f64::from_bits(1) {
        return Err(ParseError::new(at, format!("{text} is less than Double.MIN_VALUE")));
    }
    Ok(Const::Double(v))
}
