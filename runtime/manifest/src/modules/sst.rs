//! sst: SIP session timers.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "sst",
    summary: "Session timer (RFC 4028) checks and dialog timeouts from Session-Expires",
    functions: &[Function {
        name: "sstCheckMin",
        args: &[Arg { name: "send_reply", kind: K::Str }],
        routes: R::REQUEST.or(R::ONREPLY),
        returns: &[
            (1, "interval too small (a 422 was sent if asked)"),
            (-1, "interval acceptable, or no Session-Expires"),
            (0, "Session-Expires cannot be parsed; the script stops"),
        ],
        implemented: false,
        reads: &[],
        summary: "true if an INVITE's Session-Expires/Min-SE is below min_se; the argument asks for a 422 reply",
    }],
    params: &[
        Param { name: "enable_stats", ty: T::Int, default: D::Int(1), summary: "keep statistics" },
        Param {
            name: "min_se",
            ty: T::Int,
            default: D::Int(90),
            summary: "smallest session interval accepted, in seconds",
        },
        Param {
            name: "reject_to_small",
            ty: T::Int,
            default: D::Int(1),
            summary: "reject INVITEs whose interval is below min_se",
        },
        Param {
            name: "sst_flag",
            ty: T::Int,
            default: D::Int(-1),
            summary: "flag marking dialogs handled by session timers",
        },
        Param {
            name: "timeout_avp",
            ty: T::Str,
            default: D::None,
            summary: "AVP receiving the dialog timeout (shared with dialog)",
        },
    ],
};
