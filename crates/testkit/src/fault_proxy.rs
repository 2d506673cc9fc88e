//! A TCP proxy for fault tests: it sits on 127.0.0.1 between mailbridge and a test
//! server (Dovecot, the SMTP server, Radicale) and drops, stalls or truncates
//! connections at random points chosen by a seeded generator, so that a failing run
//! can be replayed with the same seed.
//!
//! ```no_run
//! # async fn example() {
//! use mailbridge_testkit::fault_proxy::{FaultConfig, FaultProxy, fault_seed};
//! let servers = mailbridge_testkit::TestServers::from_env();
//! let seed = fault_seed(); // MAILBRIDGE_FAULT_SEED, or a new one
//! let imap = FaultProxy::start("imap", servers.imap_addr(), seed, FaultConfig::default()).await;
//! // ... a profile with format!("imap://{}", imap.addr()) ...
//! imap.set_faults(true); // connections now fail at random points
//! imap.set_faults(false); // a clean phase: everything passes, stalls end at once
//! eprintln!("{}", imap.stats());
//! # }
//! ```
//!
//! Each connection gets a plan when it is accepted: clean, or one fault of a kind
//! (drop, stall, truncate) in one direction at a byte offset of that direction. The
//! plan depends only on the seed, the proxy's label and the connection's number, so
//! the same seed gives every connection the same plan; where the chunks of a stream
//! end (and so which protocol step a fault hits) depends on timing.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The variable that fixes the seed, to replay a run: `MAILBRIDGE_FAULT_SEED=1234`.
pub const SEED_VAR: &str = "MAILBRIDGE_FAULT_SEED";

/// The seed of a fault test: [`SEED_VAR`] when set (decimal), else a new one from the
/// clock. Print it, so that a failure can be replayed.
///
/// # Panics
/// When [`SEED_VAR`] is set but is not a decimal `u64`.
pub fn fault_seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={v:?} is not a decimal u64")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            SplitMix64(nanos ^ u64::from(std::process::id())).next_u64() % 1_000_000_000
        }
    }
}

/// What a fault does to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// At the first chunk that would pass the offset, nothing more is forwarded and
    /// both sides are closed: by a reset (RST) or an orderly close (FIN), as drawn.
    /// The cut falls between two reads, where a server's answers usually end.
    Drop,
    /// The chunk that passes the offset is held for the plan's `stall` before it is
    /// forwarded; the connection then goes on (if the peer still waits).
    Stall,
    /// Only part of the chunk that passes the offset is forwarded (at least one byte
    /// less), then both sides are closed (FIN): the peer reads half a line, then the
    /// end.
    Truncate,
}

/// Which way the bytes a fault hits were going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client (mailbridge) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// One connection's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub direction: Direction,
    /// Bytes of `direction` forwarded untouched before the fault strikes.
    pub at: u64,
    /// For a drop: close with a reset rather than an orderly close.
    pub reset: bool,
    /// For a stall: how long the chunk is held.
    pub stall: Duration,
    /// For a truncation: picks how much of the chunk passes (taken modulo its length).
    pub cut: u64,
}

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Clean,
    Fault(Fault),
}

/// How often and how faults strike.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// The chance that a connection gets a fault, from 0.0 to 1.0.
    pub probability: f64,
    /// Relative weights of the kinds (all zero: no faults).
    pub drop_weight: u32,
    pub stall_weight: u32,
    pub truncate_weight: u32,
    /// The offset of a fault is drawn log-uniformly from 0 to this many bytes of its
    /// direction, so that greetings and logins are hit as often as long transfers.
    /// A fault whose offset the connection never reaches does not strike.
    pub max_offset: u64,
    /// The share of drops that reset the connection (RST) rather than close it (FIN).
    pub reset_probability: f64,
    /// A stall lasts a time drawn uniformly between these two.
    pub stall_min: Duration,
    pub stall_max: Duration,
    /// The bytes that end a request the client must not repeat blindly (SMTP: the
    /// `CRLF . CRLF` that ends DATA). A fault that strikes after such a request was
    /// forwarded and before any byte of its answer came back is counted in
    /// [`FaultStats::unanswered`]: the server may have acted, and the client cannot
    /// know.
    pub unrepeatable_request_end: Option<Vec<u8>>,
    /// Aim at that window: a fault strikes the first bytes of the answer to an
    /// unrepeatable request (towards the client, whatever the plan's direction and
    /// offset), or nothing.
    pub strike_unanswered: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            probability: 0.3,
            drop_weight: 1,
            stall_weight: 1,
            truncate_weight: 1,
            max_offset: 64 * 1024,
            reset_probability: 0.5,
            stall_min: Duration::from_millis(200),
            stall_max: Duration::from_secs(3),
            unrepeatable_request_end: None,
            strike_unanswered: false,
        }
    }
}

impl FaultConfig {
    /// The plan of connection number `index` (from 0) of the proxy `label`: a pure
    /// function of its arguments.
    pub fn plan(&self, seed: u64, label: &str, index: u64) -> Plan {
        let mut rng = SplitMix64(seed ^ fnv1a(label.as_bytes()) ^ index.wrapping_mul(GOLDEN));
        // Always the same number of draws, whatever the outcome.
        let strikes = rng.unit() < self.probability;
        let weights = [self.drop_weight, self.stall_weight, self.truncate_weight];
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let pick = rng.below(total.max(1));
        let direction = if rng.below(2) == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        // Log-uniform in [0, max_offset]: e^(u * ln(max + 1)) - 1.
        let span = (self.max_offset as f64 + 1.0).ln();
        let at = ((rng.unit() * span).exp() - 1.0).floor() as u64;
        let reset = rng.unit() < self.reset_probability;
        let (lo, hi) = (self.stall_min, self.stall_max.max(self.stall_min));
        let stall = lo + (hi - lo).mul_f64(rng.unit());
        let cut = rng.next_u64();
        if !strikes || total == 0 {
            return Plan::Clean;
        }
        let kind = if pick < u64::from(weights[0]) {
            FaultKind::Drop
        } else if pick < u64::from(weights[0]) + u64::from(weights[1]) {
            FaultKind::Stall
        } else {
            FaultKind::Truncate
        };
        Plan::Fault(Fault {
            kind,
            direction,
            at: at.min(self.max_offset),
            reset,
            stall,
            cut,
        })
    }
}

/// What a proxy has seen and done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Connections accepted.
    pub connections: u64,
    /// Faults that struck, by kind.
    pub drops: u64,
    pub stalls: u64,
    pub truncations: u64,
    /// Faults that struck while an unrepeatable request awaited its answer (see
    /// [`FaultConfig::unrepeatable_request_end`]); counted in their kind too.
    pub unanswered: u64,
}

impl FaultStats {
    /// Every fault that struck.
    pub fn faults(&self) -> u64 {
        self.drops + self.stalls + self.truncations
    }
}

impl std::ops::Add for FaultStats {
    type Output = FaultStats;

    fn add(self, o: FaultStats) -> FaultStats {
        FaultStats {
            connections: self.connections + o.connections,
            drops: self.drops + o.drops,
            stalls: self.stalls + o.stalls,
            truncations: self.truncations + o.truncations,
            unanswered: self.unanswered + o.unanswered,
        }
    }
}

impl fmt::Display for FaultStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drops={} stalls={} truncations={} connections={}",
            self.drops, self.stalls, self.truncations, self.connections
        )
    }
}

/// A running proxy. Dropping it closes the listener and every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    label: String,
    upstream: SocketAddr,
    seed: u64,
    config: FaultConfig,
    /// Faults on or off; a change ends the stalls in progress when switched off.
    faults: watch::Sender<bool>,
    connections: AtomicU64,
    drops: AtomicU64,
    stalls: AtomicU64,
    truncations: AtomicU64,
    unanswered: AtomicU64,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a port the OS picks) and forwards every connection to
    /// `upstream`. Faults start switched off: see [`FaultProxy::set_faults`].
    /// `label` names the proxy in the plans (two proxies with the same seed and
    /// different labels fail differently) and in logs.
    ///
    /// # Panics
    /// When 127.0.0.1 cannot be bound.
    pub async fn start(
        label: &str,
        upstream: SocketAddr,
        seed: u64,
        config: FaultConfig,
    ) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding 127.0.0.1:0 for a fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (faults, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            label: label.to_owned(),
            upstream,
            seed,
            config,
            faults,
            connections: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            truncations: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        FaultProxy { addr, shared, task }
    }

    /// Where clients connect: `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches faults on or off. Off, every byte passes (connections accepted while
    /// faults were on included) and stalls in progress end at once.
    pub fn set_faults(&self, on: bool) {
        self.shared.faults.send_replace(on);
    }

    pub fn faults_on(&self) -> bool {
        *self.shared.faults.borrow()
    }

    pub fn stats(&self) -> FaultStats {
        let s = &self.shared;
        FaultStats {
            connections: s.connections.load(Ordering::Relaxed),
            drops: s.drops.load(Ordering::Relaxed),
            stalls: s.stalls.load(Ordering::Relaxed),
            truncations: s.truncations.load(Ordering::Relaxed),
            unanswered: s.unanswered.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept loop owns the connections' JoinSet: aborting it ends them all.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let index = shared.connections.fetch_add(1, Ordering::Relaxed);
                connections.spawn(serve(client, shared.clone(), index));
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// How a connection ends when a fault closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Orderly,
    Reset,
}

/// One connection: both directions pumped at once until both ended or a fault
/// closed the connection.
async fn serve(mut client: TcpStream, shared: Arc<Shared>, index: u64) {
    let Ok(mut upstream) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let plan = shared.config.plan(shared.seed, &shared.label, index);
    let fault = match plan {
        Plan::Fault(f) => Some(f),
        Plan::Clean => None,
    };
    let conn = Conn {
        shared: &shared,
        fault,
        unanswered: AtomicBool::new(false),
        fired: AtomicBool::new(false),
    };
    let (closing, _) = watch::channel(None::<Close>);
    let close = {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        let (a, b) = tokio::join!(
            conn.pump(cr, uw, Direction::ToServer, &closing),
            conn.pump(ur, cw, Direction::ToClient, &closing),
        );
        a.or(b)
    };
    if close == Some(Close::Reset) {
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
    // Dropped here: closed (FIN, or RST after a zero linger).
}

/// A connection's state shared by its two pumps.
struct Conn<'a> {
    shared: &'a Shared,
    fault: Option<Fault>,
    /// An unrepeatable request was forwarded and no byte of an answer came back yet.
    unanswered: AtomicBool,
    /// The fault struck already (a stall strikes once).
    fired: AtomicBool,
}

impl Conn<'_> {
    /// Forwards `from` to `to` until the end of `from` (then the write side is shut:
    /// a half close passes through), an error, or a fault closing the connection.
    /// Returns how the connection must be closed when this pump closed it.
    async fn pump(
        &self,
        mut from: tokio::net::tcp::ReadHalf<'_>,
        mut to: tokio::net::tcp::WriteHalf<'_>,
        direction: Direction,
        closing: &watch::Sender<Option<Close>>,
    ) -> Option<Close> {
        let mut closed = closing.subscribe();
        let mut buf = vec![0u8; 16 * 1024];
        let mut forwarded: u64 = 0;
        // The last bytes sent towards the server, to find a request's end across reads.
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = tokio::select! {
                r = from.read(&mut buf) => match r {
                    Ok(0) => {
                        let _ = to.shutdown().await;
                        return None;
                    }
                    Ok(n) => n,
                    Err(_) => {
                        closing.send_replace(Some(Close::Orderly));
                        return None;
                    }
                },
                // The watch's guard must not live across an await (it is not Send).
                () = async { let _ = closed.wait_for(Option::is_some).await; } => return None,
            };
            let chunk = &buf[..n];
            let verdict = self.strike(direction, forwarded, chunk).await;
            let sent = &chunk[..verdict.pass];
            if !sent.is_empty() {
                if to.write_all(sent).await.is_err() {
                    closing.send_replace(Some(Close::Orderly));
                    return None;
                }
                forwarded += sent.len() as u64;
                self.note(direction, sent, &mut tail);
            }
            if verdict.unanswered_after_send && self.unanswered.load(Ordering::Relaxed) {
                // The prefix just sent may have completed the request, or one
                // before it still awaits its answer: either answer is now lost.
                self.shared.unanswered.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(close) = verdict.close {
                closing.send_replace(Some(close));
                return Some(close);
            }
        }
    }

    /// Decides what becomes of `chunk`, whose first byte is byte `forwarded` of
    /// `direction`: how many of its bytes pass, and whether the connection is then
    /// closed. A stall waits here.
    async fn strike(&self, direction: Direction, forwarded: u64, chunk: &[u8]) -> Verdict {
        let all = Verdict {
            pass: chunk.len(),
            close: None,
            unanswered_after_send: false,
        };
        let Some(f) = self.fault else { return all };
        let end = forwarded + chunk.len() as u64;
        let due = if self.shared.config.strike_unanswered {
            direction == Direction::ToClient && self.unanswered.load(Ordering::Relaxed)
        } else {
            f.direction == direction && end > f.at
        };
        if !due || self.fired.load(Ordering::Relaxed) {
            return all;
        }
        // A truncation needs two bytes to cut between; it waits for such a chunk.
        if f.kind == FaultKind::Truncate && chunk.len() < 2 {
            return all;
        }
        if !*self.shared.faults.borrow() {
            return all;
        }
        self.fired.store(true, Ordering::Relaxed);
        // Before any byte of this chunk passes: an answer not yet begun is lost.
        let unanswered = self.unanswered.load(Ordering::Relaxed);
        let s = self.shared;
        match f.kind {
            FaultKind::Drop => {
                s.drops.fetch_add(1, Ordering::Relaxed);
                if unanswered {
                    s.unanswered.fetch_add(1, Ordering::Relaxed);
                }
                let close = if f.reset {
                    Close::Reset
                } else {
                    Close::Orderly
                };
                Verdict {
                    pass: 0,
                    close: Some(close),
                    unanswered_after_send: false,
                }
            }
            FaultKind::Truncate => {
                s.truncations.fetch_add(1, Ordering::Relaxed);
                if unanswered && direction == Direction::ToClient {
                    s.unanswered.fetch_add(1, Ordering::Relaxed);
                }
                // 1..len-1 bytes pass; towards the server, the pump looks for an
                // unanswered request once the prefix is sent.
                Verdict {
                    pass: 1 + (f.cut % (chunk.len() as u64 - 1)) as usize,
                    close: Some(Close::Orderly),
                    unanswered_after_send: direction == Direction::ToServer,
                }
            }
            FaultKind::Stall => {
                s.stalls.fetch_add(1, Ordering::Relaxed);
                if unanswered && direction == Direction::ToClient {
                    s.unanswered.fetch_add(1, Ordering::Relaxed);
                }
                let mut faults = s.faults.subscribe();
                tokio::select! {
                    _ = tokio::time::sleep(f.stall) => {}
                    () = async { let _ = faults.wait_for(|on| !*on).await; } => {}
                }
                all
            }
        }
    }

    /// Keeps track of unrepeatable requests and their answers.
    fn note(&self, direction: Direction, sent: &[u8], tail: &mut Vec<u8>) {
        let Some(end) = &self.shared.config.unrepeatable_request_end else {
            return;
        };
        match direction {
            Direction::ToClient => self.unanswered.store(false, Ordering::Relaxed),
            Direction::ToServer => {
                tail.extend_from_slice(sent);
                if tail.windows(end.len()).any(|w| w == end.as_slice()) {
                    self.unanswered.store(true, Ordering::Relaxed);
                }
                let keep = end.len().saturating_sub(1);
                if tail.len() > keep {
                    tail.drain(..tail.len() - keep);
                }
            }
        }
    }
}

/// What becomes of one chunk.
struct Verdict {
    /// How many of its bytes are forwarded.
    pass: usize,
    /// Then the connection is closed so.
    close: Option<Close>,
    /// Count the fault in `unanswered` if a request awaits its answer once the
    /// bytes that pass are sent.
    unanswered_after_send: bool,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64: small, and the same sequence for a seed on every platform and version,
/// which a replay by seed needs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
