// A user function's argument kind must be one of serc_manifest::ArgKind's variants.
mod fraud {
    use serc_runtime::script::args::Format;
    use serc_runtime::script::Ctx;

    pub fn fraud_check(_ctx: &mut Ctx, _user: &Format, _limit: i64) -> i32 {
        1
    }
}

fn main() {
    let _proxy =
        serc_macros::include_cfg!("tests/ui/cfg/ok.cfg", functions = [crate::fraud::fraud_check(Format, Integer)]);
}
