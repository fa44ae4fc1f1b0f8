//! pua_mi: PUBLISH requests sent from the management interface (no script functions or parameters).
use crate::Module;

pub static MODULE: Module = Module {
    name: "pua_mi",
    summary: "PUBLISH requests sent from the management interface (no script functions or parameters)",
    functions: &[],
    params: &[],
};
