#!/bin/bash
# Runs inside the vmtest guest, chrooted into the host root (read-only 9p), cwd = repo.
# Runs every test step even after a failure; exits non-zero if any failed.
#
#   VMTEST_BPF_TEST   the BPF_PROG_TEST_RUN suite (default $OUTPUT/tests/bpf_test)
#   VMTEST_RESULTS    writable directory shared with the host (set by vmtest/init)
#   vmtest/extra-guest-tests   optional hook, run with bash when present (see README)
set -euo pipefail

OUT=${OUTPUT:-.output}
BPF_TEST=${VMTEST_BPF_TEST:-$OUT/tests/bpf_test}
# The packet fuzzer runs ~11k packets/s under TCG: a smaller batch keeps the VM quick.
export SHIFT_FUZZ_PACKETS=${SHIFT_FUZZ_PACKETS:-20000}
TEST_TIMEOUT=${VMTEST_TEST_TIMEOUT:-1100}
results=()
failed=0

step() {
	local name=$1 start=$SECONDS rc=0
	shift
	echo "=== VM RUN  $name"
	"$@" || rc=$?
	if [ "$rc" = 0 ]; then
		results+=("PASS  $name ($((SECONDS - start))s)")
	else
		results+=("FAIL  $name (exit $rc)")
		failed=1
	fi
	echo "=== VM END  $name: exit $rc"
}

bpf_suite() {
	if [ ! -x "$BPF_TEST" ]; then
		echo "vmtest-guest: FAIL: $BPF_TEST is missing (build it with 'make tests')" >&2
		return 1
	fi
	timeout --kill-after=10 "$TEST_TIMEOUT" "$BPF_TEST"
}

echo "vmtest-guest: kernel $(uname -r) ($(uname -v))"
echo "vmtest-guest: repo $(pwd), output $OUT"
[ -r /sys/kernel/btf/vmlinux ] || echo "vmtest-guest: note: no /sys/kernel/btf/vmlinux"

step "bpf_test" bpf_suite
step "xdp smoke" timeout --kill-after=10 "$TEST_TIMEOUT" bash vmtest/smoke.sh
if [ -e vmtest/extra-guest-tests ]; then
	step "extra-guest-tests" timeout --kill-after=10 "$TEST_TIMEOUT" bash vmtest/extra-guest-tests
fi

echo "vmtest-guest: summary on $(uname -r):"
printf '    %s\n' "${results[@]}"
exit "$failed"
