/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * String matching the sensors share: comms as 16-byte keys, masked prefixes, and the in-kernel kill rules'
 * verdict (the syscall sensor checks its rules on file events, the process sensor on execs; the strings each
 * compares are its own, the rest is here). Include after vigil.h.
 */
#ifndef VIGIL_MATCH_H
#define VIGIL_MATCH_H

/* Keeps the bytes of a little-endian word up to its first NUL and zeroes the rest; *nul says whether there was one. */
static __always_inline __u64 comm_word(__u64 w, int *nul)
{
	/* The lowest 0x80 bit of z marks the first zero byte (higher ones may be false positives). */
	__u64 z = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;

	if (!z)
		return w;
	*nul = 1;
	return w & (((z & -z) >> 7) - 1);
}

/*
 * A comm's two words (as the task holds them: little-endian, anything after the NUL) as a key: NUL-padded,
 * byte 15 always the NUL, as bpf_get_current_comm would cut it, however long the kernel's comm.
 */
static __always_inline void comm_key(__u64 key[2], __u64 w0, __u64 w1)
{
	int nul = 0;

	key[0] = comm_word(w0, &nul);
	key[1] = nul ? 0 : comm_word(w1, &nul) & 0x00ffffffffffffffULL;
}

/* The comm of a task's process, not of the task: its thread group leader's (process.comm in user space), as a key. */
static __always_inline void leader_comm_of(struct task_struct *t, __u64 key[2])
{
	struct task_struct *leader = BPF_CORE_READ(t, group_leader);
	__u64 w[2] = {};

	if (leader)
		bpf_core_read(w, VIGIL_COMM_LEN, &leader->comm);
	comm_key(key, w[0], w[1]);
}

/*
 * Does `prefix` start the string s? Word by word under `mask` (0xff for each byte of the prefix, and of the
 * string's NUL for a whole-string match), up to its first all-zero word: the kernel does no length math.
 */
static __always_inline int masked_prefix(const __u8 *s, const char *prefix, const __u8 *mask)
{
	__u64 m;

	for (int w = 0; w < VIGIL_SYS_PREFIX_LEN / 8; w++) {
		m = *(__u64 *)(mask + w * 8);
		if (!m)
			break;
		if ((*(__u64 *)(s + w * 8) ^ *(__u64 *)(prefix + w * 8)) & m)
			return 0;
	}
	return 1;
}

/*
 * A sensor's kill rules, the strings they compare with (two sets each, the one in force at its struct
 * vigil_kill_set's base) and the cgroups where its rules about containers hold (struct vigil_kill_scope).
 * Both sensors declare theirs with this, so that the maps user space writes alike (src/rules/kernel-maps.ts,
 * kill-scopes.ts) are alike.
 */
#define VIGIL_KILL_MAPS(rules, values, scopes)                          \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_ARRAY);                       \
		__uint(max_entries, 2 * VIGIL_KILL_RULES_MAX);          \
		__type(key, __u32);                                     \
		__type(value, struct syscall_kill_rule);                \
	} rules SEC(".maps");                                           \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_ARRAY);                       \
		__uint(max_entries, 2 * VIGIL_KILL_VALUES_MAX);         \
		__type(key, __u32);                                     \
		__type(value, struct syscall_kill_value);               \
	} values SEC(".maps");                                          \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_HASH);                        \
		__uint(max_entries, VIGIL_KILL_SCOPES_MAX);             \
		__type(key, __u64);                                     \
		__type(value, struct vigil_kill_scope);                 \
	} scopes SEC(".maps")

_Static_assert(VIGIL_KILL_TERMS_MAX <= 8, "a rule's matched terms fit a byte");

/* A sensor's pass over the values of its set in force (bpf_loop): where they are, and per rule which terms hold. */
struct kill_scan {
	__u32 base;       /* the first value of the set in force */
	__u32 count;      /* values in the set */
	__u8 matched[VIGIL_KILL_RULES_MAX]; /* per rule, bit t: some value of term t matched */
};

static __always_inline void kill_scan_start(struct kill_scan *s, const struct vigil_kill_set *ks)
{
	s->base = ks->base ? VIGIL_KILL_VALUES_MAX : 0;
	s->count = ks->value_count;
}

/* Value i of the scan's set in a sensor's values map, unless it cannot change anything (its term holds already). */
static __always_inline struct syscall_kill_value *kill_value_at(void *values, const struct kill_scan *s, __u32 i)
{
	__u32 key = s->base + i;
	struct syscall_kill_value *v = bpf_map_lookup_elem(values, &key);

	if (!v || v->rule >= VIGIL_KILL_RULES_MAX || v->term >= VIGIL_KILL_TERMS_MAX)
		return 0;
	if (s->matched[v->rule & (VIGIL_KILL_RULES_MAX - 1)] & (1 << v->term))
		return 0;
	return v;
}

/* Value v matched its string: its term holds. */
static __always_inline void kill_value_hit(struct kill_scan *s, const struct syscall_kill_value *v)
{
	s->matched[v->rule & (VIGIL_KILL_RULES_MAX - 1)] |= 1 << v->term;
}

/* Rule i of the set in force in a sensor's rules map. */
static __always_inline struct syscall_kill_rule *kill_rule_at(void *rules, const struct vigil_kill_set *ks, __u32 i)
{
	__u32 key = (ks->base ? VIGIL_KILL_RULES_MAX : 0) + i;

	return bpf_map_lookup_elem(rules, &key);
}

/*
 * Does rule i of the set in force hold in the current task's cgroup, as far as its container part goes?
 * Always, for a rule without one; else when the cgroup's scope entry has its bit. *bits caches the entry's
 * half in force across a check's rules (-1: not looked up yet): one hash lookup per check at most.
 */
static __always_inline int kill_in_scope(void *scopes, const struct vigil_kill_set *ks, const struct syscall_kill_rule *r, __u32 i, __s64 *bits)
{
	struct vigil_kill_scope *s;
	__u64 cg;

	if (!r->container)
		return 1;
	if (*bits < 0) {
		cg = vigil_cgroup_id();
		s = bpf_map_lookup_elem(scopes, &cg);
		*bits = s ? s->rules[ks->base ? 1 : 0] : 0;
	}
	return (*bits >> (i & (VIGIL_KILL_RULES_MAX - 1))) & 1;
}

/* Does a kill value's comm (two words, its mask ending within them) match the comm key c? */
static __always_inline int kill_comm_matches(const __u64 c[2], const struct syscall_kill_value *v)
{
	/* Two words, unrolled: the verifier could not bound masked_prefix's loads on a 16-byte stack buffer. */
	for (int w = 0; w < 2; w++)
		if ((c[w] ^ *(__u64 *)(v->prefix + w * 8)) & *(__u64 *)(v->mask + w * 8))
			return 0;
	return 1;
}

/* Do rule r's terms hold, given per term whether some value matched (bit t of `matched`)? */
static __always_inline int kill_terms_hold(const struct syscall_kill_rule *r, __u8 matched)
{
	__u32 need = r->terms >= 8 ? 0xff : (1U << r->terms) - 1;

	return ((matched ^ r->negate) & need) == need;
}

/*
 * What rule r, which matched the current process, may do to it: VIGIL_KILL_REFUSED for a protected process
 * (pid 1, or in the set's protect list: the agent, its ancestors), VIGIL_KILL_DRY_RUN when enforcement is
 * off, else VIGIL_KILL_SENT (act: signal, or deny).
 */
static __always_inline __u32 rule_verdict(const struct vigil_kill_set *ks, const struct syscall_kill_rule *r)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid == 1)
		return VIGIL_KILL_REFUSED;
	for (int j = 0; j < VIGIL_KILL_PROTECT_MAX; j++)
		if (j < ks->protect_count && ks->protect[j] == tgid)
			return VIGIL_KILL_REFUSED;
	return r->dry_run ? VIGIL_KILL_DRY_RUN : VIGIL_KILL_SENT;
}

/*
 * Rule r matched the current process: signals it, unless it is protected (pid 1, or in the set's protect
 * list: the agent, its ancestors) or the rule is a dry run. Returns the enum vigil_kill_result. The signal is
 * pending when the hook's syscall returns to user space: the process runs no more of its own code.
 */
static __always_inline __u32 kill_verdict(const struct vigil_kill_set *ks, const struct syscall_kill_rule *r)
{
	__u32 v = rule_verdict(ks, r);

	if (v != VIGIL_KILL_SENT)
		return v;
	return bpf_send_signal(r->signal) ? VIGIL_KILL_FAILED : VIGIL_KILL_SENT;
}

/* What a sensor's kill check returns: 0 (no rule matched), or the rule's id | its signal << 16 | the result << 24. */
static __always_inline __u64 kill_report(const struct syscall_kill_rule *r, __u32 result)
{
	return (__u64)(r->id & 0xffff) | ((__u64)(r->signal & 0xff) << 16) | ((__u64)(result & 0xff) << 24);
}

#endif
