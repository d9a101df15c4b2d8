#!/bin/bash
# Run the libFuzzer harnesses one after the other (never two at once: the
# machine is shared) and print one line of figures per harness.
#
#   tests/fuzz/run.sh [--check] SECONDS OUTPUT NAME...
#
# NAME is a harness of tests/fuzz (config, weight, state, ctl, fleet), built as
# OUTPUT/fuzz/fuzz_NAME. Each run starts from its seed corpus
# tests/fuzz/corpus/NAME (every input there is replayed first: crashes found
# once stay there as regression inputs) and OUTPUT/fuzz/corpus/NAME, where
# libFuzzer keeps what it finds between runs; tests/fuzz/NAME.dict is its
# dictionary. A crash or a failed property leaves the input in
# OUTPUT/fuzz/artifacts/ and the log in OUTPUT/fuzz/NAME.log.
#
# --check: the unit suite's mode (make check): exit 77 (skipped) when the
# harnesses are not built, else 0 only if no harness crashed.
set -u
cd "$(dirname "$0")/../.."

check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
if [ $# -lt 3 ]; then
	echo "usage: tests/fuzz/run.sh [--check] SECONDS OUTPUT NAME..." >&2
	exit 2
fi
secs=$1 out=$2
shift 2

failed=()
for name in "$@"; do
	bin=$out/fuzz/fuzz_$name
	if [ ! -x "$bin" ]; then
		echo "fuzz_$name: $bin is not built (make $bin)" >&2
		[ "$check" = 1 ] && exit 77
		failed+=("$name")
		continue
	fi
	work=$out/fuzz/corpus/$name
	arts=$out/fuzz/artifacts
	log=$out/fuzz/$name.log
	mkdir -p "$work" "$arts"
	args=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
		-artifact_prefix="$arts/$name-")
	[ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
	start=$SECONDS
	"$bin" "${args[@]}" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
	# The last status line: "#N  DONE  cov: C ft: F corp: K/S ..."
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
	line=$(printf 'fuzz_%-7s %10s runs in %3ds (%s/s), cov %s, ft %s, corpus %s, rss %s MB' \
		"$name" "${runs:-?}" $((SECONDS - start)) "${rate:-?}" "${cov:-?}" "${ft:-?}" \
		"${corp:-?}" "${rss:-?}")
	if [ "$rc" = 0 ]; then
		echo "$line: OK"
	else
		echo "$line: FAIL (exit $rc)"
		# The error, the first frames of its stack, where the input went.
		awk '/ERROR|property failed|runtime error|SUMMARY|Test unit written/ { print "    " $0; n = 0 }
			/^    #[0-9]+ / && n++ < 4 { print $0 }' "$log" | head -n 20
		echo "    full log: $log"
		failed+=("$name")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzzing failed: ${failed[*]}"
	exit 1
fi
exit 0
