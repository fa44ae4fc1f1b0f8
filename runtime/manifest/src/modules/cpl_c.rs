//! cpl-c: runs users' Call Processing Language (RFC 3880) scripts stored in a database.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "cpl-c",
    summary: "runs users' Call Processing Language (RFC 3880) scripts stored in a database",
    functions: &[
        Function {
            name: "cpl_process_register",
            args: &[],
            routes: R::REQUEST,
            returns: &[
                (1, "nothing for CPL in this REGISTER; the script continues"),
                (0, "the REGISTER was answered (stored, removed, downloaded or error); the script stops"),
            ],
            implemented: false,
            reads: &[],
            summary: "store, remove or download the user's CPL script as a REGISTER asks, and answer it 200",
        },
        Function {
            name: "cpl_process_register_norpl",
            args: &[],
            routes: R::REQUEST,
            returns: &[
                (1, "handled, or nothing to do; no reply was sent and the script continues"),
                (0, "error; an error reply was sent and the script stops"),
            ],
            implemented: false,
            reads: &[],
            summary: "store, remove or download the user's CPL script as a REGISTER asks, without answering it",
        },
        Function {
            name: "cpl_run_script",
            args: &[Arg { name: "direction", kind: K::Opaque }, Arg { name: "mode", kind: K::Opaque }],
            routes: R::REQUEST,
            returns: &[
                (1, "no script or the script let the call through; the script continues"),
                (0, "the CPL script took over the request; the script stops"),
                (-1, "error"),
            ],
            implemented: false,
            reads: &[],
            summary: "run the user's incoming or outgoing CPL script (mode is_stateless|is_stateful|force_stateful)",
        },
    ],
    params: &[
        Param {
            name: "case_sensitive",
            ty: T::Int,
            default: D::Int(0),
            summary: "compare user names case-sensitively",
        },
        Param {
            name: "cpl_bin_column",
            ty: T::Str,
            default: D::Str("cpl_bin"),
            summary: "column holding the compiled script",
        },
        Param {
            name: "cpl_dtd_file",
            ty: T::Str,
            default: D::None,
            summary: "DTD file used to validate uploaded scripts (mandatory)",
        },
        Param { name: "cpl_table", ty: T::Str, default: D::None, summary: "table holding the scripts (mandatory)" },
        Param {
            name: "cpl_xml_column",
            ty: T::Str,
            default: D::Str("cpl_xml"),
            summary: "column holding the script source",
        },
        Param { name: "db_url", ty: T::Str, default: D::None, summary: "database URL (mandatory)" },
        Param { name: "domain_column", ty: T::Str, default: D::Str("domain"), summary: "column holding the domain" },
        Param {
            name: "log_dir",
            ty: T::Str,
            default: D::None,
            summary: "directory for the logs scripts write; logging is off without it",
        },
        Param {
            name: "lookup_append_branches",
            ty: T::Int,
            default: D::Int(0),
            summary: "let the lookup node add a branch per contact",
        },
        Param { name: "lookup_domain", ty: T::Str, default: D::None, summary: "usrloc table used by the lookup node" },
        Param {
            name: "proxy_recurse",
            ty: T::Int,
            default: D::Int(0),
            summary: "how many redirects a proxy node may follow",
        },
        Param {
            name: "proxy_route",
            ty: T::Int,
            default: D::Int(0),
            summary: "script route run before a proxy node forwards (0: none)",
        },
        Param {
            name: "realm_prefix",
            ty: T::Str,
            default: D::None,
            summary: "domain prefix ignored when matching the user's domain",
        },
        Param {
            name: "timer_avp",
            ty: T::Str,
            default: D::None,
            summary: "AVP that carries the proxy node's timeout to tm",
        },
        Param {
            name: "use_domain",
            ty: T::Int,
            default: D::Int(0),
            summary: "match the domain as well as the user name",
        },
        Param {
            name: "username_column",
            ty: T::Str,
            default: D::Str("username"),
            summary: "column holding the user name",
        },
    ],
};
