//! perl: embedded Perl.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "perl",
    summary: "Calls Perl functions from the script",
    functions: &[
        Function {
            name: "perl_exec",
            args: &[Arg { name: "function", kind: K::Str }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "call a Perl function with the current message",
        },
        Function {
            name: "perl_exec",
            args: &[Arg { name: "function", kind: K::Str }, Arg { name: "param", kind: K::Str }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "call a Perl function with the message and a string",
        },
        Function {
            name: "perl_exec_simple",
            args: &[Arg { name: "function", kind: K::Str }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "call a Perl function without the message",
        },
        Function {
            name: "perl_exec_simple",
            args: &[Arg { name: "function", kind: K::Str }, Arg { name: "param", kind: K::Str }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "call a Perl function with a string argument",
        },
    ],
    params: &[
        Param { name: "filename", ty: T::Str, default: D::None, summary: "Perl script to load (required)" },
        Param { name: "modpath", ty: T::Str, default: D::None, summary: "directory of the OpenSER Perl modules" },
        Param {
            name: "unsafemodfnc",
            ty: T::Int,
            default: D::Int(0),
            summary: "allow calling module functions not known to be safe",
        },
    ],
};
