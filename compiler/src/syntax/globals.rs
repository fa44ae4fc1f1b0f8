//! Global parameters (`name = value` at the top level) of each dialect, with the
//! kind of value each takes. Facts from each project's cfg.lex / cfg.y.
//!
//! Sources (all in the `assign_stm` rule of cfg.y, spellings from cfg.lex):
//! - SER/OpenSER 0.9: OpenSIPS/opensips d88a1e2f6df5 (the OpenSER import of June 2005).
//! - OpenSER 1.3: OpenSIPS/opensips 9fea1f6cd80a (trunk at 1.3.0). OpenSER 1.0–1.2 also
//!   had `fifo*`, `unix_sock*`, `sock_*`, `syn_branch` (and 1.0 `tls_require_certificate`);
//!   1.3 rejects them, and so does this table.
//! - OpenSIPS 1.x: OpenSIPS/opensips d3a0cd3d7a64 (1.4.0) and 45bb4174ae2d (1.8.0); 1.5–1.7
//!   add nothing in between. Later 1.x (1.9–1.11) globals are not listed.
//! - Kamailio: kamailio/kamailio from 3.0.0 to 6.2-dev (every minor release's last
//!   tag, and master), merged: a name any of them accepts is listed, since Kamailio
//!   renamed some (`dst_blacklist_*` → `dst_blocklist_*` in 5.5) and dropped others
//!   (`sctp_*`, `stun_*`, `syn_branch` after 4.0; `statistics` after 5.2).
//!
//! Kinds: every one of these lexers turns `yes|true|on|enable` and
//! `no|false|off|disable` into the number 1 / 0, so [`ValueKind::Int`] and
//! [`ValueKind::Bool`] accept the same text; `Bool` marks the parameters the
//! source treats as a switch (its error says "boolean value expected", or the value
//! is only tested for zero), `Int` the rest.
//!
//! Not listed, because they are not `name = value` settings: `loadmodule`,
//! `modparam`, `include_file`, `import_file`, route blocks, `flags`/`avpflags`
//! declarations, the TLS domain blocks `tls_server_domain[ip:port] { … }` /
//! `tls_client_domain[…] { … }` of OpenSER 1.3 and OpenSIPS (whose `tls_*` settings
//! inside are not globals), and the attributes inside Kamailio's `socket = { … }`.
//!
//! Kamailio also reads custom cfg-framework variables, `group.name = value` where
//! the value is a number or a string, optionally followed by
//! `desc|descr|description "text"` (and `group[N].name = value` for a group
//! instance); their names are free, so they are not listed here. The only dotted
//! names listed are Kamailio's `kemi.*` settings, which its grammar names.
//!
//! Keywords are case-sensitive, as in cfg.lex.

use super::dialect::{Dialect, Dialects};

/// What a global parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A number (decimal, `0x` hex, octal); `yes`/`no` … count as 1/0 where the dialect lexes them as numbers.
    Int,
    /// A boolean: `yes|no|true|false|on|off|enable|disable` or a number.
    Bool,
    /// A quoted string.
    Str,
    /// A quoted string or a bare identifier (`user=openser`).
    StrOrId,
    /// A bare identifier (`log_facility=LOG_LOCAL0`), or a string where the dialect allows it.
    Id,
    /// One or more sockets `[proto:]host[:port]` (`listen`, `alias`).
    Sockets,
    /// An IP address, host name or string (`advertised_address`).
    Host,
    /// A number or an identifier (`tos=IPTOS_LOWDELAY`).
    IntOrId,
    /// Anything the parser can read; the dialect's own checks are not modelled.
    Any,
}

#[derive(Debug)]
pub struct Global {
    /// The canonical spelling.
    pub name: &'static str,
    /// Other spellings of the same keyword (`uid` for `user`).
    pub aliases: &'static [&'static str],
    pub kind: ValueKind,
    /// The dialects that have it.
    pub dialects: Dialects,
}

impl Global {
    fn is_spelled(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

const ALL: Dialects = Dialects::ALL;
const S: Dialects = Dialects::SER09;
const O: Dialects = Dialects::OPENSER;
const P: Dialects = Dialects::OPENSIPS;
const K: Dialects = Dialects::KAMAILIO;
const OP: Dialects = O.or(P);
const OPK: Dialects = O.or(P).or(K);
const PK: Dialects = P.or(K);
const SK: Dialects = S.or(K);
const SOP: Dialects = S.or(O).or(P);

const fn g(name: &'static str, aliases: &'static [&'static str], kind: ValueKind, dialects: Dialects) -> Global {
    Global { name, aliases, kind, dialects }
}

use ValueKind as V;

/// One entry per keyword and dialect set, sorted by name; a name has two entries
/// (with disjoint dialects) where its kind or its aliases differ between dialects.
pub static GLOBALS: &[Global] = &[
    g("advertised_address", &[], V::Host, ALL),
    g("advertised_port", &[], V::Int, ALL),
    g("alias", &[], V::Sockets, ALL),
    g("async_nonblock", &[], V::Int, K),
    g("async_tkv_evcb", &[], V::Str, K),
    g("async_tkv_gname", &[], V::Str, K),
    g("async_usleep", &[], V::Int, K),
    g("async_workers", &[], V::Int, K),
    g("async_workers_group", &[], V::Str, K),
    g("auto_aliases", &[], V::Bool, OPK),
    g("auto_bind_ipv6", &[], V::Bool, K),
    g("auto_domains", &[], V::Bool, K),
    g("avp_aliases", &[], V::Str, OP),
    g("bind_ipv6_link_local", &[], V::Int, K),
    // Also written without `=`: `cfgengine "native"`.
    g("cfgengine", &[], V::Str, K),
    g("check_via", &[], V::Bool, ALL),
    g("children", &[], V::Int, ALL),
    g("chroot", &[], V::StrOrId, ALL),
    g("corelog", &["core_log"], V::Int, K),
    // `coreparam[name] = number|"string"` (Kamailio 6.1+).
    g("coreparam", &[], V::Any, K),
    g("db_default_url", &[], V::Str, P),
    g("db_version_table", &[], V::Str, P),
    // A sign is allowed in OpenSIPS 1.8 (`+N`/`-N`) and Kamailio (`-N`).
    g("debug", &[], V::Int, ALL),
    g("disable_503_translation", &[], V::Bool, P),
    g("disable_core_dump", &[], V::Bool, ALL),
    g("disable_dns_blacklist", &[], V::Bool, OP),
    // Kamailio 5.5 renamed it; the old spelling stays an alias.
    g("disable_dns_blocklist", &["disable_dns_blacklist"], V::Bool, K),
    g("disable_dns_failover", &[], V::Bool, OP),
    g("disable_sctp", &[], V::Bool, K),
    g("disable_stateless_fwd", &[], V::Bool, P),
    g("disable_tcp", &[], V::Bool, ALL),
    g("disable_tls", &[], V::Bool, SOP),
    g("disable_tls", &["tls_disable"], V::Bool, K),
    g("dns", &[], V::Bool, ALL),
    g("dns_cache_del_nonexp", &["dns_cache_delete_nonexpired"], V::Bool, K),
    g("dns_cache_flags", &[], V::Int, K),
    g("dns_cache_gc_interval", &[], V::Int, K),
    g("dns_cache_init", &[], V::Bool, K),
    g("dns_cache_max_ttl", &[], V::Int, K),
    g("dns_cache_mem", &[], V::Int, K),
    g("dns_cache_min_ttl", &[], V::Int, K),
    g("dns_cache_negative_ttl", &[], V::Int, K),
    g("dns_cache_rec_pref", &[], V::Int, K),
    g("dns_naptr_ignore_rfc", &[], V::Bool, K),
    g("dns_retr_no", &[], V::Int, OPK),
    g("dns_retr_time", &[], V::Int, OPK),
    g("dns_sctp_pref", &["dns_sctp_preference"], V::Int, K),
    g("dns_search_full_match", &[], V::Bool, K),
    g("dns_servers_no", &[], V::Int, OPK),
    g("dns_slow_query_ms", &[], V::Int, K),
    g("dns_srv_lb", &["dns_srv_loadbalancing"], V::Bool, K),
    g("dns_tcp_pref", &["dns_tcp_preference"], V::Int, K),
    g("dns_tls_pref", &["dns_tls_preference"], V::Int, K),
    g("dns_try_ipv6", &[], V::Bool, OPK),
    g("dns_try_naptr", &[], V::Bool, K),
    g("dns_udp_pref", &["dns_udp_preference"], V::Int, K),
    g("dns_use_search_list", &[], V::Bool, OPK),
    g("domain", &[], V::Sockets, K),
    // `dst_blacklist = name:{ (proto, ip/mask, port, "text"), !(...) }`.
    g("dst_blacklist", &[], V::Any, OP),
    // Kamailio renamed `*blacklist*` to `*blocklist*` in 5.5; both spellings are listed.
    g("dst_blocklist_expire", &["dst_blacklist_expire", "dst_blacklist_ttl", "dst_blocklist_ttl"], V::Int, K),
    g("dst_blocklist_gc_interval", &["dst_blacklist_gc_interval"], V::Int, K),
    g("dst_blocklist_init", &["dst_blacklist_init"], V::Bool, K),
    g("dst_blocklist_mem", &["dst_blacklist_mem"], V::Int, K),
    g("dst_blocklist_sctp_imask", &["dst_blacklist_sctp_imask"], V::Int, K),
    g("dst_blocklist_tcp_imask", &["dst_blacklist_tcp_imask"], V::Int, K),
    g("dst_blocklist_tls_imask", &["dst_blacklist_tls_imask"], V::Int, K),
    g("dst_blocklist_udp_imask", &["dst_blacklist_udp_imask"], V::Int, K),
    g("enable_sctp", &[], V::Int, K),
    g("enable_tls", &["tls_enable"], V::Bool, K),
    g("execdnsthreshold", &["exec_dns_threshold"], V::Int, P),
    g("execmsgthreshold", &["exec_msg_threshold"], V::Int, P),
    g("exit_timeout", &["ser_kill_timeout"], V::Int, K),
    g("fifo", &[], V::Str, S),
    g("fifo_db_url", &[], V::Str, S),
    g("fifo_dir", &[], V::Str, S),
    g("fifo_group", &["sock_group"], V::StrOrId, S),
    g("fifo_mode", &["file_mode", "sock_mode"], V::Int, S),
    g("fifo_user", &["sock_user"], V::StrOrId, S),
    g("force_rport", &["add_rport"], V::Bool, K),
    g("fork", &[], V::Bool, ALL),
    g("fork_delay", &[], V::Int, K),
    g("group", &["gid"], V::StrOrId, ALL),
    g("hdr_name_extra_chars", &[], V::Str, K),
    g("http_reply_hack", &["http_reply_parse"], V::Bool, K),
    g("ip_free_bind", &["ip_freebind", "ip_nonlocal_bind", "ipfreebind"], V::Int, K),
    g("ipv6_hex_style", &[], V::Str, K),
    // `kemi.<name> = "function"` (Kamailio 5.2+): the parser joins `kemi . name`.
    g("kemi.event_route_callback", &[], V::Str, K),
    g("kemi.onsend_route_callback", &[], V::Str, K),
    g("kemi.pre_routing_callback", &[], V::Str, K),
    g("kemi.received_route_callback", &[], V::Str, K),
    g("kemi.reply_route_callback", &[], V::Str, K),
    g("kemi.request_route_callback", &[], V::Str, K),
    g("latency_cfg_log", &[], V::Int, K),
    g("latency_limit_action", &[], V::Int, K),
    g("latency_limit_cfg", &[], V::Int, K),
    g("latency_limit_db", &[], V::Int, K),
    g("latency_log", &[], V::Int, K),
    // OpenSIPS 1.8 adds `as host[:port]` and `use_children N` after a socket;
    // Kamailio adds `advertise …`, `name "…"`, `virtual` and `(a, b)` multihomed lists.
    g("listen", &[], V::Sockets, ALL),
    // Also written without `=`: `loadpath "dir"`.
    g("loadpath", &["mpath"], V::Str, K),
    g("local_rport", &[], V::Bool, K),
    g("log_color", &[], V::Bool, K),
    g("log_engine_data", &[], V::Str, K),
    g("log_engine_type", &[], V::Str, K),
    // `LOG_LOCAL0` … (syslog facility names).
    g("log_facility", &[], V::Id, ALL),
    g("log_name", &[], V::Str, OPK),
    g("log_prefix", &[], V::Str, K),
    g("log_prefix_mode", &[], V::Int, K),
    g("log_stderror", &[], V::Bool, ALL),
    g("max_branches", &[], V::Int, K),
    g("max_recursive_level", &[], V::Int, K),
    g("max_while_loops", &[], V::Int, OPK),
    g("maxbuffer", &[], V::Int, ALL),
    g("maxsndbuffer", &[], V::Int, K),
    g("mcast", &[], V::StrOrId, K),
    g("mcast_loopback", &[], V::Bool, ALL),
    g("mcast_ttl", &[], V::Int, ALL),
    g("mem_add_size", &[], V::Int, K),
    g("mem_join", &[], V::Int, K),
    g("mem_safety", &[], V::Int, K),
    g("mem_status_mode", &[], V::Int, K),
    g("mem_summary", &[], V::Int, K),
    g("memdbg", &["mem_dbg"], V::Int, K),
    g("memdump", &["mem_dump"], V::Int, P),
    g("memlog", &["mem_log"], V::Int, ALL),
    g("mhomed", &[], V::Bool, ALL),
    g("mlock_pages", &[], V::Bool, K),
    g("modinit_delay", &[], V::Int, K),
    // Kamailio spells it `loadpath` (with `mpath` as an alias).
    g("mpath", &[], V::Str, OP),
    g("msg_apply_changes_mode", &[], V::Bool, K),
    g("msg_clone_extra_size", &[], V::Int, K),
    g("msg_recv_max_size", &[], V::Int, K),
    g("msg_time", &[], V::Int, K),
    g("onsend_route_reply", &[], V::Int, K),
    g("open_files_limit", &[], V::Int, ALL),
    g("phone2tel", &[], V::Bool, K),
    g("pmtu_discovery", &[], V::Int, K),
    g("port", &[], V::Int, ALL),
    g("pv_buffer_size", &[], V::Int, K),
    g("pv_buffer_slots", &[], V::Int, K),
    g("pv_cache_action", &[], V::Int, K),
    g("pv_cache_limit", &[], V::Int, K),
    g("query_buffer_size", &[], V::Int, P),
    g("query_flush_time", &[], V::Int, P),
    g("real_time", &[], V::Bool, K),
    g("received_route_mode", &[], V::Int, K),
    g("reply_to_via", &[], V::Bool, ALL),
    g("return_mode", &[], V::Int, K),
    g("rev_dns", &[], V::Bool, SOP),
    g("rev_dns", &["dns_rev_via"], V::Bool, K),
    g("route_locks_size", &[], V::Int, K),
    g("rpc_exec_delta", &[], V::Int, K),
    g("rpc_exec_locks", &[], V::Int, K),
    g("rpc_exec_locks_mode", &[], V::Int, K),
    g("rt_policy", &[], V::Int, K),
    g("rt_prio", &[], V::Int, K),
    g("rt_timer1_policy", &["rt_ftimer_policy"], V::Int, K),
    g("rt_timer1_prio", &["rt_fast_timer_prio", "rt_ftimer_prio"], V::Int, K),
    g("rt_timer2_policy", &["rt_stimer_policy"], V::Int, K),
    g("rt_timer2_prio", &["rt_stimer_prio"], V::Int, K),
    g("rundir", &["run_dir"], V::StrOrId, K),
    g("sctp_asocmaxrxt", &[], V::Int, K),
    g("sctp_assoc_reuse", &[], V::Int, K),
    g("sctp_assoc_tracking", &[], V::Int, K),
    g("sctp_autoclose", &[], V::Int, K),
    g("sctp_children", &[], V::Int, K),
    g("sctp_hbinterval", &[], V::Int, K),
    g("sctp_init_max_attempts", &[], V::Int, K),
    g("sctp_init_max_timeo", &[], V::Int, K),
    g("sctp_max_assocs", &[], V::Int, K),
    g("sctp_max_burst", &[], V::Int, K),
    g("sctp_pathmaxrxt", &[], V::Int, K),
    g("sctp_sack_delay", &[], V::Int, K),
    g("sctp_sack_freq", &[], V::Int, K),
    g("sctp_send_retries", &[], V::Int, K),
    g("sctp_send_ttl", &[], V::Int, K),
    g("sctp_socket_rcvbuf", &["sctp_socket_receive_buffer"], V::Int, K),
    g("sctp_socket_sndbuf", &["sctp_socket_send_buffer"], V::Int, K),
    g("sctp_srto_initial", &[], V::Int, K),
    g("sctp_srto_max", &[], V::Int, K),
    g("sctp_srto_min", &[], V::Int, K),
    g("server_header", &[], V::Str, OPK),
    g("server_id", &[], V::Int, K),
    g("server_signature", &[], V::Bool, ALL),
    g("shm", &["shm_mem", "shm_mem_size"], V::Int, K),
    g("shm_force_alloc", &[], V::Bool, K),
    g("sip_parser_log", &[], V::Int, K),
    g("sip_parser_log_oneline", &[], V::Int, K),
    g("sip_parser_mode", &[], V::Int, K),
    g("sip_warning", &[], V::Bool, ALL),
    // `socket = { bind = udp:1.2.3.4:5060; name = "s1"; … }` (Kamailio 5.7+).
    g("socket", &[], V::Any, K),
    g("socket_workers", &[], V::Int, K),
    g("sql_buffer_size", &[], V::Int, K),
    // SER 0.9, and Kamailio up to 5.2.
    g("statistics", &[], V::Str, SK),
    g("stats_name_separator", &[], V::Str, K),
    g("stun_allow_fp", &[], V::Int, K),
    g("stun_allow_stun", &[], V::Int, K),
    g("stun_refresh_interval", &[], V::Int, K),
    g("syn_branch", &[], V::Bool, SK),
    g("tcp_accept_aliases", &[], V::Bool, ALL),
    g("tcp_accept_haproxy", &[], V::Bool, K),
    g("tcp_accept_hep3", &[], V::Bool, K),
    g("tcp_accept_iplimit", &[], V::Int, K),
    g("tcp_accept_no_cl", &[], V::Bool, K),
    // A number or a string.
    g("tcp_accept_protocols", &["tcp_accept_protos"], V::Any, K),
    g("tcp_accept_unique", &[], V::Int, K),
    g("tcp_buf_write", &["tcp_async"], V::Bool, K),
    g("tcp_check_timer", &[], V::Int, K),
    g("tcp_children", &[], V::Int, ALL),
    g("tcp_clone_rcvbuf", &[], V::Int, K),
    g("tcp_close_rst", &[], V::Bool, K),
    g("tcp_conn_wq_max", &[], V::Int, K),
    g("tcp_connect_timeout", &[], V::Int, ALL),
    g("tcp_connection_lifetime", &[], V::Int, OPK),
    g("tcp_connection_match", &[], V::Int, K),
    g("tcp_crlf_ping", &[], V::Bool, K),
    g("tcp_crlf_pingpong", &[], V::Bool, P),
    g("tcp_defer_accept", &[], V::Int, K),
    g("tcp_delayed_ack", &[], V::Bool, K),
    g("tcp_fd_cache", &[], V::Bool, K),
    g("tcp_keepalive", &[], V::Bool, PK),
    g("tcp_keepcnt", &[], V::Int, K),
    g("tcp_keepcount", &[], V::Int, P),
    g("tcp_keepidle", &[], V::Int, PK),
    g("tcp_keepinterval", &[], V::Int, P),
    g("tcp_keepintvl", &[], V::Int, K),
    g("tcp_linger2", &[], V::Int, K),
    g("tcp_listen_backlog", &[], V::Int, K),
    g("tcp_main_threads", &[], V::Int, K),
    g("tcp_max_connections", &[], V::Int, OPK),
    g("tcp_msg_data_timeout", &[], V::Int, K),
    g("tcp_msg_read_timeout", &[], V::Int, K),
    g("tcp_no_connect", &[], V::Bool, K),
    g("tcp_no_new_conn_bflag", &[], V::Int, P),
    g("tcp_poll_method", &[], V::StrOrId, OPK),
    g("tcp_rd_buf_size", &[], V::Int, K),
    g("tcp_reuse_port", &[], V::Bool, K),
    g("tcp_script_mode", &[], V::Int, K),
    g("tcp_send_timeout", &[], V::Int, ALL),
    // An IPv4 address.
    g("tcp_source_ipv4", &[], V::Host, K),
    // An IPv6 address.
    g("tcp_source_ipv6", &[], V::Host, K),
    g("tcp_syncnt", &[], V::Int, K),
    g("tcp_wait_data", &[], V::Int, K),
    g("tcp_wq_blk_size", &[], V::Int, K),
    g("tcp_wq_max", &[], V::Int, K),
    g("tcpthreshold", &["tcp_threshold"], V::Int, P),
    g("tls_ca_list", &[], V::Str, ALL),
    g("tls_certificate", &[], V::Str, ALL),
    g("tls_ciphers_list", &[], V::Str, OP),
    // A number in OpenSER 1.3 and OpenSIPS 1.4 …
    g("tls_client_domain_avp", &[], V::Int, O),
    // … a string in OpenSIPS 1.8.
    g("tls_client_domain_avp", &[], V::Any, P),
    g("tls_connection_match_domain", &[], V::Int, K),
    g("tls_handshake_timeout", &[], V::Int, ALL),
    g("tls_max_connections", &[], V::Int, K),
    // `SSLv23`, `SSLv2`, `SSLv3` or `TLSv1` (also all-lower or all-upper case).
    g("tls_method", &[], V::Id, ALL),
    g("tls_port_no", &[], V::Int, ALL),
    g("tls_private_key", &[], V::Str, ALL),
    g("tls_require_certificate", &[], V::Bool, SK),
    g("tls_require_client_certificate", &[], V::Bool, OP),
    g("tls_send_timeout", &[], V::Int, ALL),
    g("tls_threads_mode", &[], V::Int, K),
    g("tls_verify", &[], V::Bool, SK),
    g("tls_verify_client", &[], V::Bool, OP),
    g("tls_verify_server", &[], V::Bool, OP),
    // Every lexer here returns the tls_port_no token for it: the value sets tls_port_no.
    g("tlslog", &["tls_log"], V::Int, ALL),
    // A number or `IPTOS_LOWDELAY`, `IPTOS_THROUGHPUT`, `IPTOS_RELIABILITY`, `IPTOS_LOWCOST` or `IPTOS_MINCOST`.
    g("tos", &[], V::IntOrId, OPK),
    g("udp4_raw", &[], V::Int, K),
    g("udp4_raw_mtu", &[], V::Int, K),
    g("udp4_raw_ttl", &[], V::Int, K),
    g("udp_accept_proxy", &[], V::Int, K),
    g("udp_mtu", &[], V::Int, K),
    // `udp`, `tcp`, `tls`, `sctp` or `*`.
    g("udp_mtu_try_proto", &[], V::Id, K),
    g("udp_receiver_mode", &[], V::Int, K),
    g("unix_sock", &[], V::Str, S),
    g("unix_sock_children", &[], V::Int, S),
    g("unix_tx_timeout", &[], V::Int, S),
    g("uri_host_extra_chars", &[], V::Str, K),
    g("use_dns_cache", &["dns_use_cache"], V::Bool, K),
    g("use_dns_failover", &["dns_use_failover"], V::Bool, K),
    g("use_dst_blocklist", &["use_dst_blacklist"], V::Bool, K),
    g("user", &["uid"], V::StrOrId, ALL),
    g("user_agent_header", &[], V::Str, OPK),
    g("verbose_startup", &[], V::Bool, K),
    g("version_table", &[], V::Str, K),
    g("wait_worker1_mode", &[], V::Int, K),
    g("wait_worker1_time", &[], V::Int, K),
    g("wait_worker1_usleep", &[], V::Int, K),
    g("workdir", &["wdir"], V::StrOrId, ALL),
    g("xavp_via_fields", &[], V::Str, K),
    g("xavp_via_params", &[], V::Str, K),
    g("xavp_via_reply_params", &[], V::Str, K),
    g("xlog_buf_size", &[], V::Int, P),
    g("xlog_force_color", &[], V::Bool, P),
];

/// The global parameter `name` (canonical spelling or alias) in `dialect`.
pub fn lookup(name: &str, dialect: Dialect) -> Option<&'static Global> {
    GLOBALS.iter().find(|g| g.dialects.contains(dialect) && g.is_spelled(name))
}

/// The global parameter `name` in any dialect (to say "`x` is a Kamailio parameter").
pub fn lookup_any(name: &str) -> Option<&'static Global> {
    GLOBALS.iter().find(|g| g.is_spelled(name))
}

/// Names known in `dialect` (canonical and aliases), for "did you mean" hints.
pub fn names(dialect: Dialect) -> impl Iterator<Item = &'static str> {
    GLOBALS
        .iter()
        .filter(move |g| g.dialects.contains(dialect))
        .flat_map(|g| std::iter::once(g.name).chain(g.aliases.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn kind(name: &str, d: Dialect) -> Option<ValueKind> {
        lookup(name, d).map(|g| g.kind)
    }

    #[test]
    fn alias_resolves_to_canonical() {
        assert_eq!(lookup("uid", Dialect::OpenSer13).unwrap().name, "user");
        assert_eq!(lookup("gid", Dialect::Ser09).unwrap().name, "group");
        assert_eq!(lookup("wdir", Dialect::OpenSips).unwrap().name, "workdir");
        assert_eq!(lookup("mem_log", Dialect::Kamailio).unwrap().name, "memlog");
        assert_eq!(lookup("tls_log", Dialect::OpenSer13).unwrap().name, "tlslog");
        assert_eq!(lookup("mpath", Dialect::OpenSer13).unwrap().name, "mpath");
        assert_eq!(lookup("mpath", Dialect::Kamailio).unwrap().name, "loadpath");
        assert_eq!(lookup("dst_blacklist_init", Dialect::Kamailio).unwrap().name, "dst_blocklist_init");
        assert_eq!(lookup("tls_disable", Dialect::Kamailio).unwrap().name, "disable_tls");
        assert!(lookup("tls_disable", Dialect::OpenSer13).is_none());
    }

    #[test]
    fn listen_is_sockets_everywhere() {
        for d in Dialect::ALL {
            assert_eq!(kind("listen", d), Some(ValueKind::Sockets), "{d}");
            assert_eq!(kind("alias", d), Some(ValueKind::Sockets), "{d}");
            assert_eq!(kind("advertised_address", d), Some(ValueKind::Host), "{d}");
        }
    }

    #[test]
    fn kamailio_only() {
        for name in [
            "memdbg",
            "log_prefix",
            "auto_bind_ipv6",
            "tcp_accept_no_cl",
            "enable_tls",
            "pv_buffer_size",
            "latency_log",
        ] {
            let g = lookup_any(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(g.dialects, Dialects::KAMAILIO, "{name}");
            assert!(lookup(name, Dialect::Kamailio).is_some(), "{name}");
            assert!(lookup(name, Dialect::OpenSer13).is_none(), "{name}");
        }
        assert_eq!(kind("memdbg", Dialect::Kamailio), Some(ValueKind::Int));
        assert_eq!(kind("kemi.onsend_route_callback", Dialect::Kamailio), Some(ValueKind::Str));
    }

    #[test]
    fn kinds() {
        for d in Dialect::ALL {
            assert_eq!(kind("debug", d), Some(ValueKind::Int), "{d}");
            assert_eq!(kind("children", d), Some(ValueKind::Int), "{d}");
            assert_eq!(kind("fork", d), Some(ValueKind::Bool), "{d}");
            assert_eq!(kind("log_facility", d), Some(ValueKind::Id), "{d}");
            assert_eq!(kind("user", d), Some(ValueKind::StrOrId), "{d}");
            assert_eq!(kind("tls_method", d), Some(ValueKind::Id), "{d}");
        }
        assert_eq!(kind("tos", Dialect::OpenSer13), Some(ValueKind::IntOrId));
        assert_eq!(kind("tos", Dialect::Ser09), None);
        assert_eq!(kind("server_header", Dialect::OpenSer13), Some(ValueKind::Str));
        assert_eq!(kind("dst_blacklist", Dialect::OpenSer13), Some(ValueKind::Any));
        assert_eq!(kind("tls_client_domain_avp", Dialect::OpenSer13), Some(ValueKind::Int));
        assert_eq!(kind("tls_client_domain_avp", Dialect::OpenSips), Some(ValueKind::Any));
        assert_eq!(kind("fifo", Dialect::Ser09), Some(ValueKind::Str));
        assert_eq!(kind("fifo", Dialect::OpenSer13), None);
        assert_eq!(kind("db_default_url", Dialect::OpenSips), Some(ValueKind::Str));
    }

    #[test]
    fn unknown_and_not_settings() {
        for d in Dialect::ALL {
            for name in [
                "no_such_param",
                "loadmodule",
                "modparam",
                "include_file",
                "import_file",
                "route",
                "DEBUG",
                "Listen",
                "",
            ] {
                assert!(lookup(name, d).is_none(), "{name} in {d}");
            }
        }
        assert!(lookup_any("no_such_param").is_none());
        assert!(lookup_any("tls_server_domain").is_none());
    }

    #[test]
    fn sorted_and_unique() {
        for w in GLOBALS.windows(2) {
            assert!(w[0].name <= w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        for d in Dialect::ALL {
            let mut seen = HashSet::new();
            for name in names(d) {
                assert!(seen.insert(name), "{name} twice in {d}");
            }
        }
        for g in GLOBALS {
            assert!(g.dialects != Dialects::NONE, "{}", g.name);
            assert!(!g.aliases.contains(&g.name), "{}", g.name);
        }
    }

    #[test]
    fn names_cover_lookup() {
        for d in Dialect::ALL {
            for name in names(d) {
                assert!(lookup(name, d).is_some(), "{name} in {d}");
            }
        }
        assert!(names(Dialect::OpenSer13).any(|n| n == "uid"));
        assert!(!names(Dialect::OpenSer13).any(|n| n == "memdbg"));
    }
}
