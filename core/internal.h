/* internal.h: the core's private structures and the helpers every op uses.
 *
 * Writing an op (see kernels/elementwise.c for a short example):
 *   1. check arguments with EWB_CHECK / ewb_check_f32 (errors name the op and shapes);
 *   2. allocate the output with ewb_empty / ewb_empty_like;
 *   3. compute the forward;
 *   4. n = ewb_record("name", backward_fn, k, inputs, out); if n, save what the
 *      backward needs (ewb_save: saved tensors are detached aliases);
 *   5. return ewb_finish("name", out, rc).
 * A backward receives the node; n->gout is d(loss)/d(output) (contiguous f32),
 * and ewb_grad_slot(n, i) is the contiguous zero-initialised buffer of input i
 * to accumulate into (NULL when input i needs no gradient).
 */
#ifndef ECGWB_INTERNAL_H
#define ECGWB_INTERNAL_H
#include "ecgwb.h"
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>

typedef struct ewb_storage {
    void *data;
    int64_t nbytes;
    atomic_int refcount;
} ewb_storage;

typedef struct ewb_node ewb_node;
typedef int (*ewb_backward_fn)(ewb_node *n);

enum { EWB_NODE_MAX_IN = 4, EWB_NODE_MAX_SAVED = 6 };

struct ewb_tensor {
    atomic_int refcount;
    int dtype;
    int ndim;
    int64_t shape[EWB_MAX_DIMS];
    int64_t stride[EWB_MAX_DIMS]; /* in elements */
    int64_t offset;               /* in elements */
    ewb_storage *storage;         /* NULL once disposed */
    int requires_grad;
    ewb_tensor *grad;             /* leaves only */
    ewb_node *grad_fn;            /* non-leaves only */
};

struct ewb_node {
    int refcount;
    const char *name;
    ewb_backward_fn backward;
    int ninputs;
    ewb_tensor *inputs[EWB_NODE_MAX_IN]; /* strong refs; NULL slots allowed */
    ewb_tensor *saved[EWB_NODE_MAX_SAVED];
    int64_t iarg[8];
    double farg[4];
    void *ctx;                 /* op-private heap data, freed with free() */
    int64_t out_shape[EWB_MAX_DIMS];
    int out_ndim;
    ewb_tensor *gout;          /* gradient of the output, during backward */
    int freed;                 /* graph released by a backward */
    uint64_t mark;             /* traversal stamp */
};

/* errors: set the thread-local message and return -1 */
int ewb_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define EWB_CHECK(cond, ...) do { if (!(cond)) return ewb_error(__VA_ARGS__); } while (0)
#define EWB_TRY(expr) do { if ((expr) != 0) return -1; } while (0)
const char *ewb_shape_str(const ewb_tensor *t, char *buf, int n); /* "f32[2,3]" */
/* convenience for messages: up to 4 shape strings per thread at once */
const char *ewb_s(const ewb_tensor *t);
int ewb_check_alive(const char *op, const ewb_tensor *t);
int ewb_check_f32(const char *op, const ewb_tensor *t);

/* allocation */
size_t ewb_dtype_size(int dtype);
const char *ewb_dtype_name(int dtype);
ewb_tensor *ewb_empty(int dtype, int ndim, const int64_t *shape); /* uninitialised, NULL + error on OOM */
ewb_tensor *ewb_empty_like(const ewb_tensor *t);                  /* contiguous, same dtype */
ewb_tensor *ewb_zeros_like(const ewb_tensor *t);
ewb_tensor *ewb_alias(const ewb_tensor *t);        /* same view, no autograd */
ewb_tensor *ewb_contig_or_self(ewb_tensor *t);     /* new ref: t itself if contiguous, else a copy */
void ewb_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
int64_t ewb_shape_numel(int ndim, const int64_t *shape);
static inline float *ewb_f32(const ewb_tensor *t) { return (float *)ewb_tensor_data(t); }

/* broadcasting: out shape of a and b */
int ewb_broadcast_shape(const char *op, const ewb_tensor *a, const ewb_tensor *b, int *ndim, int64_t *shape);
/* view of t expanded to (ndim, shape) with stride 0 on broadcast dims (no autograd) */
ewb_tensor *ewb_broadcast_view(const ewb_tensor *t, int ndim, const int64_t *shape);
/* reduce a contiguous gradient g of broadcast shape into dst (shape of the
   original input) by summation, accumulating: dst += sum_broadcast(g) */
int ewb_accumulate_reduced(ewb_tensor *dst, const ewb_tensor *g, double alpha);

/* autograd */
int ewb_needs_grad(int n, ewb_tensor *const *ins);
ewb_node *ewb_record(const char *name, ewb_backward_fn bw, int n, ewb_tensor *const *ins, ewb_tensor *out);
void ewb_save(ewb_node *n, int slot, const ewb_tensor *t); /* stores a detached alias */
ewb_tensor *ewb_grad_slot(ewb_node *n, int i);
int ewb_finish(const char *name, ewb_tensor *out, int rc, ewb_tensor **dst);
int ewb_has_nonfinite(const ewb_tensor *t);

/* threads */
int ewb_parallel_threshold(void); /* elements below which loops stay serial */
/* fn(ctx, i) for i in 0..n-1, each exactly once, on the caller and helper
   threads (core/threads.c): the caller never waits for a helper that has
   not started, only for blocks a helper took. For short latency-bound
   kernels (decode-step GEMV); blocks must be independent. */
void ewb_run_blocks(void (*fn)(void *ctx, int64_t i), void *ctx, int64_t n);
/* starts fn(arg) on a detached pthread; 0 or pthread_create's error number */
int ewb_thread_detached(void *(*fn)(void *), void *arg);

/* RNG: Philox4x32-10; stream position = (seed, counter) */
void ewb_philox(uint64_t seed, uint64_t counter, uint32_t out[4]);
/* n consecutive blocks, out (4n): the same numbers as n ewb_philox calls, vectorised */
void ewb_philox_blocks(uint64_t seed, uint64_t counter, int64_t n, uint32_t *out);
/* the simulator's bulk normal generator (core/sim.c), for its tests */
void ewb_sim_normals(double *x, int64_t n, uint64_t seed);
uint64_t ewb_rng_reserve(uint64_t n); /* returns the first counter of n fresh 4-word blocks */
float ewb_u01(uint32_t x);

#endif
