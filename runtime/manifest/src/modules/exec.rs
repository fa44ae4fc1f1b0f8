//! exec: runs external commands from the script, feeding them the request and taking back a new URI or AVPs.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "exec",
    summary: "runs external commands from the script, feeding them the request, taking back URIs or AVPs",
    functions: &[
        Function {
            name: "exec_avp",
            args: &[Arg { name: "command", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "run a shell command and store each line of its output in $avp(i:1), $avp(i:2)…",
        },
        Function {
            name: "exec_avp",
            args: &[Arg { name: "command", kind: K::Format }, Arg { name: "avps", kind: K::Opaque }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "run a shell command and store its output lines in the listed AVPs (\"$avp(a);$avp(b)\")",
        },
        Function {
            name: "exec_dset",
            args: &[Arg { name: "command", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "run a shell command given the Request-URI; its output lines become the new URI and branches",
        },
        Function {
            name: "exec_msg",
            args: &[Arg { name: "command", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "run a shell command with the request on its standard input",
        },
    ],
    params: &[
        Param {
            name: "setvars",
            ty: T::Int,
            default: D::Int(1),
            summary: "export the request's header fields to the command as environment variables",
        },
        Param {
            name: "time_to_kill",
            ty: T::Int,
            default: D::Int(0),
            summary: "seconds after which a command is killed (0: never)",
        },
    ],
};
