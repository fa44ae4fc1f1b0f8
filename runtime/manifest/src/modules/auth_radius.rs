//! auth_radius: digest authentication through a RADIUS server.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "auth_radius",
    summary: "digest authentication through a RADIUS server",
    functions: &[
        Function {
            name: "radius_proxy_authorize",
            args: &[Arg { name: "realm", kind: K::Format }],
            routes: R::REQUEST,
            returns: &[
                (1, "authorized"),
                (0, "an error reply was sent; the script stops"),
                (-3, "stale nonce"),
                (-4, "no credentials for this realm in the request"),
                (-5, "rejected by the server or error"),
            ],
            implemented: false,
            reads: &[],
            summary: "check Proxy-Authorization credentials with the RADIUS server",
        },
        Function {
            name: "radius_proxy_authorize",
            args: &[Arg { name: "realm", kind: K::Format }, Arg { name: "uri_user", kind: K::PVar }],
            routes: R::REQUEST,
            returns: &[
                (1, "authorized"),
                (0, "an error reply was sent; the script stops"),
                (-3, "stale nonce"),
                (-4, "no credentials for this realm in the request"),
                (-5, "rejected by the server or error"),
            ],
            implemented: false,
            reads: &[],
            summary: "check Proxy-Authorization credentials with RADIUS, giving it the pseudo-variable as URI user",
        },
        Function {
            name: "radius_www_authorize",
            args: &[Arg { name: "realm", kind: K::Format }],
            routes: R::REQUEST,
            returns: &[
                (1, "authorized"),
                (0, "an error reply was sent; the script stops"),
                (-3, "stale nonce"),
                (-4, "no credentials for this realm in the request"),
                (-5, "rejected by the server or error"),
            ],
            implemented: false,
            reads: &[],
            summary: "check Authorization credentials with the RADIUS server",
        },
    ],
    params: &[
        Param {
            name: "radius_config",
            ty: T::Str,
            default: D::Str("/usr/local/etc/radiusclient-ng/radiusclient.conf"),
            summary: "radiusclient configuration file",
        },
        Param {
            name: "service_type",
            ty: T::Int,
            default: D::Int(-1),
            summary: "RADIUS Service-Type of authentication requests (-1: the dictionary's default)",
        },
    ],
};
