//! presence: presence server.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "presence",
    summary: "Handles PUBLISH and SUBSCRIBE and sends NOTIFY for presence events",
    functions: &[
        Function {
            name: "handle_publish",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "process a PUBLISH, store the state and notify watchers (replies itself)",
        },
        Function {
            name: "handle_publish",
            args: &[Arg { name: "sender", kind: K::Uri }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "process a PUBLISH without notifying the given sender URI",
        },
        Function {
            name: "handle_subscribe",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "process a SUBSCRIBE and send the NOTIFY (replies itself)",
        },
    ],
    params: &[
        Param {
            name: "active_watchers_table",
            ty: T::Str,
            default: D::Str("active_watchers"),
            summary: "table of active subscriptions",
        },
        Param {
            name: "clean_period",
            ty: T::Int,
            default: D::Int(100),
            summary: "seconds between removals of expired records",
        },
        Param { name: "db_url", ty: T::Str, default: D::None, summary: "database URL (unset: library mode only)" },
        Param {
            name: "expires_offset",
            ty: T::Int,
            default: D::Int(0),
            summary: "seconds subtracted from the expires granted to PUBLISH",
        },
        Param {
            name: "fallback2db",
            ty: T::Int,
            default: D::Int(0),
            summary: "search the database when a record is not in the cache",
        },
        Param {
            name: "max_expires",
            ty: T::Int,
            default: D::Int(3600),
            summary: "largest expires accepted for PUBLISH and SUBSCRIBE",
        },
        Param {
            name: "pres_htable_size",
            ty: T::Int,
            default: D::Int(9),
            summary: "log2 of the size of the publication hash table",
        },
        Param {
            name: "presentity_table",
            ty: T::Str,
            default: D::Str("presentity"),
            summary: "table of published states",
        },
        Param {
            name: "server_address",
            ty: T::Str,
            default: D::None,
            summary: "Contact address used in replies and NOTIFYs",
        },
        Param {
            name: "subs_htable_size",
            ty: T::Int,
            default: D::Int(9),
            summary: "log2 of the size of the subscription hash table",
        },
        Param { name: "to_tag_pref", ty: T::Str, default: D::Str("10"), summary: "prefix of generated To tags" },
        Param { name: "totag_avpid", ty: T::Int, default: D::Int(25), summary: "id of the AVP holding the To tag" },
        Param {
            name: "watchers_table",
            ty: T::Str,
            default: D::Str("watchers"),
            summary: "table of subscription states",
        },
    ],
};
