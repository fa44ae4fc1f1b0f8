// A dialect serc does not know.
fn main() {
    let _proxy = serc_macros::include_cfg!("tests/ui/cfg/ok.cfg", dialect = "asterisk");
}
