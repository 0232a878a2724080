/* threads.c: the compute lane's thread count (oneDNN and the core's own
 * loops both run on OpenMP, so one setting governs both), and a wall clock. */
#include "internal.h"
#include <omp.h>
#include <time.h>

double ewb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ewb_num_threads(void) { return omp_get_max_threads(); }
void ewb_set_num_threads(int n) { if (n > 0) omp_set_num_threads(n); }
int ewb_parallel_threshold(void) { return 1 << 15; }
