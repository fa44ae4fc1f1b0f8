//! mediaproxy: NAT traversal through an external MediaProxy.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "mediaproxy",
    summary: "Detects NATed clients, fixes their Contact and routes media through MediaProxy servers",
    functions: &[
        Function {
            name: "client_nat_test",
            args: &[Arg { name: "tests", kind: K::Int }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "true if any chosen test finds NAT: 1 private Contact, 2 source differs from Via, 4 private Via",
        },
        Function {
            name: "end_media_session",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "tell MediaProxy to end the call's media session",
        },
        Function {
            name: "fix_contact",
            args: &[],
            routes: R::REQUEST.or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "rewrite the Contact host:port with the source address (SIP-asymmetric clients keep their port)",
        },
        Function {
            name: "use_media_proxy",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(1, "SDP rewritten"), (-1, "processing error"), (-2, "no SDP body to process")],
            implemented: false,
            reads: &[],
            summary: "ask MediaProxy for relay addresses and rewrite the SDP with them",
        },
    ],
    params: &[
        Param {
            name: "domain_avp",
            ty: T::Str,
            default: D::Str("$avp(s:mediaproxy_domain)"),
            summary: "AVP naming the MediaProxy domain to use for a call",
        },
        Param {
            name: "mediaproxy_socket",
            ty: T::Str,
            default: D::Str("/var/run/proxydispatcher.sock"),
            summary: "unix socket of the MediaProxy dispatcher",
        },
        Param {
            name: "natping_interval",
            ty: T::Int,
            default: D::Int(60),
            summary: "seconds between keep-alive pings to NATed contacts (0: off)",
        },
        Param {
            name: "rtp_asymmetrics",
            ty: T::Str,
            default: D::Str("/etc/openser/rtp-asymmetric-clients"),
            summary: "file of User-Agent regexes of RTP-asymmetric clients",
        },
        Param {
            name: "signaling_ip_avp",
            ty: T::Str,
            default: D::Str("$avp(s:signaling_ip)"),
            summary: "AVP holding the caller's signaling IP",
        },
        Param {
            name: "sip_asymmetrics",
            ty: T::Str,
            default: D::Str("/etc/openser/sip-asymmetric-clients"),
            summary: "file of User-Agent regexes of SIP-asymmetric clients",
        },
    ],
};
