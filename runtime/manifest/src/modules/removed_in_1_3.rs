//! What OpenSER 1.2 offered that 1.3 removed: a 1.2 config using one of these
//! gets a warning saying so, not an "unknown" error. (Export tables of OpenSER
//! 1.2 and 1.3 compared; modules 1.3 removed whole, like `pa`, are in `elsewhere`.)

/// `(module, function, arity)`.
pub static FUNCTIONS: &[(&str, &str, usize)] = &[
    ("avpops", "avp_printf", 2),
    ("presence", "handle_notify", 0),
    ("presence", "stored_pres_info", 1),
    ("pua", "send_publish", 1),
    ("pua", "send_subscribe", 1),
];

/// `(module, parameter)`.
pub static PARAMS: &[(&str, &str)] = &[
    ("acc", "acc_totag_column"),
    ("dialog", "use_tight_match"),
    ("nathelper", "rtpproxy_disable"),
    ("pdt", "clean_time"),
    ("pdt", "sync_time"),
    ("presence", "force_active"),
    ("presence", "lock_set_size"),
    ("presence", "xcap_table"),
];
