//! speeddial: per-user speed dial.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "speeddial",
    summary: "Rewrites the R-URI from a per-user speed-dial table",
    functions: &[
        Function {
            name: "sd_lookup",
            args: &[Arg { name: "table", kind: K::Table }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "replace the R-URI with the caller's (From) speed-dial entry for its user part",
        },
        Function {
            name: "sd_lookup",
            args: &[Arg { name: "table", kind: K::Table }, Arg { name: "owner", kind: K::Uri }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "look up the speed-dial entry of the given owner URI",
        },
    ],
    params: &[
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openserro:openserro@localhost/openser"),
            summary: "database URL",
        },
        Param { name: "domain_column", ty: T::Str, default: D::Str("domain"), summary: "column with the owner domain" },
        Param {
            name: "domain_prefix",
            ty: T::Str,
            default: D::None,
            summary: "prefix stripped from domains before the lookup",
        },
        Param { name: "new_uri_column", ty: T::Str, default: D::Str("new_uri"), summary: "column with the target URI" },
        Param {
            name: "sd_domain_column",
            ty: T::Str,
            default: D::Str("sd_domain"),
            summary: "column with the dialed domain",
        },
        Param {
            name: "sd_user_column",
            ty: T::Str,
            default: D::Str("sd_username"),
            summary: "column with the dialed short number",
        },
        Param { name: "use_domain", ty: T::Int, default: D::Int(0), summary: "match the domains as well" },
        Param {
            name: "user_column",
            ty: T::Str,
            default: D::Str("username"),
            summary: "column with the owner username",
        },
    ],
};
