// The config calls a user function with one argument too few.
mod fraud {
    use serc_runtime::script::args::Format;
    use serc_runtime::script::Ctx;

    pub fn fraud_check(_ctx: &mut Ctx, _user: &Format, _limit: i64) -> i32 {
        1
    }
}

fn main() {
    let _proxy = serc_macros::include_cfg!(
        "tests/ui/cfg/user_function.cfg",
        functions = [crate::fraud::fraud_check(Format, Int)]
    );
}
