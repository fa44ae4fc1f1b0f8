//! The floor of `cargo xtask bench`'s relay scenarios: a UDP relay that does
//! nothing but one `recv_from` and one `send_to` per datagram, to show what
//! the kernel alone costs per call on loopback.
//!
//! It binds 127.0.0.1:5060 (where the harness's SIPp UAC sends) and runs two
//! threads (Kamailio's children=2, serc's `--workers 2`) on clones of that one
//! socket. A datagram from the SIPp UAS (source port 5070) goes to the UAC
//! (127.0.0.1:5061), anything else to the UAS (127.0.0.1:5070). No SIP
//! parsing: the UAS answers to the address it received from, this relay, so
//! calls complete through it. It runs until killed.

use std::net::{SocketAddr, UdpSocket};
use std::thread;

const LISTEN: &str = "127.0.0.1:5060";
const UAC: &str = "127.0.0.1:5061";
const UAS: &str = "127.0.0.1:5070";
const THREADS: usize = 2;

fn relay(socket: &UdpSocket, uac: SocketAddr, uas: SocketAddr) -> ! {
    let mut buf = [0u8; 65_535];
    loop {
        // Errors (an ICMP unreachable reported on the socket) drop the datagram, as UDP does.
        let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
        let to = if from.port() == uas.port() { uac } else { uas };
        let _ = socket.send_to(&buf[..len], to);
    }
}

fn main() {
    let uac: SocketAddr = UAC.parse().expect("a socket address");
    let uas: SocketAddr = UAS.parse().expect("a socket address");
    let socket = UdpSocket::bind(LISTEN).unwrap_or_else(|e| {
        eprintln!("udp-floor: cannot bind udp {LISTEN}: {e}");
        std::process::exit(1)
    });
    eprintln!("udp-floor: listening on udp:{LISTEN}, {THREADS} threads; from :{} to {UAC}, else to {UAS}", uas.port());
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let socket = socket.try_clone().expect("a clone of the socket");
            thread::spawn(move || relay(&socket, uac, uas))
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}
