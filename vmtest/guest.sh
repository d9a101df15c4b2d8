#!/bin/bash
# Runs inside the vmtest guest, chrooted into the host root (read-only 9p), cwd = repo.
# Runs every test step even after a failure; exits non-zero if any failed.
#
#   VMTEST_MODE       quick: what `make check` needs from this kernel (every program of
#                     the object loaded, XDP and TC; the XDP packet tables; shiftd
#                     attached by XDP and by TC); full (default): the whole BPF suite, TC
#                     packet tables included, and the XDP smoke test (`make check-vm`)
#   VMTEST_BPF_TESTS  the BPF tests to run (names from `bpf_test -l`); default: all in
#                     full mode, "oracle verifier_log budget packets" in quick mode
#   VMTEST_BPF_TEST   the BPF_PROG_TEST_RUN suite (default $OUTPUT/tests/bpf_test)
#   VMTEST_RESULTS    writable directory shared with the host (set by vmtest/init)
#   vmtest/extra-guest-tests   optional hook, run with bash when present (see README)
#
# Two lanes run side by side, one per vCPU: the BPF suite (then, in full mode, the smoke
# test), and extra-guest-tests. Under TCG each load of the object costs ~30-90 s of one
# vCPU (the verifier): the first lane loads it once or twice, the second four times
# (each start of shiftd), so the lanes nearly halve the run. Every output line is prefixed
# with its lane ([bpf], [agent]); every step of a lane ends by the lane's deadline
# (VMTEST_TEST_TIMEOUT from the start), so it ends before the host stops the VM.
set -euo pipefail

OUT=${OUTPUT:-.output}
BPF_TEST=${VMTEST_BPF_TEST:-$OUT/tests/bpf_test}
MODE=${VMTEST_MODE:-full}
case $MODE in
quick) BPF_TESTS=${VMTEST_BPF_TESTS-oracle verifier_log budget packets} ;;
full) BPF_TESTS=${VMTEST_BPF_TESTS:-} ;;
*) echo "vmtest-guest: VMTEST_MODE=$MODE: want quick or full" >&2; exit 2 ;;
esac
# The packet fuzzer runs ~11k packets/s under TCG: a smaller batch keeps the VM quick.
export SHIFT_FUZZ_PACKETS=${SHIFT_FUZZ_PACKETS:-20000}
TEST_TIMEOUT=${VMTEST_TEST_TIMEOUT:-1100}
LANES=$(mktemp -d /tmp/vmtest-lanes.XXXXXX)

DEADLINE=$((SECONDS + TEST_TIMEOUT))
left() { # seconds to the deadline, at least 1
	local l=$((DEADLINE - SECONDS))
	echo $((l > 0 ? l : 1))
}

step() { # NAME CMD...: one step of a lane; its result line goes to $LANE.results
	local name=$1 start=$SECONDS rc=0
	shift
	echo "=== VM RUN  $name"
	"$@" || rc=$?
	if [ "$rc" = 0 ]; then
		echo "PASS  $name ($((SECONDS - start))s)" >>"$LANES/$LANE.results"
	else
		echo "FAIL  $name (exit $rc, $((SECONDS - start))s)" >>"$LANES/$LANE.results"
	fi
	echo "=== VM END  $name: exit $rc"
}

bpf_suite() {
	local only
	if [ ! -x "$BPF_TEST" ]; then
		echo "vmtest-guest: FAIL: $BPF_TEST is missing (build it with 'make tests')" >&2
		return 1
	fi
	if [ -z "$BPF_TESTS" ]; then
		timeout --kill-after=10 "$(left)" "$BPF_TEST"
	else
		# -T: the other tests are not even called (some load the object first).
		only=$(echo $BPF_TESTS | tr ' ' ,)
		echo "vmtest-guest: bpf_test -T $only"
		timeout --kill-after=10 "$(left)" "$BPF_TEST" -T "$only"
	fi
}

lane_bpf() {
	step "bpf_test${BPF_TESTS:+ ($BPF_TESTS)}" bpf_suite
	# The quick run's other lane attaches shiftd by XDP and sends HTTP through it:
	# the smoke test's load of the whole object would be this lane's longest step.
	if [ "$MODE" = full ]; then
		step "xdp smoke" timeout --kill-after=10 "$(left)" bash vmtest/smoke.sh
	else
		echo "SKIP  xdp smoke (quick mode: extra-guest-tests attaches shiftd by XDP)" \
			>>"$LANES/$LANE.results"
	fi
}

lane_agent() {
	if [ -e vmtest/extra-guest-tests ]; then
		step "extra-guest-tests" timeout --kill-after=10 "$(left)" bash vmtest/extra-guest-tests
	else
		echo "SKIP  extra-guest-tests (no such file)" >>"$LANES/$LANE.results"
	fi
}

run_lane() { # NAME: runs lane_NAME in the background, its lines prefixed "[NAME] "
	(LANE=$1 && "lane_$1") 2>&1 </dev/null | sed -u "s/^/[$1] /" &
}

echo "vmtest-guest: kernel $(uname -r) ($(uname -v)), mode $MODE"
echo "vmtest-guest: repo $(pwd), output $OUT"
[ -r /sys/kernel/btf/vmlinux ] || echo "vmtest-guest: note: no /sys/kernel/btf/vmlinux"

start=$SECONDS
run_lane bpf
bpf_pid=$!
run_lane agent
agent_pid=$!
wait "$bpf_pid" "$agent_pid" || true

failed=0
[ -s "$LANES/bpf.results" ] && [ -s "$LANES/agent.results" ] || failed=1
! grep -q '^FAIL' "$LANES"/*.results 2>/dev/null || failed=1
echo "vmtest-guest: summary on $(uname -r), mode $MODE, $((SECONDS - start))s:"
cat "$LANES"/bpf.results "$LANES"/agent.results 2>/dev/null | sed 's/^/    /'
rm -rf "$LANES"
exit "$failed"
