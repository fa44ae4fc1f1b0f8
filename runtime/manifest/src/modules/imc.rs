//! imc: instant-messaging conference rooms over SIP MESSAGE, with commands in the message body.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "imc",
    summary: "instant-messaging conference rooms over SIP MESSAGE, with commands in the message body",
    functions: &[Function {
        name: "imc_manager",
        args: &[],
        routes: R::REQUEST,
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "handle a MESSAGE for a room: run the command it carries or relay it to the members",
    }],
    params: &[
        Param {
            name: "db_url",
            ty: T::Str,
            default: D::Str("mysql://openser:openserrw@localhost/openser"),
            summary: "database URL",
        },
        Param {
            name: "hash_size",
            ty: T::Int,
            default: D::Int(4),
            summary: "power of two giving the size of the room hash table",
        },
        Param {
            name: "imc_cmd_start_char",
            ty: T::Str,
            default: D::Str("#"),
            summary: "character that marks a message body as a command",
        },
        Param { name: "members_table", ty: T::Str, default: D::Str("imc_members"), summary: "table of room members" },
        Param { name: "rooms_table", ty: T::Str, default: D::Str("imc_rooms"), summary: "table of rooms" },
    ],
};
