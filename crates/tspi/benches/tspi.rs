//! Benchmarks of the TSPI framework, driven through the export bodies the generated `TSPI_*`
//! functions call, with a no-op `ASYNC_COMPLETION` (no simulator bookkeeping is timed).
//!
//! `cargo bench -p winprov-tspi` runs:
//!
//! 1. `request_roundtrip`: a call-less `TSPI_lineDevSpecific` whose author completes the
//!    request at once — request guard created, completed, `ASYNC_COMPLETION` delivered, export
//!    returns — against the bare indirect call of the completion proc it wraps;
//! 2. `close_call`: `TSPI_lineCloseCall` on a call with 100, 1,000 and 10,000 pending requests
//!    (each completed exactly once with `LINEERR_OPERATIONFAILED`, counted);
//!
//! and prints, besides criterion's report, the per-request overhead and the per-request cost
//! of `lineCloseCall` at each size (medians of repeated runs timed with `Instant`).
//! `cargo test --benches` runs everything once at a reduced size. See `docs/benchmarks.md`.

use criterion::{BatchSize, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use winprov_bindings::tapi::{HDRVCALL, HDRVLINE, HTAPICALL, HTAPILINE, LINECALLPARAMS};
use winprov_bindings::windows_core::{PCSTR, PCWSTR};
use winprov_tspi::__private as export;
use winprov_tspi::{
    Call, Completed, Line, LineCaps, LineErr, LineEvents, LineIndex, MakeCall, Pending, Request,
    Runtime, ServiceProvider,
};

static COMPLETIONS: AtomicUsize = AtomicUsize::new(0);

extern "system" fn count_completion(_: u32, _: i32) {
    COMPLETIONS.fetch_add(1, Ordering::Relaxed);
}

extern "system" fn no_event(_: HTAPILINE, _: HTAPICALL, _: u32, _: usize, _: usize, _: usize) {}

/// Completes call-less requests at once; holds drops pending.
struct Bench(Arc<Mutex<Vec<Pending>>>);
struct BenchLine(Arc<Mutex<Vec<Pending>>>);
struct BenchCall(Arc<Mutex<Vec<Pending>>>);

impl ServiceProvider for Bench {
    type Line = BenchLine;
    const NAME: &'static str = "Bench";
    fn line_count(&self) -> u32 {
        1
    }
    fn line_caps(&self, _: LineIndex) -> LineCaps {
        LineCaps::voice("bench")
    }
    fn open(&self, _: LineIndex, _: LineEvents<Self>) -> Result<BenchLine, LineErr> {
        Ok(BenchLine(Arc::clone(&self.0)))
    }
}

impl Line for BenchLine {
    type Call = BenchCall;
    fn make_call<'call>(&mut self, request: MakeCall<'call, BenchCall>) -> Completed<'call> {
        let (pending, reply) = request.accept(BenchCall(Arc::clone(&self.0)));
        drop(pending.succeed());
        reply
    }
    fn dev_specific<'call>(&mut self, request: Request<'call>, _: &mut [u8]) -> Completed<'call> {
        request.complete(Ok(()))
    }
}

impl Call for BenchCall {
    fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        let (pending, reply) = request.accept();
        self.0.lock().unwrap().push(pending);
        reply
    }
}

struct Setup {
    runtime: &'static Runtime<Bench>,
    line: HDRVLINE,
    held: Arc<Mutex<Vec<Pending>>>,
}

fn setup() -> Setup {
    let held = Arc::new(Mutex::new(Vec::new()));
    let runtime = Runtime::leak(Bench(Arc::clone(&held)));
    let mut options = 0;
    let mut line = HDRVLINE(std::ptr::null_mut());
    // SAFETY: valid out pointers and callbacks that live for the process.
    unsafe {
        assert_eq!(
            export::provider_init(
                runtime,
                0x0002_0002,
                1,
                0,
                0,
                1,
                0,
                Some(count_completion),
                &mut options,
            ),
            0
        );
        assert_eq!(
            export::line_open(
                runtime,
                0,
                HTAPILINE(std::ptr::without_provenance_mut(1)),
                &mut line,
                0x0002_0002,
                Some(no_event),
            ),
            0
        );
    }
    Setup {
        runtime,
        line,
        held,
    }
}

fn dev_specific(setup: &Setup, id: u32) -> i32 {
    // SAFETY: no parameters buffer.
    unsafe {
        export::line_dev_specific(
            setup.runtime,
            id,
            setup.line,
            0,
            HDRVCALL(std::ptr::null_mut()),
            std::ptr::null_mut(),
            0,
        )
    }
}

/// A call with `n` drops pending on it.
fn call_with_pending(setup: &Setup, n: u32) -> HDRVCALL {
    let mut call = HDRVCALL(std::ptr::null_mut());
    let destination: Vec<u16> = "5551234\0".encode_utf16().collect();
    // SAFETY: valid out pointer and NUL-terminated destination.
    let ret = unsafe {
        export::line_make_call(
            setup.runtime,
            1,
            setup.line,
            HTAPICALL(std::ptr::without_provenance_mut(2)),
            &mut call,
            PCWSTR(destination.as_ptr()),
            0,
            std::ptr::null::<LINECALLPARAMS>(),
        )
    };
    assert_eq!(ret, 1);
    for id in 0..n {
        // SAFETY: no user-user information.
        let ret =
            unsafe { export::line_drop(setup.runtime, id + 2, call, PCSTR(std::ptr::null()), 0) };
        assert_eq!(ret, (id + 2) as i32);
    }
    call
}

fn close_call(setup: &Setup, call: HDRVCALL) {
    // SAFETY: no pointers.
    assert_eq!(unsafe { export::line_close_call(setup.runtime, call) }, 0);
}

/// The author lets go of its (already completed) guards, outside the timed region.
fn release(setup: &Setup) {
    setup.held.lock().unwrap().clear();
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let test_mode =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if test_mode { 1 } else { 3 }));
    let setup = setup();

    // 1. Request guard → completion → ASYNC_COMPLETION → return, against the bare callback.
    let mut group = criterion.benchmark_group("request_roundtrip");
    group.bench_function("framework", |b| {
        b.iter(|| assert_eq!(dev_specific(&setup, black_box(7)), 7))
    });
    group.bench_function("baseline_callback", |b| {
        let proc: extern "system" fn(u32, i32) = black_box(count_completion);
        b.iter(|| proc(black_box(7), black_box(0)))
    });
    group.finish();

    // 2. lineCloseCall with n pending requests.
    let sizes: &[u32] = if test_mode {
        &[100, 1_000]
    } else {
        &[100, 1_000, 10_000]
    };
    let mut group = criterion.benchmark_group("close_call");
    group.sample_size(10);
    for &n in sizes {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || {
                    release(&setup);
                    call_with_pending(&setup, n)
                },
                |call| close_call(&setup, call),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    criterion.final_summary();

    // Own figures, printed for docs/benchmarks.md.
    let batch = if test_mode { 2_000 } else { 200_000 };
    let mut framework = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..if test_mode { 3 } else { 15 } {
        let started = Instant::now();
        for id in 0..batch {
            black_box(dev_specific(&setup, 1 + id % 1000));
        }
        framework.push(started.elapsed().as_nanos() as f64 / batch as f64);
        let proc: extern "system" fn(u32, i32) = black_box(count_completion);
        let started = Instant::now();
        for id in 0..batch {
            proc(black_box(id), black_box(0));
        }
        baseline.push(started.elapsed().as_nanos() as f64 / batch as f64);
    }
    let (framework, baseline) = (median(framework), median(baseline));
    eprintln!(
        "request_roundtrip: framework {framework:.0} ns, bare callback {baseline:.1} ns, \
         overhead {:.0} ns per request (goal <= 1000 ns)",
        framework - baseline
    );
    for &n in sizes {
        let mut per_request = Vec::new();
        for _ in 0..if test_mode { 1 } else { 7 } {
            let call = call_with_pending(&setup, n);
            let before = COMPLETIONS.load(Ordering::Relaxed);
            let started = Instant::now();
            close_call(&setup, call);
            let elapsed = started.elapsed();
            release(&setup);
            let completed = COMPLETIONS.load(Ordering::Relaxed) - before;
            assert_eq!(
                completed, n as usize,
                "every pending request completed once"
            );
            per_request.push(elapsed.as_nanos() as f64 / f64::from(n));
        }
        let each = median(per_request);
        eprintln!(
            "close_call: {n:>6} pending requests, {:.2} ms, {each:.0} ns per request",
            each * f64::from(n) / 1e6
        );
    }
}
