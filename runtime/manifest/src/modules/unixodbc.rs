//! unixodbc: unixODBC database driver.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "unixodbc",
    summary: "Database driver for unixodbc:// URLs",
    functions: &[],
    params: &[
        Param {
            name: "auto_reconnect",
            ty: T::Int,
            default: D::Int(1),
            summary: "reconnect when the connection is lost",
        },
        Param {
            name: "ping_interval",
            ty: T::Int,
            default: D::Int(300),
            summary: "seconds of idleness after which the connection is pinged",
        },
        Param {
            name: "use_escape_common",
            ty: T::Int,
            default: D::Int(0),
            summary: "escape strings with the common escaping routine",
        },
    ],
};
