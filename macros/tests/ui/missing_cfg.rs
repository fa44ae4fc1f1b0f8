// The config is not there (paths are relative to the crate's Cargo.toml).
fn main() {
    let _proxy = serc_macros::include_cfg!("tests/ui/cfg/no_such.cfg");
}
