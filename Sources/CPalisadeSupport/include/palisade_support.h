#ifndef PALISADE_SUPPORT_H
#define PALISADE_SUPPORT_H

#include <stddef.h>

/// Bytes of stack left below the caller's frame on the current thread (0 if unknown).
size_t palisade_stack_remaining(void);

typedef void (*palisade_thunk)(void *context);

/// Stack of the long-lived thread that runs calls needing more stack than their caller has:
/// enough for libpg_query on the largest text a policy admits by default (64 KiB).
#define PALISADE_WORKER_STACK_BYTES ((size_t)64 << 20)

/// Runs `body(context)` on a thread with at least `stack_bytes` of stack and waits for it: the
/// long-lived worker thread (one call at a time), or a new thread for a larger stack. Returns 0
/// on success, an errno value if the thread could not be created.
int palisade_run_with_stack(size_t stack_bytes, palisade_thunk body, void *context);

/// glibc's memmem (a GNU extension Swift's Glibc module does not show): linear in the haystack.
const void *palisade_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

/// Names the calling thread for top, perf and /proc (pthread_setname_np, a GNU extension; the
/// kernel keeps 15 characters). Returns 0, or the errno value (ERANGE for a longer name).
int palisade_name_thread(const char *name);

#endif
