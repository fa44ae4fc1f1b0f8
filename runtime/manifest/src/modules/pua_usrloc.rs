//! pua_usrloc: presence from registrations.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "pua_usrloc",
    summary: "Publishes presence state when contacts register or expire",
    functions: &[Function {
        name: "pua_set_publish",
        args: &[],
        routes: R::REQUEST,
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "mark the REGISTER so its contacts are published",
    }],
    params: &[
        Param {
            name: "default_domain",
            ty: T::Str,
            default: D::None,
            summary: "domain added to URIs without one (required)",
        },
        Param {
            name: "entity_prefix",
            ty: T::Str,
            default: D::None,
            summary: "prefix of the entity in published documents",
        },
    ],
};
