// The kinds given for a user function disagree with its Rust signature
// (`Str` is a `&str`, the function takes a `&Format`).
mod fraud {
    use serc_runtime::script::args::Format;
    use serc_runtime::script::Ctx;

    pub fn fraud_check(_ctx: &mut Ctx, _user: &Format, _limit: i64) -> i32 {
        1
    }
}

fn main() {
    let _proxy = serc_macros::include_cfg!("tests/ui/cfg/ok.cfg", functions = [crate::fraud::fraud_check(Str, Int)]);
}
