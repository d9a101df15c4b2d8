#!/bin/sh
# The packaged /etc/shift/shiftd.conf (deploy/shiftd.conf) shows every key
# shiftd.conf(5) documents, commented out, in the section the man page puts it
# in. A key added to the man page without a line here fails, naming it; so
# does a line here for a key the man page does not know.
#   man page:  .SH "[global] KEYS" then ".BI key " = " ..." (or .BR), or
#              ".BR key1 ", " key2 ..." for keys described together
#   conffile:  [global] / #[service web] headers, "#key = value" lines
# Exit 0 in line, 1 not (with every difference), 2 a file is missing.
set -eu
cd "$(dirname "$0")/.."
MAN=man/shiftd.conf.5
CONF=deploy/shiftd.conf
for f in "$MAN" "$CONF"; do
	[ -r "$f" ] || { echo "check-conffile: cannot read $f" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# SECTION KEY lines; a [service NAME] section is "service".
awk '
/^\.SH / { sec = ""; if (match($0, /"\[[a-z]+/)) sec = substr($0, RSTART + 2, RLENGTH - 2); next }
sec != "" && /^\.B[IR]? [a-z0-9_]+ " = "/ { print sec, $2; next }
# several keys in one item: .BR a ", " b ", " c
sec != "" && /^\.BR [a-z0-9_]+ ", " [a-z0-9_]+/ {
	for (i = 2; i <= NF; i += 3) print sec, $i
}
' "$MAN" | sort -u >"$tmp/man"
awk '
/^#?\[[a-z]+[] ]/ { s = $0; sub(/^#?\[/, "", s); sub(/[] ].*/, "", s); sec = s; next }
/^#[a-z0-9_]+ = / { k = substr($1, 2); print sec, k }
' "$CONF" | sort -u >"$tmp/conf"

rc=0
comm -23 "$tmp/man" "$tmp/conf" | while read -r sec key; do
	echo "check-conffile: $CONF has no '#$key = ...' line in [$sec] ($MAN documents it)" >&2
done
comm -13 "$tmp/man" "$tmp/conf" | while read -r sec key; do
	echo "check-conffile: $CONF shows '$key' in [$sec], which $MAN does not document there" >&2
done
[ -z "$(comm -3 "$tmp/man" "$tmp/conf")" ] || rc=1
[ "$rc" = 0 ] && echo "check-conffile: $CONF shows all $(wc -l <"$tmp/man") keys of $MAN"
exit "$rc"
