//! path: Path header insertion.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "path",
    summary: "Adds Path headers (RFC 3327) to REGISTER requests relayed by an edge proxy",
    functions: &[
        Function {
            name: "add_path",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "add a Path header with this proxy's address",
        },
        Function {
            name: "add_path",
            args: &[Arg { name: "user", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "add a Path header whose URI carries the given user part",
        },
        Function {
            name: "add_path_received",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "add a Path header carrying the source address as received parameter",
        },
        Function {
            name: "add_path_received",
            args: &[Arg { name: "user", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "add_path_received with the given user part",
        },
    ],
    params: &[Param {
        name: "use_received",
        ty: T::Int,
        default: D::Int(0),
        summary: "on loose_route, send to the received parameter of the Route URI",
    }],
};
