//! `serc-embed-example [LISTEN]`: runs the proxy of `openser.cfg` on
//! `LISTEN` (`[udp:|tcp:]HOST[:PORT]`, default `127.0.0.1:5060`, UDP and TCP)
//! until Ctrl-C.

use std::process::ExitCode;

use serc_runtime::launch::ListenSpec;

fn main() -> ExitCode {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:5060".to_string());
    let listen: ListenSpec = match listen.parse() {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("serc-embed-example: {e}");
            return ExitCode::from(2);
        }
    };
    // The program owns the runtime: the proxy's workers run on its threads,
    // beside whatever else the program does.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serc-embed-example: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let running = match serc_embed_example::proxy().listen(listen).start().await {
            Ok(running) => running,
            Err(e) => {
                eprintln!("serc-embed-example: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        for (transport, addr) in running.local_addrs() {
            println!("listening on {}:{addr}", transport.name());
        }
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("serc-embed-example: cannot wait for Ctrl-C: {e}");
        }
        println!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}
