//! UI tests: what `include_cfg!` reports, checked against `ui/*.stderr` by
//! trybuild. `TRYBUILD=overwrite cargo test -p serc-macros --test ui` rewrites
//! the expected output; review every change by hand.
//!
//! trybuild builds the cases as a crate of its own under
//! `<target>/tests/trybuild/serc-macros/`, which is then their
//! `CARGO_MANIFEST_DIR`: the configs they name (`tests/ui/cfg/*.cfg`) are
//! copied there first, so the paths read the same as from this crate.

use std::fs;
use std::path::Path;

#[test]
fn ui() {
    stage_configs();
    // trybuild's crate is a workspace of its own, so the workspace's profile
    // does not reach it: without this its two pass cases and their copy of
    // the runtime carried full debug info (1.7 GB). The variable reaches the
    // cargo that trybuild runs; this test is alone in its binary.
    std::env::set_var("CARGO_PROFILE_DEV_DEBUG", "false");
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

fn stage_configs() {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`; trybuild's project is `<target>/tests/trybuild/<crate>`.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR is <target>/tmp");
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/cfg");
    let to = target.join("tests/trybuild").join(env!("CARGO_PKG_NAME")).join("tests/ui/cfg");
    fs::create_dir_all(&to).expect("the trybuild project directory can be made");
    for entry in fs::read_dir(&from).expect("tests/ui/cfg exists") {
        let path = entry.expect("tests/ui/cfg is readable").path();
        if path.extension().is_some_and(|e| e == "cfg") {
            let name = path.file_name().expect("a file name");
            fs::copy(&path, to.join(name)).expect("the config can be copied");
        }
    }
}
