//! maxfwd: the Max-Forwards header (OpenSER 1.3's `maxfwd` module; RFC 3261 §16.6 step 3).

use bytes::Bytes;

use crate::script::Ctx;
use crate::sip::HeaderName;

/// `mf_process_maxfwd_header(default)`: decrements Max-Forwards (capped at
/// the `max_limit` parameter), or adds it with `default` when missing;
/// -1 when it is 0 (the script answers 483).
pub fn mf_process_maxfwd_header(ctx: &mut Ctx, default: i64) -> i32 {
    let limit =
        *ctx.config.maxfwd_limit.get_or_read(&ctx.config.params, |p| p.int("maxfwd", "max_limit").clamp(0, 256));
    match ctx.msg.max_forwards {
        None => {
            let Some(first) = ctx.msg.headers.first() else { return -2 };
            let value = default.clamp(1, limit.max(1));
            ctx.edits.insert(first.line.start as usize, Bytes::from(format!("Max-Forwards: {value}\r\n")));
            2
        }
        Some(0) => -1,
        Some(n) => {
            let Some(h) = ctx.msg.header(HeaderName::MaxForwards) else { return -2 };
            let new = (i64::from(n) - 1).min(limit);
            ctx.edits.replace(h.value.range(), decimal(new));
            1
        }
    }
}

/// The digits of 0 to 256, each left-aligned in three bytes: what a
/// decremented Max-Forwards can be, written without allocating.
static DECIMALS: [[u8; 3]; 257] = {
    let mut table = [[0u8; 3]; 257];
    let mut n = 0;
    while n < 257 {
        let (d0, d1, d2) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            [b'0' + d0, b'0' + d1, b'0' + d2]
        } else if n >= 10 {
            [b'0' + d1, b'0' + d2, 0]
        } else {
            [b'0' + d2, 0, 0]
        };
        n += 1;
    }
    table
};

/// `n` in decimal: from [`DECIMALS`] for 0 to 256, else formatted.
fn decimal(n: i64) -> Bytes {
    match usize::try_from(n) {
        Ok(i) if i < DECIMALS.len() => {
            let len = if i >= 100 {
                3
            } else if i >= 10 {
                2
            } else {
                1
            };
            Bytes::from_static(&DECIMALS[i][..len])
        }
        _ => Bytes::from(n.to_string()),
    }
}

/// `is_maxfwd_lt(limit)`: whether Max-Forwards is below `limit`.
pub fn is_maxfwd_lt(ctx: &mut Ctx, limit: i64) -> i32 {
    match ctx.msg.max_forwards {
        None => -2,
        Some(n) if i64::from(n) < limit => 1,
        Some(_) => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_every_value_as_formatting_does() {
        for n in [-1, 0, 1, 9, 10, 69, 99, 100, 255, 256, 257, 70_000] {
            assert_eq!(decimal(n), n.to_string().as_bytes(), "{n}");
        }
        for n in 0..=256 {
            assert_eq!(decimal(n), n.to_string().as_bytes());
        }
    }
}
