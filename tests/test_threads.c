/* test_threads.c: ewb_run_blocks (core/threads.c), the caller-led parallel
 * loop under the decode-step GEMV: every block runs exactly once, for many
 * jobs back to back (helpers that wake late must not take blocks of a newer
 * job), with 1 and 2 threads, from a nested OpenMP region (serial), and
 * while another thread runs jobs of its own. */
#include "check.h"
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    _Atomic int *hits; /* (n) */
    int64_t n;
    int job;
} count_ctx;

static _Atomic int64_t by_helpers; /* blocks run off the calling thread */
static _Thread_local int is_caller;

/* a few microseconds of work, so that helpers get blocks while the caller
   is busy, then the count */
static void count_block(void *ctx, int64_t i) {
    count_ctx *c = ctx;
    volatile double acc = 0;
    for (int k = 0; k < 500; k++) acc += k * 1e-3;
    if (!is_caller) atomic_fetch_add(&by_helpers, 1);
    if (i >= 0 && i < c->n) atomic_fetch_add(&c->hits[i], 1 + c->job);
}

/* `jobs` jobs of n blocks; returns the number of blocks not run exactly once */
static int64_t run_jobs(int64_t n, int jobs) {
    _Atomic int *hits = calloc((size_t)(n ? n : 1), sizeof *hits);
    int64_t bad = 0;
    for (int j = 0; j < jobs; j++) {
        for (int64_t i = 0; i < n; i++) atomic_store(&hits[i], 0);
        count_ctx c = {hits, n, j};
        ewb_run_blocks(count_block, &c, n);
        for (int64_t i = 0; i < n; i++) bad += atomic_load(&hits[i]) != 1 + j;
    }
    free(hits);
    return bad;
}

static void *other_caller(void *arg) {
    is_caller = 1;
    *(int64_t *)arg = run_jobs(300, 200);
    return NULL;
}

int main(void) {
    is_caller = 1;
    for (int threads = 1; threads <= 2; threads++) {
        ewb_set_num_threads(threads);
        int64_t sizes[5] = {0, 1, 2, 49, 300};
        for (int s = 0; s < 5; s++) {
            int64_t bad = run_jobs(sizes[s], 200);
            CHECK(bad == 0, "threads %d, n %lld: %lld blocks not run exactly once", threads, (long long)sizes[s], (long long)bad);
        }
    }
    printf("blocks run by helper threads: %lld\n", (long long)atomic_load(&by_helpers));
    int64_t nested_bad = 0;
    #pragma omp parallel num_threads(2) reduction(+:nested_bad)
    {
        is_caller = 1;
        nested_bad += run_jobs(64, 50);
    }
    CHECK(nested_bad == 0, "inside an OpenMP region: %lld blocks wrong", (long long)nested_bad);
    int64_t bad_other = -1, bad_here;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, other_caller, &bad_other) == 0, "pthread_create");
    bad_here = run_jobs(300, 200);
    pthread_join(th, NULL);
    CHECK(bad_here == 0 && bad_other == 0, "two callers at once: %lld and %lld blocks wrong", (long long)bad_here,
          (long long)bad_other);
    return check_report();
}
