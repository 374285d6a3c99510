//! The QUIC transport (quinn 0.11, rustls with ring): per actor, one long-lived uni stream
//! each way (the actor's Hello then batches; the learner's Welcome then credit, sent ahead of
//! everything else) and one short uni stream per parameter version from the learner, the
//! next sent (the newest by then) once the actor has the last; the framing of [`crate::wire`], TLS 1.3 with
//! certificates of the run's CA on both sides, and the run token in `Hello`. The async
//! runtime lives on its own I/O thread; the learner and the actors see channels and a
//! newest-only parameter slot, as in the local runtime.

mod certs;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use quinn::{Connection, ConnectionError, Endpoint, IdleTimeout, RecvStream, TransportConfig, VarInt};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

pub use certs::{TlsFiles, ensure_ca, ensure_token, make_node, read_token, run_token};

use crate::message::TransitionBatch;
mod spread;

pub use spread::{LearnerAddress, Spread};

use crate::wire::{ActorMessage, ActorStats, FrameDecoder, Hello, LearnerMessage, MAX_FRAME_BYTES, PROTOCOL_VERSION, Welcome, WireError, encode_frame, preamble};

#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error("certificates: {0}")]
    Certs(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("network: {0}")]
    Io(String),
    #[error("the learner refused this actor: {0}")]
    Refused(String),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("link closed: {0}")]
    Closed(String),
    /// The learner sent this actor to another learner of the run.
    #[error("sent to the learner at {}", .0.addr)]
    Redirected(LearnerAddress),
}

const ALPN: &[u8] = b"spikerl";
/// What a learner closes its connections with when the run ends (actors then stop).
pub const RUN_OVER: &str = "the run is over";
/// How long a peer has to say Hello (or Welcome) before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Batches an actor's link holds before `send` blocks (back-pressure to the actor).
const SEND_QUEUE: usize = 8;
/// Env steps an actor may be ahead of what the learner has consumed from it (at least four
/// steps of each of its envs).
const CREDIT_WINDOW: u64 = 256;
/// Parameter streams a learner may have open towards an actor at once (one is in flight; the
/// others are closing).
const PARAM_STREAMS: u32 = 4;

fn tls_err(e: impl std::fmt::Display) -> QuicError {
    QuicError::Tls(e.to_string())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `peer_uni_streams`: how many streams the peer may have open towards us at once — an actor's
/// one towards its learner; a learner's control stream and parameter streams towards an actor.
fn transport_config(peer_uni_streams: u32) -> TransportConfig {
    let mut t = TransportConfig::default();
    t.stream_receive_window(VarInt::from_u32(16 << 20));
    t.receive_window(VarInt::from_u32(64 << 20));
    t.send_window(64 << 20);
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    t.max_idle_timeout(Some(IdleTimeout::try_from(Duration::from_secs(10)).expect("10 s is a valid idle timeout")));
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    t.max_concurrent_uni_streams(VarInt::from_u32(peer_uni_streams));
    t
}

fn server_config(tls: &TlsFiles) -> Result<quinn::ServerConfig, QuicError> {
    let loaded = tls.load()?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(loaded.roots.clone(), provider()).build().map_err(tls_err)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(loaded.chain, loaded.key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(config).map_err(tls_err)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport_config(1)));
    Ok(server)
}

fn client_config(tls: &TlsFiles) -> Result<quinn::ClientConfig, QuicError> {
    let loaded = tls.load()?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_root_certificates(loaded.roots)
        .with_client_auth_cert(loaded.chain, loaded.key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(config).map_err(tls_err)?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(transport_config(PARAM_STREAMS + 1)));
    Ok(client)
}

fn io_runtime() -> Result<Runtime, QuicError> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("spikerl-quic").enable_all().build().map_err(|e| QuicError::Io(e.to_string()))
}

/// One I/O thread for every actor link of this process (a machine's actor threads share it).
fn actor_runtime() -> Result<&'static Runtime, QuicError> {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = io_runtime()?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Equal strings, in time that does not depend on where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads from `recv` into `decoder` until one whole message is there.
async fn read_message<M: serde::de::DeserializeOwned>(recv: &mut RecvStream, decoder: &mut FrameDecoder, buf: &mut [u8]) -> Result<M, String> {
    loop {
        if let Some(m) = decoder.next_message::<M>().map_err(|e| e.to_string())? {
            return Ok(m);
        }
        match recv.read(buf).await {
            Ok(Some(n)) => decoder.push(&buf[..n]),
            Ok(None) => return Err("the peer finished its stream".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn close_reason(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ApplicationClosed(c) => String::from_utf8_lossy(&c.reason).into_owned(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Learner side.

/// What a learner tells connecting actors, besides the current parameters.
#[derive(Debug, Clone)]
pub struct LearnerOptions {
    pub listen: SocketAddr,
    pub tls: TlsFiles,
    pub token: String,
    pub run_id: String,
    pub env_id: String,
    pub act_noise: f32,
    pub random_steps: u64,
    /// With several learners, on the one actors dial: where to send new actors.
    pub spread: Option<Arc<Spread>>,
}

/// Something that happened to an actor's connection, for the learner's report. `actor_id`
/// is the learner's name for the connection — assigned when it says Hello, never reused — so
/// that two connections claiming one id (containers with equal process ids, a reconnect while
/// the old connection lingers, an impostor) never share credit or a report; `claimed_id` is
/// what the actor called itself.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    Connected { actor_id: u32, claimed_id: u32, addr: SocketAddr, envs: u32 },
    /// An actor sent on to another learner of the run.
    Redirected { addr: SocketAddr, to: SocketAddr },
    Refused { addr: SocketAddr, reason: String },
    Disconnected { actor_id: u32, reason: String },
    Stats { actor_id: u32, stats: ActorStats },
    /// A batch dropped on arrival: more env steps than the learner had granted.
    BatchRefused { actor_id: u32, reason: String },
}

/// The newest `Params` frame (encoded once per version) and the raw `ParamSet` bytes.
type ParamsSlot = (Arc<Vec<u8>>, Arc<Vec<u8>>);

struct Shared {
    options: LearnerOptions,
    /// Uniform-random steps the next actor to connect is told to take.
    random_steps: std::sync::atomic::AtomicU64,
    params: watch::Sender<ParamsSlot>,
    batches: Sender<TransitionBatch>,
    events: Sender<LinkEvent>,
    /// Each connection's credit line (env steps to grant).
    credit: Mutex<HashMap<u32, mpsc::UnboundedSender<u64>>>,
    /// The id the next connection gets.
    next_id: std::sync::atomic::AtomicU32,
}

/// A learner's end: batches from every connected actor, and the parameters it broadcasts.
pub struct LearnerLink {
    pub batches: Receiver<TransitionBatch>,
    pub events: Receiver<LinkEvent>,
    shared: Arc<Shared>,
    endpoint: Endpoint,
    local_addr: SocketAddr,
    runtime: Runtime,
}

impl LearnerLink {
    /// Listens on `options.listen`; `params` is the encoded `ParamSet` new actors start from.
    /// Up to `queue` batches wait for the learner before the actors' streams are paused.
    pub fn listen(options: LearnerOptions, params: Vec<u8>, queue: usize) -> Result<Self, QuicError> {
        let server = server_config(&options.tls)?;
        let runtime = io_runtime()?;
        let endpoint = runtime.block_on(async { Endpoint::server(server, options.listen) }).map_err(|e| QuicError::Io(format!("cannot listen on {}: {e}", options.listen)))?;
        let local_addr = endpoint.local_addr().map_err(|e| QuicError::Io(e.to_string()))?;
        let (batch_tx, batches) = bounded(queue.max(1));
        let (event_tx, events) = unbounded();
        let (params_tx, _) = watch::channel(Self::params_frame(params));
        let random_steps = std::sync::atomic::AtomicU64::new(options.random_steps);
        let shared = Arc::new(Shared { options, random_steps, params: params_tx, batches: batch_tx, events: event_tx, credit: Mutex::new(HashMap::new()), next_id: std::sync::atomic::AtomicU32::new(1) });
        let (accepting, state) = (endpoint.clone(), shared.clone());
        runtime.spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                tokio::spawn(serve(incoming, state.clone()));
            }
        });
        Ok(Self { batches, events, shared, endpoint, local_addr, runtime })
    }

    fn params_frame(params: Vec<u8>) -> ParamsSlot {
        let message = LearnerMessage::Params(params);
        let mut frame = Vec::new();
        encode_frame(&message, &mut frame).expect("a ParamSet fits in a frame");
        let LearnerMessage::Params(params) = message else { unreachable!() };
        (Arc::new(frame), Arc::new(params))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sends an encoded `ParamSet` to every actor. A slow actor gets the newest version when
    /// its stream has room, never a backlog.
    pub fn publish(&self, params: Vec<u8>) {
        self.shared.params.send_replace(Self::params_frame(params));
    }

    /// The learner took `steps` env steps of `actor_id`'s batches (the connection's id, as
    /// stamped on them): that actor may take as many more.
    pub fn consumed(&self, actor_id: u32, steps: u64) {
        if let Some(line) = self.shared.credit.lock().expect("credit lines").get(&actor_id) {
            let _ = line.send(steps);
        }
    }

    /// Uniform-random steps the next actors to connect are told to take.
    pub fn set_random_steps(&self, steps: u64) {
        self.shared.random_steps.store(steps, std::sync::atomic::Ordering::Relaxed);
    }

    /// Says goodbye to every actor and stops listening.
    pub fn close(self, reason: &str) {
        self.endpoint.close(VarInt::from_u32(0), reason.as_bytes());
        let endpoint = self.endpoint.clone();
        self.runtime.block_on(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        });
    }
}

async fn serve(incoming: quinn::Incoming, shared: Arc<Shared>) {
    let addr = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = shared.events.send(LinkEvent::Refused { addr, reason: format!("TLS handshake failed: {e}") });
            return;
        }
    };
    let mut actor_id = None;
    let result = session(&conn, &shared, &mut actor_id).await;
    let reason = match &result {
        Ok(reason) | Err(reason) => reason.clone(),
    };
    conn.close(VarInt::from_u32(if result.is_ok() { 0 } else { 1 }), reason.as_bytes());
    let _ = shared.events.send(match actor_id {
        Some(actor_id) => LinkEvent::Disconnected { actor_id, reason },
        None => LinkEvent::Refused { addr, reason },
    });
}

/// One actor's connection, from Hello to its end; `Ok` holds a goodbye, `Err` what was wrong.
async fn session(conn: &Connection, shared: &Shared, actor_id: &mut Option<u32>) -> Result<String, String> {
    let mut recv = match tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.accept_uni()).await {
        Ok(Ok(recv)) => recv,
        Ok(Err(e)) => return Err(close_reason(&e)),
        Err(_) => return Err("no stream within the handshake timeout".into()),
    };
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 1 << 16];
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_message::<ActorMessage>(&mut recv, &mut decoder, &mut buf)).await {
        Ok(Ok(ActorMessage::Hello(hello))) => hello,
        Ok(Ok(_)) => return Err("the first message was not Hello".into()),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("no Hello within the handshake timeout".into()),
    };
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(format!("protocol version {}, this learner speaks {PROTOCOL_VERSION}", hello.protocol_version));
    }
    if !same_token(&hello.auth, &shared.options.token) {
        return Err("wrong run token".into());
    }
    let mut send = conn.open_uni().await.map_err(|e| close_reason(&e))?;
    if let Some(to) = shared.options.spread.as_ref().and_then(|s| s.pick()) {
        let mut out = preamble().to_vec();
        encode_frame(&LearnerMessage::Redirect { to: to.addr, server_name: to.server_name }, &mut out).map_err(|e| e.to_string())?;
        send.write_all(&out).await.map_err(|e| e.to_string())?;
        let _ = send.finish();
        // Until the actor has read it (it closes), or a little while.
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.closed()).await;
        let _ = shared.events.send(LinkEvent::Redirected { addr: conn.remote_address(), to: to.addr });
        return Ok(format!("sent to the learner at {}", to.addr));
    }
    let mut params_rx = shared.params.subscribe();
    let current = params_rx.borrow_and_update().1.clone();
    let o = &shared.options;
    let welcome = LearnerMessage::Welcome(Welcome {
        run_id: o.run_id.clone(),
        env_id: o.env_id.clone(),
        act_noise: o.act_noise,
        random_steps: shared.random_steps.load(std::sync::atomic::Ordering::Relaxed),
        params: current.to_vec(),
    });
    let mut out = preamble().to_vec();
    encode_frame(&welcome, &mut out).map_err(|e| e.to_string())?;
    let window = CREDIT_WINDOW.max(4 * u64::from(hello.envs));
    encode_frame(&LearnerMessage::Credit { steps: window }, &mut out).map_err(|e| e.to_string())?;
    // Env steps granted and not yet received: what the actor may still send.
    let granted = Arc::new(std::sync::atomic::AtomicU64::new(window));
    send.write_all(&out).await.map_err(|e| e.to_string())?;
    let (credit_tx, mut credit_rx) = mpsc::unbounded_channel::<u64>();
    let id = shared.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.credit.lock().expect("credit lines").insert(id, credit_tx);
    *actor_id = Some(id);
    let _ = shared.events.send(LinkEvent::Connected { actor_id: id, claimed_id: hello.actor_id, addr: conn.remote_address(), envs: hello.envs });
    let grants = granted.clone();

    // Out: credit as the learner consumes, on the control stream, ahead of any parameters
    // (on a slow or lossy link a parameter set takes many round trips; credit must not wait
    // behind it, or the actor idles).
    let _ = send.set_priority(1);
    let credit_writer = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(mut steps) = credit_rx.recv().await {
            while let Ok(more) = credit_rx.try_recv() {
                steps += more;
            }
            // Counted before the actor can read it.
            grants.fetch_add(steps, std::sync::atomic::Ordering::SeqCst);
            out.clear();
            encode_frame(&LearnerMessage::Credit { steps }, &mut out).expect("a credit frame encodes");
            if send.write_all(&out).await.is_err() {
                return;
            }
        }
    });
    // And parameters, one version at a time, each on a stream of its own: the next goes once
    // the actor has the last one whole, and is the newest by then. A slow link so carries no
    // backlog of stale versions (nor replaces a version on the way before it ever arrives).
    let params_conn = conn.clone();
    let params_writer = tokio::spawn(async move {
        while params_rx.changed().await.is_ok() {
            let frame = params_rx.borrow_and_update().0.clone();
            let Ok(mut stream) = params_conn.open_uni().await else { return };
            if stream.write_all(&preamble()).await.is_err() || stream.write_all(&frame).await.is_err() {
                return;
            }
            let _ = stream.finish();
            if stream.stopped().await.is_err() {
                return;
            }
        }
    });
    let result = read_batches(&mut recv, &mut decoder, &mut buf, shared, id, &granted).await;
    credit_writer.abort();
    params_writer.abort();
    shared.credit.lock().expect("credit lines").remove(&id);
    result
}

async fn read_batches(recv: &mut RecvStream, decoder: &mut FrameDecoder, buf: &mut [u8], shared: &Shared, actor_id: u32, granted: &std::sync::atomic::AtomicU64) -> Result<String, String> {
    use std::sync::atomic::Ordering;
    loop {
        match read_message::<ActorMessage>(recv, decoder, buf).await? {
            ActorMessage::Batch(mut batch) => {
                // Credit is enforced here: steps beyond the grant never reach the learner's
                // queue, so an actor that ignores credit cannot crowd out the others.
                let steps = batch.len() as u64;
                if granted.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |g| g.checked_sub(steps)).is_err() {
                    let reason = format!("a batch of {steps} env steps beyond the {} granted", granted.load(Ordering::SeqCst));
                    let _ = shared.events.send(LinkEvent::BatchRefused { actor_id, reason });
                    continue;
                }
                // The connection, not the payload, says who sent it.
                batch.actor_id = actor_id;
                loop {
                    match shared.batches.try_send(batch) {
                        Ok(()) => break,
                        // Back-pressure: stop reading, QUIC flow control pauses the actor.
                        Err(TrySendError::Full(b)) => {
                            batch = b;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        Err(TrySendError::Disconnected(_)) => return Ok("the learner stopped".into()),
                    }
                }
            }
            ActorMessage::Stats(stats) => {
                let _ = shared.events.send(LinkEvent::Stats { actor_id, stats });
            }
            ActorMessage::Goodbye { reason } => return Ok(format!("goodbye: {reason}")),
            ActorMessage::Hello(_) => return Err("a second Hello".into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Actor side.

#[derive(Debug, Clone)]
pub struct ActorOptions {
    pub connect: SocketAddr,
    /// The name in the learner's certificate (a host name or the IP it was made for).
    pub server_name: String,
    pub tls: TlsFiles,
    pub token: String,
    pub actor_id: u32,
    pub envs: u32,
}

/// An actor's end: what the learner said, a way to send batches, and the newest parameters.
pub struct ActorLink {
    pub welcome: Welcome,
    batches: mpsc::Sender<ActorMessage>,
    params: Arc<Mutex<Option<Vec<u8>>>>,
    credit: Arc<(Mutex<u64>, Condvar)>,
    closed: Arc<Mutex<Option<String>>>,
    conn: Connection,
    endpoint: Endpoint,
    runtime: &'static Runtime,
}

impl ActorLink {
    /// Connects, says Hello and waits for Welcome, following the learner to another learner of
    /// the run if it says so; a refusal comes back with its reason.
    pub fn connect(options: &ActorOptions) -> Result<Self, QuicError> {
        let mut options = options.clone();
        // A learner sends an actor on at most once; more hops would be a loop.
        for _ in 0..3 {
            match Self::connect_once(&options) {
                Err(QuicError::Redirected(to)) => (options.connect, options.server_name) = (to.addr, to.server_name),
                other => return other,
            }
        }
        Err(QuicError::Refused(format!("sent on from learner to learner, last to {}", options.connect)))
    }

    fn connect_once(options: &ActorOptions) -> Result<Self, QuicError> {
        let client = client_config(&options.tls)?;
        let runtime = actor_runtime()?;
        let bind: SocketAddr = if options.connect.is_ipv6() { "[::]:0".parse().expect("address") } else { "0.0.0.0:0".parse().expect("address") };
        let mut endpoint = runtime.block_on(async { Endpoint::client(bind) }).map_err(|e| QuicError::Io(e.to_string()))?;
        endpoint.set_default_client_config(client);
        let params = Arc::new(Mutex::new(None));
        let closed = Arc::new(Mutex::new(None));
        let credit = Arc::new((Mutex::new(0), Condvar::new()));
        let (conn, welcome, recv, decoder, send) = runtime.block_on(handshake(&endpoint, options))?;
        let (batches, batch_rx) = mpsc::channel(SEND_QUEUE);
        runtime.spawn(write_batches(send, batch_rx, closed.clone()));
        runtime.spawn(read_learner(recv, decoder, credit.clone(), closed.clone()));
        runtime.spawn(read_params(conn.clone(), params.clone()));
        Ok(Self { welcome, batches, params, credit, closed, conn, endpoint, runtime })
    }

    /// Waits for credit to step the envs, and takes up to `want` steps of it in whole
    /// multiples of `unit` (one step of every env). An error once the link has closed.
    pub fn reserve(&self, want: u64, unit: u64) -> Result<u64, QuicError> {
        let (lock, ready) = &*self.credit;
        let mut credit = lock.lock().expect("credit");
        loop {
            if *credit >= unit {
                let granted = want.min(*credit) / unit * unit;
                *credit -= granted;
                return Ok(granted);
            }
            if let Some(reason) = self.closed() {
                return Err(QuicError::Closed(reason));
            }
            credit = ready.wait_timeout(credit, Duration::from_millis(100)).expect("credit").0;
        }
    }

    /// Queues a batch; blocks while the link is backed up. Call from a plain thread.
    pub fn send(&self, batch: TransitionBatch) -> Result<(), QuicError> {
        self.batches.blocking_send(ActorMessage::Batch(batch)).map_err(|_| QuicError::Closed(self.closed().unwrap_or_else(|| "the connection ended".into())))
    }

    pub fn send_stats(&self, stats: ActorStats) -> Result<(), QuicError> {
        self.batches.blocking_send(ActorMessage::Stats(stats)).map_err(|_| QuicError::Closed(self.closed().unwrap_or_else(|| "the connection ended".into())))
    }

    /// The newest `ParamSet` bytes received since the last call.
    pub fn take_params(&self) -> Option<Vec<u8>> {
        self.params.lock().expect("params slot").take()
    }

    /// Why the link ended, once it has.
    pub fn closed(&self) -> Option<String> {
        // The peer's own words first, then what the stream tasks saw.
        self.conn.close_reason().map(|e| close_reason(&e)).or_else(|| self.closed.lock().expect("closed slot").clone())
    }

    /// Says goodbye, lets queued batches go out, and closes.
    pub fn close(self, reason: &str) {
        let _ = self.batches.blocking_send(ActorMessage::Goodbye { reason: reason.into() });
        drop(self.batches);
        let (conn, endpoint) = (self.conn.clone(), self.endpoint.clone());
        self.runtime.block_on(async move {
            // The learner closes after Goodbye; do not wait forever for it.
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
            endpoint.close(VarInt::from_u32(0), b"bye");
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        });
    }
}

/// Connects with `options`' certificates, writes `bytes` on a fresh stream as an actor would,
/// and returns the reason the learner closed the connection with (for fault tests).
#[doc(hidden)]
pub fn send_raw(options: &ActorOptions, bytes: &[u8]) -> Result<String, QuicError> {
    let runtime = io_runtime()?;
    let mut endpoint = runtime.block_on(async { Endpoint::client("0.0.0.0:0".parse().expect("address")) }).map_err(|e| QuicError::Io(e.to_string()))?;
    endpoint.set_default_client_config(client_config(&options.tls)?);
    runtime.block_on(async {
        let conn = endpoint.connect(options.connect, &options.server_name).map_err(|e| QuicError::Io(e.to_string()))?.await.map_err(|e| QuicError::Io(close_reason(&e)))?;
        let mut send = conn.open_uni().await.map_err(|e| QuicError::Io(close_reason(&e)))?;
        send.write_all(bytes).await.map_err(|e| QuicError::Io(e.to_string()))?;
        let reason = tokio::time::timeout(HANDSHAKE_TIMEOUT * 2, conn.closed()).await.map_err(|_| QuicError::Io("the learner kept the connection open".into()))?;
        Ok(close_reason(&reason))
    })
}

async fn handshake(endpoint: &Endpoint, options: &ActorOptions) -> Result<(Connection, Welcome, RecvStream, FrameDecoder, quinn::SendStream), QuicError> {
    let connecting = endpoint.connect(options.connect, &options.server_name).map_err(|e| QuicError::Io(e.to_string()))?;
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(QuicError::Io(format!("cannot connect to {}: {}", options.connect, close_reason(&e)))),
        Err(_) => return Err(QuicError::Io(format!("no answer from {} within {HANDSHAKE_TIMEOUT:?}", options.connect))),
    };
    let mut send = conn.open_uni().await.map_err(|e| QuicError::Io(close_reason(&e)))?;
    let hello = ActorMessage::Hello(Hello { actor_id: options.actor_id, protocol_version: PROTOCOL_VERSION, auth: options.token.clone(), envs: options.envs });
    let mut out = preamble().to_vec();
    encode_frame(&hello, &mut out)?;
    send.write_all(&out).await.map_err(|e| QuicError::Io(e.to_string()))?;
    let refused = |conn: &Connection, fallback: String| QuicError::Refused(conn.close_reason().map(|e| close_reason(&e)).unwrap_or(fallback));
    let mut recv = match tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.accept_uni()).await {
        Ok(Ok(recv)) => recv,
        Ok(Err(e)) => return Err(QuicError::Refused(close_reason(&e))),
        Err(_) => return Err(QuicError::Io("no Welcome within the handshake timeout".into())),
    };
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 1 << 16];
    match read_message::<LearnerMessage>(&mut recv, &mut decoder, &mut buf).await {
        Ok(LearnerMessage::Welcome(welcome)) => Ok((conn, welcome, recv, decoder, send)),
        Ok(LearnerMessage::Redirect { to, server_name }) => {
            conn.close(VarInt::from_u32(0), b"going to the learner it was sent to");
            Err(QuicError::Redirected(LearnerAddress { addr: to, server_name }))
        }
        Ok(_) => Err(QuicError::Refused("the learner's first message was not Welcome".into())),
        Err(e) => {
            // A refusal closes the connection right after; give its reason a moment to arrive.
            let _ = tokio::time::timeout(Duration::from_millis(500), conn.closed()).await;
            Err(refused(&conn, e))
        }
    }
}

async fn write_batches(mut send: quinn::SendStream, mut rx: mpsc::Receiver<ActorMessage>, closed: Arc<Mutex<Option<String>>>) {
    let mut out = Vec::new();
    while let Some(first) = rx.recv().await {
        // Coalesce whatever else is queued into one write.
        out.clear();
        let mut next = Some(first);
        while let Some(message) = next {
            if let Err(e) = encode_frame(&message, &mut out) {
                *closed.lock().expect("closed slot") = Some(e.to_string());
                return;
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = send.write_all(&out).await {
            *closed.lock().expect("closed slot") = Some(e.to_string());
            return;
        }
    }
    let _ = send.finish();
}

/// The learner's control stream: credit, or its goodbye.
async fn read_learner(mut recv: RecvStream, mut decoder: FrameDecoder, credit: Arc<(Mutex<u64>, Condvar)>, closed: Arc<Mutex<Option<String>>>) {
    let mut buf = vec![0u8; 1 << 16];
    let end = |reason: String| {
        *closed.lock().expect("closed slot") = Some(reason);
        credit.1.notify_all();
    };
    loop {
        match read_message::<LearnerMessage>(&mut recv, &mut decoder, &mut buf).await {
            Ok(LearnerMessage::Params(_)) => return end("parameters on the control stream".into()),
            Ok(LearnerMessage::Credit { steps }) => {
                *credit.0.lock().expect("credit") += steps;
                credit.1.notify_all();
            }
            Ok(LearnerMessage::Goodbye { reason }) => return end(format!("learner said goodbye: {reason}")),
            Ok(LearnerMessage::Welcome(_)) => return end("a second Welcome".into()),
            Ok(LearnerMessage::Redirect { .. }) => return end("a Redirect after Welcome".into()),
            Err(e) => return end(e),
        }
    }
}

/// The learner's parameter streams, one per version, each into `slot` as it arrives whole.
/// The connection's end ends this too ([`read_learner`] reports why).
async fn read_params(conn: Connection, slot: Arc<Mutex<Option<Vec<u8>>>>) {
    while let Ok(mut recv) = conn.accept_uni().await {
        let Ok(bytes) = recv.read_to_end(MAX_FRAME_BYTES + preamble().len()).await else { continue };
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        match decoder.next_message::<LearnerMessage>() {
            Ok(Some(LearnerMessage::Params(p))) => *slot.lock().expect("params slot") = Some(p),
            _ => {
                conn.close(VarInt::from_u32(1), b"a parameter stream without one parameter set");
                return;
            }
        }
    }
}
