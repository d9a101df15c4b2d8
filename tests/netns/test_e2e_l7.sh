#!/usr/bin/env bash
# analysis = auto with real servers and clients (issue 15, "Must show" 3): nginx backends
# serve TLS (self-signed certificate made here with openssl) on one service and cleartext
# HTTP/2 on another; curl and h2load are the clients; the config says nothing about
# analysis. Checks:
#   1. healthy green at 50 %: both colors' windows fill on both services;
#   2. green nginx closing TLS requests unanswered (return 444): the TLS service rolls
#      back, at most 10 curl failures;
#   3. green nginx answering HTTP/2 with 500: the h2 service rolls back, at most 10
#      non-2xx answers or failures reach h2load.
# Exit 0 pass, 77 skip (no nginx/curl/h2load/openssl, or no netns), 1 fail.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for b in nginx curl h2load openssl; do
	command -v "$b" >/dev/null || { echo "SKIP: $b not installed"; exit 77; }
done
RIG_BLUE=1 RIG_GREEN=1
# shellcheck source=e2e_lib.sh
. "$HERE/e2e_lib.sh"

TLS_PORT=8443 H2_PORT=8081
BLUE=$(rig_backend_addr blue1) GREEN=$(rig_backend_addr green1)
RIG_CONFIG_EXTRA="
[service tls]
vip = $RIG_VIP:443
blue = $BLUE:$TLS_PORT
green = $GREEN:$TLS_PORT
health_check = none
[service h2]
vip = $RIG_VIP:81
blue = $BLUE:$H2_PORT
green = $GREEN:$H2_PORT
health_check = none
"
export RIG_CONFIG_EXTRA
e2e_up

D=$RIG_DIR/l7
mkdir -p "$D"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=shift-test \
	-keyout "$D/key.pem" -out "$D/cert.pem" >/dev/null 2>&1 ||
	{ notok "openssl: self-signed certificate"; e2e_finish; }

# nginx_conf NAME TLS_ACTION H2_ACTION: a config for one backend's nginx.
nginx_conf() {
	local n=$1 d=$D/$1
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<-CONF
		worker_processes 1;
		daemon off;
		master_process off;
		pid $d/nginx.pid;
		error_log $d/error.log;
		events { worker_connections 4096; }
		http {
		    access_log off;
		    client_body_temp_path $d/tmp;
		    proxy_temp_path $d/tmp;
		    fastcgi_temp_path $d/tmp;
		    uwsgi_temp_path $d/tmp;
		    scgi_temp_path $d/tmp;
		    keepalive_requests 100000;
		    server {
		        listen $TLS_PORT ssl;
		        ssl_certificate $D/cert.pem;
		        ssl_certificate_key $D/key.pem;
		        location / { $2 }
		    }
		    server {
		        listen $H2_PORT http2;
		        location / { $3 }
		    }
		}
	CONF
	echo "$d/nginx.conf"
}
# nginx_start NS CONF: start nginx in a backend namespace; sets NGINX_PID.
nginx_start() {
	rig_spawn "$1" "$D/$1.$RANDOM.log" nginx -c "$2" || return 1
	NGINX_PID=$RIG_LAST_PID
	e2e_listening "$1" "$TLS_PORT"
}
OK='return 200 "ok\\n";'
nginx_start blue1 "$(nginx_conf blue "$OK" "$OK")" || { notok "blue nginx up"; e2e_finish; }
nginx_start green1 "$(nginx_conf green "$OK" "$OK")" || { notok "green nginx up"; e2e_finish; }
GREEN_PID=$NGINX_PID

# curl_n N: N HTTPS requests (a connection each) to the TLS VIP; prints the failures.
curl_n() {
	local i fail=0
	for ((i = 0; i < $1; i++)); do
		rig_nsenter cli1 curl -skf -o /dev/null --max-time 5 "https://$RIG_VIP/" ||
			fail=$((fail + 1))
	done
	echo "$fail"
}
# h2_n N: N h2c requests over 24 connections, one stream at a time (the datapath reads at
# most 8 frame headers per segment; more streams' requests in one segment are more).
# Each connection's color is its own coin at 50 %: with 10 of them all landed on blue
# once in a CI run (1 in 1024); with 24, once in 16 million. Prints "succeeded 2xx".
h2_n() {
	rig_nsenter cli2 h2load -n "$1" -c 24 -m 1 -t 1 "http://$RIG_VIP:81/" 2>&1 |
		awk '/^requests:/ {s = $8} /^status codes:/ {x = $3} END {print s + 0, x + 0}'
}
win() { ctl status --json | rig_json_get "$1"; }
svc_field() { # SERVICE PATH...
	ctl status --json | "$RIG_PYTHON" -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["service"] == sys.argv[1]:
        v = s
        for k in sys.argv[2].split("."):
            v = v.get(k, 0) if isinstance(v, dict) else 0
        print(v)' "$1" "$2"
}

note "phase 1: healthy green at 50 %, default analysis"
for s in tls h2; do
	out=$(ctl set-weight "$s" 50 2>&1) || notok "set-weight $s 50 failed: $out"
done
f=$(curl_n 200)
read -r h2ok h2x <<<"$(h2_n 20000)"
note "curl: 200 TLS requests, $f failed; h2load: $h2ok succeeded, $h2x 2xx of 20000"
for s in tls h2; do
	for c in blue green; do
		n=$(svc_field "$s" "pools.$c.window_requests")
		lat=$(svc_field "$s" "pools.$c.latency_p99_seconds")
		if [ "${n:-0}" -gt 0 ]; then ok "$s $c window: $n requests, p99 ${lat}s"
		else notok "$s $c window: $n requests"; fi
	done
done
check "phase 1: no TLS failure" [ "$f" = 0 ]
check "phase 1: every h2 request 2xx" [ "$h2x" = 20000 ]

note "phase 2: green nginx closes TLS requests unanswered (return 444)"
rig_kill "$GREEN_PID"
nginx_start green1 "$(nginx_conf green2 'return 444;' 'return 500;')" ||
	{ notok "bad green nginx up"; e2e_finish; }
f=$(curl_n 200)
rb=$(svc_field tls rolled_back) why=$(svc_field tls last_rollback.reason)
note "curl: 200 TLS requests, $f failed; rolled back: $rb ($why)"
check "tls rolled back" [ "$rb" = True ]
check "tls: at most 10 failures reached clients ($f)" [ "$f" -le 10 ]

# Phase 3 uses a connection per request, as curl does for TLS: h2load's long-lived
# connections to green die when the rollback evicts them (every request still queued on
# them then fails), which says nothing about how many 500s reached a client.
note "phase 3: green nginx answers HTTP/2 with 500 (curl --http2-prior-knowledge)"
bad=0
for ((i = 0; i < 200; i++)); do
	rig_nsenter cli2 curl -sf -o /dev/null --max-time 5 --http2-prior-knowledge \
		"http://$RIG_VIP:81/" || bad=$((bad + 1))
done
rb=$(svc_field h2 rolled_back) why=$(svc_field h2 last_rollback.reason)
note "curl h2c: 200 requests, $bad failed or not 2xx; rolled back: $rb ($why)"
check "h2 rolled back" [ "$rb" = True ]
check "h2: at most 10 non-2xx or failed requests reached clients ($bad)" [ "$bad" -le 10 ]
e2e_finish
