// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * synflood: spoofed TCP SYNs (or ACKs) to a VIP, for the shift namespace rig (tests only).
 *
 *   synflood --ifname IF --dst-mac MAC --dst IP --dport PORT --src-prefix A.B.C.D/LEN
 *            --count N [--pps R] [--seconds S] [--seed X] [--batch B] [--ack | --pair]
 *
 * Sends N Ethernet/IPv4/TCP SYN frames (with --ack: bare ACKs of no connection, random
 * acknowledgment numbers; with --pair: each SYN followed by the first ACK a blind
 * spoofer sends, its sequence number + 1 and a guessed acknowledgment number) out of IF with an AF_PACKET socket (no kernel
 * routing, no qdisc): a random source address inside the prefix, a random source
 * port (1024..65535), a random sequence number, full IP and TCP checksums. Bounded
 * twice: at most N frames and at most S seconds (default 60). With --pps, paced to
 * about R frames per second. Prints one JSON line: {"sent", "errors", "elapsed_s",
 * "pps"}. Needs CAP_NET_RAW; run it only inside a namespace you own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_LEN (14 + 20 + 20)
#define MAX_BATCH 256

static uint64_t rng_state;

static uint64_t rnd(void) /* splitmix64 */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int m[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -1;
	for (i = 0; i < 6; i++) {
		if (m[i] > 255)
			return -1;
		mac[i] = (uint8_t)m[i];
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: synflood --ifname IF --dst-mac MAC --dst IPV4 --dport PORT\n"
		   "                --src-prefix A.B.C.D/LEN --count N [--pps R] [--seconds S]\n"
		   "                [--seed X] [--batch B] [--ack | --pair]\n");
}

static int fail(const char *what)
{
	fprintf(stderr, "synflood: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ifname", required_argument, NULL, 'i' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "dst", required_argument, NULL, 'd' },
		{ "dport", required_argument, NULL, 'p' },
		{ "src-prefix", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "pps", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 'S' },
		{ "batch", required_argument, NULL, 'b' },
		{ "ack", no_argument, NULL, 'a' },
		{ "pair", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *ifname = NULL;
	uint8_t dmac[6], smac[6];
	int have_dmac = 0, ack = 0, pair = 0, c, fd, ifindex;
	struct in_addr dst = { 0 }, pfx = { 0 };
	unsigned long dport = 0, plen = 33, batch = 64;
	unsigned long long count = 0, pps = 0, sent = 0, errors = 0;
	double seconds = 60, t0, el;
	uint32_t host_mask;
	static uint8_t frames[MAX_BATCH][FRAME_LEN];
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	struct sockaddr_ll sll;
	struct ifreq ifr;
	char *slash;

	rng_state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			ifname = optarg;
			break;
		case 'm':
			if (parse_mac(optarg, dmac)) {
				fprintf(stderr, "synflood: bad MAC '%s'\n", optarg);
				return 2;
			}
			have_dmac = 1;
			break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &dst) != 1) {
				fprintf(stderr, "synflood: bad IPv4 address '%s'\n", optarg);
				return 2;
			}
			break;
		case 'p':
			dport = strtoul(optarg, NULL, 10);
			break;
		case 's':
			slash = strchr(optarg, '/');
			if (!slash)
				break;
			*slash = '\0';
			plen = strtoul(slash + 1, NULL, 10);
			if (inet_pton(AF_INET, optarg, &pfx) != 1)
				plen = 33;
			break;
		case 'n':
			count = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			pps = strtoull(optarg, NULL, 10);
			break;
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		case 'S':
			rng_state = strtoull(optarg, NULL, 0);
			break;
		case 'b':
			batch = strtoul(optarg, NULL, 10);
			break;
		case 'a':
			ack = 1;
			break;
		case 'P':
			pair = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!ifname || !have_dmac || !dst.s_addr || !dport || dport > 65535 || plen > 32 ||
	    plen < 8 || !count || seconds <= 0 || seconds > 3600 || !batch || batch > MAX_BATCH ||
	    (ack && pair)) {
		usage(stderr);
		return 2;
	}
	host_mask = plen == 32 ? 0 : 0xffffffffu >> plen;

	fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: send only, receive nothing */
	if (fd < 0)
		return fail("socket(AF_PACKET)");
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		return fail(ifname);
	memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
	ifindex = (int)if_nametoindex(ifname);
	if (!ifindex)
		return fail(ifname);
	c = 1;
	/* Straight to the driver: a qdisc would only add drops and cost. */
	(void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &c, sizeof(c));

	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = ifindex;
	sll.sll_protocol = htons(ETH_P_IP);
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, dmac, 6);
	memset(msgs, 0, sizeof(msgs));
	for (unsigned long i = 0; i < MAX_BATCH; i++) {
		iov[i].iov_base = frames[i];
		iov[i].iov_len = FRAME_LEN;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &sll;
		msgs[i].msg_hdr.msg_namelen = sizeof(sll);
	}

	t0 = now_s();
	while (sent < count) {
		unsigned long n = batch, i;
		int r;

		el = now_s() - t0;
		if (el >= seconds)
			break;
		if (pps && sent > (unsigned long long)(el * (double)pps)) {
			struct timespec ts = { 0, 200000 }; /* 0.2 ms */

			nanosleep(&ts, NULL);
			continue;
		}
		if (count - sent < n)
			n = (unsigned long)(count - sent);
		/* A pair's two frames go in one batch. */
		if (pair && n > 1)
			n &= ~1ul;
		for (i = 0; i < n; i++) {
			uint8_t *f = frames[i];
			struct iphdr *ip = (struct iphdr *)(f + 14);
			struct tcphdr *th = (struct tcphdr *)(f + 34);
			uint64_t r64 = rnd();
			uint32_t saddr = (ntohl(pfx.s_addr) & ~host_mask) |
					 ((uint32_t)r64 & host_mask);
			uint32_t sum;
			struct {
				uint32_t s, d;
				uint8_t z, proto;
				uint16_t len;
			} ph;

			if (pair && (i & 1)) {
				/* The SYN's tuple again, ACK flag, seq + 1. */
				memcpy(f, frames[i - 1], FRAME_LEN);
				ip->id = htons((uint16_t)(r64 >> 48));
				ip->check = 0;
				ip->check = htons(csum_fold(csum_add(0, ip, 20)));
				th->syn = 0;
				th->ack = 1;
				th->seq = htonl(ntohl(th->seq) + 1);
				th->ack_seq = htonl((uint32_t)r64);
				th->check = 0;
				ph.s = ip->saddr, ph.d = ip->daddr, ph.z = 0,
				ph.proto = IPPROTO_TCP;
				ph.len = htons(20);
				sum = csum_add(0, &ph, sizeof(ph));
				sum = csum_add(sum, th, 20);
				th->check = htons(csum_fold(sum));
				continue;
			}
			memcpy(f, dmac, 6);
			memcpy(f + 6, smac, 6);
			f[12] = 0x08, f[13] = 0x00;
			memset(ip, 0, 20);
			ip->version = 4;
			ip->ihl = 5;
			ip->tot_len = htons(40);
			ip->id = htons((uint16_t)(r64 >> 48));
			ip->frag_off = htons(IP_DF);
			ip->ttl = 64;
			ip->protocol = IPPROTO_TCP;
			ip->saddr = htonl(saddr);
			ip->daddr = dst.s_addr;
			ip->check = htons(csum_fold(csum_add(0, ip, 20)));
			memset(th, 0, 20);
			th->source = htons((uint16_t)(1024 + (r64 >> 32) % 64512));
			th->dest = htons((uint16_t)dport);
			th->seq = htonl((uint32_t)rnd());
			th->doff = 5;
			if (ack) {
				th->ack = 1;
				th->ack_seq = htonl((uint32_t)rnd());
			} else {
				th->syn = 1;
			}
			th->window = htons(64240);
			ph.s = ip->saddr, ph.d = ip->daddr, ph.z = 0, ph.proto = IPPROTO_TCP;
			ph.len = htons(20);
			sum = csum_add(0, &ph, sizeof(ph));
			sum = csum_add(sum, th, 20);
			th->check = htons(csum_fold(sum));
		}
		r = sendmmsg(fd, msgs, (unsigned int)n, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
				errors++;
				continue;
			}
			return fail("sendmmsg");
		}
		sent += (unsigned long long)r;
	}
	el = now_s() - t0;
	printf("{\"sent\": %llu, \"errors\": %llu, \"elapsed_s\": %.3f, \"pps\": %.0f}\n", sent,
	       errors, el, el > 0 ? (double)sent / el : 0.0);
	close(fd);
	return 0;
}
