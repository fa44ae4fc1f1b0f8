//! Statistics: named counters grouped by module, under OpenSER 1.3's names
//! (`statistics.c`, `core_stats.c` and the modules' `mod_stats` tables), so
//! that what monitored a 1.3 proxy (`openserctl fifo get_statistics all`)
//! reads serc's the same way.
//!
//! A statistic is one of three kinds, as in 1.3: a counter that
//! `reset_statistics` sets back to 0; a counter that it leaves alone
//! (`STAT_NO_RESET`: `tm:inuse_transactions`, registrar's settings); or a
//! gauge, a closure read when asked (`STAT_IS_FUNC`:
//! `usrloc:registered_users`), which nothing resets either.
//!
//! On the hot path a [`Counter`] is one relaxed atomic add on its own cache
//! line (so counters bumped by different workers do not share a line). A
//! module takes its handles once, at start ([`Stats::counter`]), and keeps
//! them; registering is rare and takes a lock, reading for MI walks the
//! registry under a read lock.
//!
//! 1.3's `shmem` group (its shared memory pool) has no counterpart in serc
//! and is not listed.
//!
//! Names are matched as 1.3 matches them: groups and statistic names without
//! regard to case, a bare name (`rcv_requests`) searched in every group. serc
//! also takes `group:name`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// 1.3's core statistics (`core_stats.c`), in its order.
pub const CORE: &[&str] = &[
    "rcv_requests",
    "rcv_replies",
    "fwd_requests",
    "fwd_replies",
    "drop_requests",
    "drop_replies",
    "err_requests",
    "err_replies",
    "bad_URIs_rcvd",
    "unsupported_methods",
    "bad_msg_hdr",
];

/// sl's statistics (`sl.c`), all resettable counters.
pub const SL: &[&str] = &[
    "1xx_replies",
    "2xx_replies",
    "3xx_replies",
    "4xx_replies",
    "5xx_replies",
    "6xx_replies",
    "sent_replies",
    "sent_err_replies",
    "received_ACKs",
];

/// tm's statistics (`tm.c`); `inuse_transactions` is not resettable
/// ([`TM_NO_RESET`]).
pub const TM: &[&str] = &[
    "received_replies",
    "relayed_replies",
    "local_replies",
    "UAS_transactions",
    "UAC_transactions",
    "2xx_transactions",
    "3xx_transactions",
    "4xx_transactions",
    "5xx_transactions",
    "6xx_transactions",
    "inuse_transactions",
];
/// tm's statistics that `reset_statistics` leaves alone.
pub const TM_NO_RESET: &[&str] = &["inuse_transactions"];

/// registrar's statistics (`reg_mod.c`); the first three are its settings
/// and not resettable ([`REGISTRAR_NO_RESET`]).
pub const REGISTRAR: &[&str] = &["max_expires", "max_contacts", "default_expire", "accepted_regs", "rejected_regs"];
/// registrar's statistics that `reset_statistics` leaves alone.
pub const REGISTRAR_NO_RESET: &[&str] = &["max_expires", "max_contacts", "default_expire"];

/// usrloc's gauge of registered AORs (`ul_mod.c`, a function in 1.3); per
/// domain (table) 1.3 also has `<table>-users`, `<table>-contacts` and
/// `<table>-expires` (`udomain.c`: `location-users` …), not resettable.
pub const USRLOC_REGISTERED_USERS: &str = "registered_users";

/// A counter's value on its own cache line.
#[repr(align(64))]
#[derive(Default)]
struct Cell(AtomicU64);

/// A handle on a counter: cheap to clone, to keep, and to bump from any
/// thread (relaxed atomics: the counts are exact, their order with other
/// memory is not needed).
#[derive(Clone, Default)]
pub struct Counter(Arc<Cell>);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0 .0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0 .0.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts one (a level such as `inuse_transactions`), never below 0.
    #[inline]
    pub fn dec(&self) {
        self.sub(1);
    }

    /// Subtracts `n`, never below 0.
    #[inline]
    pub fn sub(&self, n: u64) {
        let _ = self.0 .0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
    }

    /// Sets the value (a setting such as `registrar:max_expires`).
    pub fn set(&self, n: u64) {
        self.0 .0.store(n, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0 .0.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counter({})", self.get())
    }
}

/// A gauge's reader.
pub type GaugeFn = Arc<dyn Fn() -> u64 + Send + Sync>;

#[derive(Clone)]
enum Kind {
    Counter { counter: Counter, resettable: bool },
    Gauge(GaugeFn),
}

#[derive(Clone)]
struct Stat {
    name: String,
    kind: Kind,
}

impl Stat {
    fn value(&self) -> u64 {
        match &self.kind {
            Kind::Counter { counter, .. } => counter.get(),
            Kind::Gauge(f) => f(),
        }
    }
}

struct Group {
    name: String,
    stats: Vec<Stat>,
}

/// One statistic's value, as `get_statistics` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatValue {
    pub group: String,
    pub name: String,
    pub value: u64,
}

impl fmt::Display for StatValue {
    /// `group:name = value`, 1.3's line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} = {}", self.group, self.name, self.value)
    }
}

/// The registry of statistics, shared (clones share it).
#[derive(Clone, Default)]
pub struct Stats {
    groups: Arc<RwLock<Vec<Group>>>,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats").field("groups", &self.read().len()).finish()
    }
}

impl Stats {
    /// A registry with 1.3's core statistics.
    pub fn new() -> Stats {
        let stats = Stats::default();
        for name in CORE {
            stats.counter("core", name);
        }
        stats
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Group>> {
        self.groups.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Group>> {
        self.groups.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The resettable counter `group:name`, registered on first use (the same
    /// handle every time after).
    pub fn counter(&self, group: &str, name: &str) -> Counter {
        self.register(group, name, true)
    }

    /// A counter `reset_statistics` leaves alone (1.3's `STAT_NO_RESET`), for
    /// levels and settings.
    pub fn counter_no_reset(&self, group: &str, name: &str) -> Counter {
        self.register(group, name, false)
    }

    /// Registers a module's table: each of `names`, not resettable when also
    /// in `no_reset` (for example `(TM, TM_NO_RESET)`).
    pub fn register_all(&self, group: &str, names: &[&str], no_reset: &[&str]) {
        for name in names {
            self.register(group, name, !no_reset.contains(name));
        }
    }

    fn register(&self, group: &str, name: &str, resettable: bool) -> Counter {
        let mut groups = self.write();
        let g = group_mut(&mut groups, group);
        if let Some(s) = g.stats.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
            if let Kind::Counter { counter, .. } = &s.kind {
                return counter.clone();
            }
            tracing::warn!("statistic {group}:{name} is a gauge: a new counter is not registered");
            return Counter::default();
        }
        let counter = Counter::default();
        g.stats.push(Stat { name: name.to_string(), kind: Kind::Counter { counter: counter.clone(), resettable } });
        counter
    }

    /// Registers (or replaces) the gauge `group:name`, read by calling `read`
    /// whenever it is listed.
    pub fn gauge(&self, group: &str, name: &str, read: impl Fn() -> u64 + Send + Sync + 'static) {
        let mut groups = self.write();
        let g = group_mut(&mut groups, group);
        let kind = Kind::Gauge(Arc::new(read));
        match g.stats.iter_mut().find(|s| s.name.eq_ignore_ascii_case(name)) {
            Some(s) => s.kind = kind,
            None => g.stats.push(Stat { name: name.to_string(), kind }),
        }
    }

    /// The value of `name` (`group:name` or a bare name), if registered.
    pub fn value(&self, name: &str) -> Option<u64> {
        self.find(name).map(|v| v.value)
    }

    /// Every statistic, groups in registration order (core first).
    pub fn all(&self) -> Vec<StatValue> {
        let groups = self.groups_snapshot();
        groups.iter().flat_map(|(g, stats)| stats.iter().map(move |s| value_of(g, s))).collect()
    }

    /// The statistics of `group`, or `None` when no such group.
    pub fn group(&self, group: &str) -> Option<Vec<StatValue>> {
        let groups = self.groups_snapshot();
        let (g, stats) = groups.iter().find(|(g, _)| g.eq_ignore_ascii_case(group))?;
        Some(stats.iter().map(|s| value_of(g, s)).collect())
    }

    /// One statistic: `group:name`, or a bare name searched in every group.
    pub fn find(&self, name: &str) -> Option<StatValue> {
        let (group, name) = match name.split_once(':') {
            Some((g, n)) => (Some(g), n),
            None => (None, name),
        };
        let groups = self.groups_snapshot();
        groups
            .iter()
            .filter(|(g, _)| group.is_none_or(|want| g.eq_ignore_ascii_case(want)))
            .find_map(|(g, stats)| stats.iter().find(|s| s.name.eq_ignore_ascii_case(name)).map(|s| value_of(g, s)))
    }

    /// Resets the statistic `name` (as [`Stats::find`] finds it); `false`
    /// when there is none. A non-resettable one is found and left alone, as
    /// 1.3 does.
    pub fn reset(&self, name: &str) -> bool {
        let (group, name) = match name.split_once(':') {
            Some((g, n)) => (Some(g), n),
            None => (None, name),
        };
        let groups = self.read();
        for g in groups.iter().filter(|g| group.is_none_or(|want| g.name.eq_ignore_ascii_case(want))) {
            if let Some(s) = g.stats.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
                if let Kind::Counter { counter, resettable: true } = &s.kind {
                    counter.set(0);
                }
                return true;
            }
        }
        false
    }

    /// The registry copied out of its lock, so that gauges (which may take
    /// other locks) are read without holding it.
    fn groups_snapshot(&self) -> Vec<(String, Vec<Stat>)> {
        self.read().iter().map(|g| (g.name.clone(), g.stats.clone())).collect()
    }
}

fn value_of(group: &str, s: &Stat) -> StatValue {
    StatValue { group: group.to_string(), name: s.name.clone(), value: s.value() }
}

fn group_mut<'g>(groups: &'g mut Vec<Group>, name: &str) -> &'g mut Group {
    let at = match groups.iter().position(|g| g.name.eq_ignore_ascii_case(name)) {
        Some(at) => at,
        None => {
            groups.push(Group { name: name.to_string(), stats: Vec::new() });
            groups.len() - 1
        }
    };
    &mut groups[at]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_groups_and_reset() {
        let s = Stats::new();
        let rcv = s.counter("core", "rcv_requests");
        rcv.inc();
        rcv.add(2);
        assert_eq!(s.counter("CORE", "RCV_requests").get(), 3, "the same handle");
        s.register_all("tm", TM, TM_NO_RESET);
        let inuse = s.counter("tm", "inuse_transactions");
        inuse.add(5);
        inuse.dec();
        s.gauge("usrloc", "registered_users", || 7);
        assert_eq!(s.value("core:rcv_requests"), Some(3));
        assert_eq!(s.value("rcv_requests"), Some(3));
        assert_eq!(s.value("registered_users"), Some(7));
        assert_eq!(s.value("nope"), None);
        assert_eq!(s.group("Tm").map(|g| g.len()), Some(TM.len()));
        assert!(s.reset("rcv_requests"));
        assert!(s.reset("tm:inuse_transactions"));
        assert!(s.reset("registered_users"));
        assert!(!s.reset("nope"));
        assert_eq!(rcv.get(), 0);
        assert_eq!(inuse.get(), 4, "not resettable");
        let all = s.all();
        assert_eq!(all[0].to_string(), "core:rcv_requests = 0");
        assert_eq!(all.last().map(|v| v.to_string()).as_deref(), Some("usrloc:registered_users = 7"));
        inuse.sub(100);
        assert_eq!(inuse.get(), 0);
    }
}
