#!/bin/bash
# Run a test suite (unit | bpf | netns | vm | vm-full | all) and print one closing line:
#   "N passed, N failed, N skipped"
# A test script exits 0 for pass, 77 for skipped (a feature probe said no), else fail.
#
#   NETNS_JOBS   netns tests run at once (default 3). Each builds its own namespaces
#                with a per-run id, so they do not see each other; most of their time
#                is spent waiting (timers, etcd elections, client rates), not on a CPU.
#                A test whose header has a line "# run.sh: alone" runs with no other
#                test beside it (it builds the tree, or floods). NETNS_JOBS=1: one at
#                a time, output streamed as before.
#   NETNS_ONLY   space-separated test names (test_x or x) to run instead of all.
#
# `all` (make check) runs unit, bpf and vm side by side, then netns.
# `vm` is the VM test of `make check` (every program loaded on Debian 12's 6.1, the
# XDP packet tables, shiftd attached by XDP and TC); `vm-full` adds the TC packet
# tables under TCG and the XDP smoke test (`make check-vm`). See vmtest/README.md.
set -u
cd "$(dirname "$0")/.."
OUT=${OUTPUT:-.output}
NETNS_JOBS=${NETNS_JOBS:-3}
pass=0 fail=0 skip=0
failed=()

# result NAME RC SECONDS: count and print the closing line of one test.
result() {
	case $2 in
	0) pass=$((pass + 1)); echo "--- PASS  $1 ($3s)" ;;
	77) skip=$((skip + 1)); echo "--- SKIP  $1" ;;
	*) fail=$((fail + 1)); failed+=("$1"); echo "--- FAIL  $1 (exit $2, $3s)" ;;
	esac
}

run_one() {
	local name=$1
	shift
	local start=$SECONDS rc pid
	echo "=== RUN   $name"
	"$@" &
	pid=$!
	# A `timeout` runs its command in a process group of its own, which a
	# terminal's Ctrl-C never reaches: pass INT/TERM on to it, then stop.
	# shellcheck disable=SC2064 # pid is this run's, now
	trap "kill -TERM $pid 2>/dev/null; wait $pid; exit 130" INT TERM
	wait "$pid"
	rc=$?
	trap - INT TERM
	result "$name" "$rc" $((SECONDS - start))
}

suite_unit() {
	local t
	for t in "$OUT"/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "unit/$(basename "$t")" "$t"
	done
}

# The TC suites once more with the shift_compat build, the one kernels before 6.2
# load (its TC checksums through the helpers): this kernel takes the other one.
BPF_COMPAT_TESTS=budget,compat,packets_tc,packets_tc_csum_complete,snat,be_cache,svc_cache
bpf_compat() {
	SHIFT_TEST_COMPAT=1 "$OUT/tests/bpf_test" -T "$BPF_COMPAT_TESTS"
}

# Every case of `make bench-datapath` once, on a small table and a few calls: its
# set-up, verdicts and the HTTP answer's samples (exit 1 on an unexpected verdict or
# a missing sample), not its figures, which mean nothing here. A datapath change that
# leaves a case unable to open its flow, or an answer without its sample, fails here
# rather than on the next benchmark run.
bench_smoke() {
	local log=$OUT/tests/bench_smoke.err

	"$OUT/bench/bench_datapath" --flows 1024 --iters 2000 --batches 2 >/dev/null 2>"$log" &&
		return 0
	cat "$log"
	return 1
}

suite_bpf() {
	run_one "bpf/bpf_test" "$OUT/tests/bpf_test"
	run_one "bpf/bpf_test-compat" bpf_compat
	run_one "bpf/bench_smoke" bench_smoke
}

# unit and bpf side by side (`all`): each is one CPU-bound process at a time
# (libFuzzer for 5 s a harness, BPF_PROG_TEST_RUN loops), neither measures time;
# the BPF suite's output is printed in one block after the unit tests.
suite_unit_bpf() {
	local log=$OUT/tests/bpf_test.log clog=$OUT/tests/bpf_test-compat.log pid rc crc brc
	local blog=$OUT/tests/bench_smoke.log start=$SECONDS
	rm -f "$log.rc" "$clog.rc" "$blog.rc"
	(
		"$OUT/tests/bpf_test" >"$log" 2>&1 </dev/null
		echo "$?" >"$log.rc"
		bpf_compat >"$clog" 2>&1 </dev/null
		echo "$?" >"$clog.rc"
		bench_smoke >"$blog" 2>&1 </dev/null
		echo "$?" >"$blog.rc"
	) &
	pid=$!
	suite_unit
	wait "$pid"
	rc=$(cat "$log.rc" 2>/dev/null || echo 1)
	crc=$(cat "$clog.rc" 2>/dev/null || echo 1)
	echo "=== RUN   bpf/bpf_test"
	cat "$log"
	result "bpf/bpf_test" "$rc" $((SECONDS - start))
	echo "=== RUN   bpf/bpf_test-compat"
	cat "$clog"
	result "bpf/bpf_test-compat" "$crc" $((SECONDS - start))
	brc=$(cat "$blog.rc" 2>/dev/null || echo 1)
	echo "=== RUN   bpf/bench_smoke"
	[ "$brc" = 0 ] || cat "$blog"
	result "bpf/bench_smoke" "$brc" $((SECONDS - start))
}

NETNS_TIMEOUT=300
# Started first when several run at once (the longest ones; an ordering hint only:
# a test missing here just starts later).
NETNS_LONG="test_fleet_partition test_chaos_agent test_rollback test_http_api test_e2e_tc
	test_chaos_net test_fleet_start test_fleet_rollback test_fleet_badinput test_drill
	test_shadow test_fleet_etcd_client"

netns_list() { # prints the tests to run, the long ones first
	local t n want=" ${NETNS_ONLY:-} "
	for t in tests/netns/test_*.sh; do
		[ -x "$t" ] || continue
		n=$(basename "$t" .sh)
		if [ -n "${NETNS_ONLY:-}" ] && [[ $want != *" $n "* && $want != *" ${n#test_} "* ]]; then
			continue
		fi
		if [[ " $(echo $NETNS_LONG) " == *" $n "* ]]; then echo "0 $t"; else echo "1 $t"; fi
	done | sort -s -k1,1n | cut -d' ' -f2
}

# Several at once: each test's output goes to a file and is printed in one block
# when it ends, so the log reads as if they had run one after another.
declare -A NS_PID_NAME=() NS_PID_START=()
NS_LOGDIR=

netns_start() { # TEST
	local t=$1 n
	n=$(basename "$t" .sh)
	timeout --kill-after=10 "$NETNS_TIMEOUT" "$t" >"$NS_LOGDIR/$n.log" 2>&1 </dev/null &
	NS_PID_NAME[$!]=$n
	NS_PID_START[$!]=$SECONDS
}

netns_reap() { # waits for one test to end, prints its block
	local pid rc n
	wait -n -p pid "${!NS_PID_NAME[@]}"
	rc=$?
	n=${NS_PID_NAME[$pid]}
	echo "=== RUN   netns/$n"
	cat "$NS_LOGDIR/$n.log"
	result "netns/$n" "$rc" $((SECONDS - NS_PID_START[$pid]))
	unset "NS_PID_NAME[$pid]" "NS_PID_START[$pid]"
}

netns_stop_all() { # on INT/TERM: end what we started (timeout passes TERM on)
	local p
	for p in "${!NS_PID_NAME[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait
	exit 130
}

suite_netns() {
	local t start=$SECONDS
	local -a tests alone=() shared=()
	mapfile -t tests < <(netns_list)
	if [ "$NETNS_JOBS" -le 1 ]; then
		for t in "${tests[@]}"; do
			run_one "netns/$(basename "$t" .sh)" timeout --kill-after=10 "$NETNS_TIMEOUT" "$t"
		done
	else
		for t in "${tests[@]}"; do
			if grep -q '^# run.sh: alone' "$t"; then alone+=("$t"); else shared+=("$t"); fi
		done
		NS_LOGDIR=$OUT/tests/netns-logs
		mkdir -p "$NS_LOGDIR"
		trap netns_stop_all INT TERM
		for t in "${alone[@]}"; do
			netns_start "$t"
			netns_reap
		done
		for t in "${shared[@]}"; do
			while [ "${#NS_PID_NAME[@]}" -ge "$NETNS_JOBS" ]; do netns_reap; done
			netns_start "$t"
		done
		while [ "${#NS_PID_NAME[@]}" -gt 0 ]; do netns_reap; done
		trap - INT TERM
	fi
	echo "=== netns: ${#tests[@]} tests in $((SECONDS - start))s, $NETNS_JOBS at once"
}

suite_vm() { # MODE: check | full
	[ -x vmtest/run.sh ] || return 0
	if [ "$1" = full ]; then
		run_one "vm/vmtest-full" timeout --kill-after=10 1500 vmtest/run.sh --full
	else
		run_one "vm/vmtest" timeout --kill-after=10 900 vmtest/run.sh --quick
	fi
}

# make check: the VM beside unit and bpf, whose phase leaves a core idle most of
# its time (the unit tests take a third of it) and of which nothing measures
# time, as nothing in the VM under TCG does; the netns tests, which do, come after
# both, the cores their own again.
suite_all() {
	local vlog=$OUT/tests/vmtest.log start=$SECONDS vpid=
	if [ -x vmtest/run.sh ]; then
		rm -f "$vlog.rc"
		(
			timeout --kill-after=10 900 vmtest/run.sh --quick >"$vlog" 2>&1 </dev/null
			echo "$?" >"$vlog.rc"
		) &
		vpid=$!
		# shellcheck disable=SC2064 # vpid is this run's, now
		trap "kill -TERM $vpid 2>/dev/null; wait $vpid; exit 130" INT TERM
	fi
	suite_unit_bpf
	if [ -n "$vpid" ]; then
		wait "$vpid"
		trap - INT TERM
		echo "=== RUN   vm/vmtest"
		cat "$vlog"
		result "vm/vmtest" "$(cat "$vlog.rc" 2>/dev/null || echo 1)" $((SECONDS - start))
	fi
	suite_netns
}

case ${1:-all} in
unit) suite_unit ;;
bpf) suite_bpf ;;
netns) suite_netns ;;
vm) suite_vm check ;;
vm-full) suite_vm full ;;
all) suite_all ;;
*) echo "usage: tests/run.sh unit|bpf|netns|vm|vm-full|all" >&2; exit 2 ;;
esac

echo
[ ${#failed[@]} -gt 0 ] && printf 'failed: %s\n' "${failed[@]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
