#!/bin/sh
# Build the Debian package (make deb): dpkg-buildpackage -us -uc -b in a copy
# of the tree, so that neither debian/ build files nor ../*.deb land in the
# source tree.
#
#   tools/build-deb.sh OUT_DIR BUILD_DIR [VERSION]
#     OUT_DIR    gets shift_*.deb and shift-dbgsym_*.deb (the debug symbols)
#     BUILD_DIR  scratch: BUILD_DIR/shift (the copy), the .changes, .buildinfo
#     VERSION    a changelog entry for it in the copy (default: debian/changelog's)
# BPF_EXTRA_CFLAGS in the environment reaches the build (the upgrade test's
# variant program). Exit 0 built, 1 failed, 2 bad usage.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 OUT_DIR BUILD_DIR [VERSION]" >&2
	exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$1 BUILD=$2 VERSION=${3:-}
case $VERSION in
*[!0-9A-Za-z.+~-]* | [!0-9]*) [ -z "$VERSION" ] ||
	{ echo "build-deb: bad version '$VERSION' (digits first, then [0-9A-Za-z.+~-])" >&2; exit 2; } ;;
esac
for c in dpkg-buildpackage dh fakeroot; do
	command -v "$c" >/dev/null 2>&1 ||
		{ echo "build-deb: missing $c (apt-get install dpkg-dev debhelper fakeroot)" >&2; exit 1; }
done

mkdir -p "$OUT" "$BUILD"
OUT=$(cd "$OUT" && pwd) BUILD=$(cd "$BUILD" && pwd)
SRC=$BUILD/shift
rm -rf "$SRC"
mkdir "$SRC"

# The files: git's view (tracked and untracked, not ignored) when there is one,
# else the tree without build output. Never the build directory itself.
case $BUILD/ in "$ROOT"/*) skip=${BUILD#"$ROOT"/}/ ;; *) skip=// ;; esac
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# shellcheck disable=SC2016 # the inner sh's $f
	git -C "$ROOT" ls-files -co --exclude-standard -z |
		(cd "$ROOT" && grep -zv "^$skip" | xargs -0r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
			tar --null -T - -cf -) | tar -xf - -C "$SRC"
else
	(cd "$ROOT" && tar --exclude=./.output --exclude=./.git --exclude="./${skip%/}" -cf - .) |
		tar -xf - -C "$SRC"
fi
rm -rf "$SRC/.output"

if [ -n "$VERSION" ]; then
	maint=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$SRC/debian/changelog" | head -n 1)
	{
		printf 'shift (%s) unstable; urgency=medium\n\n' "$VERSION"
		printf '  * Built by make deb DEB_VERSION=%s%s.\n\n' "$VERSION" \
			"${BPF_EXTRA_CFLAGS:+ BPF_EXTRA_CFLAGS=$BPF_EXTRA_CFLAGS}"
		printf ' -- %s  %s\n\n' "$maint" "$(date -R)"
		cat "$ROOT/debian/changelog"
	} >"$SRC/debian/changelog"
fi

# A make above us (make deb) must not hand its command-line variables (OUTPUT,
# PREFIX, DESTDIR ...) or its jobserver to the package's own make.
(cd "$SRC" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u OUTPUT -u PREFIX -u DESTDIR \
	dpkg-buildpackage -us -uc -b -J) >"$BUILD/build.log" 2>&1 || {
	tail -n 40 "$BUILD/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed; the whole log: $BUILD/build.log" >&2
	exit 1
}
n=0
for f in "$BUILD"/shift_*.deb "$BUILD"/shift-dbgsym_*.deb "$BUILD"/shift-dbgsym_*.ddeb; do
	[ -e "$f" ] || continue
	mv -f "$f" "$OUT/"
	echo "build-deb: $OUT/$(basename "$f")"
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "build-deb: dpkg-buildpackage made no .deb (log: $BUILD/build.log)" >&2; exit 1; }
