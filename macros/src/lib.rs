//! `include_cfg!`: compiles an `openser.cfg` into the user's crate. A thin shell
//! over the `serc` library; the macro itself arrives with code generation
//! (issue 5, see ARCHITECTURE.md).
