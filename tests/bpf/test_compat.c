// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The two builds of the datapath (shift, and shift_compat for kernels without
 * bpf_cast_to_kern_ctx()) are opened through one skeleton type: the loader
 * swaps the ELF bytes under shift's skeleton. That holds only while both
 * objects have the same programs and maps, in the same order, with the same
 * sizes, and the same variables at the same offsets of .rodata/.bss/.data
 * (the skeleton's rodata pointer is read as shift's struct). Checked here on
 * the objects alone, nothing loaded; which build this kernel takes is noted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "datapath/loader.h"
#include "test.h"

static struct bpf_object *open_build(bool compat)
{
	/* One name for both: internal maps are named after the object. */
	LIBBPF_OPTS(bpf_object_open_opts, o, .object_name = "shift");
	const void *elf;
	size_t sz;

	elf = shift_object_bytes(compat, &sz);
	return bpf_object__open_mem(elf, sz, &o);
}

/* The variables of datasec `sec` as "name@offset:size;..." for comparison. */
static void datasec_vars(const struct btf *btf, const char *sec, char *buf, size_t len)
{
	const struct btf_var_secinfo *vs;
	const struct btf_type *t;
	size_t used = 0;
	int id, i;

	buf[0] = '\0';
	id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
	if (id <= 0)
		return;
	t = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(t);
	for (i = 0; i < btf_vlen(t) && used < len; i++, vs++) {
		const struct btf_type *v = btf__type_by_id(btf, vs->type);
		int n = snprintf(buf + used, len - used, "%s@%u:%u;",
				 btf__name_by_offset(btf, v->name_off), vs->offset, vs->size);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static void compare_maps(struct tctx *t, struct bpf_object *a, struct bpf_object *b)
{
	struct bpf_map *ma = NULL, *mb = NULL;
	char name[64];

	for (;;) {
		ma = bpf_object__next_map(a, ma);
		mb = bpf_object__next_map(b, mb);
		if (!ma || !mb)
			break;
		snprintf(name, sizeof(name), "map %s", bpf_map__name(ma));
		if (!ASSERT_TRUE(t, strcmp(bpf_map__name(ma), bpf_map__name(mb)) == 0, name))
			return;
		ASSERT_EQ(t, bpf_map__type(mb), bpf_map__type(ma), name);
		ASSERT_EQ(t, bpf_map__key_size(mb), bpf_map__key_size(ma), name);
		ASSERT_EQ(t, bpf_map__value_size(mb), bpf_map__value_size(ma), name);
		ASSERT_EQ(t, bpf_map__max_entries(mb), bpf_map__max_entries(ma), name);
	}
	ASSERT_TRUE(t, !ma && !mb, "both objects have as many maps");
}

static void compare_progs(struct tctx *t, struct bpf_object *a, struct bpf_object *b)
{
	struct bpf_program *pa = NULL, *pb = NULL;
	char name[64];

	for (;;) {
		pa = bpf_object__next_program(a, pa);
		pb = bpf_object__next_program(b, pb);
		if (!pa || !pb)
			break;
		snprintf(name, sizeof(name), "program %s", bpf_program__name(pa));
		if (!ASSERT_TRUE(t, strcmp(bpf_program__name(pa), bpf_program__name(pb)) == 0,
				 name))
			return;
		ASSERT_EQ(t, bpf_program__type(pb), bpf_program__type(pa), name);
	}
	ASSERT_TRUE(t, !pa && !pb, "both objects have as many programs");
}

TEST(compat)
{
	static const char *const secs[] = { ".rodata", ".bss", ".data" };
	struct bpf_object *a = NULL, *b = NULL;
	char va[4096], vb[4096];
	bool any = false;
	size_t i;

	test_note(t, "this kernel takes the %s build",
		  shift_kern_ctx_supported() ? "shift" : "shift_compat");
	a = open_build(false);
	b = open_build(true);
	if (!ASSERT_TRUE(t, a && b, "both objects open"))
		goto out;
	test_sub(t, "compat: the same maps");
	compare_maps(t, a, b);
	test_sub(t, "compat: the same programs");
	compare_progs(t, a, b);
	test_sub(t, "compat: the same variables at the same offsets");
	for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		datasec_vars(bpf_object__btf(a), secs[i], va, sizeof(va));
		datasec_vars(bpf_object__btf(b), secs[i], vb, sizeof(vb));
		if (!ASSERT_TRUE(t, strcmp(va, vb) == 0, secs[i]))
			fprintf(stderr, "  shift:        %s\n  shift_compat: %s\n", va, vb);
		any = any || va[0];
	}
	ASSERT_TRUE(t, any, "the objects have variables to compare");
out:
	bpf_object__close(a);
	bpf_object__close(b);
}
