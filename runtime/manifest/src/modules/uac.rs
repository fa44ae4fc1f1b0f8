//! uac: UAC-side functions.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "uac",
    summary: "From header rewriting (with restore) and digest authentication towards upstream servers",
    functions: &[
        Function {
            name: "uac_auth",
            args: &[],
            routes: R::FAILURE,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "answer a 401/407 by adding credentials from the configured ones",
        },
        Function {
            name: "uac_replace_from",
            args: &[Arg { name: "uri", kind: K::Uri }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "replace the From URI (restored in replies and later requests)",
        },
        Function {
            name: "uac_replace_from",
            args: &[Arg { name: "display", kind: K::Format }, Arg { name: "uri", kind: K::Uri }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "replace the From display name and URI; an empty display removes it",
        },
        Function {
            name: "uac_restore_from",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "restore the original From (manual restore mode)",
        },
    ],
    params: &[
        Param {
            name: "auth_password_avp",
            ty: T::Str,
            default: D::None,
            summary: "AVP with the password for uac_auth",
        },
        Param { name: "auth_realm_avp", ty: T::Str, default: D::None, summary: "AVP with the realm for uac_auth" },
        Param {
            name: "auth_username_avp",
            ty: T::Str,
            default: D::None,
            summary: "AVP with the username for uac_auth",
        },
        Param {
            name: "credential",
            ty: T::Str,
            default: D::None,
            summary: "username:realm:password used by uac_auth (repeatable)",
        },
        Param { name: "from_passwd", ty: T::Str, default: D::Str(""), summary: "key used to encode the original From" },
        Param {
            name: "from_restore_mode",
            ty: T::Str,
            default: D::None,
            summary: "none, manual or auto (unset: auto)",
        },
        Param {
            name: "rr_store_param",
            ty: T::Str,
            default: D::Str("vsf"),
            summary: "Record-Route parameter storing the original From",
        },
    ],
};
