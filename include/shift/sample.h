/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Return-path samples carried from the datapath to shiftd over the ring buffer.
 * One sample per observation (a handshake answered, a response seen, an error);
 * the agent's windows and triggers consume them.
 */
#ifndef SHIFT_SAMPLE_H
#define SHIFT_SAMPLE_H

#include <linux/types.h>

enum shift_sample_kind {
	SHIFT_SAMPLE_CONNECT = 1, /* value_ns = client SYN -> backend SYN-ACK */
	/* value_ns = request -> first response byte (HTTP/1.x, HTTP/2) or first
	 * answering record (TLS), 0 if not timed; status set when it was read */
	SHIFT_SAMPLE_RESPONSE = 2,
	SHIFT_SAMPLE_ERROR = 3, /* err set; status set for HTTP 5xx */
	/* analysis = auto: a connection that carried nothing we read (not HTTP/1.x,
	 * TLS or HTTP/2): one request; value_ns = connect latency, 0 if unknown. */
	SHIFT_SAMPLE_TCP = 4,
};

struct shift_sample {
	__u64 ts_ns; /* bpf_ktime_get_ns() when observed: CLOCK_MONOTONIC */
	__u64 value_ns; /* latency, 0 for errors without one */
	__u32 backend_id;
	__u16 service_id;
	__u8 color; /* enum shift_color */
	__u8 kind; /* enum shift_sample_kind */
	__u16 status; /* HTTP status code, 0 if none */
	__u8 err; /* enum shift_err */
	__u8 pad[1];
	__u32 flow_hash; /* the flow's hash: pairs blue's answer with a shadow copy */
};

/* Ring buffer size; a power of two multiple of the page size. */
#define SHIFT_RINGBUF_BYTES (1u << 22)
/*
 * Error samples have a ring of their own, drained first: a flood of ordinary
 * samples can fill the big ring, but never crowd out the error that should
 * trigger a rollback.
 */
#define SHIFT_ERRBUF_BYTES (1u << 16)
/* Ordinary samples wake the agent at most once per this many samples. */
#define SHIFT_WAKEUP_BATCH 64

#endif /* SHIFT_SAMPLE_H */
