//! usrloc: user location storage.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "usrloc",
    summary: "In-memory store of registered contacts with optional database persistence",
    functions: &[],
    params: &[
        Param { name: "callid_column", ty: T::Str, default: D::Str("callid"), summary: "column holding the Call-ID" },
        Param {
            name: "cflags_column",
            ty: T::Str,
            default: D::Str("cflags"),
            summary: "column holding the branch flags",
        },
        Param {
            name: "contact_column",
            ty: T::Str,
            default: D::Str("contact"),
            summary: "column holding the contact URI",
        },
        Param { name: "cseq_column", ty: T::Str, default: D::Str("cseq"), summary: "column holding the CSeq number" },
        Param {
            name: "cseq_delay",
            ty: T::Int,
            default: D::Int(20),
            summary: "seconds a REGISTER with an equal Call-ID and CSeq still counts as a retransmission",
        },
        Param {
            name: "db_mode",
            ty: T::Int,
            default: D::Int(0),
            summary: "0 memory only, 1 write-through, 2 write-back, 3 database only",
        },
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openser:openserrw@localhost/openser"),
            summary: "database URL",
        },
        Param {
            name: "desc_time_order",
            ty: T::Int,
            default: D::Int(0),
            summary: "order contacts by last update, newest first, instead of by q",
        },
        Param { name: "domain_column", ty: T::Str, default: D::Str("domain"), summary: "column holding the domain" },
        Param {
            name: "expires_column",
            ty: T::Str,
            default: D::Str("expires"),
            summary: "column holding the expiry time",
        },
        Param {
            name: "fetch_rows",
            ty: T::Int,
            default: D::Int(2000),
            summary: "rows fetched per query when loading the table",
        },
        Param {
            name: "flags_column",
            ty: T::Str,
            default: D::Str("flags"),
            summary: "column holding the internal flags",
        },
        Param {
            name: "hash_size",
            ty: T::Int,
            default: D::Int(9),
            summary: "log2 of the number of hash slots per domain table",
        },
        Param {
            name: "matching_mode",
            ty: T::Int,
            default: D::Int(0),
            summary: "contact matching: 0 by URI only, 1 by URI and Call-ID",
        },
        Param {
            name: "methods_column",
            ty: T::Str,
            default: D::Str("methods"),
            summary: "column holding the supported methods",
        },
        Param {
            name: "nat_bflag",
            ty: T::Int,
            default: D::Int(-1),
            summary: "branch flag marking NATed contacts (-1: none)",
        },
        Param { name: "path_column", ty: T::Str, default: D::Str("path"), summary: "column holding the Path" },
        Param { name: "q_column", ty: T::Str, default: D::Str("q"), summary: "column holding the q value" },
        Param {
            name: "received_column",
            ty: T::Str,
            default: D::Str("received"),
            summary: "column holding the received address",
        },
        Param {
            name: "socket_column",
            ty: T::Str,
            default: D::Str("socket"),
            summary: "column holding the receiving socket",
        },
        Param {
            name: "timer_interval",
            ty: T::Int,
            default: D::Int(60),
            summary: "seconds between expiry sweeps (and write-back syncs)",
        },
        Param {
            name: "use_domain",
            ty: T::Int,
            default: D::Int(0),
            summary: "include the domain in the address of record",
        },
        Param {
            name: "user_agent_column",
            ty: T::Str,
            default: D::Str("user_agent"),
            summary: "column holding the User-Agent",
        },
        Param { name: "user_column", ty: T::Str, default: D::Str("username"), summary: "column holding the username" },
    ],
};
