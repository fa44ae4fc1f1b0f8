//! The four state machines with simulated time, over RFC 3261 §24-style
//! messages parsed by `Message::parse`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sip::{Framing, Message, Method};

const ALICE: &str = "192.0.2.1:5060";
const BOB: &str = "192.0.2.4:5060";

fn parse(text: &str) -> Message {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    Message::parse(Bytes::from(crlf), Framing::Datagram).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

fn udp(addr: &str) -> Dest {
    Dest::new(Transport::Udp, addr.parse().unwrap())
}

fn tcp(addr: &str) -> Dest {
    Dest::new(Transport::Tcp, addr.parse().unwrap())
}

/// A request from Alice's phone as the proxy receives it (RFC 3261 §24.2, F1).
/// `branch: None` gives an RFC 2543 Via (no branch).
fn uac_request(method: &str, branch: Option<&str>, to_tag: Option<&str>, cseq: u32) -> Message {
    let via = match branch {
        Some(b) => format!("Via: SIP/2.0/UDP pc33.atlanta.com;branch={b}"),
        None => "Via: SIP/2.0/UDP pc33.atlanta.com".to_string(),
    };
    let to_tag = to_tag.map_or(String::new(), |t| format!(";tag={t}"));
    parse(&format!(
        "{method} sip:bob@biloxi.com SIP/2.0
{via}
Max-Forwards: 70
To: Bob <sip:bob@biloxi.com>{to_tag}
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.com
CSeq: {cseq} {method}
Contact: <sip:alice@pc33.atlanta.com>
Content-Length: 0

"
    ))
}

/// The proxy's response to a request from [`uac_request`].
fn response_to(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Bytes {
    let to_tag = to_tag.map_or(String::new(), |t| format!(";tag={t}"));
    let text = format!(
        "SIP/2.0 {code} {reason}
Via: {}
To: Bob <sip:bob@biloxi.com>{to_tag}
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.com
CSeq: {} {}
Content-Length: 0

",
        req.text(req.via.value),
        req.cseq,
        req.text(req.cseq_method_span)
    );
    Bytes::from(text.replace('\n', "\r\n"))
}

/// A request as the proxy sends it on (our Via on top, a Route).
fn proxied(method: &str, branch: &str, cseq: u32) -> Bytes {
    let text = format!(
        "{method} sip:bob@192.0.2.4 SIP/2.0
Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch={branch}
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1
Max-Forwards: 69
Route: <sip:ss2.biloxi.example.com;lr>
To: Bob <sip:bob@biloxi.com>
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.com
CSeq: {cseq} {method}
Contact: <sip:alice@pc33.atlanta.com>
Content-Length: 0

"
    );
    Bytes::from(text.replace('\n', "\r\n"))
}

/// Bob's response to a request from [`proxied`].
fn downstream(code: u16, method: &str, branch: &str, cseq: u32, to_tag: &str) -> Message {
    parse(&format!(
        "SIP/2.0 {code} Whatever
Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch={branch}
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1
To: Bob <sip:bob@biloxi.com>;tag={to_tag}
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.com
CSeq: {cseq} {method}
Contact: <sip:bob@192.0.2.4>
Content-Length: 0

"
    ))
}

const INV_BRANCH: &str = "z9hG4bK776asdhds";
const OUT_BRANCH: &str = "z9hG4bK77ef4c2312983.1";

/// Things with the time (ms) they happened.
type Timeline<T> = Vec<(u64, T)>;

/// A table and a simulated clock (milliseconds from a fixed origin).
struct Sim {
    table: Table,
    t0: Instant,
}

impl Sim {
    fn new() -> Sim {
        Sim::with(TableConfig::default())
    }

    fn with(config: TableConfig) -> Sim {
        Sim { table: Table::new(config), t0: Instant::now() }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn ms(&self, t: Instant) -> u64 {
        (t - self.t0).as_millis() as u64
    }

    fn drain(&self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.table.poll_transmit()).collect()
    }

    /// Fires timers up to `end` ms: what was sent and what happened, with the
    /// time each happened.
    fn run(&self, end: u64) -> (Timeline<Transmit>, Timeline<Event>) {
        let (mut sent, mut events) = (Vec::new(), Vec::new());
        while let Some(at) = self.table.poll_timeout() {
            let ms = self.ms(at);
            if ms > end {
                break;
            }
            events.extend(self.table.handle_timeout(at).into_iter().map(|e| (ms, e)));
            sent.extend(self.drain().into_iter().map(|t| (ms, t)));
        }
        (sent, events)
    }

    fn server(&self, req: &Message, dest: Dest) -> TxnId {
        self.table.create_server(req, dest).unwrap()
    }

    fn respond(&self, ms: u64, id: TxnId, resp: &Bytes) {
        self.table.send_response(self.at(ms), id, resp.clone()).unwrap();
        let out = self.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].bytes, resp);
    }

    fn client(&self, ms: u64, req: Bytes, dest: Dest) -> TxnId {
        let id = self.table.start_client(self.at(ms), req.clone(), dest, &ClientConfig::default()).unwrap();
        let out = self.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bytes, req);
        assert_eq!(out[0].dest, dest);
        id
    }
}

fn times(sent: &[(u64, Transmit)]) -> Vec<u64> {
    sent.iter().map(|(t, _)| *t).collect()
}

fn text(b: &Bytes) -> &str {
    std::str::from_utf8(b).unwrap()
}

// ---- INVITE server transaction (§17.2.1) ------------------------------------

#[test]
fn invite_server_non_2xx_proceeding_completed_confirmed() {
    let sim = Sim::new();
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 314159);
    assert_eq!(sim.table.handle_request(sim.at(0), &invite), RequestOutcome::NoMatch);
    let id = sim.server(&invite, udp(ALICE));
    assert_eq!(sim.table.state(id), Some(State::Proceeding));
    assert_eq!(sim.table.kind(id), Some(Kind::ServerInvite));
    // A retransmission before any response: absorbed, nothing to resend.
    assert_eq!(sim.table.handle_request(sim.at(10), &invite), RequestOutcome::Retransmission { id, resent: false });
    assert!(sim.drain().is_empty());
    // No timer runs in Proceeding.
    assert_eq!(sim.table.poll_timeout(), None);
    let trying = response_to(&invite, 100, "Trying", None);
    sim.respond(20, id, &trying);
    let ringing = response_to(&invite, 180, "Ringing", Some("a6c85cf"));
    sim.respond(30, id, &ringing);
    assert_eq!(sim.table.state(id), Some(State::Proceeding));
    // A retransmission gets the last provisional.
    assert_eq!(sim.table.handle_request(sim.at(500), &invite), RequestOutcome::Retransmission { id, resent: true });
    let out = sim.drain();
    assert_eq!((out.len(), &out[0].bytes, out[0].dest), (1, &ringing, udp(ALICE)));

    let busy = response_to(&invite, 486, "Busy Here", Some("a6c85cf"));
    sim.respond(1000, id, &busy);
    assert_eq!(sim.table.state(id), Some(State::Completed));
    assert_eq!(sim.table.status(id), Some(486));
    // Timer G: T1, 2·T1, 4·T1, then T2 (4 s) each time.
    let (sent, events) = sim.run(12_000);
    assert_eq!(times(&sent), [1500, 2500, 4500, 8500]);
    assert!(sent.iter().all(|(_, t)| t.bytes == busy && t.dest == udp(ALICE)));
    assert!(events.is_empty());
    // An INVITE retransmission gets the final response again.
    assert_eq!(sim.table.handle_request(sim.at(12_100), &invite), RequestOutcome::Retransmission { id, resent: true });
    assert_eq!(sim.drain()[0].bytes, busy);
    // The ACK (same branch, the response's To tag): Confirmed, G and H stop.
    let ack = uac_request("ACK", Some(INV_BRANCH), Some("a6c85cf"), 314159);
    assert_eq!(sim.table.handle_request(sim.at(12_200), &ack), RequestOutcome::AckAbsorbed { id });
    assert_eq!(sim.table.state(id), Some(State::Confirmed));
    assert_eq!(sim.table.handle_request(sim.at(12_300), &ack), RequestOutcome::AckAbsorbed { id });
    // Confirmed absorbs INVITE retransmissions too, without resending.
    assert_eq!(sim.table.handle_request(sim.at(12_400), &invite), RequestOutcome::Retransmission { id, resent: false });
    // Timer I (wt_timer, 5 s): Terminated; nothing more was sent (G stopped).
    let (sent, events) = sim.run(17_199);
    assert!(sent.is_empty() && events.is_empty());
    let (sent, events) = sim.run(17_200);
    assert!(sent.is_empty());
    assert_eq!(events, [(17_200, Event::Terminated(id))]);
    // Freed at once (the wait was the linger): nothing matches it any more,
    // and no timer is left (no delete_timer after a wait).
    assert_eq!(sim.table.state(id), None);
    assert_eq!(sim.table.len(), 0);
    assert_eq!(sim.table.poll_timeout(), None);
    assert_eq!(sim.table.handle_request(sim.at(17_300), &ack), RequestOutcome::NoMatch);
    assert_eq!(sim.table.handle_request(sim.at(17_300), &invite), RequestOutcome::NoMatch);
}

#[test]
fn invite_server_timer_g_caps_at_t2_and_h_ends_it() {
    let sim = Sim::new();
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 1);
    let id = sim.server(&invite, udp(ALICE));
    let busy = response_to(&invite, 603, "Decline", Some("x"));
    sim.respond(0, id, &busy);
    let (sent, events) = sim.run(32_000);
    // G at 0.5, 1.5, 3.5, 7.5, then every 4 s until H (64·T1 = 32 s).
    let mut expect = vec![500, 1500, 3500, 7500];
    let mut t = 7500;
    while t + 4000 < 32_000 {
        t += 4000;
        expect.push(t);
    }
    assert_eq!(times(&sent), expect);
    assert_eq!(events, [(32_000, Event::AckTimeout(id)), (32_000, Event::Terminated(id))]);
    assert_eq!(sim.table.state(id), Some(State::Terminated));
    // A late ACK while it lingers is absorbed.
    let ack = uac_request("ACK", Some(INV_BRANCH), Some("x"), 1);
    assert_eq!(sim.table.handle_request(sim.at(33_000), &ack), RequestOutcome::AckAbsorbed { id });
}

#[test]
fn invite_server_2xx_accepted_and_ack_passes() {
    let sim = Sim::new();
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 314159);
    let id = sim.server(&invite, udp(ALICE));
    let ok = response_to(&invite, 200, "OK", Some("a6c85cf"));
    sim.respond(100, id, &ok);
    assert_eq!(sim.table.state(id), Some(State::Accepted));
    // Only the key is kept now; it still matches (below) and finds a CANCEL.
    assert!(sim.table.request(id).is_none());
    assert_eq!(sim.table.find_cancelled(&uac_request("CANCEL", Some(INV_BRANCH), None, 314159)), Some(id));
    // RFC 6026: the INVITE retransmission is absorbed, the 2xx not resent by us.
    assert_eq!(sim.table.handle_request(sim.at(600), &invite), RequestOutcome::Retransmission { id, resent: false });
    assert!(sim.drain().is_empty());
    // The TU's 2xx retransmissions (from the UAS) go out.
    sim.respond(600, id, &ok);
    // A final other than 2xx is refused now.
    let busy = response_to(&invite, 486, "Busy Here", Some("a6c85cf"));
    assert_eq!(sim.table.send_response(sim.at(700), id, busy), Err(SendError::State(State::Accepted)));
    // No retransmission timer: only L.
    let (sent, events) = sim.run(32_099);
    assert!(sent.is_empty() && events.is_empty());
    // An ACK of the 2xx with the INVITE's branch (a UA reusing it): for the caller.
    let ack = uac_request("ACK", Some(INV_BRANCH), Some("a6c85cf"), 314159);
    assert_eq!(sim.table.handle_request(sim.at(1000), &ack), RequestOutcome::Ack2xx { id });
    // An RFC 3261 ACK of a 2xx has a branch of its own: no transaction.
    let ack = uac_request("ACK", Some("z9hG4bKnew"), Some("a6c85cf"), 314159);
    assert_eq!(sim.table.handle_request(sim.at(1000), &ack), RequestOutcome::NoMatch);
    let (_, events) = sim.run(32_100);
    assert_eq!(events, [(32_100, Event::Terminated(id))]);
}

// ---- non-INVITE server transaction (§17.2.2) --------------------------------

#[test]
fn non_invite_server_trying_proceeding_completed() {
    let sim = Sim::new();
    let bye = uac_request("BYE", Some("z9hG4bKbye1"), Some("a6c85cf"), 231);
    let id = sim.server(&bye, udp(ALICE));
    assert_eq!((sim.table.state(id), sim.table.kind(id)), (Some(State::Trying), Some(Kind::ServerNonInvite)));
    // Trying: absorbed without a response.
    assert_eq!(sim.table.handle_request(sim.at(500), &bye), RequestOutcome::Retransmission { id, resent: false });
    assert!(sim.drain().is_empty());
    let trying = response_to(&bye, 100, "Trying", None);
    sim.respond(600, id, &trying);
    assert_eq!(sim.table.state(id), Some(State::Proceeding));
    assert_eq!(sim.table.handle_request(sim.at(1500), &bye), RequestOutcome::Retransmission { id, resent: true });
    assert_eq!(sim.drain()[0].bytes, trying);
    assert_eq!(sim.table.request(id).map(|r| r.bytes().clone()), Some(bye.bytes().clone()));
    let ok = response_to(&bye, 200, "OK", Some("a6c85cf"));
    sim.respond(2000, id, &ok);
    assert_eq!(sim.table.state(id), Some(State::Completed));
    // Completed keeps the key and the final, not the request.
    assert!(sim.table.request(id).is_none());
    assert_eq!(sim.table.handle_request(sim.at(3500), &bye), RequestOutcome::Retransmission { id, resent: true });
    assert_eq!(sim.drain()[0].bytes, ok);
    // A second final is refused.
    assert_eq!(sim.table.send_response(sim.at(3600), id, ok.clone()), Err(SendError::State(State::Completed)));
    // Nothing is retransmitted by a non-INVITE server; J = wt_timer.
    let (sent, events) = sim.run(6_999);
    assert!(sent.is_empty() && events.is_empty());
    let (_, events) = sim.run(7_000);
    assert_eq!(events, [(7_000, Event::Terminated(id))]);
}

#[test]
fn a_non_invite_final_keeps_only_the_key_even_for_a_caller_that_keeps_requests() {
    // A non-INVITE has one final: nothing reads its request after it (acc
    // keeps an INVITE's for the 2xx of other branches). The RFC 2543 way
    // too: the kept key matches a retransmission by its Request-URI, tags,
    // Call-ID, CSeq and Via.
    let sim = Sim::new();
    for (n, (bye, keep)) in [
        (uac_request("BYE", Some("z9hG4bKbye2"), Some("a6c85cf"), 5), true),
        (uac_request("BYE", None, Some("a6c85cf"), 6), false),
        (uac_request("BYE", None, Some("a6c85cf"), 7), true),
    ]
    .into_iter()
    .enumerate()
    {
        let id = sim.server(&bye, udp(ALICE));
        let ok = response_to(&bye, 200, "OK", Some("a6c85cf"));
        let at = sim.at(n as u64 * 10);
        if keep {
            sim.table.send_response_keeping_request(at, id, ok.clone()).unwrap();
        } else {
            sim.table.send_response(at, id, ok.clone()).unwrap();
        }
        sim.drain();
        assert!(sim.table.request(id).is_none(), "{n}");
        let again = sim.at(n as u64 * 10 + 5);
        assert_eq!(sim.table.handle_request(again, &bye), RequestOutcome::Retransmission { id, resent: true }, "{n}");
        assert_eq!(sim.drain()[0].bytes, ok, "{n}");
    }
}

#[test]
fn non_invite_server_final_from_trying() {
    let sim = Sim::new();
    let reg = uac_request("REGISTER", Some("z9hG4bKreg"), None, 1);
    let id = sim.server(&reg, udp(ALICE));
    let ok = response_to(&reg, 200, "OK", Some("t"));
    sim.respond(0, id, &ok);
    assert_eq!(sim.table.state(id), Some(State::Completed));
    let provisional = response_to(&reg, 100, "Trying", None);
    assert_eq!(sim.table.send_response(sim.at(1), id, provisional), Err(SendError::State(State::Completed)));
}

#[test]
fn reliable_server_transactions_skip_g_and_wait_zero() {
    let sim = Sim::new();
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 1);
    let id = sim.server(&invite, tcp(ALICE));
    let busy = response_to(&invite, 486, "Busy Here", Some("x"));
    sim.respond(0, id, &busy);
    // No G: the only timer is H.
    assert_eq!(sim.table.poll_timeout(), Some(sim.at(32_000)));
    let ack = uac_request("ACK", Some(INV_BRANCH), Some("x"), 1);
    assert_eq!(sim.table.handle_request(sim.at(100), &ack), RequestOutcome::AckAbsorbed { id });
    // I = 0.
    assert_eq!(sim.table.poll_timeout(), Some(sim.at(100)));
    let (sent, events) = sim.run(100);
    assert!(sent.is_empty());
    assert_eq!(events, [(100, Event::Terminated(id))]);

    let options = uac_request("OPTIONS", Some("z9hG4bKopt"), None, 2);
    let id = sim.server(&options, tcp(ALICE));
    sim.respond(200, id, &response_to(&options, 200, "OK", Some("y")));
    // J = 0.
    let (_, events) = sim.run(200);
    assert_eq!(events, [(200, Event::Terminated(id))]);
}

// ---- INVITE client transaction (§17.1.1) ------------------------------------

#[test]
fn invite_client_timer_a_doubles_without_cap_until_b() {
    let sim = Sim::new();
    // fr_timer_avp = 32 s: timer B = 64·T1 as in the RFC.
    let cfg = ClientConfig { fr: Some(Duration::from_secs(32)), ..ClientConfig::default() };
    let req = proxied("INVITE", OUT_BRANCH, 1);
    let id = sim.table.start_client(sim.at(0), req.clone(), udp(BOB), &cfg).unwrap();
    assert_eq!(sim.table.state(id), Some(State::Calling));
    assert_eq!(sim.drain().len(), 1);
    let (sent, events) = sim.run(60_000);
    // 0.5, 1.5, 3.5, 7.5, 15.5, 31.5: intervals 1, 2, 4, 8, 16 s (past T2).
    assert_eq!(times(&sent), [500, 1500, 3500, 7500, 15_500, 31_500]);
    assert!(sent.iter().all(|(_, t)| t.bytes == req && t.dest == udp(BOB) && t.txn == id));
    assert_eq!(events, [(32_000, Event::ClientTimeout { id, provisional: false }), (32_000, Event::Terminated(id))]);
    assert_eq!(sim.table.state(id), None, "freed after delete_timer");
}

#[test]
fn invite_client_fr_timer_default_is_timer_b() {
    let sim = Sim::new();
    let id = sim.client(0, proxied("INVITE", OUT_BRANCH, 1), udp(BOB));
    let (_, events) = sim.run(29_999);
    assert!(events.is_empty());
    let (_, events) = sim.run(30_000);
    assert_eq!(events[0], (30_000, Event::ClientTimeout { id, provisional: false }));
}

#[test]
fn invite_client_proceeding_uses_fr_inv_restarted_on_each_reply() {
    let sim = Sim::new();
    let req = proxied("INVITE", OUT_BRANCH, 1);
    let id = sim.client(0, req, udp(BOB));
    let trying = downstream(100, "INVITE", OUT_BRANCH, 1, "b");
    assert_eq!(
        sim.table.handle_response(sim.at(200), &trying),
        ResponseOutcome::Provisional { id, status: 100, first: true }
    );
    assert_eq!(sim.table.state(id), Some(State::Proceeding));
    let ringing = downstream(180, "INVITE", OUT_BRANCH, 1, "b");
    let outcome = sim.table.handle_response(sim.at(60_000), &ringing);
    assert_eq!(outcome, ResponseOutcome::Provisional { id, status: 180, first: false });
    assert!(outcome.pass_up());
    // A stopped at the first provisional; fr_inv (120 s) restarted at 60 s.
    let (sent, events) = sim.run(179_999);
    assert!(sent.is_empty() && events.is_empty());
    let (_, events) = sim.run(180_000);
    assert_eq!(events[0], (180_000, Event::ClientTimeout { id, provisional: true }));
    // The caller CANCELs the branch that rang...
    let cancel = sim.table.build_cancel(id).unwrap();
    let cancel_text = text(&cancel);
    assert!(cancel_text.starts_with("CANCEL sip:bob@192.0.2.4 SIP/2.0\r\n"), "{cancel_text}");
    assert!(cancel_text.contains(&format!("Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch={OUT_BRANCH}\r\n")));
    assert!(!cancel_text.contains("pc33.atlanta.com;branch"), "only the top Via: {cancel_text}");
    assert!(cancel_text.contains("Route: <sip:ss2.biloxi.example.com;lr>\r\n"));
    assert!(cancel_text.contains("CSeq: 1 CANCEL\r\n"));
    assert!(cancel_text.contains("To: Bob <sip:bob@biloxi.com>\r\n"));
    let cid = sim.client(180_001, cancel, udp(BOB));
    assert_eq!(sim.table.kind(cid), Some(Kind::ClientNonInvite));
    // ...whose 200 matches the CANCEL's transaction (same branch, other method),
    let ok = downstream(200, "CANCEL", OUT_BRANCH, 1, "b");
    assert_eq!(sim.table.handle_response(sim.at(180_050), &ok), ResponseOutcome::Final { id: cid, status: 200 });
    // and the late 487 of the INVITE is ACKed and absorbed while it lingers.
    let terminated = downstream(487, "INVITE", OUT_BRANCH, 1, "b");
    let outcome = sim.table.handle_response(sim.at(180_060), &terminated);
    assert_eq!(outcome, ResponseOutcome::Absorbed { id, status: 487 });
    assert!(!outcome.pass_up());
    let out = sim.drain();
    assert_eq!(out.len(), 1);
    assert!(text(&out[0].bytes).starts_with("ACK sip:bob@192.0.2.4 SIP/2.0\r\n"));
    assert_eq!(out[0].dest, udp(BOB));
}

#[test]
fn invite_client_fr_inv_not_restarted_when_configured() {
    let mut config = TableConfig::default();
    config.timers.restart_fr_on_each_reply = false;
    let sim = Sim::with(config);
    let cfg = ClientConfig { fr_inv: Some(Duration::from_secs(10)), ..ClientConfig::default() };
    let id = sim.table.start_client(sim.at(0), proxied("INVITE", OUT_BRANCH, 1), udp(BOB), &cfg).unwrap();
    sim.table.handle_response(sim.at(1000), &downstream(180, "INVITE", OUT_BRANCH, 1, "b"));
    sim.table.handle_response(sim.at(5000), &downstream(183, "INVITE", OUT_BRANCH, 1, "b"));
    // fr_inv_timer_avp = 10 s from the first provisional, not the second.
    let (_, events) = sim.run(20_000);
    assert_eq!(events[0], (11_000, Event::ClientTimeout { id, provisional: true }));
}

#[test]
fn invite_client_non_2xx_is_acked_and_duplicates_absorbed() {
    let sim = Sim::new();
    let id = sim.client(0, proxied("INVITE", OUT_BRANCH, 1), udp(BOB));
    let busy = downstream(486, "INVITE", OUT_BRANCH, 1, "8321234356");
    assert_eq!(sim.table.handle_response(sim.at(700), &busy), ResponseOutcome::Final { id, status: 486 });
    assert_eq!(sim.table.state(id), Some(State::Completed));
    // The ACK, hop by hop (§17.1.1.3): the INVITE's Request-URI, top Via and
    // Route, the response's To.
    let out = sim.drain();
    assert_eq!(out.len(), 1);
    let ack = out[0].bytes.clone();
    assert_eq!(
        text(&ack),
        format!(
            "ACK sip:bob@192.0.2.4 SIP/2.0\r\n\
             Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch={OUT_BRANCH}\r\n\
             Route: <sip:ss2.biloxi.example.com;lr>\r\n\
             From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             To: Bob <sip:bob@biloxi.com>;tag=8321234356\r\n\
             Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
             CSeq: 1 ACK\r\n\
             Max-Forwards: 69\r\n\
             Content-Length: 0\r\n\r\n"
        )
    );
    parse(text(&ack));
    // The 486 again: absorbed, the ACK resent.
    assert_eq!(sim.table.handle_response(sim.at(900), &busy), ResponseOutcome::Absorbed { id, status: 486 });
    assert_eq!(sim.drain()[0].bytes, ack);
    // A late provisional is absorbed.
    let ringing = downstream(180, "INVITE", OUT_BRANCH, 1, "8321234356");
    assert_eq!(sim.table.handle_response(sim.at(950), &ringing), ResponseOutcome::Absorbed { id, status: 180 });
    // Timer A stopped with the response; timer D = wt_timer (5 s).
    let (sent, events) = sim.run(5_699);
    assert!(sent.is_empty());
    assert!(events.is_empty());
    let (_, events) = sim.run(5_700);
    assert_eq!(events, [(5_700, Event::Terminated(id))]);
    // Freed at D's end: a late response matches nothing (the core forwards
    // it statelessly), no ACK is sent for it.
    assert_eq!(sim.table.state(id), None);
    assert_eq!(sim.table.handle_response(sim.at(5_800), &busy), ResponseOutcome::NoMatch);
    assert!(sim.drain().is_empty());
}

/// A branch knows its server transaction (tm's uplink) until it is freed,
/// the linger after a timeout included; a server one, or a request the proxy
/// originated, has none.
#[test]
fn a_branch_keeps_its_uplink_until_freed() {
    let sim = Sim::new();
    let server = sim.server(&uac_request("MESSAGE", Some(INV_BRANCH), None, 3), udp(ALICE));
    assert_eq!(sim.table.uplink(server), None);
    let cfg = ClientConfig { fr: Some(Duration::from_secs(5)), uplink: Some(server), ..ClientConfig::default() };
    let branch = sim.table.start_client(sim.at(0), proxied("MESSAGE", OUT_BRANCH, 3), udp(BOB), &cfg).unwrap();
    assert_eq!(sim.drain().len(), 1);
    let own = sim.client(0, proxied("OPTIONS", "z9hG4bKown", 1), udp(BOB));
    assert_eq!(sim.table.uplink(branch), Some(server));
    assert_eq!(sim.table.uplink(own), None);
    // Timer F: the timeout is reported while the branch lingers, its uplink kept.
    let (_, events) = sim.run(5_000);
    assert!(events.contains(&(5_000, Event::ClientTimeout { id: branch, provisional: false })), "{events:?}");
    assert_eq!(sim.table.state(branch), Some(State::Terminated));
    assert_eq!(sim.table.uplink(branch), Some(server));
    // Freed after delete_timer: gone with it.
    sim.run(7_000);
    assert_eq!(sim.table.state(branch), None);
    assert_eq!(sim.table.uplink(branch), None);
}

#[test]
fn invite_client_2xx_accepted_passes_every_2xx() {
    let sim = Sim::new();
    let id = sim.client(0, proxied("INVITE", OUT_BRANCH, 1), udp(BOB));
    let ok = downstream(200, "INVITE", OUT_BRANCH, 1, "b1");
    assert_eq!(sim.table.handle_response(sim.at(300), &ok), ResponseOutcome::Final { id, status: 200 });
    assert_eq!(sim.table.state(id), Some(State::Accepted));
    // Only the key is kept (it matches below): no CANCEL can be built.
    assert!(sim.table.request(id).is_none());
    assert_eq!(sim.table.build_cancel(id), None);
    // No ACK from the transaction: the ACK of a 2xx is end to end.
    assert!(sim.drain().is_empty());
    // Retransmissions and another fork's 2xx pass up (RFC 6026).
    let outcome = sim.table.handle_response(sim.at(800), &ok);
    assert_eq!(outcome, ResponseOutcome::Extra2xx { id });
    assert!(outcome.pass_up());
    let other = downstream(200, "INVITE", OUT_BRANCH, 1, "b2");
    assert_eq!(sim.table.handle_response(sim.at(900), &other), ResponseOutcome::Extra2xx { id });
    // Other responses are absorbed.
    let busy = downstream(486, "INVITE", OUT_BRANCH, 1, "b3");
    assert_eq!(sim.table.handle_response(sim.at(950), &busy), ResponseOutcome::Absorbed { id, status: 486 });
    assert!(sim.drain().is_empty());
    // Timer M = 64·T1; nothing retransmitted in between.
    let (sent, events) = sim.run(32_300);
    assert!(sent.is_empty());
    assert_eq!(events, [(32_300, Event::Terminated(id))]);
    // Freed at M's end: a later 2xx matches nothing (the core forwards it
    // statelessly, as RFC 6026 §7.1 has a proxy do without a transaction).
    assert_eq!(sim.table.state(id), None);
    assert_eq!(sim.table.handle_response(sim.at(32_400), &ok), ResponseOutcome::NoMatch);
}

#[test]
fn reliable_invite_client_no_a_and_d_zero() {
    let sim = Sim::new();
    let id = sim.client(0, proxied("INVITE", OUT_BRANCH, 1), tcp(BOB));
    // Only B is pending.
    assert_eq!(sim.table.poll_timeout(), Some(sim.at(30_000)));
    let busy = downstream(486, "INVITE", OUT_BRANCH, 1, "b");
    assert_eq!(sim.table.handle_response(sim.at(100), &busy), ResponseOutcome::Final { id, status: 486 });
    assert_eq!(sim.drain()[0].dest, tcp(BOB));
    let (sent, events) = sim.run(100);
    assert!(sent.is_empty());
    assert_eq!(events, [(100, Event::Terminated(id))]);
}

// ---- non-INVITE client transaction (§17.1.2) --------------------------------

#[test]
fn non_invite_client_timer_e_caps_at_t2_until_f() {
    let sim = Sim::new();
    let req = proxied("OPTIONS", OUT_BRANCH, 7);
    let id = sim.client(0, req.clone(), udp(BOB));
    assert_eq!((sim.table.state(id), sim.table.kind(id)), (Some(State::Trying), Some(Kind::ClientNonInvite)));
    let (sent, events) = sim.run(60_000);
    assert_eq!(times(&sent), [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500]);
    assert!(sent.iter().all(|(_, t)| t.bytes == req));
    assert_eq!(events, [(30_000, Event::ClientTimeout { id, provisional: false }), (30_000, Event::Terminated(id))]);
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let sim = Sim::new();
    let id = sim.client(0, proxied("BYE", OUT_BRANCH, 2), udp(BOB));
    let (sent, _) = sim.run(700);
    assert_eq!(times(&sent), [500]);
    let trying = downstream(100, "BYE", OUT_BRANCH, 2, "b");
    assert_eq!(
        sim.table.handle_response(sim.at(700), &trying),
        ResponseOutcome::Provisional { id, status: 100, first: true }
    );
    assert_eq!(sim.table.state(id), Some(State::Proceeding));
    // E pending at 1.5 s fires, then every T2; F is not restarted by provisionals.
    let (sent, _) = sim.run(10_000);
    assert_eq!(times(&sent), [1500, 5500, 9500]);
    let ok = downstream(200, "BYE", OUT_BRANCH, 2, "b");
    assert_eq!(sim.table.handle_response(sim.at(10_000), &ok), ResponseOutcome::Final { id, status: 200 });
    assert_eq!(sim.table.state(id), Some(State::Completed));
    assert!(sim.drain().is_empty(), "no ACK for a non-INVITE");
    assert_eq!(sim.table.handle_response(sim.at(10_100), &ok), ResponseOutcome::Absorbed { id, status: 200 });
    assert_eq!(sim.table.handle_response(sim.at(10_200), &trying), ResponseOutcome::Absorbed { id, status: 100 });
    // K = wt_timer; no retransmission after the final.
    let (sent, events) = sim.run(20_000);
    assert!(sent.is_empty());
    assert_eq!(events, [(15_000, Event::Terminated(id))]);
}

#[test]
fn a_client_answered_before_t1_queues_no_final_response_timeout() {
    let sim = Sim::new();
    let id = sim.client(0, proxied("BYE", OUT_BRANCH, 2), udp(BOB));
    // E is queued; F (fr_timer, 30 s) is set but not queued while E is due first.
    assert_eq!(sim.table.queued_timers(), 1);
    let ok = downstream(200, "BYE", OUT_BRANCH, 2, "b");
    assert_eq!(sim.table.handle_response(sim.at(100), &ok), ResponseOutcome::Final { id, status: 200 });
    // K is queued, E stale until its tick; no F to walk 30 s later.
    assert_eq!(sim.table.queued_timers(), 2);
    let (sent, events) = sim.run(40_000);
    assert!(sent.is_empty());
    assert_eq!(events, [(5_100, Event::Terminated(id))]);
    assert_eq!(sim.table.queued_timers(), 0);
    assert_eq!(sim.table.len(), 0);
}

#[test]
fn non_invite_client_timeout_after_provisional() {
    let sim = Sim::new();
    let cfg = ClientConfig { fr: Some(Duration::from_secs(5)), ..ClientConfig::default() };
    let id = sim.table.start_client(sim.at(0), proxied("MESSAGE", OUT_BRANCH, 3), udp(BOB), &cfg).unwrap();
    sim.table.handle_response(sim.at(100), &downstream(100, "MESSAGE", OUT_BRANCH, 3, "b"));
    let (_, events) = sim.run(6_000);
    assert_eq!(events[0], (5_000, Event::ClientTimeout { id, provisional: true }));
    // A late final while it lingers: absorbed.
    let ok = downstream(200, "MESSAGE", OUT_BRANCH, 3, "b");
    assert_eq!(sim.table.handle_response(sim.at(6_000), &ok), ResponseOutcome::Absorbed { id, status: 200 });
}

#[test]
fn reliable_non_invite_client_no_e_and_k_zero() {
    let sim = Sim::new();
    let id = sim.client(0, proxied("OPTIONS", OUT_BRANCH, 7), tcp(BOB));
    assert_eq!(sim.table.poll_timeout(), Some(sim.at(30_000)));
    let ok = downstream(200, "OPTIONS", OUT_BRANCH, 7, "b");
    assert_eq!(sim.table.handle_response(sim.at(50), &ok), ResponseOutcome::Final { id, status: 200 });
    let (sent, events) = sim.run(50);
    assert!(sent.is_empty());
    assert_eq!(events, [(50, Event::Terminated(id))]);
}

// ---- matching ---------------------------------------------------------------

#[test]
fn response_matching_by_branch_and_cseq_method() {
    let sim = Sim::new();
    let inv = sim.client(0, proxied("INVITE", OUT_BRANCH, 1), udp(BOB));
    let other = sim.client(0, proxied("INVITE", "z9hG4bK77ef4c2312983.2", 1), udp(BOB));
    assert_ne!(inv, other);
    assert_eq!(
        sim.table.handle_response(sim.at(1), &downstream(180, "INVITE", "z9hG4bK77ef4c2312983.2", 1, "t")),
        ResponseOutcome::Provisional { id: other, status: 180, first: true }
    );
    // Same branch, another CSeq method: no transaction of that method.
    assert_eq!(
        sim.table.handle_response(sim.at(2), &downstream(200, "CANCEL", OUT_BRANCH, 1, "t")),
        ResponseOutcome::NoMatch
    );
    assert_eq!(
        sim.table.handle_response(sim.at(2), &downstream(200, "INVITE", "z9hG4bKunknown", 1, "t")),
        ResponseOutcome::NoMatch
    );
    // The same request twice is one transaction.
    let again = sim.table.start_client(sim.at(3), proxied("INVITE", OUT_BRANCH, 1), udp(BOB), &ClientConfig::default());
    assert_eq!(again, Err(CreateError::Exists(inv)));
    // A request is not a response.
    let req = parse(text(&proxied("INVITE", OUT_BRANCH, 1)));
    assert_eq!(sim.table.handle_response(sim.at(4), &req), ResponseOutcome::NoMatch);
}

#[test]
fn request_matching_by_branch_sent_by_and_method() {
    let sim = Sim::new();
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 1);
    let id = sim.server(&invite, udp(ALICE));
    sim.respond(0, id, &response_to(&invite, 100, "Trying", None));
    // The sent-by's host is case-insensitive, a missing port is the default.
    let same = parse(&text(invite.bytes()).replace("UDP pc33.atlanta.com;", "UDP PC33.Atlanta.COM:5060;"));
    assert_eq!(sim.table.handle_request(sim.at(1), &same), RequestOutcome::Retransmission { id, resent: true });
    // Another sent-by, another port, another branch, another method: no match.
    for (from, to) in [
        ("UDP pc33.atlanta.com;", "UDP pc34.atlanta.com;"),
        ("UDP pc33.atlanta.com;", "UDP pc33.atlanta.com:5070;"),
        (INV_BRANCH, "z9hG4bK776asdhdt"),
    ] {
        let other = parse(&text(invite.bytes()).replace(from, to));
        assert_eq!(sim.table.handle_request(sim.at(2), &other), RequestOutcome::NoMatch, "{to}");
    }
    let options = uac_request("OPTIONS", Some(INV_BRANCH), None, 1);
    assert_eq!(sim.table.handle_request(sim.at(3), &options), RequestOutcome::NoMatch);
    // Creating it twice (two workers racing on a retransmission) finds the first.
    assert_eq!(sim.table.create_server(&invite, udp(ALICE)), Err(CreateError::Exists(id)));
    // An ACK never creates a transaction.
    let ack = uac_request("ACK", Some("z9hG4bKack"), Some("t"), 1);
    assert_eq!(sim.table.create_server(&ack, udp(ALICE)), Err(CreateError::Ack));
    // An ACK for a transaction still in Proceeding is absorbed.
    let ack = uac_request("ACK", Some(INV_BRANCH), Some("t"), 1);
    assert_eq!(sim.table.handle_request(sim.at(4), &ack), RequestOutcome::AckAbsorbed { id });
}

/// `handle_request_keyed`'s hash is what the transaction is indexed under:
/// created with it, the transaction is found again (and a response has none).
#[test]
fn a_lookups_hash_creates_the_transaction_it_would_find() {
    let sim = Sim::new();
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 314159);
    let (outcome, hash) = sim.table.handle_request_keyed(sim.at(0), &invite);
    assert_eq!(outcome, RequestOutcome::NoMatch);
    let id = sim.table.create_server_hashed(&invite, udp(ALICE), hash).unwrap();
    assert_eq!(
        sim.table.handle_request_keyed(sim.at(1), &invite),
        (RequestOutcome::Retransmission { id, resent: false }, hash)
    );
    assert_eq!(sim.table.create_server(&invite, udp(ALICE)), Err(CreateError::Exists(id)));
    // Another request's hash would index it where its retransmissions are not looked for.
    let options = uac_request("OPTIONS", Some("z9hG4bKother"), None, 1);
    let (_, other) = sim.table.handle_request_keyed(sim.at(2), &options);
    assert_ne!(other, hash);
    let bye = uac_request("BYE", Some("z9hG4bKbye"), Some("t"), 2);
    let misfiled = sim.table.create_server_hashed(&bye, udp(ALICE), other).unwrap();
    assert_eq!(sim.table.handle_request(sim.at(3), &bye), RequestOutcome::NoMatch, "{misfiled}");
    let response = parse(std::str::from_utf8(&response_to(&invite, 180, "Ringing", Some("a6c85cf"))).unwrap());
    assert_eq!(sim.table.handle_request_keyed(sim.at(4), &response), (RequestOutcome::NoMatch, None));
}

#[test]
fn cancel_is_its_own_transaction_and_finds_its_invite() {
    let sim = Sim::new();
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 314159);
    let inv = sim.server(&invite, udp(ALICE));
    sim.respond(0, inv, &response_to(&invite, 180, "Ringing", Some("a6c85cf")));
    let cancel = uac_request("CANCEL", Some(INV_BRANCH), None, 314159);
    // The CANCEL matches no transaction of its own yet.
    assert_eq!(sim.table.handle_request(sim.at(100), &cancel), RequestOutcome::NoMatch);
    assert_eq!(sim.table.find_cancelled(&cancel), Some(inv));
    let cid = sim.server(&cancel, udp(ALICE));
    assert_ne!(cid, inv);
    assert_eq!(sim.table.kind(cid), Some(Kind::ServerNonInvite));
    let ok = response_to(&cancel, 200, "OK", Some("a6c85cf"));
    sim.respond(110, cid, &ok);
    // The INVITE gets its 487.
    let terminated = response_to(&invite, 487, "Request Terminated", Some("a6c85cf"));
    sim.respond(120, inv, &terminated);
    // A CANCEL retransmission gets the CANCEL's 200, not the 487.
    assert_eq!(
        sim.table.handle_request(sim.at(600), &cancel),
        RequestOutcome::Retransmission { id: cid, resent: true }
    );
    assert_eq!(sim.drain()[0].bytes, ok);
    // Still found while the INVITE transaction is Completed (the caller checks the state).
    assert_eq!(sim.table.find_cancelled(&cancel), Some(inv));
    assert_eq!(sim.table.state(inv), Some(State::Completed));
    // Another branch, or not a CANCEL: nothing.
    assert_eq!(sim.table.find_cancelled(&uac_request("CANCEL", Some("z9hG4bKother"), None, 314159)), None);
    assert_eq!(sim.table.find_cancelled(&invite), None);
}

#[test]
fn rfc2543_fallback_matching() {
    let sim = Sim::new();
    // No branch at all, and a bare cookie: both RFC 2543.
    for (n, branch) in [None, Some("z9hG4bK")].into_iter().enumerate() {
        let cseq = 100 + n as u32;
        let invite = uac_request("INVITE", branch, None, cseq);
        let id = sim.server(&invite, udp(ALICE));
        assert_eq!(sim.table.handle_request(sim.at(0), &invite), RequestOutcome::Retransmission { id, resent: false });
        // Another CSeq number, Request-URI, From tag, Call-ID or To tag: another transaction.
        let t = text(invite.bytes());
        for (from, to) in [
            (format!("CSeq: {cseq} INVITE"), format!("CSeq: {} INVITE", cseq + 10)),
            ("INVITE sip:bob@biloxi.com".into(), "INVITE sip:carol@biloxi.com".into()),
            ("tag=1928301774".into(), "tag=1928301775".into()),
            ("Call-ID: a84b".into(), "Call-ID: b84b".into()),
            ("To: Bob <sip:bob@biloxi.com>".into(), "To: Bob <sip:bob@biloxi.com>;tag=zz".into()),
        ] {
            let other = parse(&t.replace(&from, &to));
            assert_eq!(sim.table.handle_request(sim.at(1), &other), RequestOutcome::NoMatch, "{to}");
        }
        // The CANCEL finds it (its To carries no tag, as the INVITE's).
        let cancel = uac_request("CANCEL", branch, None, cseq);
        assert_eq!(sim.table.find_cancelled(&cancel), Some(id));
        let busy = response_to(&invite, 486, "Busy Here", Some("a6c85cf"));
        sim.respond(10, id, &busy);
        assert_eq!(sim.table.handle_request(sim.at(20), &invite), RequestOutcome::Retransmission { id, resent: true });
        assert_eq!(sim.drain()[0].bytes, busy);
        // The ACK matches with the To tag of our response only.
        let wrong = uac_request("ACK", branch, Some("other"), cseq);
        assert_eq!(sim.table.handle_request(sim.at(30), &wrong), RequestOutcome::NoMatch);
        let ack = uac_request("ACK", branch, Some("a6c85cf"), cseq);
        assert_eq!(sim.table.handle_request(sim.at(30), &ack), RequestOutcome::AckAbsorbed { id });
        assert_eq!(sim.table.state(id), Some(State::Confirmed));
    }
}

#[test]
fn an_rfc2543_invite_answered_2xx_keeps_only_its_key_and_matches_as_before() {
    let sim = Sim::new();
    // An initial INVITE and a re-INVITE (To tag), both without a branch.
    for (cseq, to_tag) in [(1, None), (2, Some("a6c85cf"))] {
        let invite = uac_request("INVITE", None, to_tag, cseq);
        let id = sim.server(&invite, udp(ALICE));
        sim.respond(0, id, &response_to(&invite, 200, "OK", Some("a6c85cf")));
        assert!(sim.table.request(id).is_none());
        // The retransmission is absorbed; the ACK of the 2xx (our To tag) is
        // the caller's; other To tags, CSeqs or Call-IDs are other requests.
        assert_eq!(sim.table.handle_request(sim.at(10), &invite), RequestOutcome::Retransmission { id, resent: false });
        let ack = uac_request("ACK", None, Some("a6c85cf"), cseq);
        assert_eq!(sim.table.handle_request(sim.at(20), &ack), RequestOutcome::Ack2xx { id });
        let t = text(invite.bytes());
        let to_line =
            format!("To: Bob <sip:bob@biloxi.com>{}\r\n", to_tag.map_or(String::new(), |t| format!(";tag={t}")));
        for (from, to) in [
            (format!("CSeq: {cseq} INVITE"), format!("CSeq: {} INVITE", cseq + 10)),
            ("Call-ID: a84b".into(), "Call-ID: b84b".into()),
            (to_line, "To: Bob <sip:bob@biloxi.com>;tag=zz\r\n".into()),
        ] {
            assert!(t.contains(&from), "{from}");
            let other = parse(&t.replacen(&from, &to, 1));
            assert_eq!(sim.table.handle_request(sim.at(30), &other), RequestOutcome::NoMatch, "{to}");
        }
        let cancel = uac_request("CANCEL", None, to_tag, cseq);
        assert_eq!(sim.table.find_cancelled(&cancel), Some(id));
        assert!(sim.drain().is_empty());
    }
}

#[test]
fn a_server_transaction_reads_back_the_request_it_received() {
    // It keeps the request's bytes, not its parsed form: what it reads back
    // is the same message, whether framed by a stream or a datagram, with a
    // branch or the RFC 2543 way.
    let sim = Sim::new();
    let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";
    let text = format!(
        "INVITE sip:bob@biloxi.com SIP/2.0\r\nVia: SIP/2.0/TCP pc33.atlanta.com;branch={INV_BRANCH}\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@biloxi.com>\r\nFrom: <sip:alice@atlanta.com>;tag=1928301774\r\n\
         Call-ID: stream@pc33\r\nCSeq: 7 INVITE\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let streamed = Message::parse(Bytes::from(text), Framing::Stream).unwrap();
    let legacy = uac_request("OPTIONS", None, Some("t1"), 3);
    for (req, dest) in [(&streamed, tcp(ALICE)), (&legacy, udp(ALICE))] {
        let id = sim.server(req, dest);
        let read = sim.table.request(id).expect("the request is kept");
        assert_eq!(read.bytes(), req.bytes());
        assert_eq!(
            (read.method(), read.cseq, read.call_id, read.to_tag, read.body),
            (req.method(), req.cseq, req.call_id, req.to_tag, req.body)
        );
        assert_eq!(read.headers.len(), req.headers.len());
        assert_eq!(sim.table.handle_request(sim.at(10), req), RequestOutcome::Retransmission { id, resent: false });
    }
    assert!(sim.table.request(TxnId(u64::MAX - 1)).is_none());
}

#[test]
fn a_2xx_sent_keeping_the_request_keeps_it() {
    let sim = Sim::new();
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 1);
    let id = sim.server(&invite, udp(ALICE));
    let ok = response_to(&invite, 200, "OK", Some("a6c85cf"));
    sim.table.send_response_keeping_request(sim.at(0), id, ok).unwrap();
    assert_eq!(sim.table.state(id), Some(State::Accepted));
    assert_eq!(sim.table.request(id).map(|r| r.bytes().clone()), Some(invite.bytes().clone()));
    assert_eq!(sim.table.handle_request(sim.at(10), &invite), RequestOutcome::Retransmission { id, resent: false });
}

#[test]
fn rfc2543_requests_differing_only_in_the_to_tag_keep_a_transaction_each() {
    // The To tag is not part of the index key: two such transactions share
    // one key, and each is found by its own tag (and freed alone).
    let sim = Sim::new();
    let first = uac_request("OPTIONS", None, Some("a"), 7);
    let second = uac_request("OPTIONS", None, Some("b"), 7);
    let a = sim.server(&first, udp(ALICE));
    let b = sim.server(&second, udp(ALICE));
    assert_ne!(a, b);
    assert_eq!(sim.table.create_server(&first, udp(ALICE)), Err(CreateError::Exists(a)));
    assert_eq!(sim.table.handle_request(sim.at(0), &first), RequestOutcome::Retransmission { id: a, resent: false });
    assert_eq!(sim.table.handle_request(sim.at(0), &second), RequestOutcome::Retransmission { id: b, resent: false });
    let third = uac_request("OPTIONS", None, Some("c"), 7);
    assert_eq!(sim.table.handle_request(sim.at(0), &third), RequestOutcome::NoMatch);
    // The first one answered, ended and freed: the second is still found.
    sim.respond(0, a, &response_to(&first, 200, "OK", Some("a")));
    sim.run(40_000);
    assert_eq!(sim.table.state(a), None);
    assert_eq!(sim.table.handle_request(sim.at(40_001), &first), RequestOutcome::NoMatch);
    assert_eq!(
        sim.table.handle_request(sim.at(40_001), &second),
        RequestOutcome::Retransmission { id: b, resent: false }
    );
}

// ---- the table --------------------------------------------------------------

#[test]
fn table_is_bounded_and_frees_on_timers() {
    let sim = Sim::with(TableConfig { shards: 4, max_transactions: 3, timers: TmTimers::default() });
    let a = uac_request("OPTIONS", Some("z9hG4bKa"), None, 1);
    let ida = sim.server(&a, udp(ALICE));
    sim.server(&uac_request("OPTIONS", Some("z9hG4bKb"), None, 1), udp(ALICE));
    sim.client(0, proxied("OPTIONS", "z9hG4bKc", 1), udp(BOB));
    assert_eq!(sim.table.len(), 3);
    let d = uac_request("OPTIONS", Some("z9hG4bKd"), None, 1);
    assert_eq!(sim.table.create_server(&d, udp(ALICE)), Err(CreateError::Full));
    assert_eq!(CreateError::Full.to_string(), "the transaction table is full");
    let e = sim.table.start_client(sim.at(0), proxied("OPTIONS", "z9hG4bKe", 1), udp(BOB), &ClientConfig::default());
    assert_eq!(e, Err(CreateError::Full));
    // One answered: J (wt_timer) ends it and frees its room.
    let ok = response_to(&a, 200, "OK", Some("t"));
    sim.table.send_response(sim.at(0), ida, ok).unwrap();
    sim.drain();
    sim.run(4_999);
    assert_eq!(sim.table.len(), 3, "J (5 s over UDP) still running");
    sim.run(5_000);
    assert_eq!(sim.table.len(), 2);
    assert!(sim.table.create_server(&d, udp(ALICE)).is_ok());
    // terminate() releases one at once (tm's t_release), freed after delete_timer.
    let b = sim.table.handle_request(sim.at(7_000), &uac_request("OPTIONS", Some("z9hG4bKb"), None, 1));
    let RequestOutcome::Retransmission { id: idb, .. } = b else { panic!("{b:?}") };
    assert_eq!(sim.table.terminate(sim.at(7_000), idb), Some(Event::Terminated(idb)));
    assert_eq!(sim.table.terminate(sim.at(7_000), idb), None);
    sim.run(9_000);
    assert_eq!(sim.table.len(), 2);
}

#[test]
fn many_transactions_across_shards() {
    let sim = Sim::with(TableConfig { shards: 8, max_transactions: 10_000, timers: TmTimers::default() });
    let mut ids = Vec::new();
    for n in 0..200 {
        let req = uac_request("INVITE", Some(&format!("z9hG4bKsrv{n}")), None, 1);
        let id = sim.server(&req, udp(ALICE));
        let cid = sim.client(0, proxied("INVITE", &format!("z9hG4bKcli{n}"), 1), udp(BOB));
        ids.push((req, id, cid));
    }
    let mut all: Vec<TxnId> = ids.iter().flat_map(|(_, a, b)| [*a, *b]).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 400);
    for (n, (req, id, cid)) in ids.iter().enumerate() {
        assert_eq!(sim.table.handle_request(sim.at(1), req), RequestOutcome::Retransmission { id: *id, resent: false });
        let resp = downstream(183, "INVITE", &format!("z9hG4bKcli{n}"), 1, "t");
        assert_eq!(
            sim.table.handle_response(sim.at(1), &resp),
            ResponseOutcome::Provisional { id: *cid, status: 183, first: true }
        );
    }
    // Every client times out at fr_inv (from its provisional at 1 ms).
    let (_, events) = sim.run(200_000);
    let timeouts = events.iter().filter(|(t, e)| *t == 120_001 && matches!(e, Event::ClientTimeout { .. })).count();
    assert_eq!(timeouts, 200);
    assert_eq!(sim.table.len(), 200, "the server transactions remain: never answered");
}

#[test]
fn misuse_is_refused() {
    let sim = Sim::new();
    let cid = sim.client(0, proxied("INVITE", OUT_BRANCH, 1), udp(BOB));
    let invite = uac_request("INVITE", Some(INV_BRANCH), None, 1);
    let resp = response_to(&invite, 200, "OK", Some("t"));
    assert_eq!(sim.table.send_response(sim.at(1), cid, resp.clone()), Err(SendError::NotServer));
    let sid = sim.server(&invite, udp(ALICE));
    assert_eq!(sim.table.send_response(sim.at(1), sid, Bytes::from_static(b"nonsense")), Err(SendError::Malformed));
    let req_bytes = invite.bytes().clone();
    assert_eq!(sim.table.send_response(sim.at(1), sid, req_bytes), Err(SendError::Malformed));
    for status_line in [&b"SIP/2.0 1x0 Trying\r\n\r\n"[..], b"SIP/2.0 18", b"SIP/2.0 2000 OK\r\n\r\n"] {
        let bad = Bytes::copy_from_slice(status_line);
        assert_eq!(sim.table.send_response(sim.at(1), sid, bad), Err(SendError::Malformed), "{status_line:?}");
    }
    let start = |b: Bytes| sim.table.start_client(sim.at(1), b, udp(BOB), &ClientConfig::default());
    assert_eq!(start(proxied("INVITE", "1234", 1)), Err(CreateError::NoBranch));
    assert_eq!(start(proxied("ACK", "z9hG4bKack", 1)), Err(CreateError::Ack));
    assert_eq!(start(Bytes::from_static(b"INVITE")), Err(CreateError::Malformed));
    assert_eq!(start(resp), Err(CreateError::NotARequest));
    assert_eq!(sim.table.build_cancel(sid), None);
    assert_eq!(sim.table.request(sid).map(|m| m.cseq), Some(1));
    assert_eq!(sim.table.dest(cid), Some(udp(BOB)));
}

/// A request started from what tm built ([`Table::start_built`], not parsed
/// again) behaves as the same request parsed ([`Table::start_client`]): the
/// same retransmissions, response matching, request, CANCEL and ACK of a
/// non-2xx final.
#[test]
fn a_built_request_behaves_as_the_same_request_parsed() {
    // What each way gives: the transmits' times and bytes, the CANCEL, the ACK.
    let run = |built: bool| {
        let sim = Sim::new();
        let start = |method: &'static str, branch: &'static str| {
            let bytes = proxied(method, branch, 1);
            if built {
                let b = Built {
                    bytes: bytes.clone(),
                    method: Method::parse(method.as_bytes()),
                    method_text: method,
                    branch,
                };
                let id = sim.table.start_built(sim.at(0), b, udp(BOB), &ClientConfig::default()).unwrap();
                let out = sim.drain();
                assert_eq!((out.len(), &out[0].bytes, out[0].dest), (1, &bytes, udp(BOB)));
                id
            } else {
                sim.client(0, bytes, udp(BOB))
            }
        };
        let invite = start("INVITE", OUT_BRANCH);
        let other = start("FOO", "z9hG4bKfoo");
        // Timer A's retransmissions, and the extension method's timer E.
        let (sent, _) = sim.run(1_600);
        // (Deadlines due together leave shard by shard: each table hashes its
        // keys, and so picks their shards, with keys of its own.)
        let mut sent: Vec<(u64, Bytes)> = sent.into_iter().map(|(t, x)| (t, x.bytes)).collect();
        sent.sort();
        // Responses match by branch and CSeq method (an extension method by its text).
        let ringing = downstream(180, "INVITE", OUT_BRANCH, 1, "t1");
        assert_eq!(
            sim.table.handle_response(sim.at(1_700), &ringing),
            ResponseOutcome::Provisional { id: invite, status: 180, first: true }
        );
        let foo_ok = downstream(200, "FOO", "z9hG4bKfoo", 1, "t2");
        assert_eq!(
            sim.table.handle_response(sim.at(1_700), &foo_ok),
            ResponseOutcome::Final { id: other, status: 200 }
        );
        let bar_ok = downstream(200, "BAR", "z9hG4bKfoo", 1, "t2");
        assert_eq!(sim.table.handle_response(sim.at(1_700), &bar_ok), ResponseOutcome::NoMatch);
        // The request and its CANCEL, read from the request as sent.
        assert_eq!(sim.table.request(invite).map(|m| m.bytes().clone()), Some(proxied("INVITE", OUT_BRANCH, 1)));
        let cancel = sim.table.build_cancel(invite).expect("a CANCEL");
        // A non-2xx final is ACKed hop by hop.
        let busy = downstream(486, "INVITE", OUT_BRANCH, 1, "t1");
        assert_eq!(sim.table.handle_response(sim.at(1_800), &busy), ResponseOutcome::Final { id: invite, status: 486 });
        let ack = sim.drain().pop().expect("an ACK").bytes;
        // The same branch again is the same transaction.
        let again = Built {
            bytes: proxied("INVITE", OUT_BRANCH, 1),
            method: Method::Invite,
            method_text: "INVITE",
            branch: OUT_BRANCH,
        };
        assert_eq!(
            sim.table.start_built(sim.at(1_900), again, udp(BOB), &ClientConfig::default()),
            Err(CreateError::Exists(invite))
        );
        (sent, cancel, ack)
    };
    let (sent, cancel, ack) = run(true);
    assert_eq!(sent.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [500, 500, 1_500, 1_500]);
    assert!(text(&cancel).starts_with("CANCEL sip:bob@192.0.2.4 SIP/2.0\r\n"), "{}", text(&cancel));
    let via =
        format!("ACK sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch={OUT_BRANCH}\r\n");
    assert!(text(&ack).starts_with(&via), "{}", text(&ack));
    assert_eq!((sent, cancel, ack), run(false));
}

/// A built request needs an RFC 3261 branch, and an ACK starts nothing.
#[test]
fn a_built_request_without_a_key_is_refused() {
    let sim = Sim::new();
    let start = |method: Method, text: &'static str, branch: &'static str| {
        let b = Built { bytes: proxied(text, branch, 1), method, method_text: text, branch };
        sim.table.start_built(sim.at(0), b, udp(BOB), &ClientConfig::default())
    };
    assert_eq!(start(Method::Invite, "INVITE", "1234"), Err(CreateError::NoBranch));
    assert_eq!(start(Method::Invite, "INVITE", "z9hG4bK"), Err(CreateError::NoBranch));
    assert_eq!(start(Method::Ack, "ACK", "z9hG4bKack"), Err(CreateError::Ack));
    assert!(sim.drain().is_empty());
}

// ---- output order ---------------------------------------------------------------

/// What transactions of different shards queue leaves in the order queued: a
/// proxy's 100 Trying (server transaction) goes before the INVITE it relays
/// (client transaction), whichever shards the two hash to.
#[test]
fn transmits_leave_in_the_order_they_were_queued_across_shards() {
    let sim = Sim::new();
    let mut expected = Vec::new();
    for i in 0..24u32 {
        let branch = format!("z9hG4bK-order-{i}");
        let invite = uac_request("INVITE", Some(&branch), None, 1 + i);
        let id = sim.server(&invite, udp(ALICE));
        let trying = response_to(&invite, 100, "Trying", None);
        sim.table.send_response(sim.at(0), id, trying.clone()).unwrap();
        let out = proxied("INVITE", &format!("z9hG4bK-order-out-{i}"), 1 + i);
        sim.table.start_client(sim.at(0), out.clone(), udp(BOB), &ClientConfig::default()).unwrap();
        expected.push(trying);
        expected.push(out);
        if i % 2 == 0 {
            // Half of them drained one at a time, the rest in one go.
            let got: Vec<Bytes> = sim.drain().into_iter().map(|t| t.bytes).collect();
            assert_eq!(got, expected);
            expected.clear();
        }
    }
    let got: Vec<Bytes> = sim.table.drain_transmits().into_iter().map(|t| t.bytes).collect();
    assert_eq!(got, expected);
    assert!(sim.table.poll_transmit().is_none());
    assert!(sim.table.drain_transmits().is_empty());
}

// ---- Waking the timer task ---------------------------------------------------

#[test]
fn only_a_deadline_before_the_timer_tasks_sleep_asks_to_wake_it() {
    let sim = Sim::new();
    // Before the task ever said it sleeps, any deadline asks (none is missed).
    sim.client(0, proxied("INVITE", "z9hG4bK-w1", 1), udp(BOB));
    assert!(sim.table.take_wake());
    assert!(!sim.table.take_wake(), "asked once");

    // Asleep until timer A's first firing (500 ms): a later deadline (the next
    // client's A at 600 ms, its B at 30 s) does not ask.
    sim.table.timer_awake();
    assert_eq!(sim.table.poll_timeout(), Some(sim.at(500)));
    sim.table.timer_sleeps_until(sim.at(500));
    sim.client(100, proxied("INVITE", "z9hG4bK-w2", 2), udp(BOB));
    assert!(!sim.table.take_wake());

    // Asleep until a second, capped: the next client's 500 ms deadline asks.
    sim.table.timer_sleeps_until(sim.at(1000));
    sim.client(200, proxied("INVITE", "z9hG4bK-w3", 3), udp(BOB));
    assert!(sim.table.take_wake());

    // Awake (between its wake-up and its next sleep): every deadline asks.
    sim.table.timer_awake();
    sim.client(300, proxied("INVITE", "z9hG4bK-w4", 4), udp(BOB));
    assert!(sim.table.take_wake());
}

#[test]
fn the_timer_task_wakes_on_tick_boundaries_firing_every_deadline_of_the_tick() {
    let sim = Sim::new();
    let start = |now: Instant, branch: &str, cseq: u32| {
        let req = proxied("INVITE", branch, cseq);
        sim.table.start_client(now, req, udp(BOB), &ClientConfig::default()).unwrap();
        assert_eq!(sim.drain().len(), 1);
    };
    let first = sim.client(0, proxied("INVITE", "z9hG4bK-tick1", 1), udp(BOB));
    // Timer A at 500 ms; the task wakes at the tick boundary at or after it.
    let wake = sim.table.next_wake().unwrap();
    assert!(wake >= sim.at(500) && wake < sim.at(500) + TIMER_TICK, "{:?}", wake - sim.at(500));
    sim.table.timer_awake();
    assert!(sim.table.take_wake());
    sim.table.timer_sleeps_until(wake);
    // A deadline before the wake-up but within its tick does not wake the task…
    let a = Duration::from_millis(500);
    start(wake - a - Duration::from_nanos(1), "z9hG4bK-tick2", 2);
    assert!(!sim.table.take_wake());
    // … one a tick earlier does.
    start(wake - a - TIMER_TICK - Duration::from_nanos(1), "z9hG4bK-tick3", 3);
    assert!(sim.table.take_wake());
    // One wake-up at the boundary retransmits all three.
    sim.table.handle_timeout(wake);
    let sent = sim.drain();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent.iter().any(|t| t.txn == first));
}

#[test]
fn many_timers_spread_past_the_wheel_fire_each_at_its_deadline_in_order() {
    // 400 unanswered OPTIONS started over 12 s (several per 10 ms tick, the
    // span past the near wheel's), the timers run as the clock goes: timer E
    // at +0.5, 1.5, 3.5, 7.5, … 27.5 s (doubling up to T2), F at +30 s.
    let sim = Sim::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut starts: Vec<u64> = (0..400)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % 12_000
        })
        .collect();
    starts.sort_unstable();
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    let mut started = HashMap::new();
    for (i, &start) in starts.iter().enumerate() {
        let (s, e) = sim.run(start);
        sent.extend(s);
        events.extend(e);
        let id = sim.client(start, proxied("OPTIONS", &format!("z9hG4bK-spread-{i}"), 1), udp(BOB));
        started.insert(id, start);
    }
    let (s, e) = sim.run(60_000);
    sent.extend(s);
    events.extend(e);

    assert!(sent.windows(2).all(|w| w[0].0 <= w[1].0), "retransmissions in time order");
    assert!(events.windows(2).all(|w| w[0].0 <= w[1].0), "events in time order");
    let retransmits = [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500];
    for (&id, &start) in &started {
        let times: Vec<u64> = sent.iter().filter(|(_, t)| t.txn == id).map(|(ms, _)| ms - start).collect();
        assert_eq!(times, retransmits, "{id} started at {start} ms");
        let timeout = events.iter().find(|(_, e)| *e == Event::ClientTimeout { id, provisional: false });
        assert_eq!(timeout.map(|(ms, _)| ms - start), Some(30_000), "{id} started at {start} ms");
        assert_eq!(sim.table.state(id), None, "freed after delete_timer");
    }
    assert_eq!(sim.table.poll_timeout(), None);
}

#[test]
fn timers_due_together_fire_in_the_order_of_their_deadlines() {
    // Three INVITEs started latest first, 3 ms apart: their timers B fall in
    // one tick, set in the reverse of their order. One shard: across shards
    // the order is each shard's.
    let sim = Sim::with(TableConfig { shards: 1, ..TableConfig::default() });
    let ids: Vec<TxnId> = [6, 3, 0]
        .iter()
        .map(|&ms| sim.client(ms, proxied("INVITE", &format!("z9hG4bK-order{ms}"), 1), udp(BOB)))
        .collect();
    let timeouts: Vec<TxnId> = sim
        .table
        .handle_timeout(sim.at(30_010))
        .into_iter()
        .filter_map(|e| match e {
            Event::ClientTimeout { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, [ids[2], ids[1], ids[0]]);
}

#[test]
fn far_deadlines_fire_when_the_clock_jumps_past_them_and_stale_ones_never() {
    let sim = Sim::new();
    // Both INVITEs' timer B (30 s) wait in the far buckets.
    let silent = sim.client(0, proxied("INVITE", "z9hG4bK-far1", 1), udp(BOB));
    let rang = sim.client(0, proxied("INVITE", "z9hG4bK-far2", 2), udp(BOB));
    let trying = downstream(100, "INVITE", "z9hG4bK-far2", 2, "b");
    assert!(matches!(sim.table.handle_response(sim.at(100), &trying), ResponseOutcome::Provisional { .. }));
    assert!(sim.drain().is_empty());
    // One call at 45 s, as a timer task late by 15 s would make: the silent
    // one times out; the one that rang waits for fr_inv (100 ms + 120 s), its
    // stale 30 s deadline never fires.
    let events = sim.table.handle_timeout(sim.at(45_000));
    assert_eq!(events, [Event::ClientTimeout { id: silent, provisional: false }, Event::Terminated(silent)]);
    assert_eq!(sim.table.state(rang), Some(State::Proceeding));
    assert_eq!(sim.table.poll_timeout(), Some(sim.at(47_000)), "the silent one's delete_timer");
    sim.table.handle_timeout(sim.at(47_000));
    assert_eq!(sim.table.state(silent), None);
    assert_eq!(sim.table.poll_timeout(), Some(sim.at(120_100)));
    let (_, events) = sim.run(200_000);
    assert_eq!(events[0], (120_100, Event::ClientTimeout { id: rang, provisional: true }));
}
