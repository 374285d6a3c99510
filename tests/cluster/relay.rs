//! A UDP relay that makes a link slow and lossy (the kernel here has no netem): datagrams that
//! reach its front address go on to one upstream address and the answers come back, each
//! datagram, in each direction, held for a fixed delay and dropped with a fixed probability.
//! Every client address gets its own upstream socket, as behind a NAT.

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the relay does to every datagram.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Probability of a drop.
    pub loss: f64,
    /// Added to every datagram's way, in each direction.
    pub delay: Duration,
}

#[derive(Default)]
pub struct Counts {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
}

pub struct Relay {
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// A datagram due at `due` to leave through `socket` for `to` (`None`: its connected peer).
struct Pending {
    due: Instant,
    socket: Arc<UdpSocket>,
    to: Option<SocketAddr>,
    bytes: Vec<u8>,
}

/// Drop decisions: xorshift64*, seeded per direction.
struct Coin(u64);

impl Coin {
    fn lands_below(&mut self, p: f64) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

const POLL: Duration = Duration::from_millis(20);

impl Relay {
    /// Listens on `front` (in the calling thread's network) and relays to `upstream`.
    pub fn start(front: SocketAddr, upstream: SocketAddr, link: Link) -> std::io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind(front)?);
        socket.set_read_timeout(Some(POLL))?;
        let (stop, counts) = (Arc::new(AtomicBool::new(false)), Arc::new(Counts::default()));
        let (tx, rx) = channel::<Pending>();
        let sender = {
            let stop = stop.clone();
            std::thread::spawn(move || send_when_due(rx, &stop))
        };
        let receiver = {
            let (stop, counts) = (stop.clone(), counts.clone());
            std::thread::spawn(move || relay_from_clients(socket, upstream, link, tx, &stop, &counts))
        };
        Ok(Self { counts, stop, threads: vec![sender, receiver] })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Queues `bytes` for sending after the link's delay, unless the coin drops it.
fn pass(tx: &Sender<Pending>, link: Link, coin: &mut Coin, counts: &Counts, socket: &Arc<UdpSocket>, to: Option<SocketAddr>, bytes: &[u8]) {
    if coin.lands_below(link.loss) {
        counts.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    counts.forwarded.fetch_add(1, Ordering::Relaxed);
    let _ = tx.send(Pending { due: Instant::now() + link.delay, socket: socket.clone(), to, bytes: bytes.to_vec() });
}

fn relay_from_clients(front: Arc<UdpSocket>, upstream: SocketAddr, link: Link, tx: Sender<Pending>, stop: &Arc<AtomicBool>, counts: &Arc<Counts>) {
    let mut sessions: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut answers = Vec::new();
    let mut coin = Coin(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, client)) = front.recv_from(&mut buf) else { continue };
        let session = match sessions.get(&client) {
            Some(s) => s.clone(),
            None => {
                let unspecified: SocketAddr = if upstream.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("an address");
                let Ok(s) = UdpSocket::bind(unspecified).and_then(|s| s.connect(upstream).map(|()| s)) else { continue };
                let s = Arc::new(s);
                let _ = s.set_read_timeout(Some(POLL));
                sessions.insert(client, s.clone());
                let (front, tx, stop, counts, back) = (front.clone(), tx.clone(), stop.clone(), counts.clone(), s.clone());
                let seed = 0x2545_f491 ^ u64::from(client.port());
                answers.push(std::thread::spawn(move || relay_answers(&back, &front, client, link, &tx, &stop, &counts, seed)));
                s
            }
        };
        pass(&tx, link, &mut coin, counts, &session, None, &buf[..n]);
    }
    for a in answers {
        let _ = a.join();
    }
}

#[allow(clippy::too_many_arguments)]
fn relay_answers(upstream: &UdpSocket, front: &Arc<UdpSocket>, client: SocketAddr, link: Link, tx: &Sender<Pending>, stop: &AtomicBool, counts: &Counts, seed: u64) {
    let mut coin = Coin(seed | 1);
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(n) = upstream.recv(&mut buf) {
            pass(tx, link, &mut coin, counts, front, Some(client), &buf[..n]);
        }
    }
}

/// Sends queued datagrams when due (every datagram waits the same delay, so the queue is in
/// order of due time).
fn send_when_due(rx: Receiver<Pending>, stop: &AtomicBool) {
    let mut queue: VecDeque<Pending> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        let wait = queue.front().map_or(POLL, |p| p.due.saturating_duration_since(Instant::now()).min(POLL));
        if let Ok(p) = rx.recv_timeout(wait) {
            queue.push_back(p);
            queue.extend(rx.try_iter());
        }
        let now = Instant::now();
        while queue.front().is_some_and(|p| p.due <= now) {
            let p = queue.pop_front().expect("a due datagram");
            let _ = match p.to {
                Some(to) => p.socket.send_to(&p.bytes, to),
                None => p.socket.send(&p.bytes),
            };
        }
    }
}
