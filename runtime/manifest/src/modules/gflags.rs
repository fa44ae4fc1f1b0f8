//! gflags: 32 global flags shared by all processes, settable from the script and over MI.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "gflags",
    summary: "32 global flags shared by all processes, settable from the script and over MI",
    functions: &[
        Function {
            name: "is_gflag",
            args: &[Arg { name: "flag", kind: K::Flag }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "test whether the global flag is set",
        },
        Function {
            name: "reset_gflag",
            args: &[Arg { name: "flag", kind: K::Flag }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "clear the global flag",
        },
        Function {
            name: "set_gflag",
            args: &[Arg { name: "flag", kind: K::Flag }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "set the global flag",
        },
    ],
    params: &[Param {
        name: "initial",
        ty: T::Int,
        default: D::Int(0),
        summary: "initial value of the flags, as a bit mask",
    }],
};
