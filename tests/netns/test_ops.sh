#!/bin/bash
# Operations (issue 6), end to end:
#  1. the real prometheus-node-exporter (loopback port, textfile collector only)
#     serves shift.prom while real traffic and a real rollback go through the rig;
#     its figures equal `shiftctl status --json`;
#  2. promtool accepts the file, the alerting rules (and their unit tests) and
#     every PromQL expression of the Grafana dashboard;
#  3. a reader polling shift.prom 2000 times while shiftd rewrites it every 100 ms
#     never sees a partial file; a full disk and a missing directory are logged
#     once, leave no temp file and do not disturb traffic;
#  4. `make install DESTDIR=...` lays out the tree, the unit passes
#     `systemd-analyze verify`, every man page renders without a warning and
#     documents every flag, key and command; sd_notify READY/STATUS/WATCHDOG.
# Exit 0 pass, 77 skipped (no rig possible, or no node exporter), 1 fail.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
OUT=${OUTPUT:-.output}
# shellcheck source=lib.sh
. "$HERE/lib.sh"

rig_probe || rig_skip "$RIG_SKIP_REASON"
NODE_EXPORTER=$(command -v prometheus-node-exporter || command -v node_exporter || true)
[ -n "$NODE_EXPORTER" ] ||
	rig_skip "prometheus-node-exporter is not installed and tools/install-deps.sh could not install it"
for b in "$OUT/shiftd" "$OUT/shiftctl"; do
	[ -x "$b" ] || { echo "FAIL  $b is not built (run make)"; exit 1; }
done
PROMTOOL=$(command -v promtool || true)
PY=$RIG_PYTHON
opscheck() { "$PY" "$HERE/ops_check.py" "$@"; }

T0=$SECONDS
FAILS=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; FAILS=$((FAILS + 1)); }
skip() { echo "skip  $*"; }
expect() { # DESC GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}
expect_ge() { # DESC GOT MIN
	if [ "$2" -ge "$3" ] 2>/dev/null; then ok "$1 ($2)"; else bad "$1: got '$2', want >= $3"; fi
}
run_ok() { # DESC CMD...: CMD succeeds; its output is shown when it does not
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		bad "$desc"
		printf '%s\n' "$out" | sed 's/^/      /'
	fi
}
run_quiet() { # DESC CMD...: CMD succeeds and prints nothing at all
	local desc=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" = 0 ] && [ -z "$out" ]; then
		ok "$desc"
	else
		bad "$desc (exit $rc)"
		printf '%s\n' "$out" | sed 's/^/      /'
	fi
}

# ============================================================================
# Part A: install tree, unit, man pages, rules, dashboard (no rig needed)
# ============================================================================
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/shift-ops-stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT # rig_up keeps this trap and runs it after rig_down
DEST=$STAGE/root
if make --no-print-directory -s -C "$ROOT" install DESTDIR="$DEST" PREFIX=/usr/local \
	OUTPUT="$OUT" >"$STAGE/install.log" 2>&1; then
	ok "make install DESTDIR=... PREFIX=/usr/local"
else
	bad "make install"
	sed 's/^/      /' "$STAGE/install.log"
fi
want_tree="etc/shift/shiftd.conf.example
usr/local/lib/systemd/system/shift-drill@.service
usr/local/lib/systemd/system/shift-drill@.timer
usr/local/lib/systemd/system/shiftd.service
usr/local/sbin/shiftctl
usr/local/sbin/shiftd
usr/local/share/man/man5/shiftd.conf.5
usr/local/share/man/man8/shiftctl.8
usr/local/share/man/man8/shiftd.8
usr/local/share/shift/grafana/shift-dashboard.json
usr/local/share/shift/prometheus/alertmanager-shift.yml
usr/local/share/shift/prometheus/app-rollback-rules.yml
usr/local/share/shift/prometheus/shift-rules.yml"
got_tree=$(cd "$DEST" 2>/dev/null && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
expect "installed tree" "$got_tree" "$want_tree"
[ -x "$DEST/usr/local/sbin/shiftd" ] && [ -x "$DEST/usr/local/sbin/shiftctl" ] &&
	ok "binaries are executable" || bad "binaries are not executable"
run_ok "the installed example config passes shiftd --check" \
	"$DEST/usr/local/sbin/shiftd" --check --config "$DEST/etc/shift/shiftd.conf.example"
UNIT=$DEST/usr/local/lib/systemd/system/shiftd.service
expect "unit ExecStart (from PREFIX)" "$(sed -n 's/^ExecStart=//p' "$UNIT")" \
	"/usr/local/sbin/shiftd --config /etc/shift/shiftd.conf"
if make --no-print-directory -s -C "$ROOT" install DESTDIR="$STAGE/opt" PREFIX=/opt/shift \
	OUTPUT="$OUT" >/dev/null 2>&1; then
	expect "unit ExecStart follows PREFIX=/opt/shift" \
		"$(sed -n 's/^ExecStart=//p' "$STAGE/opt/opt/shift/lib/systemd/system/shiftd.service")" \
		"/opt/shift/sbin/shiftd --config /etc/shift/shiftd.conf"
else
	bad "make install PREFIX=/opt/shift"
fi

# systemd-analyze verify: the ExecStart binary must exist, so point it at the staged one;
# Documentation=man:... must resolve, so MANPATH is the staged man dir.
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$STAGE/unit"
	sed "s|^ExecStart=/usr/local/sbin/shiftd|ExecStart=$DEST/usr/local/sbin/shiftd|" "$UNIT" \
		>"$STAGE/unit/shiftd.service"
	run_quiet "systemd-analyze verify shiftd.service (no warning at all)" \
		env MANPATH="$DEST/usr/local/share/man" SYSTEMD_LOG_COLOR=0 \
		systemd-analyze verify "$STAGE/unit/shiftd.service"
	exposure=$(env MANPATH="$DEST/usr/local/share/man" systemd-analyze security --offline=yes \
		"$STAGE/unit/shiftd.service" 2>/dev/null | sed -n 's/.*Overall exposure level for shiftd.service: \([0-9.]*\).*/\1/p')
	if [ -n "$exposure" ]; then
		if "$PY" -c "import sys; sys.exit(0 if float('$exposure') < 4.0 else 1)"; then
			ok "systemd-analyze security: exposure $exposure (< 4.0)"
		else
			bad "systemd-analyze security: exposure $exposure, want < 4.0"
		fi
	else
		skip "systemd-analyze security --offline not available"
	fi
else
	bad "systemd-analyze missing (package systemd)"
fi

# Man pages: render at 80 columns with every groff warning on; nothing on stderr.
MANDIR=$DEST/usr/local/share/man
for page in man8/shiftd.8 man8/shiftctl.8 man5/shiftd.conf.5; do
	run_quiet "man -l --warnings $page" \
		sh -c 'MANWIDTH=80 man -l --warnings=w "$1" 2>&1 >/dev/null' sh "$MANDIR/$page"
	MANWIDTH=200 man -l "$MANDIR/$page" 2>/dev/null | sed 's/‐/-/g' >"$STAGE/$(basename "$page").txt" || true
done
# ... and they document every flag, config key and command the code has.
missing=""
for o in $(sed -n '/static const struct option opts\[\]/,/};/p' agent/shiftd.c | grep -o '{ "[a-z-]*"' | tr -d '{ "'); do
	grep -q -- "--$o" "$STAGE/shiftd.8.txt" || missing+=" --$o"
done
expect "shiftd(8) documents every shiftd flag" "${missing:-none missing}" "none missing"
missing=""
for k in $(sed -n 's/.*\[[GS]_[A-Z0-9_]*\] = { "\([a-z0-9_]*\)", set_.*/\1/p' agent/config/config.c); do
	grep -qw -- "$k" "$STAGE/shiftd.conf.5.txt" || missing+=" $k"
done
expect "shiftd.conf(5) documents every config key" "${missing:-none missing}" "none missing"
missing=""
for v in $(grep -o 'strcmp(verb, "[a-z-]*")' tools/shiftctl.c | cut -d'"' -f2 | sort -u); do
	grep -q "^       $v" "$STAGE/shiftctl.8.txt" || missing+=" $v"
done
for o in $(grep -o '{ "[a-z-]*", [a-z_]*_argument' tools/shiftctl.c | cut -d'"' -f2 | sort -u); do
	grep -q -- "--$o" "$STAGE/shiftctl.8.txt" || missing+=" --$o"
done
expect "shiftctl(8) documents every command and option" "${missing:-none missing}" "none missing"
sed -n '/^EXAMPLE$/,/^FILES$/p' "$STAGE/shiftd.conf.5.txt" | sed '1d;$d' | sed 's/^       //' \
	>"$STAGE/man-example.conf"
run_ok "the shiftd.conf(5) example passes shiftd --check" \
	"$OUT/shiftd" --check --config "$STAGE/man-example.conf"

# Alerting rules, their unit tests, the dashboard's PromQL.
if "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' deploy/grafana/shift-dashboard.json; then
	ok "the Grafana dashboard is valid JSON"
else
	bad "the Grafana dashboard is not valid JSON"
fi
if [ -n "$PROMTOOL" ]; then
	run_ok "promtool check rules deploy/prometheus/shift-rules.yml" \
		"$PROMTOOL" check rules deploy/prometheus/shift-rules.yml
	run_ok "promtool test rules tests/ops/shift-rules.test.yml (each alert fires, and only then)" \
		"$PROMTOOL" test rules tests/ops/shift-rules.test.yml
	if opscheck exprs deploy/grafana/shift-dashboard.json "$STAGE/dashboard-rules.yml" >/dev/null; then
		run_ok "every dashboard expression is valid PromQL (promtool check rules)" \
			"$PROMTOOL" check rules "$STAGE/dashboard-rules.yml"
	else
		bad "dashboard expressions could not be extracted"
	fi
else
	skip "promtool: Debian's 'prometheus' package could not be installed; rules and PromQL unchecked"
fi

# ============================================================================
# Part B: the rig, shiftd, the real node exporter
# ============================================================================
RIG_BLUE=2 RIG_GREEN=1 rig_up
echo "rig $RIG_ID up in $((SECONDS - T0))s"
# The scraper loop below ends on its own; this makes it end early on a failure.
rig_on_exit "touch '$RIG_DIR/scrape.stop'"

# sd_notify: a datagram socket in place of systemd's, watchdog at 1 s.
NOTIFY_SOCK=$RIG_DIR/notify.sock
NOTIFY_LOG=$RIG_DIR/notify.log
rig_spawn edge "$RIG_DIR/notify.out" "$PY" "$HERE/ops_check.py" notify "$NOTIFY_SOCK" "$NOTIFY_LOG" 250
rig_wait 50 0.1 test -S "$NOTIFY_SOCK" || bad "notify receiver did not start"

conf_args=(xdp_mode=generic web.green_weight=30% web.min_requests=5
	web.max_consecutive_errors=3 web6.green_weight=25%)
rig_write_config "$RIG_DIR/shiftd.conf" "${conf_args[@]}" metrics_interval=1s
rig_spawn edge "$RIG_DIR/shiftd.log" env NOTIFY_SOCKET="$NOTIFY_SOCK" WATCHDOG_USEC=1000000 \
	"$OUT/shiftd" --config "$RIG_CONFIG"
SHIFTD=$RIG_LAST_PID
ctl() { rig_edge "$OUT/shiftctl" -c "$RIG_CONFIG" "$@"; }
agent_up() { ctl status --json 2>/dev/null | grep -q '"agent_running": *true'; }
if ! rig_wait 100 0.1 agent_up; then
	bad "shiftd did not come up"
	sed 's/^/      /' "$RIG_DIR/shiftd.log"
	exit 1
fi
rig_wait 30 0.1 test -s "$RIG_TEXTFILE_DIR/shift.prom" && ok "shift.prom written at start" ||
	bad "no shift.prom after start"

PORT=$(rig_edge "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rig_spawn edge "$RIG_DIR/node-exporter.log" "$NODE_EXPORTER" \
	--web.listen-address="127.0.0.1:$PORT" --collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$RIG_TEXTFILE_DIR"
scrape() { rig_edge curl -sS --max-time 3 "http://127.0.0.1:$PORT/metrics"; }
if rig_wait 50 0.1 scrape >/dev/null 2>&1; then
	ok "node exporter $("$NODE_EXPORTER" --version 2>&1 | head -1 | awk '{print $3}') on 127.0.0.1:$PORT (edge netns)"
else
	bad "node exporter does not answer"
	sed 's/^/      /' "$RIG_DIR/node-exporter.log"
	exit 1
fi

# --- 1. scrapes during real traffic and a real rollback ----------------------
mkdir -p "$RIG_DIR/scrapes"
(
	for ((i = 0; i < 300; i++)); do
		[ -e "$RIG_DIR/scrape.stop" ] && exit 0
		scrape >"$RIG_DIR/scrapes/$i.txt" 2>&1 || true
		sleep 0.1
	done
) &
SCRAPER=$!
# Steady load for 4 s under everything below, so scrapes land amid traffic.
rig_client_py cli2 rate --url "$RIG_URL" --rate 25 --duration 4 >"$RIG_DIR/rate.json" 2>&1 &
RATE=$!
j=$(rig_client_py cli1 new --url "$RIG_URL" --count 200 --concurrency 8 --deadline 30)
expect "v4 traffic: 200 new connections ok" "$(rig_json_get ok <<<"$j")" 200
j6=$(rig_client_py cli2 new --url "$RIG_URL6" --count 100 --concurrency 4 --deadline 30)
expect "v6 traffic: 100 new connections ok" "$(rig_json_get ok <<<"$j6")" 100
rig_backend_mode green1 500
rig_client_py cli1 new --url "$RIG_URL" --count 100 --concurrency 4 --deadline 30 >/dev/null
rolled() { ctl status web --json | grep -q '"rolled_back": *true'; }
rig_wait 50 0.1 rolled && ok "green failing: web rolled back" || bad "web did not roll back"
rig_client_py cli1 new --url "$RIG_URL" --count 50 --concurrency 4 --deadline 30 >/dev/null
wait "$RATE" || bad "steady load: client.py rate failed"
touch "$RIG_DIR/scrape.stop"
wait "$SCRAPER" || true
n=0 good=0
for f in "$RIG_DIR"/scrapes/*.txt; do
	n=$((n + 1))
	grep -q '^shift_build_info{' "$f" && grep -q '^node_textfile_scrape_error 0$' "$f" &&
		grep -q '^shift_backend_connections_total{' "$f" && good=$((good + 1))
done
expect_ge "scrapes during traffic" "$n" 5
expect "scrapes with shift's series and node_textfile_scrape_error 0" "$good" "$n"

# After the traffic: status first, then a file written after it, then the scrape.
sleep 1
ctl status --json >"$RIG_DIR/status.json"
t_status=$(date +%s.%N)
fresh() {
	"$PY" -c 'import os,sys; sys.exit(0 if os.stat(sys.argv[1]).st_mtime > float(sys.argv[2]) else 1)' \
		"$RIG_TEXTFILE_DIR/shift.prom" "$t_status"
}
rig_wait 40 0.1 fresh || bad "shift.prom not rewritten within 4 s (metrics_interval = 1s)"
scrape >"$RIG_DIR/scrape.txt"
expect "node_textfile_scrape_error" "$(sed -n 's/^node_textfile_scrape_error //p' "$RIG_DIR/scrape.txt")" 0
grep -q '^node_textfile_mtime_seconds{file="[^"]*shift.prom"}' "$RIG_DIR/scrape.txt" &&
	ok "node_textfile_mtime_seconds for shift.prom" || bad "no node_textfile_mtime_seconds for shift.prom"
run_ok "every required series is served" opscheck series "$RIG_DIR/scrape.txt" \
	shift_build_info shift_agent_start_time_seconds shift_green_weight_ratio \
	shift_rollback_active shift_rollbacks_total shift_backend_connections_total \
	shift_backend_packets_total shift_backend_bytes_total shift_backend_errors_total \
	shift_backend_responses_total shift_backend_latency_seconds shift_backend_up \
	shift_rollback_reaction_seconds shift_ringbuf_dropped_total shift_packets_dropped_total \
	shift_packets_passed_total shift_flows_created_total shift_samples_total \
	shift_config_reloads_total shift_xdp_attached
if cmp_out=$(opscheck compare "$RIG_DIR/status.json" "$RIG_DIR/scrape.txt"); then
	ok "scrape == shiftctl status --json (weights, latches, rollbacks, per-backend counters):"
else
	bad "scrape != shiftctl status --json:"
fi
printf '%s\n' "$cmp_out" | sed 's/^/    /'
expect "green weight of web6 in the scrape" \
	"$(sed -n 's/^shift_green_weight_ratio{service="web6"} //p' "$RIG_DIR/scrape.txt")" 0.25
expect "web latched in the scrape" \
	"$(sed -n 's/^shift_rollback_active{service="web"} //p' "$RIG_DIR/scrape.txt")" 1
react=$(sed -n 's/^shift_rollback_reaction_seconds_count //p' "$RIG_DIR/scrape.txt")
expect_ge "shift_rollback_reaction_seconds_count" "${react:-0}" 1
expect "no xdp detached" "$(grep -c '^shift_xdp_attached{.*} 0$' "$RIG_DIR/scrape.txt" || true)" 0

# --- 2. promtool on the real file -------------------------------------------
cp "$RIG_TEXTFILE_DIR/shift.prom" "$RIG_DIR/shift.prom.copy"
if [ -n "$PROMTOOL" ]; then
	run_quiet "promtool check metrics accepts shift.prom (no lint finding)" \
		sh -c '"$1" check metrics <"$2"' sh "$PROMTOOL" "$RIG_DIR/shift.prom.copy"
else
	skip "promtool check metrics: promtool not installed"
fi
run_ok "every shift_* name in the rules and the dashboard is exported" \
	opscheck names "$RIG_DIR/shift.prom.copy" deploy/prometheus/shift-rules.yml \
	deploy/grafana/shift-dashboard.json

# --- 3. atomic rewrites every 100 ms, a full disk, a missing directory ---------
reloads() { grep -c 'config reloaded' "$RIG_DIR/shiftd.log" || true; }
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }
reload_to() { # KEY=VALUE...: rewrite the config, SIGHUP, wait for the reload
	local before
	before=$(reloads)
	rig_write_config "$RIG_DIR/shiftd.conf" "${conf_args[@]}" "$@"
	kill -HUP "$SHIFTD"
	rig_wait 50 0.1 reloaded_since "$before"
}
reload_to metrics_interval=100ms || bad "reload with metrics_interval=100ms"
rig_client_py cli1 rate --url "$RIG_URL" --rate 40 --duration 5 >/dev/null 2>&1 &
LOAD=$!
poll=$(opscheck poll "$RIG_TEXTFILE_DIR/shift.prom" 2000 4 6) && prc=0 || prc=$?
wait "$LOAD" || true
echo "      reader: $poll"
if [ "$prc" = 0 ]; then
	ok "2000 reads during 100 ms rewrites: no partial file ($(rig_json_get rewrites_seen <<<"$poll") rewrites seen)"
else
	bad "reader saw a partial file or no rewrite"
fi
expect_ge "rewrites seen by the reader (100 ms for ~4.5 s)" "$(rig_json_get rewrites_seen <<<"$poll")" 20

FULL=$RIG_DIR/full
mkdir -p "$FULL"
if mount -t tmpfs -o size=64k,mode=0755 shift-ops-full "$FULL"; then
	rig_on_exit "umount '$FULL' 2>/dev/null || umount -l '$FULL' 2>/dev/null || true"
	dd if=/dev/zero of="$FULL/filler" bs=4k count=64 status=none 2>/dev/null || true
	warns_before=$(grep -c 'metrics: cannot write' "$RIG_DIR/shiftd.log" || true)
	reload_to metrics_interval=100ms textfile_dir="$FULL" || bad "reload to a full textfile_dir"
	sleep 2
	reload_to metrics_interval=100ms textfile_dir="$RIG_DIR/no-such-dir" || bad "reload to a missing dir"
	sleep 1
	warns=$(($(grep -c 'metrics: cannot write' "$RIG_DIR/shiftd.log" || true) - warns_before))
	expect "full disk + missing dir for 3 s of 100 ms writes: warnings logged" "$warns" 1
	grep -q 'metrics: cannot write .*No space left on device' "$RIG_DIR/shiftd.log" &&
		ok "the warning names the cause (ENOSPC)" || bad "no ENOSPC warning"
	expect "no temp file left on the full disk" "$(ls -A "$FULL")" filler
	kill -0 "$SHIFTD" 2>/dev/null && ok "shiftd still running" || bad "shiftd died"
	j=$(rig_client_py cli1 new --url "$RIG_URL" --count 20 --concurrency 4 --deadline 20)
	expect "traffic unaffected by the failing writes" "$(rig_json_get ok <<<"$j")" 20
	agent_up && ok "shiftctl status answers" || bad "shiftctl status fails"
	reload_to metrics_interval=1s || bad "reload back to textfile_dir"
	rig_wait 30 0.1 grep -q 'metrics: .*written again' "$RIG_DIR/shiftd.log" &&
		ok "recovery logged once the directory is back" || bad "no recovery line"
else
	skip "cannot mount a tmpfs: full-disk case not run"
fi

# --- 4. sd_notify -----------------------------------------------------------
kill -TERM "$SHIFTD"
for ((i = 0; i < 50; i++)); do
	kill -0 "$SHIFTD" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$SHIFTD" 2>/dev/null; then
	bad "shiftd still running 5 s after SIGTERM"
else
	rc=0
	wait "$SHIFTD" || rc=$?
	expect "shiftd exit status after SIGTERM" "$rc" 0
fi
# Only now is no write in flight: shiftd joins its writer thread before exiting.
expect "textfile_dir holds shift.prom only (no temp file)" "$(ls -A "$RIG_TEXTFILE_DIR")" shift.prom
sleep 0.3
msgs=$(cut -d' ' -f2- "$NOTIFY_LOG")
expect "first notification" "$(head -1 <<<"$msgs")" "READY=1"
grep -qx 'STATUS=2 services, 0 rolled back' <<<"$msgs" && ok "STATUS before the rollback" ||
	bad "no 'STATUS=2 services, 0 rolled back'"
grep -qx 'STATUS=2 services, 1 rolled back (web)' <<<"$msgs" && ok "STATUS after the rollback" ||
	bad "no 'STATUS=2 services, 1 rolled back (web)'"
grep -qx 'RELOADING=1' <<<"$msgs" && ok "RELOADING=1 on SIGHUP" || bad "no RELOADING=1"
expect "last notification" "$(tail -1 <<<"$msgs")" "STOPPING=1"
pings=$(grep -c '^[0-9.]* WATCHDOG=1$' "$NOTIFY_LOG" || true)
span=$(awk '$2 == "WATCHDOG=1" { if (!f) f = $1; l = $1 } END { printf "%d", l - f }' "$NOTIFY_LOG")
expect_ge "WATCHDOG=1 pings (WATCHDOG_USEC=1s: every 0.5 s, over ${span}s)" "$pings" $((span * 3 / 2))
gap=$(awk '$2 == "WATCHDOG=1" { if (p) { g = $1 - p; if (g > m) m = g } p = $1 } END { printf "%.2f", m }' "$NOTIFY_LOG")
if "$PY" -c "import sys; sys.exit(0 if $gap < 1.0 else 1)"; then
	ok "longest gap between pings ${gap}s (< WATCHDOG_USEC 1 s)"
else
	bad "longest gap between pings ${gap}s >= 1 s: systemd would have killed shiftd"
fi

echo
echo "shiftd log:"
sed 's/^/    /' "$RIG_DIR/shiftd.log" | tail -20
echo "$((SECONDS - T0))s, $FAILS failure(s)"
[ "$FAILS" = 0 ]
