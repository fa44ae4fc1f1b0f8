//! pdt: prefix-to-domain translation.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "pdt",
    summary: "Rewrites the R-URI domain from a prefix of its user part, using a cached database table",
    functions: &[
        Function {
            name: "prefix2domain",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "translate the R-URI, stripping the prefix, regardless of the source domain",
        },
        Function {
            name: "prefix2domain",
            args: &[Arg { name: "rewrite_mode", kind: K::Int }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "translate; rewrite mode 0 strips both prefixes, 1 only the leading prefix, 2 keeps the user",
        },
        Function {
            name: "prefix2domain",
            args: &[Arg { name: "rewrite_mode", kind: K::Int }, Arg { name: "multidomain_mode", kind: K::Int }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "translate; multidomain 0 ignores the From domain, 1 uses it, 2 uses it then falls back to '*'",
        },
    ],
    params: &[
        Param {
            name: "char_list",
            ty: T::Str,
            default: D::Str("0123456789"),
            summary: "characters allowed in prefixes",
        },
        Param { name: "db_table", ty: T::Str, default: D::Str("pdt"), summary: "table of prefixes" },
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openser:openserrw@localhost/openser"),
            summary: "database URL",
        },
        Param {
            name: "domain_column",
            ty: T::Str,
            default: D::Str("domain"),
            summary: "column with the target domain",
        },
        Param { name: "hsize_2pow", ty: T::Int, default: D::Int(4), summary: "log2 of the hash table size" },
        Param {
            name: "prefix",
            ty: T::Str,
            default: D::Str(""),
            summary: "leading prefix required before the translated prefix",
        },
        Param { name: "prefix_column", ty: T::Str, default: D::Str("prefix"), summary: "column with the prefix" },
        Param {
            name: "sdomain_column",
            ty: T::Str,
            default: D::Str("sdomain"),
            summary: "column with the source domain",
        },
    ],
};
