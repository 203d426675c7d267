// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/ringbuf C reference consumer: loads the bench object with libbpf, aims it at the generator, and
 * consumes vigil_events the way libbpf intends (ring_buffer__new + ring_buffer__poll), doing per record the
 * same work as vigil's TypeScript consumer. On SIGTERM it drains what is left and prints its counts and the
 * CPU it spent after attaching (getrusage) as one JSON line.
 *
 * With -b USEC it uses RingBufReader's wakeup policy instead (sleep in epoll until woken, then drain on a
 * USEC timer until a drain finds nothing), so that the cost of decoding can be compared without the cost of
 * the wakeup policy mixed in.
 *
 * usage: ringbuf_consumer [-r records_per_call] [-e emit] [-b batch_usec] OBJ TGID
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "../../bpf/include/events.h"

#define MAX_CPUS 1024

struct counts {
	unsigned long long received, gaps, bad;
	unsigned long long last_ns; /* CLOCK_MONOTONIC when the latest 1024th record arrived */
	unsigned long long next_seq[MAX_CPUS];
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

/* The per-record work, identical to the TypeScript consumer's: check the opcode, then the per-CPU sequence. */
static int on_record(void *ctx, void *data, size_t len)
{
	struct counts *c = ctx;
	const struct bench_event *e = data;
	__u32 cpu;

	if (len < sizeof(*e) || e->hdr.opcode != VIGIL_OP_BENCH) {
		c->bad++;
		return 0;
	}
	cpu = e->cpu & (MAX_CPUS - 1);
	if (e->seq != c->next_seq[cpu])
		c->gaps += e->seq - c->next_seq[cpu];
	c->next_seq[cpu] = e->seq + 1;
	/* A clock read per record would be a cost the other consumer does not pay: stamp every 1024th. */
	if ((++c->received & 1023) == 0)
		c->last_ns = now_ns();
	return 0;
}

/* Writes a `const volatile` before load, found by name in the BTF of .rodata. */
static int set_rodata(struct bpf_object *obj, const char *name, __u32 value)
{
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_type *sec;
	const struct btf_var_secinfo *vs;
	struct bpf_map *map;
	size_t size;
	char *data;
	int id, i;

	map = bpf_object__find_map_by_name(obj, ".rodata");
	id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
	if (!map || id < 0)
		return -ENOENT;
	/* Writable until load: this is the copy libbpf turns into the frozen .rodata map. */
	data = (char *)bpf_map__initial_value(map, &size);
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name) != 0)
			continue;
		if (vs->size != sizeof(value) || vs->offset + vs->size > size)
			return -EINVAL;
		memcpy(data + vs->offset, &value, sizeof(value));
		return 0;
	}
	return -ENOENT;
}

/* Sum over CPUs of vigil_stats[idx]. */
static unsigned long long stat_sum(int fd, __u32 idx, int ncpu)
{
	unsigned long long vals[MAX_CPUS], sum = 0;
	int i;

	if (ncpu > MAX_CPUS || bpf_map_lookup_elem(fd, &idx, vals))
		return 0;
	for (i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-r records_per_call] [-e emit] [-b batch_usec] OBJ TGID\n", argv0);
	return 2;
}

int main(int argc, char **argv)
{
	static struct counts c;
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct bpf_link *link = NULL;
	struct ring_buffer *rb = NULL;
	struct sigaction sa = { .sa_handler = on_term };
	struct rusage r0, r1;
	unsigned long long polls = 0, drains = 0;
	int err, stats_fd, ncpu, opt, ret = 1;
	__u32 tgid, rpc = 1, emit = 1;
	long batch_us = 0;
	const char *path;

	while ((opt = getopt(argc, argv, "r:e:b:")) != -1) {
		switch (opt) {
		case 'r': rpc = strtoul(optarg, NULL, 10); break;
		case 'e': emit = strtoul(optarg, NULL, 10); break;
		case 'b': batch_us = strtol(optarg, NULL, 10); break;
		default: return usage(argv[0]);
		}
	}
	if (argc - optind != 2)
		return usage(argv[0]);
	path = argv[optind];
	tgid = strtoul(argv[optind + 1], NULL, 10);
	/* No SA_RESTART: SIGTERM must interrupt the epoll_wait inside ring_buffer__poll. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	/* Open, edit the constants, load, attach: the phases every vigil loader runs too. */
	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((err = set_rodata(obj, "target_tgid", tgid)) || (err = set_rodata(obj, "records_per_call", rpc)) ||
	    (err = set_rodata(obj, "emit", emit))) {
		fprintf(stderr, "set constants: %s\n", strerror(-err));
		goto out;
	}
	if ((err = bpf_object__load(obj))) {
		fprintf(stderr, "load: %s\n", strerror(-err));
		goto out;
	}
	prog = bpf_object__find_program_by_name(obj, "bench_sys_enter");
	link = prog ? bpf_program__attach(prog) : NULL;
	if (!link) {
		fprintf(stderr, "attach bench_sys_enter: %s\n", strerror(errno));
		goto out;
	}
	rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "vigil_events")), on_record, &c, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
		goto out;
	}
	stats_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "vigil_stats"));
	ncpu = libbpf_num_possible_cpus();

	/* CPU is counted from here: loading and verifying the object is not consumption. */
	getrusage(RUSAGE_SELF, &r0);
	printf("{\"ready\":true,\"pid\":%d}\n", getpid());
	fflush(stdout);

	while (!stopping && !batch_us) {
		/* libbpf's loop: sleep in epoll until the kernel wakes us, then consume everything pending. The
		 * kernel wakes a consumer that has caught up on the next record, so a fast consumer is woken often. */
		err = ring_buffer__poll(rb, -1);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "ring_buffer__poll: %s\n", strerror(-err));
			goto out;
		}
		if (err > 0) {
			polls++; /* wakeups that found records; each is one drain */
			drains++;
		}
	}
	while (!stopping && batch_us) {
		/* RingBufReader's policy: one wakeup, then drain on a timer while records keep coming. While we
		 * are behind, the kernel wakes nobody, so producers pay no wakeups. */
		struct timespec delay = { .tv_sec = batch_us / 1000000, .tv_nsec = (batch_us % 1000000) * 1000 };
		struct epoll_event ev;

		err = epoll_wait(ring_buffer__epoll_fd(rb), &ev, 1, -1);
		if (err < 0 && errno != EINTR) {
			fprintf(stderr, "epoll_wait: %s\n", strerror(errno));
			goto out;
		}
		if (err <= 0)
			continue;
		polls++;
		do {
			nanosleep(&delay, NULL);
			err = ring_buffer__consume(rb);
			drains++;
		} while (err > 0 && !stopping);
		if (err < 0) {
			fprintf(stderr, "ring_buffer__consume: %s\n", strerror(-err));
			goto out;
		}
	}
	/* The generator has exited: every record it caused is committed. Take what is left. */
	err = ring_buffer__consume(rb);
	if (err < 0) {
		fprintf(stderr, "ring_buffer__consume: %s\n", strerror(-err));
		goto out;
	}
	getrusage(RUSAGE_SELF, &r1);

	printf("{\"received\":%llu,\"gaps\":%llu,\"bad\":%llu,\"last_ns\":%llu,\"polls\":%llu,\"drains\":%llu,"
	       "\"reserve_failed\":%llu,\"emitted\":%llu,\"ring_bytes\":%u,\"utime_s\":%.6f,\"stime_s\":%.6f}\n",
	       c.received, c.gaps, c.bad, c.last_ns, polls, drains,
	       stat_sum(stats_fd, VIGIL_STAT_RESERVE_FAILED, ncpu), stat_sum(stats_fd, VIGIL_STAT_EMITTED, ncpu),
	       bpf_map__max_entries(bpf_object__find_map_by_name(obj, "vigil_events")),
	       tv_s(r1.ru_utime) - tv_s(r0.ru_utime), tv_s(r1.ru_stime) - tv_s(r0.ru_stime));
	fflush(stdout);
	ret = 0;
out:
	/* Links first, then the reader, then the object. */
	bpf_link__destroy(link);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return ret;
}
