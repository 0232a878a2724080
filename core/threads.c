/* threads.c: the compute lane's thread count (oneDNN and the core's own
 * loops both run on OpenMP, so one setting governs both), a wall clock, and
 * ewb_run_blocks, a caller-led parallel loop.
 *
 * ewb_run_blocks exists for kernels of tens to hundreds of microseconds run
 * back to back (a decode step's GEMVs). An OpenMP parallel region ends in a
 * barrier that every thread must reach; with OMP_WAIT_POLICY=passive a
 * sleeping thread has to be woken for each region, and on a loaded machine
 * the caller then waits until the scheduler runs it. Here the caller
 * publishes the job, wakes the helpers and takes blocks itself from a shared
 * counter; a helper that wakes late finds nothing left. The caller waits
 * only for blocks a helper has taken. Helpers (OpenMP's thread count - 1,
 * started on first use) sleep on a condition variable between jobs.
 * The counter holds (job generation << 32 | next block), so a helper that
 * read an old job can never take a block of a newer one. One job runs at a
 * time; a second caller (another thread, or a nested call) runs serially. */
#include "internal.h"
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

double ewb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ewb_num_threads(void) { return omp_get_max_threads(); }
void ewb_set_num_threads(int n) { if (n > 0) omp_set_num_threads(n); }
int ewb_parallel_threshold(void) { return 1 << 15; }

enum { MAX_HELPERS = 7 };
typedef struct {
    void (*fn)(void *, int64_t);
    void *ctx;
    int64_t n;
} blocks_job;
static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER; /* guards job, job_gen, helpers */
static pthread_cond_t job_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t owner_mu = PTHREAD_MUTEX_INITIALIZER; /* held by the caller of the running job */
static blocks_job job;
static uint32_t job_gen;
static int helpers;
static _Atomic uint64_t ticket; /* (generation << 32) | next block */
static _Atomic int64_t blocks_done;

/* take and run blocks of job j (generation g) until none is left */
static void take_blocks(const blocks_job *j, uint32_t g) {
    uint64_t t = atomic_load(&ticket);
    for (;;) {
        if ((uint32_t)(t >> 32) != g || (int64_t)(t & 0xffffffffu) >= j->n) return;
        if (!atomic_compare_exchange_weak(&ticket, &t, t + 1)) continue; /* t reloaded */
        j->fn(j->ctx, (int64_t)(t & 0xffffffffu));
        atomic_fetch_add(&blocks_done, 1);
        t = atomic_load(&ticket);
    }
}

static void *helper_main(void *arg) {
    (void)arg;
    uint32_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&job_mu);
        while (job_gen == seen) pthread_cond_wait(&job_cv, &job_mu);
        seen = job_gen;
        blocks_job j = job;
        pthread_mutex_unlock(&job_mu);
        take_blocks(&j, seen);
    }
    return NULL;
}

int ewb_thread_detached(void *(*fn)(void *), void *arg) {
    pthread_t th;
    pthread_attr_t at;
    int rc = pthread_attr_init(&at);
    if (rc != 0) return rc;
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &at, fn, arg);
    pthread_attr_destroy(&at);
    return rc;
}

void ewb_run_blocks(void (*fn)(void *ctx, int64_t i), void *ctx, int64_t n) {
    int want = omp_get_max_threads() - 1;
    if (want > MAX_HELPERS) want = MAX_HELPERS;
    if (n <= 0) return;
    if (want <= 0 || n == 1 || n > 0xffffffffLL || omp_in_parallel() || pthread_mutex_trylock(&owner_mu) != 0) {
        for (int64_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&job_mu);
    while (helpers < want) {
        if (ewb_thread_detached(helper_main, NULL) != 0) break; /* fewer helpers: the caller does more blocks */
        helpers++;
    }
    job = (blocks_job){fn, ctx, n};
    if (++job_gen == 0) job_gen = 1; /* 0 is the helpers' initial "seen" */
    uint32_t g = job_gen;
    atomic_store(&blocks_done, 0);
    atomic_store(&ticket, (uint64_t)g << 32);
    pthread_cond_broadcast(&job_cv);
    pthread_mutex_unlock(&job_mu);
    take_blocks(&job, g);
    for (int spins = 0; atomic_load(&blocks_done) < n; spins++) /* blocks a helper took */
        if (spins > 64) sched_yield();
    pthread_mutex_unlock(&owner_mu);
}
