// JSON lines of file and network events written in C, a batch at a time (src/pipeline/native-lines.ts drives it).
//
// Why: serialising a file event's line in JavaScript (the time, the cached process and container parts,
// the record's own members) cost about 330 ns of the ~1 µs vigil spent per event in bench/pipeline's replay,
// a third of the whole pipeline; the same bytes cost a C loop a fraction of that. JavaScript still decides
// everything that needs the agent's state (which process, which container, which type) and captures it per
// line when the record leaves the reorder window; this only copies and formats, per batch, so that one FFI
// call serves hundreds of lines.
//
// Exactness: every line is byte for byte what the JavaScript writer (enrich.ts writeLine with
// record-bytes.ts fileMembersBytes) writes for the same record and parts. Anything this code does not write
// exactly as that writer does (a path with a byte to escape or past ASCII, a number JSON writes in exponent
// form, openat2's resolve flags, a kill) stops the batch at that line (VIGIL_LINES_JS) and the JavaScript
// writer writes it; names (syscall heads, errnos, flag and mode names) come from a table the JavaScript side
// fills with its own naming functions' bytes, on demand (VIGIL_LINES_NAME). test/unit/pipeline-held.test.ts
// compares both writers on generated and recorded records.
//
// The record layout is the kernel's own (bpf/include/events.h), not a copy of it.
#include <linux/types.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "events.h"

/* What a call stopped at (res[1]). */
enum {
	VIGIL_LINES_DONE = 0, /* every entry written */
	VIGIL_LINES_ROOM = 1, /* the output is full: the entry at res[0]'s line is not written */
	VIGIL_LINES_JS = 2,   /* the entry is for the JavaScript writer */
	VIGIL_LINES_NAME = 3, /* a name is not in the table yet: res[2], res[3] are its key */
};

/* Entry kinds (ints[i * INTS + 6]). */
enum { ENTRY_FILE = 1, ENTRY_RAW = 2, ENTRY_NET = 3 };

/* Per entry: doubles (record address, wall time in ms, ktime in ns) and ints. */
#define DOUBLES 3
#define INTS 8

/* Name kinds (the top byte of a key's hi word); see names.ts' nameBytes. */
enum {
	NAME_FILE_HEAD = 1,
	NAME_ERRNO = 2,
	NAME_FILE_FLAGS = 3,
	NAME_MODE = 4,
	NAME_NET_HEAD = 5,
	NAME_SOCKET = 6,
	NAME_ACCEPT_FLAGS = 7,
	NAME_TCP_STATE = 8,
};
#define NAME_SLOTS 8192 /* a power of two; 4 ints each: hi, lo, offset, length (hi 0: empty) */

static inline uint32_t name_slot(uint32_t hi, uint32_t lo)
{
	uint32_t h = (hi * 0x9E3779B1u) ^ (lo * 0x85EBCA6Bu);
	h ^= h >> 15;
	return h & (NAME_SLOTS - 1);
}

/* The name of key (hi, lo): its slot's index, or -1. */
static int name_find(const int32_t *names, uint32_t hi, uint32_t lo)
{
	for (uint32_t s = name_slot(hi, lo), n = 0; n < NAME_SLOTS; s = (s + 1) & (NAME_SLOTS - 1), n++) {
		uint32_t h = (uint32_t)names[s * 4];
		if (h == 0)
			return -1;
		if (h == hi && (uint32_t)names[s * 4 + 1] == lo)
			return (int)s;
	}
	return -1;
}

struct out {
	uint8_t *p;
	uint8_t *end;
	const uint8_t *frags;
	const int32_t *names;
	int32_t *res;
};

/* Failures unwind to the entry's start: each helper returns 0 when the line cannot go on. */
static inline int put(struct out *o, const void *b, size_t n)
{
	if ((size_t)(o->end - o->p) < n)
		return 0;
	memcpy(o->p, b, n);
	o->p += n;
	return 1;
}
#define PUTS(o, s) put(o, s, sizeof(s) - 1)

/* The line is the JavaScript writer's (it writes what this code does not write exactly): stops the batch. */
static int to_js(struct out *o)
{
	o->res[1] = VIGIL_LINES_JS;
	return 0;
}

/* A member that is there when its event flag is. */
#define FLAG(bit, s) \
	if ((ev & (bit)) && !PUTS(o, s)) \
		return 0;

static int put_name(struct out *o, uint32_t kind, uint32_t extra, uint32_t lo)
{
	uint32_t hi = kind << 24 | extra;
	int s = name_find(o->names, hi, lo);
	if (s < 0) {
		o->res[1] = VIGIL_LINES_NAME;
		o->res[2] = (int32_t)hi;
		o->res[3] = (int32_t)lo;
		return 0;
	}
	return put(o, o->frags + o->names[s * 4 + 2], (size_t)o->names[s * 4 + 3]);
}

/* "00".."99": two digits per division (ktimeNs has 16 to 19 of them, on every line). */
static const char DIGITS2[201] =
	"0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849"
	"5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/* Decimal digits of v (as JSON writes an integer below 2^53). */
static int put_u64(struct out *o, uint64_t v)
{
	char b[24];
	int i = sizeof(b);
	while (v >= 100) {
		const unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		b[--i] = DIGITS2[d + 1];
		b[--i] = DIGITS2[d];
	}
	if (v >= 10) {
		b[--i] = DIGITS2[v * 2 + 1];
		b[--i] = DIGITS2[v * 2];
	} else
		b[--i] = (char)('0' + v);
	return put(o, b + i, sizeof(b) - i);
}

static int put_i64(struct out *o, int64_t v)
{
	if (v < 0) {
		if (!PUTS(o, "-"))
			return 0;
		return put_u64(o, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(o, (uint64_t)v);
}

#define SAFE_MAX 9007199254740991LL /* Number.MAX_SAFE_INTEGER */

/*
 * A syscall's return value as the JavaScript writer writes it: 32-bit values and positive safe integers as
 * digits; anything else (JSON may use exponent form) is left to it.
 */
static int put_ret(struct out *o, int64_t v)
{
	if ((v >= INT32_MIN && v <= INT32_MAX) || (v > 0 && v <= SAFE_MAX))
		return put_i64(o, v);
	return to_js(o);
}

static const char DIGITS[] = "0123456789";

static inline void d2(uint8_t *p, unsigned v)
{
	p[0] = DIGITS[v / 10];
	p[1] = DIGITS[v % 10];
}

/* Days since 1970-01-01 to a proleptic Gregorian date (the civil-from-days algorithm). */
static void civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

/*
 * 'YYYY-MM-DDTHH:MM:SS.mmmZ","ktimeNs":<ktime>' for a time the JavaScript side checked is within
 * TimeBytes' range (a four-digit year, ktime a safe integer of at least a second); the same double
 * arithmetic as TimeBytes.write, so the same digits.
 */
static int put_time(struct out *o, double wall_ms, double ktime_ns)
{
	static double last_sec = -1;
	static uint8_t iso[20];
	double t = floor(wall_ms);
	double sec = floor(t / 1000);
	unsigned ms = (unsigned)(t - sec * 1000);
	if (sec != last_sec) {
		int64_t s = (int64_t)sec;
		int64_t days = s / 86400, y;
		unsigned rem = (unsigned)(s % 86400), m, d;
		civil(days, &y, &m, &d);
		iso[0] = DIGITS[y / 1000];
		iso[1] = DIGITS[y / 100 % 10];
		iso[2] = DIGITS[y / 10 % 10];
		iso[3] = DIGITS[y % 10];
		iso[4] = '-';
		d2(iso + 5, m);
		iso[7] = '-';
		d2(iso + 8, d);
		iso[10] = 'T';
		d2(iso + 11, rem / 3600);
		iso[13] = ':';
		d2(iso + 14, rem / 60 % 60);
		iso[16] = ':';
		d2(iso + 17, rem % 60);
		iso[19] = '.';
		last_sec = sec;
	}
	uint8_t msb[3] = {(uint8_t)DIGITS[ms / 100], (uint8_t)DIGITS[ms / 10 % 10], (uint8_t)DIGITS[ms % 10]};
	double hi = floor(ktime_ns / 1e9);
	uint64_t lo = (uint64_t)(ktime_ns - hi * 1e9);
	uint8_t nine[9];
	for (int i = 8; i >= 0; i--, lo /= 10)
		nine[i] = (uint8_t)('0' + lo % 10);
	return put(o, iso, sizeof(iso)) && put(o, msb, 3) && PUTS(o, "Z\",\"ktimeNs\":") && put_u64(o, (uint64_t)hi) &&
	       put(o, nine, 9);
}

/*
 * The NUL-terminated string in p[0, size) as a JSON string, when it is printable ASCII with nothing to
 * escape (nearly every path); anything else is left to the JavaScript writer, which escapes and decodes
 * exactly as the decoder's string does.
 */
static int put_path(struct out *o, const uint8_t *p, uint32_t size)
{
	uint32_t n = 0;
	/*
	 * Eight bytes at a time while none is below 0x20 (NUL included), at or above 0x80, '"' or '\\' (the
	 * "has a byte less than k" word trick; a borrow can flag a byte after a real hit only, and the byte loop
	 * below then finds that hit).
	 */
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	while (n + 8 <= size) {
		uint64_t x, q, b;
		memcpy(&x, p + n, 8);
		q = x ^ (ones * '"');
		b = x ^ (ones * '\\');
		if ((((x - ones * 0x20) & ~x) | x | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs)
			break;
		n += 8;
	}
	while (n < size && p[n] != 0) {
		uint8_t c = p[n];
		if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
			return to_js(o);
		n++;
	}
	return PUTS(o, "\"") && put(o, p, n) && PUTS(o, "\"");
}

#define KILLED (VIGIL_SYSF_KILL_SENT | VIGIL_SYSF_KILL_DRY_RUN | VIGIL_SYSF_KILL_REFUSED | VIGIL_SYSF_KILL_FAILED)

/* The members every syscall event starts with: group, syscall, nr, ret (`head`: the group's), errno. */
static int syscall_head(struct out *o, uint32_t head, int32_t nr, int64_t ret)
{
	if (!put_name(o, head, 0, (uint32_t)nr) || !put_ret(o, ret))
		return 0;
	if (nr != -1 && ret < 0) {
		if (ret < -(int64_t)UINT32_MAX)
			return to_js(o);
		return put_name(o, NAME_ERRNO, 0, (uint32_t)-ret);
	}
	return 1;
}

static int file_members(struct out *o, const uint8_t *r)
{
	const struct file_event *e = (const struct file_event *)r;
	uint32_t op = e->op, ev = e->ev_flags, flags = e->flags;
	if (ev & KILLED || (op == VIGIL_SYS_OPEN && e->resolve))
		return to_js(o); /* rare members with names of their own */
	if (!syscall_head(o, NAME_FILE_HEAD, e->nr, e->ret))
		return 0;
	const uint8_t *p = r + sizeof(*e);
	if (!PUTS(o, ",\"path\":") || !put_path(o, p, e->path_len))
		return 0;
	p += e->path_len;
	if (e->path2_len && !(PUTS(o, ",\"path2\":") && put_path(o, p, e->path2_len)))
		return 0;
	p += e->path2_len;
	if (e->resolved_len && !(PUTS(o, ",\"resolvedPath\":") && put_path(o, p, e->resolved_len)))
		return 0;
	p += e->resolved_len;
	if (e->resolved2_len && !(PUTS(o, ",\"resolvedPath2\":") && put_path(o, p, e->resolved2_len)))
		return 0;
	if (ev & VIGIL_SYSF_RESOLVED_FD) {
		if (!PUTS(o, ",\"resolvedFrom\":\"fd\""))
			return 0;
	} else if (ev & VIGIL_SYSF_RESOLVED_CWD) {
		if (!PUTS(o, ",\"resolvedFrom\":\"cwd\""))
			return 0;
	} else if (ev & VIGIL_SYSF_RESOLVED_DIRFD) {
		if (!PUTS(o, ",\"resolvedFrom\":\"dirfd\""))
			return 0;
	}
	if (!PUTS(o, ",\"dfd\":") || !put_i64(o, e->dfd))
		return 0;
	int path2 = op == VIGIL_SYS_RENAME || op == VIGIL_SYS_LINK || op == VIGIL_SYS_SYMLINK;
	if (path2 && !(PUTS(o, ",\"dfd2\":") && put_i64(o, e->dfd2)))
		return 0;
	if (!put_name(o, NAME_FILE_FLAGS, op & 0xffffff, flags))
		return 0;
	int mode = op == VIGIL_SYS_CHMOD || op == VIGIL_SYS_MKDIR || (op == VIGIL_SYS_OPEN && (flags & 0100 || flags & 020000000));
	if (mode && !put_name(o, NAME_MODE, 0, e->mode))
		return 0;
	if (op == VIGIL_SYS_CHOWN) {
		if (e->uid != 0xffffffffu && !(PUTS(o, ",\"uid\":") && put_u64(o, e->uid)))
			return 0;
		if (e->gid != 0xffffffffu && !(PUTS(o, ",\"gid\":") && put_u64(o, e->gid)))
			return 0;
	} else if (op == VIGIL_SYS_TRUNCATE) {
		if (e->resolve > (uint64_t)SAFE_MAX)
			return to_js(o);
		if (!(PUTS(o, ",\"length\":") && put_u64(o, e->resolve)))
			return 0;
	}
	FLAG(VIGIL_SYSF_WRITE, ",\"write\":true")
	FLAG(VIGIL_SYSF_SENSITIVE, ",\"sensitive\":true")
	if (path2)
		FLAG(VIGIL_SYSF_SENSITIVE_PATH2, ",\"path2Sensitive\":true")
	FLAG(VIGIL_SYSF_SECRET, ",\"secret\":true")
	FLAG(VIGIL_SYSF_LOG_TRUNCATED, ",\"logTruncated\":true")
	FLAG(VIGIL_SYSF_LOG_REMOVED, ",\"logRemoved\":true")
	FLAG(VIGIL_SYSF_LOG_REPLACED, ",\"logReplaced\":true")
	FLAG(VIGIL_SYSF_PATH_TRUNCATED, ",\"pathTruncated\":true")
	FLAG(VIGIL_SYSF_PATH_AT_EXIT, ",\"pathReadAtExit\":true")
	FLAG(VIGIL_SYSF_PATH_UNREADABLE, ",\"pathUnreadable\":true")
	FLAG(VIGIL_SYSF_RESOLVED_TRUNCATED, ",\"resolvedTruncated\":true")
	FLAG(VIGIL_SYSF_IO_URING, ",\"ioUring\":true")
	FLAG(VIGIL_SYSF_NO_RESULT, ",\"resultUnknown\":true")
	return 1;
}

/* An IPv4 address as a JSON string, "a.b.c.d". */
static int put_ipv4(struct out *o, const uint8_t *a)
{
	uint8_t b[17], *p = b;
	*p++ = '"';
	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];
		if (i)
			*p++ = '.';
		if (v >= 100)
			*p++ = (uint8_t)DIGITS[v / 100];
		if (v >= 10)
			*p++ = (uint8_t)DIGITS[v / 10 % 10];
		*p++ = (uint8_t)DIGITS[v % 10];
	}
	*p++ = '"';
	return put(o, b, (size_t)(p - b));
}

static int is_zero(const uint8_t *a, int n)
{
	for (int i = 0; i < n; i++)
		if (a[i])
			return 0;
	return 1;
}

/* One end of an inet socket, when known (its port or address set); IPv6 is left to the JavaScript writer. */
static int put_end(struct out *o, const char *key, size_t key_len, const char *port_key, size_t port_len, uint16_t family,
		   const uint8_t *addr, uint16_t port)
{
	if (!port && is_zero(addr, family == 2 ? 4 : 16))
		return 1;
	if (family != 2)
		return to_js(o);
	return put(o, key, key_len) && put_ipv4(o, addr) && put(o, port_key, port_len) && put_u64(o, port);
}
#define END(o, k, pk, fam, a, port) put_end(o, k, sizeof(k) - 1, pk, sizeof(pk) - 1, fam, a, port)

static int net_members(struct out *o, const uint8_t *r)
{
	const struct net_event *e = (const struct net_event *)r;
	uint32_t op = e->op, ev = e->ev_flags;
	uint16_t family = e->family;
	if ((op == VIGIL_SYS_CONNECT || op == VIGIL_SYS_BIND) && ev & KILLED)
		return to_js(o); /* a deny rule's verdict */
	if (!syscall_head(o, NAME_NET_HEAD, e->nr, e->ret) || !PUTS(o, ",\"fd\":") || !put_i64(o, e->fd) ||
	    !put_name(o, NAME_SOCKET, family, (uint32_t)e->type << 16 | e->protocol))
		return 0;
	FLAG(VIGIL_SYSF_ADDR_UNREADABLE, ",\"addrUnreadable\":true")
	FLAG(VIGIL_SYSF_NO_SOCKET, ",\"noSocket\":true")
	FLAG(VIGIL_SYSF_IO_URING, ",\"ioUring\":true")
	FLAG(VIGIL_SYSF_NO_RESULT, ",\"resultUnknown\":true")
	if (family == 2 || family == 10) {
		if (!END(o, ",\"localAddress\":", ",\"localPort\":", family, e->laddr, e->lport) ||
		    !END(o, ",\"remoteAddress\":", ",\"remotePort\":", family, e->raddr, e->rport))
			return 0;
	} else if (family == 1 && e->unix_path_len > 0) {
		const uint8_t *p = (const uint8_t *)e->unix_path;
		if (p[0] == 0) {
			if (e->unix_path_len > 1) /* an abstract name */
				return to_js(o);
		} else if (!(op == VIGIL_SYS_CONNECT ? PUTS(o, ",\"remoteAddress\":") : PUTS(o, ",\"localAddress\":")) ||
			   !put_path(o, p, e->unix_path_len))
			return 0;
	}
	if (op == VIGIL_SYS_ACCEPT)
		return put_name(o, NAME_ACCEPT_FLAGS, 0, e->flags);
	if (op == VIGIL_SYS_LISTEN)
		return PUTS(o, ",\"backlog\":") && put_i64(o, (int32_t)e->backlog);
	if (op == VIGIL_SYS_TCP_STATE)
		return PUTS(o, ",\"oldState\":") && put_name(o, NAME_TCP_STATE, 0, (uint32_t)e->old_state) && PUTS(o, ",\"newState\":") &&
		       put_name(o, NAME_TCP_STATE, 0, (uint32_t)e->new_state);
	return 1;
}

/*
 * Writes the lines of entries [from, n) into out[at, end), each followed by a newline, and each line's end
 * (an offset into out) into ends[]. Returns how many it wrote; res[0] is where the output ends, res[1] why
 * it stopped (VIGIL_LINES_*; at the entry after the last one written), res[2..3] a missing name's key.
 *
 * Entries: doubles[i * 3 + 0..2] = the record's address (file entries), the wall time in ms, ktime in ns;
 * ints[i * 8 + 0..7] = the head's fragment (offset, length: '{"type":…,"time":"'), the process part's, the
 * container part's (length 0: none), and the kind; a raw entry (a line the JavaScript writer made) has its
 * bytes' offset and length in `raws` in ints[i * 8 + 0..1] instead.
 */
int32_t vigil_lines_write(uint8_t *out, int32_t at, int32_t end, const double *doubles, const int32_t *ints, int32_t from,
			  int32_t n, const uint8_t *frags, const uint8_t *raws, const int32_t *names, int32_t *res, int32_t *ends)
{
	struct out o = {.p = out + at, .end = out + end, .frags = frags, .names = names, .res = res};
	int32_t i = from;
	res[1] = VIGIL_LINES_DONE;
	for (; i < n; i++) {
		const double *d = doubles + (size_t)i * DOUBLES;
		const int32_t *in = ints + (size_t)i * INTS;
		uint8_t *start = o.p;
		int ok;
		res[1] = VIGIL_LINES_ROOM;
		if (in[6] == ENTRY_RAW) {
			ok = put(&o, raws + in[0], (size_t)in[1]);
		} else {
			const uint8_t *r = (const uint8_t *)(uintptr_t)d[0];
			ok = put(&o, frags + in[0], (size_t)in[1]) && put_time(&o, d[1], d[2]) && put(&o, frags + in[2], (size_t)in[3]) &&
			     (in[5] == 0 || put(&o, frags + in[4], (size_t)in[5])) &&
			     (in[6] == ENTRY_NET ? net_members(&o, r) : file_members(&o, r)) && PUTS(&o, "}");
		}
		if (!ok || !PUTS(&o, "\n")) {
			o.p = start;
			break;
		}
		res[1] = VIGIL_LINES_DONE;
		ends[i - from] = (int32_t)(o.p - out);
	}
	res[0] = (int32_t)(o.p - out);
	return i - from;
}

/* The address of a buffer's memory, for entries that point into record arena chunks (exact below 2^53). */
double vigil_lines_addr(const uint8_t *p)
{
	return (double)(uintptr_t)p;
}
