// The least a durable SQL firewall must do for one simple query, with nothing else: a byte pump
// between PostgreSQL clients and the server (one epoll thread, as PgBouncer runs) that records
// each simple Query (its text, chained with SHA-256) in a file, written over zeros reserved ahead as
// Palisade writes, group-commits it with pwrite + fdatasync on a writer thread, and holds the
// server's answer until the record is on disk.
// No parse, no decision, no TLS, no pooling. Benchmarks/pgbench-compare runs it beside Palisade: what
// it costs is the floor that the durability rule puts under any design, on this machine.
//
// Usage: durable-floor LISTEN_PORT SERVER_PORT AUDIT_FILE MODE THREADS
//   MODE: flush    the writer thread commits what is pending (group commit), then wakes the loops
//         inline   no writer: each loop commits what its turn recorded, then answers
//         gather   as flush, but the writer first waits up to FLOOR_GATHER_MICROS (100) for every
//                  connected session to have a record pending (a commit_delay that knows the sessions)
//         pipe     as flush with FLOOR_SYNCERS (2) writer threads, so that several fdatasyncs are in
//                  flight at once; batches are still released in order
//         write    as flush without the fdatasync; none: no record at all (the pump alone)
//   THREADS: event-loop threads (1 as PgBouncer; each has its own clients)
// SIGUSR1 prints "RECORDS FDATASYNCS" so far on stdout.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// OpenSSL's SHA-256 (SHA extensions where the CPU has them, as Palisade's BoringSSL uses), declared
// here so that the runtime library alone suffices: cc … -l:libcrypto.so.3, no headers package.
#define SHA256_DIGEST_LENGTH 32
unsigned char *SHA256(const unsigned char *data, size_t length, unsigned char *digest);

enum mode { FLUSH, WRITE, NONE, INLINE, GATHER, PIPE };
static enum mode mode;
static int server_port;
static int audit_fd;

typedef struct buffer { char *data; size_t length, capacity; } buffer;

static void append(buffer *b, const void *bytes, size_t length) {
    if (b->length + length > b->capacity) {
        b->capacity = (b->length + length) * 2 + 256;
        b->data = realloc(b->data, b->capacity);
    }
    memcpy(b->data + b->length, bytes, length);
    b->length += length;
}

static void write_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, data, length);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;  // tiny messages: never in pgbench -S
            return;
        }
        data += n;
        length -= (size_t)n;
    }
}

struct loop;

typedef struct pair {
    int client, server;
    struct loop *loop;
    // The client's stream: the startup message has no type byte; then type + length frames.
    int started;
    unsigned char header[5];
    size_t header_length;
    size_t remaining;  // bytes of the current frame's body still to come
    int in_query;      // the current frame is a simple Query
    buffer query;      // its text, for the record
    int outstanding;   // records not yet durable: the server's answer is held meanwhile
    buffer held;
} pair;

// What a loop hands the writer, and what the writer hands back.
typedef struct loop {
    int epoll, wake;
    pthread_mutex_t lock;
    pair **done;
    size_t done_count, done_capacity;
} loop;

static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t writer_wake = PTHREAD_COND_INITIALIZER;
static buffer pending_lines;
static pair **pending_pairs;
static size_t pending_count, pending_capacity;
static unsigned char chain[SHA256_DIGEST_LENGTH];
// Records and fdatasyncs so far; SIGUSR1 prints them on stdout as "ENTRIES SYNCS".
static volatile unsigned long entries_written, syncs_done;
// GATHER: the writer waits (up to gather_micros) until every connected session has a record pending.
static volatile int connected_pairs;
static long gather_micros = 100;
static off_t audit_offset;
// Batches taken by the writers and released to the loops, in order (several are in flight in PIPE).
static unsigned long batches_taken, batches_released;
static pthread_cond_t batch_released = PTHREAD_COND_INITIALIZER;
// Zeros written ahead of the entries, as Palisade's writer reserves them: an fdatasync of entries
// written over zeros already on disk is one data write, where an append also writes the file's size.
static off_t reserved_end;
#define RESERVATION (1 << 20)

// Writes a batch of lines at the next offset, over reserved zeros (reserving 1 MiB more when it
// would not fit: the zeros ride on the batch's own fdatasync, once per MiB). Called with writer_lock
// held by the one committer of the moment; returns the batch's offset.
static off_t place(const buffer *lines) {
    off_t offset = audit_offset;
    audit_offset += (off_t)lines->length;
    while (audit_offset > reserved_end) {
        static char zeros[RESERVATION];
        if (pwrite(audit_fd, zeros, RESERVATION, reserved_end) != RESERVATION) abort();
        reserved_end += RESERVATION;
    }
    return offset;
}

// One record: a line of the query's text and the chain's hash over it, as an audit entry holds.
static void record(pair *p) {
    char line[8192];
    size_t text = p->query.length < 6000 ? p->query.length : 6000;
    int head = snprintf(line, sizeof line, "{\"session\":%d,\"query\":\"", p->client);
    memcpy(line + head, p->query.data, text);
    size_t length = head + text;
    pthread_mutex_lock(&writer_lock);
    unsigned char input[SHA256_DIGEST_LENGTH + 8192];
    memcpy(input, chain, SHA256_DIGEST_LENGTH);
    memcpy(input + SHA256_DIGEST_LENGTH, line, length);
    SHA256(input, SHA256_DIGEST_LENGTH + length, chain);
    char tail[80] = "\",\"hash\":\"";
    for (int i = 0; i < 16; i++) sprintf(tail + 10 + 2 * i, "%02x", chain[i]);
    strcat(tail, "\"}\n");
    append(&pending_lines, line, length);
    append(&pending_lines, tail, strlen(tail));
    if (pending_count == pending_capacity) {
        pending_capacity = pending_capacity * 2 + 64;
        pending_pairs = realloc(pending_pairs, pending_capacity * sizeof *pending_pairs);
    }
    pending_pairs[pending_count++] = p;
    if (mode != INLINE) pthread_cond_signal(&writer_wake);
    pthread_mutex_unlock(&writer_lock);
    p->outstanding++;
}

static void *writer(void *unused) {
    (void)unused;
    buffer lines = {0};
    pair **pairs = NULL;
    size_t capacity = 0;
    for (;;) {
        pthread_mutex_lock(&writer_lock);
        while (pending_count == 0) pthread_cond_wait(&writer_wake, &writer_lock);
        if (mode == GATHER) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += gather_micros * 1000;
            if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
            while ((int)pending_count < connected_pairs)
                if (pthread_cond_timedwait(&writer_wake, &writer_lock, &until) != 0) break;
        }
        buffer swap = lines; lines = pending_lines; pending_lines = swap; pending_lines.length = 0;
        pair **swap_pairs = pairs; pairs = pending_pairs; pending_pairs = swap_pairs;
        size_t swap_capacity = capacity; capacity = pending_capacity; pending_capacity = swap_capacity;
        size_t count = pending_count; pending_count = 0;
        off_t offset = place(&lines);
        unsigned long batch = ++batches_taken;
        pthread_mutex_unlock(&writer_lock);
        if (pwrite(audit_fd, lines.data, lines.length, offset) != (ssize_t)lines.length) abort();
        if (mode != WRITE && fdatasync(audit_fd) != 0) abort();
        // PIPE: several syncs are in flight, and a batch is durable only once every batch before
        // it is too (the chain has no hole), so batches are released in the order they were taken.
        pthread_mutex_lock(&writer_lock);
        while (batches_released != batch - 1) pthread_cond_wait(&batch_released, &writer_lock);
        batches_released = batch;
        entries_written += count;
        syncs_done += mode != WRITE;
        pthread_cond_broadcast(&batch_released);
        pthread_mutex_unlock(&writer_lock);
        // Hand each loop its completions, one wake per loop.
        for (size_t i = 0; i < count; i++) {
            loop *l = pairs[i]->loop;
            pthread_mutex_lock(&l->lock);
            if (l->done_count == l->done_capacity) {
                l->done_capacity = l->done_capacity * 2 + 64;
                l->done = realloc(l->done, l->done_capacity * sizeof *l->done);
            }
            int first = l->done_count == 0;
            l->done[l->done_count++] = pairs[i];
            pthread_mutex_unlock(&l->lock);
            if (first) { uint64_t one = 1; if (write(l->wake, &one, 8) < 0) abort(); }
        }
    }
    return NULL;
}

// Reads the client's bytes, finds its simple Queries, forwards the bytes as they came.
static void client_bytes(pair *p, const unsigned char *data, size_t length) {
    size_t i = 0;
    while (i < length) {
        if (p->remaining == 0) {
            size_t need = p->started ? 5 : 4;
            while (p->header_length < need && i < length) p->header[p->header_length++] = data[i++];
            if (p->header_length < need) break;
            const unsigned char *h = p->started ? p->header + 1 : p->header;
            uint32_t frame = (uint32_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
            p->in_query = p->started && p->header[0] == 'Q';
            p->query.length = 0;
            p->remaining = frame - 4;
            p->header_length = 0;
            if (!p->started) {
                // SSLRequest/GSSENCRequest are not expected (pgbench runs with sslmode disable).
                p->started = 1;
            }
            if (p->remaining == 0 && p->in_query && mode != NONE) record(p);
            continue;
        }
        size_t take = length - i < p->remaining ? length - i : p->remaining;
        if (p->in_query) append(&p->query, data + i, take);
        p->remaining -= take;
        i += take;
        if (p->remaining == 0 && p->in_query && mode != NONE) record(p);
    }
    write_all(p->server, (const char *)data, length);
}

static void close_pair(pair *p) {
    epoll_ctl(p->loop->epoll, EPOLL_CTL_DEL, p->client, NULL);
    epoll_ctl(p->loop->epoll, EPOLL_CTL_DEL, p->server, NULL);
    close(p->client);
    close(p->server);
    __sync_fetch_and_sub(&connected_pairs, 1);
    p->client = p->server = -1;  // kept: the writer may still hold it (a benchmark's few sessions)
}

// INLINE: the loop itself commits what its last turn recorded, then releases the answers: one
// pwrite + fdatasync per turn for every session it served, no other thread, no wake.
static void commit_inline(buffer *lines, pair ***pairs, size_t *capacity) {
    pthread_mutex_lock(&writer_lock);
    if (pending_count == 0) { pthread_mutex_unlock(&writer_lock); return; }
    buffer swap = *lines; *lines = pending_lines; pending_lines = swap; pending_lines.length = 0;
    pair **swap_pairs = *pairs; *pairs = pending_pairs; pending_pairs = swap_pairs;
    size_t swap_capacity = *capacity; *capacity = pending_capacity; pending_capacity = swap_capacity;
    size_t count = pending_count; pending_count = 0;
    if (pwrite(audit_fd, lines->data, lines->length, place(lines)) != (ssize_t)lines->length) abort();
    if (fdatasync(audit_fd) != 0) abort();
    entries_written += count;
    syncs_done++;
    pthread_mutex_unlock(&writer_lock);
    for (size_t i = 0; i < count; i++) {
        pair *p = (*pairs)[i];
        if (--p->outstanding == 0 && p->held.length > 0 && p->client >= 0) {
            write_all(p->client, p->held.data, p->held.length);
            p->held.length = 0;
        }
    }
}

static void *run_loop(void *argument) {
    loop *l = argument;
    struct epoll_event events[64];
    unsigned char data[65536];
    buffer lines = {0};
    pair **pairs = NULL;
    size_t capacity = 0;
    for (;;) {
        if (mode == INLINE) commit_inline(&lines, &pairs, &capacity);
        int n = epoll_wait(l->epoll, events, 64, -1);
        for (int e = 0; e < n; e++) {
            if (events[e].data.ptr == NULL) {
                uint64_t count;
                if (read(l->wake, &count, 8) < 0) continue;
                pthread_mutex_lock(&l->lock);
                size_t done = l->done_count;
                pair **completed = malloc(done * sizeof *completed);
                memcpy(completed, l->done, done * sizeof *completed);
                l->done_count = 0;
                pthread_mutex_unlock(&l->lock);
                for (size_t i = 0; i < done; i++) {
                    pair *p = completed[i];
                    if (--p->outstanding == 0 && p->held.length > 0 && p->client >= 0) {
                        write_all(p->client, p->held.data, p->held.length);
                        p->held.length = 0;
                    }
                }
                free(completed);
                continue;
            }
            // The pointer's low bit tells the server side from the client side.
            uintptr_t tagged = (uintptr_t)events[e].data.ptr;
            pair *p = (pair *)(tagged & ~(uintptr_t)1);
            int from_server = tagged & 1;
            if (p->client < 0) continue;
            ssize_t got = read(from_server ? p->server : p->client, data, sizeof data);
            if (got <= 0) {
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                close_pair(p);
                continue;
            }
            if (!from_server) {
                client_bytes(p, data, (size_t)got);
            } else if (p->outstanding > 0) {
                append(&p->held, data, (size_t)got);
            } else {
                write_all(p->client, (const char *)data, (size_t)got);
            }
        }
    }
    return NULL;
}

static void print_counts(int signal_number) {
    (void)signal_number;
    char text[64];
    int length = 0;
    unsigned long values[2] = {entries_written, syncs_done};
    for (int v = 0; v < 2; v++) {
        char digits[24];
        int count = 0;
        unsigned long value = values[v];
        do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value);
        while (count) text[length++] = digits[--count];
        text[length++] = v == 0 ? ' ' : '\n';
    }
    if (write(STDOUT_FILENO, text, (size_t)length) < 0) _exit(1);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s LISTEN_PORT SERVER_PORT AUDIT_FILE flush|write|none THREADS\n", argv[0]);
        return 2;
    }
    int listen_port = atoi(argv[1]);
    server_port = atoi(argv[2]);
    mode = strcmp(argv[4], "flush") == 0 ? FLUSH : strcmp(argv[4], "write") == 0 ? WRITE
         : strcmp(argv[4], "inline") == 0 ? INLINE : strcmp(argv[4], "gather") == 0 ? GATHER
         : strcmp(argv[4], "pipe") == 0 ? PIPE : NONE;
    int syncers = mode == PIPE ? (getenv("FLOOR_SYNCERS") ? atoi(getenv("FLOOR_SYNCERS")) : 2) : 1;
    int threads = atoi(argv[5]);
    signal(SIGUSR1, print_counts);
    if (getenv("FLOOR_GATHER_MICROS")) gather_micros = atol(getenv("FLOOR_GATHER_MICROS"));
    signal(SIGPIPE, SIG_IGN);
    audit_fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (audit_fd < 0) { perror("audit file"); return 1; }
    pthread_t thread;
    if (mode == FLUSH || mode == WRITE || mode == GATHER || mode == PIPE)
        for (int i = 0; i < syncers; i++) pthread_create(&thread, NULL, writer, NULL);
    loop *loops = calloc((size_t)threads, sizeof *loops);
    for (int i = 0; i < threads; i++) {
        loops[i].epoll = epoll_create1(0);
        loops[i].wake = eventfd(0, EFD_NONBLOCK);
        pthread_mutex_init(&loops[i].lock, NULL);
        struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(loops[i].epoll, EPOLL_CTL_ADD, loops[i].wake, &event);
        pthread_create(&thread, NULL, run_loop, &loops[i]);
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 128) != 0) {
        perror("listen");
        return 1;
    }
    for (int next = 0;; next = (next + 1) % threads) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) continue;
        int server = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server_port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(server, (struct sockaddr *)&to, sizeof to) != 0) { close(client); close(server); continue; }
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
        setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
        fcntl(client, F_SETFL, O_NONBLOCK);
        fcntl(server, F_SETFL, O_NONBLOCK);
        pair *p = calloc(1, sizeof *p);
        p->client = client;
        p->server = server;
        p->loop = &loops[next];
        __sync_fetch_and_add(&connected_pairs, 1);
        struct epoll_event from_client = {.events = EPOLLIN, .data.ptr = p};
        struct epoll_event from_server = {.events = EPOLLIN, .data.ptr = (void *)((uintptr_t)p | 1)};
        epoll_ctl(p->loop->epoll, EPOLL_CTL_ADD, client, &from_client);
        epoll_ctl(p->loop->epoll, EPOLL_CTL_ADD, server, &from_server);
    }
}
