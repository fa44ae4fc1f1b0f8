//! mi_xmlrpc: management interface over XML-RPC.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "mi_xmlrpc",
    summary: "Serves MI commands over XML-RPC on an embedded HTTP server",
    functions: &[],
    params: &[
        Param { name: "buffer_size", ty: T::Int, default: D::Int(8192), summary: "size of the reply buffer" },
        Param { name: "log_file", ty: T::Str, default: D::None, summary: "file the embedded HTTP server logs to" },
        Param { name: "port", ty: T::Int, default: D::Int(8080), summary: "TCP port to listen on" },
        Param {
            name: "reply_option",
            ty: T::Int,
            default: D::Int(0),
            summary: "0: reply as one string, 1: reply as an array of lines",
        },
    ],
};
