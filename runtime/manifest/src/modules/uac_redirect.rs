//! uac_redirect: redirect (3xx) handling.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "uac_redirect",
    summary: "Turns the contacts of 3xx replies into new branches in failure_route",
    functions: &[
        Function {
            name: "get_redirects",
            args: &[Arg { name: "max", kind: K::Opaque }],
            routes: R::FAILURE,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "add the 3xx contacts as branches; \"total[:per_branch]\" limits their number (0: no limit)",
        },
        Function {
            name: "get_redirects",
            args: &[Arg { name: "max", kind: K::Opaque }, Arg { name: "reason", kind: K::Str }],
            routes: R::FAILURE,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "get_redirects, accounting each redirect with the given reason",
        },
        Function {
            name: "set_accept_filter",
            args: &[Arg { name: "re", kind: K::Regex }, Arg { name: "reset", kind: K::Opaque }],
            routes: R::FAILURE,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "add an accept filter for contacts; reset is \"\", reset_all, reset_default or reset_added",
        },
        Function {
            name: "set_deny_filter",
            args: &[Arg { name: "re", kind: K::Regex }, Arg { name: "reset", kind: K::Opaque }],
            routes: R::FAILURE,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "add a deny filter for contacts; reset is \"\", reset_all, reset_default or reset_added",
        },
    ],
    params: &[
        Param { name: "acc_db_table", ty: T::Str, default: D::Str("acc"), summary: "table for accounting redirects" },
        Param {
            name: "acc_function",
            ty: T::Str,
            default: D::Str("acc_log_request"),
            summary: "acc function used to account redirects",
        },
        Param { name: "accept_filter", ty: T::Str, default: D::None, summary: "regex of contacts to accept" },
        Param {
            name: "default_filter",
            ty: T::Str,
            default: D::None,
            summary: "accept or deny contacts matching no filter",
        },
        Param { name: "deny_filter", ty: T::Str, default: D::None, summary: "regex of contacts to deny" },
    ],
};
