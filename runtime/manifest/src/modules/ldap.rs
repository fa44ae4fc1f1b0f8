//! ldap: LDAP searches from the script, results copied into AVPs; also an API for other modules.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "ldap",
    summary: "LDAP searches from the script, results copied into AVPs; also an API for other modules",
    functions: &[
        Function {
            name: "ldap_filter_url_encode",
            args: &[Arg { name: "filter", kind: K::Format }, Arg { name: "avp", kind: K::Avp }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(1, "encoded value stored"), (-1, "internal error")],
            implemented: false,
            reads: &[],
            summary: "escape a string for an LDAP filter and URL-encode it into the AVP",
        },
        Function {
            name: "ldap_result",
            args: &[Arg { name: "attr_to_avp", kind: K::Opaque }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(-1, "the attribute is not in the result (n > 0: n values stored)"), (-2, "internal error")],
            implemented: false,
            reads: &[],
            summary:
                "copy an attribute's values from the current search result into an AVP (\"attr/$avp(x)[/int|str]\")",
        },
        Function {
            name: "ldap_result",
            args: &[Arg { name: "attr_to_avp", kind: K::Opaque }, Arg { name: "subst", kind: K::Subst }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(-1, "the attribute is not in the result (n > 0: n values stored)"), (-2, "internal error")],
            implemented: false,
            reads: &[],
            summary: "copy an attribute's values into an AVP after applying a substitution",
        },
        Function {
            name: "ldap_result_check",
            args: &[Arg { name: "attr_match", kind: K::Opaque }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[
                (1, "a value matches"),
                (-1, "the attribute is missing or no value matches"),
                (-2, "internal error"),
            ],
            implemented: false,
            reads: &[],
            summary: "test whether an attribute of the current result equals a string (\"attr/string with pvars\")",
        },
        Function {
            name: "ldap_result_check",
            args: &[Arg { name: "attr_match", kind: K::Opaque }, Arg { name: "subst", kind: K::Subst }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[
                (1, "a value matches"),
                (-1, "the attribute is missing or no value matches"),
                (-2, "internal error"),
            ],
            implemented: false,
            reads: &[],
            summary: "test whether an attribute of the current result, after a substitution, equals a string",
        },
        Function {
            name: "ldap_result_next",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(1, "moved to the next entry"), (-1, "no more entries"), (-2, "internal error")],
            implemented: false,
            reads: &[],
            summary: "move to the next entry of the search result",
        },
        Function {
            name: "ldap_search",
            args: &[Arg { name: "ldap_url", kind: K::Format }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(-1, "no entry found (n > 0: n entries found)"), (-2, "LDAP or internal error")],
            implemented: false,
            reads: &[],
            summary: "run the search an LDAP URL (ldap://session/base?attrs?scope?filter) describes",
        },
    ],
    params: &[Param {
        name: "config_file",
        ty: T::Str,
        default: D::Str("/usr/local/etc/openser/ldap.cfg"),
        summary: "file defining the LDAP sessions",
    }],
};
