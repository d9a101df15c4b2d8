// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A program the verifier must reject: it reads the Ethernet header without
 * checking it against data_end. bpf_test loads it to prove that a failed load
 * prints the verifier log (with this file's source lines: built with -g).
 *
 * Only for clang -target bpf; the guard keeps a host compiler that globs
 * every C file under tests/bpf/ from seeing BPF-only code.
 */
#ifdef __bpf__
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int reject_unchecked_read(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	/* Deliberately no `if ((void *)(eth + 1) > data_end)` here. */
	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
#endif
