//! snmpstats: exports OpenSER's statistics and alarms over SNMP (AgentX).
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "snmpstats",
    summary: "exports OpenSER's statistics and alarms over SNMP (AgentX)",
    functions: &[],
    params: &[
        Param {
            name: "sipEntityType",
            ty: T::Str,
            default: D::None,
            summary: "the role reported in the SIP MIB (registrarServer, proxyServer …); repeatable",
        },
        Param {
            name: "MsgQueueMinorThreshold",
            ty: T::Int,
            default: D::None,
            summary: "message-queue length that raises a minor alarm",
        },
        Param {
            name: "MsgQueueMajorThreshold",
            ty: T::Int,
            default: D::None,
            summary: "message-queue length that raises a major alarm",
        },
        Param {
            name: "dlg_minor_threshold",
            ty: T::Int,
            default: D::None,
            summary: "active-dialog count that raises a minor alarm",
        },
        Param {
            name: "dlg_major_threshold",
            ty: T::Int,
            default: D::None,
            summary: "active-dialog count that raises a major alarm",
        },
        Param {
            name: "snmpgetPath",
            ty: T::Str,
            default: D::Str("/usr/local/bin/"),
            summary: "directory of the snmpget program used for alarm checks",
        },
        Param {
            name: "snmpCommunity",
            ty: T::Str,
            default: D::Str("public"),
            summary: "SNMP community used by snmpget",
        },
    ],
};
