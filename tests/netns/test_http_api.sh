#!/bin/bash
# The HTTP API (issue 18) with the real components: shiftd on the namespace rig with
# [global] http_listen, Debian's Alertmanager (and amtool) and Prometheus, all in the
# rig's edge namespace (its own loopback: the fixed ports below cannot meet another
# test's), firing into shiftd.
#   token      a token file open to others: shiftd refuses to start (exit 1, before
#              touching the datapath); a reload with such a file is refused and the
#              running token stays in force
#   refusals   no token / a wrong token: 401; malformed JSON, another payload version:
#              400; a 2 MiB body (Content-Length or chunked): 413; unknown path: 404;
#              each leaves weights, latches and rollback counts as they were
#   amtool     `amtool alert add alertname=... shift_service=web` -> web rolled back
#              (reason "alertmanager: ALERTNAME"); time from the send (and from the
#              alert's startsAt) to the weight map write
#   webhook    a repeat is a no-op (200, already_rolled_back, one rollback counted); a
#              resolved alert never clears; an unknown service 404s while the other
#              alert of the payload still applies
#   chain      Prometheus evaluates deploy/prometheus/app-rollback-rules.yml ("for"
#              shortened) over a test exporter's app_job_failure_ratio; the exporter
#              flips to 2 %: Prometheus -> Alertmanager -> shiftd rolls web back
#   metrics    Prometheus scrapes shiftd's GET /metrics: the series equal status
#              --json; promtool check metrics is clean; GET /v1/status is status --json
#   load       ROUNDS real rollbacks (green answers 500 under client load, the
#              consecutive_errors trigger) without and then with 1000 idle HTTP
#              connections held open (a slowloris trickling headers): the reaction
#              times (status reaction_us) side by side; a silent connection is closed
#              by the idle timeout; then the same rounds under a GET flood (wrk on
#              /v1/status, which needs no token)
# Figures are reported, never bounded (timings belong to benchmarks). Exit 0 pass,
# 77 skipped, 1 fail.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

ROUNDS=${HTTP_ROUNDS:-3}
IDLE=${HTTP_IDLE_CONNS:-1000}
HTTP_PORT=9310
AM_PORT=9093
PROM_PORT=9090
EXP_PORT=9101
AM=/usr/bin/prometheus-alertmanager
AMTOOL=/usr/bin/amtool
PROM=/usr/bin/prometheus
PROMTOOL=/usr/bin/promtool
RULES_SRC=$E2E_ROOT/deploy/prometheus/app-rollback-rules.yml

rig_probe || rig_skip "$RIG_SKIP_REASON"
for c in curl "$AM" "$AMTOOL"; do
	command -v "$c" >/dev/null 2>&1 || rig_skip "missing $c (Debian: curl, prometheus-alertmanager)"
done
HAVE_PROM=1
[ -x "$PROM" ] && [ -x "$PROMTOOL" ] || HAVE_PROM=0
if [ ! -x "$SHIFTD" ] || [ ! -x "$SHIFTCTL" ]; then
	echo "not ok - setup: $SHIFTD / $SHIFTCTL not built (make all)"
	exit 1
fi
rig_up || { echo "not ok - setup: rig_up failed"; exit 1; }
D=$RIG_DIR
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$D/token"
chmod 600 "$D/token"
URL=http://127.0.0.1:$HTTP_PORT
CONF_ARGS=(xdp_mode=auto web.health_check=none web6.health_check=none
	web.max_consecutive_errors=5 web.min_requests=20 web.max_error_rate=5%
	web.max_latency_p99=off web.max_latency_ratio=off web.rollback_evict=yes
	"http_listen=127.0.0.1:$HTTP_PORT" "http_token_file=$D/token")

# --- helpers ---------------------------------------------------------------------

# svc NAME KEY[.KEY]: a field of a service in status --json
svc() {
	ctl status --json | "$RIG_PYTHON" -c '
import json, sys
v = [s for s in json.load(sys.stdin)["services"] if s["service"] == sys.argv[1]][0]
for k in sys.argv[2].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1" "$2"
}
# state: what a refused request must not change (weights, latches, rollback counts)
state() {
	ctl status --json | "$RIG_PYTHON" -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    print(s["service"], s["green_weight_bp"], s["rolled_back"], s["rollbacks_total"],
          s["last_rollback"].get("unix_ns", 0))'
}
# post NAME DATAFILE TOKEN|- [CURL-ARGS...]: POST the webhook; prints the HTTP code,
# the body goes to $D/NAME.out
post() {
	local name=$1 data=$2 tok=$3
	shift 3
	local -a auth=()
	[ "$tok" = - ] || auth=(-H "Authorization: Bearer $tok")
	rig_edge curl -s -m 20 -o "$D/$name.out" -w '%{http_code}' -X POST "${auth[@]}" \
		-H 'Content-Type: application/json' --data-binary "@$data" "$@" \
		"$URL/v1/alertmanager"
}
# payload FILE STATUS:ALERTNAME:SERVICE...: a version 4 webhook payload
payload() {
	local f=$1
	shift
	"$RIG_PYTHON" - "$@" >"$f" <<-'EOF'
		import json, sys
		alerts = []
		for a in sys.argv[1:]:
		    st, name, svc = a.split(":")
		    alerts.append({"status": st, "labels": {"alertname": name, "shift_service": svc},
		                   "annotations": {"summary": "test alert %s for %s" % (name, svc)},
		                   "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"})
		print(json.dumps({"version": "4", "status": "firing", "receiver": "shift",
		                  "groupKey": "{}:{}", "alerts": alerts}))
	EOF
}
# outcome NAME I: alerts[I].outcome of the answer $D/NAME.out
outcome() {
	"$RIG_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["alerts"][int(sys.argv[2])]["outcome"])' \
		"$D/$1.out" "$2" 2>/dev/null
}
now_ns() { date +%s%N; }
# expect DESC CONDITION: ok if the shell condition (a string, eval'ed) holds
expect() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }
# reset: web healthy at 50 % green, no latch
reset() {
	rig_backend_mode green1 ok
	ctl clear web >/dev/null 2>&1
	ctl set-weight web 50 >/dev/null || notok "reset: shiftctl set-weight web 50 failed"
}
wait_rolled_back() { # SECONDS
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(svc web rolled_back)" = True ] && return 0
		sleep 0.1
	done
	return 1
}
wait_http() { # URL SECONDS: until it answers 200
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		rig_edge curl -sf -m 2 -o /dev/null "$1" && return 0
		sleep 0.1
	done
	return 1
}

# --- token file checks ------------------------------------------------------------
note "--- token file ($((SECONDS - E2E_T0))s)"
cp "$D/token" "$D/token.open"
chmod 644 "$D/token.open"
rig_write_config "$D/bad.conf" "${CONF_ARGS[@]}" "http_token_file=$D/token.open"
: >"$D/token.empty"
chmod 600 "$D/token.empty"
rig_write_config "$D/empty.conf" "${CONF_ARGS[@]}" "http_token_file=$D/token.empty"
# A group the host does not have: the socket could never take it.
rig_write_config "$D/nogroup.conf" "${CONF_ARGS[@]}" control_socket_group=shift-no-such-group
rig_write_config "$D/shiftd.conf" "${CONF_ARGS[@]}" ||
	{ echo "not ok - setup: rig_write_config failed"; exit 1; }
for c in bad empty nogroup; do
	want=http_token_file
	[ "$c" = nogroup ] && want=control_socket_group
	out=$(rig_edge "$SHIFTD" --check --config "$D/$c.conf" 2>&1)
	rc=$?
	if [ "$rc" = 2 ] && grep -q "$want" <<<"$out"; then
		ok "$c: shiftd --check refuses it, exit 2: $out"
	else
		notok "$c: shiftd --check exit $rc (want 2 naming $want): $out"
	fi
	rig_edge timeout 20 "$SHIFTD" --config "$D/$c.conf" >"$D/$c.out" 2>&1
	rc=$?
	msg=$(grep -m1 "$want" "$D/$c.out")
	# exit 2: the unit's RestartPreventExitStatus, no restart every second
	if [ "$rc" = 2 ] && [ -n "$msg" ] && [ ! -e "$RIG_BPFFS_DIR/maps" ]; then
		ok "$c: shiftd refuses to start, exit 2, datapath untouched: $msg"
	else
		notok "$c: exit $rc (want 2), message '$msg', maps pinned: $(ls "$RIG_BPFFS_DIR" 2>&1)"
		rig_edge timeout 20 "$SHIFTD" --detach --config "$D/$c.conf" >/dev/null 2>&1 || true
	fi
done

# A reload sent while the programs still load (a start takes seconds) waits for the
# loop; SIGHUP's default action used to end shiftd there (status 129).
rig_spawn edge "$D/hup.log" "$SHIFTD" --config "$D/shiftd.conf"
hup_pid=$RIG_LAST_PID
sleep 0.2
kill -HUP "$hup_pid" 2>/dev/null
for ((i = 0; i < 150; i++)); do
	grep -q 'ready' "$D/hup.log" 2>/dev/null && break
	kill -0 "$hup_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$hup_pid" 2>/dev/null && grep -q 'ready' "$D/hup.log"; then
	ok "SIGHUP 0.2 s into the start: shiftd goes on and is ready ($(grep -c 'reloaded' "$D/hup.log") reload(s) in its log)"
else
	notok "SIGHUP 0.2 s into the start: shiftd $(kill -0 "$hup_pid" 2>/dev/null && echo "alive, not ready" || echo gone): $(tail -n 3 "$D/hup.log")"
fi
rig_kill "$hup_pid"

# Every round's load leaves from a fresh source address (e2e_lib.sh): 3 x ROUNDS of
# them, alternating between the two clients.
E2E_NSRC=$((ROUNDS * 3 / 2 + 2))
[ "$E2E_NSRC" -le 45 ] || { echo "not ok - setup: HTTP_ROUNDS $ROUNDS > 29"; exit 1; }
[ "$E2E_NSRC" -ge 24 ] || E2E_NSRC=24
e2e_add_sources || { echo "not ok - setup: cannot add client source addresses"; exit 1; }
# As the unit runs it (deploy/systemd/shiftd.service): SCHED_FIFO 20, so the figures
# below measure what the HTTP work costs the loop, not the test's own clients
# competing for the two cores.
if [ "${HTTP_FIFO:-1}" = 1 ] && command -v chrt >/dev/null 2>&1 && chrt -f 20 true 2>/dev/null; then
	REAL_SHIFTD=$SHIFTD
	SHIFTD=$D/shiftd-fifo
	printf '#!/bin/sh\nexec chrt -f 20 "%s" "$@"\n' "$REAL_SHIFTD" >"$SHIFTD"
	chmod 755 "$SHIFTD"
	note "shiftd runs SCHED_FIFO 20, as its unit does"
fi
e2e_start_shiftd || exit 1
rig_on_exit '[ "$E2E_FAILS" = 0 ] || e2e_dump_logs >&2'
wait_http "$URL/metrics" 10 || notok "GET /metrics does not answer on $URL"
reset

# --- refusals ----------------------------------------------------------------------
note "--- refusals ($((SECONDS - E2E_T0))s)"
payload "$D/web.json" firing:ShiftTestAlert:web
before=$(state)
code=$(post noauth "$D/web.json" -)
check "no token: 401 ($code)" [ "$code" = 401 ]
code=$(post badauth "$D/web.json" "${TOKEN}x")
check "wrong token: 401 ($code)" [ "$code" = 401 ]
code=$(post badauth2 "$D/web.json" "${TOKEN:0:20}")
check "a prefix of the token: 401 ($code)" [ "$code" = 401 ]
code=$(post basic "$D/web.json" - -H "Authorization: Basic $(printf 'x:%s' "$TOKEN" | base64 -w0)")
check "the token as Basic auth: 401 ($code)" [ "$code" = 401 ]
printf '{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"X","shift_service":"web"}' >"$D/trunc.json"
code=$(post malformed "$D/trunc.json" "$TOKEN")
check "malformed JSON: 400 ($code: $(cat "$D/malformed.out"))" [ "$code" = 400 ]
sed 's/"version": "4"/"version": "3"/' "$D/web.json" >"$D/v3.json"
code=$(post v3 "$D/v3.json" "$TOKEN")
check "payload version 3: 400 ($code: $(cat "$D/v3.out"))" [ "$code" = 400 ]
"$RIG_PYTHON" -c 'import sys; sys.stdout.write("{\"version\":\"4\",\"alerts\":[],\"pad\":\"" + "x" * (2 << 20) + "\"}")' >"$D/big.json"
code=$(post big "$D/big.json" "$TOKEN")
check "2 MiB body (Content-Length): 413 ($code)" [ "$code" = 413 ]
code=$(post bigchunked "$D/big.json" "$TOKEN" -H 'Transfer-Encoding: chunked')
check "2 MiB body (chunked): 413 ($code)" [ "$code" = 413 ]
code=$(rig_edge curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/v1/nothing")
check "unknown path: 404 ($code)" [ "$code" = 404 ]
code=$(rig_edge curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/v1/alertmanager")
check "GET /v1/alertmanager: 405 ($code)" [ "$code" = 405 ]
after=$(state)
if [ "$before" = "$after" ]; then
	ok "nothing changed after the refused requests (weights, latches, rollback counts)"
else
	notok "refused requests changed the state: before '$before', after '$after'"
fi

# reload with a token file open to others: refused, the old token still works
chmod 644 "$D/token"
out=$(ctl reload 2>&1)
rc=$?
chmod 600 "$D/token"
if [ "$rc" = 1 ] && grep -q http_token_file <<<"$out"; then
	ok "reload with the token file at mode 0644 refused (exit 1): $out"
else
	notok "reload with the token file at mode 0644: exit $rc, '$out' (want 1 naming http_token_file)"
fi
code=$(post stillok "$D/trunc.json" "$TOKEN")
check "after the refused reload the running token still holds (400 for bad JSON, not 401: $code)" \
	[ "$code" = 400 ]
# A new token in the file, and a reload refused for another reason: the
# running config is kept whole, its token too.
cp "$D/shiftd.conf" "$D/shiftd.conf.good"
NEWTOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$NEWTOKEN" >"$D/token"
for bad in group snat; do
	cp "$D/shiftd.conf.good" "$D/shiftd.conf"
	case $bad in
	group) sed -i '/^\[global\]/a control_socket_group = shift-no-such-group' "$D/shiftd.conf" ;;
	snat) lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
		sed -i "/^\[service web\]/a snat = 10.99.0.1\nsnat_ports = $lo-$((lo + 99))" "$D/shiftd.conf" ;;
	esac
	out=$(ctl reload 2>&1)
	rc=$?
	if [ "$rc" = 1 ] && grep -q "reload refused" <<<"$out"; then
		ok "reload with a bad $bad refused (exit 1): $out"
	else
		notok "reload with a bad $bad: exit $rc, '$out' (want 1, refused)"
	fi
	old_code=$(post oldtok "$D/trunc.json" "$TOKEN")
	new_code=$(post newtok "$D/trunc.json" "$NEWTOKEN")
	check "after the reload refused for its $bad, the running token holds (old $old_code, want 400; new $new_code, want 401)" \
		test "$old_code" = 400 -a "$new_code" = 401
done
cp "$D/shiftd.conf.good" "$D/shiftd.conf"
printf '%s\n' "$TOKEN" >"$D/token"
check "reload back to the running config" ctl reload

# --- Alertmanager: amtool alert add -------------------------------------------------
note "--- alertmanager ($((SECONDS - E2E_T0))s)"
mkdir -p "$D/am"
cat >"$D/am.yml" <<EOF
route:
  receiver: default
  routes:
    - receiver: shift
      matchers: [ 'shift_service =~ ".+"' ]
      group_by: [alertname, shift_service]
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 1h
receivers:
  - name: default
  - name: shift
    webhook_configs:
      - url: $URL/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: $D/token
EOF
rig_spawn edge "$D/alertmanager.log" "$AM" --config.file="$D/am.yml" --storage.path="$D/am" \
	--web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= --log.level=info
wait_http "http://127.0.0.1:$AM_PORT/-/ready" 30 || notok "alertmanager not ready: $(tail -3 "$D/alertmanager.log")"
amt() { rig_edge "$AMTOOL" --alertmanager.url="http://127.0.0.1:$AM_PORT" "$@"; }

[ "$(svc web rolled_back)" = False ] || notok "web rolled back before the alert"
t_send=$(now_ns)
amt alert add alertname=ShiftTestAlert shift_service=web severity=page \
	--annotation=summary="amtool test alert for web" >/dev/null ||
	notok "amtool alert add failed"
if wait_rolled_back 30; then
	t_rb=$(svc web last_rollback.unix_ns)
	reason=$(svc web last_rollback.reason)
	starts=$(amt alert query -o json alertname=ShiftTestAlert | "$RIG_PYTHON" -c '
import datetime, json, re, sys
a = json.load(sys.stdin)[0]["startsAt"]
m = re.match(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", a)
frac = (m.group(2) or "0")[:9].ljust(9, "0")
tz = "+00:00" if m.group(3) == "Z" else m.group(3)
t = datetime.datetime.fromisoformat(m.group(1) + tz)
print(int(t.timestamp()) * 10**9 + int(frac))' 2>/dev/null) || starts=0
	check "amtool alert -> web rolled back, reason '$reason'" [ "$reason" = "alertmanager: ShiftTestAlert" ]
	note "FIGURE amtool send -> weight map write: $(((t_rb - t_send) / 1000)) us (amtool's start-up and Alertmanager's dispatch included)"
	[ "$starts" -gt 0 ] 2>/dev/null &&
		note "FIGURE alert startsAt (Alertmanager's receive time) -> weight map write: $(((t_rb - starts) / 1000)) us"
	grep -q 'alertmanager: ShiftTestAlert firing for service web.*amtool test alert for web' "$E2E_SHIFTD_LOG" &&
		ok "shiftd logged the alert's summary annotation" ||
		notok "no log line with the alert's summary in $E2E_SHIFTD_LOG"
else
	notok "amtool alert: web not rolled back within 30 s; alertmanager log: $(tail -3 "$D/alertmanager.log")"
fi
check "the metrics count it under reason=\"alertmanager\"" \
	grep -q 'shift_rollbacks_total{service="web",reason="alertmanager"} 1' \
	<(rig_edge curl -s -m 10 "$URL/metrics")

# --- webhook semantics ------------------------------------------------------------
note "--- webhook semantics ($((SECONDS - E2E_T0))s)"
n0=$(svc web rollbacks_total)
code=$(post repeat "$D/web.json" "$TOKEN")
expect "a repeat of a latched service: 200 ($code), $(outcome repeat 0), rollbacks_total stays $n0 ($(svc web rollbacks_total))" \
	'[ "$code" = 200 ] && [ "$(outcome repeat 0)" = already_rolled_back ] && [ "$(svc web rollbacks_total)" = "$n0" ]'
payload "$D/resolved.json" resolved:ShiftTestAlert:web
code=$(post resolved "$D/resolved.json" "$TOKEN")
expect "a resolved alert: 200 ($code, $(outcome resolved 0)), the latch holds ($(svc web rolled_back))" \
	'[ "$code" = 200 ] && [ "$(svc web rolled_back)" = True ]'
reset
payload "$D/mixed.json" firing:OtherAlert:nope firing:MixedAlert:web
code=$(post mixed "$D/mixed.json" "$TOKEN")
expect "unknown service: 404 ($code) with per-alert outcomes $(outcome mixed 0), $(outcome mixed 1); web still rolled back" \
	'[ "$code" = 404 ] && [ "$(outcome mixed 0)" = unknown_service ] &&
	[ "$(outcome mixed 1)" = rolled_back ] && [ "$(svc web last_rollback.reason)" = "alertmanager: MixedAlert" ]'
# A drill's latch is no rollback: an alert firing during the hold rolls back for
# real, and the drill ends without restoring green.
reset
ctl drill web --hold 3s --json >"$D/drill.out" 2>"$D/drill.err" &
drill_pid=$!
for ((i = 0; i < 50; i++)); do
	[ "$(svc web rolled_back)" = True ] && break
	sleep 0.1
done
payload "$D/during.json" firing:DuringDrill:web
code=$(post during "$D/during.json" "$TOKEN")
drill_rc=0
wait "$drill_pid" || drill_rc=$?
expect "an alert during a drill's hold: 200 ($code, $(outcome during 0)); the drill exits $drill_rc; web stays rolled back ($(svc web rolled_back), '$(svc web last_rollback.reason)', weight $(svc web green_weight_bp) bp)" \
	'[ "$code" = 200 ] && [ "$(outcome during 0)" = rolled_back ] && [ "$drill_rc" != 0 ] &&
	[ "$(svc web rolled_back)" = True ] && [ "$(svc web last_rollback.reason)" = "alertmanager: DuringDrill" ] &&
	[ "$(svc web green_weight_bp)" = 0 ]'
amt silence add alertname=ShiftTestAlert -c "test done" -d 1h >/dev/null 2>&1 || true

# --- the whole chain: Prometheus rule -> Alertmanager -> shiftd ----------------------
if [ "$HAVE_PROM" = 1 ]; then
	note "--- prometheus chain ($((SECONDS - E2E_T0))s)"
	reset
	echo 0 >"$D/app_value"
	rig_spawn edge "$D/exporter.log" "$RIG_PYTHON" "$HERE/http_exporter.py" \
		--listen "127.0.0.1:$EXP_PORT" --value "$D/app_value" --service web --duration 600
	# The deploy example's rules, "for" shortened to fit a test.
	sed 's/^\(\s*for:\).*/\1 1s/' "$RULES_SRC" >"$D/rules.yml"
	check "promtool check rules on the deploy example" "$PROMTOOL" check rules "$RULES_SRC"
	mkdir -p "$D/prom"
	cat >"$D/prometheus.yml" <<-EOF
		global: { scrape_interval: 1s, evaluation_interval: 1s }
		rule_files: [ "$D/rules.yml" ]
		alerting:
		  alertmanagers: [ { static_configs: [ { targets: [ "127.0.0.1:$AM_PORT" ] } ] } ]
		scrape_configs:
		  - job_name: app
		    static_configs: [ { targets: [ "127.0.0.1:$EXP_PORT" ] } ]
		  - job_name: shift
		    static_configs: [ { targets: [ "127.0.0.1:$HTTP_PORT" ] } ]
	EOF
	rig_spawn edge "$D/prometheus.log" "$PROM" --config.file="$D/prometheus.yml" \
		--storage.tsdb.path="$D/prom" --web.listen-address="127.0.0.1:$PROM_PORT"
	wait_http "http://127.0.0.1:$PROM_PORT/-/ready" 60 || notok "prometheus not ready: $(tail -3 "$D/prometheus.log")"
	pq() { # PROMQL: the first value, "" if none
		rig_edge curl -s -m 5 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
			"$RIG_PYTHON" -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
	}
	for ((i = 0; i < 300; i++)); do
		[ "$(pq 'app_job_failure_ratio')" = 0 ] && [ -n "$(pq 'shift_build_info')" ] && break
		sleep 0.1
	done
	[ "$(svc web rolled_back)" = False ] || notok "web rolled back before the application failed"
	t_flip=$(now_ns)
	echo 0.02 >"$D/app_value"
	if wait_rolled_back 60; then
		t_rb=$(svc web last_rollback.unix_ns)
		reason=$(svc web last_rollback.reason)
		check "Prometheus rule -> Alertmanager -> shiftd: web rolled back ($reason)" \
			[ "$reason" = "alertmanager: AppJobFailureRateHigh" ]
		note "FIGURE exporter flips to 2 % -> weight map write: $(((t_rb - t_flip) / 1000000)) ms (1 s scrapes, 1 s evaluations, for: 1s)"
	else
		notok "the Prometheus chain did not roll web back within 60 s; prometheus: $(tail -2 "$D/prometheus.log"); alertmanager: $(tail -2 "$D/alertmanager.log")"
	fi
	echo 0 >"$D/app_value"

	# --- /metrics as Prometheus scraped it == status --json ---------------------------
	note "--- metrics ($((SECONDS - E2E_T0))s)"
	rig_edge curl -s -m 10 "$URL/metrics" >"$D/metrics.txt"
	check "promtool check metrics on GET /metrics is clean" \
		"$PROMTOOL" check metrics <"$D/metrics.txt"
	sleep 2.5 # two more scrapes of an idle shiftd
	ctl status --json >"$D/status.json"
	rig_edge curl -s -m 10 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode \
		'query={job="shift",__name__=~"shift_green_weight_ratio|shift_rollback_active|shift_rollbacks_total|shift_last_rollback_timestamp_seconds|shift_backend_connections_total|shift_backend_up"}' \
		>"$D/prom.json"
	cmp=$("$RIG_PYTHON" - "$D/status.json" "$D/prom.json" <<-'EOF'
		import json, sys
		st = json.load(open(sys.argv[1]))
		res = json.load(open(sys.argv[2]))["data"]["result"]
		def val(name, **lab):
		    vs = [float(r["value"][1]) for r in res if r["metric"]["__name__"] == name
		          and all(r["metric"].get(k) == v for k, v in lab.items())]
		    return sum(vs) if vs else None
		n = bad = 0
		for s in st["services"]:
		    name = s["service"]
		    pairs = [("green_weight_bp", s["green_weight_bp"], val("shift_green_weight_ratio", service=name) * 10000),
		             ("rolled_back", int(s["rolled_back"]), val("shift_rollback_active", service=name)),
		             ("rollbacks_total", s["rollbacks_total"], val("shift_rollbacks_total", service=name))]
		    if s["last_rollback"].get("unix_ns"):
		        pairs.append(("last_rollback_s", round(s["last_rollback"]["unix_ns"] / 1e9, 3),
		                      round(val("shift_last_rollback_timestamp_seconds", service=name), 3)))
		    for b in s["backends"]:
		        pairs.append(("%s connections" % b["backend"], b["connections"],
		                      val("shift_backend_connections_total", service=name, backend=b["backend"])))
		        pairs.append(("%s up" % b["backend"], int(b["healthy"]),
		                      val("shift_backend_up", service=name, backend=b["backend"])))
		    for k, a, p in pairs:
		        n += 1
		        if p is None or abs(a - p) > 1e-6:
		            bad += 1
		            print("MISMATCH %s %s: status %s, prometheus %s" % (name, k, a, p))
		print("compared %d values, %d differ" % (n, bad))
	EOF
	)
	check "Prometheus' scrape of /metrics equals status --json: $(tail -1 <<<"$cmp")" \
		grep -q ', 0 differ' <<<"$cmp"
	grep MISMATCH <<<"$cmp" | sed 's/^/# /'
else
	note "SKIP prometheus chain and scrape: no $PROM / $PROMTOOL (Debian: prometheus)"
fi
rig_edge curl -s -m 10 "$URL/v1/status" >"$D/http_status.json"
ctl status --json >"$D/ctl_status.json"
# Same document but for live figures (timestamps, windows): compare the keys and the state.
same=$("$RIG_PYTHON" - "$D/http_status.json" "$D/ctl_status.json" <<-'EOF'
	import json, sys
	a, b = (json.load(open(p)) for p in sys.argv[1:3])
	def shape(v):
	    if isinstance(v, dict):
	        return {k: shape(x) for k, x in v.items()}
	    if isinstance(v, list):
	        return [shape(x) for x in v]
	    return type(v).__name__
	def core(j):
	    return [(s["service"], s["green_weight_bp"], s["rolled_back"], s["rollbacks_total"],
	             s["last_rollback"]) for s in j["services"]]
	print("same" if shape(a) == shape(b) and core(a) == core(b) else "differ")
EOF
)
check "GET /v1/status is status --json (same fields, same state: $same)" [ "$same" = same ]

# --- rollback reaction with and without 1000 idle connections ----------------------
note "--- reaction under idle connections ($((SECONDS - E2E_T0))s)"
# round TAG: green answers 500 under load until the consecutive_errors trigger fires;
# sets REACT (reaction_us). Not in $(...): the rig must know the clients it spawns.
ROUND_N=0
round() {
	local tag=$1 load cli=cli$((ROUND_N++ % 2 + 1))
	REACT=""
	reset
	rig_backend_mode green1 500
	e2e_client "$cli" "$D/$tag.load.json" rate --url "$RIG_URL" --rate 200 --duration 3 \
		--concurrency 16 --timeout 2 || return 1
	load=$E2E_PID
	if ! wait_rolled_back 15; then
		e2e_wait_pid "$load" 20
		return 1
	fi
	e2e_wait_pid "$load" 20
	[[ $(svc web last_rollback.reason) == consecutive_errors* ]] || return 1
	REACT=$(svc web last_rollback.reaction_us)
}
base=() loaded=()
for ((r = 1; r <= ROUNDS; r++)); do
	if round "base$r"; then base+=("$REACT"); else notok "baseline round $r: no consecutive_errors rollback ($(svc web last_rollback.reason))"; fi
done
rm -f "$D/idle.stop" "$D/idle.ready"
rig_spawn edge "$D/idle.json" "$RIG_PYTHON" "$HERE/http_idle.py" --port "$HTTP_PORT" \
	--count "$IDLE" --trickle 2 --duration 120 --stop "$D/idle.stop" --ready "$D/idle.ready"
idle_pid=$RIG_LAST_PID
e2e_wait_file "$D/idle.ready" 60 || notok "the idle client did not open its connections within 60 s"
# one silent connection: the idle timeout must close it
rig_spawn edge "$D/silent.json" "$RIG_PYTHON" "$HERE/http_idle.py" --port "$HTTP_PORT" \
	--count 1 --trickle 30 --duration 14
silent_pid=$RIG_LAST_PID
held=()
for ((r = 1; r <= ROUNDS; r++)); do
	if round "loaded$r"; then loaded+=("$REACT"); else notok "loaded round $r: no consecutive_errors rollback ($(svc web last_rollback.reason))"; fi
	held+=("$(rig_edge ss -Htn state established "( sport = :$HTTP_PORT )" | wc -l)")
done
code=$(post underload "$D/web.json" "$TOKEN")
check "the webhook still answers with $IDLE idle connections held ($code)" [ "$code" = 200 ]
touch "$D/idle.stop"
e2e_wait_pid "$idle_pid" 30
e2e_wait_pid "$silent_pid" 30
opened=$(rig_json_get opened <"$D/idle.json")
at_end=$(rig_json_get open_at_end <"$D/idle.json")
expect "$IDLE idle connections held open throughout (opened $opened, still open at the end $at_end, server-side established during the rounds: ${held[*]})" \
	'[ "$opened" = "$IDLE" ] && [ "$at_end" = "$IDLE" ]'
check "a connection that sends nothing is closed by the idle timeout (open at the end: $(rig_json_get open_at_end <"$D/silent.json"))" \
	[ "$(rig_json_get open_at_end <"$D/silent.json")" = 0 ]
# the same rounds while a GET flood (wrk, unauthenticated: the GETs need no token)
# hammers /v1/status
flood=() wrk_rate=""
if command -v wrk >/dev/null 2>&1; then
	rig_spawn edge "$D/wrk.log" wrk -t1 -c32 -d$((ROUNDS * 10 + 10))s --timeout 5s "$URL/v1/status"
	wrk_pid=$RIG_LAST_PID
	sleep 1
	for ((r = 1; r <= ROUNDS; r++)); do
		if round "flood$r"; then flood+=("$REACT"); else notok "GET-flood round $r: no consecutive_errors rollback ($(svc web last_rollback.reason))"; fi
	done
	kill -INT "$wrk_pid" 2>/dev/null # wrk prints its figures on SIGINT
	e2e_wait_pid "$wrk_pid" 10
	wrk_rate=$(sed -n 's/^Requests\/sec: *//p' "$D/wrk.log")
	expect "every round rolled back under a GET flood of /v1/status (${#flood[@]}/$ROUNDS; wrk: ${wrk_rate:-?} requests/s)" \
		'[ "${#flood[@]}" = "$ROUNDS" ] && [ -n "$wrk_rate" ]'
else
	note "SKIP the GET-flood rounds: no wrk"
fi
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1; s += $1 } END { if (NR) printf "n=%d min=%.1f median=%.1f max=%.1f mean=%.1f", NR, v[1], v[int((NR + 1) / 2)], v[NR], s / NR }'; }
expect "every round rolled back (baseline ${#base[@]}/$ROUNDS, with idle connections ${#loaded[@]}/$ROUNDS)" \
	'[ "${#base[@]}" = "$ROUNDS" ] && [ "${#loaded[@]}" = "$ROUNDS" ]'
note "FIGURE reaction_us without idle connections: $(stats "${base[@]}") (${base[*]})"
note "FIGURE reaction_us with $IDLE idle HTTP connections: $(stats "${loaded[@]}") (${loaded[*]})"
[ ${#flood[@]} = 0 ] ||
	note "FIGURE reaction_us under a GET flood of /v1/status (${wrk_rate:-?} requests/s answered): $(stats "${flood[@]}") (${flood[*]})"
# shiftd's own account of slow HTTP turns (over 2 ms: the samples waited that long)
grep -o 'http: [0-9]* turns over.*' "$E2E_SHIFTD_LOG" | sed 's/^/# shiftd: /'
rig_edge curl -s -m 10 "$URL/metrics" | grep -E '^shift_rollback_reaction_seconds_(sum|count)' |
	sed 's/^/# FIGURE /'
# --- a rollback just before SIGTERM is in the state file -----------------------------
# (A reboot after `systemctl stop` restores from it: the pins are gone.)
st() { sed -n "s/^name=web .*$1=\([^ ]*\).*/\1/p" "$RIG_STATE_DIR/state"; }
ctl clear web >/dev/null 2>&1 || true
ctl set-weight web 10 >/dev/null 2>&1 || notok "set-weight web 10 before the last alert"
sleep 0.5
t_before=$(st rollback_unix_ns)
payload "$D/last.json" firing:ShiftLastAlert:web
code=$(post last "$D/last.json" "$TOKEN")
kill -TERM "$E2E_SHIFTD_PID"
e2e_wait_pid "$E2E_SHIFTD_PID" 10
check "an alert's rollback right before SIGTERM is in the state file ($code; latched $(st latched), rollback time $t_before -> $(st rollback_unix_ns))" \
	test "$code" = 200 -a "$(st latched)" = 1 -a "$(st rollback_unix_ns)" != "$t_before"

{
	echo "# test_http_api.sh $(date -u +%FT%TZ): consecutive_errors rollbacks, reaction in us"
	echo "# (sample's kernel time -> weight map write), shiftd SCHED_FIFO ${HTTP_FIFO:-1}"
	echo "baseline:            $(stats "${base[@]}")"
	echo "idle_conns_$IDLE:     $(stats "${loaded[@]}")"
	echo "get_flood:           $(stats "${flood[@]}") (wrk ${wrk_rate:-?} req/s on /v1/status)"
	echo "raw_baseline ${base[*]}"
	echo "raw_idle ${loaded[*]}"
	echo "raw_get_flood ${flood[*]}"
} >"${HTTP_FIGURES:-$E2E_OUT/http-api-figures.txt}" 2>/dev/null || true

e2e_finish
