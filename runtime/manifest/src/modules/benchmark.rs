//! benchmark: named timers that measure how long parts of the script take and log the figures.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "benchmark",
    summary: "named timers that measure how long parts of the script take and log the figures",
    functions: &[
        Function {
            name: "bm_log_timer",
            args: &[Arg { name: "timer", kind: K::Str }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "stop the named timer and account (and periodically log) the elapsed time",
        },
        Function {
            name: "bm_start_timer",
            args: &[Arg { name: "timer", kind: K::Str }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "start the named timer (created on first use)",
        },
    ],
    params: &[
        Param {
            name: "enable",
            ty: T::Int,
            default: D::Int(0),
            summary: "enable all timers (-1 disables, 0 leaves it to each timer)",
        },
        Param {
            name: "granularity",
            ty: T::Int,
            default: D::Int(1),
            summary: "log the figures every this many measurements",
        },
        Param { name: "loglevel", ty: T::Int, default: D::Int(3), summary: "log level of the figures (3 = L_INFO)" },
    ],
};
