//! maxfwd: checks and decrements Max-Forwards (adding it when missing) to stop forwarding loops.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "maxfwd",
    summary: "checks and decrements Max-Forwards (adding it when missing) to stop forwarding loops",
    functions: &[
        Function {
            name: "is_maxfwd_lt",
            args: &[Arg { name: "limit", kind: K::Int }],
            routes: R::REQUEST.or(R::FAILURE).or(R::BRANCH),
            returns: &[
                (1, "Max-Forwards is below the limit"),
                (-1, "Max-Forwards is at or above the limit"),
                (-2, "no Max-Forwards header"),
                (-3, "the header could not be parsed"),
            ],
            implemented: true,
            reads: &[],
            summary: "test whether the Max-Forwards value is below the limit (1-256)",
        },
        Function {
            name: "mf_process_maxfwd_header",
            args: &[Arg { name: "default", kind: K::Int }],
            routes: R::REQUEST,
            returns: &[
                (2, "no Max-Forwards header: one with the default value was added"),
                (1, "the value was decremented (and capped at max_limit)"),
                (-1, "the value is 0: the request must not be forwarded (reply 483)"),
                (-2, "the header could not be parsed or changed"),
            ],
            implemented: true,
            reads: &[],
            summary: "decrement Max-Forwards, or add it with the default value (1-256) when missing",
        },
    ],
    params: &[Param {
        name: "max_limit",
        ty: T::Int,
        default: D::Int(256),
        summary: "highest Max-Forwards value let through; larger values are lowered to it",
    }],
};
