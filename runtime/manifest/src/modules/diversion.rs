//! diversion: adds a Diversion header (RFC 5806 draft) recording why a request was redirected.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "diversion",
    summary: "adds a Diversion header recording why a request was redirected",
    functions: &[Function {
        name: "add_diversion",
        args: &[Arg { name: "reason", kind: K::Str }],
        routes: R::REQUEST.or(R::FAILURE),
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "add a Diversion header with the current Request-URI and the given reason",
    }],
    params: &[Param {
        name: "suffix",
        ty: T::Str,
        default: D::Str(""),
        summary: "text appended to every Diversion header",
    }],
};
