//! seas: SIP Express Application Server interface.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "seas",
    summary: "Hands requests to external application servers (WeSIP) over TCP",
    functions: &[
        Function {
            name: "as_relay_sl",
            args: &[Arg { name: "app_server", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "pass the request statelessly to the named application server",
        },
        Function {
            name: "as_relay_t",
            args: &[Arg { name: "app_server", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "pass the request statefully to the named application server",
        },
    ],
    params: &[
        Param { name: "clusters", ty: T::Str, default: D::None, summary: "groups of application servers" },
        Param {
            name: "jain_ping",
            ty: T::Str,
            default: D::None,
            summary: "ping settings for JAIN application servers",
        },
        Param {
            name: "listen_sockets",
            ty: T::Str,
            default: D::None,
            summary: "ip:port where application servers connect (default: port 5080 on the SIP address)",
        },
        Param {
            name: "servlet_ping",
            ty: T::Str,
            default: D::None,
            summary: "ping settings for servlet application servers",
        },
        Param { name: "stats_socket", ty: T::Str, default: D::None, summary: "ip:port serving statistics" },
    ],
};
