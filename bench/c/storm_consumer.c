// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/storm C loader and reference consumer for bench/bpf/storm.bpf.c. Attaches storm_enter/storm_exit to
 * syscalls/sys_enter_<name> and sys_exit_<name> for every syscall named with -t, aimed at the storm's tgid.
 *
 *   -e 0  the floor probe: attach, print ready, wait for SIGTERM, detach. Nothing is emitted. With -x, on
 *         the sys_exit_ tracepoints only (the hooks of a sensor that reads the arguments at exit).
 *   -e 1  the reference file monitor: drains vigil_events every -b microseconds (no wakeups needed: the
 *         programs batch them, see -w) and writes one text line per open to -o, as opensnoop does, through
 *         stdio's buffer.
 *
 * On SIGTERM it drains what is left and prints one JSON line: records, the storm's opens, kernel losses,
 * drains, and the CPU it spent after attaching (getrusage).
 *
 * -s turns on the kernel's BPF run-time statistics while attached and reports the mean run time of each
 * program (diagnostics: the statistics themselves add two clock reads per run).
 *
 * usage: storm_consumer [-e emit] [-w wakeup_bytes] [-b batch_usec] [-o out] [-s] [-x] -t name[,name...] OBJ TGID
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#define MAX_LINKS 64
#define STORM_PATH_MAX 256

/* The record of storm.bpf.c. */
struct storm_event {
	struct event_header hdr;
	__s64 ret;
	__u64 flags;
	char path[STORM_PATH_MAX];
};

struct counts {
	unsigned long long records, storm, bad;
	__u32 tgid;
	FILE *out;
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static int on_record(void *ctx, void *data, size_t len)
{
	struct counts *c = ctx;
	const struct storm_event *e = data;

	if (len < sizeof(*e) || e->hdr.opcode != VIGIL_OP_BENCH) {
		c->bad++;
		return 0;
	}
	c->records++;
	if (e->hdr.pid == c->tgid)
		c->storm++;
	/* What opensnoop prints per open: pid, fd or error, flags and path. */
	if (c->out)
		fprintf(c->out, "%u %lld %llu %s\n", e->hdr.pid, (long long)e->ret, (unsigned long long)e->flags, e->path);
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
	fprintf(stderr, "usage: %s [-e emit] [-w wakeup_bytes] [-b batch_usec] [-o out] [-s] [-x] -t name[,name...] OBJ TGID\n", argv0);
	return 2;
}

int main(int argc, char **argv)
{
	static struct counts c;
	struct bpf_object *obj = NULL;
	struct bpf_program *enter, *exit_;
	struct bpf_link *links[MAX_LINKS];
	struct ring_buffer *rb = NULL;
	struct sigaction sa = { .sa_handler = on_term };
	struct rusage r0, r1;
	unsigned long long drains = 0;
	int err, stats_fd, ncpu, opt, nlinks = 0, ret = 1, i, run_stats = 0, stats_on = -1;
	struct bpf_prog_info info[2];
	__u32 info_len;
	__u32 emit = 0, wakeup = 0, exit_only = 0;
	long batch_us = 1000;
	char *names = NULL, *name, *save = NULL, tp[128];
	const char *path, *out = NULL;

	while ((opt = getopt(argc, argv, "e:w:b:o:t:sx")) != -1) {
		switch (opt) {
		case 'e': emit = strtoul(optarg, NULL, 10); break;
		case 'w': wakeup = strtoul(optarg, NULL, 10); break;
		case 'b': batch_us = strtol(optarg, NULL, 10); break;
		case 'o': out = optarg; break;
		case 't': names = strdup(optarg); break;
		case 's': run_stats = 1; break;
		case 'x': exit_only = 1; break;
		default: return usage(argv[0]);
		}
	}
	if (argc - optind != 2 || !names || batch_us <= 0 || (exit_only && emit))
		return usage(argv[0]);
	path = argv[optind];
	c.tgid = strtoul(argv[optind + 1], NULL, 10);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((err = set_rodata(obj, "target_tgid", c.tgid)) || (err = set_rodata(obj, "emit", emit)) ||
	    (err = set_rodata(obj, "wakeup_bytes", wakeup))) {
		fprintf(stderr, "set constants: %s\n", strerror(-err));
		goto out;
	}
	if ((err = bpf_object__load(obj))) {
		fprintf(stderr, "load: %s\n", strerror(-err));
		goto out;
	}
	enter = bpf_object__find_program_by_name(obj, "storm_enter");
	exit_ = bpf_object__find_program_by_name(obj, "storm_exit");
	for (name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		for (i = exit_only; i < 2; i++) {
			if (nlinks == MAX_LINKS) {
				fprintf(stderr, "too many tracepoints\n");
				goto out;
			}
			snprintf(tp, sizeof(tp), "sys_%s_%s", i ? "exit" : "enter", name);
			links[nlinks] = bpf_program__attach_tracepoint(i ? exit_ : enter, "syscalls", tp);
			if (!links[nlinks]) {
				fprintf(stderr, "attach syscalls/%s: %s\n", tp, strerror(errno));
				goto out;
			}
			nlinks++;
		}
	}
	if (emit) {
		rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "vigil_events")), on_record, &c, NULL);
		if (!rb) {
			fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
			goto out;
		}
		if (out && !(c.out = fopen(out, "w"))) {
			fprintf(stderr, "open %s: %s\n", out, strerror(errno));
			goto out;
		}
	}
	stats_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "vigil_stats"));
	ncpu = libbpf_num_possible_cpus();

	if (run_stats && (stats_on = bpf_enable_stats(BPF_STATS_RUN_TIME)) < 0) {
		fprintf(stderr, "bpf_enable_stats: %s\n", strerror(-stats_on));
		goto out;
	}
	getrusage(RUSAGE_SELF, &r0);
	printf("{\"ready\":true,\"pid\":%d,\"links\":%d}\n", getpid(), nlinks);
	fflush(stdout);

	while (!stopping) {
		struct timespec delay = { .tv_sec = batch_us / 1000000, .tv_nsec = (batch_us % 1000000) * 1000 };

		/* The floor probe has nothing to read; the reference drains on its timer, never waiting for a wakeup. */
		nanosleep(&delay, NULL);
		if (!rb)
			continue;
		err = ring_buffer__consume(rb);
		drains++;
		if (err < 0) {
			fprintf(stderr, "ring_buffer__consume: %s\n", strerror(-err));
			goto out;
		}
	}
	/* The storm has exited: every record it caused is committed. Take what is left. */
	if (rb && (err = ring_buffer__consume(rb)) < 0) {
		fprintf(stderr, "ring_buffer__consume: %s\n", strerror(-err));
		goto out;
	}
	if (c.out && fflush(c.out)) {
		fprintf(stderr, "write %s: %s\n", out, strerror(errno));
		goto out;
	}
	getrusage(RUSAGE_SELF, &r1);
	memset(info, 0, sizeof(info));
	for (i = 0; i < 2; i++) {
		info_len = sizeof(info[i]);
		bpf_obj_get_info_by_fd(bpf_program__fd(i ? exit_ : enter), &info[i], &info_len);
	}
	printf("{\"enter_runs\":%llu,\"enter_ns\":%.1f,\"exit_runs\":%llu,\"exit_ns\":%.1f,",
	       (unsigned long long)info[0].run_cnt, info[0].run_cnt ? (double)info[0].run_time_ns / info[0].run_cnt : 0,
	       (unsigned long long)info[1].run_cnt, info[1].run_cnt ? (double)info[1].run_time_ns / info[1].run_cnt : 0);
	printf("\"records\":%llu,\"storm\":%llu,\"bad\":%llu,\"drains\":%llu,\"reserve_failed\":%llu,\"emitted\":%llu,"
	       "\"utime_s\":%.6f,\"stime_s\":%.6f}\n",
	       c.records, c.storm, c.bad, drains, stat_sum(stats_fd, VIGIL_STAT_RESERVE_FAILED, ncpu),
	       stat_sum(stats_fd, VIGIL_STAT_EMITTED, ncpu), tv_s(r1.ru_utime) - tv_s(r0.ru_utime),
	       tv_s(r1.ru_stime) - tv_s(r0.ru_stime));
	fflush(stdout);
	ret = 0;
out:
	/* Links first, then the reader, then the object. */
	for (i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	ring_buffer__free(rb);
	if (c.out)
		fclose(c.out);
	bpf_object__close(obj);
	free(names);
	if (stats_on >= 0)
		close(stats_on);
	return ret;
}
