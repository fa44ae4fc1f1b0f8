//! pua_bla: Bridged Line Appearance.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "pua_bla",
    summary: "Publishes and relays dialog state for bridged line appearances (BLA)",
    functions: &[
        Function {
            name: "bla_handle_notify",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "process a BLA NOTIFY and republish its state",
        },
        Function {
            name: "bla_set_flag",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "mark the REGISTER so its contact is handled as a BLA line",
        },
    ],
    params: &[
        Param {
            name: "default_domain",
            ty: T::Str,
            default: D::None,
            summary: "domain added to URIs without one (required)",
        },
        Param {
            name: "header_name",
            ty: T::Str,
            default: D::None,
            summary: "header name carrying the sender (required)",
        },
        Param {
            name: "outbound_proxy",
            ty: T::Str,
            default: D::None,
            summary: "outbound proxy for the generated requests",
        },
    ],
};
