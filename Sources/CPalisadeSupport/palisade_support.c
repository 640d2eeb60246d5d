#define _GNU_SOURCE
#include "palisade_support.h"
#include <pthread.h>
#include <stdint.h>

// libpg_query recurses once per parse-tree level and PostgreSQL's grammar admits
// left-deep operator chains as deep as the input is long, so callers must know how
// much stack they have before handing it untrusted text.
static __thread uintptr_t stack_lowest_address = 0;

size_t palisade_stack_remaining(void) {
    char marker;
    uintptr_t here = (uintptr_t)&marker;
    if (stack_lowest_address == 0) {
        pthread_attr_t attributes;
        if (pthread_getattr_np(pthread_self(), &attributes) != 0) return 0;
        void *address = NULL;
        size_t size = 0;
        int failed = pthread_attr_getstack(&attributes, &address, &size);
        pthread_attr_destroy(&attributes);
        if (failed) return 0;
        // Leave the guard page and a margin for signal handlers out of the budget.
        stack_lowest_address = (uintptr_t)address + 64 * 1024;
    }
    return here > stack_lowest_address ? (size_t)(here - stack_lowest_address) : 0;
}

struct thunk_call {
    palisade_thunk body;
    void *context;
};

static void *run_thunk(void *argument) {
    struct thunk_call *call = argument;
    call->body(call->context);
    return NULL;
}

int palisade_run_with_stack(size_t stack_bytes, palisade_thunk body, void *context) {
    pthread_attr_t attributes;
    int status = pthread_attr_init(&attributes);
    if (status) return status;
    status = pthread_attr_setstacksize(&attributes, stack_bytes);
    if (status) { pthread_attr_destroy(&attributes); return status; }
    struct thunk_call call = { body, context };
    pthread_t thread;
    status = pthread_create(&thread, &attributes, run_thunk, &call);
    pthread_attr_destroy(&attributes);
    if (status) return status;
    return pthread_join(thread, NULL);
}
