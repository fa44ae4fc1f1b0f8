//! xmpp: SIP/XMPP messaging gateway.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "xmpp",
    summary: "Translates instant messages between SIP and XMPP",
    functions: &[Function {
        name: "xmpp_send_message",
        args: &[],
        routes: R::REQUEST,
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "send the SIP MESSAGE to XMPP",
    }],
    params: &[
        Param {
            name: "backend",
            ty: T::Str,
            default: D::Str("component"),
            summary: "component (through a Jabber server) or server (standalone)",
        },
        Param {
            name: "domain_separator",
            ty: T::Str,
            default: D::None,
            summary: "character replacing @ in translated addresses (unset: *)",
        },
        Param {
            name: "gateway_domain",
            ty: T::Str,
            default: D::Str("sip2xmpp.example.net"),
            summary: "domain of the gateway on the SIP side",
        },
        Param {
            name: "xmpp_domain",
            ty: T::Str,
            default: D::Str("xmpp2sip.example.net"),
            summary: "domain of the gateway on the XMPP side",
        },
        Param {
            name: "xmpp_host",
            ty: T::Str,
            default: D::Str("xmpp.example.com"),
            summary: "Jabber server to connect to in component mode",
        },
        Param {
            name: "xmpp_password",
            ty: T::Str,
            default: D::Str("secret"),
            summary: "component password on the Jabber server",
        },
        Param {
            name: "xmpp_port",
            ty: T::Int,
            default: D::Int(0),
            summary: "XMPP port (0: 5347 in component mode, 5269 in server mode)",
        },
    ],
};
