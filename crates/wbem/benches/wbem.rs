//! Benchmarks of the WMI runtime, driven through `Runtime` as the COM layer drives it, with
//! client sinks of the benchmark's own (parts 1 and 2: no simulator bookkeeping is timed), and
//! of the COM layer on the host simulator (part 3).
//!
//! `cargo bench -p winprov-wbem` runs, in one process:
//!
//! 1. `enumerate`: `CreateInstanceEnumAsync` of N instances (10,000 and 100,000) whose author
//!    indicates each one, to a sink that drops what it gets, against a baseline that builds the
//!    same instances and delivers them to the same sink in batches of `BATCH_SIZE` without the
//!    framework; besides criterion's report it prints the time per instance of both (medians of
//!    interleaved runs, also at 1,000,000) and the peak memory of an enumeration at each N: the
//!    most instances alive at once (made by the author, not yet dropped by the sink) and the
//!    growth of the peak resident set;
//! 2. `cancel_async_call`: one `CancelAsyncCall` of a sink shared by 1,000 calls in flight,
//!    each parked in the author's `enumerate` on its own thread until its cancellation trips,
//!    against a baseline that delivers the same 1,000 statuses to the same sink and wakes 1,000
//!    threads parked on a `Condvar` of their own. Criterion times the cancel; the benchmark
//!    prints the time from the cancel to the last `SetStatus` (per round, and per call), and
//!    to the return of the last call. Every round checks that each call's final status went out,
//!    once, as `WBEM_E_CALL_CANCELLED`;
//! 3. `com_enumeration`: `CreateInstanceEnumAsync` of N instances (a string key, a `uint32`, a
//!    `string[]`) through the provider object's vtables on `testing::Host`, the client's sink
//!    counting the objects, against the loop a provider writes without the framework on the
//!    same simulator objects (`Host::raw_enumerate`: the class definition, then
//!    `SpawnInstance`, three `Put`s of the same `VARIANT`s and an `Indicate` every
//!    `BATCH_SIZE`); besides criterion's report it prints the time per instance of both
//!    (medians of interleaved runs, also at 1,000,000) and, for one enumeration of each N, the
//!    most simulator class objects alive at once and the growth of the peak resident set.
//!
//! Arguments are criterion's; a positional filter also selects the parts here (substring
//! match). `cargo test --benches` (or `-- --test`) runs everything once at a reduced size. See
//! `docs/benchmarks.md`.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};
use winprov_core::HostSink;
use winprov_wbem::runtime::{CallSink, Runtime};
use winprov_wbem::testing::{CallRecord, Cim, ClientSink, Host, RawName, RawValue};
use winprov_wbem::{
    BATCH_SIZE, CallFlags, Completed, EventProvider, HResult, Instance, InstanceProvider,
    MethodProvider, ProviderInit, Response, SinkMessage, Value, WBEM_STATUS_COMPLETE,
};

// ---------------------------------------------------------------------------------------------
// Command line (criterion parses its own copy).

struct Args {
    filter: Option<String>,
    /// `cargo test --benches`, `-- --test`: run once, small.
    test: bool,
    /// `-- --list` or `-- --profile-time <s>`: criterion's alone; no own timings.
    criterion_only: bool,
}

impl Args {
    fn parse() -> Self {
        // Criterion options that take a value.
        const VALUED: &[&str] = &[
            "-c",
            "--color",
            "--colour",
            "-s",
            "--save-baseline",
            "-b",
            "--baseline",
            "--baseline-lenient",
            "--load-baseline",
            "--format",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
            "--significance-level",
            "--plotting-backend",
            "--output-format",
            "--profile-time",
        ];
        let mut args = Self {
            filter: None,
            test: false,
            criterion_only: false,
        };
        let mut bench = false;
        let mut iter = std::env::args().skip(1);
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--bench" => bench = true,
                "--test" => args.test = true,
                "--list" => args.criterion_only = true,
                flag if flag.starts_with("--profile-time") => {
                    args.criterion_only = true;
                    if !flag.contains('=') {
                        let _ = iter.next();
                    }
                }
                flag if VALUED.contains(&flag) => {
                    let _ = iter.next();
                }
                flag if flag.starts_with('-') => {}
                _ if args.filter.is_none() => args.filter = Some(arg),
                _ => {}
            }
        }
        // As criterion decides: without `--bench` (cargo test) the benchmarks only run once.
        args.test |= !bench;
        args
    }

    fn wants(&self, part: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|filter| part.contains(filter) || filter.contains(part))
    }

    fn measures(&self) -> bool {
        !self.criterion_only
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---------------------------------------------------------------------------------------------
// 1. Enumerations.

const CLASS: &str = "Winprov_Entry";

/// One instance as a provider would build it: a key, a name and a flag.
fn build_instance(i: usize) -> Instance {
    Instance::new(CLASS)
        .with("Id", Value::U64(i as u64))
        .with("Name", Value::Str(format!("entry-{i}")))
        .with("Enabled", Value::Bool(i.is_multiple_of(2)))
}

/// Instances made and dropped, counted only while `on` (the memory runs): the most alive at
/// once is the peak an enumeration holds, whatever N.
struct Live {
    on: AtomicBool,
    made: AtomicUsize,
    dropped: AtomicUsize,
    peak: AtomicUsize,
}

impl Live {
    fn made(&self) {
        if self.on.load(Ordering::Relaxed) {
            let made = self.made.fetch_add(1, Ordering::Relaxed) + 1;
            let alive = made - self.dropped.load(Ordering::Relaxed);
            self.peak.fetch_max(alive, Ordering::Relaxed);
        }
    }

    fn dropped(&self, count: usize) {
        if self.on.load(Ordering::Relaxed) {
            self.dropped.fetch_add(count, Ordering::Relaxed);
        }
    }

    fn start(&self) {
        self.made.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        self.peak.store(0, Ordering::Relaxed);
        self.on.store(true, Ordering::Relaxed);
    }

    /// The peak, checking that every instance made was dropped.
    fn stop(&self) -> usize {
        self.on.store(false, Ordering::Relaxed);
        let made = self.made.load(Ordering::Relaxed);
        assert_eq!(made, self.dropped.load(Ordering::Relaxed), "instances kept");
        self.peak.load(Ordering::Relaxed)
    }
}

static LIVE: Live = Live {
    on: AtomicBool::new(false),
    made: AtomicUsize::new(0),
    dropped: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

/// The client's sink: drops what it gets, answers `S_OK`.
fn dropping_sink() -> CallSink {
    CallSink::new(
        1,
        Arc::new(|message: SinkMessage| {
            if let SinkMessage::Indicate { objects } = &message {
                LIVE.dropped(objects.len());
            }
            drop(black_box(message));
            HResult::S_OK
        }),
    )
}

/// Indicates `count` instances, then finishes.
#[derive(Default)]
struct Enumerator {
    count: AtomicUsize,
}

impl InstanceProvider for Enumerator {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        for i in 0..self.count.load(Ordering::Relaxed) {
            let instance = build_instance(i);
            LIVE.made();
            if call.indicate(instance).is_err() {
                break;
            }
        }
        call.finish(Ok(()))
    }
}
impl MethodProvider for Enumerator {}
impl EventProvider for Enumerator {}
impl ProviderInit for Enumerator {}

/// `CreateInstanceEnumAsync` of `n` instances through the runtime.
fn framework(runtime: &Runtime<Enumerator>, sink: &CallSink, n: usize) {
    runtime.provider().count.store(n, Ordering::Relaxed);
    let returned = runtime.create_instance_enum_async(CLASS, 0, sink.clone());
    assert_eq!(returned, HResult::S_OK);
}

/// The same instances to the same sink in batches of `BATCH_SIZE`, then the final status,
/// without the framework.
fn baseline(sink: &CallSink, n: usize) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    for i in 0..n {
        batch.push(build_instance(i));
        LIVE.made();
        if batch.len() == BATCH_SIZE {
            let objects = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_SIZE));
            black_box(sink.sink.deliver(SinkMessage::Indicate { objects }));
        }
    }
    if !batch.is_empty() {
        black_box(sink.sink.deliver(SinkMessage::Indicate { objects: batch }));
    }
    black_box(sink.sink.deliver(SinkMessage::SetStatus {
        flags: WBEM_STATUS_COMPLETE,
        hresult: HResult::S_OK,
        param: None,
    }));
}

/// Checks once, untimed, that the framework sends what the baseline sends: `n` instances in
/// order, in batches of at most `BATCH_SIZE`, then `S_OK`.
fn check_framework(runtime: &Runtime<Enumerator>, n: usize) {
    let seen = Arc::new(Mutex::new((0usize, Vec::new())));
    let record = Arc::clone(&seen);
    let sink = CallSink::new(
        1,
        Arc::new(move |message: SinkMessage| {
            let mut seen = record.lock().unwrap();
            match message {
                SinkMessage::Indicate { objects } => {
                    assert!((1..=BATCH_SIZE).contains(&objects.len()));
                    for object in objects {
                        assert_eq!(object, build_instance(seen.0));
                        seen.0 += 1;
                    }
                }
                status => seen.1.push(status),
            }
            HResult::S_OK
        }),
    );
    framework(runtime, &sink, n);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.0, n, "instances indicated");
    assert_eq!(
        seen.1,
        [SinkMessage::SetStatus {
            flags: WBEM_STATUS_COMPLETE,
            hresult: HResult::S_OK,
            param: None
        }]
    );
}

/// The peak resident set, reset first (Linux: `VmHWM`, reset by `clear_refs`).
struct PeakResident;

impl PeakResident {
    fn reset() -> Option<u64> {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        Self::read("VmHWM:")
    }

    fn read(field: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// How far the resident set rose above where it was at the reset.
    fn growth(reset: Option<u64>) -> Option<u64> {
        Some(Self::read("VmHWM:")?.saturating_sub(reset?))
    }
}

fn enumerate(c: &mut Criterion, args: &Args) {
    if !args.wants("enumerate") {
        return;
    }
    let sizes: &[usize] = if args.test {
        &[1_000]
    } else {
        &[10_000, 100_000]
    };
    let runtime = Runtime::new(Enumerator::default());
    let sink = dropping_sink();
    check_framework(&runtime, 1_000);

    let mut group = c.benchmark_group("enumerate");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for &n in sizes {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("framework", n), &n, |b, &n| {
            b.iter(|| framework(&runtime, &sink, n))
        });
        group.bench_with_input(BenchmarkId::new("baseline", n), &n, |b, &n| {
            b.iter(|| baseline(&sink, n))
        });
    }
    group.finish();
    if !args.measures() {
        return;
    }

    // Own timings: runs of each, taking turns, at each N (and 1,000,000).
    let sizes: &[(usize, usize)] = if args.test {
        &[(1_000, 1)]
    } else {
        &[(10_000, 31), (100_000, 11), (1_000_000, 5)]
    };
    eprintln!(
        "\nenumerate (CreateInstanceEnumAsync to a sink that drops the objects, against the \
         same instances delivered in batches of {BATCH_SIZE} without the framework; medians of \
         interleaved runs):"
    );
    for &(n, runs) in sizes {
        let mut framework_ns = Vec::new();
        let mut baseline_ns = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            framework(&runtime, &sink, n);
            framework_ns.push(started.elapsed().as_nanos() as f64 / n as f64);
            let started = Instant::now();
            baseline(&sink, n);
            baseline_ns.push(started.elapsed().as_nanos() as f64 / n as f64);
        }
        let (framework_ns, baseline_ns) = (median(framework_ns), median(baseline_ns));
        eprintln!(
            "  N = {n:>9} ({runs:>2} runs each): framework {framework_ns:6.1} ns/instance, \
             baseline {baseline_ns:6.1} ns/instance, ratio {:.3}x, framework share {:+.1} \
             ns/instance",
            framework_ns / baseline_ns,
            framework_ns - baseline_ns,
        );
    }
    // Memory: one enumeration of each N with the counts on.
    eprintln!("  peak memory of one enumeration (instances alive at once; resident set growth):");
    for &(n, _) in sizes {
        let mut line = format!("  N = {n:>9}:");
        for (label, run) in [
            (
                "framework",
                &(|| framework(&runtime, &sink, n)) as &dyn Fn(),
            ),
            ("baseline", &|| baseline(&sink, n)),
        ] {
            let reset = PeakResident::reset();
            LIVE.start();
            run();
            let peak = LIVE.stop();
            let growth = PeakResident::growth(reset)
                .map_or(String::from("n/a"), |b| format!("{} KiB", b / 1024));
            line += &format!(" {label} {peak} instances, {growth};");
        }
        eprintln!("{line}");
    }
    // The control: what keeping the instances would cost, which the readings above would show.
    let n = sizes[0].0;
    let reset = PeakResident::reset();
    let kept: Vec<Instance> = (0..n).map(build_instance).collect();
    if let Some(growth) = PeakResident::growth(reset) {
        eprintln!(
            "  control: {n} instances kept alive grow the resident set by {} KiB ({} B each)",
            growth / 1024,
            growth / n as u64
        );
    }
    drop(black_box(kept));
    eprintln!();
}

// ---------------------------------------------------------------------------------------------
// 2. CancelAsyncCall with many calls in flight on one sink.

/// The identity of the sink every call shares.
const SHARED: usize = 2;

/// The sink shared by every call: counts the final statuses and when each came.
#[derive(Default)]
struct StatusSink {
    finals: Mutex<Vec<(HResult, Instant)>>,
}

impl StatusSink {
    /// The client's sink of every call: records the final statuses, answers `S_OK`.
    fn client(self: &Arc<Self>) -> Arc<dyn HostSink<SinkMessage>> {
        let sink = Arc::clone(self);
        Arc::new(move |message: SinkMessage| {
            if let SinkMessage::SetStatus {
                flags: WBEM_STATUS_COMPLETE,
                hresult,
                ..
            } = message
            {
                let at = Instant::now();
                sink.finals.lock().unwrap().push((hresult, at));
            }
            HResult::S_OK
        })
    }

    /// The statuses of the round, checking that there are `n`, all `WBEM_E_CALL_CANCELLED`.
    fn take(&self, n: usize) -> Vec<Instant> {
        let finals = std::mem::take(&mut *self.finals.lock().unwrap());
        assert_eq!(finals.len(), n, "one final status per call");
        assert!(
            finals
                .iter()
                .all(|(hresult, _)| *hresult == HResult::WBEM_E_CALL_CANCELLED)
        );
        finals.into_iter().map(|(_, at)| at).collect()
    }
}

/// Parks in `enumerate` until the call is cancelled.
#[derive(Default)]
struct Parking {
    parked: AtomicUsize,
}

impl InstanceProvider for Parking {
    fn enumerate<'call>(&self, _class: &str, call: Response<'call>) -> Completed<'call> {
        self.parked.fetch_add(1, Ordering::SeqCst);
        let _ = call.cancellation().wait_timeout(Duration::from_secs(60));
        call.finish(Ok(()))
    }
}
impl MethodProvider for Parking {}
impl EventProvider for Parking {}
impl ProviderInit for Parking {}

/// What one round measured.
struct Round {
    /// The cancel itself (`CancelAsyncCall` returned).
    cancel: Duration,
    /// From the cancel to each call's final status, in order of delivery.
    statuses: Vec<Duration>,
    /// From the cancel to the return of the last call.
    last_return: Duration,
}

/// `n` threads (kept from round to round), each making one call per round that waits until
/// it is cancelled: through the runtime, or — the baseline — on a `Condvar` of its own.
struct Pool {
    n: usize,
    start: Arc<Barrier>,
    done: Arc<Barrier>,
    stop: Arc<AtomicBool>,
    parked: Arc<dyn Fn() -> usize + Send + Sync>,
    returned: Arc<Mutex<Option<Instant>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    fn spawn(
        n: usize,
        parked: Arc<dyn Fn() -> usize + Send + Sync>,
        call: impl Fn(usize) + Send + Sync + 'static,
    ) -> Self {
        let start = Arc::new(Barrier::new(n + 1));
        let done = Arc::new(Barrier::new(n + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let returned = Arc::new(Mutex::new(None::<Instant>));
        let call = Arc::new(call);
        let threads = (0..n)
            .map(|i| {
                let (start, done, stop) =
                    (Arc::clone(&start), Arc::clone(&done), Arc::clone(&stop));
                let (returned, call) = (Arc::clone(&returned), Arc::clone(&call));
                std::thread::Builder::new()
                    .name(format!("call-{i}"))
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        loop {
                            start.wait();
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            call(i);
                            let at = Instant::now();
                            let mut last = returned.lock().unwrap();
                            *last = Some(last.map_or(at, |last| last.max(at)));
                            drop(last);
                            done.wait();
                        }
                    })
                    .expect("spawning a call thread")
            })
            .collect();
        Self {
            n,
            start,
            done,
            stop,
            parked,
            returned,
            threads,
        }
    }

    /// Starts one call on every thread and returns once all are parked (and asleep).
    fn park(&self, parked_before: usize) {
        self.start.wait();
        let deadline = Instant::now() + Duration::from_secs(60);
        while (self.parked)() - parked_before < self.n {
            assert!(Instant::now() < deadline, "calls did not park");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    /// One round: park every call, run `cancel`, wait for every call to return.
    fn round(&self, cancel: impl FnOnce(), sink: &StatusSink) -> Round {
        let before = (self.parked)();
        self.park(before);
        *self.returned.lock().unwrap() = None;
        let cancelled_at = Instant::now();
        cancel();
        let cancel_time = cancelled_at.elapsed();
        self.done.wait();
        let last_return = self.returned.lock().unwrap().expect("calls returned") - cancelled_at;
        let statuses = sink
            .take(self.n)
            .into_iter()
            .map(|at| at - cancelled_at)
            .collect();
        Round {
            cancel: cancel_time,
            statuses,
            last_return,
        }
    }

    fn join(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.start.wait();
        for thread in self.threads {
            thread.join().expect("call thread");
        }
    }
}

/// The framework: `n` enumerations on one sink, cancelled by one `CancelAsyncCall`.
struct FrameworkCancel {
    runtime: Arc<Runtime<Parking>>,
    sink: Arc<StatusSink>,
    pool: Pool,
}

impl FrameworkCancel {
    fn new(n: usize) -> Self {
        let runtime = Arc::new(Runtime::new(Parking::default()));
        let sink = Arc::new(StatusSink::default());
        let call_sink = CallSink::new(SHARED, sink.client());
        let parked = {
            let runtime = Arc::clone(&runtime);
            Arc::new(move || runtime.provider().parked.load(Ordering::SeqCst))
        };
        let pool = Pool::spawn(n, parked, {
            let runtime = Arc::clone(&runtime);
            move |_| {
                let returned = runtime.create_instance_enum_async(CLASS, 0, call_sink.clone());
                assert_eq!(returned, HResult::S_OK);
            }
        });
        Self {
            runtime,
            sink,
            pool,
        }
    }

    fn round(&self) -> Round {
        let n = self.pool.n;
        let mut won = 0;
        let round = self.pool.round(
            || won = self.runtime.cancel_async_call(black_box(SHARED)),
            &self.sink,
        );
        assert_eq!(won, n, "the cancel won every call");
        assert_eq!(self.runtime.in_flight(), 0, "calls left registered");
        round
    }
}

/// The baseline: the same statuses to the same kind of sink, and the same threads woken, one
/// `Condvar` each, without the framework.
struct BaselineCancel {
    gates: Arc<Vec<(Mutex<bool>, Condvar)>>,
    waiting: Arc<AtomicUsize>,
    sink: Arc<StatusSink>,
    client: Arc<dyn HostSink<SinkMessage>>,
    pool: Pool,
}

impl BaselineCancel {
    fn new(n: usize) -> Self {
        let gates: Arc<Vec<(Mutex<bool>, Condvar)>> =
            Arc::new((0..n).map(|_| Default::default()).collect());
        let waiting = Arc::new(AtomicUsize::new(0));
        let sink = Arc::new(StatusSink::default());
        let client = sink.client();
        let parked = {
            let waiting = Arc::clone(&waiting);
            Arc::new(move || waiting.load(Ordering::SeqCst))
        };
        let pool = Pool::spawn(n, parked, {
            let (gates, waiting) = (Arc::clone(&gates), Arc::clone(&waiting));
            move |i| {
                let (open, wake) = &gates[i];
                let mut open = open.lock().unwrap();
                waiting.fetch_add(1, Ordering::SeqCst);
                while !*open {
                    open = wake.wait(open).unwrap();
                }
                *open = false;
            }
        });
        Self {
            gates,
            waiting,
            sink,
            client,
            pool,
        }
    }

    fn round(&self) -> Round {
        let cancel = || {
            for (open, wake) in self.gates.iter() {
                black_box(self.client.deliver(SinkMessage::SetStatus {
                    flags: WBEM_STATUS_COMPLETE,
                    hresult: HResult::WBEM_E_CALL_CANCELLED,
                    param: None,
                }));
                *open.lock().unwrap() = true;
                wake.notify_one();
            }
        };
        let round = self.pool.round(cancel, &self.sink);
        black_box(self.waiting.load(Ordering::Relaxed));
        round
    }
}

fn cancel_async_call(c: &mut Criterion, args: &Args) {
    if !args.wants("cancel_async_call") {
        return;
    }
    let n = if args.test { 16 } else { 1_000 };
    let framework = FrameworkCancel::new(n);
    let baseline = BaselineCancel::new(n);

    let mut group = c.benchmark_group("cancel_async_call");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(300));
    group.bench_function(BenchmarkId::new("framework", n), |b| {
        b.iter_custom(|rounds| (0..rounds).map(|_| framework.round().cancel).sum())
    });
    group.bench_function(BenchmarkId::new("baseline", n), |b| {
        b.iter_custom(|rounds| (0..rounds).map(|_| baseline.round().cancel).sum())
    });
    group.finish();

    if args.measures() {
        let rounds = if args.test { 2 } else { 100 };
        let mut measured = [Vec::new(), Vec::new()];
        for _ in 0..rounds {
            measured[0].push(framework.round());
            measured[1].push(baseline.round());
        }
        eprintln!(
            "\ncancel_async_call ({n} calls in flight on one sink, each parked on its own \
             thread; {rounds} rounds of each, taking turns):"
        );
        let report = |label: &str, mut sorted: Vec<Duration>| {
            sorted.sort();
            eprintln!(
                "  {label}: p50 {:8.1} us  p90 {:8.1} us  p99 {:8.1} us  max {:8.1} us",
                micros(percentile(&sorted, 0.50)),
                micros(percentile(&sorted, 0.90)),
                micros(percentile(&sorted, 0.99)),
                micros(percentile(&sorted, 1.0)),
            );
        };
        for (label, rounds) in [("framework", &measured[0]), ("baseline ", &measured[1])] {
            let last_status = |r: &Round| r.statuses.iter().copied().max().expect("n > 0");
            report(
                &format!("{label} cancel call             "),
                rounds.iter().map(|r| r.cancel).collect(),
            );
            report(
                &format!("{label} cancel -> last SetStatus"),
                rounds.iter().map(last_status).collect(),
            );
            report(
                &format!("{label} cancel -> each SetStatus"),
                rounds.iter().flat_map(|r| r.statuses.clone()).collect(),
            );
            report(
                &format!("{label} cancel -> last return   "),
                rounds.iter().map(|r| r.last_return).collect(),
            );
        }
        let medians: Vec<f64> = measured
            .iter()
            .map(|rounds| median(rounds.iter().map(|r| r.cancel.as_secs_f64()).collect()))
            .collect();
        eprintln!(
            "  cancel call, median framework/baseline: {:.2}x ({:.0} ns per call against \
             {:.0} ns)\n",
            medians[0] / medians[1],
            medians[0] * 1e9 / n as f64,
            medians[1] * 1e9 / n as f64,
        );
    }
    framework.pool.join();
    baseline.pool.join();
}

// ---------------------------------------------------------------------------------------------
// 3. Enumerations through the COM layer, on the simulator.

/// The class of the COM enumerations: declared to the simulator with these three properties.
const SHARE: &str = "Winprov_Share";

/// The key of instance `i`.
fn share_name(i: usize) -> String {
    format!("share-{i}")
}

/// The tags of instance `i`.
fn share_tags(i: usize) -> Vec<String> {
    vec![String::from("public"), format!("group-{}", i % 16)]
}

/// Instance `i` as the author builds it: a string key, a `uint32` and a `string[]`.
fn build_share(i: usize) -> Instance {
    Instance::new(SHARE)
        .with("Name", Value::Str(share_name(i)))
        .with("Size", Value::U32(i as u32))
        .with("Tags", Value::StrArray(share_tags(i)))
}

/// Indicates `count` shares, then finishes.
#[derive(Default)]
struct ShareEnumerator {
    count: AtomicUsize,
}

impl InstanceProvider for ShareEnumerator {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        for i in 0..self.count.load(Ordering::Relaxed) {
            if call.indicate(build_share(i)).is_err() {
                break;
            }
        }
        call.finish(Ok(()))
    }
}
impl MethodProvider for ShareEnumerator {}
impl EventProvider for ShareEnumerator {}
impl ProviderInit for ShareEnumerator {}

/// The property names of the baseline, made once (a provider's `L"Name"` literals).
struct ShareNames {
    name: RawName,
    size: RawName,
    tags: RawName,
}

impl ShareNames {
    fn new() -> Self {
        Self {
            name: RawName::new("Name"),
            size: RawName::new("Size"),
            tags: RawName::new("Tags"),
        }
    }
}

/// The simulator, the provider object and the client sink the two paths share.
struct ComBench {
    host: Host<ShareEnumerator>,
    names: ShareNames,
}

impl ComBench {
    fn new() -> Self {
        let host = Host::new(ShareEnumerator::default());
        host.declare(
            SHARE,
            &[
                ("Name", Cim::String),
                ("Size", Cim::Uint32),
                ("Tags", Cim::StringArray),
            ],
        );
        Self {
            host,
            names: ShareNames::new(),
        }
    }

    /// `CreateInstanceEnumAsync` of `n` shares through the provider object's vtable.
    #[inline(never)]
    fn framework(&self, sink: &ClientSink, n: usize) -> CallRecord {
        self.host
            .runtime()
            .provider()
            .count
            .store(n, Ordering::Relaxed);
        self.host.enumerate(sink, SHARE, CallFlags::empty())
    }

    /// The same `n` objects made by hand on the same simulator objects: `SpawnInstance`, three
    /// `Put`s of the same `VARIANT`s, `Indicate` every `BATCH_SIZE`.
    #[inline(never)]
    fn baseline(&self, sink: &ClientSink, n: usize) -> CallRecord {
        let names = &self.names;
        self.host.raw_enumerate(sink, SHARE, n, |i, object| {
            object.put(&names.name, RawValue::Str(&share_name(i)))?;
            object.put(&names.size, RawValue::U32(i as u32))?;
            object.put(&names.tags, RawValue::Strings(&share_tags(i)))
        })
    }
}

/// A counting sink's record of an enumeration of `n`: `S_OK`, `n` objects in full batches.
fn check_counted(record: &CallRecord, n: usize) {
    assert_eq!(record.returned, Some(HResult::S_OK));
    assert_eq!(record.status, Some((HResult::S_OK, None)));
    assert_eq!(record.indicated_count, n, "objects indicated");
    assert_eq!(
        record.indicate_calls,
        n.div_ceil(BATCH_SIZE),
        "Indicate calls"
    );
    assert!(
        record.indicated.is_empty() && record.batches.is_empty(),
        "a counting sink kept"
    );
}

/// Checks once, untimed, with a recording sink, that both paths send the same objects in the
/// same batches, and with a counting one that they send `n`, keeping at most a batch alive.
fn check_com(bench: &ComBench, n: usize) {
    let recording = bench.host.sink();
    let framework = bench.framework(&recording, n);
    let baseline = bench.baseline(&recording, n);
    let expected: Vec<Instance> = (0..n).map(build_share).collect();
    for record in [&framework, &baseline] {
        assert_eq!(record.returned, Some(HResult::S_OK));
        assert_eq!(record.status, Some((HResult::S_OK, None)));
        assert_eq!(record.indicated, expected, "the objects indicated");
    }
    assert_eq!(framework.batches, baseline.batches, "the batches");
    let counting = bench.host.sink().counting();
    for run in [ComBench::framework, ComBench::baseline] {
        bench.host.reset_class_objects_peak();
        check_counted(&run(bench, &counting, n), n);
        // A batch of instances and the class definition.
        assert!(bench.host.class_objects_peak() <= BATCH_SIZE + 1);
        assert_eq!(
            bench.host.class_objects_alive(),
            0,
            "class objects left alive"
        );
    }
}

fn com_enumeration(c: &mut Criterion, args: &Args) {
    if !args.wants("com_enumeration") {
        return;
    }
    let bench = ComBench::new();
    if args.measures() {
        // Not under `--profile-time`, where only the routine profiled is to run.
        check_com(&bench, 3 * BATCH_SIZE + 5);
    }
    let sink = bench.host.sink().counting();
    let sizes: &[usize] = if args.test {
        &[1_000]
    } else {
        &[10_000, 100_000]
    };

    let mut group = c.benchmark_group("com_enumeration");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for &n in sizes {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("framework", n), &n, |b, &n| {
            b.iter(|| bench.framework(&sink, n))
        });
        group.bench_with_input(BenchmarkId::new("baseline", n), &n, |b, &n| {
            b.iter(|| bench.baseline(&sink, n))
        });
    }
    group.finish();
    if !args.measures() {
        return;
    }

    // Own timings: runs of each, taking turns, at each N (and 1,000,000).
    let sizes: &[(usize, usize)] = if args.test {
        &[(1_000, 1)]
    } else {
        &[(10_000, 21), (100_000, 7), (1_000_000, 3)]
    };
    eprintln!(
        "\ncom_enumeration (CreateInstanceEnumAsync through the provider object's vtables on the \
         simulator, to a counting sink, against SpawnInstance + 3 Put + Indicate per \
         {BATCH_SIZE} by hand on the same simulator objects; medians of interleaved runs):"
    );
    for &(n, runs) in sizes {
        let (mut framework_ns, mut baseline_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let started = Instant::now();
            let framework = bench.framework(&sink, n);
            let framework_time = started.elapsed().as_nanos() as f64 / n as f64;
            let started = Instant::now();
            let baseline = bench.baseline(&sink, n);
            let baseline_time = started.elapsed().as_nanos() as f64 / n as f64;
            check_counted(&framework, n);
            check_counted(&baseline, n);
            framework_ns.push(framework_time);
            baseline_ns.push(baseline_time);
            ratios.push(framework_time / baseline_time);
        }
        let (low, high) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
        let (framework_ns, baseline_ns) = (median(framework_ns), median(baseline_ns));
        eprintln!(
            "  N = {n:>9} ({runs:>2} runs each): framework {framework_ns:7.1} ns/instance, \
             baseline {baseline_ns:7.1} ns/instance, ratio {:.3}x (pairs: median {:.3}x, \
             {low:.3}-{high:.3}x), framework share {:+.1} ns/instance",
            framework_ns / baseline_ns,
            median(ratios),
            framework_ns - baseline_ns,
        );
    }
    // Memory: one enumeration of each N.
    eprintln!(
        "  peak memory of one enumeration (simulator class objects alive at once; resident set \
         growth):"
    );
    for &(n, _) in sizes {
        let mut line = format!("  N = {n:>9}:");
        for (label, run) in [
            (
                "framework",
                ComBench::framework as fn(&ComBench, &ClientSink, usize) -> _,
            ),
            ("baseline", ComBench::baseline),
        ] {
            bench.host.reset_class_objects_peak();
            let reset = PeakResident::reset();
            check_counted(&run(&bench, &sink, n), n);
            let growth = PeakResident::growth(reset)
                .map_or(String::from("n/a"), |b| format!("{} KiB", b / 1024));
            line += &format!(
                " {label} {} objects, {growth};",
                bench.host.class_objects_peak()
            );
        }
        eprintln!("{line}");
    }
    // The control: a recording sink keeps every instance, which the reading above would show.
    let n = sizes[0].0;
    let reset = PeakResident::reset();
    let record = bench.framework(&bench.host.sink(), n);
    if let Some(growth) = PeakResident::growth(reset) {
        eprintln!(
            "  control: the same enumeration of {n} to a recording sink grows the resident set \
             by {} KiB ({} B per instance kept)",
            growth / 1024,
            growth / n as u64
        );
    }
    drop(black_box(record));
    eprintln!();
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args = Args::parse();
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .nresamples(10_000)
        .without_plots()
        .configure_from_args();
    enumerate(&mut criterion, &args);
    cancel_async_call(&mut criterion, &args);
    com_enumeration(&mut criterion, &args);
    criterion.final_summary();
}
