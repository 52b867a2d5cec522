//! Randomized host sequences on several threads: enumerations, gets, puts, deletes and method
//! calls on a few sinks shared between threads, with `CancelAsyncCall` on those sinks at random
//! moments, sinks whose `Indicate` and `SetStatus` fail, authors that finish early, fail,
//! drop or leak their guard, or panic. Every call is checked by the host simulator (exactly one
//! final `SetStatus`, nothing after it, no progress nobody asked for); at the end no call is
//! left in flight and every final status is accounted for.
//!
//! `WINPROV_STRESS_OPERATIONS` sets the number of operations (`cargo xtask test` runs more in
//! an optimized build; a plain `cargo test` runs a smaller count).

use std::sync::atomic::{AtomicUsize, Ordering};
use winprov_wbem::CallFlags;
use winprov_wbem::testing::{ClientSink, Host};
use winprov_wbem::{
    BATCH_SIZE, Completed, DeleteCall, EventProvider, GetCall, HResult, Instance, InstanceProvider,
    MethodCall, MethodProvider, ProviderInit, PutCall, Response, Value,
};

const THREADS: usize = 4;
const SINKS: usize = 3;
const DEFAULT_OPERATIONS: usize = 20_000;

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
}

/// Behaviour is chosen by the call's flags (low bits: what to do, then a count).
struct Stress;

fn entry(i: usize) -> Instance {
    Instance::new("Entry").with("Name", Value::Str(i.to_string()))
}

impl InstanceProvider for Stress {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        let flags = call.flags().bits();
        let count = ((flags >> 8) & 0xff) as usize;
        for i in 0..count {
            if i % 16 == 0 {
                std::thread::yield_now();
                call.progress(i as u16, count as u16);
            }
            if call.indicate(entry(i)).is_err() {
                break;
            }
        }
        match flags & 0x7 {
            0 | 1 => call.finish(Ok(())),
            2 => call.finish(Err(HResult::WBEM_E_ACCESS_DENIED)),
            3 => {
                drop(call);
                panic!("stress: dropped the guard")
            }
            4 => {
                std::mem::forget(call);
                panic!("stress: leaked the guard")
            }
            _ => panic!("stress: the backend broke"),
        }
    }

    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        match path.len() % 2 {
            0 => call.found(entry(path.len())),
            _ => call.not_found(),
        }
    }

    fn put<'call>(&self, instance: Instance, call: PutCall<'call>) -> Completed<'call> {
        call.complete(Ok(format!("{}.Name=\"x\"", instance.class())))
    }

    fn delete<'call>(&self, _path: &str, call: DeleteCall<'call>) -> Completed<'call> {
        call.complete(Err(HResult::WBEM_E_NOT_FOUND))
    }
}

impl MethodProvider for Stress {
    fn exec_method<'call>(
        &self,
        _path: &str,
        _method: &str,
        _in: Option<&Instance>,
        call: MethodCall<'call>,
    ) -> Completed<'call> {
        std::thread::yield_now();
        call.complete(Ok(Some(Instance::out_parameters(Value::U32(0)))))
    }
}

impl EventProvider for Stress {}

impl ProviderInit for Stress {}

#[test]
fn randomized_host_sequences_deliver_one_final_status_per_call() {
    let total = operations();
    // The authors' own panics are part of the sequences: keep them out of the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let own = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.starts_with("stress:"));
        if !own {
            default_hook(info);
        }
    }));
    let host = Host::new(Stress);
    let sinks: Vec<ClientSink> = (0..SINKS)
        .map(|i| match i {
            0 => host.sink().failing(HResult::WBEM_E_FAILED),
            _ => host.sink(),
        })
        .collect();
    let done = AtomicUsize::new(0);
    let calls = AtomicUsize::new(0);
    let cancelled = AtomicUsize::new(0);
    let won = AtomicUsize::new(0);
    std::thread::scope(|threads| {
        for seed in 0..THREADS as u64 {
            let (host, sinks, done, calls, cancelled, won) =
                (&host, &sinks, &done, &calls, &cancelled, &won);
            threads.spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (seed + 1));
                while done.fetch_add(1, Ordering::Relaxed) < total {
                    let sink = &sinks[rng.below(SINKS as u64) as usize];
                    let status = match rng.below(10) {
                        0..=3 => {
                            let behaviour = match rng.below(20) {
                                0 => 2,
                                1 => 3,
                                2 => 4,
                                3 => 5,
                                _ => 0,
                            };
                            let count = rng.below(3 * BATCH_SIZE as u64) as i32;
                            let send = match rng.below(2) {
                                0 => CallFlags::SEND_STATUS.bits(),
                                _ => 0,
                            };
                            let flags = behaviour | (count << 8) | send;
                            let record =
                                host.enumerate(sink, "Entry", CallFlags::from_bits_retain(flags));
                            let (status, _) = record.status.clone().unwrap();
                            let expected = match behaviour {
                                0 => HResult::S_OK,
                                2 => HResult::WBEM_E_ACCESS_DENIED,
                                _ => HResult::WBEM_E_FAILED,
                            };
                            assert!(
                                status == expected || status == HResult::WBEM_E_CALL_CANCELLED,
                                "{status} for behaviour {behaviour}"
                            );
                            if status == HResult::S_OK && behaviour == 0 {
                                assert_eq!(record.indicated.len(), count as usize);
                            }
                            status
                        }
                        4 => {
                            host.get_object(sink, "Entry.Name=\"a\"", CallFlags::empty())
                                .status
                                .unwrap()
                                .0
                        }
                        5 => {
                            host.put(sink, entry(1), CallFlags::empty())
                                .status
                                .unwrap()
                                .0
                        }
                        6 => {
                            host.delete(sink, "Entry.Name=\"a\"", CallFlags::empty())
                                .status
                                .unwrap()
                                .0
                        }
                        7 => {
                            let status = host
                                .exec_method(sink, "Entry", "Reload", None, CallFlags::empty())
                                .status
                                .unwrap()
                                .0;
                            assert_eq!(status, HResult::S_OK, "R-WMI-13: a method cancelled");
                            status
                        }
                        _ => {
                            won.fetch_add(host.cancel(sink), Ordering::Relaxed);
                            continue;
                        }
                    };
                    calls.fetch_add(1, Ordering::Relaxed);
                    if status == HResult::WBEM_E_CALL_CANCELLED {
                        cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(host.runtime().in_flight(), 0);
    // Every cancel that won shows as exactly one WBEM_E_CALL_CANCELLED, and no other status
    // became one.
    assert_eq!(
        cancelled.load(Ordering::Relaxed),
        won.load(Ordering::Relaxed)
    );
    assert!(calls.load(Ordering::Relaxed) > 0);
    // No COM object of either side outlives the run: the provider object, and every sink,
    // context and class object the simulator handed it.
    drop(sinks);
    let left = host.release();
    assert_eq!(
        (left.provider, left.simulator),
        (0, 0),
        "live COM objects after the run"
    );
    eprintln!(
        "{total} operations: {} calls, {} cancelled by {} sink cancels' wins",
        calls.load(Ordering::Relaxed),
        cancelled.load(Ordering::Relaxed),
        won.load(Ordering::Relaxed)
    );
}
