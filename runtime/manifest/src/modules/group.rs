//! group: group membership checks against database tables (plain and regular-expression groups).
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "group",
    summary: "group membership checks against database tables (plain and regular-expression groups)",
    functions: &[
        Function {
            name: "get_user_group",
            args: &[Arg { name: "uri_source", kind: K::Opaque }, Arg { name: "avp", kind: K::Avp }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[(-1, "no group matched, or an error (n > 0: n group ids were stored)")],
            implemented: false,
            reads: &[],
            summary: "store in the AVP the ids of the regular-expression groups the user belongs to",
        },
        Function {
            name: "is_user_in",
            args: &[Arg { name: "uri_source", kind: K::Opaque }, Arg { name: "group", kind: K::Str }],
            routes: R::REQUEST.or(R::FAILURE),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "test whether the Request-URI/To/From/Credentials (or an AVP's) user is in the group",
        },
    ],
    params: &[
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openserro:openserro@localhost/openser"),
            summary: "database URL",
        },
        Param { name: "domain_column", ty: T::Str, default: D::Str("domain"), summary: "column holding the domain" },
        Param { name: "group_column", ty: T::Str, default: D::Str("grp"), summary: "column holding the group name" },
        Param {
            name: "multiple_gid",
            ty: T::Int,
            default: D::Int(1),
            summary: "get_user_group returns every matching group, not only the first",
        },
        Param {
            name: "re_exp_column",
            ty: T::Str,
            default: D::Str("reg_exp"),
            summary: "column holding the regular expression",
        },
        Param {
            name: "re_gid_column",
            ty: T::Str,
            default: D::Str("group_id"),
            summary: "column holding the group id of a regular expression",
        },
        Param {
            name: "re_table",
            ty: T::Str,
            default: D::None,
            summary: "table of regular-expression groups; get_user_group needs it",
        },
        Param { name: "table", ty: T::Str, default: D::Str("grp"), summary: "table of group memberships" },
        Param {
            name: "use_domain",
            ty: T::Int,
            default: D::Int(0),
            summary: "match the domain as well as the user name",
        },
        Param { name: "user_column", ty: T::Str, default: D::Str("username"), summary: "column holding the user name" },
    ],
};
