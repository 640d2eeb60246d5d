#include <pg_query.h>

/*
 * libpg_query's internal entry points, as Debian's libpg-query 15-4.0.0 exports them (declared in
 * its src/pg_query_internal.h, pg_query_outfuncs.h and pg_query_fingerprint.h). They let Palisade
 * parse a text once and take both the JSON tree and the fingerprint from that one parse, where the
 * public pg_query_fingerprint would parse it a second time. PgQuery.swift checks them against the
 * public API once per process and uses the public API if they ever disagree.
 */
typedef struct {
    void *tree;
    char *stderr_buffer;
    PgQueryError *error;
} PgQueryInternalParsetreeAndError;

PgQueryInternalParsetreeAndError pg_query_raw_parse(const char *input);
void pg_query_free_error(PgQueryError *error);
void *pg_query_enter_memory_context(void);
void pg_query_exit_memory_context(void *context);
char *pg_query_nodes_to_json(const void *nodes);
uint64_t pg_query_fingerprint_node(const void *node);

/*
 * xxHash's one-shot XXH3, as libpg_query exports it: ParseTreeFingerprint.swift hashes the same
 * token stream pg_query_fingerprint hashes incrementally (same seed, same value).
 */
uint64_t XXH3_64bits_withSeed(const void *input, size_t length, uint64_t seed);
