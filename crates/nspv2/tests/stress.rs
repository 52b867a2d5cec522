//! Randomized host sequences on several threads: Begin, NextEx with every buffer shape and
//! flag mix, End racing NextEx, double End, forged and stale handles, Rundown and Cleanup.
//! Every call is checked by the host simulator (exactly one completion per NextEx, results
//! inside their buffer); at the end every lookup was freed exactly once and none is alive.
//!
//! `WINPROV_STRESS_OPERATIONS` sets the number of operations (`cargo xtask test` runs millions
//! in an optimized build; a plain `cargo test` runs a smaller count).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use winprov_nspv2::testing::{self, Buffer, Host, LookupHandle, SessionArg};
use winprov_nspv2::{
    Completed, ControlFlags, CsAddr, Lookup, NamespaceProvider, NextCall, Query, QueryResult,
    WsaError,
};

const THREADS: usize = 4;
const DEFAULT_OPERATIONS: usize = 20_000;

#[derive(Default)]
struct Counts {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

struct Provider(Arc<Counts>);

struct StressLookup {
    counts: Arc<Counts>,
    remaining: usize,
    slow: bool,
}

impl Drop for StressLookup {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl NamespaceProvider for Provider {
    type Session = ();
    type Lookup = StressLookup;

    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }

    fn lookup_begin(
        &self,
        _: &(),
        query: &Query,
        _: ControlFlags,
    ) -> Result<StressLookup, WsaError> {
        self.0.created.fetch_add(1, Ordering::SeqCst);
        let name = query.service_instance_name.as_deref().unwrap_or_default();
        Ok(StressLookup {
            counts: Arc::clone(&self.0),
            remaining: name.len() % 4,
            slow: name.starts_with("slow"),
        })
    }
}

impl Lookup for StressLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        if self.slow
            && call.wait_timeout(Duration::from_micros(100))
                == winprov_nspv2::WaitOutcome::Cancelled
        {
            return call.cancelled();
        }
        if self.remaining == 0 {
            return call.no_more();
        }
        self.remaining -= 1;
        call.found(
            QueryResult::named(format!("r{}@example.org", self.remaining))
                .with_comment("c")
                .with_address(CsAddr::tcp("192.0.2.1:25".parse().unwrap()))
                .with_blob(vec![7; self.remaining * 8]),
        )
    }
}

/// xorshift64*: a reproducible sequence per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn operations() -> usize {
    std::env::var("WINPROV_STRESS_OPERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_OPERATIONS)
}

fn flags(rng: &mut Rng) -> ControlFlags {
    let return_bits = (rng.next() as u32) & ControlFlags::RETURN_ALL.bits();
    let flush = if rng.below(8) == 0 {
        ControlFlags::FLUSHPREVIOUS.bits()
    } else {
        0
    };
    ControlFlags::from_bits_retain(return_bits | flush)
}

fn buffer(rng: &mut Rng) -> Buffer {
    match rng.below(16) {
        0 => Buffer::NullLength,
        1 => Buffer::NullData(256),
        2 => Buffer::Misaligned(1024),
        3..=5 => Buffer::Len(0),
        6..=8 => Buffer::Len(rng.below(400) as u32),
        _ => Buffer::Len(4096),
    }
}

fn allowed(code: i32) -> bool {
    [
        0,
        WsaError::WSAEFAULT.raw(),
        WsaError::WSA_E_NO_MORE.raw(),
        WsaError::WSA_E_CANCELLED.raw(),
        WsaError::WSA_INVALID_HANDLE.raw(),
    ]
    .contains(&code)
}

#[test]
fn randomized_host_sequences() {
    let total = operations();
    let counts = Arc::new(Counts::default());
    let host = Host::advertise_new(Provider(Arc::clone(&counts)));
    let stray_before = testing::stray_completions();
    let pool: Mutex<Vec<(SessionArg, LookupHandle)>> = Mutex::new(Vec::new());
    let sessions: Vec<SessionArg> = (0..3).map(|_| host.startup().unwrap()).collect();
    let done = AtomicUsize::new(0);

    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (host, pool, sessions, done) = (&host, &pool, &sessions, &done);
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 0x1000_0001));
                while done.fetch_add(1, Ordering::Relaxed) < total {
                    let pick = |rng: &mut Rng| {
                        let pool = pool.lock().unwrap();
                        (!pool.is_empty()).then(|| pool[rng.below(pool.len() as u64) as usize])
                    };
                    match rng.below(20) {
                        0..=3 => {
                            let session = sessions[rng.below(3) as usize];
                            let name = match rng.below(16) {
                                0 => "slow@example.org".to_string(),
                                n => format!("{}@example.org", "x".repeat(n as usize)),
                            };
                            let lookup = host
                                .begin(session, &Query::name(name), flags(&mut rng))
                                .expect("Begin");
                            pool.lock().unwrap().push((session, lookup));
                        }
                        4..=13 => {
                            if let Some((_, lookup)) = pick(&mut rng) {
                                let next =
                                    host.next_with(lookup, flags(&mut rng), buffer(&mut rng));
                                assert!(allowed(next.code), "NextEx gave {}", next.code);
                            }
                        }
                        14..=16 => {
                            if let Some((_, lookup)) = pick(&mut rng) {
                                // Double End and End racing NextEx on other threads happen here.
                                let ended = host.end(lookup);
                                assert!(
                                    matches!(ended, Ok(()) | Err(WsaError::WSA_INVALID_HANDLE)),
                                    "{ended:?}"
                                );
                                if rng.below(2) == 0 {
                                    pool.lock().unwrap().retain(|(_, l)| *l != lookup);
                                }
                            }
                        }
                        17 => {
                            let forged = LookupHandle(rng.next() as usize);
                            let next = host.next(forged, ControlFlags::RETURN_ALL, 64);
                            assert_eq!(next.status(), Err(WsaError::WSA_INVALID_HANDLE));
                        }
                        _ => {
                            // A whole lookup the way a client makes one.
                            let session = sessions[rng.below(3) as usize];
                            let lookup = host
                                .begin(
                                    session,
                                    &Query::name("abc@example.org"),
                                    ControlFlags::RETURN_ALL,
                                )
                                .expect("Begin");
                            while host
                                .next_sized(lookup, ControlFlags::RETURN_ALL)
                                .status()
                                .is_ok()
                            {}
                            host.end(lookup).expect("End");
                        }
                    }
                }
            });
        }
    });

    for (_, lookup) in pool.into_inner().unwrap() {
        let _ = host.end(lookup);
    }
    // A session run down and another cleaned up with lookups open end them too.
    let extra = host.startup().unwrap();
    for _ in 0..10 {
        host.begin(
            extra,
            &Query::name("abc@example.org"),
            ControlFlags::RETURN_ALL,
        )
        .unwrap();
    }
    host.rundown(extra);
    host.cleanup(extra).unwrap();
    for session in sessions {
        host.cleanup(session).unwrap();
    }

    let stats = host.stats();
    assert_eq!(stats.live_lookups, 0, "every lookup freed");
    assert_eq!(stats.open_sessions, 0);
    let created = counts.created.load(Ordering::SeqCst);
    assert_eq!(
        counts.dropped.load(Ordering::SeqCst),
        created,
        "each lookup dropped exactly once"
    );
    assert_eq!(
        testing::stray_completions(),
        stray_before,
        "no completion for an unknown call"
    );
    eprintln!("stress: {total} operations, {created} lookups, all freed once");
}
