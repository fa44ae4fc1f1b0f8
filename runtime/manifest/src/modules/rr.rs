//! rr: record-routing and loose routing.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "rr",
    summary: "Record-Route insertion and Route-set processing (RFC 3261 loose routing, strict routing fallback)",
    functions: &[
        Function {
            name: "add_rr_param",
            args: &[Arg { name: "param", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::BRANCH),
            returns: &[],
            implemented: true,
            summary: "add a parameter to the Record-Route header this proxy inserts",
        },
        Function {
            name: "check_route_param",
            args: &[Arg { name: "re", kind: K::Regex }],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            summary: "match the parameters of the Route header used for this hop",
        },
        Function {
            name: "is_direction",
            args: &[Arg { name: "direction", kind: K::Opaque }],
            routes: R::REQUEST,
            returns: &[],
            implemented: true,
            summary: "true if the in-dialog request flows \"upstream\" or \"downstream\" (needs append_fromtag)",
        },
        Function {
            name: "loose_route",
            args: &[],
            routes: R::REQUEST,
            returns: &[
                (1, "the next hop was taken from the Route set"),
                (-1, "no Route header, the next hop is not from the Route set, or an error"),
            ],
            implemented: true,
            summary: "route an in-dialog request by its Route headers",
        },
        Function {
            name: "record_route",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::BRANCH),
            returns: &[],
            implemented: true,
            summary: "insert a Record-Route header (two when the interfaces differ and enable_double_rr is on)",
        },
        Function {
            name: "record_route",
            args: &[Arg { name: "params", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::BRANCH),
            returns: &[],
            implemented: true,
            summary: "insert a Record-Route header carrying the given parameters",
        },
        Function {
            name: "record_route_preset",
            args: &[Arg { name: "address", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::BRANCH),
            returns: &[],
            implemented: true,
            summary: "insert a Record-Route header with the given address",
        },
    ],
    params: &[
        Param {
            name: "add_username",
            ty: T::Int,
            default: D::Int(0),
            summary: "put the R-URI username in the Record-Route URI",
        },
        Param {
            name: "append_fromtag",
            ty: T::Int,
            default: D::Int(1),
            summary: "add the From tag to Record-Route (needed by is_direction)",
        },
        Param {
            name: "enable_double_rr",
            ty: T::Int,
            default: D::Int(1),
            summary: "insert two Record-Routes when in and out interfaces differ",
        },
        Param {
            name: "enable_full_lr",
            ty: T::Int,
            default: D::Int(0),
            summary: "write lr=on instead of a bare lr parameter",
        },
        Param {
            name: "ignore_user",
            ty: T::Str,
            default: D::None,
            summary: "Route username for which the route is not treated as local (only with ENABLE_USER_CHECK builds)",
        },
    ],
};
