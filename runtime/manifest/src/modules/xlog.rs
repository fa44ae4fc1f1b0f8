//! xlog: formatted logging.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "xlog",
    summary: "Logs messages with pseudo-variables expanded",
    functions: &[
        Function {
            name: "xdbg",
            args: &[Arg { name: "message", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH).or(R::ERROR),
            returns: &[],
            implemented: true,
            reads: &[],
            summary: "log the formatted message at debug level",
        },
        Function {
            name: "xlog",
            args: &[Arg { name: "message", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH).or(R::ERROR),
            returns: &[],
            implemented: true,
            reads: &[],
            summary: "log the formatted message at error level",
        },
        Function {
            name: "xlog",
            args: &[Arg { name: "level", kind: K::LogLevel }, Arg { name: "message", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH).or(R::ERROR),
            returns: &[],
            implemented: true,
            reads: &[],
            summary: "log the formatted message at the given level",
        },
    ],
    params: &[
        Param {
            name: "buf_size",
            ty: T::Int,
            default: D::Int(4096),
            summary: "size of the buffer a formatted message is printed into",
        },
        Param {
            name: "force_color",
            ty: T::Int,
            default: D::Int(0),
            summary: "allow color pseudo-variables even when logging to syslog",
        },
    ],
};
