//! group_radius: group membership checks through a RADIUS server.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "group_radius",
    summary: "group membership checks through a RADIUS server",
    functions: &[Function {
        name: "radius_is_user_in",
        args: &[Arg { name: "uri_source", kind: K::Opaque }, Arg { name: "group", kind: K::Str }],
        routes: R::REQUEST,
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "ask the RADIUS server whether the Request-URI/To/From/Credentials user is in the group",
    }],
    params: &[
        Param {
            name: "radius_config",
            ty: T::Str,
            default: D::Str("/usr/local/etc/radiusclient-ng/radiusclient.conf"),
            summary: "radiusclient configuration file",
        },
        Param {
            name: "use_domain",
            ty: T::Int,
            default: D::Int(0),
            summary: "send user@domain instead of the user name alone",
        },
    ],
};
