//! sl: stateless replies.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "sl",
    summary: "Sends replies without keeping transaction state",
    functions: &[
        Function {
            name: "sl_reply_error",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            reads: &[],
            summary: "reply statelessly with the code and reason of the last internal error",
        },
        Function {
            name: "sl_send_reply",
            args: &[Arg { name: "code", kind: K::ReplyCode }, Arg { name: "reason", kind: K::Format }],
            routes: R::REQUEST.or(R::ERROR),
            returns: &[],
            implemented: true,
            reads: &[],
            summary: "send a stateless reply with the given code (100-699) and reason phrase",
        },
    ],
    params: &[Param {
        name: "enable_stats",
        ty: T::Int,
        default: D::Int(1),
        summary: "keep counters of the replies sent (0 disables)",
    }],
};
