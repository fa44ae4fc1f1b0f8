//! uri_radius: RADIUS-backed URI check.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "uri_radius",
    summary: "Checks that the R-URI user exists with a RADIUS query",
    functions: &[Function {
        name: "radius_does_uri_exist",
        args: &[],
        routes: R::REQUEST,
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "true if the RADIUS server knows the R-URI user",
    }],
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
            summary: "Service-Type value of the query (-1: the built-in default)",
        },
    ],
};
