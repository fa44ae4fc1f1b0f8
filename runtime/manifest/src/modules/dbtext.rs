//! dbtext: database driver storing tables in plain text files.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "dbtext",
    summary: "database driver storing tables in plain text files",
    functions: &[],
    params: &[Param {
        name: "db_mode",
        ty: T::Int,
        default: D::Int(0),
        summary: "0: keep tables cached in memory; 1: reload a table when its file changes",
    }],
};
