//! mi_fifo: management interface over a FIFO.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "mi_fifo",
    summary: "Serves MI commands (openserctl) over a named pipe",
    functions: &[],
    params: &[
        Param {
            name: "fifo_group",
            ty: T::Int,
            default: D::Int(-1),
            summary: "group id owning the FIFO (-1: unchanged)",
        },
        Param { name: "fifo_group", ty: T::Str, default: D::None, summary: "group name owning the FIFO" },
        Param { name: "fifo_mode", ty: T::Int, default: D::Int(432), summary: "permissions of the FIFO (0660)" },
        Param { name: "fifo_name", ty: T::Str, default: D::None, summary: "path of the FIFO file (required)" },
        Param {
            name: "fifo_user",
            ty: T::Int,
            default: D::Int(-1),
            summary: "user id owning the FIFO (-1: unchanged)",
        },
        Param { name: "fifo_user", ty: T::Str, default: D::None, summary: "user name owning the FIFO" },
        Param {
            name: "reply_dir",
            ty: T::Str,
            default: D::Str("/tmp/"),
            summary: "directory where reply FIFOs are created",
        },
        Param { name: "reply_indent", ty: T::Str, default: D::Str("\t"), summary: "indentation used in replies" },
    ],
};
