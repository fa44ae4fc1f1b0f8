//! OpenSER 1.3's core MI commands (`mi/mi_core.c`) and the statistics
//! commands (`statistics.c`), with the replies 1.3 writes:
//!
//! - `uptime`: `Now:: …`, `Up since:: …` (both as C's `ctime` writes a local
//!   time, without its line feed) and `Up time:: N [sec]`;
//! - `version`: `Server:: serc VERSION (ARCH/OS)` (1.3: its `Server:` header);
//! - `pwd`: `WD:: DIR`; `arg`: the command line, one bare value per word;
//! - `which`: the command names, in registration order;
//! - `ps`: `Process::  ID=N PID=P Type=…` per process. serc is one process
//!   (its workers are tasks), so every line has the same PID: the main one
//!   (`attendant`, as 1.3 names it) and what registered itself with
//!   [`Mi::add_process`] (the SIP listeners, the MI transports);
//! - `kill`: stops the proxy — the hook set by [`Mi::set_kill_hook`], else
//!   SIGTERM to the process, which the built proxy handles as a clean
//!   shutdown. 1.3 answered `500 command 'kill' failed` (its handler returns
//!   no reply); serc answers `200 OK`, since it did what was asked;
//! - `debug [N]`: `DEBUG:: N`, the log level, set to N when given (a
//!   non-number is `400 Bad parameter`); the level reaches the logger
//!   through [`Mi::set_debug_hook`];
//! - `get_statistics all|GROUP:|NAME …`: one bare value `group:name = value`
//!   per statistic; none found is `404 Statistics Not Found`, no argument `400
//!   Too few or too many arguments`. A NAME is a bare name as in 1.3
//!   (`rcv_requests`); serc also takes `GROUP:NAME` (`core:rcv_requests`),
//!   the form the replies print;
//! - `reset_statistics NAME …`: `200 OK` when one of the names is found (a
//!   statistic that cannot be reset is found and left alone, as in 1.3), else
//!   `404 Statistics Not Found`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Arity, Mi, MiNode, MiReply};

/// Registers the core and statistics commands on `mi` (in 1.3's order).
pub fn register(mi: &Mi) {
    let weak = std::sync::Arc::downgrade(&mi.0);
    let handle = move || weak.upgrade().map(Mi);

    let h = handle.clone();
    mi.register("uptime", Arity::NoInput, move |_| match h() {
        Some(mi) => uptime(mi.started(), SystemTime::now()),
        None => MiReply::internal_error(),
    });
    mi.register("version", Arity::NoInput, |_| MiReply::ok().node(MiNode::new("Server", version())));
    mi.register("pwd", Arity::NoInput, |_| match std::env::current_dir() {
        Ok(dir) => MiReply::ok().node(MiNode::new("WD", dir.to_string_lossy())),
        Err(e) => {
            tracing::error!("MI pwd: the working directory is unknown: {e}");
            MiReply::internal_error()
        }
    });
    mi.register("arg", Arity::NoInput, |_| {
        std::env::args_os().fold(MiReply::ok(), |r, a| r.node(MiNode::value(a.to_string_lossy())))
    });
    let h = handle.clone();
    mi.register("which", Arity::NoInput, move |_| {
        let names = h().map(|mi| mi.commands()).unwrap_or_default();
        names.into_iter().fold(MiReply::ok(), |r, n| r.node(MiNode::value(n)))
    });
    let h = handle.clone();
    mi.register("ps", Arity::NoInput, move |_| {
        let pid = std::process::id().to_string();
        let mut types = vec!["attendant".to_string()];
        types.extend(h().map(|mi| mi.processes()).unwrap_or_default());
        types.into_iter().enumerate().fold(MiReply::ok(), |r, (i, t)| {
            r.node(MiNode::named("Process").attr("ID", i.to_string()).attr("PID", pid.clone()).attr("Type", t))
        })
    });
    let h = handle.clone();
    mi.register("kill", Arity::NoInput, move |_| {
        match h().and_then(|mi| mi.kill_hook()) {
            Some(hook) => hook(),
            None => terminate_self(),
        }
        MiReply::ok()
    });
    let h = handle.clone();
    mi.register("debug", Arity::Between(0, 1), move |args| {
        let Some(mi) = h() else { return MiReply::internal_error() };
        let level = match args.first() {
            Some(text) => match parse_sint(text) {
                Some(n) => n,
                None => return MiReply::bad_param(),
            },
            None => mi.debug_level(),
        };
        if !args.is_empty() {
            mi.set_debug_level(level);
            if let Some(hook) = mi.debug_hook() {
                hook(level);
            }
        }
        MiReply::ok().node(MiNode::new("DEBUG", level.to_string()))
    });
    let h = handle.clone();
    mi.register("get_statistics", Arity::AtLeast(1), move |args| match h() {
        Some(mi) => get_statistics(&mi, &args),
        None => MiReply::internal_error(),
    });
    mi.register("reset_statistics", Arity::AtLeast(1), move |args| match handle() {
        Some(mi) => reset_statistics(&mi, &args),
        None => MiReply::internal_error(),
    });
}

/// `serc VERSION (ARCH/OS)`, as 1.3's `OpenSER (1.3.x (i386/linux))`.
pub fn version() -> String {
    format!("serc {} ({}/{})", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH, std::env::consts::OS)
}

fn uptime(since: SystemTime, now: SystemTime) -> MiReply {
    let up = now.duration_since(since).unwrap_or(Duration::ZERO).as_secs();
    MiReply::ok()
        .node(MiNode::new("Now", ctime(now)))
        .node(MiNode::new("Up since", ctime(since)))
        .node(MiNode::new("Up time", format!("{up} [sec]")))
}

fn get_statistics(mi: &Mi, args: &[String]) -> MiReply {
    let stats = mi.stats();
    let mut reply = MiReply::ok();
    for arg in args.iter().filter(|a| !a.is_empty()) {
        let found = if arg == "all" {
            stats.all()
        } else if let Some(group) = arg.strip_suffix(':').filter(|g| !g.is_empty()) {
            stats.group(group).unwrap_or_default()
        } else {
            stats.find(arg).into_iter().collect()
        };
        for v in found {
            reply.push(MiNode::value(v.to_string()));
        }
    }
    if reply.nodes.is_empty() {
        return MiReply::new(404, "Statistics Not Found");
    }
    reply
}

fn reset_statistics(mi: &Mi, args: &[String]) -> MiReply {
    let mut found = false;
    for arg in args.iter().filter(|a| !a.is_empty()) {
        found |= mi.stats().reset(arg);
    }
    if found {
        MiReply::ok()
    } else {
        MiReply::new(404, "Statistics Not Found")
    }
}

/// A signed decimal as 1.3's `str2sint` reads it: an optional sign, digits.
fn parse_sint(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(unix)]
fn terminate_self() {
    // SAFETY: kill(2) on our own pid with a valid signal number touches no memory.
    let r = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    if r != 0 {
        tracing::error!("MI kill: cannot send SIGTERM: {}", std::io::Error::last_os_error());
    }
}

#[cfg(not(unix))]
fn terminate_self() {
    tracing::error!("MI kill: no kill hook is set and this system has no SIGTERM");
}

/// `time` as C's `ctime` writes it (local time, `Thu Nov 26 22:00:00 2026`),
/// without the line feed.
pub fn ctime(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (year, mon, mday, wday, hour, min, sec) = local_fields(secs);
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let day = DAYS.get(wday as usize).copied().unwrap_or("???");
    let month = MONTHS.get(mon as usize).copied().unwrap_or("???");
    format!("{day} {month}{mday:3} {hour:02}:{min:02}:{sec:02} {year}")
}

/// (year, month 0–11, day 1–31, weekday 0–6 from Sunday, hour, minute,
/// second) of `secs` in the local time zone (UTC where it is unknown).
#[cfg(unix)]
fn local_fields(secs: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only the `tm` it is given; a zeroed `tm` is
    // a valid value of that plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return utc_fields(secs);
    }
    (
        tm.tm_year as i64 + 1900,
        tm.tm_mon as i64,
        tm.tm_mday as i64,
        tm.tm_wday as i64,
        tm.tm_hour as i64,
        tm.tm_min as i64,
        tm.tm_sec as i64,
    )
}

#[cfg(not(unix))]
fn local_fields(secs: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    utc_fields(secs)
}

/// The same fields in UTC (days to civil date: Howard Hinnant's algorithm).
fn utc_fields(secs: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let wday = (days + 4).rem_euclid(7);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m - 1, d, wday, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(f)
    }

    #[test]
    fn civil_dates() {
        assert_eq!(utc_fields(0), (1970, 0, 1, 4, 0, 0, 0));
        // 2026-11-26 22:16:27 UTC, a Thursday.
        assert_eq!(utc_fields(1_795_731_387), (2026, 10, 26, 4, 22, 16, 27));
        assert_eq!(ctime(UNIX_EPOCH + Duration::from_secs(1_795_731_387)).len(), 24);
    }

    #[test]
    fn core_commands() {
        let mi = Mi::new();
        block(async {
            let which = mi.run("which", vec!["ignored".into()]).await;
            assert_eq!(which.code, 200);
            let names: Vec<_> = which.nodes.iter().filter_map(|n| n.value.clone()).collect();
            assert_eq!(&names[..3], ["uptime", "version", "pwd"]);
            assert!(names.contains(&"get_statistics".to_string()));
            assert_eq!(mi.run("nope", vec![]).await.reason, "command 'nope' not available");
            assert_eq!(mi.run("debug", vec!["x".into()]).await, MiReply::bad_param());
            assert_eq!(mi.run("debug", vec!["1".into(), "2".into()]).await, MiReply::missing_param());
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(99));
            let s = seen.clone();
            mi.set_debug_hook(move |n| s.store(n, std::sync::atomic::Ordering::Relaxed));
            let r = mi.run("debug", vec!["-1".into()]).await;
            assert_eq!(r.nodes, vec![MiNode::new("DEBUG", "-1")]);
            assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), -1);
            assert_eq!(mi.run("debug", vec![]).await.nodes, vec![MiNode::new("DEBUG", "-1")]);
            assert_eq!(mi.run("get_statistics", vec![]).await, MiReply::missing_param());
            mi.stats().counter("core", "rcv_requests").add(4);
            let r = mi.run("get_statistics", vec!["rcv_requests".into(), "".into(), "sl:".into()]).await;
            assert_eq!(r.nodes, vec![MiNode::value("core:rcv_requests = 4")]);
            let r = mi.run("get_statistics", vec!["core:".into()]).await;
            assert_eq!(r.nodes.len(), super::super::stats::CORE.len());
            assert_eq!(mi.run("get_statistics", vec!["zzz".into()]).await.code, 404);
            assert_eq!(mi.run("reset_statistics", vec!["core:rcv_requests".into()]).await.code, 200);
            assert_eq!(mi.stats().value("rcv_requests"), Some(0));
            assert_eq!(mi.run("reset_statistics", vec!["zzz".into()]).await.code, 404);
            let hit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let k = hit.clone();
            mi.set_kill_hook(move || k.store(true, std::sync::atomic::Ordering::Relaxed));
            assert_eq!(mi.run("kill", vec![]).await.code, 200);
            assert!(hit.load(std::sync::atomic::Ordering::Relaxed));
            mi.add_process("MI FIFO");
            let ps = mi.run("ps", vec![]).await;
            assert_eq!(ps.nodes.len(), 2);
            assert_eq!(ps.nodes[1].attributes[2], (Some("Type".into()), Some("MI FIFO".into())));
            let up = mi.run("uptime", vec![]).await;
            assert_eq!(up.nodes[2].name.as_deref(), Some("Up time"));
        });
    }

    #[test]
    fn signed_numbers() {
        assert_eq!(parse_sint("4"), Some(4));
        assert_eq!(parse_sint("-3"), Some(-3));
        assert_eq!(parse_sint("+2"), Some(2));
        assert_eq!(parse_sint(""), None);
        assert_eq!(parse_sint("-"), None);
        assert_eq!(parse_sint("1x"), None);
        assert_eq!(parse_sint("99999999999999999999"), None);
    }
}
