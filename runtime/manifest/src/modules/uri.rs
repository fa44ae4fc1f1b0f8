//! uri: R-URI and header URI checks.
use crate::{Arg, ArgKind as K, Function, Module, Routes as R};

pub static MODULE: Module = Module {
    name: "uri",
    summary: "Tests and edits on URIs: user checks, URI parameters, To tag, tel: conversion, E.164 test",
    functions: &[
        Function {
            name: "add_uri_param",
            args: &[Arg { name: "param", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            summary: "append a ;param to the R-URI",
        },
        Function {
            name: "has_totag",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            summary: "true if the To header has a tag (an in-dialog request)",
        },
        Function {
            name: "is_uri_user_e164",
            args: &[Arg { name: "uri", kind: K::PVar }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: true,
            summary: "true if the user part of the URI in the variable is an E.164 number",
        },
        Function {
            name: "is_user",
            args: &[Arg { name: "user", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            summary: "true if the authenticated username equals the given one",
        },
        Function {
            name: "tel2sip",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            summary: "turn a tel: R-URI into a sip: URI with user=phone",
        },
        Function {
            name: "uri_param",
            args: &[Arg { name: "param", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            summary: "true if the R-URI has this parameter",
        },
        Function {
            name: "uri_param",
            args: &[Arg { name: "param", kind: K::Str }, Arg { name: "value", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            summary: "true if the R-URI has this parameter with this value",
        },
    ],
    params: &[],
};
