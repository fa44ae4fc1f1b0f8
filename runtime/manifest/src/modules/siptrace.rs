//! siptrace: message tracing.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "siptrace",
    summary: "Stores (or duplicates) traced SIP messages",
    functions: &[Function {
        name: "sip_trace",
        args: &[],
        routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "store the current message in the trace table (and send a copy to duplicate_uri)",
    }],
    params: &[
        Param { name: "callid_column", ty: T::Str, default: D::Str("callid"), summary: "column with the Call-ID" },
        Param { name: "date_column", ty: T::Str, default: D::Str("date"), summary: "column with the date" },
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openserro:openserro@localhost/openser"),
            summary: "database URL",
        },
        Param {
            name: "direction_column",
            ty: T::Str,
            default: D::Str("direction"),
            summary: "column with the direction (in/out)",
        },
        Param {
            name: "duplicate_uri",
            ty: T::Str,
            default: D::None,
            summary: "SIP URI receiving a UDP copy of traced messages",
        },
        Param {
            name: "fromip_column",
            ty: T::Str,
            default: D::Str("fromip"),
            summary: "column with the source address",
        },
        Param { name: "fromtag_column", ty: T::Str, default: D::Str("fromtag"), summary: "column with the From tag" },
        Param { name: "method_column", ty: T::Str, default: D::Str("method"), summary: "column with the method" },
        Param { name: "msg_column", ty: T::Str, default: D::Str("msg"), summary: "column with the whole message" },
        Param { name: "status_column", ty: T::Str, default: D::Str("status"), summary: "column with the reply status" },
        Param { name: "table", ty: T::Str, default: D::Str("sip_trace"), summary: "trace table" },
        Param {
            name: "toip_column",
            ty: T::Str,
            default: D::Str("toip"),
            summary: "column with the destination address",
        },
        Param { name: "trace_flag", ty: T::Int, default: D::Int(-1), summary: "flag marking messages to trace" },
        Param {
            name: "trace_local_ip",
            ty: T::Str,
            default: D::None,
            summary: "address written as source of locally generated messages",
        },
        Param { name: "trace_on", ty: T::Int, default: D::Int(0), summary: "tracing enabled at start-up" },
        Param { name: "trace_table_avp", ty: T::Str, default: D::None, summary: "AVP naming the table to store in" },
        Param { name: "traced_user_avp", ty: T::Str, default: D::None, summary: "AVP holding the traced user's URI" },
        Param {
            name: "traced_user_column",
            ty: T::Str,
            default: D::Str("traced_user"),
            summary: "column with the traced user",
        },
    ],
};
