//! tlsops: TLS connection information.
use crate::{Function, Module, Routes as R};

pub static MODULE: Module = Module {
    name: "tlsops",
    summary: "Checks and pseudo-variables about the TLS connection of a request",
    functions: &[Function {
        name: "is_peer_verified",
        args: &[],
        routes: R::REQUEST,
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "true if the request came over TLS with a verified peer certificate",
    }],
    params: &[],
};
