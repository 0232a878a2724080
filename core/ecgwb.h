/* ecgwb.h: the one public header of the ecgwb C core.
 *
 * Tutorial
 * --------
 * Tensors are refcounted, strided views onto refcounted 64-byte-aligned
 * storage. Every call returns a status (0 = ok, -1 = error); on error the
 * message is in ewb_last_error() (thread-local). Results come back through
 * an out-pointer that the caller owns and releases with ewb_tensor_free():
 *
 *     ewb_tensor *x, *w, *y, *loss;
 *     int64_t xs[2] = {4, 8}, ws[2] = {3, 8};
 *     ewb_manual_seed(1);
 *     ewb_randn(&x, 2, xs);
 *     ewb_randn(&w, 2, ws);
 *     ewb_tensor_set_requires_grad(w, 1);
 *     if (ewb_linear(x, w, NULL, &y) != 0) puts(ewb_last_error());
 *     ewb_sum(y, 0, NULL, 0, &loss);
 *     ewb_backward(loss, NULL, 0);        // w's .grad now holds d loss / d w
 *
 * Autograd is define-by-run: an op whose input requires grad records a node
 * on the output; ewb_backward() walks the nodes in reverse topological order,
 * accumulates gradients into leaves and then frees the graph.
 *
 * The declarations between the ffi markers are read verbatim by LuaJIT's
 * ffi.cdef (lua/ecgwb/init.lua), so they contain no macros.
 */
#ifndef ECGWB_H
#define ECGWB_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* ffi:begin */
typedef struct ewb_tensor ewb_tensor;

enum {
    EWB_DTYPE_F32 = 0,
    EWB_DTYPE_I32 = 1,
    EWB_DTYPE_I64 = 2,
    EWB_DTYPE_BOOL = 3,   /* one byte per element, 0 or 1 */
    EWB_MAX_DIMS = 8
};

enum { EWB_REDUCE_NONE = 0, EWB_REDUCE_MEAN = 1, EWB_REDUCE_SUM = 2 };

/* ---- library, errors, memory ---- */
const char *ewb_version(void);
const char *ewb_last_error(void);
void ewb_clear_error(void);
int64_t ewb_mem_current(void);      /* live tensor bytes */
int64_t ewb_mem_peak(void);
void ewb_mem_reset_peak(void);
int ewb_mem_pressure(void);         /* 1 once per EWB GC threshold of bytes allocated */
void ewb_mem_set_threshold(int64_t bytes);
int ewb_num_threads(void);
void ewb_set_num_threads(int n);
double ewb_now(void);               /* monotonic wall-clock seconds */
/* Ctrl-C: once set (async-signal-safe), the next op that finishes fails with
   "interrupted", so even JIT-compiled loops that call ops stop */
void ewb_set_interrupt(int flag);
const char *ewb_api_header(void);   /* the text of this header (for ffi.cdef) */

/* ---- tensor lifetime and metadata ---- */
int ewb_tensor_new(ewb_tensor **out, int dtype, int ndim, const int64_t *shape); /* zeros */
int ewb_tensor_from_data(ewb_tensor **out, int dtype, int ndim, const int64_t *shape,
                         const void *data); /* copies data (contiguous, row-major) */
int ewb_full(ewb_tensor **out, int dtype, int ndim, const int64_t *shape, double value);
int ewb_arange(ewb_tensor **out, int dtype, double start, double stop, double step);
void ewb_tensor_retain(ewb_tensor *t);
void ewb_tensor_free(ewb_tensor *t);     /* drops one reference; NULL is fine */
void ewb_tensor_dispose(ewb_tensor *t);  /* releases storage, grad and graph now */
int ewb_tensor_dtype(const ewb_tensor *t);
int ewb_tensor_ndim(const ewb_tensor *t);
int64_t ewb_tensor_size(const ewb_tensor *t, int dim);
int64_t ewb_tensor_stride(const ewb_tensor *t, int dim);
int64_t ewb_tensor_offset(const ewb_tensor *t);
int64_t ewb_tensor_numel(const ewb_tensor *t);
int ewb_tensor_is_contiguous(const ewb_tensor *t);
int ewb_tensor_is_alive(const ewb_tensor *t);   /* 0 after ewb_tensor_dispose */
void *ewb_tensor_data(const ewb_tensor *t);      /* first element (offset applied) */
int ewb_tensor_shares_storage(const ewb_tensor *a, const ewb_tensor *b);
int ewb_tensor_describe(const ewb_tensor *t, char *buf, int n); /* "f32[2,3]" */
int ewb_tensor_get(const ewb_tensor *t, const int64_t *idx, double *out);
int ewb_tensor_set(ewb_tensor *t, const int64_t *idx, double v);
int ewb_tensor_item(const ewb_tensor *t, double *out);
int ewb_tensor_copy_to(const ewb_tensor *t, void *dst, int64_t nbytes);
/* in-place, never recorded by autograd */
int ewb_fill_(ewb_tensor *t, double v);
int ewb_copy_(ewb_tensor *dst, const ewb_tensor *src);   /* src broadcast to dst */
int ewb_add_(ewb_tensor *dst, const ewb_tensor *src, double alpha); /* dst += alpha*src */
int ewb_scale_(ewb_tensor *t, double s);

/* ---- autograd ---- */
int ewb_tensor_requires_grad(const ewb_tensor *t);
int ewb_tensor_set_requires_grad(ewb_tensor *t, int flag);  /* leaves only */
int ewb_tensor_is_leaf(const ewb_tensor *t);
int ewb_tensor_grad(const ewb_tensor *t, ewb_tensor **out); /* *out = NULL if none */
int ewb_tensor_set_grad(ewb_tensor *t, ewb_tensor *g);      /* g may be NULL */
const char *ewb_tensor_grad_fn(const ewb_tensor *t);       /* op name or NULL */
int ewb_backward(ewb_tensor *root, ewb_tensor *grad, int retain_graph);
int ewb_grad_enabled(void);
void ewb_set_grad_enabled(int flag);
int ewb_anomaly_enabled(void);
void ewb_set_anomaly(int flag);
int ewb_detach(const ewb_tensor *t, ewb_tensor **out);
int ewb_contiguous(ewb_tensor *t, ewb_tensor **out);  /* differentiable */
int ewb_clone(ewb_tensor *t, ewb_tensor **out);       /* differentiable copy */
int ewb_to_dtype(ewb_tensor *t, int dtype, ewb_tensor **out);

/* ---- random numbers: Philox4x32-10, counter based ---- */
void ewb_manual_seed(uint64_t seed);
void ewb_rng_get_state(uint64_t *seed, uint64_t *offset);
void ewb_rng_set_state(uint64_t seed, uint64_t offset);
int ewb_rand(ewb_tensor **out, int ndim, const int64_t *shape);   /* U[0,1) */
int ewb_randn(ewb_tensor **out, int ndim, const int64_t *shape);  /* N(0,1) */
int ewb_randint(ewb_tensor **out, int64_t lo, int64_t hi, int ndim, const int64_t *shape); /* i64 */
int ewb_uniform_(ewb_tensor *t, double lo, double hi);
int ewb_normal_(ewb_tensor *t, double mean, double std);
int ewb_randperm(ewb_tensor **out, int64_t n);

/* ---- views (no copy) and shape ops; all differentiable ---- */
int ewb_view(ewb_tensor *t, int ndim, const int64_t *shape, ewb_tensor **out);    /* -1 infers */
int ewb_reshape(ewb_tensor *t, int ndim, const int64_t *shape, ewb_tensor **out); /* view or copy */
int ewb_permute(ewb_tensor *t, const int *dims, ewb_tensor **out);
int ewb_transpose(ewb_tensor *t, int d0, int d1, ewb_tensor **out);
int ewb_narrow(ewb_tensor *t, int dim, int64_t start, int64_t length, ewb_tensor **out);
int ewb_slice(ewb_tensor *t, int dim, int64_t start, int64_t stop, int64_t step, ewb_tensor **out);
int ewb_select(ewb_tensor *t, int dim, int64_t index, ewb_tensor **out);
int ewb_expand(ewb_tensor *t, int ndim, const int64_t *shape, ewb_tensor **out);
int ewb_squeeze(ewb_tensor *t, int dim, ewb_tensor **out);
int ewb_unsqueeze(ewb_tensor *t, int dim, ewb_tensor **out);
int ewb_cat(int n, ewb_tensor *const *ts, int dim, ewb_tensor **out);
int ewb_stack(int n, ewb_tensor *const *ts, int dim, ewb_tensor **out);
int ewb_pad(ewb_tensor *t, int npairs, const int64_t *pads, double value, ewb_tensor **out);
    /* pads = {last_lo, last_hi, prev_lo, prev_hi, ...} as torch.nn.functional.pad */
int ewb_gather(ewb_tensor *t, int dim, ewb_tensor *index, ewb_tensor **out);
int ewb_index_select(ewb_tensor *t, int dim, ewb_tensor *index, ewb_tensor **out);
int ewb_where(ewb_tensor *cond, ewb_tensor *a, ewb_tensor *b, ewb_tensor **out);
int ewb_masked_fill(ewb_tensor *t, ewb_tensor *mask, double value, ewb_tensor **out);

/* ---- elementwise (broadcasting) ---- */
int ewb_add(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out);
int ewb_sub(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out);
int ewb_mul(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out);
int ewb_div(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out);
int ewb_maximum(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out);
int ewb_minimum(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out);
int ewb_add_scalar(ewb_tensor *a, double s, ewb_tensor **out);
int ewb_mul_scalar(ewb_tensor *a, double s, ewb_tensor **out);
int ewb_rdiv_scalar(ewb_tensor *a, double s, ewb_tensor **out);  /* s / a */
/* comparisons give bool tensors and are not differentiable; op: 0 eq 1 ne 2 lt 3 le 4 gt 5 ge */
int ewb_compare(ewb_tensor *a, ewb_tensor *b, int op, ewb_tensor **out);
int ewb_compare_scalar(ewb_tensor *a, double s, int op, ewb_tensor **out);
int ewb_logical_not(ewb_tensor *a, ewb_tensor **out);

/* ---- unary math ---- */
int ewb_neg(ewb_tensor *a, ewb_tensor **out);
int ewb_exp(ewb_tensor *a, ewb_tensor **out);
int ewb_log(ewb_tensor *a, ewb_tensor **out);
int ewb_sqrt(ewb_tensor *a, ewb_tensor **out);
int ewb_rsqrt(ewb_tensor *a, ewb_tensor **out);
int ewb_abs(ewb_tensor *a, ewb_tensor **out);
int ewb_pow(ewb_tensor *a, double p, ewb_tensor **out);
int ewb_clamp(ewb_tensor *a, double lo, double hi, ewb_tensor **out); /* +-inf: no bound */
int ewb_tanh(ewb_tensor *a, ewb_tensor **out);
int ewb_sigmoid(ewb_tensor *a, ewb_tensor **out);
int ewb_relu(ewb_tensor *a, ewb_tensor **out);
int ewb_gelu(ewb_tensor *a, int tanh_approx, ewb_tensor **out);
int ewb_silu(ewb_tensor *a, ewb_tensor **out);
int ewb_sin(ewb_tensor *a, ewb_tensor **out);
int ewb_cos(ewb_tensor *a, ewb_tensor **out);

/* ---- reductions; dims == NULL / ndims == 0 reduces over all dims ---- */
int ewb_sum(ewb_tensor *a, int ndims, const int *dims, int keepdim, ewb_tensor **out);
int ewb_mean(ewb_tensor *a, int ndims, const int *dims, int keepdim, ewb_tensor **out);
int ewb_var(ewb_tensor *a, int ndims, const int *dims, int correction, int keepdim, ewb_tensor **out);
int ewb_std(ewb_tensor *a, int ndims, const int *dims, int correction, int keepdim, ewb_tensor **out);
int ewb_max(ewb_tensor *a, int dim, int keepdim, ewb_tensor **values, ewb_tensor **indices);
int ewb_min(ewb_tensor *a, int dim, int keepdim, ewb_tensor **values, ewb_tensor **indices);
int ewb_argmax(ewb_tensor *a, int dim, int keepdim, ewb_tensor **out);
int ewb_logsumexp(ewb_tensor *a, int dim, int keepdim, ewb_tensor **out);

/* ---- linear algebra ---- */
int ewb_matmul(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out); /* (...,M,K)@(...,K,N), batch dims broadcast */
int ewb_linear(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, ewb_tensor **out); /* x (...,in), w (out,in), b (out) or NULL */

/* ---- convolution: x (B,Cin,L); w (Cout,Cin/groups,K) or, transposed, (Cin,Cout/groups,K) ---- */
int ewb_conv1d(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding,
               int dilation, int groups, ewb_tensor **out);
int ewb_conv_transpose1d(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding,
                         int output_padding, int dilation, int groups, ewb_tensor **out);

/* ---- normalisation and softmax ---- */
int ewb_layer_norm(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, double eps, ewb_tensor **out); /* over last dim */
int ewb_group_norm(ewb_tensor *x, int groups, ewb_tensor *w, ewb_tensor *b, double eps, ewb_tensor **out); /* x (B,C,...) */
int ewb_rms_norm(ewb_tensor *x, ewb_tensor *w, double eps, ewb_tensor **out); /* over last dim */
int ewb_softmax(ewb_tensor *x, int dim, ewb_tensor **out);
int ewb_log_softmax(ewb_tensor *x, int dim, ewb_tensor **out);

/* ---- neural-network ops ---- */
int ewb_embedding(ewb_tensor *weight, ewb_tensor *index, ewb_tensor **out); /* index i64/i32 */
int ewb_dropout(ewb_tensor *x, double p, int train, ewb_tensor **out);
/* logits (N,C), target (N) integer; ignore_index rows add nothing */
int ewb_cross_entropy(ewb_tensor *logits, ewb_tensor *target, int64_t ignore_index,
                      double label_smoothing, int reduction, ewb_tensor **out);
int ewb_bce_with_logits(ewb_tensor *x, ewb_tensor *target, int reduction, ewb_tensor **out);
int ewb_mse_loss(ewb_tensor *a, ewb_tensor *b, int reduction, ewb_tensor **out);
int ewb_l1_loss(ewb_tensor *a, ewb_tensor *b, int reduction, ewb_tensor **out);
int ewb_cosine_similarity(ewb_tensor *a, ewb_tensor *b, int dim, double eps, ewb_tensor **out);
int ewb_normalize(ewb_tensor *a, int dim, double eps, ewb_tensor **out); /* L2 */
/* q (...,T,D), k (...,S,D), v (...,S,Dv); mask bool broadcastable to (...,T,S), 1 = attend;
   scale <= 0 means 1/sqrt(D) */
int ewb_sdpa(ewb_tensor *q, ewb_tensor *k, ewb_tensor *v, ewb_tensor *mask, int causal,
             double scale, ewb_tensor **out);

/* ---- optimisers (in place, no autograd) ---- */
int ewb_adamw_step(ewb_tensor *param, ewb_tensor *grad, ewb_tensor *m, ewb_tensor *v, double lr,
                   double beta1, double beta2, double eps, double weight_decay, int64_t step);
int ewb_sgd_step(ewb_tensor *param, ewb_tensor *grad, ewb_tensor *buf, double lr, double momentum,
                 double dampening, double weight_decay, int nesterov);
int ewb_grad_norm(int n, ewb_tensor *const *grads, double *norm); /* global L2 norm */
int ewb_ema_update(ewb_tensor *ema, ewb_tensor *param, double decay); /* ema = d*ema + (1-d)*param */
/* ---- HDF5 tensors (core/h5.c): datasets addressed by path, groups created as needed ---- */
int ewb_h5_write(const char *file, const char *name, const ewb_tensor *t, int truncate);
int ewb_h5_read(const char *file, const char *name, ewb_tensor **out);
int ewb_h5_list(const char *file, char *buf, int64_t n); /* dataset paths, one per line */
/* ---- simulator (core/sim.c): ECGSYN on a 3-D dipole, 12 leads in mV ---- */
typedef struct ewb_sim_config {
    double fs;        /* Hz */
    double seconds;
    double hr_mean;   /* bpm */
    double hr_std;    /* bpm, beat-to-beat variability */
    double lf_hf;     /* LF/HF power ratio of the RR spectrum (0.5) */
    uint64_t seed;
    uint64_t index;   /* record number: (seed, index) fixes the record */
} ewb_sim_config;
/* ecg (12, round(fs*seconds)) in lead order I II III aVR aVL aVF V1..V6;
   rpeaks (n) i64 sample positions of the R waves (may be NULL) */
int ewb_sim_ecg(const ewb_sim_config *cfg, ewb_tensor **ecg, ewb_tensor **rpeaks);
const char *ewb_lead_name(int i);
/* ECGSYN's RR tachogram alone: n RR intervals (s) sampled at 1 Hz */
int ewb_sim_rr(ewb_tensor **out, int64_t n, double hr_mean, double hr_std, double lf_hf, uint64_t seed);
/* ---- WFDB records and annotations (core/wfdb.c) ---- */

/* (end of WFDB) */

/* ---- signal processing: filters, R peaks, delineation (core/signal.c) ---- */

/* (end of signal processing) */

/* ---- ECG datasets in HDF5 (core/dataset.c) ---- */

/* (end of datasets) */

/* ---- figures with cairo (core/plot.c) ---- */

/* (end of figures) */

/* ---- event loop, jobs, checkpoints (core/loop.c, core/checkpoint.c) ---- */
/* The loop (libuv) lives on the thread that runs the Lua scheduler
   (lua/ecgwb/loop.lua). Nothing calls into Lua: timers and finished work
   queue (kind, id) events that the scheduler drains with ewb_loop_next_event. */
enum { EWB_EVENT_TIMER = 1, EWB_EVENT_WORK = 2 };
typedef struct ewb_event { int kind; int status; int64_t id; } ewb_event;
int ewb_loop_run(int wait);              /* one libuv iteration; wait = 1 blocks until something happens */
int ewb_loop_next_event(ewb_event *ev);  /* 1 and the oldest event, or 0 if none */
void ewb_loop_wakeup(void);              /* ends a blocked ewb_loop_run; async-signal-safe */
/* Ctrl-C: the host notes each one (async-signal-safe); the scheduler takes it
   and delivers it to the foreground at a safe point. foreground = 1 while the
   foreground's own Lua code runs, 0 while the scheduler waits or runs tasks */
void ewb_loop_set_foreground(int flag);
int ewb_loop_foreground(void);
int ewb_loop_note_interrupt(void);       /* the number of Ctrl-Cs not yet taken */
int ewb_loop_take_interrupt(void);       /* 1 if any was noted, and clears them */
typedef struct ewb_timer ewb_timer;
/* EWB_EVENT_TIMER with id after ms, then every repeat_ms (0: once) */
int ewb_timer_start(ewb_timer **out, int64_t id, double ms, double repeat_ms);
void ewb_timer_free(ewb_timer *t);       /* stops it; NULL is fine */
/* slow C work on the one worker thread, in submission order; EWB_EVENT_WORK
   with id (and status 0 or -1) when done */
enum { EWB_WORK_SLEEP = 0, EWB_WORK_H5_READ = 1, EWB_WORK_H5_WRITE = 2, EWB_WORK_SIM_BATCH = 3,
       EWB_WORK_CALL = 4 };
enum { EWB_WORK_QUEUED = 0, EWB_WORK_RUNNING = 1, EWB_WORK_DONE = 2 };
typedef struct ewb_work_params {
    int kind;
    double ms;              /* SLEEP: milliseconds on the worker */
    const char *file;       /* H5_READ, H5_WRITE: copied at submit */
    const char *name;       /* H5_READ, H5_WRITE: dataset path, copied */
    ewb_tensor *tensor;     /* H5_WRITE: retained until the work is freed */
    int truncate;           /* H5_WRITE */
    ewb_sim_config sim;     /* SIM_BATCH: records sim.index .. sim.index + count - 1 */
    int64_t count;          /* SIM_BATCH: result f32 (count, 12, L) */
    int (*fn)(void *arg);   /* CALL: a C function (never Lua), 0 or -1 + ewb_last_error */
    void *arg;              /* CALL: owned by the caller until the work is done */
} ewb_work_params;
typedef struct ewb_work ewb_work;
int ewb_work_submit(ewb_work **out, const ewb_work_params *p, int64_t id);
int ewb_work_state(ewb_work *w);                     /* EWB_WORK_QUEUED, _RUNNING, _DONE */
int ewb_work_result(ewb_work *w, ewb_tensor **out);  /* once done: its status (error message
                                                        in ewb_last_error), *out its tensor or NULL */
int ewb_work_cancel(ewb_work *w);                    /* 1 if it was still queued (no event comes) */
void ewb_work_free(ewb_work *w);                     /* cancels if queued; safe while running */

/* (end of event loop) */

/* ---- differentiable beat synthesiser (kernels/beat.c) ---- */

/* (end of beat synthesiser) */
/* ffi:end */

#ifdef __cplusplus
}
#endif
#endif
