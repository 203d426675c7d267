// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A program in a section libbpf does not know, for the UnknownSectionError test. */
#include "vigil.h"

SEC("vigil_bogus/thing")
int in_bogus_section(void *ctx)
{
	return 0;
}
