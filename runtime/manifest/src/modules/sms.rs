//! sms: SIP-to-SMS gateway.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "sms",
    summary: "Sends SIP MESSAGEs as SMS through GSM modems and SMS back as SIP",
    functions: &[
        Function {
            name: "sms_send_msg",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "queue the MESSAGE as an SMS on the default network",
        },
        Function {
            name: "sms_send_msg_to_net",
            args: &[Arg { name: "network", kind: K::Str }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "queue the MESSAGE as an SMS on the named network",
        },
    ],
    params: &[
        Param {
            name: "default_net",
            ty: T::Str,
            default: D::None,
            summary: "network used by sms_send_msg (unset: the first defined)",
        },
        Param {
            name: "domain",
            ty: T::Str,
            default: D::None,
            summary: "domain used in generated From/Contact (unset: the host name)",
        },
        Param { name: "links", ty: T::Str, default: D::None, summary: "which networks each modem serves (required)" },
        Param {
            name: "max_sms_parts",
            ty: T::Int,
            default: D::Int(4),
            summary: "most SMS parts one message is split into",
        },
        Param { name: "modems", ty: T::Str, default: D::None, summary: "modem definitions (required)" },
        Param { name: "networks", ty: T::Str, default: D::None, summary: "network definitions (required)" },
        Param {
            name: "sms_report_type",
            ty: T::Int,
            default: D::Int(0),
            summary: "delivery reports: 0 none, 1 SMS reports, 2 CDS responses",
        },
        Param {
            name: "use_contact",
            ty: T::Int,
            default: D::Int(0),
            summary: "add a Contact header to generated messages",
        },
    ],
};
