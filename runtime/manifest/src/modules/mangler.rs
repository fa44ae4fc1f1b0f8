//! mangler: rewrites IP addresses and ports in SDP bodies and encodes/decodes Contact URIs, for crude NAT traversal.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "mangler",
    summary: "rewrites SDP addresses and ports and encodes/decodes Contact URIs, for crude NAT traversal",
    functions: &[
        Function {
            name: "decode_contact",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "restore the original Request-URI from one encoded by encode_contact",
        },
        Function {
            name: "decode_contact_header",
            args: &[],
            routes: R::REQUEST.or(R::ONREPLY),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "restore the original URIs of the Contact header from ones encoded by encode_contact",
        },
        Function {
            name: "encode_contact",
            args: &[Arg { name: "prefix", kind: K::Str }, Arg { name: "public_ip", kind: K::Str }],
            routes: R::REQUEST.or(R::ONREPLY),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "rewrite each Contact URI as sip:prefix*user*ip*port*proto@public_ip",
        },
        Function {
            name: "sdp_mangle_ip",
            args: &[Arg { name: "network", kind: K::Opaque }, Arg { name: "new_ip", kind: K::Str }],
            routes: R::REQUEST.or(R::ONREPLY),
            returns: &[(1, "nothing replaced (n + 1: n addresses replaced)")],
            implemented: false,
            reads: &[],
            summary: "replace SDP connection addresses inside the network (\"ip/mask\" or \"ip/bits\") with new_ip",
        },
        Function {
            name: "sdp_mangle_port",
            args: &[Arg { name: "offset", kind: K::Int }],
            routes: R::REQUEST.or(R::ONREPLY),
            returns: &[(1, "nothing replaced (n + 1: n ports changed)")],
            implemented: false,
            reads: &[],
            summary: "add a signed offset to every SDP media port",
        },
    ],
    params: &[Param {
        name: "contact_flds_separator",
        ty: T::Str,
        default: D::Str("*"),
        summary: "separator of the fields in encoded Contact URIs (first character used)",
    }],
};
