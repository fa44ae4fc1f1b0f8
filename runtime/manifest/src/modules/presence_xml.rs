//! presence_xml: XML presence event packages.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "presence_xml",
    summary: "Adds the presence, presence.winfo and dialog;sla event packages to the presence server",
    functions: &[],
    params: &[
        Param { name: "db_url", ty: T::Str, default: D::None, summary: "database URL" },
        Param {
            name: "force_active",
            ty: T::Int,
            default: D::Int(0),
            summary: "accept every subscription without authorization rules",
        },
        Param {
            name: "integrated_xcap_server",
            ty: T::Int,
            default: D::Int(0),
            summary: "read XCAP documents from the database written by an integrated server",
        },
        Param {
            name: "pidf_manipulation",
            ty: T::Int,
            default: D::Int(0),
            summary: "merge PIDF documents stored through XCAP",
        },
        Param { name: "xcap_server", ty: T::Str, default: D::None, summary: "XCAP server address (repeatable)" },
        Param { name: "xcap_table", ty: T::Str, default: D::Str("xcap"), summary: "table of XCAP documents" },
    ],
};
