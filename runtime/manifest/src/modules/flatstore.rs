//! flatstore: write-only database driver appending rows to flat files (fast accounting).
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "flatstore",
    summary: "write-only database driver appending rows to flat files, for fast accounting",
    functions: &[],
    params: &[Param {
        name: "flush",
        ty: T::Int,
        default: D::Int(1),
        summary: "flush the file after every written row",
    }],
};
