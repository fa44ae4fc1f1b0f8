// Syntax errors in the config: every one is reported, with its line and column.
fn main() {
    let _proxy = serc_macros::include_cfg!("tests/ui/cfg/syntax_error.cfg");
}
