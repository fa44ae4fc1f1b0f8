//! presence_mwi: message-waiting (MWI) events for the presence server (no script functions or parameters).
use crate::Module;

pub static MODULE: Module = Module {
    name: "presence_mwi",
    summary: "message-waiting (MWI) events for the presence server (no script functions or parameters)",
    functions: &[],
    params: &[],
};
