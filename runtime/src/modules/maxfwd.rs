//! maxfwd: the Max-Forwards header (OpenSER 1.3's `maxfwd` module; RFC 3261 §16.6 step 3).

use bytes::Bytes;

use crate::script::Ctx;
use crate::sip::HeaderName;

/// `mf_process_maxfwd_header(default)`: decrements Max-Forwards (capped at
/// the `max_limit` parameter), or adds it with `default` when missing;
/// -1 when it is 0 (the script answers 483).
pub fn mf_process_maxfwd_header(ctx: &mut Ctx, default: i64) -> i32 {
    let limit = ctx.config.params.int("maxfwd", "max_limit").clamp(0, 256);
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
            ctx.edits.replace(h.value.range(), Bytes::from(new.to_string()));
            1
        }
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
