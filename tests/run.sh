#!/bin/bash
# Run a test suite (unit | bpf | netns | vm | all) and print one closing line:
#   "N passed, N failed, N skipped"
# A test script exits 0 for pass, 77 for skipped (a feature probe said no), else fail.
set -u
cd "$(dirname "$0")/.."
OUT=${OUTPUT:-.output}
pass=0 fail=0 skip=0
failed=()

run_one() {
	local name=$1
	shift
	local start=$SECONDS rc
	echo "=== RUN   $name"
	"$@"
	rc=$?
	case $rc in
	0) pass=$((pass + 1)); echo "--- PASS  $name ($((SECONDS - start))s)" ;;
	77) skip=$((skip + 1)); echo "--- SKIP  $name" ;;
	*) fail=$((fail + 1)); failed+=("$name"); echo "--- FAIL  $name (exit $rc)" ;;
	esac
}

suite_unit() {
	local t
	for t in "$OUT"/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "unit/$(basename "$t")" "$t"
	done
}

suite_bpf() {
	run_one "bpf/bpf_test" "$OUT/tests/bpf_test"
}

suite_netns() {
	local t
	for t in tests/netns/test_*.sh; do
		[ -x "$t" ] || continue
		run_one "netns/$(basename "$t" .sh)" timeout --kill-after=10 300 "$t"
	done
}

suite_vm() {
	[ -x vmtest/run.sh ] || return 0
	run_one "vm/vmtest" timeout --kill-after=10 900 vmtest/run.sh
}

case ${1:-all} in
unit) suite_unit ;;
bpf) suite_bpf ;;
netns) suite_netns ;;
vm) suite_vm ;;
all) suite_unit; suite_bpf; suite_netns; suite_vm ;;
*) echo "usage: tests/run.sh unit|bpf|netns|vm|all" >&2; exit 2 ;;
esac

echo
[ ${#failed[@]} -gt 0 ] && printf 'failed: %s\n' "${failed[@]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
