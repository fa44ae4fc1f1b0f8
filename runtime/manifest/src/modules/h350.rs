//! h350: looks up SIP identities, credentials, call preferences and service levels in an H.350 directory.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "h350",
    summary: "looks up SIP identities, credentials, call preferences and service levels in an H.350 directory",
    functions: &[
        Function {
            name: "h350_auth_lookup",
            args: &[Arg { name: "auth_username", kind: K::Format }, Arg { name: "avps", kind: K::Opaque }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(1, "credentials found and stored"), (-1, "internal error"), (-2, "no matching entry")],
            implemented: false,
            reads: &[],
            summary: "store a user's digest user name and password in two AVPs (\"$avp(user)/$avp(pwd)\")",
        },
        Function {
            name: "h350_result_call_preferences",
            args: &[Arg { name: "avp_prefix", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(-1, "internal error"), (-2, "no call forwarding rule found (n > 0: n rules stored)")],
            implemented: false,
            reads: &[],
            summary: "turn the call-forwarding preferences of the last lookup into AVPs named with the prefix",
        },
        Function {
            name: "h350_result_service_level",
            args: &[Arg { name: "avp_prefix", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(-1, "internal error"), (-2, "no service level found (n > 0: n AVPs added)")],
            implemented: false,
            reads: &[],
            summary: "turn the service levels of the last lookup into AVPs named with the prefix",
        },
        Function {
            name: "h350_sipuri_lookup",
            args: &[Arg { name: "sip_uri", kind: K::Uri }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(-1, "internal error"), (-2, "no entry found (n > 0: n entries found)")],
            implemented: false,
            reads: &[],
            summary: "find the directory entry with the given SIP URI, for the h350_result_* functions",
        },
    ],
    params: &[
        Param { name: "base_dn", ty: T::Str, default: D::Str(""), summary: "LDAP base DN of the H.350 entries" },
        Param {
            name: "ldap_session",
            ty: T::Str,
            default: D::Str(""),
            summary: "LDAP session (from the ldap module's configuration) to use",
        },
        Param {
            name: "search_scope",
            ty: T::Str,
            default: D::Str("one"),
            summary: "LDAP search scope: \"one\", \"base\" or \"sub\"",
        },
    ],
};
