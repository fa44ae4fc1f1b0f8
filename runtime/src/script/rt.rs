//! What generated route code calls besides module functions: the evaluation
//! rules of OpenSER 1.3's conditions (`route.c`: `eval_elem`, `comp_strval`,
//! `comp_scriptvar`, `comp_ip`) and of its statements (`action.c`), kept here so
//! the generated code stays small and the rules are tested once.
//!
//! A condition evaluates to an `i32`, as OpenSER's `eval_expr` does: `1` true,
//! `0` false, `-1` an error (treated as false, and sticky through `!`, `&&`,
//! `||`), [`DROP`] when a function in it returned 0 (the script ends).

use std::net::IpAddr;

use regex::Regex;

use super::args::PvRef;
use super::value::Value;
use super::{Ctx, Flow};
use crate::proxy::Transport;

/// OpenSER's `EXPR_DROP`: a function in a condition returned 0.
pub const DROP: i32 = -127;

/// OpenSER 1.3's `ROUTE_MAX_REC_LEV`: the deepest `route(N)` nesting.
pub const MAX_ROUTE_DEPTH: u32 = 100;

/// The comparison operators of conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// A function's return code as a condition (`ACTION_O`): > 0 true, < 0
/// false, 0 [`DROP`].
#[inline]
pub fn cond_of_rc(rc: i32) -> i32 {
    match rc {
        0 => DROP,
        r if r > 0 => 1,
        _ => 0,
    }
}

/// `!`: errors and [`DROP`] pass through.
#[inline]
pub fn not(v: i32) -> i32 {
    if v < 0 {
        v
    } else {
        i32::from(v == 0)
    }
}

/// `bool` → condition.
#[inline]
pub fn cond(b: bool) -> i32 {
    i32::from(b)
}

/// `comp_strval` with a string on the right: `==`/`!=` compare ignoring ASCII
/// case; other operators are an error.
#[inline]
pub fn str_eq(op: Op, left: &str, right: &str) -> i32 {
    let same = left.len() == right.len() && left.eq_ignore_ascii_case(right);
    match op {
        Op::Eq => cond(same),
        Op::Ne => cond(!same),
        _ => -1,
    }
}

/// `=~` / `!~` against a regex compiled once.
#[inline]
pub fn re_match(left: &str, re: &Regex, negate: bool) -> i32 {
    cond(re.is_match(left) != negate)
}

/// `=~` against a regex known only per message (a pseudo-variable on the right):
/// compiled now, case-insensitive as OpenSER's `REG_ICASE`; a bad one is an error.
pub fn re_match_dynamic(left: &str, pattern: &str, negate: bool) -> i32 {
    match Regex::new(&format!("(?i){pattern}")) {
        Ok(re) => re_match(left, &re, negate),
        Err(_) => -1,
    }
}

/// `comp_no`: an integer operand against a number.
#[inline]
pub fn int_cmp(op: Op, left: i64, right: i64) -> i32 {
    cond(match op {
        Op::Eq => left == right,
        Op::Ne => left != right,
        Op::Lt => left < right,
        Op::Gt => left > right,
        Op::Le => left <= right,
        Op::Ge => left >= right,
    })
}

/// Whether a URI names this proxy (`uri == myself`): its host is a local
/// address or an alias and its port (5060 when absent, as OpenSER's
/// `SIP_PORT`) a local port. `None` for a URI that does not parse.
pub fn uri_is_myself(ctx: &Ctx, uri: &str) -> Option<bool> {
    let u = crate::sip::uri::parse(uri).ok()?;
    Some(ctx.is_myself_uri(&u, Some(u.port.unwrap_or(5060))))
}

/// `uri == myself` / `uri != myself` as a condition.
pub fn myself_cond(ctx: &Ctx, uri: &str, op: Op) -> i32 {
    match (uri_is_myself(ctx, uri), op) {
        (None, _) => -1,
        (Some(b), Op::Ne) => cond(!b),
        (Some(b), _) => cond(b),
    }
}

/// The From URI (`from_uri`), borrowed from the message (validated on
/// receipt, so always there; `Option` for the generated code's shape).
pub fn from_uri<'m>(ctx: &Ctx<'m>) -> Option<&'m str> {
    let msg: &'m crate::sip::Message = ctx.msg;
    Some(msg.text(msg.from().uri))
}

/// The To URI (`to_uri`), as [`from_uri`].
pub fn to_uri<'m>(ctx: &Ctx<'m>) -> Option<&'m str> {
    let msg: &'m crate::sip::Message = ctx.msg;
    Some(msg.text(msg.to().uri))
}

/// Whether `ip` is in `net/bits` (`matchnet`); families must agree.
pub fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits.min(32))) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits.min(128))) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `src_ip == 10.0.0.0/8` and the like.
pub fn ip_net(op: Op, ip: IpAddr, net: IpAddr, bits: u8) -> i32 {
    match op {
        Op::Eq => cond(in_net(ip, net, bits)),
        Op::Ne => cond(!in_net(ip, net, bits)),
        _ => -1,
    }
}

/// `src_ip == "1.2.3.4"`: the address as text compared with the string.
/// OpenSER 1.3 then resolves the string and reverse-resolves the address;
/// serc does no DNS inside conditions (see the deliberate differences).
pub fn ip_str(op: Op, ip: IpAddr, text: &str) -> i32 {
    let same = ip.to_string().eq_ignore_ascii_case(text.trim_start_matches('[').trim_end_matches(']'));
    match op {
        Op::Eq => cond(same),
        Op::Ne => cond(!same),
        _ => -1,
    }
}

/// `src_ip == myself`.
pub fn ip_myself(op: Op, ctx: &Ctx, ip: IpAddr) -> i32 {
    let me = ctx.is_myself(&ip.to_string(), None);
    match op {
        Op::Eq => cond(me),
        Op::Ne => cond(!me),
        _ => -1,
    }
}

/// OpenSER's protocol numbers for `proto == udp`: udp 1, tcp 2, tls 3, sctp 4.
pub fn proto_number(t: Transport) -> i64 {
    match t {
        Transport::Udp => 1,
        Transport::Tcp => 2,
        Transport::Tls => 3,
        Transport::Sctp => 4,
    }
}

/// The address family as OpenSER's `af` compares it: `INET` 2, `INET6` 10.
pub fn af_number(ip: IpAddr) -> i64 {
    if ip.is_ipv4() {
        2
    } else {
        10
    }
}

/// A pseudo-variable alone in a condition: set and not empty or zero.
#[inline]
pub fn pv_truth(v: &Value) -> i32 {
    cond(v.truthy())
}

/// The right side of a comparison with a pseudo-variable on the left.
pub enum Rhs<'a> {
    Null,
    Int(i64),
    Str(&'a str),
    Value(Value),
    Regex(&'a Regex),
}

/// `comp_scriptvar`: a pseudo-variable compared with null, a number, a string,
/// a regex, or another pseudo-variable. Where OpenSER 1.3 needs both sides of
/// one type (it errs on a string against a number), a value that reads as the
/// other type exactly is taken as such — a pseudo-variable OpenSER gives both
/// types (`$rs`, `$cl`) compares either way.
pub fn cmp_value(op: Op, left: &Value, right: Rhs<'_>, negate_match: Option<bool>) -> i32 {
    if let Some(negate) = negate_match {
        return match (left, right) {
            (Value::Null, _) => cond(negate),
            (l, Rhs::Regex(re)) => re_match(&l.as_text(), re, negate),
            (l, Rhs::Str(s)) => re_match_dynamic(&l.as_text(), s, negate),
            (l, Rhs::Value(Value::Str(s))) => re_match_dynamic(&l.as_text(), &s, negate),
            _ => -1,
        };
    }
    match right {
        Rhs::Null => match op {
            Op::Eq => cond(left.is_null()),
            _ => cond(!left.is_null()),
        },
        Rhs::Regex(_) => -1,
        Rhs::Int(n) => match left {
            Value::Null => cond(op == Op::Ne),
            Value::Int(i) => int_cmp(op, *i, n),
            Value::Str(s) => match s.trim().parse::<i64>() {
                Ok(i) => int_cmp(op, i, n),
                Err(_) => -1,
            },
        },
        Rhs::Str(s) => match left {
            Value::Null => cond(op == Op::Ne),
            l => str_cmp(op, &l.as_text(), s),
        },
        Rhs::Value(r) => match (left, &r) {
            (Value::Null, Value::Null) => cond(op == Op::Eq),
            (Value::Null, _) | (_, Value::Null) => cond(op == Op::Ne),
            (Value::Int(a), Value::Int(b)) => int_cmp(op, *a, *b),
            (l, r) => str_cmp(op, &l.as_text(), &r.as_text()),
        },
    }
}

/// `comp_s2s`: strings compared ignoring ASCII case; `<`/`>` order them that way.
pub fn str_cmp(op: Op, a: &str, b: &str) -> i32 {
    let ord = a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()));
    cond(match op {
        Op::Eq => ord.is_eq(),
        Op::Ne => !ord.is_eq(),
        Op::Lt => ord.is_lt(),
        Op::Gt => ord.is_gt(),
        Op::Le => ord.is_le(),
        Op::Ge => ord.is_ge(),
    })
}

/// Arithmetic and bit operators of expressions (Kamailio, and OpenSER 1.3's
/// assignments): integers, or `+` concatenating strings. Division by zero is
/// an error (null), as OpenSER logs "divide by 0" and yields nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

pub fn arith(op: Arith, left: Value, right: Value) -> Value {
    if let (Arith::Add, Value::Str(a)) = (op, &left) {
        return Value::Str(format!("{a}{}", right.as_text()));
    }
    let (a, b) = (left.as_int(), right.as_int());
    Value::Int(match op {
        Arith::Add => a.wrapping_add(b),
        Arith::Sub => a.wrapping_sub(b),
        Arith::Mul => a.wrapping_mul(b),
        Arith::Div if b == 0 => return Value::Null,
        Arith::Div => a.wrapping_div(b),
        Arith::Mod if b == 0 => return Value::Null,
        Arith::Mod => a.wrapping_rem(b),
        Arith::And => a & b,
        Arith::Or => a | b,
        Arith::Xor => a ^ b,
        Arith::Shl => a.wrapping_shl(b as u32),
        Arith::Shr => a.wrapping_shr(b as u32),
    })
}

/// An assignment: `=` adds to an AVP (OpenSER appends a value), `:=` replaces
/// all its values, the others compute from the current value. Returns 1, or -1
/// when the pseudo-variable cannot be written (logged).
pub fn assign(ctx: &mut Ctx, target: &PvRef, op: Option<Arith>, all: bool, value: Value) -> i32 {
    let value = match op {
        None => value,
        Some(op) => arith(op, target.get(ctx), value),
    };
    match target.pv.set(ctx, value, all) {
        Ok(()) => 1,
        Err(why) => {
            tracing::error!(why, "assignment failed");
            -1
        }
    }
}

/// Whether a `switch` value matches a string `case` (ignoring ASCII case, as
/// OpenSER's `strncasecmp`).
pub fn case_str(v: &Value, label: &str) -> bool {
    match v {
        Value::Null => false,
        v => v.as_text().eq_ignore_ascii_case(label),
    }
}

/// Whether a `switch` value matches a number `case`.
pub fn case_int(v: &Value, label: i64) -> bool {
    match v {
        Value::Int(i) => *i == label,
        Value::Str(s) => s.trim().parse::<i64>() == Ok(label),
        Value::Null => false,
    }
}

/// A value as a route's return code (`return($var(x))` in Kamailio).
#[inline]
pub fn int_of(v: &Value) -> i32 {
    v.as_int().clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// `return(N)`: 0 ends the script as `exit` does (OpenSER's `run_action_list`
/// stops on an action returning 0).
#[inline]
pub fn ret(code: i32) -> Flow {
    if code == 0 {
        Flow::Exit
    } else {
        Flow::Return(code)
    }
}

/// The check at the top of every sub-route: beyond [`MAX_ROUTE_DEPTH`] nested
/// `route(N)` calls the route does not run and returns -1 (OpenSER's `E_UNSPEC`).
#[inline]
pub fn too_deep(depth: u32) -> Option<Flow> {
    if depth > MAX_ROUTE_DEPTH {
        tracing::error!(depth, "too many nested route() calls: giving up");
        return Some(Flow::Return(-1));
    }
    None
}

/// A `while` that ran `max_while_loops` times stops (logged, as OpenSER does).
#[cold]
pub fn while_limit(max: i64) {
    tracing::info!(max, "max_while_loops reached: leaving the loop");
}

/// Called by generated code where the config's literals failed to prepare —
/// something the checker accepted and the runtime refuses (a serc bug).
#[cold]
pub fn prepare_failed(what: &str) -> ! {
    tracing::error!(what, "a literal of the config failed to prepare");
    panic!("serc bug: a literal of the config the checker accepted failed to prepare: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_eval_expr() {
        assert_eq!(cond_of_rc(5), 1);
        assert_eq!(cond_of_rc(-3), 0);
        assert_eq!(cond_of_rc(0), DROP);
        assert_eq!(not(1), 0);
        assert_eq!(not(0), 1);
        assert_eq!(not(-1), -1);
        assert_eq!(not(DROP), DROP);
    }

    #[test]
    fn strings_compare_ignoring_case() {
        assert_eq!(str_eq(Op::Eq, "INVITE", "invite"), 1);
        assert_eq!(str_eq(Op::Ne, "INVITE", "invite"), 0);
        assert_eq!(str_eq(Op::Eq, "INVITE", "INVITEX"), 0);
        assert_eq!(str_eq(Op::Lt, "a", "b"), -1);
        assert_eq!(str_cmp(Op::Lt, "abc", "ABD"), 1);
        assert_eq!(str_cmp(Op::Gt, "abcd", "ABC"), 1);
    }

    #[test]
    fn networks() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(in_net(ip, "10.0.0.0".parse().unwrap(), 8));
        assert!(!in_net(ip, "11.0.0.0".parse().unwrap(), 8));
        assert!(in_net(ip, "0.0.0.0".parse().unwrap(), 0));
        assert!(!in_net(ip, "::".parse().unwrap(), 0));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(in_net(v6, "2001:db8::".parse().unwrap(), 32));
        assert_eq!(ip_str(Op::Eq, ip, "10.1.2.3"), 1);
        assert_eq!(ip_str(Op::Ne, ip, "10.1.2.3"), 0);
    }

    #[test]
    fn script_values() {
        assert_eq!(cmp_value(Op::Eq, &Value::Null, Rhs::Null, None), 1);
        assert_eq!(cmp_value(Op::Ne, &Value::Null, Rhs::Null, None), 0);
        assert_eq!(cmp_value(Op::Eq, &Value::Int(3), Rhs::Int(3), None), 1);
        assert_eq!(cmp_value(Op::Gt, &Value::str("7"), Rhs::Int(3), None), 1);
        assert_eq!(cmp_value(Op::Eq, &Value::str("x"), Rhs::Int(3), None), -1);
        assert_eq!(cmp_value(Op::Eq, &Value::Null, Rhs::Int(3), None), 0);
        assert_eq!(cmp_value(Op::Ne, &Value::Null, Rhs::Str("a"), None), 1);
        assert_eq!(cmp_value(Op::Eq, &Value::str("Alice"), Rhs::Str("alice"), None), 1);
        let re = Regex::new("(?i)^al").unwrap();
        assert_eq!(cmp_value(Op::Eq, &Value::str("Alice"), Rhs::Regex(&re), Some(false)), 1);
        assert_eq!(cmp_value(Op::Eq, &Value::str("Alice"), Rhs::Regex(&re), Some(true)), 0);
        assert_eq!(cmp_value(Op::Eq, &Value::Null, Rhs::Regex(&re), Some(true)), 1);
        assert_eq!(cmp_value(Op::Eq, &Value::Int(2), Rhs::Value(Value::Int(2)), None), 1);
        assert_eq!(cmp_value(Op::Eq, &Value::Null, Rhs::Value(Value::Int(2)), None), 0);
    }

    #[test]
    fn arithmetic() {
        assert_eq!(arith(Arith::Add, Value::Int(2), Value::Int(3)), Value::Int(5));
        assert_eq!(arith(Arith::Add, Value::str("a"), Value::Int(3)), Value::str("a3"));
        assert_eq!(arith(Arith::Div, Value::Int(2), Value::Int(0)), Value::Null);
        assert_eq!(arith(Arith::Mod, Value::Int(7), Value::Int(4)), Value::Int(3));
    }

    #[test]
    fn switch_labels() {
        assert!(case_str(&Value::str("Bob"), "bob"));
        assert!(!case_str(&Value::Null, ""));
        assert!(case_int(&Value::Int(-1), -1));
        assert!(case_int(&Value::str("-1"), -1));
        assert!(!case_int(&Value::Null, 0));
    }

    #[test]
    fn return_zero_exits() {
        assert_eq!(ret(0), Flow::Exit);
        assert_eq!(ret(-2), Flow::Return(-2));
    }
}
