//! The choices RFC 3263 makes among DNS records, as pure functions: which NAPTR
//! services a client may use and in what order (§4.1, RFC 3403 §4), and the
//! order of SRV targets (RFC 2782: priority, then weighted random).

use crate::proxy::Transport;

/// A NAPTR record, as far as RFC 3263 reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Naptr {
    pub order: u16,
    pub preference: u16,
    /// The flags, lower-cased (`s` for "the next lookup is SRV").
    pub flags: String,
    /// The service field, upper-cased (`SIP+D2U`).
    pub services: String,
    /// Whether the record carries a regular expression (RFC 3263 uses the
    /// replacement only).
    pub has_regexp: bool,
    /// The replacement (the SRV name), lower-cased, with its trailing dot; `.`
    /// means none.
    pub replacement: String,
}

/// An SRV record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target, lower-cased, with its trailing dot; `.` means "the service is
    /// decidedly not available at this domain" (RFC 2782).
    pub target: String,
}

/// The transport a NAPTR service field names (RFC 3263 §4.1, the IANA table):
/// `SIP+D2U` UDP, `SIP+D2T` TCP, `SIP+D2S` SCTP, `SIPS+D2T` TLS over TCP.
/// Others (`SIPS+D2S`: TLS over SCTP, `SIP+D2W`: WebSocket, ENUM services …)
/// give `None`.
pub(crate) fn naptr_transport(services: &str) -> Option<Transport> {
    match services {
        "SIP+D2U" => Some(Transport::Udp),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIP+D2S" => Some(Transport::Sctp),
        "SIPS+D2T" => Some(Transport::Tls),
        _ => None,
    }
}

/// The NAPTR records a client resolving a `sip:` URI may follow, in the order it
/// follows them (RFC 3263 §4.1): those with the `S` flag, no regexp, a
/// replacement, and a service whose transport the client supports (`SIPS+D2T`
/// only when it supports TLS); sorted by order, then preference. Returns each
/// record's transport and SRV name.
pub(crate) fn usable_naptrs(records: &[Naptr], supported: &[Transport]) -> Vec<(Transport, String)> {
    let mut usable: Vec<&Naptr> = records
        .iter()
        .filter(|r| r.flags == "s" && !r.has_regexp && r.replacement != ".")
        .filter(|r| naptr_transport(&r.services).is_some_and(|t| supported.contains(&t)))
        .collect();
    usable.sort_by_key(|r| (r.order, r.preference));
    let mut out: Vec<(Transport, String)> = Vec::new();
    for r in usable {
        let Some(t) = naptr_transport(&r.services) else { continue };
        if !out.iter().any(|(ot, name)| *ot == t && *name == r.replacement) {
            out.push((t, r.replacement.clone()));
        }
    }
    out
}

/// The SRV name of a transport at a domain (RFC 3263 §4.2, §5; RFC 2782):
/// `_sip._udp.`, `_sip._tcp.`, `_sip._sctp.`, and `_sips._tcp.` for TLS.
pub(crate) fn srv_name(transport: Transport, domain: &str) -> String {
    let (service, proto) = match transport {
        Transport::Udp => ("_sip", "_udp"),
        Transport::Tcp => ("_sip", "_tcp"),
        Transport::Sctp => ("_sip", "_sctp"),
        Transport::Tls => ("_sips", "_tcp"),
    };
    format!("{service}.{proto}.{domain}")
}

/// SRV records in the order a client tries them (RFC 2782): by priority, lowest
/// first; among records of one priority, a weighted random order — records of
/// weight 0 first, then repeatedly a uniform number in `[0, sum of weights]`
/// selects the first record whose running sum reaches it. Records whose target is
/// `.` are left out.
pub(crate) fn order_srv(records: &[Srv], rng: &mut Rng) -> Vec<Srv> {
    let mut rest: Vec<Srv> = records.iter().filter(|r| r.target != ".").cloned().collect();
    // A stable sort keeps the DNS order among equal priorities (and weight-0
    // records before the others, as the RFC asks).
    rest.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let priority = rest[0].priority;
        let end = rest.iter().position(|r| r.priority != priority).unwrap_or(rest.len());
        let mut group: Vec<Srv> = rest.drain(..end).collect();
        while !group.is_empty() {
            let sum: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            let pick = rng.up_to(sum);
            let mut running = 0u64;
            let mut chosen = group.len() - 1;
            for (i, r) in group.iter().enumerate() {
                running += u64::from(r.weight);
                if running >= pick {
                    chosen = i;
                    break;
                }
            }
            out.push(group.remove(chosen));
        }
    }
    out
}

/// A small deterministic generator (SplitMix64): the weighted choices of RFC 2782
/// need no cryptographic randomness, and a seed makes them reproducible (tests,
/// and stateless proxies that must pick the same server for a retransmission,
/// RFC 3263 §4.4).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, max]` (inclusive, as RFC 2782 draws it).
    pub fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            // Sums of 16-bit weights are far below 2^64: the modulo bias of
            // a 64-bit draw is negligible.
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naptr(order: u16, preference: u16, flags: &str, services: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: flags.into(),
            services: services.into(),
            has_regexp: false,
            replacement: replacement.into(),
        }
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv { priority, weight, port: 5060, target: target.into() }
    }

    #[test]
    fn naptr_selection() {
        let records = [
            naptr(20, 20, "s", "SIP+D2U", "_sip._udp.x."),
            naptr(10, 50, "s", "SIPS+D2T", "_sips._tcp.x."),
            naptr(20, 10, "s", "SIP+D2T", "_sip._tcp.x."),
            naptr(5, 10, "u", "SIP+D2U", "."),
            naptr(5, 10, "s", "SIP+D2W", "_sip._ws.x."),
            naptr(5, 10, "s", "SIPS+D2S", "_sips._sctp.x."),
            naptr(30, 10, "s", "SIP+D2S", "_sip._sctp.x."),
            naptr(40, 10, "s", "SIP+D2U", "_sip._udp.x."),
        ];
        let udp_tcp = usable_naptrs(&records, &[Transport::Udp, Transport::Tcp]);
        assert_eq!(
            udp_tcp,
            [(Transport::Tcp, "_sip._tcp.x.".to_string()), (Transport::Udp, "_sip._udp.x.".to_string())]
        );
        let all = usable_naptrs(&records, &[Transport::Udp, Transport::Tcp, Transport::Tls, Transport::Sctp]);
        let transports: Vec<Transport> = all.iter().map(|(t, _)| *t).collect();
        assert_eq!(transports, [Transport::Tls, Transport::Tcp, Transport::Udp, Transport::Sctp]);
        let mut with_regexp = naptr(1, 1, "s", "SIP+D2U", "_sip._udp.y.");
        with_regexp.has_regexp = true;
        assert!(usable_naptrs(&[with_regexp], &[Transport::Udp]).is_empty());
    }

    #[test]
    fn srv_names() {
        assert_eq!(srv_name(Transport::Udp, "a.test."), "_sip._udp.a.test.");
        assert_eq!(srv_name(Transport::Tcp, "a.test."), "_sip._tcp.a.test.");
        assert_eq!(srv_name(Transport::Tls, "a.test."), "_sips._tcp.a.test.");
        assert_eq!(srv_name(Transport::Sctp, "a.test."), "_sip._sctp.a.test.");
    }

    #[test]
    fn srv_priority_then_weight() {
        let records = [srv(20, 0, "c."), srv(10, 0, "b."), srv(10, 0, "a."), srv(30, 5, ".")];
        let order: Vec<String> = order_srv(&records, &mut Rng::new(7)).into_iter().map(|r| r.target).collect();
        // All weights 0: DNS order within a priority; "." left out.
        assert_eq!(order, ["b.", "a.", "c."]);
    }

    #[test]
    fn srv_weights_are_proportional() {
        let records = [srv(10, 60, "a."), srv(10, 30, "b."), srv(10, 10, "c."), srv(10, 0, "z.")];
        let mut first = std::collections::HashMap::<String, u32>::new();
        let mut rng = Rng::new(42);
        for _ in 0..10_000 {
            let order = order_srv(&records, &mut rng);
            assert_eq!(order.len(), 4);
            *first.entry(order[0].target.clone()).or_default() += 1;
        }
        // Expected: a 60/101, b 30/101, c 10/101, z (weight 0) 1/101.
        let share = |t: &str| f64::from(first.get(t).copied().unwrap_or(0)) / 10_000.0;
        assert!((share("a.") - 0.594).abs() < 0.03, "{first:?}");
        assert!((share("b.") - 0.297).abs() < 0.03, "{first:?}");
        assert!((share("c.") - 0.099).abs() < 0.02, "{first:?}");
        assert!(share("z.") < 0.03, "{first:?}");
    }

    #[test]
    fn seeded_orders_repeat() {
        let records = [srv(1, 10, "a."), srv(1, 10, "b."), srv(1, 10, "c."), srv(2, 1, "d.")];
        let a = order_srv(&records, &mut Rng::new(99));
        let b = order_srv(&records, &mut Rng::new(99));
        assert_eq!(a, b);
        assert_eq!(a[3].target, "d.");
        assert_eq!(Rng::new(1).up_to(0), 0);
        let _ = Rng::new(1).up_to(u64::MAX);
    }
}
