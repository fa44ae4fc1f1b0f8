//! The statistics the SIP path bumps, as handles taken once: the core's (every
//! proxy has them) and those of sl, tm and registrar (listed once the config
//! loads the module; [`crate::mi::Mi::sl`] … register them on first use, and
//! [`register_loaded`] at start). Where each is counted follows OpenSER 1.3:
//!
//! - `core:rcv_requests` / `rcv_replies`: messages parsed (a message the parser
//!   refuses counts in `bad_msg_hdr` only, as 1.3's `parse_msg` failures);
//!   `fwd_requests` / `fwd_replies`: what `forward()` and the stateless reply
//!   path sent (tm's relaying is counted by tm); `drop_requests` /
//!   `drop_replies`: requests `drop`ped by the main route, provisional
//!   replies dropped by `onreply_route`, requests `forward()` could not send;
//!   `err_replies`: replies with no Via to go back along. (`err_requests`,
//!   1.3's requests without a Via, and `bad_URIs_rcvd`, `unsupported_methods`
//!   stay 0: the parser refuses those messages, counted in `bad_msg_hdr`.)
//! - `sl:*`: the replies sl sends, by class; `sent_err_replies` those of
//!   `sl_reply_error`.
//! - `tm:*`: `UAS_transactions` server transactions made (`UAC_transactions`
//!   counts transactions the proxy originates, 1.3's `t_uac`: none yet),
//!   `received_replies` replies matched to a branch, `relayed_replies` and
//!   `local_replies` replies sent upstream, from a branch or made by tm
//!   (`t_reply`, 408, the 100 Trying — 1.3 counted it too), `Nxx_transactions`
//!   final replies sent upstream by class; `inuse_transactions` a gauge of the table.
//! - `registrar:accepted_regs` / `rejected_regs`: REGISTERs `save` accepted
//!   or refused; `max_expires`, `max_contacts`, `default_expire` its settings.

use super::stats::{Counter, Stats, REGISTRAR, REGISTRAR_NO_RESET, SL, TM, TM_NO_RESET};

/// The core's statistics.
#[derive(Clone, Debug)]
pub struct CoreCounters {
    pub rcv_requests: Counter,
    pub rcv_replies: Counter,
    pub fwd_requests: Counter,
    pub fwd_replies: Counter,
    pub drop_requests: Counter,
    pub drop_replies: Counter,
    pub err_requests: Counter,
    pub err_replies: Counter,
    pub bad_uris_rcvd: Counter,
    pub unsupported_methods: Counter,
    pub bad_msg_hdr: Counter,
}

impl CoreCounters {
    pub fn new(stats: &Stats) -> CoreCounters {
        let c = |name| stats.counter("core", name);
        CoreCounters {
            rcv_requests: c("rcv_requests"),
            rcv_replies: c("rcv_replies"),
            fwd_requests: c("fwd_requests"),
            fwd_replies: c("fwd_replies"),
            drop_requests: c("drop_requests"),
            drop_replies: c("drop_replies"),
            err_requests: c("err_requests"),
            err_replies: c("err_replies"),
            bad_uris_rcvd: c("bad_URIs_rcvd"),
            unsupported_methods: c("unsupported_methods"),
            bad_msg_hdr: c("bad_msg_hdr"),
        }
    }
}

/// sl's statistics.
#[derive(Clone, Debug)]
pub struct SlCounters {
    /// `1xx_replies` … `6xx_replies`.
    pub by_class: [Counter; 6],
    pub sent_replies: Counter,
    pub sent_err_replies: Counter,
    pub received_acks: Counter,
}

impl SlCounters {
    pub fn new(stats: &Stats) -> SlCounters {
        stats.register_all("sl", SL, &[]);
        let c = |name: &str| stats.counter("sl", name);
        SlCounters {
            by_class: std::array::from_fn(|i| c(&format!("{}xx_replies", i + 1))),
            sent_replies: c("sent_replies"),
            sent_err_replies: c("sent_err_replies"),
            received_acks: c("received_ACKs"),
        }
    }

    /// A reply of `code` sent.
    pub fn sent(&self, code: u16) {
        if let Some(c) = self.by_class.get(usize::from(code / 100).wrapping_sub(1)) {
            c.inc();
        }
        self.sent_replies.inc();
    }
}

/// tm's statistics (`inuse_transactions` is a gauge on the table, registered
/// by tm when it builds its table).
#[derive(Clone, Debug)]
pub struct TmCounters {
    pub received_replies: Counter,
    pub relayed_replies: Counter,
    pub local_replies: Counter,
    pub uas_transactions: Counter,
    pub uac_transactions: Counter,
    /// `2xx_transactions` … `6xx_transactions`.
    pub completed: [Counter; 5],
}

impl TmCounters {
    pub fn new(stats: &Stats) -> TmCounters {
        let resettable: Vec<&str> = TM.iter().copied().filter(|n| !TM_NO_RESET.contains(n)).collect();
        stats.register_all("tm", &resettable, &[]);
        let c = |name: &str| stats.counter("tm", name);
        TmCounters {
            received_replies: c("received_replies"),
            relayed_replies: c("relayed_replies"),
            local_replies: c("local_replies"),
            uas_transactions: c("UAS_transactions"),
            uac_transactions: c("UAC_transactions"),
            completed: std::array::from_fn(|i| c(&format!("{}xx_transactions", i + 2))),
        }
    }

    /// A transaction completed with a final reply of `code`.
    pub fn completed(&self, code: u16) {
        if let Some(c) = self.completed.get(usize::from(code / 100).wrapping_sub(2)) {
            c.inc();
        }
    }
}

/// registrar's statistics.
#[derive(Clone, Debug)]
pub struct RegistrarCounters {
    pub accepted_regs: Counter,
    pub rejected_regs: Counter,
}

impl RegistrarCounters {
    /// Registers registrar's statistics, its settings from `params`.
    pub fn new(stats: &Stats, params: &crate::script::ModParams) -> RegistrarCounters {
        stats.register_all("registrar", REGISTRAR, REGISTRAR_NO_RESET);
        let setting = |name, param| {
            let v = params.int("registrar", param);
            stats.counter_no_reset("registrar", name).set(u64::try_from(v).unwrap_or(0));
        };
        setting("max_expires", "max_expires");
        setting("max_contacts", "max_contacts");
        setting("default_expire", "default_expires");
        RegistrarCounters {
            accepted_regs: stats.counter("registrar", "accepted_regs"),
            rejected_regs: stats.counter("registrar", "rejected_regs"),
        }
    }
}

/// At start: lists the statistics of the modules the config loads (1.3 lists
/// a module's statistics when it is loaded, before anything is counted).
pub fn register_loaded(config: &crate::script::Config) {
    let mi = &config.mi;
    if config.params.is_loaded("sl") {
        mi.sl();
    }
    if config.params.is_loaded("tm") {
        mi.tm();
        let slot = config.tm.clone();
        mi.stats().gauge("tm", "inuse_transactions", move || slot.get().map_or(0, |tm| tm.in_use() as u64));
    }
    if config.params.is_loaded("registrar") {
        mi.registrar(&config.params);
    }
    if config.params.is_loaded("usrloc") {
        crate::modules::usrloc::register_mi(config);
    }
}
