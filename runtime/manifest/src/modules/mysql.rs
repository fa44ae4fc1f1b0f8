//! mysql: MySQL database driver.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "mysql",
    summary: "Database driver for mysql:// URLs",
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
    ],
};
