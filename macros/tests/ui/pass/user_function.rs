// A user function whose Rust signature matches its declared kinds, called from the config.
mod fraud {
    use serc_runtime::script::args::Format;
    use serc_runtime::script::Ctx;

    pub fn fraud_check(ctx: &mut Ctx, user: &Format, limit: i64) -> i32 {
        if user.eval(ctx).len() as i64 > limit {
            -1
        } else {
            1
        }
    }
}

fn main() {
    let launch =
        serc_macros::include_cfg!("tests/ui/cfg/ok.cfg", functions = [crate::fraud::fraud_check(Format, Int),]);
    assert_eq!(launch.settings.cfg_name, "tests/ui/cfg/ok.cfg");
}
