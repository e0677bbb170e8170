#!/usr/bin/env bash
# make bench (after the Go benchmarks): whole-daemon figures with cmd/virtstorage-bench.
#
# Builds the tool and virtstoraged, starts virtstoraged under a private --root, and, when
# libvirtd is installed and we are root, libvirt's own daemon through shared/tools/anchor.sh.
# With both it runs `virtstorage-bench --compare LIBVIRTD VIRTSTORAGED` (B/A = ours/libvirt's);
# with one, that one alone. A daemon that cannot be built or started is skipped with a
# message, never a failure: the benchmark is informative, not a gate.
#
# Knobs (environment):
#   BENCH_ROUNDS=3     rounds (medians [min-max] over them)
#   BENCH_ARGS=...     more flags, e.g. "--only rpc_lookup,stream" or smaller sizes
#   BENCH_QUICK=1      tiny sizes: a smoke run of every scenario in seconds
#   BENCH_OUT=DIR      where the JSON and the table go (default bin/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
ROUNDS=${BENCH_ROUNDS:-3}
OUT=${BENCH_OUT:-bin/bench}
mkdir -p bin "$OUT"

echo "== virtstorage-bench: building"
$GO build -o bin/virtstorage-bench ./cmd/virtstorage-bench

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vsbench.XXXXXX")
ours_pid=""
anchor_started=""
anchor_dir=${ANCHOR_DIR:-${TMPDIR:-/tmp}/libvirt-anchor}
anchor=""
# shared/ lies beside the checkout (as CI lays it out); no absolute fallback.
if [ -f ../shared/tools/anchor.sh ]; then anchor=../shared/tools/anchor.sh; fi
cleanup() {
	if [ -n "$ours_pid" ]; then
		kill "$ours_pid" 2>/dev/null || true
		wait "$ours_pid" 2>/dev/null || true
	fi
	if [ -n "$anchor_started" ]; then
		bash "$anchor" stop "$anchor_dir" || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- ours -------------------------------------------------------------------------
uri_ours="" pid_ours=""
if $GO build -o bin/virtstoraged ./cmd/virtstoraged 2>"$tmp/build.log"; then
	# Short root: UNIX socket paths are limited to 108 bytes.
	root=$(mktemp -d /tmp/vsbXXXXXX)
	sock=$root/run/libvirt/virtstoraged-sock
	bin/virtstoraged --root "$root" >"$OUT/virtstoraged.log" 2>&1 &
	ours_pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	if [ -S "$sock" ]; then
		uri_ours="storage:///system?socket=$sock" pid_ours=$ours_pid
		echo "== virtstoraged: pid $ours_pid, $uri_ours"
	else
		echo "== virtstoraged did not listen on $sock; skipped (log: $OUT/virtstoraged.log)" >&2
	fi
	trap 'cleanup; rm -rf "$root"' EXIT
else
	echo "== cmd/virtstoraged does not build; skipped:" >&2
	tail -5 "$tmp/build.log" >&2
fi

# --- libvirtd ----------------------------------------------------------------------
uri_lv="" pid_lv=""
if [ "$(id -u)" != 0 ]; then
	echo "== libvirtd comparison needs root; skipped" >&2
elif ! PATH=$PATH:/usr/sbin:/sbin command -v libvirtd >/dev/null; then
	echo "== libvirtd not installed (apt-get install libvirt-daemon); skipped" >&2
elif [ -z "$anchor" ]; then
	echo "== shared/tools/anchor.sh not found; libvirtd skipped" >&2
else
	# Only one root libvirtd runs at a time: hold the lock the tests take
	# (internal/testkit) for as long as ours may run.
	exec 9>"${TMPDIR:-/tmp}/anchor-e2e.lock"
	flock 9
	pidf=$anchor_dir/libvirtd.pid
	if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
		echo "== libvirtd: sharing the anchor already running in $anchor_dir"
	else
		anchor_started=1
	fi
	if out=$(PATH=$PATH:/usr/sbin:/sbin bash "$anchor" start "$anchor_dir" 2>"$tmp/anchor.log") &&
		[ -S "$anchor_dir/run/libvirt-sock" ] && [ -f "$pidf" ]; then
		uri_lv=$(tail -1 <<<"$out") pid_lv=$(cat "$pidf")
		echo "== libvirtd: pid $pid_lv, $uri_lv"
	else
		echo "== libvirtd did not start (another libvirtd holding /run/libvirt?); skipped" >&2
		cat "$tmp/anchor.log" >&2 || true
	fi
fi

args=(--rounds "$ROUNDS" --workdir "$tmp/wd" --json "$OUT/bench.json")
if [ -n "${BENCH_QUICK:-}" ]; then
	args+=(--n-lookup 200 --threads 2 --duration 0.5 --files 200 --n-create 20 --n-qcow2 3
		--stream-size 16M --sparse-size 64M --sparse-data 8M --wipe-size 8M)
fi
# shellcheck disable=SC2206 # BENCH_ARGS is a list of flags on purpose
args+=(${BENCH_ARGS:-})

if [ -n "$uri_lv" ] && [ -n "$uri_ours" ]; then
	echo "== compare: A = libvirtd, B = virtstoraged (B/A > 1: ours is higher)"
	bin/virtstorage-bench --compare "$uri_lv" "$uri_ours" --pid-a "$pid_lv" --pid-b "$pid_ours" "${args[@]}" |
		tee "$OUT/bench.txt"
elif [ -n "$uri_ours" ]; then
	bin/virtstorage-bench --uri "$uri_ours" --pid "$pid_ours" "${args[@]}" | tee "$OUT/bench.txt"
elif [ -n "$uri_lv" ]; then
	echo "== only libvirtd is available: reference figures alone"
	bin/virtstorage-bench --uri "$uri_lv" --pid "$pid_lv" "${args[@]}" | tee "$OUT/bench.txt"
else
	echo "== no daemon to benchmark; nothing to do" >&2
	exit 0
fi
echo "== table in $OUT/bench.txt, every sample in $OUT/bench.json"
