//! alias_db: replaces the Request-URI with the canonical URI found for it in an alias table.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "alias_db",
    summary: "replaces the Request-URI with the canonical URI found for it in an alias table",
    functions: &[Function {
        name: "alias_db_lookup",
        args: &[Arg { name: "table", kind: K::Table }],
        routes: R::REQUEST.or(R::FAILURE),
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "look the Request-URI up in the alias table and rewrite it to the user found",
    }],
    params: &[
        Param {
            name: "alias_domain_column",
            ty: T::Str,
            default: D::Str("alias_domain"),
            summary: "column holding the alias domain",
        },
        Param {
            name: "alias_user_column",
            ty: T::Str,
            default: D::Str("alias_username"),
            summary: "column holding the alias user name",
        },
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openserro:openserro@localhost/openser"),
            summary: "database URL",
        },
        Param {
            name: "domain_column",
            ty: T::Str,
            default: D::Str("domain"),
            summary: "column holding the canonical domain",
        },
        Param {
            name: "domain_prefix",
            ty: T::Str,
            default: D::None,
            summary: "prefix stripped from the Request-URI host before the lookup",
        },
        Param {
            name: "use_domain",
            ty: T::Int,
            default: D::Int(0),
            summary: "match the alias domain as well as the user",
        },
        Param {
            name: "user_column",
            ty: T::Str,
            default: D::Str("username"),
            summary: "column holding the canonical user name",
        },
    ],
};
