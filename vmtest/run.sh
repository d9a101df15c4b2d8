#!/bin/bash
# Run the BPF test suite and the XDP smoke test inside a VM on a distribution kernel
# (default: Debian 12's linux-image-amd64, a 6.1 kernel with a stricter verifier).
#
#   vmtest/run.sh [--quick] [--kernel KERNEL] [--modules DIR] [--cmd CMD] [-v] [--timeout SECS]
#
# --quick: only what `make check` needs from the kernel (VMTEST_MODE=quick in
# vmtest/guest.sh: every program loaded, the XDP packet tables, shiftd by XDP and TC);
# without it the whole BPF suite, TC packet tables included, and the smoke test (~10 min).
#
# KERNEL is a package name (linux-image-amd64, linux-image-6.1.0-NN-amd64), a .deb file,
# a directory a kernel .deb was unpacked into, or a vmlinuz/bzImage file (its modules from
# --modules / $MODULES, or found beside it). See vmtest/README.md.
#
# Exit: 0 the guest passed, 77 skipped (no qemu, or no kernel package; reason on stderr),
# anything else failed. Everything is cached under $OUTPUT/vm (default .output/vm).
set -euo pipefail

START_DIR=$PWD
cd "$(dirname "$0")/.."
REPO=$(pwd -P)
OUT=${OUTPUT:-.output}
VMDIR=$OUT/vm
SELF=vmtest/run.sh

KERNEL=${VMTEST_KERNEL:-} # make passes KERNEL= as --kernel
MODULES=${MODULES:-}
GUEST_CMD=
VERBOSE=${VMTEST_VERBOSE:-${V:-0}} # make V=1: stream the console
TIMEOUT=${VMTEST_TIMEOUT:-}
VMTEST_MODE=${VMTEST_MODE:-full} # passed to the guest (write_env)
MEM=${VMTEST_MEM:-2G}
SMP=${VMTEST_SMP:-2}
# Loaded in the guest in this order, with their dependencies first. Missing ones are
# fine when built in (modules.builtin). Add more with VMTEST_MODULES="a b".
BASE_MODULES="virtio_pci virtio_rng 9pnet_virtio 9p veth sch_ingress cls_bpf act_bpf"
# Bump when the initramfs layout changes, to rebuild cached images.
INITRAMFS_FORMAT=1

usage() {
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--kernel) KERNEL=${2:?--kernel needs a value}; shift 2 ;;
	--kernel=*) KERNEL=${1#*=}; shift ;;
	--modules) MODULES=${2:?--modules needs a value}; shift 2 ;;
	--modules=*) MODULES=${1#*=}; shift ;;
	--quick) VMTEST_MODE=quick; shift ;;
	--full) VMTEST_MODE=full; shift ;;
	--cmd) GUEST_CMD=${2:?--cmd needs a value}; shift 2 ;;
	--timeout) TIMEOUT=${2:?--timeout needs a value}; shift 2 ;;
	-v | --verbose) VERBOSE=1; shift ;;
	-h | --help) usage ;;
	*) echo "vmtest: unknown argument: $1" >&2; usage ;;
	esac
done

# The whole suite runs the TC packet tables under TCG (~10 min); quick mode ~2 min.
if [ -z "$TIMEOUT" ]; then
	if [ "$VMTEST_MODE" = quick ]; then TIMEOUT=600; else TIMEOUT=1200; fi
fi
# Each guest step ends before the host's timeout, so its output reaches the console.
: "${VMTEST_TEST_TIMEOUT:=$((TIMEOUT > 200 ? TIMEOUT - 100 : TIMEOUT * 3 / 4))}"

# Paths given relative to where we were started.
from_start() {
	case $1 in
	/* | '') echo "$1" ;;
	*) if [ -e "$START_DIR/$1" ]; then echo "$START_DIR/$1"; else echo "$1"; fi ;;
	esac
}
KERNEL=$(from_start "$KERNEL")
MODULES=$(from_start "$MODULES")

log() { echo "vmtest: $*" >&2; }
skip() { log "SKIP: $*"; exit 77; }
die() { log "ERROR: $*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

# An explicitly requested kernel that cannot be had is an error; the default one
# missing (no mirror, no cache) is a skip.
kernel_unavailable() {
	if [ -n "$KERNEL" ]; then die "$*"; else skip "$*"; fi
}

apt_updated=0
apt_update() {
	[ "$apt_updated" = 0 ] || return 0
	apt_updated=1
	is_root || return 1
	log "apt-get update"
	timeout 180 apt-get update -q >/dev/null 2>&1
}

# --- host tools ------------------------------------------------------------------
find_busybox() {
	local b out
	for b in /bin/busybox /usr/bin/busybox; do
		[ -x "$b" ] || continue
		out=$(LC_ALL=C ldd "$b" 2>&1 || true) # a dynamic one would need its libraries
		[[ $out == *"not a dynamic"* || $out == *"statically linked"* ]] && { echo "$b"; return 0; }
	done
	return 1
}

ensure_tools() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	find_busybox >/dev/null || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	[ ${#missing[@]} -eq 0 ] && return 0
	if ! is_root || ! command -v apt-get >/dev/null; then
		skip "missing ${missing[*]} and not root with apt-get to install them"
	fi
	log "installing ${missing[*]}"
	apt_update || true
	DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >/dev/null 2>&1 || skip "could not install ${missing[*]}"
	if ! command -v qemu-system-x86_64 >/dev/null || ! find_busybox >/dev/null ||
		! command -v cpio >/dev/null; then
		skip "${missing[*]} still missing after apt-get install"
	fi
}

# qemu installed is not qemu usable: start a machine-less instance and quit it.
probe_qemu() {
	local out
	if ! out=$(echo quit | timeout 30 qemu-system-x86_64 -M none -accel tcg -nodefaults \
		-no-user-config -display none -monitor stdio 2>&1); then
		skip "qemu-system-x86_64 cannot start (TCG): $(echo "$out" | tail -3)"
	fi
}

# --- kernel ------------------------------------------------------------------------
# Print the version string from a bzImage header (offset 0x20e points at it).
bzimage_version() {
	local off
	off=$(od -An -tu2 -j526 -N2 "$1" 2>/dev/null | tr -d ' ') || return 1
	[ -n "$off" ] && [ "$off" -gt 0 ] || return 1
	dd if="$1" bs=1 skip=$((off + 512)) count=256 status=none | tr '\0' '\n' | head -n1 |
		cut -d' ' -f1
}

# Print "PACKAGE VERSION" for $1, following metapackages (linux-image-amd64 ->
# linux-image-6.1.0-NN-amd64). apt-cache takes ~0.5 s a call here (no pkgcache.bin),
# so the answer is cached until the package lists change (apt-get update).
resolve_package() {
	local want=$1 stamp cache p ver dep dver i
	stamp=$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0)
	cache=$VMDIR/debs/.resolved-$want
	if [ -f "$cache" ] && read -r i p ver <"$cache" && [ "$i" = "$stamp" ] && [ -n "$ver" ]; then
		echo "$p $ver"
		return 0
	fi
	p=$want
	ver=
	for i in 1 2 3; do
		read -r ver dep dver < <(apt-cache show --no-all-versions "$p" 2>/dev/null | awk '
			/^Version:/ { v = $2 }
			/^Depends:/ && match($0, /linux-image-[^ ,|]+( \(= [^)]+\))?/) {
				d = substr($0, RSTART, RLENGTH); gsub(/[(=)]/, "", d); dep = d }
			/^$/ { exit }
			END { print v, dep }') || true
		[ -n "$ver" ] || return 1
		[ -n "$dep" ] || break
		p=$dep
		ver=$dver
		[ -n "$ver" ] && break
	done
	[ -n "$ver" ] || return 1
	echo "$stamp $p $ver" >"$cache"
	echo "$p $ver"
}

# Print the path of a cached or freshly downloaded .deb for package $1.
fetch_package() {
	local want=$1 pkg='' ver='' deb='' cached
	mkdir -p "$VMDIR/debs"
	if ! read -r pkg ver < <(resolve_package "$want"); then
		apt_update || true
		read -r pkg ver < <(resolve_package "$want") || true
	fi
	if [ -n "$ver" ]; then
		deb=$(ls -1 "$VMDIR/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
		if [ -z "$deb" ]; then
			log "downloading $pkg $ver"
			(cd "$VMDIR/debs" && timeout 300 apt-get download -q -o APT::Sandbox::User=root \
				"$pkg=$ver" >/dev/null 2>&1) || true
			deb=$(ls -1 "$VMDIR/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
		fi
		[ -n "$deb" ] && { echo "$deb"; return 0; }
	fi
	# No package lists or no mirror: fall back to the newest cached .deb of that name.
	case $want in
	linux-image-amd64) cached=$(ls -1t "$VMDIR"/debs/linux-image-*.deb 2>/dev/null | head -n1 || true) ;;
	*) cached=$(ls -1t "$VMDIR/debs/${pkg:-$want}_"*.deb 2>/dev/null | head -n1 || true) ;;
	esac
	if [ -n "$cached" ]; then
		log "cannot fetch $want; using cached $(basename "$cached")"
		echo "$cached"
		return 0
	fi
	return 1
}

# Unpack a kernel .deb once (dpkg -x, no install) and use the tree.
unpack_deb() {
	local deb=$1 dir tmp
	dir=$VMDIR/kernels/$(basename "$deb" .deb)
	if [ ! -d "$dir" ]; then
		log "unpacking $(basename "$deb")"
		mkdir -p "$VMDIR/kernels"
		tmp=$(mktemp -d "$dir.tmp.XXXXXX")
		dpkg-deb -x "$deb" "$tmp" || { rm -rf "$tmp"; die "dpkg-deb -x $deb failed"; }
		mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp" # lost a race: another run unpacked it
	fi
	use_tree "$dir"
}

# Sets VMLINUZ, MODDIR (may be empty) and KVER from an unpacked tree.
use_tree() {
	local tree=$1 v
	VMLINUZ=$(ls -1 "$tree"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
	[ -n "$VMLINUZ" ] || die "no boot/vmlinuz-* in $tree"
	KVER=${VMLINUZ##*/vmlinuz-}
	MODDIR=
	for v in "$tree/lib/modules/$KVER" "$tree/usr/lib/modules/$KVER"; do
		[ -d "$v" ] && { MODDIR=$v; break; }
	done
}

select_kernel() {
	local k=$KERNEL deb
	MODDIR=
	if [ -z "$k" ] || { [ ! -e "$k" ] && [[ $k == linux-image-* ]]; }; then
		k=${k:-linux-image-amd64}
		deb=$(fetch_package "$k") || kernel_unavailable "kernel package $k cannot be fetched (apt) and none is cached in $VMDIR/debs"
		unpack_deb "$deb"
	elif [ -f "$k" ] && [[ $k == *.deb ]]; then
		unpack_deb "$k"
	elif [ -d "$k" ]; then
		use_tree "$k"
	elif [ -f "$k" ]; then
		VMLINUZ=$k
		KVER=$(bzimage_version "$k" || true)
		KVER=${KVER:-$(basename "$k")}
		local c
		for c in "$(dirname "$k")/../lib/modules/$KVER" "/lib/modules/$KVER"; do
			[ -z "$MODULES" ] && [ -d "$c/kernel" ] && MODULES=$c
		done
	else
		die "KERNEL=$k is neither a file, a directory nor a linux-image-* package name"
	fi
	if [ -n "$MODULES" ]; then
		if [ -d "$MODULES/kernel" ]; then
			MODDIR=$MODULES
		else
			MODDIR=$(ls -1d "$MODULES"/lib/modules/*/ 2>/dev/null | head -n1 || true)
			MODDIR=${MODDIR%/}
			[ -n "$MODDIR" ] || die "MODULES=$MODULES has neither kernel/ nor lib/modules/*/"
		fi
	fi
	[ -r "$VMLINUZ" ] || die "cannot read $VMLINUZ"
	[ -n "$MODDIR" ] || log "no modules directory for $KVER: assuming virtio, 9p, veth, ... are built in"
}

# --- initramfs ---------------------------------------------------------------------
declare -A MODPATH=() SEEN=()
MOD_ORDER=()

# The "depends=" of a .ko's .modinfo: modinfo -F depends, or read it directly when kmod
# is not installed.
module_depends() {
	if command -v modinfo >/dev/null; then
		modinfo -F depends "$1"
	else
		tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1
	fi
}

# Copy module $1 (and, first, its dependencies) into $2/lib/modules, decompressed.
add_module() {
	local name=${1//-/_} stage=$2 src dst deps d
	[ -z "${SEEN[$name]:-}" ] || return 0
	SEEN[$name]=1
	src=${MODPATH[$name]:-}
	if [ -z "$src" ]; then
		grep -qE "/${name//_/[-_]}\.ko" "$MODDIR/modules.builtin" 2>/dev/null ||
			log "warning: module $name not found in $MODDIR (nor built in)"
		return 0
	fi
	dst=$stage/lib/modules/$name.ko
	case $src in
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*) cp "$src" "$dst" ;;
	esac
	deps=$(module_depends "$dst")
	for d in ${deps//,/ }; do
		add_module "$d" "$stage"
	done
	MOD_ORDER+=("$name")
}

build_initramfs() {
	local out=$1 stage f b m
	stage=$(mktemp -d "$VMDIR/initramfs/stage.XXXXXX")
	mkdir -p "$stage"/{bin,sbin,dev,proc,sys,host,results,tmp,lib/modules}
	cp "$BUSYBOX" "$stage/bin/busybox"
	cp vmtest/init "$stage/init"
	chmod 755 "$stage/init"
	is_root && mknod -m 600 "$stage/dev/console" c 5 1
	if [ -n "$MODDIR" ]; then
		while IFS= read -r f; do
			b=${f##*/}
			b=${b%%.ko*}
			MODPATH[${b//-/_}]=$f
		done < <(find "$MODDIR/" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
		for m in $BASE_MODULES ${VMTEST_MODULES:-}; do
			add_module "$m" "$stage"
		done
	fi
	printf '%s\n' "${MOD_ORDER[@]}" >"$stage/lib/modules/order"
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$stage"
}

# Reuse the image when nothing that goes into it changed.
initramfs_for_kernel() {
	local key out
	key=$({
		echo "format=$INITRAMFS_FORMAT modules=$BASE_MODULES ${VMTEST_MODULES:-}"
		echo "moddir=$MODDIR"
		[ -z "$MODDIR" ] || stat -c '%s %Y' "$MODDIR" "$MODDIR/kernel" 2>/dev/null
		stat -c '%s %Y' "$BUSYBOX"
		cat vmtest/init "$SELF"
	} | sha256sum | cut -c1-16)
	mkdir -p "$VMDIR/initramfs"
	out=$VMDIR/initramfs/$KVER-$key.cpio
	if [ ! -s "$out" ]; then
		log "building initramfs for $KVER"
		build_initramfs "$out"
		find "$VMDIR/initramfs" -maxdepth 1 -name "$KVER-*.cpio" ! -name "${out##*/}" -delete
	fi
	echo "$out"
}

# --- run ---------------------------------------------------------------------------
# Single-quote for the guest's busybox sh.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

write_env() {
	local f=$1 v
	{
		echo "VMTEST_REPO=$(shq "$REPO")"
		echo "OUTPUT=$(shq "$OUT")"
		echo "VMTEST_CMD=$(shq "$GUEST_CMD")"
		for v in $(compgen -v | grep -E '^(VMTEST_|SMOKE_|ASAN_OPTIONS$|UBSAN_OPTIONS$|LSAN_OPTIONS$)' || true); do
			case $v in VMTEST_REPO | VMTEST_CMD) continue ;; esac
			echo "$v=$(shq "${!v}")"
		done
	} >"$f"
}

# Splats and verifier rejections; any hit fails the run.
SPLATS='BUG:|WARNING:|Kernel panic|Oops|KASAN|general protection fault|UBSAN:|RCU stall|hung_task|Call Trace:|BPF program load failed|BEGIN PROG LOAD LOG|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'

main() {
	ensure_tools
	BUSYBOX=$(find_busybox)
	probe_qemu
	mkdir -p "$VMDIR"
	select_kernel
	local initrd run share console rc qrc start elapsed hits
	initrd=$(initramfs_for_kernel)

	mkdir -p "$VMDIR/runs"
	run=$(mktemp -d "$VMDIR/runs/$KVER.$(date +%Y%m%d-%H%M%S).XXXX")
	share=$run/share
	mkdir -p "$share"
	write_env "$share/vmtest.env"
	console=$run/console.log
	ln -sfn "$(basename "$run")" "$VMDIR/runs/latest"
	# Keep the last 10 runs.
	ls -1dt "$VMDIR"/runs/*.*.* 2>/dev/null | tail -n +11 | xargs -r rm -rf

	log "kernel $KVER ($VMLINUZ), $VMTEST_MODE run, console log: $console"
	local qemu=(qemu-system-x86_64 -accel tcg -cpu max -smp "$SMP" -m "$MEM" -machine pc
		-nodefaults -no-user-config -nographic -no-reboot -serial stdio
		-kernel "$VMLINUZ" -initrd "$initrd"
		-append "console=ttyS0 panic=-1 oops=panic quiet loglevel=4 ${VMTEST_APPEND:-}"
		-device virtio-rng-pci
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
		-virtfs "local,path=$share,mount_tag=results,security_model=none,multidevs=remap")
	# qboot boots a -kernel faster than SeaBIOS and prints nothing.
	[ -f /usr/share/qemu/qboot.rom ] && qemu+=(-bios qboot.rom)
	start=$(date +%s.%N)
	set +e
	if [ "$VERBOSE" = 1 ]; then
		timeout --kill-after=10 "$TIMEOUT" "${qemu[@]}" </dev/null 2>&1 | tee "$console"
		qrc=${PIPESTATUS[0]}
	else
		timeout --kill-after=10 "$TIMEOUT" "${qemu[@]}" </dev/null >"$console" 2>&1
		qrc=$?
	fi
	set -e
	elapsed=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')

	rc=$(cat "$share/rc" 2>/dev/null || true)
	[ -f "$share/dmesg.txt" ] && cp "$share/dmesg.txt" "$run/dmesg.txt"
	local why=
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		why="qemu timed out after ${TIMEOUT}s"
	elif [ "$qrc" != 0 ]; then
		why="qemu exited with $qrc"
	elif [ -z "$rc" ]; then
		why="the guest wrote no result (crash or panic before the end of init?)"
	elif [ "$rc" != 0 ]; then
		why="the guest tests failed (exit $rc)"
	fi
	hits=$(cat "$console" "$run/dmesg.txt" 2>/dev/null | grep -aE "$SPLATS" | sort -u || true)
	if [ -n "$hits" ]; then
		why="${why:+$why; }splats or verifier errors in the guest log:"
	fi

	if [ -z "$why" ]; then
		log "PASS on $KVER in ${elapsed}s (logs: $run)"
		return 0
	fi
	if [ "$VERBOSE" != 1 ]; then
		echo "---- last 60 lines of $console ----" >&2
		tail -n 60 "$console" >&2
		echo "----" >&2
	fi
	log "FAIL on $KVER in ${elapsed}s: $why"
	[ -z "$hits" ] || echo "$hits" | head -n 20 | sed 's/^/    /' >&2
	log "console: $console${rc:+, dmesg: $run/dmesg.txt}"
	return 1
}

main
