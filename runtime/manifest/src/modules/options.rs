//! options: answers OPTIONS requests for the server.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "options",
    summary: "Replies to OPTIONS requests addressed to the server itself",
    functions: &[Function {
        name: "options_reply",
        args: &[],
        routes: R::REQUEST,
        returns: &[
            (0, "a reply (200, or 500 on failure) was sent; the script stops"),
            (-1, "not an OPTIONS request, the R-URI has a user, or the reply could not be sent"),
        ],
        implemented: false,
        reads: &[],
        summary: "answer an OPTIONS request with no R-URI user by a 200 with Accept/Supported headers",
    }],
    params: &[
        Param { name: "accept", ty: T::Str, default: D::None, summary: "Accept header content (unset: */*)" },
        Param {
            name: "accept_encoding",
            ty: T::Str,
            default: D::None,
            summary: "Accept-Encoding header content (unset: empty)",
        },
        Param {
            name: "accept_language",
            ty: T::Str,
            default: D::None,
            summary: "Accept-Language header content (unset: en)",
        },
        Param { name: "support", ty: T::Str, default: D::None, summary: "Supported header content (unset: empty)" },
    ],
};
