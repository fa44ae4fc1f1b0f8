//! A log line: what an `xlog` or acc line costs to format and hand to the
//! writer, through `tracing_subscriber`'s default format and through serc's
//! [`LineFormat`] (what a proxy's stderr gets), the writer a sink.
//!
//! - `log/line/default`, `log/line/serc`: the default config's
//!   `xlog("new branch at $ru\n")` line (ERROR, target `script`);
//! - `log/acc/default`, `log/acc/serc`: an acc line of the same config
//!   (INFO, target `acc`, 170 bytes).
//!
//! `cargo bench -p serc-runtime --bench log`

use std::io;

use criterion::{criterion_group, criterion_main, Criterion};
use serc_runtime::log::LineFormat;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

const XLOG: &str = "new branch at sip:service@127.0.0.1:5070";
const ACC: &str = "ACC: transaction answered: timestamp=1795834080;method=INVITE;from_tag=29512SIPpTag001;\
                   to_tag=29513SIPpTag0112;call_id=112-29512@127.0.0.1;code=200;reason=OK";

fn dispatch(serc: bool) -> Dispatch {
    let registry = tracing_subscriber::registry();
    if serc {
        Dispatch::new(registry.with(tracing_subscriber::fmt::layer().event_format(LineFormat).with_writer(io::sink)))
    } else {
        Dispatch::new(registry.with(tracing_subscriber::fmt::layer().with_writer(io::sink)))
    }
}

fn lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("log");
    for (format, serc) in [("default", false), ("serc", true)] {
        let dispatch = dispatch(serc);
        tracing::dispatcher::with_default(&dispatch, || {
            group.bench_function(format!("line/{format}"), |b| {
                b.iter(|| tracing::error!(target: "script", "{}", std::hint::black_box(XLOG)))
            });
            group.bench_function(format!("acc/{format}"), |b| {
                b.iter(|| tracing::info!(target: "acc", "{}", std::hint::black_box(ACC)))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, lines);
criterion_main!(benches);
