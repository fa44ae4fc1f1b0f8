//! xcap_client: XCAP client.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "xcap_client",
    summary: "Fetches XCAP documents for presence modules and keeps them fresh",
    functions: &[],
    params: &[
        Param { name: "db_url", ty: T::Str, default: D::None, summary: "database URL" },
        Param {
            name: "periodical_query",
            ty: T::Int,
            default: D::Int(1),
            summary: "poll the XCAP servers for changes",
        },
        Param { name: "query_period", ty: T::Int, default: D::Int(100), summary: "seconds between polls" },
        Param { name: "xcap_table", ty: T::Str, default: D::Str("xcap"), summary: "table of XCAP documents" },
    ],
};
