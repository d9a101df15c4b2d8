#!/bin/bash
# GET /metrics at scale: HTTP_SCALE_SVC services (64 by default; 256 is the SPEC's
# limit) of 64 blue + 64 green backends each (8192 backends by default, 32768 at 256;
# none of them answers: health_check = none), shiftd on the rig's edge with
# http_listen (the rig: scale_lib.sh; status at scale: test_status_scale.sh). A render (a map read per backend and counter, megabytes of text) takes
# hundreds of ms there; it must never run on the event loop that consumes the samples.
#   stall     control-socket pings (each answered by the loop) with no scrape, then
#             while two clients scrape /metrics back to back: the pings' p99 stays
#             under a tenth of a cold scrape's time (a render's time), and at most
#             one ping takes over a quarter of it. A loop that renders makes a ping
#             wait for a whole render, once per scrape.
#   series    the body is Prometheus text and holds exactly the textfile's series
#   burst     8 GETs at once after a weight change: all 200, one body between them,
#             the new weight in it; 8 HEADs at once (no body to carry) are answered
#             within 3 renders' time: one render serves them all, not one each
#   fresh     a weight change while a render is in flight: a GET sent after the
#             change shows the new weight, never the in-flight render's old one
#   sigterm   SIGTERM 30 ms after a GET that needs a render: shiftd exits (status 0)
#             in under half a render's time, its log clean (no sanitizer report with
#             an ASan build: OUTPUT=DIR of a build with -fsanitize=address)
# Bounds are ratios of figures measured in the same run (stall vs render), an order
# of magnitude apart; every figure is printed. Exit 0 pass, 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=agent_lib.sh
. "$HERE/agent_lib.sh"
cd "$AGENT_ROOT"

# shellcheck source=scale_lib.sh
. "$HERE/scale_lib.sh"
PY=$HERE/http_scale.py

scale_up
URL=http://127.0.0.1:$HTTP_PORT/metrics
scale_start "$D/shiftd.log"

# one GET /metrics: its ms in GET_MS, code in GET_CODE, body in $D/get.out (not
# in a subshell: $(scrape) would leave GET_CODE as the caller had it)
scrape() {
	local t0 t1
	t0=$(date +%s%N)
	GET_CODE=$(rig_edge curl -s -m 120 -o "$D/get.out" -w '%{http_code}' "$URL")
	t1=$(date +%s%N)
	GET_MS=$(((t1 - t0) / 1000000))
}
# weight SVC PCT: set it (the fingerprint changes: the next GET renders anew)
weight() { ctl set-weight "$1" "$2" >/dev/null || t_notok "shiftctl set-weight $1 $2 failed"; }
# ratio_in FILE SVC: shift_green_weight_ratio of SVC in a metrics body
ratio_in() { sed -n "s/^shift_green_weight_ratio{service=\"$1\"} //p" "$2"; }

# --- a render's time ---------------------------------------------------------------
t_section "render"
# Warm: the first scrape after a start may meet the textfile's first render.
scrape
r=()
for p in 11 12 13; do
	weight s1 "$p"
	scrape
	r+=("$GET_MS")
	[ "$GET_CODE" = 200 ] || t_notok "cold GET /metrics: HTTP $GET_CODE"
done
RENDER_MS=$(printf '%s\n' "${r[@]}" | sort -n | sed -n 2p)
BODY_BYTES=$(stat -c %s "$D/get.out")
t_note "cold GET /metrics (a render): ${r[*]} ms, median $RENDER_MS ms; $BODY_BYTES bytes"
t_expect "the cold GET shows the new weight (s1 at 13 %)" "$(ratio_in s1 "$D/get.out")" 0.13

# --- stall ---------------------------------------------------------------------------
t_section "stall"
OVER=$((RENDER_MS / 4))
out=$(rig_edge "$RIG_PYTHON" "$PY" stall --sock "$RIG_CONTROL_SOCKET" --url "$URL" \
	--idle 2 --busy 10 --scrapers 2 --every 5 --over "$OVER")
t_note "stall: $out"
read -r idle_max busy_p99 busy_max busy_n over scrapes codes <<<"$("$RIG_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
print(d["idle"]["max_ms"], d["busy"]["p99_ms"], d["busy"]["max_ms"], d["busy"]["n"],
      d["busy_over"], d["scrapes"], ",".join("%s:%d" % kv for kv in sorted(d["codes"].items())))' "$out")"
t_note "loop round trip: idle max ${idle_max} ms; during $scrapes scrapes (codes $codes): p99 ${busy_p99} ms, max ${busy_max} ms, $over of $busy_n pings over $OVER ms; a render: $RENDER_MS ms"
if [ "$RENDER_MS" -lt 100 ]; then
	t_note "a render takes only $RENDER_MS ms here: too little to tell a stall from noise (raise HTTP_SCALE_SVC)"
else
	if "$RIG_PYTHON" -c 'import sys; sys.exit(0 if float(sys.argv[1]) * 10 < float(sys.argv[2]) else 1)' \
		"$busy_p99" "$RENDER_MS"; then
		t_ok "stall: the loop's p99 round trip while scraping, ${busy_p99} ms, is under a tenth of a render ($RENDER_MS ms)"
	else
		t_notok "stall: the loop's p99 round trip while scraping, ${busy_p99} ms, is not under a tenth of a render ($RENDER_MS ms): the loop waits for renders"
	fi
	# One outlier allowed (a loaded machine may deschedule the loop); a loop that
	# renders stalls once per scrape.
	if [ "$over" -le 1 ]; then
		t_ok "stall: $over round trips over a quarter of a render ($OVER ms) in $scrapes scrapes"
	else
		t_notok "stall: $over round trips over a quarter of a render ($OVER ms) in $scrapes scrapes: the loop waits for renders"
	fi
fi
[ "$codes" = "200:$scrapes" ] && [ "$scrapes" -ge 2 ] &&
	t_ok "stall: $scrapes scrapes, all 200" || t_notok "stall: scrapes $scrapes, codes $codes"

# --- series ----------------------------------------------------------------------------
t_section "series"
if rig_edge "$RIG_PYTHON" "$PY" series "$D/get.out" >"$D/get.series" 2>"$D/series.err"; then
	t_ok "the body is Prometheus text ($(wc -l <"$D/get.series") samples)"
else
	t_notok "the body is not Prometheus text: $(cat "$D/series.err")"
fi
cp "$RIG_TEXTFILE_DIR/shift.prom" "$D/file.prom" 2>/dev/null
if "$RIG_PYTHON" "$PY" series "$D/file.prom" >"$D/file.series" 2>"$D/series.err" &&
	cmp -s "$D/get.series" "$D/file.series"; then
	t_ok "GET /metrics has exactly the textfile's series ($(wc -l <"$D/file.series"))"
else
	t_notok "GET /metrics and the textfile differ in series: $(cat "$D/series.err") $(diff "$D/get.series" "$D/file.series" | head -n 6 | tr '\n' ' ')"
fi
if command -v promtool >/dev/null 2>&1; then
	if promtool check metrics <"$D/get.out" >"$D/promtool.out" 2>&1; then
		t_ok "promtool check metrics: clean"
	else
		t_notok "promtool check metrics: $(head -n 3 "$D/promtool.out" | tr '\n' ' ')"
	fi
fi

# --- burst -------------------------------------------------------------------------------
t_section "burst"
mkdir -p "$D/burst"
weight s2 21
out=$(rig_edge "$RIG_PYTHON" "$PY" burst --url "$URL" --n 8 --out "$D/burst")
t_note "burst of GETs: $out"
read -r bcodes distinct <<<"$("$RIG_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
print(",".join(map(str, d["codes"])), d["distinct_bodies"])' "$out")"
t_expect "burst: 8 GETs at once, all answered" "$bcodes" "200,200,200,200,200,200,200,200"
t_expect "burst: one body between them" "$distinct" 1
t_expect "burst: it shows the new weight (s2 at 21 %)" "$(ratio_in s2 "$D/burst/0")" 0.21
# HEADs: no 76 MB bodies to carry, the wall time is the server's: one render, not 8.
weight s2 22
out=$(rig_edge "$RIG_PYTHON" "$PY" burst --url "$URL" --n 8 --head)
t_note "burst of HEADs: $out"
read -r bcodes wall <<<"$("$RIG_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
print(",".join(map(str, d["codes"])), int(d["wall_ms"]))' "$out")"
t_expect "burst: 8 HEADs at once, all answered" "$bcodes" "200,200,200,200,200,200,200,200"
if [ "$wall" -lt $((RENDER_MS * 3)) ]; then
	t_ok "burst: 8 HEADs answered in $wall ms, under 3 renders ($((RENDER_MS * 3)) ms): one render served them"
else
	t_notok "burst: 8 HEADs answered in $wall ms, not under 3 renders ($((RENDER_MS * 3)) ms): a render each"
fi

# --- fresh -------------------------------------------------------------------------------
t_section "fresh"
weight s3 31
rig_edge curl -s -m 120 -o "$D/first.out" "$URL" &
first=$!
sleep "$("$RIG_PYTHON" -c "print($RENDER_MS / 4000)")"
weight s3 32
rig_edge curl -s -m 120 -o "$D/second.out" "$URL"
wait "$first"
t_note "fresh: the first GET (sent at 31 %) shows s3 at $(ratio_in s3 "$D/first.out")"
t_expect "fresh: a GET sent after set-weight 32 during a render shows it" \
	"$(ratio_in s3 "$D/second.out")" 0.32

# --- sigterm -----------------------------------------------------------------------------
t_section "sigterm"
weight s4 41
out=$(rig_edge "$RIG_PYTHON" "$PY" sigterm --url "$URL" --pid "$SHIFTD_PID" --after 30)
t_note "SIGTERM 30 ms after a GET that needs a render ($RENDER_MS ms): $out"
exit_ms=$("$RIG_PYTHON" -c 'import json, sys; d = json.loads(sys.argv[1]); print(int(d["exit_ms"]) if d["gone"] else 999999)' "$out")
if kill -0 "$SHIFTD_PID" 2>/dev/null && [ "$exit_ms" = 999999 ]; then
	t_notok "sigterm: shiftd still runs after a minute"
	shiftd_stop
fi
wait "$SHIFTD_PID" 2>/dev/null
rc=$?
t_expect "sigterm: exit status" "$rc" 0
if [ "$exit_ms" -lt $((RENDER_MS / 2)) ]; then
	t_ok "sigterm: exited in $exit_ms ms, under half a render ($((RENDER_MS / 2)) ms)"
else
	t_notok "sigterm: exited in $exit_ms ms, not under half a render ($((RENDER_MS / 2)) ms)"
fi
if grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: ' "$D/shiftd.log" >"$D/san.txt"; then
	t_notok "sigterm: sanitizer report in the log: $(head -n 3 "$D/san.txt" | tr '\n' ' ')"
else
	t_ok "sigterm: no sanitizer report in shiftd's log"
fi
t_summary
