//! auth_diameter: digest authentication and group membership checks through a DIAMETER server.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "auth_diameter",
    summary: "digest authentication and group membership checks through a DIAMETER server",
    functions: &[
        Function {
            name: "diameter_is_user_in",
            args: &[Arg { name: "uri_source", kind: K::Opaque }, Arg { name: "group", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "ask the DIAMETER server whether the Request-URI/To/From/Credentials user is in the group",
        },
        Function {
            name: "diameter_proxy_authorize",
            args: &[Arg { name: "realm", kind: K::Format }],
            routes: R::REQUEST,
            returns: &[
                (1, "authorized"),
                (0, "an error reply was sent; the script stops"),
                (-5, "not authorized or error (the server's challenge or a 403 may have been sent)"),
            ],
            implemented: false,
            reads: &[],
            summary: "authorize Proxy-Authorization credentials through the DIAMETER server",
        },
        Function {
            name: "diameter_www_authorize",
            args: &[Arg { name: "realm", kind: K::Format }],
            routes: R::REQUEST,
            returns: &[
                (1, "authorized"),
                (0, "an error reply was sent; the script stops"),
                (-5, "not authorized or error (the server's challenge or a 403 may have been sent)"),
            ],
            implemented: false,
            reads: &[],
            summary: "authorize Authorization credentials through the DIAMETER server",
        },
    ],
    params: &[
        Param {
            name: "diameter_client_host",
            ty: T::Str,
            default: D::Str("localhost"),
            summary: "host of the DIAMETER client",
        },
        Param {
            name: "diameter_client_port",
            ty: T::Int,
            default: D::Int(3000),
            summary: "port of the DIAMETER client",
        },
        Param { name: "use_domain", ty: T::Int, default: D::Int(0), summary: "send the domain with the user name" },
    ],
};
