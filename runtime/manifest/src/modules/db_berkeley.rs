//! db_berkeley: database driver storing tables in Berkeley DB files.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "db_berkeley",
    summary: "database driver storing tables in Berkeley DB files",
    functions: &[],
    params: &[
        Param {
            name: "auto_reload",
            ty: T::Int,
            default: D::Int(0),
            summary: "reopen a table on query when its file was replaced",
        },
        Param {
            name: "journal_roll_interval",
            ty: T::Int,
            default: D::Int(0),
            summary: "seconds after which a new journal file is started (0: never)",
        },
        Param {
            name: "log_enable",
            ty: T::Int,
            default: D::Int(0),
            summary: "journal inserts, updates and deletes so tables can be recovered",
        },
    ],
};
