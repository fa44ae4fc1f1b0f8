//! domainpolicy: looks up the destination domain's peering policy (D2P NAPTR records) and applies it.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "domainpolicy",
    summary: "looks up the destination domain's peering policy (D2P NAPTR records) and applies it",
    functions: &[
        Function {
            name: "dp_apply_policy",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "rewrite the Request-URI and send socket from the AVPs dp_can_connect set",
        },
        Function {
            name: "dp_can_connect",
            args: &[],
            routes: R::REQUEST,
            returns: &[
                (1, "policy records found and the call can be made"),
                (2, "the domain publishes no policy for incoming SIP"),
                (-1, "policy records found but their requirements cannot be met"),
                (-2, "DNS or database error"),
            ],
            implemented: false,
            reads: &[],
            summary: "check the destination domain's policy against our own and set AVPs for dp_apply_policy",
        },
    ],
    params: &[
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openserro:openserro@localhost/openser"),
            summary: "database URL",
        },
        Param {
            name: "domain_prefix_avp",
            ty: T::Str,
            default: D::Str("domainprefix"),
            summary: "AVP holding a prefix for the new domain",
        },
        Param {
            name: "domain_replacement_avp",
            ty: T::Str,
            default: D::Str("domainreplacement"),
            summary: "AVP holding a replacement domain",
        },
        Param {
            name: "domain_suffix_avp",
            ty: T::Str,
            default: D::Str("domainsuffix"),
            summary: "AVP holding a suffix for the new domain",
        },
        Param {
            name: "dp_col_att",
            ty: T::Str,
            default: D::Str("att"),
            summary: "column holding the AVP name a rule sets",
        },
        Param { name: "dp_col_rule", ty: T::Str, default: D::Str("rule"), summary: "column holding the policy rule" },
        Param { name: "dp_col_type", ty: T::Str, default: D::Str("type"), summary: "column holding the rule type" },
        Param {
            name: "dp_col_val",
            ty: T::Str,
            default: D::Str("val"),
            summary: "column holding the AVP value a rule sets",
        },
        Param { name: "dp_table", ty: T::Str, default: D::Str("domainpolicy"), summary: "table of the local policy" },
        Param {
            name: "port_override_avp",
            ty: T::Str,
            default: D::Str("portoverride"),
            summary: "AVP holding a port override",
        },
        Param {
            name: "send_socket_avp",
            ty: T::Str,
            default: D::Str("sendsocket"),
            summary: "AVP holding the socket to send from",
        },
        Param {
            name: "transport_override_avp",
            ty: T::Str,
            default: D::Str("transportoverride"),
            summary: "AVP holding a transport override",
        },
    ],
};
