#ifndef PALISADE_SUPPORT_H
#define PALISADE_SUPPORT_H

#include <stddef.h>

/// Bytes of stack left below the caller's frame on the current thread (0 if unknown).
size_t palisade_stack_remaining(void);

typedef void (*palisade_thunk)(void *context);

/// Runs `body(context)` on a new thread with at least `stack_bytes` of stack and waits for it.
/// Returns 0 on success, an errno value if the thread could not be created.
int palisade_run_with_stack(size_t stack_bytes, palisade_thunk body, void *context);

#endif
