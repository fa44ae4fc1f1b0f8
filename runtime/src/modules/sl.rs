//! sl: stateless replies (OpenSER 1.3's `sl` module).

use crate::proxy;
use crate::script::args::{Format, ReplyCode};
use crate::script::{Ctx, Send};

/// Sends a stateless reply to the request being routed, to where RFC 3261
/// §18.2.2 / RFC 3581 say (`received`/`rport` of its top Via).
pub fn reply(ctx: &mut Ctx, code: u16, reason: &str) -> i32 {
    reply_with(ctx, code, reason, "")
}

/// [`reply`] with `headers` (lines with CRLF) added to this one reply, after
/// the script's own (`append_to_reply`) and before `Server:`.
pub fn reply_with(ctx: &mut Ctx, code: u16, reason: &str, headers: &str) -> i32 {
    if !ctx.msg.is_request() {
        tracing::error!("sl: a reply cannot be answered");
        return -1;
    }
    if ctx.msg.method() == Some(crate::sip::Method::Ack) {
        return 1; // an ACK is never answered
    }
    let extra = [ctx.reply_headers.as_str(), headers, ctx.config.server_header.line()];
    let bytes = proxy::stateless_reply(ctx.msg, code, reason, b"serc-sl", &extra, &ctx.src, ctx.force_rport);
    match proxy::reply_target(ctx.msg, &ctx.src, ctx.force_rport) {
        Ok(target) => {
            let from = Some(ctx.src.local);
            ctx.out.push(Send { bytes, target, from });
            ctx.config.mi.sl().sent(code);
            1
        }
        Err(why) => {
            tracing::error!(why, "sl: nowhere to send the reply");
            -1
        }
    }
}

/// `sl_send_reply(code, reason)`
pub fn sl_send_reply(ctx: &mut Ctx, code: &ReplyCode, reason: &Format) -> i32 {
    let Some(code) = code.eval(ctx) else {
        tracing::error!("sl_send_reply: the code is not a SIP reply code");
        return -1;
    };
    let reason = reason.eval(ctx);
    reply(ctx, code, &reason)
}

/// `sl_reply_error()`: answers the last internal error (OpenSER's
/// `err2reason`); with none recorded, 500.
pub fn sl_reply_error(ctx: &mut Ctx) -> i32 {
    let (code, reason) = match ctx.err.rcode {
        c @ 400..=699 => (c as u16, ctx.err.rreason.clone()),
        _ => (500, "Server Internal Error".to_string()),
    };
    let reason = if reason.is_empty() { "Server Internal Error".to_string() } else { reason };
    let rc = reply(ctx, code, &reason);
    if rc > 0 {
        ctx.config.mi.sl().sent_err_replies.inc();
    }
    rc
}
