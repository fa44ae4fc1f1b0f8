//! avp_radius: loads a user's AVPs from a RADIUS server.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "avp_radius",
    summary: "loads a user's AVPs from a RADIUS server",
    functions: &[Function {
        name: "avp_load_radius",
        args: &[Arg { name: "user", kind: K::Opaque }],
        routes: R::REQUEST.or(R::FAILURE),
        returns: &[],
        implemented: false,
        reads: &[],
        summary:
            "load the AVPs of the caller, the callee or the digest user (\"caller\"|\"callee\"|\"digest\") from RADIUS",
    }],
    params: &[
        Param {
            name: "callee_service_type",
            ty: T::Int,
            default: D::Int(-1),
            summary: "RADIUS Service-Type used when loading the callee's AVPs",
        },
        Param {
            name: "caller_service_type",
            ty: T::Int,
            default: D::Int(-1),
            summary: "RADIUS Service-Type used when loading the caller's AVPs",
        },
        Param {
            name: "radius_config",
            ty: T::Str,
            default: D::Str("/usr/local/etc/radiusclient-ng/radiusclient.conf"),
            summary: "radiusclient configuration file",
        },
    ],
};
