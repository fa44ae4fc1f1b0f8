//! statistics: script-defined counters.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "statistics",
    summary: "Declares statistic variables and updates them from the script",
    functions: &[
        Function {
            name: "reset_stat",
            args: &[Arg { name: "name", kind: K::Str }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "reset a statistic to zero",
        },
        Function {
            name: "update_stat",
            args: &[Arg { name: "name", kind: K::Str }, Arg { name: "delta", kind: K::Int }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "add a non-zero signed number to a statistic",
        },
    ],
    params: &[Param {
        name: "variable",
        ty: T::Str,
        default: D::None,
        summary: "declares a statistic [group:]name (repeatable)",
    }],
};
