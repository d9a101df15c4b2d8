#!/bin/sh
# The agent's subsystems are layered; a file includes only its own folder's
# headers, those of the layers below it, and agent.h (the runtime state that
# main owns). Fails naming every include that points up or sideways, which is
# also what keeps the folders free of include cycles.
#
#   config    parsing the INI file, units, addresses, weights   (no deps)
#   ops       logs, clocks, privileges, systemd, the state file
#   datapath  load/attach/pin, the map API, Maglev, netlink, next hops
#   analysis  samples -> windows -> triggers -> rollback; health, ramps
#   shadow    replaying sampled blue requests to green
#   fleet     the etcd client and the fleet's shared state
#   control   control socket, status, metrics, reload
#   http      the HTTP API (Alertmanager webhook, /metrics, /v1/status)
set -eu
cd "$(dirname "$0")/.."
ORDER="config ops datapath analysis shadow fleet control http"

rank() {
	i=0
	for l in $ORDER; do
		[ "$l" = "$1" ] && { echo $i; return; }
		i=$((i + 1))
	done
	echo -1
}

bad=0
for dir in agent/*/; do
	layer=$(basename "$dir")
	me=$(rank "$layer")
	if [ "$me" -lt 0 ]; then
		echo "check-layers: agent/$layer/ is not in the layer order (tools/check-layers.sh)" >&2
		bad=1
		continue
	fi
	for f in "$dir"*.c "$dir"*.h; do
		[ -f "$f" ] || continue
		for inc in $(sed -n 's/^#include "\([a-z_]*\)\/[^"]*".*/\1/p' "$f" | sort -u); do
			[ "$inc" = "$layer" ] && continue
			them=$(rank "$inc")
			if [ "$them" -lt 0 ] || [ "$them" -gt "$me" ]; then
				echo "check-layers: $f includes $inc/ (a layer above $layer/)" >&2
				bad=1
			fi
		done
	done
done
for f in agent/*.c agent/*.h; do
	case $(basename "$f") in shiftd.c | agent.h | version.h) ;;
	*) echo "check-layers: $f belongs in a subsystem folder" >&2; bad=1 ;;
	esac
done
[ "$bad" = 0 ] && echo "check-layers: agent/ layered as $ORDER"
exit $bad
