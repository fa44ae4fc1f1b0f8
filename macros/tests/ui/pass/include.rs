// A config that includes another file compiles; the value is a Launch to configure.
fn main() {
    let launch = serc_macros::include_cfg!("tests/ui/cfg/with_include.cfg", dialect = "kamailio").workers(1);
    assert_eq!(launch.settings.cfg_name, "tests/ui/cfg/with_include.cfg");
    assert_eq!(launch.settings.cfg_hash.len(), 16);
    assert_eq!(launch.worker_count(), 1);
}
