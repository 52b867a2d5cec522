//! Benchmarks of the NSPv2 framework, driven through the real `NSPV2_ROUTINE`.
//!
//! `cargo bench -p winprov-nspv2` runs, in one process:
//!
//! 1. `next_ex_overhead`: a `NSPv2LookupServiceNextEx` returning one result, against the plain
//!    work it wraps (build the same `QueryResult` and `wire::encode` it into a preallocated
//!    buffer);
//! 2. `handle_scaling`: the same NextEx on one lookup while 10 … 1,000,000 lookups are open;
//! 3. `end_to_next_ex_latency` (a one-shot measurement, not a criterion benchmark): with 1,000
//!    NextEx calls blocked in their provider, the time from `NSPv2LookupServiceEnd` to the
//!    return of the NextEx it cancels.
//!
//! NextEx is called through the routine table with a NULL `hAsyncCall`, so the framework
//! completes nothing (`WSAProviderCompleteAsyncCall` is not called) and no host simulator work
//! is timed. Besides criterion's report, each part prints its ratios or percentiles to stderr
//! (medians of interleaved batches timed with `Instant`). See `docs/benchmarks.md`.
//!
//! Arguments are criterion's. A positional filter also selects the parts here (substring
//! match); `cargo test --benches` (or `-- --test`) runs everything once at a reduced size.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};
use winprov_bindings::ws2spi::NS_EMAIL;
use winprov_nspv2::testing::wire::{self, BUFFER_ALIGN, ResultContext};
use winprov_nspv2::testing::{Host, LookupHandle, SessionArg};
use winprov_nspv2::{
    Completed, ControlFlags, CsAddr, Lookup, NamespaceProvider, NextCall, Query, QueryResult,
    WsaError,
};

// ---------------------------------------------------------------------------------------------
// Command line (criterion parses its own copy).

#[derive(Debug)]
struct Args {
    filter: Option<String>,
    exact: bool,
    /// `cargo test --benches`, `-- --test`: run once, small.
    test: bool,
    /// `-- --list`: criterion lists its benchmarks; nothing else runs.
    list: bool,
    /// `-- --profile-time <s>`: criterion only runs the routines (for a profiler); so do we.
    profile: bool,
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
        ];
        let mut args = Self {
            filter: None,
            exact: false,
            test: false,
            list: false,
            profile: false,
        };
        let mut bench = false;
        let mut iter = std::env::args().skip(1);
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--bench" => bench = true,
                "--test" => args.test = true,
                "--list" => args.list = true,
                "--exact" => args.exact = true,
                "--profile-time" => {
                    args.profile = true;
                    let _ = iter.next();
                }
                flag if flag.starts_with("--profile-time=") => args.profile = true,
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

    /// Whether the benchmark id `id` is selected.
    fn wants(&self, id: &str) -> bool {
        match &self.filter {
            None => true,
            Some(filter) if self.exact => id == filter,
            Some(filter) => id.contains(filter.as_str()),
        }
    }

    /// Whether the own timings (ratios, percentiles) run.
    fn measures(&self) -> bool {
        !self.list && !self.profile
    }
}

// ---------------------------------------------------------------------------------------------
// The result every benchmark returns, and the providers.

const NAME: &str = "alice@example.org";

/// A realistic result: name, comment, context, an IPv4 and an IPv6 address, a 32-byte blob.
fn build_result() -> QueryResult {
    QueryResult::named(NAME)
        .with_comment("Alice's mail exchanger")
        .with_context("example.org")
        .with_address(CsAddr::tcp(SocketAddr::from(([192, 0, 2, 10], 25))))
        .with_address(CsAddr::tcp(SocketAddr::from((
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1],
            587,
        ))))
        .with_blob([0xA5u8; 32])
}

/// A lookup that never runs out: every NextEx builds and returns [`build_result`].
struct Endless;
struct EndlessLookup;

impl NamespaceProvider for Endless {
    type Session = ();
    type Lookup = EndlessLookup;
    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }
    fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<EndlessLookup, WsaError> {
        Ok(EndlessLookup)
    }
}

impl Lookup for EndlessLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        call.found(build_result())
    }
}

/// A lookup whose every NextEx fails with `WSANO_DATA`: the framework's own path, without a
/// result to build or encode.
struct Failing;
struct FailingLookup;

impl NamespaceProvider for Failing {
    type Session = ();
    type Lookup = FailingLookup;
    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }
    fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<FailingLookup, WsaError> {
        Ok(FailingLookup)
    }
}

impl Lookup for FailingLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        call.fail(WsaError::WSANO_DATA)
    }
}

/// NextEx calls that entered [`Blocking`]'s `next`.
static BLOCKED: AtomicUsize = AtomicUsize::new(0);

/// A lookup whose NextEx blocks until the lookup is ended (a slow backend).
struct Blocking;
struct BlockingLookup;

impl NamespaceProvider for Blocking {
    type Session = ();
    type Lookup = BlockingLookup;
    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }
    fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<BlockingLookup, WsaError> {
        Ok(BlockingLookup)
    }
}

impl Lookup for BlockingLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        BLOCKED.fetch_add(1, Ordering::SeqCst);
        let _ = call.wait_timeout(Duration::from_secs(60));
        call.cancelled()
    }
}

// ---------------------------------------------------------------------------------------------
// Calling the routine table as Winsock does.

const FLAGS: ControlFlags = ControlFlags::RETURN_ALL;
const BUFFER_LEN: usize = 4096;

/// A preallocated result buffer aligned as NextEx requires.
struct AlignedBuffer {
    bytes: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuffer {
    fn new(len: usize) -> Self {
        let bytes = vec![0u8; len + BUFFER_ALIGN];
        let offset = bytes.as_ptr().align_offset(BUFFER_ALIGN);
        assert!(offset < BUFFER_ALIGN, "cannot align the buffer");
        Self { bytes, offset, len }
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.bytes[self.offset..self.offset + self.len]
    }
}

/// `NSPv2LookupServiceNextEx(NULL, lookup, flags, &len, buffer)` through `host`'s exports,
/// with a NULL `hAsyncCall` so that nothing is completed. Returns `*lpdwBufferLength` after the
/// call.
fn next_ex(host: &Host, lookup: LookupHandle, flags: ControlFlags, buffer: &mut [u8]) -> u32 {
    host.next_into(lookup, flags, buffer).1
}

/// One lookup of [`Endless`] behind a host.
struct EndlessHost {
    host: Host,
    session: SessionArg,
}

impl EndlessHost {
    fn new() -> Self {
        let host = Host::advertise_new(Endless);
        let session = host.startup().expect("NSPv2Startup");
        Self { host, session }
    }

    fn begin(&self) -> LookupHandle {
        self.host
            .begin(self.session, &Query::name(NAME), FLAGS)
            .expect("NSPv2LookupServiceBegin")
    }

    fn context(&self) -> ResultContext {
        ResultContext {
            namespace: NS_EMAIL,
            provider_id: self.host.id(),
        }
    }

    /// Checks that a raw NextEx on `lookup` writes the result the baseline encodes.
    fn check(&self, lookup: LookupHandle, buffer: &mut AlignedBuffer) {
        buffer.bytes().fill(0);
        next_ex(&self.host, lookup, FLAGS, buffer.bytes());
        let base = buffer.bytes().as_ptr().addr();
        let decoded = wire::decode(buffer.bytes(), base).expect("NextEx wrote a result");
        assert_eq!(
            decoded.result,
            build_result(),
            "NextEx returned another result"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Own timings: medians of batches, interleaved when comparing.

/// Nanoseconds per call of each routine: the median over `batches` batches of `iters` calls,
/// the routines taking turns batch by batch so that drift affects them alike.
fn interleaved_medians(batches: usize, iters: u32, routines: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    for routine in routines.iter_mut() {
        for _ in 0..iters {
            routine();
        }
    }
    let mut samples = vec![Vec::with_capacity(batches); routines.len()];
    for _ in 0..batches {
        for (routine, samples) in routines.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..iters {
                routine();
            }
            samples.push(start.elapsed().as_nanos() as f64 / f64::from(iters));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
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
// 1. NextEx against a plain serialization.

fn next_ex_overhead(c: &mut Criterion, args: &Args) {
    const IDS: [&str; 3] = [
        "next_ex_overhead/baseline_encode",
        "next_ex_overhead/framework_next_ex",
        "next_ex_overhead/framework_no_result",
    ];
    if !IDS.iter().any(|id| args.wants(id)) {
        return;
    }
    let endless = EndlessHost::new();
    let lookup = endless.begin();
    let context = endless.context();
    let mut framework_buffer = AlignedBuffer::new(BUFFER_LEN);
    let mut baseline_buffer = AlignedBuffer::new(BUFFER_LEN);
    endless.check(lookup, &mut framework_buffer);
    let needed = wire::encoded_len(&build_result(), FLAGS, &context);

    let failing = Host::advertise_new(Failing);
    let failing_session = failing.startup().expect("NSPv2Startup");
    let failing_lookup = failing
        .begin(failing_session, &Query::name(NAME), FLAGS)
        .expect("NSPv2LookupServiceBegin");
    let mut no_result_buffer = AlignedBuffer::new(BUFFER_LEN);

    let mut baseline = || {
        let bytes = baseline_buffer.bytes();
        let base = bytes.as_ptr().addr();
        let result = build_result();
        let written = wire::encode(black_box(&result), FLAGS, &context, bytes, base);
        black_box(written).expect("fits");
    };
    let mut framework = || {
        let length = next_ex(
            &endless.host,
            black_box(lookup),
            FLAGS,
            framework_buffer.bytes(),
        );
        black_box(length);
    };
    let mut no_result = || {
        let length = next_ex(
            &failing,
            black_box(failing_lookup),
            FLAGS,
            no_result_buffer.bytes(),
        );
        black_box(length);
    };

    let mut group = c.benchmark_group("next_ex_overhead");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_encode", |b| b.iter(&mut baseline));
    group.bench_function("framework_next_ex", |b| b.iter(&mut framework));
    group.bench_function("framework_no_result", |b| b.iter(&mut no_result));
    group.finish();

    if args.measures() {
        let (batches, iters) = if args.test { (3, 10) } else { (301, 2_000) };
        let medians = interleaved_medians(
            batches,
            iters,
            &mut [&mut baseline, &mut framework, &mut no_result],
        );
        let (base_ns, framework_ns, no_result_ns) = (medians[0], medians[1], medians[2]);
        eprintln!(
            "\nnext_ex_overhead ({needed}-byte result, medians of {batches} interleaved batches \
             of {iters} calls):\n  \
             baseline (build + wire::encode):   {base_ns:8.1} ns\n  \
             framework (raw NextEx, result):    {framework_ns:8.1} ns\n  \
             framework (raw NextEx, no result): {no_result_ns:8.1} ns\n  \
             ratio framework/baseline: {:.2}x (target <= 1.20x); \
             framework share: {:.1} ns/call\n",
            framework_ns / base_ns,
            framework_ns - base_ns,
        );
    }
    endless.host.end(lookup).expect("NSPv2LookupServiceEnd");
    endless.host.cleanup(endless.session).expect("NSPv2Cleanup");
    failing.end(failing_lookup).expect("NSPv2LookupServiceEnd");
    failing.cleanup(failing_session).expect("NSPv2Cleanup");
}

// ---------------------------------------------------------------------------------------------
// 2. NextEx with 10 … 1,000,000 lookups open.

fn handle_scaling(c: &mut Criterion, args: &Args) {
    let counts: &[usize] = if args.test {
        &[10, 1_000]
    } else {
        &[10, 1_000, 100_000, 1_000_000]
    };
    let selected: Vec<usize> = counts
        .iter()
        .copied()
        .filter(|n| args.wants(&format!("handle_scaling/next_ex/{n}")))
        .collect();
    if selected.is_empty() {
        return;
    }
    let mut buffer = AlignedBuffer::new(BUFFER_LEN);
    let mut group = c.benchmark_group("handle_scaling");
    group.throughput(Throughput::Elements(1));
    let mut figures = Vec::new();
    for &n in &selected {
        let endless = EndlessHost::new();
        let rss_before = resident_bytes();
        let opened = Instant::now();
        let lookups: Vec<LookupHandle> = (0..n).map(|_| endless.begin()).collect();
        let opened = opened.elapsed();
        let per_lookup = rss_before
            .zip(resident_bytes())
            .map(|(before, after)| after.saturating_sub(before) as f64 / n as f64);
        // The most recently opened lookup: the highest slot of the handle table.
        let lookup = *lookups.last().expect("n > 0");
        endless.check(lookup, &mut buffer);
        let mut call = || {
            black_box(next_ex(
                &endless.host,
                black_box(lookup),
                FLAGS,
                buffer.bytes(),
            ));
        };
        group.bench_with_input(BenchmarkId::new("next_ex", n), &n, |b, _| b.iter(&mut call));
        let ns = args.measures().then(|| {
            let (batches, iters) = if args.test { (3, 10) } else { (101, 2_000) };
            interleaved_medians(batches, iters, &mut [&mut call])[0]
        });
        let closing = Instant::now();
        endless.host.cleanup(endless.session).expect("NSPv2Cleanup");
        let closed = closing.elapsed();
        assert_eq!(endless.host.stats().live_lookups, 0, "lookups left alive");
        if let Some(ns) = ns {
            figures.push((n, ns, opened, closed, per_lookup));
        }
    }
    group.finish();

    if let Some(&(first_n, first_ns, ..)) = figures.first() {
        eprintln!(
            "\nhandle_scaling (NextEx on one lookup while N are open; medians of batches; \
             ratio to N = {first_n}):"
        );
        for (n, ns, opened, closed, per_lookup) in &figures {
            // Small counts fit in memory the allocator already holds: no reading.
            let memory = per_lookup
                .filter(|_| *n >= 100_000)
                .map_or(String::new(), |b| format!(", ~{b:.0} B/lookup"));
            eprintln!(
                "  N = {n:>9}: {ns:8.1} ns  {:.2}x  (Begin x N {:.2} s, Cleanup {:.2} s{memory})",
                ns / first_ns,
                opened.as_secs_f64(),
                closed.as_secs_f64(),
            );
        }
        eprintln!();
    }
}

/// The resident set of this process (Linux), to tell the memory of an open lookup.
fn resident_bytes() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

// ---------------------------------------------------------------------------------------------
// 3. End → NextEx return latency with many blocked lookups.

/// The blocked NextEx calls of one round, one thread each.
struct BlockedRound {
    lookups: Vec<LookupHandle>,
    returned: mpsc::Receiver<(usize, Instant)>,
    /// Holds the threads after their NextEx returned, so that no thread exits (stack unmapping
    /// and all) while others are still being measured.
    release: Arc<Barrier>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BlockedRound {
    /// Begins `n` lookups on `session` and blocks one NextEx in each, on its own thread.
    fn start(host: &Arc<Host>, session: SessionArg, n: usize) -> Self {
        let lookups: Vec<LookupHandle> = (0..n)
            .map(|_| {
                host.begin(session, &Query::name(NAME), FLAGS)
                    .expect("NSPv2LookupServiceBegin")
            })
            .collect();
        let before = BLOCKED.load(Ordering::SeqCst);
        let (tx, returned) = mpsc::channel();
        let release = Arc::new(Barrier::new(n + 1));
        let threads = lookups
            .iter()
            .enumerate()
            .map(|(i, lookup)| {
                let (tx, lookup, release) = (tx.clone(), *lookup, Arc::clone(&release));
                let host = Arc::clone(host);
                std::thread::Builder::new()
                    .name(format!("next-ex-{i}"))
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let mut buffer = AlignedBuffer::new(1024);
                        next_ex(&host, lookup, FLAGS, buffer.bytes());
                        let at = Instant::now();
                        let _ = tx.send((i, at));
                        release.wait();
                    })
                    .expect("spawning a NextEx thread")
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while BLOCKED.load(Ordering::SeqCst) - before < n {
            assert!(Instant::now() < deadline, "NextEx calls did not block");
            std::thread::sleep(Duration::from_millis(1));
        }
        Self {
            lookups,
            returned,
            release,
            threads,
        }
    }

    fn join(self) {
        self.release.wait();
        for thread in self.threads {
            thread.join().expect("NextEx thread");
        }
    }
}

/// The same harness without the framework: `n` threads blocked on their own `Condvar`, woken
/// one at a time; the time from just before the notification to the thread running again is
/// the floor under the End → NextEx latency (thread wake-up on this machine).
struct CondvarRound {
    gates: Vec<Arc<(Mutex<bool>, Condvar)>>,
    returned: mpsc::Receiver<(usize, Instant)>,
    release: Arc<Barrier>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CondvarRound {
    fn start(n: usize) -> Self {
        let gates: Vec<Arc<(Mutex<bool>, Condvar)>> = (0..n).map(|_| Arc::default()).collect();
        let waiting = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Barrier::new(n + 1));
        let (tx, returned) = mpsc::channel();
        let threads = gates
            .iter()
            .enumerate()
            .map(|(i, gate)| {
                let (gate, waiting, release, tx) = (
                    Arc::clone(gate),
                    Arc::clone(&waiting),
                    Arc::clone(&release),
                    tx.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("condvar-{i}"))
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let (open, wake) = &*gate;
                        let mut guard = open.lock().expect("gate lock");
                        waiting.fetch_add(1, Ordering::SeqCst);
                        while !*guard {
                            guard = wake.wait(guard).expect("gate lock");
                        }
                        drop(guard);
                        let at = Instant::now();
                        let _ = tx.send((i, at));
                        release.wait();
                    })
                    .expect("spawning a waiting thread")
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while waiting.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "threads did not wait");
            std::thread::sleep(Duration::from_millis(1));
        }
        Self {
            gates,
            returned,
            release,
            threads,
        }
    }

    /// Wakes thread `i` and returns how long it took to run.
    fn wake(&self, i: usize, timeout: Duration) -> Duration {
        let woken_at = Instant::now();
        let (open, wake) = &*self.gates[i];
        *open.lock().expect("gate lock") = true;
        wake.notify_one();
        let (which, running_at) = self.returned.recv_timeout(timeout).expect("thread woke");
        assert_eq!(which, i, "another thread woke");
        running_at - woken_at
    }

    fn join(self) {
        self.release.wait();
        for thread in self.threads {
            thread.join().expect("waiting thread");
        }
    }
}

fn end_to_next_ex_latency(args: &Args) {
    const ID: &str = "end_to_next_ex_latency";
    if !args.wants(ID) || !args.measures() {
        return;
    }
    let n = if args.test { 16 } else { 1_000 };
    let host = Arc::new(Host::advertise_new(Blocking));
    let session = host.startup().expect("NSPv2Startup");
    let timeout = Duration::from_secs(10);

    // One by one: End a lookup, wait for its NextEx to return, then the next; the others stay
    // blocked meanwhile. Each End alternates with the control's wake-up of one bare thread, so
    // both see the same machine.
    let round = BlockedRound::start(&host, session, n);
    let bare = CondvarRound::start(n);
    std::thread::sleep(Duration::from_millis(50));
    let mut latencies = Vec::with_capacity(n);
    let mut end_calls = Vec::with_capacity(n);
    let mut control = Vec::with_capacity(n);
    for (i, lookup) in round.lookups.iter().enumerate() {
        control.push(bare.wake(i, timeout));
        let ended_at = Instant::now();
        host.end(*lookup).expect("NSPv2LookupServiceEnd");
        end_calls.push(ended_at.elapsed());
        let (which, returned_at) = round
            .returned
            .recv_timeout(timeout)
            .expect("NextEx returned");
        assert_eq!(which, i, "another NextEx returned");
        latencies.push(returned_at - ended_at);
    }
    round.join();
    bare.join();

    // Burst: End every lookup back to back, then collect the returns.
    let round = BlockedRound::start(&host, session, n);
    std::thread::sleep(Duration::from_millis(50));
    let mut ended_at = Vec::with_capacity(n);
    for lookup in &round.lookups {
        ended_at.push(Instant::now());
        host.end(*lookup).expect("NSPv2LookupServiceEnd");
    }
    let mut burst = vec![Duration::ZERO; n];
    let mut last_return = ended_at[0];
    for _ in 0..n {
        let (which, returned_at) = round
            .returned
            .recv_timeout(timeout)
            .expect("NextEx returned");
        burst[which] = returned_at - ended_at[which];
        last_return = last_return.max(returned_at);
    }
    let burst_span = last_return - ended_at[0];
    round.join();
    host.cleanup(session).expect("NSPv2Cleanup");
    assert_eq!(host.stats().live_lookups, 0, "lookups left alive");

    latencies.sort();
    end_calls.sort();
    control.sort();
    burst.sort();
    let report = |label: &str, sorted: &[Duration]| {
        eprintln!(
            "  {label}: p50 {:7.1} us  p90 {:7.1} us  p99 {:7.1} us  max {:7.1} us",
            micros(percentile(sorted, 0.50)),
            micros(percentile(sorted, 0.90)),
            micros(percentile(sorted, 0.99)),
            micros(percentile(sorted, 1.0)),
        );
    };
    eprintln!("\n{ID} ({n} NextEx calls blocked in the provider, one thread each):");
    report("one by one, End -> NextEx returned", &latencies);
    report("one by one, End call itself       ", &end_calls);
    report("control: bare Condvar wake-up     ", &control);
    report("burst,      End -> NextEx returned", &burst);
    eprintln!(
        "  burst: first End to last return {:.1} ms",
        burst_span.as_secs_f64() * 1e3
    );
    let p99 = percentile(&latencies, 0.99);
    eprintln!(
        "  one-by-one p99 {:.3} ms (target <= 1 ms)\n",
        p99.as_secs_f64() * 1e3
    );
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args = Args::parse();
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .nresamples(10_000)
        .without_plots()
        .configure_from_args();
    next_ex_overhead(&mut criterion, &args);
    handle_scaling(&mut criterion, &args);
    end_to_next_ex_latency(&args);
    criterion.final_summary();
}
