//! Prints the AST dump of a config (a development aid): `cargo run -p serc --example dump FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE [DIALECT]");
    let opts = serc::syntax::ParseOptions {
        dialect: std::env::args().nth(2).map(|d| d.parse().expect("dialect")),
        ..Default::default()
    };
    let parse = serc::syntax::parse_file(path.as_ref(), &opts).expect("readable file");
    print!("{}", serc::syntax::dump::dump(&parse.config, &parse.sources));
    for d in &parse.diagnostics {
        eprintln!("{}", serc::diag::render::plain(d, &parse.sources));
    }
}
