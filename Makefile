# shift — build, test and benchmark.
#
#   make            build the BPF objects, shiftd and shiftctl
#   make check      install missing Debian packages, build, run every test
#   make demo       the end-to-end demo in network namespaces
#   make demo-fleet the same over three edge hosts sharing one etcd (fleet)
#   make bench      every benchmark (not part of check)
#   make V=1 ...    show the commands
#   make OUTPUT=DIR BPF_EXTRA_CFLAGS=-DSHIFT_UPGRADE_TEST
#                   a variant build (the upgrade test swaps programs with it)
#
#   make deb        the Debian package (see "Debian package" below)
#
# Everything generated goes under $(OUTPUT).

.DELETE_ON_ERROR:
.SUFFIXES:
# Keep the BPF objects: the vmtest smoke test and bpftool use them directly.
.SECONDARY:

OUTPUT ?= .output
PREFIX ?= /usr/local
DESTDIR ?=

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
LLVM_STRIP ?= llvm-strip

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -dumpmachine 2>/dev/null)

# Debian's clang needs the multiarch dir for asm/types.h (UAPI headers only, no vmlinux.h).
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -mcpu=v3 \
	-Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wimplicit-fallthrough \
	-Iinclude -Ibpf -idirafter /usr/include/$(MULTIARCH) $(BPF_EXTRA_CFLAGS)

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
USER_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Iagent -I$(OUTPUT) -MMD -MP
SAN_CFLAGS ?= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS := -lbpf -lelf -lz -lmnl -lm -lpthread -lmicrohttpd -lcurl -ljansson

BPF_SRCS := $(wildcard bpf/*.bpf.c)
# shift_compat: the datapath for kernels without bpf_cast_to_kern_ctx() (before
# 6.2, Debian 12's 6.1), its TC checksums through the helpers; the agent picks.
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS)) $(OUTPUT)/shift_compat.bpf.o
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS)) $(OUTPUT)/shift_compat.skel.h
BPF_HDRS := $(wildcard bpf/*.h) $(wildcard include/shift/*.h)

# The userspace library: every agent/SUBSYSTEM/*.c (shiftd.c, the main, stays on top).
AGENT_DIRS := $(sort $(dir $(wildcard agent/*/*.c)))
LIB_SRCS := $(wildcard agent/*/*.c)
LIB_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(LIB_SRCS))
SAN_LIB_OBJS := $(patsubst %.c,$(OUTPUT)/san/%.o,$(LIB_SRCS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
BPFTEST_SRCS := $(filter-out %.bpf.c,$(wildcard tests/bpf/*.c))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(OUTPUT)/bench/%,$(BENCH_SRCS))

BINS := $(OUTPUT)/shiftd $(OUTPUT)/shiftctl

.PHONY: all
all: $(BINS)

$(OUTPUT) $(OUTPUT)/tests $(OUTPUT)/bench $(OUTPUT)/tools \
		$(addprefix $(OUTPUT)/,$(AGENT_DIRS)) $(addprefix $(OUTPUT)/san/,$(AGENT_DIRS)):
	$(Q)mkdir -p $@

# --- BPF -------------------------------------------------------------------
$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp
	$(Q)rm -f $@.tmp

$(OUTPUT)/shift_compat.bpf.o: bpf/shift.bpf.c $(BPF_HDRS) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DSHIFT_NO_KERN_CTX -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp
	$(Q)rm -f $@.tmp

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $* > $@

# --- userspace -------------------------------------------------------------
$(OUTPUT)/agent/%.o: agent/%.c $(SKELS) | $(addprefix $(OUTPUT)/,$(AGENT_DIRS))
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(USER_CFLAGS) -c $< -o $@

$(OUTPUT)/san/agent/%.o: agent/%.c $(SKELS) | $(addprefix $(OUTPUT)/san/,$(AGENT_DIRS))
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) -O1 -g $(USER_CFLAGS) $(SAN_CFLAGS) -c $< -o $@

$(OUTPUT)/libshift.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUTPUT)/libshift-san.a: $(SAN_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUTPUT)/shiftd: agent/shiftd.c $(OUTPUT)/libshift.a $(SKELS)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(USER_CFLAGS) $< $(OUTPUT)/libshift.a $(LDFLAGS) $(LDLIBS) -o $@

$(OUTPUT)/shiftctl: tools/shiftctl.c $(OUTPUT)/libshift.a $(SKELS)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(USER_CFLAGS) $< $(OUTPUT)/libshift.a $(LDFLAGS) $(LDLIBS) -o $@

# --- tests -----------------------------------------------------------------
$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(OUTPUT)/libshift-san.a | $(OUTPUT)/tests
	$(call msg,CCLD,$@)
	$(Q)$(CC) -O1 -g $(USER_CFLAGS) $(SAN_CFLAGS) $< $(OUTPUT)/libshift-san.a $(LDLIBS) -lcmocka -o $@

# A program the verifier must reject: the suite checks its log is printed.
$(OUTPUT)/tests/reject.bpf.o: tests/bpf/reject.bpf.c | $(OUTPUT)/tests
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/tests/bpf_test: $(OUTPUT)/tests/reject.bpf.o $(BPFTEST_SRCS) $(wildcard tests/bpf/*.h) $(OUTPUT)/libshift-san.a $(SKELS) | $(OUTPUT)/tests
	$(call msg,CCLD,$@)
	$(Q)$(CC) -O1 -g $(USER_CFLAGS) -Itests/bpf $(SAN_CFLAGS) $(BPFTEST_SRCS) $(OUTPUT)/libshift-san.a $(LDLIBS) -o $@

# The harness sources and every header the benchmarks include: a change to one
# rebuilds them, as it rebuilds bpf_test.
BENCH_DEPS := $(filter-out tests/bpf/main.c tests/bpf/test_%.c,$(BPFTEST_SRCS)) \
	$(wildcard tests/bpf/*.h bench/*.h)
$(OUTPUT)/bench/%: bench/%.c $(BENCH_DEPS) $(OUTPUT)/libshift.a $(SKELS) | $(OUTPUT)/bench
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) $(USER_CFLAGS) -Itests/bpf $< $(filter-out tests/bpf/main.c tests/bpf/test_%.c,$(BPFTEST_SRCS)) $(OUTPUT)/libshift.a $(LDLIBS) -o $@

.PHONY: deps
deps:
	$(Q)tools/install-deps.sh

.PHONY: tests
# The benchmarks are built, not run: a change that breaks one (pktgen, which
# only make bench-peers used to build) fails make check, not the next bench run.
tests: all $(UNIT_BINS) $(OUTPUT)/tests/bpf_test $(BENCH_BINS)

# make check = deps, then a fresh make (the deps may have just been installed),
# on every CPU unless make was given -j: CI calls plain `make check`, and a serial
# build is a minute of it.
.PHONY: check check-run check-unit check-bpf check-netns check-vm
check: deps
	$(Q)$(MAKE) --no-print-directory $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc)) tests
	$(Q)$(MAKE) --no-print-directory check-run

check-run: tests
	$(Q)tools/check-layers.sh
	$(Q)tools/check-conffile.sh
	$(Q)tests/run.sh all

check-unit: $(UNIT_BINS)
	$(Q)tests/run.sh unit

check-bpf: $(OUTPUT)/tests/bpf_test
	$(Q)tests/run.sh bpf

check-netns: all
	$(Q)tests/run.sh netns

# The whole VM suite (TC packet tables under TCG, ~10 min); make check runs its
# quick part (tests/run.sh vm: vmtest/run.sh --quick).
check-vm: $(OUTPUT)/tests/bpf_test all
	$(Q)tests/run.sh vm-full

.PHONY: vmtest
vmtest: $(OUTPUT)/tests/bpf_test all
	$(Q)vmtest/run.sh $(if $(KERNEL),--kernel $(KERNEL))

# --- demo and benchmarks ---------------------------------------------------
.PHONY: demo
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/netns/demo.sh

# The fleet (issue #17): three edge hosts, one etcd cluster, a rollback spreading live.
.PHONY: demo-fleet
demo-fleet: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/netns/demo_fleet.sh

# DP_ROUNDS whole runs: one run's figures move with the host (BENCHMARKS §7zc,
# §7zg), so the summary gives each case's median (min-max) and the runs that met
# SPEC. bench-datapath.txt is the first run's table; the runs' files replace the
# last invocation's.
DP_ROUNDS ?= 3
.PHONY: bench bench-datapath
bench-datapath: $(OUTPUT)/bench/bench_datapath
	$(Q)rm -f $(OUTPUT)/bench/datapath-run-*.txt
	$(Q)for i in $$(seq 1 $(DP_ROUNDS)); do \
		$(OUTPUT)/bench/bench_datapath --out $(OUTPUT)/bench/datapath-run-$$i.txt || exit 1; \
	done
	$(Q)cp $(OUTPUT)/bench/datapath-run-1.txt $(OUTPUT)/bench-datapath.txt

bench: bench-datapath

# --- housekeeping ----------------------------------------------------------
.PHONY: clean format
clean:
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

-include $(wildcard $(OUTPUT)/agent/*/*.d $(OUTPUT)/san/agent/*/*.d $(OUTPUT)/*.d \
	$(OUTPUT)/tests/*.d $(OUTPUT)/bench/*.d)

# === install and check-ops (issue 6) ========================================
#
#   make install [DESTDIR=/stage] [PREFIX=/usr/local]
#     $(SBINDIR)/shiftd, $(SBINDIR)/shiftctl   both need root (BPF), so sbin
#     $(UNITDIR)/shiftd.service                ExecStart and --config rewritten to
#                                              SBINDIR and SYSCONFDIR
#     $(UNITDIR)/shift-drill@.service, .timer  scheduled rollback drills (same rewrite)
#     $(SYSCONFDIR)/shift/shiftd.conf.example  never touches shiftd.conf itself
#     $(MANDIR)/man8/shiftd.8 shiftctl.8, $(MANDIR)/man5/shiftd.conf.5
#     $(DATADIR)/prometheus/shift-rules.yml, $(DATADIR)/grafana/shift-dashboard.json,
#     $(DATADIR)/prometheus/{app-rollback-rules,alertmanager-shift}.yml (the HTTP API's)
#   UNITDIR defaults to $(PREFIX)/lib/systemd/system: systemd reads both
#   /usr/local/lib/systemd/system and /usr/lib/systemd/system. For another
#   PREFIX (/opt/shift), set UNITDIR=/etc/systemd/system.
#   SYSCONFDIR stays /etc whatever the PREFIX: /etc/shift/shiftd.conf is the
#   default both programs look for.
#   make uninstall removes what install put (not the config, state or pins).
#   make check-ops runs the operations test alone (tests/netns/test_ops.sh).
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/shift
INSTALL ?= install
MAN8 := man/shiftd.8 man/shiftctl.8
MAN5 := man/shiftd.conf.5

.PHONY: install uninstall check-ops
install: all
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' -e 's|/etc/shift/|$(SYSCONFDIR)/shift/|g' \
		deploy/systemd/shiftd.service >$(OUTPUT)/shiftd.service
	$(Q)sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' -e 's|/etc/shift/|$(SYSCONFDIR)/shift/|g' \
		deploy/systemd/shift-drill@.service >$(OUTPUT)/shift-drill@.service
	$(Q)$(INSTALL) -d -m 755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/shift $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DATADIR)/prometheus $(DESTDIR)$(DATADIR)/grafana
	$(Q)$(INSTALL) -m 755 $(OUTPUT)/shiftd $(OUTPUT)/shiftctl $(DESTDIR)$(SBINDIR)/
	$(Q)$(INSTALL) -m 644 $(OUTPUT)/shiftd.service $(DESTDIR)$(UNITDIR)/shiftd.service
	$(Q)$(INSTALL) -m 644 $(OUTPUT)/shift-drill@.service deploy/systemd/shift-drill@.timer \
		$(DESTDIR)$(UNITDIR)/
	$(Q)$(INSTALL) -m 644 deploy/shiftd.conf.example $(DESTDIR)$(SYSCONFDIR)/shift/
	$(Q)$(INSTALL) -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	$(Q)$(INSTALL) -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	$(Q)$(INSTALL) -m 644 deploy/prometheus/shift-rules.yml deploy/prometheus/app-rollback-rules.yml \
		deploy/prometheus/alertmanager-shift.yml $(DESTDIR)$(DATADIR)/prometheus/
	$(Q)$(INSTALL) -m 644 deploy/grafana/shift-dashboard.json $(DESTDIR)$(DATADIR)/grafana/

uninstall:
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/shiftd $(DESTDIR)$(SBINDIR)/shiftctl \
		$(DESTDIR)$(UNITDIR)/shiftd.service $(DESTDIR)$(SYSCONFDIR)/shift/shiftd.conf.example \
		$(DESTDIR)$(UNITDIR)/shift-drill@.service $(DESTDIR)$(UNITDIR)/shift-drill@.timer \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
		$(DESTDIR)$(DATADIR)/prometheus/shift-rules.yml \
		$(DESTDIR)$(DATADIR)/prometheus/app-rollback-rules.yml \
		$(DESTDIR)$(DATADIR)/prometheus/alertmanager-shift.yml \
		$(DESTDIR)$(DATADIR)/grafana/shift-dashboard.json
	$(Q)rmdir $(DESTDIR)$(DATADIR)/prometheus $(DESTDIR)$(DATADIR)/grafana \
		$(DESTDIR)$(DATADIR) 2>/dev/null || true

check-ops: all
	$(Q)tests/netns/test_ops.sh
# === end install and check-ops ===============================================

# === bench-rollback (issue 5) ================================================
# Rollback reaction time on the real path (skeleton, config, ring buffer consumer,
# XDP programs), with background sample load flat out, then paced at 50k/s with the
# loop SCHED_FIFO as shiftd's unit runs it (its CPU idles between wakeups: §7w);
# then the ring buffers under overload; then 32 services failing together, with
# the state file written on the loop (the old way) and by its writer thread.
.PHONY: bench-rollback
bench-rollback: $(OUTPUT)/bench/bench_rollback
	$(Q)$(OUTPUT)/bench/bench_rollback --out $(OUTPUT)/bench-rollback.txt
	$(Q)$(OUTPUT)/bench/bench_rollback --rate 50000 --fifo 20 --rollbacks 300 \
		--out $(OUTPUT)/bench-rollback-paced.txt
	$(Q)$(OUTPUT)/bench/bench_rollback --overload --out $(OUTPUT)/bench-rollback-overload.txt
	$(Q)$(OUTPUT)/bench/bench_rollback --burst 32 --rounds 30 \
		--out $(OUTPUT)/bench-rollback-burst.txt

bench: bench-rollback

# === fuzzing (issue 9) =======================================================
#
#   make fuzz [FUZZ_PACKETS=10000000] [FUZZ_SECONDS=120]
#     the packet fuzzer over the XDP programs (bpf_test -t fuzz with
#     SHIFT_FUZZ_PACKETS=$(FUZZ_PACKETS)), then each libFuzzer harness of
#     tests/fuzz/ (config, weight, state, ctl, webhook, request, fleet) for
#     FUZZ_SECONDS, one at a time.
#   make fuzz-packets / make fuzz-libfuzzer   either half alone.
#   make check runs both briefly: the packet fuzzer inside bpf_test (100000
#   packets by default), each harness for FUZZ_CHECK_SECONDS (default 5) as the
#   unit test $(OUTPUT)/tests/test_libfuzzer.
#   Findings: $(OUTPUT)/fuzz-failures/ (packets), $(OUTPUT)/fuzz/artifacts/ (inputs).
# The harnesses link the agent sources they parse with, built by clang with
# libFuzzer, ASan and UBSan (libshift.a is gcc's).
FUZZ_CC ?= $(CLANG)
FUZZ_SECONDS ?= 120
FUZZ_PACKETS ?= 10000000
FUZZ_NAMES := config weight state ctl webhook request fleet
FUZZ_BINS := $(patsubst %,$(OUTPUT)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_CFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Iagent \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

$(OUTPUT)/fuzz/fuzz_config: $(addprefix agent/config/,config.c addr.c units.c weight.c errmsg.c fleet_conf.c)
$(OUTPUT)/fuzz/fuzz_weight: agent/config/weight.c agent/config/errmsg.c
$(OUTPUT)/fuzz/fuzz_state: agent/ops/state.c agent/config/units.c agent/config/errmsg.c
$(OUTPUT)/fuzz/fuzz_ctl: agent/control/ctl_proto.c
$(OUTPUT)/fuzz/fuzz_webhook: agent/http/webhook.c agent/config/errmsg.c
$(OUTPUT)/fuzz/fuzz_webhook: FUZZ_LIBS := -ljansson
# The whole request path: libmicrohttpd's parser, then the API's routing, token, limits.
$(OUTPUT)/fuzz/fuzz_request: $(addprefix agent/http/,server.c webhook.c token.c) \
	agent/config/errmsg.c agent/config/addr.c agent/ops/clock.c
$(OUTPUT)/fuzz/fuzz_request: FUZZ_LIBS := -lmicrohttpd -ljansson
$(OUTPUT)/fuzz/fuzz_fleet: $(addprefix agent/fleet/,value.c b64.c etcd_json.c) agent/config/errmsg.c
$(OUTPUT)/fuzz/fuzz_fleet: FUZZ_LIBS := -ljansson

$(OUTPUT)/fuzz:
	$(Q)mkdir -p $@

$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(wildcard agent/*.h agent/*/*.h include/shift/*.h) \
		| $(OUTPUT)/fuzz
	$(call msg,FUZZ-LD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter %.c,$^) -lz $(FUZZ_LIBS) -o $@

# The unit suite runs every $(OUTPUT)/tests/test_*: this one runs the harnesses.
$(OUTPUT)/tests/test_libfuzzer: $(FUZZ_BINS) | $(OUTPUT)/tests
	$(call msg,GEN,$@)
	$(Q)printf '#!/bin/sh\n# Generated by make: each libFuzzer harness for a few seconds.\nexec tests/fuzz/run.sh --check "$${FUZZ_CHECK_SECONDS:-5}" %s %s\n' \
		'$(OUTPUT)' '$(FUZZ_NAMES)' >$@
	$(Q)chmod 755 $@

tests: $(OUTPUT)/tests/test_libfuzzer

.PHONY: fuzz fuzz-run fuzz-packets fuzz-libfuzzer
fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-run

fuzz-run: $(OUTPUT)/tests/bpf_test $(FUZZ_BINS)
	$(Q)SHIFT_FUZZ_PACKETS=$(FUZZ_PACKETS) $(OUTPUT)/tests/bpf_test -t fuzz
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS) $(OUTPUT) $(FUZZ_NAMES)

fuzz-packets: $(OUTPUT)/tests/bpf_test
	$(Q)SHIFT_FUZZ_PACKETS=$(FUZZ_PACKETS) $(OUTPUT)/tests/bpf_test -t fuzz

fuzz-libfuzzer: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS) $(OUTPUT) $(FUZZ_NAMES)
# === end fuzzing =============================================================

# === chaos: SYN flood and faults under load (issue 9) ========================
#
#   make chaos [CHAOS_FLOOD=3000000]
#     the long versions of tests/netns/test_synflood.sh and test_chaos_*.sh
#     (CHAOS_LONG=1: millions of spoofed SYNs, more kill -9 rounds, longer
#     outages); make check runs the short ones with the other netns tests.
#   $(OUTPUT)/tests/synflood: the spoofed-SYN sender those tests run inside a
#   client namespace of the rig (AF_PACKET, bounded in count and time).
CHAOS_FLOOD ?= 3000000
CHAOS_TESTS := $(sort $(wildcard tests/netns/test_synflood.sh tests/netns/test_chaos_*.sh))

$(OUTPUT)/tests/synflood: tests/netns/synflood.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE $(WARN) $< -o $@

tests: $(OUTPUT)/tests/synflood
check-netns: $(OUTPUT)/tests/synflood

# Writes and counts entries of a pinned connection table: a table of a million
# entries for tests/netns/test_evict_big.sh in a second.
$(OUTPUT)/tests/flowtab: tests/netns/flowtab.c $(wildcard include/shift/*.h) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude $< -lbpf -lelf -lz -o $@

tests: $(OUTPUT)/tests/flowtab
check-netns: $(OUTPUT)/tests/flowtab

.PHONY: chaos chaos-run
chaos: deps
	$(Q)$(MAKE) --no-print-directory chaos-run

chaos-run: all $(OUTPUT)/tests/synflood
	$(Q)rc=0; for t in $(CHAOS_TESTS); do \
		echo "=== RUN   $$t (long)"; \
		CHAOS_LONG=1 CHAOS_FLOOD=$(CHAOS_FLOOD) timeout --kill-after=10 1200 $$t; r=$$?; \
		case $$r in 0) echo "--- PASS  $$t";; 77) echo "--- SKIP  $$t";; \
		*) echo "--- FAIL  $$t (exit $$r)"; rc=1;; esac; \
	done; exit $$rc
# === end chaos ================================================================

# === benchmarks against the peers (issue 8) ===================================
#
#   make bench           every benchmark (bench-datapath, bench-rollback above, then
#                        these), then the summary; not part of `make check`
#   make bench-flows     the connection table at 1k and 1M flows: bench_flows
#                        (memory, random-flow lookups, SYN into a full table) and
#                        bench_datapath --flows 1000
#   make bench-peers     bench/peers.sh on the namespace rig: packets/s (shift vs an
#                        nftables jhash DNAT vs plain forwarding), a SYN flood against
#                        idle connections, HTTP (wrk: shift vs nftables, HAProxy,
#                        nginx), reaction to a failing green, 1M flows through shiftd,
#                        shiftd's CPU per sample; installs wrk, haproxy, nginx,
#                        nftables if missing (bench/deps.sh)
#   make bench-health    the reaction section alone (issue 15): HAProxy (checks every
#                        100 ms and every 50 ms) and shift (health_interval = 50ms)
#                        side by side against a green that starts failing, in
#                        BENCH_REACT_ROUNDS (5) rounds (5 s each), backends and the
#                        systems under test SCHED_FIFO (BENCH_FIFO=1); then the summary
#   make bench-before BEFORE=REV   the pktrate, flood and http sections with REV's shiftd
#                        beside this tree's (systems before, before-tc) in the same
#                        rounds: a change's before and after from one run (REV
#                        7322fd0 is the tree before issue 14); then the summary
#   make bench-summary   $(OUTPUT)/bench/{*.csv,results.json,summary.md} from what is there
# Needs root; run it alone (no -j): the figures are timings. bench/README.md explains.
.PHONY: bench-flows bench-peers bench-summary bench-health bench-before
bench-flows: $(OUTPUT)/bench/bench_flows $(OUTPUT)/bench/bench_datapath
	$(Q)$(OUTPUT)/bench/bench_flows --out $(OUTPUT)/bench/flows.json >$(OUTPUT)/bench/flows.txt
	$(Q)cat $(OUTPUT)/bench/flows.txt
	$(Q)$(OUTPUT)/bench/bench_datapath --flows 1000 --out $(OUTPUT)/bench/datapath-flows1000.txt

# This tree against BASE, paired rounds (bench/ab_datapath.sh): not part of `make bench`.
# (AB_ONLY holds a comma: a plain default, not $(or ...), which would split it.)
AB_ONLY ?= SYN new flow, table full
AB_ROUNDS ?= 12
.PHONY: bench-ab
bench-ab: $(OUTPUT)/bench/bench_datapath
	$(Q)test -n "$(BASE)" || { echo "make bench-ab BASE=REV|compat [AB_ONLY=TEXT] [AB_ROUNDS=N]" >&2; exit 2; }
	$(Q)OUTPUT=$(OUTPUT) bench/ab_datapath.sh --rounds "$(AB_ROUNDS)" --only "$(AB_ONLY)" $(BASE)

bench-peers: all $(OUTPUT)/bench/pktgen $(OUTPUT)/bench/bench_agent $(OUTPUT)/bench/progcost
	$(Q)OUTPUT=$(OUTPUT) bench/peers.sh

bench-summary:
	$(Q)bench/summary.sh $(OUTPUT)

bench-before: all $(OUTPUT)/bench/pktgen $(OUTPUT)/bench/bench_agent $(OUTPUT)/bench/progcost
	$(Q)test -n "$(BEFORE)" || { echo "make bench-before BEFORE=REV" >&2; exit 2; }
	$(Q)OUTPUT=$(OUTPUT) BENCH_SECTIONS="pktrate flood http" BENCH_BEFORE="$(BEFORE)" bench/peers.sh
	$(Q)bench/summary.sh $(OUTPUT) >/dev/null
	$(Q)awk '/^## (2b?|3)\./ { p = 1; print; next } /^## / { p = 0 } p' $(OUTPUT)/bench/summary.md

BENCH_HEALTH_SYSTEMS ?= haproxy haproxy50 shift
bench-health: all $(OUTPUT)/bench/pktgen $(OUTPUT)/bench/bench_agent $(OUTPUT)/bench/progcost
	$(Q)OUTPUT=$(OUTPUT) BENCH_SECTIONS=reaction BENCH_REACT_WINDOW=$${BENCH_REACT_WINDOW:-5} \
		BENCH_REACT_ROUNDS=$${BENCH_REACT_ROUNDS:-5} BENCH_FIFO=$${BENCH_FIFO:-1} \
		BENCH_REACT_SYSTEMS="$(BENCH_HEALTH_SYSTEMS)" bench/peers.sh
	$(Q)bench/summary.sh $(OUTPUT) >/dev/null
	$(Q)awk '/^## 4\./ { p = 1; print; next } /^## / { p = 0 } p' $(OUTPUT)/bench/summary.md

# (the recipe's own rule names no prerequisite, so they run in the order the rules
# name them: datapath, rollback, flows, peers)
bench: bench-flows bench-peers
bench:
	$(Q)bench/summary.sh $(OUTPUT) >/dev/null
	$(Q)echo "bench: summary in $(OUTPUT)/bench/summary.md (CSV and results.json beside it)"
# === end benchmarks against the peers =========================================

# === Debian package (issue 19) ================================================
#
#   make deb [DEB_OUT=DIR] [DEB_VERSION=X] [BPF_EXTRA_CFLAGS=...]
#     shift_VERSION_ARCH.deb (and shift-dbgsym's .ddeb) into DEB_OUT (default
#     $(OUTPUT)/deb): tools/build-deb.sh runs dpkg-buildpackage -us -uc -b in a
#     copy of the tree under $(OUTPUT)/deb-build, so the tree gets no debian/
#     build files and no ../*.deb. debian/rules builds and installs with this
#     Makefile (make install PREFIX=/usr). DEB_VERSION adds a changelog entry in
#     the copy (default: debian/changelog's version); the upgrade test builds
#     N+1 with DEB_VERSION and the variant program.
#   tests/netns/test_deb.sh (make check): build, dpkg -i, check, upgrade under
#   traffic, purge. tools/check-conffile.sh: deploy/shiftd.conf (the packaged
#   /etc/shift/shiftd.conf) shows every key of man/shiftd.conf.5, with the
#   default the man page names.
DEB_OUT ?= $(OUTPUT)/deb
DEB_VERSION ?=

.PHONY: deb
deb:
	$(call msg,DEB,$(DEB_OUT))
	$(Q)BPF_EXTRA_CFLAGS='$(BPF_EXTRA_CFLAGS)' tools/build-deb.sh '$(DEB_OUT)' '$(OUTPUT)/deb-build' $(DEB_VERSION)
# === end Debian package =======================================================
# === bench-http (issue 18) ====================================================
# The rollback reaction with shiftd's HTTP API busy: real consecutive_errors
# rollbacks on the namespace rig (shiftd SCHED_FIFO as its unit runs it), a
# baseline, then with 1000 idle connections trickling headers, then under a wrk
# GET flood; HTTP_ROUNDS rounds each, figures in $(OUTPUT)/bench-http.txt. It is
# tests/netns/test_http_api.sh with more rounds (make check runs it with 3).
# At most 29: each round's load needs a fresh client source address of the rig.
HTTP_ROUNDS ?= 20
.PHONY: bench-http
bench-http: all
	$(Q)HTTP_ROUNDS=$(HTTP_ROUNDS) HTTP_FIGURES=$(abspath $(OUTPUT))/bench-http.txt \
		tests/netns/test_http_api.sh
	$(Q)cat $(OUTPUT)/bench-http.txt
# === end bench-http ===========================================================
