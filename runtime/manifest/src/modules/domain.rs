//! domain: tells whether a domain is served locally, from a database table (optionally cached).
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "domain",
    summary: "tells whether a domain is served locally, from a database table (optionally cached)",
    functions: &[
        Function {
            name: "is_domain_local",
            args: &[Arg { name: "domain", kind: K::PVar }],
            routes: R::REQUEST.or(R::FAILURE).or(R::BRANCH),
            returns: &[(1, "the domain is local"), (-1, "not local, or an error")],
            implemented: true,
            reads: &[],
            summary: "test whether the domain held in the pseudo-variable is local",
        },
        Function {
            name: "is_from_local",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::BRANCH),
            returns: &[
                (1, "the From host is local"),
                (-1, "not local, or a database error"),
                (-2, "the From URI could not be parsed"),
            ],
            implemented: true,
            reads: &[],
            summary: "test whether the From URI's host is a local domain",
        },
        Function {
            name: "is_uri_host_local",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::BRANCH),
            returns: &[(1, "the Request-URI host is local"), (-1, "not local, or an error")],
            implemented: true,
            reads: &[],
            summary: "test whether the Request-URI's host is a local domain",
        },
    ],
    params: &[
        Param {
            name: "db_mode",
            ty: T::Int,
            default: D::Int(0),
            summary: "0: query the database each time; 1: cache the table in memory",
        },
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openserro:openserro@localhost/openser"),
            summary: "database URL",
        },
        Param { name: "domain_col", ty: T::Str, default: D::Str("domain"), summary: "column holding the domain" },
        Param { name: "domain_table", ty: T::Str, default: D::Str("domain"), summary: "table of local domains" },
    ],
};
