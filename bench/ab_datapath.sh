#!/bin/bash
# ab_datapath.sh: the datapath cost of this tree against another commit, in
# paired rounds. `make bench-ab BASE=REV [AB_ONLY=TEXT] [AB_ROUNDS=N]`.
#
# Two builds of bench_datapath run back to back, the order flipped every round,
# each on the same cases (--only) with a 64k table. This host swings between a
# quiet and a slow mode over seconds, more than most changes move a case; a
# pair of runs shares the mode, so the paired difference (new - old, ns above
# the floor) and how many rounds the new build won say what unpaired medians
# cannot. Figures only: exits 0 unless the set-up fails (1) or the usage is
# wrong (2).
#
#   bench/ab_datapath.sh [--rounds N] [--only TEXT] [--iters N] [--out FILE] BASE
#
# BASE is built in a git worktree under $OUTPUT/ab (removed on exit); the new
# build is $OUTPUT/bench/bench_datapath of this tree (make builds it first).
# BASE=compat compares this tree's two builds of the datapath instead: the
# shift_compat object (SHIFT_TEST_COMPAT=1, what kernels before 6.2 load) as
# old, the one this kernel takes as new; only TC code differs between them.
set -uo pipefail

usage() {
	sed -n '2,/^set -uo/p' "$0" | sed -e '/^set -uo/d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

ROUNDS=12 ONLY="SYN new flow, table full" ITERS=100000
OUTPUT=${OUTPUT:-.output}
OUT=$OUTPUT/bench/ab-datapath.txt
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=${2:-}; shift 2 ;;
	--only) ONLY=${2:-}; shift 2 ;;
	--iters) ITERS=${2:-}; shift 2 ;;
	--out) OUT=${2:-}; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "ab_datapath: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "ab_datapath: one BASE revision, got $#" >&2; usage; }
BASE=$1
case $ROUNDS in '' | *[!0-9]*) echo "ab_datapath: --rounds: not a number: '$ROUNDS'" >&2; exit 2 ;; esac
case $ITERS in '' | *[!0-9]*) echo "ab_datapath: --iters: not a number: '$ITERS'" >&2; exit 2 ;; esac
if [ "$ROUNDS" -lt 2 ] || [ "$ROUNDS" -gt 200 ]; then
	echo "ab_datapath: --rounds $ROUNDS: want 2..200" >&2
	exit 2
fi

NEW=$OUTPUT/bench/bench_datapath
[ -x "$NEW" ] || { echo "ab_datapath: $NEW not built (make $NEW)" >&2; exit 1; }
if [ "$BASE" != compat ]; then
	rev=$(git rev-parse --verify --quiet "$BASE^{commit}") ||
		{ echo "ab_datapath: BASE '$BASE' is not a commit of this repository" >&2; exit 2; }
fi

mkdir -p "$OUTPUT/ab" "$(dirname "$OUT")" || exit 1
WT=$(mktemp -d "$OUTPUT/ab/base.XXXXXX") || exit 1
LOG=$(mktemp "$OUTPUT/ab/rounds.XXXXXX") || exit 1
cleanup() {
	if [ "$BASE" != compat ]; then
		git worktree remove --force "$WT" 2>/dev/null
		git worktree prune 2>/dev/null
	fi
	rm -rf "$WT"
	rm -f "$LOG" "$LOG.out"
}
trap cleanup EXIT

OLD_ENV=0
if [ "$BASE" = compat ]; then
	OLD=$NEW OLD_ENV=1
else
	echo "ab_datapath: building $BASE ($rev) in $WT" >&2
	git worktree add --detach --force "$WT" "$rev" >/dev/null 2>&1 ||
		{ echo "ab_datapath: git worktree add $WT $rev failed" >&2; exit 1; }
	if ! make -C "$WT" -s .output/bench/bench_datapath >"$LOG.out" 2>&1; then
		echo "ab_datapath: building bench_datapath at $rev failed:" >&2
		tail -20 "$LOG.out" >&2
		exit 1
	fi
	OLD=$WT/.output/bench/bench_datapath
fi

for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order="new old"; else order="old new"; fi
	for k in $order; do
		bin=$NEW compat=0
		[ "$k" = old ] && bin=$OLD compat=$OLD_ENV
		if ! SHIFT_TEST_COMPAT=$compat "$bin" --only "$ONLY" --flows 65536 --iters "$ITERS" --out "$LOG.out" >/dev/null 2>&1; then
			echo "ab_datapath: round $r: $k build failed to run" >&2
			exit 1
		fi
		grep -E '^v[46] ' "$LOG.out" | sed "s/^/$r $k /" >>"$LOG"
	done
	printf 'ab_datapath: round %d/%d\r' "$r" "$ROUNDS" >&2
done
echo >&2

python3 - "$LOG" "$BASE" "$ROUNDS" "$ONLY" <<'PY' | tee "$OUT"
import re, statistics, sys
log, base, rounds, only = sys.argv[1:]
d = {}
pat = re.compile(r'^(\d+) (old|new) (v[46] .+?)\s{2,}[\d.]+\s+([\d.]+)\s+[\d.]+\s+([\d.]+)')
for line in open(log):
    m = pat.match(line)
    if m:
        d.setdefault(m.group(3), {}).setdefault(m.group(2), {})[int(m.group(1))] = \
            (float(m.group(4)), float(m.group(5)))
print(f"# ab_datapath: {base} (old) vs this tree (new), {rounds} paired rounds, "
      f"cases matching '{only}', ns above the floor, --flows 65536")
print(f"{'case':<40} {'kind':<4} {'old median (q1, min)':>22} {'new median (q1, min)':>22} "
      f"{'paired new-old median (q1, q3)':>32} {'new faster':>11}")
q = lambda v, f: v[int(f * (len(v) - 1))]
for case, v in d.items():
    rs = sorted(set(v.get('old', {})) & set(v.get('new', {})))
    if not rs:
        continue
    for i, kind in ((0, 'XDP'), (1, 'TC')):
        o = sorted(v['old'][r][i] for r in rs)
        n = sorted(v['new'][r][i] for r in rs)
        dd = sorted(v['new'][r][i] - v['old'][r][i] for r in rs)
        won = sum(1 for x in dd if x < 0)
        print(f"{case:<40} {kind:<4} {statistics.median(o):>8.0f} ({q(o, .25):4.0f}, {o[0]:4.0f})"
              f"      {statistics.median(n):>8.0f} ({q(n, .25):4.0f}, {n[0]:4.0f})"
              f"      {statistics.median(dd):>+14.1f} ({q(dd, .25):+6.1f}, {q(dd, .75):+6.1f})"
              f"   {won:>4d} / {len(dd)}")
PY
