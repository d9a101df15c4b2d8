#!/bin/sh
# The packaged /etc/shift/shiftd.conf (deploy/shiftd.conf) shows every key
# shiftd.conf(5) documents, commented out, in the section the man page puts it
# in. A key added to the man page without a line here fails, naming it; so
# does a line here for a key the man page does not know.
# Each "#key = value" also shows the man page's default where the man page
# names one value ("Default: 5s." or "Default:" then ".BR 5s ."): a default
# changed in one place and not the other fails, naming both. Defaults in
# words ("none", "the first interface") are not compared: there the line is an
# example. The man page's defaults are config.c's (conf_parse, open_service,
# conf_fleet_defaults, resolve_service): change them together.
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

# SECTION KEY VALUE: the man page's one-value defaults, and the conffile's
# values. control_socket_mode shows 0660, the default with control_socket_group
# (the key just above it); without a group the default is 0600.
awk '
/^\.SH / { sec = ""; if (match($0, /"\[[a-z]+/)) sec = substr($0, RSTART + 2, RLENGTH - 2); key = ""; next }
/^\.TP/ { key = ""; want = 0; next }
sec != "" && /^\.B[IR]? [a-z0-9_]+ " = "/ { key = $2; next }
key == "" { next }
want { want = 0; if (/^\.[BI]R? /) { v = $2; gsub(/\\-/, "-", v); print sec, key, v }; next }
$0 == "Default:" { want = 1; next }
/^Default: [^ ].*\.$/ {
	v = substr($0, 10, length($0) - 10)
	if (v !~ /^(none|the)( |$)/) print sec, key, v
}
' "$MAN" | sort >"$tmp/man-defaults"
awk '
/^#?\[[a-z]+[] ]/ { s = $0; sub(/^#?\[/, "", s); sub(/[] ].*/, "", s); sec = s; next }
/^#[a-z0-9_]+ = / { k = substr($1, 2); v = $0; sub(/^#[a-z0-9_]+ = /, "", v); print sec, k, v }
' "$CONF" | sed 's/^global control_socket_mode 0660$/global control_socket_mode 0600/' |
	sort >"$tmp/conf-values"

rc=0
while read -r sec key want; do
	got=$(awk -v s="$sec" -v k="$key" '$1 == s && $2 == k { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }' \
		"$tmp/conf-values")
	[ -z "$got" ] && continue # no line at all: reported below
	if [ "$got" != "$want" ]; then
		echo "check-conffile: $CONF shows '#$key = $got' in [$sec]; $MAN's default is '$want'" >&2
		rc=1
	fi
done <"$tmp/man-defaults"
comm -23 "$tmp/man" "$tmp/conf" | while read -r sec key; do
	echo "check-conffile: $CONF has no '#$key = ...' line in [$sec] ($MAN documents it)" >&2
done
comm -13 "$tmp/man" "$tmp/conf" | while read -r sec key; do
	echo "check-conffile: $CONF shows '$key' in [$sec], which $MAN does not document there" >&2
done
[ -z "$(comm -3 "$tmp/man" "$tmp/conf")" ] || rc=1
[ "$rc" = 0 ] &&
	echo "check-conffile: $CONF shows all $(wc -l <"$tmp/man") keys of $MAN, $(wc -l <"$tmp/man-defaults") with its default"
exit "$rc"
