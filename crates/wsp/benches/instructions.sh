#!/bin/sh
# Instructions per WSPSend and per WSPRecv (callgrind), for the base alone and through each
# transparent layer, with N other sockets open. See docs/benchmarks.md (WSP).
#
#   crates/wsp/benches/instructions.sh                 # N = 10, 1000, 100000; 20,000 calls
#   CALLS=5000 OPEN="10 1000" crates/wsp/benches/instructions.sh
#
# The benchmark binary is built with symbols in target/callgrind, then run once per setup and N
# in its `--instructions` mode under callgrind, collecting only inside `measure_calls` (the
# setup, the warm-up and the checks are not counted). Per call: the inclusive instructions of
# `Pair::send` / `Pair::recv` divided by CALLS; "upcalls" is what the simulated ws2_32's
# WPUQuerySocketHandleContext cost in them (the host's work, not the provider's).
set -eu
CALLS=${CALLS:-20000}
OPEN=${OPEN:-10 1000 100000}
KINDS=${KINDS:-base non_ifs ifs}
OUT=${OUT:-target/callgrind/out}
export CARGO_TARGET_DIR=target/callgrind CARGO_PROFILE_BENCH_STRIP=none \
    CARGO_PROFILE_BENCH_DEBUG=false
bin=$(cargo bench -p winprov-wsp --bench wsp --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\/wsp-[0-9a-f]*\)).*/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "no benchmark binary" >&2; exit 1; }
mkdir -p "$OUT"

# Inclusive instructions of the function whose name ends the line matching $2 in file $1.
inclusive() {
    callgrind_annotate --inclusive=yes --threshold=100 "$1" |
        grep -E "$2" | head -n 1 | awk '{gsub(",", "", $1); print $1 + 0}'
}

printf '%-8s %7s %10s %10s %8s %8s %12s %12s\n' setup open send/call recv/call \
    'send x' 'recv x' upcalls/call 'w/o upcalls'
for open in $OPEN; do
    base_send='' base_recv=''
    for kind in $KINDS; do
        file="$OUT/$kind-$open.out"
        valgrind --tool=callgrind --toggle-collect='*measure_calls*' \
            --callgrind-out-file="$file" "$bin" --instructions "$kind" "$open" "$CALLS" \
            2>/dev/null
        send=$(inclusive "$file" 'wsp::Pair::send( |$)')
        recv=$(inclusive "$file" 'wsp::Pair::recv( |$)')
        upcalls=$(inclusive "$file" 'wpu_query_socket_handle_context( |$)')
        if [ "$kind" = base ]; then base_send=$send base_recv=$recv; fi
        # Ratios to the base alone with as many sockets open (when it ran first).
        awk -v k="$kind" -v o="$open" -v s="$send" -v r="$recv" -v u="$upcalls" -v n="$CALLS" \
            -v bs="${base_send:-0}" -v br="${base_recv:-0}" \
            'BEGIN { printf "%-8s %7d %10.1f %10.1f %7.3fx %7.3fx %12.1f %12.1f\n", k, o,
                     s / n, r / n, bs ? s / bs : 0, br ? r / br : 0,
                     u / (2 * n), (s + r - u) / (2 * n) }'
    done
done
