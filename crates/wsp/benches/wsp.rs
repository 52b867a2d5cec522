//! Benchmarks of a layered service provider: `WSPSend` and `WSPRecv` through a transparent
//! layer over the in-memory transport, against the same calls made to that transport directly.
//!
//! Three setups, each started by the ws2_32 simulator (`testing::winsock`) through its real
//! `WSPStartup`, one at a time (the simulator is process-wide):
//!
//! - `base`: `abi::Base<Memory>` alone, started with its own catalog entry;
//! - `non_ifs`, `ifs`: an empty `impl Layer` (every hook passes down) of either kind of
//!   handles, started with a chain entry [layer, base]; it finds the same kind of base in an
//!   in-process catalog and starts it with the simulator's upcall table.
//!
//! Every call goes through the `lpWSPSend` / `lpWSPRecv` slot of the proc table the simulator
//! got, directly (not through the simulator's `Winsock::send` helpers, which add their own
//! bookkeeping): non-overlapped, one 64-byte buffer, on a connected pair (send on one end,
//! receive on the other, so the queue stays bounded).
//!
//! `cargo bench -p winprov-wsp` runs, in one process:
//!
//! 1. `send_recv`: criterion's estimates for each setup, and the benchmark's own medians of
//!    batches, the setups taking turns round by round; the ratios layer / base;
//! 2. `socket_scaling`: the same calls with 10 … 100,000 other sockets open (through the
//!    layer: both the layer's table and the base's grow);
//! 3. `allocations`: heap allocations per call (a counting global allocator), for each setup.
//!
//! Instructions per call are counted under callgrind: `--instructions <setup> <open> <calls>`
//! runs `<calls>` send + receive pairs in `measure_calls` and nothing else (see
//! `benches/instructions.sh` and `docs/benchmarks.md`).
//!
//! Arguments are criterion's. A positional filter also selects the parts here (substring
//! match); `cargo test --benches` (or `-- --test`) runs everything once at a reduced size and
//! checks, outside the timed loops, that the bytes sent arrived.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use winprov_bindings::windows_core::{GUID, PSTR};
use winprov_bindings::ws2spi::{
    LPWSAOVERLAPPED_COMPLETION_ROUTINE, OVERLAPPED, SOCKET, WSABUF, WSAPROTOCOL_INFOW, WSATHREADID,
};
use winprov_wsp::Layer;
use winprov_wsp::abi::Socket;
use winprov_wsp::layer::{Handles, Ifs, NonIfs, Opened};
use winprov_wsp::testing::stack;
use winprov_wsp::testing::winsock::{self, Winsock};

// ---------------------------------------------------------------------------------------------
// Heap allocations, counted.

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static REALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static DEALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting its calls.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged (so `System`'s
// guarantees hold); counting is a relaxed atomic add, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        DEALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded (`ptr` came from `System`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded (`ptr` came from `System`).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocator calls so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Heap {
    alloc: u64,
    realloc: u64,
    dealloc: u64,
}

impl Heap {
    fn now() -> Self {
        Self {
            alloc: ALLOCATIONS.load(Ordering::Relaxed),
            realloc: REALLOCATIONS.load(Ordering::Relaxed),
            dealloc: DEALLOCATIONS.load(Ordering::Relaxed),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            alloc: self.alloc - before.alloc,
            realloc: self.realloc - before.realloc,
            dealloc: self.dealloc - before.dealloc,
        }
    }

    fn add(&mut self, other: Self) {
        self.alloc += other.alloc;
        self.realloc += other.realloc;
        self.dealloc += other.dealloc;
    }
}

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
    /// `--instructions <setup> <open> <calls>`: the callgrind mode.
    instructions: Option<(Kind, usize, u64)>,
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
            instructions: None,
        };
        let mut bench = false;
        let mut iter = std::env::args().skip(1);
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--instructions" => {
                    let usage = "--instructions <base|non_ifs|ifs> <open sockets> <calls>";
                    let kind = iter.next().and_then(|k| Kind::named(&k)).expect(usage);
                    let open = iter.next().and_then(|n| n.parse().ok()).expect(usage);
                    let calls = iter.next().and_then(|n| n.parse().ok()).expect(usage);
                    args.instructions = Some((kind, open, calls));
                }
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

    /// Whether the own measurements (medians, allocations) run.
    fn measures(&self) -> bool {
        !self.list && !self.profile
    }
}

// ---------------------------------------------------------------------------------------------
// The providers: the base alone, and a transparent layer of each kind over the same base.

const LAYER_ID: GUID = GUID::from_u128(0x7769_6e70_726f_7600_1a7e_0000_0000_00b1);
const AF: i32 = 2;
const SOCK_STREAM: i32 = 1;
const IPPROTO_TCP: i32 = 6;

/// A transparent layer: no state, no hook (each passes down, the trait's default).
struct Transparent<H>(PhantomData<H>);

impl<H: Handles> Layer for Transparent<H> {
    type Handles = H;
    type Socket = ();
    const PROVIDER_ID: GUID = LAYER_ID;

    fn open(&self, _: &Opened<'_>) {}
}

winprov_wsp::layer_process!(mod ifs: Transparent<Ifs> = || Transparent(PhantomData));
winprov_wsp::layer_process!(mod non_ifs: Transparent<NonIfs> = || Transparent(PhantomData));

/// One of the three setups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Base,
    NonIfs,
    Ifs,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Base, Kind::NonIfs, Kind::Ifs];

    fn name(self) -> &'static str {
        match self {
            Kind::Base => "base",
            Kind::NonIfs => "non_ifs",
            Kind::Ifs => "ifs",
        }
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    fn startup(self) -> winsock::Startup {
        match self {
            Kind::Base => stack::base_startup(),
            Kind::NonIfs => non_ifs::startup,
            Kind::Ifs => ifs::startup,
        }
    }

    fn entry(self) -> WSAPROTOCOL_INFOW {
        match self {
            Kind::Base => stack::base_entry(),
            Kind::NonIfs | Kind::Ifs => stack::chain_entry(LAYER_ID, 0),
        }
    }

    /// Sockets the layer serves (none for the base alone).
    fn layer_sockets(self) -> usize {
        match self {
            Kind::Base => 0,
            Kind::NonIfs => non_ifs::PROCESS.dispatch().map_or(0, |d| d.sockets()),
            Kind::Ifs => ifs::PROCESS.dispatch().map_or(0, |d| d.sockets()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calling the slots as ws2_32 does.

/// The bytes of every send.
const LEN: usize = 64;

type SendSlot = unsafe extern "system" fn(
    SOCKET,
    *const WSABUF,
    u32,
    *mut u32,
    u32,
    *mut OVERLAPPED,
    LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    *const WSATHREADID,
    *mut i32,
) -> i32;

type RecvSlot = unsafe extern "system" fn(
    SOCKET,
    *const WSABUF,
    u32,
    *mut u32,
    *mut u32,
    *mut OVERLAPPED,
    LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    *const WSATHREADID,
    *const i32,
) -> i32;

/// A connected pair and the two slots, called through their pointers.
struct Pair {
    send_slot: SendSlot,
    recv_slot: RecvSlot,
    client: SOCKET,
    server: SOCKET,
    out: [u8; LEN],
    into: [u8; LEN],
}

#[cold]
#[inline(never)]
fn failed(slot: &str, errno: i32) -> ! {
    panic!("{slot} failed with {errno}");
}

impl Pair {
    /// `WSPSend(client, [64 bytes], 1, &sent, 0, NULL, NULL, NULL, &errno)`: the bytes sent.
    #[inline(never)]
    fn send(&mut self) -> u32 {
        let buffer = WSABUF {
            len: LEN as u32,
            buf: PSTR(self.out.as_mut_ptr()),
        };
        let (mut sent, mut errno) = (0u32, 0i32);
        // SAFETY: the slot of a proc table the provider's WSPStartup handed out (the provider
        // stays started while the pair lives); a live socket of that provider, a one-entry
        // array and its buffer readable for the call, live locals for the out-parameters, no
        // overlapped request.
        let ret = unsafe {
            (self.send_slot)(
                self.client,
                &buffer,
                1,
                &mut sent,
                0,
                std::ptr::null_mut(),
                None,
                std::ptr::null(),
                &mut errno,
            )
        };
        if ret != 0 {
            failed("WSPSend", errno);
        }
        sent
    }

    /// `WSPRecv(server, [64 bytes], 1, &received, &flags, NULL, NULL, NULL, &errno)`: the
    /// bytes received.
    #[inline(never)]
    fn recv(&mut self) -> u32 {
        let buffer = WSABUF {
            len: LEN as u32,
            buf: PSTR(self.into.as_mut_ptr()),
        };
        let (mut received, mut flags, mut errno) = (0u32, 0u32, 0i32);
        // SAFETY: as for `send`; the buffer is writable for the call.
        let ret = unsafe {
            (self.recv_slot)(
                self.server,
                &buffer,
                1,
                &mut received,
                &mut flags,
                std::ptr::null_mut(),
                None,
                std::ptr::null(),
                &mut errno,
            )
        };
        if ret != 0 {
            failed("WSPRecv", errno);
        }
        received
    }

    /// One send and its receive, checked: the 64 bytes arrived unchanged.
    fn check(&mut self, stamp: u8) {
        self.out = std::array::from_fn(|i| stamp.wrapping_add(i as u8));
        self.into = [0; LEN];
        assert_eq!(self.send(), LEN as u32, "WSPSend sent every byte");
        assert_eq!(self.recv(), LEN as u32, "WSPRecv received every byte");
        assert_eq!(self.into, self.out, "the bytes arrived unchanged");
    }

    /// Time of `iters` sends, each received again outside the timed chunks.
    fn timed_sends(&mut self, iters: u64) -> Duration {
        self.timed(iters, true)
    }

    /// Time of `iters` receives, each of a send made outside the timed chunks.
    fn timed_recvs(&mut self, iters: u64) -> Duration {
        self.timed(iters, false)
    }

    fn timed(&mut self, iters: u64, sends: bool) -> Duration {
        const CHUNK: u64 = 64;
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK);
            if sends {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(self.send());
                }
                total += start.elapsed();
                for _ in 0..n {
                    black_box(self.recv());
                }
            } else {
                for _ in 0..n {
                    black_box(self.send());
                }
                let start = Instant::now();
                for _ in 0..n {
                    black_box(self.recv());
                }
                total += start.elapsed();
            }
            left -= n;
        }
        total
    }
}

/// The calls callgrind counts (`--toggle-collect=*measure_calls*`): `calls` sends, each
/// received at once.
#[inline(never)]
fn measure_calls(pair: &mut Pair, calls: u64) {
    for _ in 0..calls {
        black_box(pair.send());
        black_box(pair.recv());
    }
}

/// One setup, started: the simulator's turn, `open` other sockets, a connected pair.
struct Setup {
    kind: Kind,
    ws: Winsock,
    others: Vec<Socket>,
    client: Socket,
    server: Socket,
    pair: Pair,
    /// Time to open the other sockets.
    opened: Duration,
}

impl Setup {
    fn start(kind: Kind, open: usize) -> Self {
        static PORT: AtomicU64 = AtomicU64::new(4000);
        let ws = Winsock::start(kind.startup(), kind.entry()).expect("WSPStartup");
        let opening = Instant::now();
        let others: Vec<Socket> = (0..open)
            .map(|_| ws.socket(AF, SOCK_STREAM, IPPROTO_TCP).expect("WSPSocket"))
            .collect();
        let opened = opening.elapsed();
        let port = PORT.fetch_add(1, Ordering::Relaxed) as u16;
        let name = port.to_be_bytes();
        let listener = ws.socket(AF, SOCK_STREAM, IPPROTO_TCP).expect("socket");
        ws.bind(listener, &name).expect("bind");
        ws.listen(listener, 1).expect("listen");
        let client = ws.socket(AF, SOCK_STREAM, IPPROTO_TCP).expect("socket");
        ws.connect(client, &name).expect("connect");
        let (server, _) = ws.accept(listener).expect("accept");
        ws.close(listener).expect("close the listener");
        ws.check();
        let table = ws.table();
        let pair = Pair {
            send_slot: table.lpWSPSend.expect("checked by Winsock::start"),
            recv_slot: table.lpWSPRecv.expect("checked by Winsock::start"),
            client: SOCKET(client.raw()),
            server: SOCKET(server.raw()),
            out: [0xA5; LEN],
            into: [0; LEN],
        };
        let mut setup = Self {
            kind,
            ws,
            others,
            client,
            server,
            pair,
            opened,
        };
        setup.pair.check(kind as u8);
        assert_eq!(
            kind.layer_sockets(),
            if kind == Kind::Base { 0 } else { open + 2 },
            "the layer serves every socket"
        );
        setup
    }

    /// Checks once more, closes every socket and ends the turn (the final cleanup).
    fn finish(mut self) {
        self.pair.check(0x5A);
        self.ws.clear_upcalls();
        self.ws.check();
        self.ws.close(self.client).expect("close");
        self.ws.close(self.server).expect("close");
        for socket in self.others.drain(..) {
            self.ws.close(socket).expect("close");
        }
        assert_eq!(self.kind.layer_sockets(), 0, "every socket closed");
        drop(self.ws.finish());
        assert_eq!(stack::base().startups(), 0, "the base cleaned up");
    }
}

// ---------------------------------------------------------------------------------------------
// Own timings.

/// Nanoseconds per send and per receive in each of `batches` batches of `iters` calls.
fn batches(setup: &mut Setup, batches: usize, iters: u64) -> (Vec<f64>, Vec<f64>) {
    let mut sends = Vec::with_capacity(batches);
    let mut recvs = Vec::with_capacity(batches);
    setup.pair.timed_sends(iters);
    for _ in 0..batches {
        setup.ws.clear_upcalls();
        sends.push(setup.pair.timed_sends(iters).as_nanos() as f64 / iters as f64);
        recvs.push(setup.pair.timed_recvs(iters).as_nanos() as f64 / iters as f64);
    }
    (sends, recvs)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// 1. Send and receive: the base alone, through each layer.

fn send_recv(c: &mut Criterion, args: &Args) {
    const ID: &str = "send_recv";
    if !Kind::ALL
        .iter()
        .any(|k| args.wants(&format!("{ID}/{}", k.name())))
    {
        return;
    }
    let mut group = c.benchmark_group(ID);
    group.throughput(Throughput::Elements(1));
    for kind in Kind::ALL {
        if !args.wants(&format!("{ID}/{}", kind.name())) {
            continue;
        }
        let mut setup = Setup::start(kind, 10);
        let name = kind.name();
        group.bench_function(BenchmarkId::new(name, "send"), |b| {
            b.iter_custom(|iters| {
                setup.ws.clear_upcalls();
                setup.pair.timed_sends(iters)
            })
        });
        group.bench_function(BenchmarkId::new(name, "recv"), |b| {
            b.iter_custom(|iters| {
                setup.ws.clear_upcalls();
                setup.pair.timed_recvs(iters)
            })
        });
        setup.finish();
    }
    group.finish();

    if !args.measures()
        || !Kind::ALL
            .iter()
            .all(|k| args.wants(&format!("{ID}/{}", k.name())))
    {
        return;
    }
    // The setups take turns round by round (the simulator serves one at a time).
    let (rounds, per_round, iters) = if args.test {
        (1, 3, 64)
    } else {
        (7, 31, 2_048)
    };
    let mut samples: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); 3];
    for _ in 0..rounds {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let mut setup = Setup::start(kind, 10);
            let (sends, recvs) = batches(&mut setup, per_round, iters);
            samples[i].0.extend(sends);
            samples[i].1.extend(recvs);
            setup.finish();
        }
    }
    let medians: Vec<(f64, f64)> = samples
        .into_iter()
        .map(|(s, r)| (median(s), median(r)))
        .collect();
    let (base_send, base_recv) = medians[0];
    eprintln!(
        "\n{ID} (one 64-byte buffer, non-overlapped, through the proc table's slots; medians of \
         {rounds} rounds x {per_round} batches of {iters} calls, the setups taking turns):"
    );
    for (kind, (send, recv)) in Kind::ALL.into_iter().zip(&medians) {
        eprintln!(
            "  {:8} WSPSend {send:7.1} ns  {:.3}x   WSPRecv {recv:7.1} ns  {:.3}x",
            kind.name(),
            send / base_send,
            recv / base_recv,
        );
    }
    eprintln!("  (ratios to the base alone; target <= 1.10x)\n");
}

// ---------------------------------------------------------------------------------------------
// 2. The same calls with many sockets open.

fn socket_scaling(c: &mut Criterion, args: &Args) {
    const ID: &str = "socket_scaling";
    let counts: &[usize] = if args.test {
        &[10, 1_000]
    } else {
        &[10, 1_000, 100_000]
    };
    let mut group = c.benchmark_group(ID);
    group.throughput(Throughput::Elements(2));
    let mut figures = Vec::new();
    for &n in counts {
        for kind in Kind::ALL {
            let id = format!("{ID}/{}/{n}", kind.name());
            if !args.wants(&id) {
                continue;
            }
            let mut setup = Setup::start(kind, n);
            group.bench_function(BenchmarkId::new(kind.name(), n), |b| {
                b.iter_custom(|iters| {
                    setup.ws.clear_upcalls();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(setup.pair.send());
                        black_box(setup.pair.recv());
                    }
                    start.elapsed()
                })
            });
            if args.measures() {
                let (count, iters) = if args.test { (3, 64) } else { (101, 2_048) };
                let (sends, recvs) = batches(&mut setup, count, iters);
                figures.push((kind, n, median(sends), median(recvs), setup.opened));
            }
            setup.finish();
        }
    }
    group.finish();

    if figures.is_empty() {
        return;
    }
    eprintln!(
        "\n{ID} (WSPSend / WSPRecv on one pair while N other sockets are open; medians of \
         batches; ratio to N = {}):",
        counts[0]
    );
    for &(kind, n, send, recv, opened) in &figures {
        let first = figures
            .iter()
            .find(|f| f.0 == kind)
            .expect("the first count");
        eprintln!(
            "  {:8} N = {n:>7}: WSPSend {send:7.1} ns {:.2}x   WSPRecv {recv:7.1} ns {:.2}x   \
             (opened in {:.2} s)",
            kind.name(),
            send / first.2,
            recv / first.3,
            opened.as_secs_f64(),
        );
    }
    eprintln!();
}

// ---------------------------------------------------------------------------------------------
// 3. Heap allocations per call.

fn allocations(args: &Args) {
    const ID: &str = "allocations";
    if !args.wants(ID) || !args.measures() {
        return;
    }
    let calls: u64 = if args.test { 100 } else { 10_000 };
    let mut per_kind = Vec::new();
    for kind in Kind::ALL {
        let mut setup = Setup::start(kind, 10);
        // Warm: the queues, the simulator's upcall log (cleared: its memory stays).
        for _ in 0..calls {
            setup.pair.send();
            setup.pair.recv();
        }
        setup.ws.clear_upcalls();
        let (mut sends, mut recvs) = (Heap::default(), Heap::default());
        for _ in 0..calls {
            let before = Heap::now();
            black_box(setup.pair.send());
            let between = Heap::now();
            black_box(setup.pair.recv());
            let after = Heap::now();
            sends.add(between.since(before));
            recvs.add(after.since(between));
        }
        per_kind.push((kind, sends, recvs));
        setup.finish();
    }
    let per_call = |count: u64| count as f64 / calls as f64;
    eprintln!("\n{ID} (allocator calls per call, over {calls} calls after as many to warm up):");
    for (kind, sends, recvs) in &per_kind {
        eprintln!(
            "  {:8} WSPSend: {:.2} alloc {:.2} realloc {:.2} free   \
             WSPRecv: {:.2} alloc {:.2} realloc {:.2} free",
            kind.name(),
            per_call(sends.alloc),
            per_call(sends.realloc),
            per_call(sends.dealloc),
            per_call(recvs.alloc),
            per_call(recvs.realloc),
            per_call(recvs.dealloc),
        );
    }
    let (_, base_sends, base_recvs) = per_kind[0];
    for (kind, sends, recvs) in &per_kind[1..] {
        let extra = |layer: u64, base: u64| layer as i64 - base as i64;
        eprintln!(
            "  {:8} extra over the base: WSPSend {:+} alloc {:+} realloc, WSPRecv {:+} alloc \
             {:+} realloc (in {calls} calls each)",
            kind.name(),
            extra(sends.alloc, base_sends.alloc),
            extra(sends.realloc, base_sends.realloc),
            extra(recvs.alloc, base_recvs.alloc),
            extra(recvs.realloc, base_recvs.realloc),
        );
    }
    eprintln!();
    // Not a timing: the layer's path allocates nothing of its own, whatever the machine.
    for (kind, sends, recvs) in &per_kind[1..] {
        assert_eq!(
            (*sends, *recvs),
            (base_sends, base_recvs),
            "{} layer: allocator calls beyond the base's",
            kind.name()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Instructions: the callgrind mode.

/// `--instructions <setup> <open> <calls>`: the setup with `open` other sockets, 1,000 calls
/// to warm up, then `calls` sends and receives in [`measure_calls`], and nothing else.
fn instructions(kind: Kind, open: usize, calls: u64) {
    let mut setup = Setup::start(kind, open);
    for _ in 0..1_000 {
        black_box(setup.pair.send());
        black_box(setup.pair.recv());
    }
    setup.ws.clear_upcalls();
    let before = Heap::now();
    measure_calls(&mut setup.pair, calls);
    let heap = Heap::now().since(before);
    eprintln!(
        "{}: {calls} WSPSend + WSPRecv with {open} other sockets open; allocator calls: {} \
         alloc, {} realloc, {} free",
        kind.name(),
        heap.alloc,
        heap.realloc,
        heap.dealloc,
    );
    setup.finish();
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args = Args::parse();
    if let Some((kind, open, calls)) = args.instructions {
        instructions(kind, open, calls);
        return;
    }
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .nresamples(10_000)
        .without_plots()
        .configure_from_args();
    send_recv(&mut criterion, &args);
    socket_scaling(&mut criterion, &args);
    allocations(&args);
    criterion.final_summary();
}
