//! Randomized socket operations on several threads over the in-memory transport: connected
//! pairs of every protocol with random linger and blocking options, plain and overlapped sends
//! and receives (completing through either mechanism), shutdowns (valid and not), disconnects
//! with and without data, event selections and closes — on sockets the threads share, so a
//! close races I/O on another thread and closed handles are used again. The host simulator
//! checks every call and notice (one completion per pending operation and none after an
//! error, nothing after a close, WSAESHUTDOWN in a shut direction, FD_CLOSE once …); at the end
//! every socket is closed, the final cleanup runs, and no socket and no socket state is left.
//!
//! `WINPROV_STRESS_OPERATIONS` sets the number of operations (`cargo xtask test` runs more in
//! an optimized build; a plain `cargo test` runs a smaller count).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use winprov_wsp::memory::{Config, MESSAGE, Memory, STREAM, STREAM_WITH_DISCONNECT_DATA};
use winprov_wsp::testing::{Host, routine};
use winprov_wsp::{Linger, Mechanism, NetworkEvents, SocketHandle, WsaError};

const THREADS: usize = 4;
const DEFAULT_OPERATIONS: usize = 20_000;
/// Sockets the threads share at most.
const POOL: usize = 24;

fn operations() -> usize {
    std::env::var("WINPROV_STRESS_OPERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_OPERATIONS)
}

/// xorshift64*: a deterministic sequence per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A socket of the pool, with whether its calls may block (then only overlapped I/O is used
/// on it, so that no thread waits forever).
#[derive(Clone, Copy)]
struct Pooled {
    socket: SocketHandle,
    non_blocking: bool,
}

fn linger(rng: &mut Rng) -> Linger {
    match rng.below(4) {
        0 => Linger::Linger(Duration::ZERO),
        1 => Linger::Linger(Duration::from_millis(1 + rng.below(3))),
        _ => Linger::DontLinger,
    }
}

fn mechanism(rng: &mut Rng) -> Mechanism {
    match rng.chance(50) {
        true => Mechanism::Signal,
        false => routine(rng.below(4) as usize),
    }
}

fn data(rng: &mut Rng) -> Vec<u8> {
    (0..rng.below(120)).map(|i| i as u8).collect()
}

/// Opens a pair with random options and adds both ends to the pool.
fn open_pair(host: &Host<Memory>, pool: &Mutex<Vec<Pooled>>, rng: &mut Rng) {
    let protocol = [STREAM, MESSAGE, STREAM_WITH_DISCONNECT_DATA][rng.below(3) as usize];
    let (client, server) = host.pair(protocol);
    let mut pooled = Vec::new();
    for socket in [client, server] {
        let non_blocking = rng.chance(75);
        host.set_non_blocking(socket, non_blocking).unwrap();
        host.set_linger(socket, linger(rng)).unwrap();
        pooled.push(Pooled {
            socket,
            non_blocking,
        });
    }
    pool.lock().unwrap().extend(pooled);
}

fn pick(pool: &Mutex<Vec<Pooled>>, rng: &mut Rng) -> Option<Pooled> {
    let pool = pool.lock().unwrap();
    match pool.len() {
        0 => None,
        n => Some(pool[rng.below(n as u64) as usize]),
    }
}

fn forget(pool: &Mutex<Vec<Pooled>>, socket: SocketHandle) {
    pool.lock().unwrap().retain(|each| each.socket != socket);
}

/// One random operation.
fn operate(host: &Host<Memory>, pool: &Mutex<Vec<Pooled>>, rng: &mut Rng) {
    let pooled = pool.lock().unwrap().len();
    if pooled < POOL && rng.chance(if pooled < POOL / 2 { 30 } else { 3 }) {
        open_pair(host, pool, rng);
        return;
    }
    let Some(Pooled {
        socket,
        non_blocking,
    }) = pick(pool, rng)
    else {
        return;
    };
    let error = match rng.below(100) {
        0..=21 if non_blocking => host.send(socket, &data(rng)).err(),
        0..=21 => host
            .send_overlapped(socket, &data(rng), mechanism(rng))
            .result
            .err(),
        22..=43 if non_blocking => host.recv(socket, 1 + rng.below(64) as usize).err(),
        22..=43 => host
            .recv_overlapped(socket, 1 + rng.below(64) as usize, mechanism(rng))
            .result
            .err(),
        44..=55 => host
            .send_overlapped(socket, &data(rng), mechanism(rng))
            .result
            .err(),
        56..=69 => host
            .recv_overlapped(socket, 1 + rng.below(64) as usize, mechanism(rng))
            .result
            .err(),
        70..=71 => host.shutdown(socket, rng.below(5) as i32 - 1).err(),
        72 => {
            let data = data(rng);
            let data = rng.chance(50).then_some(&data[..]);
            host.send_disconnect(socket, data).err()
        }
        73 => host
            .recv_disconnect(socket, rng.chance(50).then(|| rng.below(16) as usize))
            .err(),
        74..=77 => host
            .select_events(socket, NetworkEvents::from_raw(rng.below(64) as u32))
            .err(),
        78..=85 => host
            .send_overlapped(socket, &data(rng), Mechanism::Signal)
            .result
            .err(),
        86..=94 if non_blocking => host.recv(socket, 256).err(),
        86..=94 => host
            .recv_overlapped(socket, 256, Mechanism::Signal)
            .result
            .err(),
        _ => {
            // Most closes take the socket out of the pool first; the others leave a closed
            // handle for the other threads to use.
            let taken = rng.chance(70);
            if taken {
                forget(pool, socket);
            }
            match host.close(socket) {
                Err(WsaError::WSAEWOULDBLOCK) if taken && rng.chance(50) => {
                    // A non-blocking lingering close that could not finish: still open. Made
                    // blocking, its close waits up to the linger timeout.
                    let _ = host.set_non_blocking(socket, false);
                    host.close(socket).err()
                }
                Err(WsaError::WSAEWOULDBLOCK) if taken => {
                    pool.lock().unwrap().push(Pooled {
                        socket,
                        non_blocking,
                    });
                    None
                }
                result => result.err(),
            }
        }
    };
    match error {
        Some(WsaError::WSAENOTSOCK) => forget(pool, socket),
        // As an application does: a connection that ended is closed (now and then later).
        Some(WsaError::WSAECONNRESET | WsaError::WSAECONNABORTED | WsaError::WSAEDISCON)
        | Some(WsaError::WSAESHUTDOWN)
            if rng.chance(50) =>
        {
            forget(pool, socket);
            if host.close(socket) == Err(WsaError::WSAEWOULDBLOCK) {
                pool.lock().unwrap().push(Pooled {
                    socket,
                    non_blocking,
                });
            }
        }
        _ => {}
    }
}

#[test]
fn randomized_socket_operations_leak_nothing_and_complete_once() {
    let total = operations();
    let host = Host::new(Memory::with_config(Config {
        window: 64,
        send_buffer: 256,
    }))
    .forgetful();
    let pool = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|threads| {
        for seed in 0..THREADS as u64 {
            let (host, pool, done) = (&host, &pool, &done);
            threads.spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (seed + 1));
                while done.fetch_add(1, Ordering::Relaxed) < total {
                    operate(host, pool, &mut rng);
                }
            });
        }
    });
    // Close what is left (a non-blocking lingering close may need its data to leave first:
    // make the socket blocking, its close then waits at most the linger timeout).
    for Pooled { socket, .. } in std::mem::take(&mut *pool.lock().unwrap()) {
        let _ = host.set_non_blocking(socket, false);
        let _ = host.close(socket);
    }
    host.finish();
    let stats = host.stats();
    assert_eq!(host.runtime().sockets(), 0, "leaked sockets");
    assert_eq!(host.runtime().alive(), 0, "leaked socket states");
    assert!(stats.overlapped > 0 && stats.completions > 0 && stats.events > 0);
    eprintln!(
        "{total} operations on {THREADS} threads in {:?}: {stats:?}",
        started.elapsed()
    );
}
