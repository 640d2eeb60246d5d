#define _GNU_SOURCE
#include "palisade_support.h"
#include <pthread.h>
#include <stdint.h>
#include <string.h>

// libpg_query recurses once per parse-tree level and PostgreSQL's grammar admits
// left-deep operator chains as deep as the input is long, so callers must know how
// much stack they have before handing it untrusted text.
static __thread uintptr_t stack_lowest_address = 0;

size_t palisade_stack_remaining(void) {
    // The frame address, not a local's: under AddressSanitizer a local whose address is taken
    // lives on a "fake stack" on the heap (detect_stack_use_after_return, on by default since
    // LLVM 15), and its address says nothing about this thread's stack.
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
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

// Set on the threads this file makes. A call from one of them must not wait for the worker: the
// worker may be busy with the very call that is waiting for this thread, a deadlock (seen under
// ASan, whose fake stack made a new thread's remaining stack read as 0).
static __thread int on_stack_thread = 0;

static void *run_thunk(void *argument) {
    struct thunk_call *call = argument;
    on_stack_thread = 1;
    call->body(call->context);
    return NULL;
}

static int run_on_new_thread(size_t stack_bytes, palisade_thunk body, void *context) {
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

// One long-lived thread runs the calls that need a big stack, one at a time. A thread per call
// would cost more than the parse, and libpg_query keeps per-thread state (a pthread key and its
// memory contexts) that a short-lived thread leaks: measured, ~120 KB per thread until the
// process runs out of pthread keys after about a thousand.
static pthread_mutex_t worker_callers = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t worker_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t worker_wake = PTHREAD_COND_INITIALIZER;
static struct thunk_call *worker_job = NULL;
static int worker_started = 0;

static void *worker_main(void *unused) {
    (void)unused;
    on_stack_thread = 1;
    pthread_mutex_lock(&worker_lock);
    for (;;) {
        while (worker_job == NULL) pthread_cond_wait(&worker_wake, &worker_lock);
        struct thunk_call *job = worker_job;
        pthread_mutex_unlock(&worker_lock);
        job->body(job->context);
        pthread_mutex_lock(&worker_lock);
        worker_job = NULL;
        pthread_cond_broadcast(&worker_wake);
    }
    return NULL;
}

static int start_worker(void) {
    pthread_attr_t attributes;
    int status = pthread_attr_init(&attributes);
    if (status) return status;
    status = pthread_attr_setstacksize(&attributes, PALISADE_WORKER_STACK_BYTES);
    if (!status) status = pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    if (!status) status = pthread_create(&thread, &attributes, worker_main, NULL);
    pthread_attr_destroy(&attributes);
    if (!status) worker_started = 1;
    return status;
}

int palisade_run_with_stack(size_t stack_bytes, palisade_thunk body, void *context) {
    if (stack_bytes > PALISADE_WORKER_STACK_BYTES || on_stack_thread) return run_on_new_thread(stack_bytes, body, context);
    pthread_mutex_lock(&worker_callers);
    int status = worker_started ? 0 : start_worker();
    if (!status) {
        struct thunk_call call = { body, context };
        pthread_mutex_lock(&worker_lock);
        worker_job = &call;
        pthread_cond_broadcast(&worker_wake);
        while (worker_job != NULL) pthread_cond_wait(&worker_wake, &worker_lock);
        pthread_mutex_unlock(&worker_lock);
    }
    pthread_mutex_unlock(&worker_callers);
    return status;
}

const void *palisade_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length);
}

int palisade_name_thread(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
