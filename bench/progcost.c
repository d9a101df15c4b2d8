// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * progcost: what a BPF program costs per packet in a live stream, by the
 * kernel's own clock.
 *
 *   progcost --netns NAME --dev IF --hook xdp|tcx [--floor] [--out FILE] -- CMD [ARG...]
 *
 * bench_datapath times one packet per BPF_PROG_TEST_RUN call, in a harness
 * that builds a fresh frame (for TC an skb and a socket) around every call.
 * A live stream differs: frames come in NAPI batches, on both CPUs at once,
 * and a program's lines stay warm between them. This measures that case: it
 * turns on the kernel's run-time statistics (BPF_ENABLE_STATS, on while
 * progcost holds the fd, off when it exits however it exits), reads the
 * program at HOOK of IF in /run/netns/NAME, runs CMD (the traffic) from the
 * namespace progcost was started in, reads the program again, and writes one
 * JSON object: the program's id and name, its runs during CMD and the ns per
 * run, and CMD's exit status.
 *
 * --floor attaches the floor there first, by a bpf_link that goes with the
 * process: XDP_PASS, or for tcx TC_ACT_UNSPEC (the next program, then the
 * stack). The statistics' own clock reads are in every run, the floor's
 * included, so a program's cost is its ns per run less the floor's, measured
 * on the same stream. Without --floor, the hook must hold exactly one
 * program (shiftd's).
 *
 * The JSON goes to FILE (appended) or stdout; CMD's own output goes to
 * progcost's stdout. Exits 0, 1 when something failed (CMD included), 2 on
 * bad usage. Needs root.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"

/* UAPI values Debian 12's 6.1 headers do not have yet. */
#define TCX_INGRESS_ 46

struct opts {
	const char *netns, *dev, *out;
	int tcx; /* the hook: tcx ingress, else XDP (native) */
	int floor;
	char **cmd;
};

struct snap {
	__u64 runs, ns;
};

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s --netns NAME --dev IF --hook xdp|tcx [--floor] [--out FILE] -- CMD [ARG...]\n"
		"  The ns per run of the program at HOOK of IF in /run/netns/NAME while CMD runs\n"
		"  (the kernel's BPF run-time statistics); --floor attaches XDP_PASS / TC_ACT_UNSPEC\n"
		"  there first and measures that.\n",
		argv0);
}

static int attach_floor(const struct opts *o, int ifindex, int *link_fd)
{
	const struct bpf_insn pass[] = { MOV64_IMM(BPF_REG_0, XDP_PASS), EXIT() };
	const struct bpf_insn next[] = { MOV64_IMM(BPF_REG_0, TC_ACT_UNSPEC), EXIT() };
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = o->tcx ? 0 : XDP_FLAGS_DRV_MODE);
	int fd;

	if (o->tcx)
		fd = bench_load_raw(BPF_PROG_TYPE_SCHED_CLS, "floor_tcx", next, 2);
	else
		fd = bench_load_raw(BPF_PROG_TYPE_XDP, "floor_xdp", pass, 2);
	if (fd < 0)
		return -1;
	*link_fd = bpf_link_create(fd, ifindex, o->tcx ? TCX_INGRESS_ : BPF_XDP, &lo);
	if (*link_fd < 0) {
		fprintf(stderr, "progcost: attaching the floor to %s (%s): %s\n", o->dev,
			o->tcx ? "tcx ingress" : "XDP, native", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The fd of the one program at the hook. */
static int attached_prog(const struct opts *o, int ifindex)
{
	__u32 ids[8], n = 8, id = 0;
	int fd;

	if (o->tcx) {
		if (bpf_prog_query(ifindex, TCX_INGRESS_, 0, NULL, ids, &n)) {
			fprintf(stderr, "progcost: querying tcx ingress of %s: %s\n", o->dev,
				strerror(errno));
			return -1;
		}
		if (n != 1) {
			fprintf(stderr, "progcost: %u programs on tcx ingress of %s, want one\n", n,
				o->dev);
			return -1;
		}
		id = ids[0];
	} else {
		int err = bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id);

		if (err) {
			fprintf(stderr, "progcost: querying XDP of %s: %s\n", o->dev,
				strerror(-err));
			return -1;
		}
		if (!id) {
			fprintf(stderr, "progcost: no native XDP program on %s\n", o->dev);
			return -1;
		}
	}
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		fprintf(stderr, "progcost: program %u: %s\n", id, strerror(errno));
	return fd;
}

static int read_info(int fd, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len)) {
		fprintf(stderr, "progcost: reading the program's info: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int snapshot(int fd, struct snap *s)
{
	struct bpf_prog_info info;

	if (read_info(fd, &info))
		return -1;
	s->runs = info.run_cnt;
	s->ns = info.run_time_ns;
	return 0;
}

/* CMD's exit status (0..255, or 128 + its signal), or -1 if it could not run. */
static int run_cmd(char **cmd)
{
	int st;
	pid_t pid = fork();

	if (pid < 0) {
		fprintf(stderr, "progcost: fork: %s\n", strerror(errno));
		return -1;
	}
	if (!pid) {
		execvp(cmd[0], cmd);
		fprintf(stderr, "progcost: exec %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "progcost: waitpid: %s\n", strerror(errno));
			return -1;
		}
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "dev", required_argument, NULL, 'd' },
		{ "hook", required_argument, NULL, 'k' },
		{ "floor", no_argument, NULL, 'f' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *hook = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->netns = optarg;
			break;
		case 'd':
			o->dev = optarg;
			break;
		case 'k':
			hook = optarg;
			break;
		case 'f':
			o->floor = 1;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'h':
			usage(argv[0]);
			exit(0);
		default:
			usage(argv[0]);
			return -1;
		}
	}
	if (!o->netns || !o->dev || !hook) {
		fprintf(stderr, "progcost: --netns, --dev and --hook are required\n");
		usage(argv[0]);
		return -1;
	}
	if (strchr(o->netns, '/')) {
		fprintf(stderr, "progcost: --netns '%s': a name under /run/netns, not a path\n",
			o->netns);
		return -1;
	}
	if (!strcmp(hook, "tcx"))
		o->tcx = 1;
	else if (strcmp(hook, "xdp")) {
		fprintf(stderr, "progcost: --hook '%s': want xdp or tcx\n", hook);
		return -1;
	}
	if (optind >= argc) {
		fprintf(stderr, "progcost: no command after --\n");
		usage(argv[0]);
		return -1;
	}
	o->cmd = argv + optind;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct bpf_prog_info info;
	struct snap a, b;
	int home = -1, stats = -1, prog = -1, link = -1, ifindex, status, ret = 1;
	FILE *out = stdout;

	if (parse_opts(argc, argv, &o))
		return 2;
	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0) {
		fprintf(stderr, "progcost: open /proc/self/ns/net: %s\n", strerror(errno));
		return 1;
	}
	if (bench_enter_netns("progcost", o.netns))
		goto done;
	ifindex = (int)if_nametoindex(o.dev);
	if (!ifindex) {
		fprintf(stderr, "progcost: no interface %s in %s: %s\n", o.dev, o.netns,
			strerror(errno));
		goto done;
	}
	prog = o.floor ? attach_floor(&o, ifindex, &link) : attached_prog(&o, ifindex);
	if (prog < 0)
		goto done;
	if (setns(home, CLONE_NEWNET)) {
		fprintf(stderr, "progcost: setns back: %s\n", strerror(errno));
		goto done;
	}
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats < 0) {
		fprintf(stderr, "progcost: BPF_ENABLE_STATS: %s\n", strerror(errno));
		goto done;
	}
	if (snapshot(prog, &a))
		goto done;
	status = run_cmd(o.cmd);
	if (status < 0 || read_info(prog, &info))
		goto done;
	b.runs = info.run_cnt;
	b.ns = info.run_time_ns;
	if (o.out) {
		out = fopen(o.out, "a");
		if (!out) {
			fprintf(stderr, "progcost: %s: %s\n", o.out, strerror(errno));
			out = stdout;
			goto done;
		}
	}
	fprintf(out,
		"{\"prog_id\": %u, \"prog_name\": \"%s\", \"hook\": \"%s\", \"floor\": %s, "
		"\"runs\": %llu, \"ns_per_run\": %.2f, \"cmd_status\": %d}\n",
		info.id, info.name, o.tcx ? "tcx" : "xdp", o.floor ? "true" : "false",
		(unsigned long long)(b.runs - a.runs),
		b.runs > a.runs ? (double)(b.ns - a.ns) / (double)(b.runs - a.runs) : 0.0, status);
	if (status)
		fprintf(stderr, "progcost: %s exited with status %d\n", o.cmd[0], status);
	else if (b.runs == a.runs)
		fprintf(stderr, "progcost: the program did not run while %s ran\n", o.cmd[0]);
	else
		ret = 0;
done:
	if (out != stdout && fclose(out))
		fprintf(stderr, "progcost: writing %s: %s\n", o.out, strerror(errno));
	if (link >= 0)
		close(link);
	if (prog >= 0)
		close(prog);
	if (stats >= 0)
		close(stats);
	close(home);
	return ret;
}
