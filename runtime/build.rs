//! Generates the signature checks of the module functions: for every function
//! form a manifest marks `implemented`, a line
//! `const _: fn(&mut Ctx<'_>, &Format) -> i32 = crate::modules::xlog::xlog_1;`
//! so that a manifest and its implementation can never disagree (a mismatch
//! does not compile). The code generator emits calls through the same names
//! and types (`serc_manifest::rust_fn_path`, `ArgKind::rust_type`).

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=manifest/src");
    let mut out = String::new();
    for module in serc_manifest::all() {
        for f in module.functions.iter().filter(|f| f.implemented) {
            let path = serc_manifest::rust_fn_path(module, f).replacen("serc_runtime::", "crate::", 1);
            let args: String = f.args.iter().map(|a| format!(", {}", a.kind.rust_type())).collect();
            let _ = writeln!(out, "const _: fn(&mut Ctx<'_>{args}) -> i32 = {path};");
        }
    }
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("signatures.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
