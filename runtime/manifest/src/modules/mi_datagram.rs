//! mi_datagram: management interface over datagram sockets.
use crate::{Default as D, Module, Param, ParamType as T};

pub static MODULE: Module = Module {
    name: "mi_datagram",
    summary: "Serves MI commands over a UDP or unix datagram socket",
    functions: &[],
    params: &[
        Param { name: "children_count", ty: T::Int, default: D::Int(1), summary: "processes serving the socket" },
        Param { name: "reply_indent", ty: T::Str, default: D::Str("\t"), summary: "indentation used in replies" },
        Param {
            name: "socket_name",
            ty: T::Str,
            default: D::None,
            summary: "socket to listen on: a unix path or udp:ip:port",
        },
        Param {
            name: "socket_timeout",
            ty: T::Int,
            default: D::Int(2000),
            summary: "send timeout for replies, in milliseconds",
        },
        Param {
            name: "unix_socket_group",
            ty: T::Int,
            default: D::Int(-1),
            summary: "group id owning the unix socket (-1: unchanged)",
        },
        Param { name: "unix_socket_group", ty: T::Str, default: D::None, summary: "group name owning the unix socket" },
        Param {
            name: "unix_socket_mode",
            ty: T::Int,
            default: D::Int(432),
            summary: "permissions of the unix socket (0660)",
        },
        Param {
            name: "unix_socket_user",
            ty: T::Int,
            default: D::Int(-1),
            summary: "user id owning the unix socket (-1: unchanged)",
        },
        Param { name: "unix_socket_user", ty: T::Str, default: D::None, summary: "user name owning the unix socket" },
    ],
};
