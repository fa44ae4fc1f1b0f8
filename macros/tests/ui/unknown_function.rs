// A call of a function no loaded module has.
fn main() {
    let _proxy = serc_macros::include_cfg!("tests/ui/cfg/unknown_function.cfg");
}
