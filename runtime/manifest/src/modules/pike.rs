//! pike: flood detection.
use crate::{Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "pike",
    summary: "Counts requests per source IP and flags sources above a rate",
    functions: &[Function {
        name: "pike_check_req",
        args: &[],
        routes: R::REQUEST,
        returns: &[],
        implemented: false,
        reads: &[],
        summary: "false if the source IP exceeds the allowed request rate (internal errors count as true)",
    }],
    params: &[
        Param { name: "remove_latency", ty: T::Int, default: D::Int(120), summary: "seconds an idle IP is remembered" },
        Param {
            name: "reqs_density_per_unit",
            ty: T::Int,
            default: D::Int(30),
            summary: "requests allowed per sampling unit",
        },
        Param {
            name: "sampling_time_unit",
            ty: T::Int,
            default: D::Int(2),
            summary: "length of a sampling unit in seconds",
        },
    ],
};
