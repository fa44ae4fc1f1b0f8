//! perlvdb: a database driver whose tables are Perl objects (no script functions or parameters).
use crate::Module;

pub static MODULE: Module = Module {
    name: "perlvdb",
    summary: "a database driver whose tables are Perl objects (no script functions or parameters)",
    functions: &[],
    params: &[],
};
