//! pua_xmpp: SIP/XMPP presence gateway.
use crate::{Arg, ArgKind as K, Function, Module, Routes as R};

pub static MODULE: Module = Module {
    name: "pua_xmpp",
    summary: "Translates presence between SIP and XMPP",
    functions: &[
        Function {
            name: "pua_xmpp_notify",
            args: &[],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "turn a SIP NOTIFY into XMPP presence",
        },
        Function {
            name: "pua_xmpp_req_winfo",
            args: &[Arg { name: "uri", kind: K::Uri }, Arg { name: "expires", kind: K::Format }],
            routes: R::REQUEST,
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "subscribe to watcher information for the given URI",
        },
    ],
    params: &[],
};
