//! pua: presence user agent core.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "pua",
    summary: "Sends PUBLISH and SUBSCRIBE requests on behalf of other modules",
    functions: &[],
    params: &[
        Param { name: "db_table", ty: T::Str, default: D::Str("pua"), summary: "table of PUBLISH/SUBSCRIBE state" },
        Param { name: "db_url", ty: T::Str, default: D::None, summary: "database URL" },
        Param {
            name: "default_expires",
            ty: T::Int,
            default: D::Int(3600),
            summary: "expires used when none is given",
        },
        Param {
            name: "hash_size",
            ty: T::Int,
            default: D::Int(-1),
            summary: "log2 of the hash table size (unset or <= 1: 512 entries)",
        },
        Param {
            name: "min_expires",
            ty: T::Int,
            default: D::Int(0),
            summary: "smallest expires used for PUBLISH and SUBSCRIBE",
        },
        Param {
            name: "update_period",
            ty: T::Int,
            default: D::Int(100),
            summary: "seconds between database syncs and expiry checks",
        },
    ],
};
