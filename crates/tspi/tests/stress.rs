//! Randomized host sequences on several threads against a provider whose author side acts at
//! random too (completing, failing or dropping requests, reporting states, hanging up, offering
//! inbound calls), racing TAPI's closes. Checks, for every round: each accepted request
//! completed exactly once, none of the rejected ones, no event after a close, no overlapping
//! callbacks (the simulator's rules), and no live line, call or request at the end.
//!
//! `WINPROV_STRESS_OPERATIONS` sets the number of operations (default 20,000; CI runs
//! millions in an optimized build).

use std::sync::{Arc, Mutex};
use winprov_tspi::testing::{CallRef, Host, LineRef, NewCallAnswer};
use winprov_tspi::{
    Call, CallEvents, CallState, CallerId, Completed, DisconnectMode, Line, LineCaps, LineErr,
    LineEvents, LineIndex, MakeCall, Pending, PendingCall, Request, ServiceProvider,
};

enum Held {
    Making(PendingCall),
    Request(Pending),
    Talking(CallEvents),
}

#[derive(Default)]
struct Shelf {
    held: Mutex<Vec<Held>>,
    lines: Mutex<Vec<LineEvents<Chaos>>>,
    seed: Mutex<u64>,
}

impl Shelf {
    fn roll(&self) -> u64 {
        let mut seed = self.seed.lock().unwrap();
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }
}

struct Chaos(Arc<Shelf>);
struct ChaosLine(Arc<Shelf>);
struct ChaosCall(Arc<Shelf>);

impl ServiceProvider for Chaos {
    type Line = ChaosLine;
    const NAME: &'static str = "Chaos";
    fn line_count(&self) -> u32 {
        4
    }
    fn line_caps(&self, _: LineIndex) -> LineCaps {
        LineCaps::voice("chaos").with_max_calls(8)
    }
    fn open(&self, _: LineIndex, events: LineEvents<Self>) -> Result<ChaosLine, LineErr> {
        self.0.lines.lock().unwrap().push(events);
        Ok(ChaosLine(Arc::clone(&self.0)))
    }
}

impl Line for ChaosLine {
    type Call = ChaosCall;
    fn make_call<'call>(&mut self, request: MakeCall<'call, ChaosCall>) -> Completed<'call> {
        match self.0.roll() % 6 {
            0 => request.reject(LineErr::LINEERR_CALLUNAVAIL),
            1 => {
                let (pending, reply) = request.accept(ChaosCall(Arc::clone(&self.0)));
                if let Ok(events) = pending.succeed() {
                    self.0.held.lock().unwrap().push(Held::Talking(events));
                }
                reply
            }
            _ => {
                let (pending, reply) = request.accept(ChaosCall(Arc::clone(&self.0)));
                self.0.held.lock().unwrap().push(Held::Making(pending));
                reply
            }
        }
    }
    fn dev_specific<'call>(&mut self, request: Request<'call>, _: &mut [u8]) -> Completed<'call> {
        let (pending, reply) = request.accept();
        self.0.held.lock().unwrap().push(Held::Request(pending));
        reply
    }
}

impl Call for ChaosCall {
    fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        match self.0.roll() % 3 {
            0 => request.complete(Ok(())),
            1 => request.reject(LineErr::LINEERR_OPERATIONUNAVAIL),
            _ => {
                let (pending, reply) = request.accept();
                self.0.held.lock().unwrap().push(Held::Request(pending));
                reply
            }
        }
    }
    fn answer<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        request.complete(Ok(()))
    }
}

/// One step of the author side.
fn author_step(shelf: &Shelf, roll: u64) {
    let item = {
        let mut held = shelf.held.lock().unwrap();
        if held.is_empty() {
            None
        } else {
            let index = (roll as usize / 7) % held.len();
            Some(held.swap_remove(index))
        }
    };
    match item {
        None => {
            let lines = shelf.lines.lock().unwrap().clone();
            if let Some(line) = lines.get(roll as usize % lines.len().max(1))
                && let Ok(events) =
                    line.new_call(ChaosCall(Arc::new(Shelf::default())), CallerId::number("1"))
            {
                shelf.held.lock().unwrap().push(Held::Talking(events));
            }
        }
        Some(Held::Making(pending)) => match roll % 3 {
            0 => {
                let _ = pending.fail(LineErr::LINEERR_CALLUNAVAIL);
            }
            1 => drop(pending),
            _ => {
                if let Ok(events) = pending.succeed() {
                    shelf.held.lock().unwrap().push(Held::Talking(events));
                }
            }
        },
        Some(Held::Request(pending)) => {
            let _ = match roll % 2 {
                0 => pending.complete(Ok(())),
                _ => pending.complete(Err(LineErr::LINEERR_OPERATIONFAILED)),
            };
        }
        Some(Held::Talking(events)) => match roll % 4 {
            0 => {
                let _ = events.disconnected(DisconnectMode::Normal);
            }
            1 => drop(events),
            _ => {
                if events.state(CallState::Connected).is_ok() {
                    shelf.held.lock().unwrap().push(Held::Talking(events));
                }
            }
        },
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn round(operations: usize, seed: u64) -> (usize, usize) {
    let shelf = Arc::new(Shelf {
        seed: Mutex::new(seed | 1),
        ..Shelf::default()
    });
    let host = Host::new(Chaos(Arc::clone(&shelf)));
    host.start().unwrap();
    let lines: Mutex<Vec<LineRef>> = Mutex::new(Vec::new());
    let calls: Mutex<Vec<CallRef>> = Mutex::new(Vec::new());
    let threads = 4;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (host, shelf, lines, calls) = (&host, &shelf, &lines, &calls);
            scope.spawn(move || {
                let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (t as u64 + 1) << 32;
                for _ in 0..operations / threads {
                    let roll = xorshift(&mut state);
                    let pick_line = || {
                        let lines = lines.lock().unwrap();
                        lines.get(roll as usize % lines.len().max(1)).copied()
                    };
                    let pick_call = || {
                        let calls = calls.lock().unwrap();
                        calls
                            .get((roll >> 8) as usize % calls.len().max(1))
                            .copied()
                    };
                    match roll % 16 {
                        0 => {
                            if let Ok(line) = host.open((roll >> 4) as u32 % 4) {
                                lines.lock().unwrap().push(line);
                            }
                        }
                        1 => {
                            if let Some(line) = pick_line()
                                && host.close(line).is_ok()
                            {
                                lines.lock().unwrap().retain(|l| *l != line);
                            }
                        }
                        2..=4 => {
                            let dial = if roll & 0x100 == 0 { "5551234" } else { "55W1" };
                            if let Some(line) = pick_line()
                                && let Some(call) = host.make_call(line, Some(dial)).value
                            {
                                calls.lock().unwrap().push(call);
                            }
                        }
                        5 | 6 => {
                            if let Some(call) = pick_call() {
                                host.drop_call(call);
                            }
                        }
                        7 | 8 => {
                            if let Some(call) = pick_call() {
                                // Another thread may have closed it first.
                                let _ = host.close_call(call);
                                calls.lock().unwrap().retain(|c| *c != call);
                            }
                        }
                        9 => {
                            if let Some(line) = pick_line() {
                                host.dev_specific(line, &mut [0; 4]);
                            }
                        }
                        10 => {
                            if let Some(call) = pick_call() {
                                let _ = host.call_status(call);
                            }
                        }
                        11 => {
                            host.answer_new_calls(if roll & 0x300 == 0 {
                                NewCallAnswer::Null
                            } else {
                                NewCallAnswer::Accept
                            });
                            let _ = host.drop_call(CallRef {
                                hd: (roll >> 16) as usize,
                                ht: 1,
                            });
                        }
                        _ => author_step(shelf, roll),
                    }
                }
            });
        }
    });
    // TAPI's closes at the end, then the author lets go of what it still holds.
    for line in lines.lock().unwrap().drain(..) {
        assert_eq!(host.close(line), Ok(()));
    }
    assert_eq!(host.shutdown(), Ok(()));
    let leftovers = shelf.held.lock().unwrap().drain(..).count();
    shelf.lines.lock().unwrap().clear();
    host.assert_idle();
    (host.messages().len(), leftovers)
}

#[test]
fn randomized_host_sequences() {
    let operations: usize = std::env::var("WINPROV_STRESS_OPERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let per_round = 20_000.min(operations);
    let rounds = operations.div_ceil(per_round);
    let started = std::time::Instant::now();
    let mut callbacks = 0;
    for round_index in 0..rounds {
        callbacks += round(per_round, 0x5EED_0000 + round_index as u64).0;
    }
    eprintln!(
        "tspi stress: {} operations in {rounds} rounds on 4 threads, {callbacks} callbacks checked, {:?}",
        rounds * per_round,
        started.elapsed()
    );
}
