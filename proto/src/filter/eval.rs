//! The compiled expression tree and its evaluation with the reference's type rules
//! (`ComparisonExpression`, `LogicExpression`, `UnaryExpression`, with string conversion on,
//! as `SelectorParser.parse` always sets it).

use std::cmp::Ordering;

use super::PropertySource;

/// A value during evaluation. Properties are always strings; literals give the rest.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Null,
    Bool(bool),
    /// A decimal literal that fits an `int`.
    Int(i32),
    /// A decimal literal outside `int`, or a negated one.
    Long(i64),
    Double(f64),
    Str(&'a str),
}

/// A constant literal held by the tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Const {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(Box<str>),
}

impl Const {
    /// The constant as an evaluation value.
    pub(super) fn val(&self) -> Val<'_> {
        match self {
            Const::Null => Val::Null,
            Const::Bool(b) => Val::Bool(*b),
            Const::Int(i) => Val::Int(*i),
            Const::Long(l) => Val::Long(*l),
            Const::Double(d) => Val::Double(*d),
            Const::Str(s) => Val::Str(s),
        }
    }
}

/// `<`, `<=`, `>`, `>=`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// `CONTAINS`, `STARTSWITH`, `ENDSWITH`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// The compiled tree. `And` / `Or` are flattened left-associative chains (same evaluation
/// order and three-valued result as the reference's nested binary nodes).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Const(Const),
    Prop(Box<str>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    BoolCast(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// The reference's `doCreateEqual` (also `IS NULL`).
    Eq(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    In {
        prop: Box<str>,
        list: Vec<Box<str>>,
        not: bool,
    },
    Str {
        op: StrOp,
        not: bool,
        expr: Box<Expr>,
        search: Box<str>,
    },
}

/// Evaluation failed where the reference throws (e.g. a property that is not a number
/// compared with a number); the reference's pull filter then treats the message as not
/// matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EvalError;

type Eval<'a> = Result<Val<'a>, EvalError>;

impl Expr {
    /// Whether the reference builds this as a `BooleanExpression`.
    pub(super) fn is_boolean(&self) -> bool {
        match self {
            Expr::Const(c) => matches!(c, Const::Null | Const::Bool(_)),
            Expr::Prop(_) | Expr::Neg(_) => false,
            _ => true,
        }
    }

    /// Tree depth (a leaf is 1).
    pub(super) fn depth(&self) -> usize {
        1 + match self {
            Expr::Const(_) | Expr::Prop(_) | Expr::In { .. } => 0,
            Expr::Neg(e) | Expr::Not(e) | Expr::BoolCast(e) | Expr::Str { expr: e, .. } => {
                e.depth()
            }
            Expr::And(v) | Expr::Or(v) => v.iter().map(Expr::depth).max().unwrap_or(0),
            Expr::Eq(l, r) | Expr::Cmp(_, l, r) => l.depth().max(r.depth()),
        }
    }

    pub(super) fn eval<'a>(&'a self, props: &'a dyn PropertySource) -> Eval<'a> {
        Ok(match self {
            Expr::Const(c) => c.val(),
            Expr::Prop(name) => props.property(name).map_or(Val::Null, Val::Str),
            Expr::Neg(e) => match e.eval(props)? {
                Val::Int(i) => Val::Int(i.wrapping_neg()),
                Val::Long(l) => Val::Long(l.wrapping_neg()),
                Val::Double(d) => Val::Double(-d),
                _ => Val::Null,
            },
            Expr::Not(e) => match e.eval(props)? {
                Val::Null => Val::Null,
                Val::Bool(b) => Val::Bool(!b),
                _ => return Err(EvalError),
            },
            Expr::BoolCast(e) => match e.eval(props)? {
                Val::Null => Val::Null,
                Val::Bool(b) => Val::Bool(b),
                _ => Val::Bool(false),
            },
            Expr::And(terms) => logic(terms, props, false)?,
            Expr::Or(terms) => logic(terms, props, true)?,
            Expr::Eq(l, r) => {
                let lv = l.eval(props)?;
                let rv = r.eval(props)?;
                match (lv, rv) {
                    (Val::Null, Val::Null) => Val::Bool(true),
                    (Val::Null, _) => Val::Null,
                    (_, Val::Null) => Val::Bool(false),
                    _ if java_equals(lv, rv) => Val::Bool(true),
                    _ => Val::Bool(compare(lv, rv)? == Ordering::Equal),
                }
            }
            Expr::Cmp(op, l, r) => {
                let lv = l.eval(props)?;
                if let Val::Null = lv {
                    return Ok(Val::Null);
                }
                let rv = r.eval(props)?;
                let ord = match (lv, rv) {
                    (Val::Null, _) | (_, Val::Null) => return Ok(Val::Null),
                    (Val::Str(a), Val::Str(b)) => {
                        let a = parse_java_double(a).ok_or(EvalError)?;
                        let b = parse_java_double(b).ok_or(EvalError)?;
                        java_double_cmp(a, b)
                    }
                    _ => compare(lv, rv)?,
                };
                Val::Bool(match op {
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                })
            }
            Expr::In { prop, list, not } => match props.property(prop) {
                None => Val::Null,
                Some(v) => Val::Bool(list.iter().any(|s| &**s == v) ^ not),
            },
            Expr::Str { op, not, expr, search } => {
                if search.is_empty() {
                    return Ok(Val::Bool(false));
                }
                match expr.eval(props)? {
                    Val::Str(s) => {
                        let hit = match op {
                            StrOp::Contains => s.contains(&**search),
                            StrOp::StartsWith => s.starts_with(&**search),
                            StrOp::EndsWith => s.ends_with(&**search),
                        };
                        Val::Bool(hit ^ not)
                    }
                    _ => Val::Bool(false),
                }
            }
        })
    }
}

/// AND (`short_on = false`) / OR (`short_on = true`) over a chain, left to right.
fn logic<'a>(terms: &'a [Expr], props: &'a dyn PropertySource, short_on: bool) -> Eval<'a> {
    let mut saw_null = false;
    for t in terms {
        match t.eval(props)? {
            Val::Bool(b) if b == short_on => return Ok(Val::Bool(short_on)),
            Val::Bool(_) => {}
            Val::Null => saw_null = true,
            _ => return Err(EvalError),
        }
    }
    Ok(if saw_null { Val::Null } else { Val::Bool(!short_on) })
}

/// Java's `Object.equals` for the value classes in play.
fn java_equals(l: Val<'_>, r: Val<'_>) -> bool {
    match (l, r) {
        (Val::Bool(a), Val::Bool(b)) => a == b,
        (Val::Int(a), Val::Int(b)) => a == b,
        (Val::Long(a), Val::Long(b)) => a == b,
        (Val::Double(a), Val::Double(b)) => java_double_bits(a) == java_double_bits(b),
        (Val::Str(a), Val::Str(b)) => a == b,
        _ => false,
    }
}

fn java_double_bits(d: f64) -> i64 {
    if d.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        d.to_bits() as i64
    }
}

/// `Double.compareTo`: -0.0 < 0.0, NaN equal to itself and above everything.
pub(super) fn java_double_cmp(a: f64, b: f64) -> Ordering {
    if a < b {
        Ordering::Less
    } else if a > b {
        Ordering::Greater
    } else {
        java_double_bits(a).cmp(&java_double_bits(b))
    }
}

/// `Boolean.valueOf(String)`.
fn java_bool(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// `Double.valueOf(String)` for decimal forms: surrounding characters up to U+0020 trimmed,
/// optional sign, `NaN`, `Infinity`, digits with optional fraction and exponent, optional
/// `f`/`F`/`d`/`D` suffix. Hexadecimal floating literals are not accepted (documented gap).
pub(super) fn parse_java_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let v = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
            let b = body.as_bytes();
            let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut i = int;
            let mut frac = 0;
            if b.get(i) == Some(&b'.') {
                i += 1;
                frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                i += frac;
            }
            if int + frac == 0 {
                return None;
            }
            if matches!(b.get(i), Some(b'e' | b'E')) {
                i += 1;
                if matches!(b.get(i), Some(b'+' | b'-')) {
                    i += 1;
                }
                let e = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                if e == 0 {
                    return None;
                }
                i += e;
            }
            if i != b.len() {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

/// The reference's `__compare` with string conversion on. A failed conversion is an error
/// (the reference throws); mismatched types it cannot convert order as "less".
pub(super) fn compare(l: Val<'_>, r: Val<'_>) -> Result<Ordering, EvalError> {
    use Val::*;
    let less = Ok(Ordering::Less);
    let int = |s: &str| s.parse::<i32>().map_err(|_| EvalError);
    let long = |s: &str| s.parse::<i64>().map_err(|_| EvalError);
    let dbl = |s: &str| parse_java_double(s).ok_or(EvalError);
    match (l, r) {
        (Null, _) | (_, Null) => Err(EvalError),
        (Bool(a), Bool(b)) => Ok(a.cmp(&b)),
        (Int(a), Int(b)) => Ok(a.cmp(&b)),
        (Long(a), Long(b)) => Ok(a.cmp(&b)),
        (Double(a), Double(b)) => Ok(java_double_cmp(a, b)),
        (Str(a), Str(b)) => Ok(a.encode_utf16().cmp(b.encode_utf16())),
        // The reference casts the Boolean to String here and throws.
        (Bool(_), Str(_)) => Err(EvalError),
        (Bool(_), _) => less,
        (Int(a), Long(b)) => Ok(i64::from(a).cmp(&b)),
        (Int(a), Double(b)) => Ok(java_double_cmp(f64::from(a), b)),
        (Int(a), Str(b)) => Ok(a.cmp(&int(b)?)),
        (Long(a), Int(b)) => Ok(a.cmp(&i64::from(b))),
        (Long(a), Double(b)) => Ok(java_double_cmp(a as f64, b)),
        (Long(a), Str(b)) => Ok(a.cmp(&long(b)?)),
        (Double(a), Int(b)) => Ok(java_double_cmp(a, f64::from(b))),
        (Double(a), Long(b)) => Ok(java_double_cmp(a, b as f64)),
        (Double(a), Str(b)) => Ok(java_double_cmp(a, dbl(b)?)),
        (Int(_) | Long(_) | Double(_), Bool(_)) => less,
        (Str(a), Bool(b)) => Ok(java_bool(a).cmp(&b)),
        (Str(a), Int(b)) => Ok(int(a)?.cmp(&b)),
        (Str(a), Long(b)) => Ok(long(a)?.cmp(&b)),
        (Str(a), Double(b)) => Ok(java_double_cmp(dbl(a)?, b)),
    }
}
