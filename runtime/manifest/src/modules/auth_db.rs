//! auth_db: digest authentication against credentials stored in a database table.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "auth_db",
    summary: "digest authentication against credentials stored in a database table",
    functions: &[
        Function {
            name: "proxy_authorize",
            args: &[Arg { name: "realm", kind: K::Format }, Arg { name: "table", kind: K::Table }],
            routes: R::REQUEST,
            returns: &[
                (1, "authorized"),
                (0, "an error reply (400/500) was sent; the script stops"),
                (-1, "user unknown"),
                (-2, "invalid password (documented; 1.3's code reports a wrong digest response as -5)"),
                (-3, "stale, replayed or foreign nonce (with the right response the next challenge says stale=true)"),
                (-4, "no credentials for this realm in the request"),
                (-5, "generic error or wrong digest response; no reply was sent"),
            ],
            implemented: true,
            reads: &[],
            summary: "check Proxy-Authorization credentials against the given subscriber table",
        },
        Function {
            name: "www_authorize",
            args: &[Arg { name: "realm", kind: K::Format }, Arg { name: "table", kind: K::Table }],
            routes: R::REQUEST,
            returns: &[
                (1, "authorized"),
                (0, "an error reply (400/500) was sent; the script stops"),
                (-1, "user unknown"),
                (-2, "invalid password (documented; 1.3's code reports a wrong digest response as -5)"),
                (-3, "stale, replayed or foreign nonce (with the right response the next challenge says stale=true)"),
                (-4, "no credentials for this realm in the request"),
                (-5, "generic error or wrong digest response; no reply was sent"),
            ],
            implemented: true,
            reads: &[],
            summary: "check Authorization credentials against the given subscriber table",
        },
    ],
    params: &[
        Param {
            name: "calculate_ha1",
            ty: T::Int,
            default: D::Int(0),
            summary: "the password column holds plain passwords; compute HA1 on the fly",
        },
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openserro:openserro@localhost/openser"),
            summary: "database URL",
        },
        Param { name: "domain_column", ty: T::Str, default: D::Str("domain"), summary: "column holding the domain" },
        Param {
            name: "load_credentials",
            ty: T::Str,
            default: D::Str("rpid"),
            summary: "columns loaded into AVPs after a successful authorization",
        },
        Param {
            name: "password_column",
            ty: T::Str,
            default: D::Str("ha1"),
            summary: "column holding HA1 (or the plain password)",
        },
        Param {
            name: "password_column_2",
            ty: T::Str,
            default: D::Str("ha1b"),
            summary: "column holding HA1 computed with user@domain as user name",
        },
        Param {
            name: "use_domain",
            ty: T::Int,
            default: D::Int(0),
            summary: "match the domain as well as the user name",
        },
        Param { name: "user_column", ty: T::Str, default: D::Str("username"), summary: "column holding the user name" },
    ],
};
