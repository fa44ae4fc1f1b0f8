//! cfgutils: script helpers: random true/false with a settable probability, and sleeping.
use crate::{Arg, ArgKind as K, Default as D, Function, Module, Param, ParamType as T, Routes as R};

pub static MODULE: Module = Module {
    name: "cfgutils",
    summary: "script helpers: random true/false with a settable probability, and sleeping",
    functions: &[
        Function {
            name: "rand_event",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "return true with the current probability",
        },
        Function {
            name: "rand_get_prob",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[(0, "the probability is 0 (any other value: the probability in percent); 0 ends the script")],
            implemented: false,
            reads: &[],
            summary: "return the current probability (percent) as the return code",
        },
        Function {
            name: "rand_reset_prob",
            args: &[],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "reset the probability to initial_probability",
        },
        Function {
            name: "rand_set_prob",
            args: &[Arg { name: "percent", kind: K::Int }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "set the probability used by rand_event, in percent (0-100)",
        },
        Function {
            name: "sleep",
            args: &[Arg { name: "seconds", kind: K::Int }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "block the worker for the given number of seconds",
        },
        Function {
            name: "usleep",
            args: &[Arg { name: "microseconds", kind: K::Int }],
            routes: R::REQUEST.or(R::FAILURE).or(R::ONREPLY).or(R::BRANCH),
            returns: &[],
            implemented: false,
            reads: &[],
            summary: "block the worker for the given number of microseconds",
        },
    ],
    params: &[Param {
        name: "initial_probability",
        ty: T::Int,
        default: D::Int(10),
        summary: "starting probability of rand_event, in percent",
    }],
};
