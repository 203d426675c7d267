// Captures libbpf's log messages for vigil. libbpf reports the reason behind most failures (a missing BTF
// type, an unknown section, a pinned map that does not match) only through its print callback, which takes a
// va_list that a JS FFI cannot implement. This shim formats each message into a bounded buffer that the
// TypeScript side drains after a failing call and attaches to the error it throws.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#define LOG_CAP (64 * 1024)

static char log_buf[LOG_CAP];
static size_t log_len;
static int max_level = LIBBPF_WARN;

static int capture(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char line[4096];
	int n;

	if ((int)level > max_level)
		return 0;
	n = vsnprintf(line, sizeof(line), fmt, args);
	if (n <= 0)
		return 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* Keep the newest messages: when full, drop the oldest half. */
	if (log_len + (size_t)n > LOG_CAP) {
		size_t keep = log_len / 2;
		memmove(log_buf, log_buf + (log_len - keep), keep);
		log_len = keep;
	}
	if ((size_t)n > LOG_CAP)
		return 0;
	memcpy(log_buf + log_len, line, (size_t)n);
	log_len += (size_t)n;
	return n;
}

void vigil_libbpf_log_install(int level)
{
	max_level = level;
	libbpf_set_print(capture);
}

void vigil_libbpf_log_level(int level)
{
	max_level = level;
}

size_t vigil_libbpf_log_drain(char *out, size_t cap)
{
	size_t n = log_len < cap ? log_len : cap;

	memcpy(out, log_buf + (log_len - n), n);
	log_len = 0;
	return n;
}
