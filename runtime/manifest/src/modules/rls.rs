//! rls: resource list server.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "rls",
    summary: "Handles subscriptions to resource lists and sends aggregated NOTIFYs",
    functions: &[
        Function {
            name: "rls_handle_notify",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "process a NOTIFY for a resource-list back-end subscription",
        },
        Function {
            name: "rls_handle_subscribe",
            args: &[],
            routes: R::REQUEST,
            returns: &[
                (0, "handled: the reply was sent and the script stops"),
                (1, "not a resource-list subscription (the to_presence_code value, 1 by default)"),
                (-1, "error"),
            ],
            implemented: false,
            reads: &[],
            summary: "process a SUBSCRIBE to a resource list",
        },
    ],
    params: &[
        Param {
            name: "clean_period",
            ty: T::Int,
            default: D::Int(100),
            summary: "seconds between removals of expired records",
        },
        Param { name: "db_url", ty: T::Str, default: D::None, summary: "database URL" },
        Param {
            name: "hash_size",
            ty: T::Int,
            default: D::Int(512),
            summary: "log2 of the subscription hash table size (the default 512 is taken as an exponent too)",
        },
        Param {
            name: "integrated_xcap_server",
            ty: T::Int,
            default: D::Int(0),
            summary: "resource lists come only from an integrated XCAP server",
        },
        Param {
            name: "max_expires",
            ty: T::Int,
            default: D::Int(7200),
            summary: "largest expires accepted for list subscriptions",
        },
        Param {
            name: "rlpres_table",
            ty: T::Str,
            default: D::Str("rls_presentity"),
            summary: "table of states received from back-end subscriptions",
        },
        Param {
            name: "rls_event",
            ty: T::Str,
            default: D::None,
            summary: "extra event package handled besides presence (repeatable)",
        },
        Param {
            name: "rlsubs_table",
            ty: T::Str,
            default: D::Str("rls_watchers"),
            summary: "table of list subscriptions",
        },
        Param { name: "server_address", ty: T::Str, default: D::None, summary: "Contact address of the server" },
        Param {
            name: "to_presence_code",
            ty: T::Int,
            default: D::Int(1),
            summary: "code rls_handle_subscribe returns for non-list subscriptions",
        },
        Param { name: "waitn_time", ty: T::Int, default: D::Int(10), summary: "seconds between aggregated NOTIFYs" },
        Param { name: "xcap_root", ty: T::Str, default: D::None, summary: "address of the XCAP server" },
        Param { name: "xcap_table", ty: T::Str, default: D::Str("xcap"), summary: "table of XCAP documents" },
    ],
};
