# shellcheck shell=bash
# The rig of the tests at scale (test_http_scale.sh, test_status_scale.sh): the rig's
# edge with HTTP_SCALE_SVC services (64 by default; 254 at most, the rig's web and web6
# make 256, the SPEC's limit) of 64 blue + 64 green backends each (8192 backends by
# default, 32512 at 254; none of them answers: health_check = none), and shiftd's
# config with http_listen on 127.0.0.1:9310 and a token.
#
#   . lib.sh; . agent_lib.sh; . scale_lib.sh
#   scale_up        # rig up, config written: D, NSVC, NBE, HTTP_PORT set; shiftd not started
#   scale_start LOG # start shiftd (bounded), t_bail if it does not get ready

NSVC=${HTTP_SCALE_SVC:-64}
PER_POOL=64
HTTP_PORT=9310

scale_up() {
	local k j net base blue green extra=""

	rig_probe || rig_skip "$RIG_SKIP_REASON"
	agent_bins
	if [ "$NSVC" -lt 1 ] || [ "$NSVC" -gt 254 ]; then
		# two services (web, web6) come with the rig: 256 in all
		t_bail "HTTP_SCALE_SVC=$NSVC: 1..254"
	fi
	RIG_CLIENTS=1 RIG_BLUE=1 RIG_GREEN=1 RIG_QUIET=1 rig_up
	t_note "rig $RIG_ID up in $((SECONDS - T_START))s; $RIG_DIR"
	D=$RIG_DIR
	# Service k (1..NSVC): VIP 198.18.(110 + k/200).(k%200 + 1):80, its backends
	# 198.19.(10 + k/2).(1..64, or 128..191 for an odd k), blue on port 8080, green 8081.
	for ((k = 1; k <= NSVC; k++)); do
		net=198.19.$((10 + k / 2))
		base=$(((k % 2) * 127))
		blue="" green=""
		for ((j = 1; j <= PER_POOL; j++)); do
			blue+="${blue:+, }$net.$((base + j)):8080"
			green+="${green:+, }$net.$((base + j)):8081"
		done
		extra+="[service s$k]"$'\n'"vip = 198.18.$((110 + k / 200)).$((k % 200 + 1)):80"$'\n'
		extra+="blue = $blue"$'\n'"green = $green"$'\n'"green_weight = 10%"$'\n'
		extra+="health_check = none"$'\n\n'
	done
	# A permanent neighbour for each of those addresses, which nothing holds: else
	# shiftd's next-hop lookups leave 4096 (32512 at 254) unresolved ARP entries, and
	# the kernel's ARP table is one for every namespace, 1024 entries at most
	# (gc_thresh3): "neighbor table overflow", and the tests running beside this one
	# could not resolve a neighbour (CI run 147: test_streak's wrk, "No route to
	# host"). Permanent entries are not counted against that limit.
	for ((k = 1; k <= NSVC; k++)); do
		net=198.19.$((10 + k / 2))
		base=$(((k % 2) * 127))
		for ((j = 1; j <= PER_POOL; j++)); do
			echo "neigh replace $net.$((base + j)) lladdr 02:00:00:5c:a1:e0 dev $RIG_EDGE_BACKEND_IF nud permanent"
		done
	done | ip -n "$RIG_NS_EDGE" -batch - || t_bail "cannot add the backends' neighbours"
	# Appended, not RIG_CONFIG_EXTRA: an environment string is cut at 128 KiB.
	rig_write_config "$D/shiftd.conf" xdp_mode=auto web.health_check=none \
		web6.health_check=none "http_listen=127.0.0.1:$HTTP_PORT" \
		"http_token_file=$D/token" || t_bail "rig_write_config failed"
	printf '\n%s' "$extra" >>"$D/shiftd.conf" || t_bail "cannot write $D/shiftd.conf"
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$D/token"
	chmod 600 "$D/token"
	NBE=$((NSVC * PER_POOL * 2))
	t_note "config: $((NSVC + 2)) services, $NBE backends in the big ones"
}

scale_start() { # LOG
	local t0=$SECONDS
	shiftd_start "$1" || t_bail "shiftd did not start"
	t_note "shiftd ready in $((SECONDS - t0))s"
}
