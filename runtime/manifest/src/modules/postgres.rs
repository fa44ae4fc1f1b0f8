//! postgres: the PostgreSQL database driver (no script functions or parameters).
use crate::Module;

pub static MODULE: Module = Module {
    name: "postgres",
    summary: "the PostgreSQL database driver (no script functions or parameters)",
    functions: &[],
    params: &[],
};
