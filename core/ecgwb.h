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
/* ---- simulator (core/sim.c): ECGSYN on a 3-D dipole, 12 leads in mV ----
   A zero-filled config past `index` is a clean normal sinus record; each
   condition is switched on by its field. Conditions combine. */
enum { EWB_SIM_SINUS = 0, EWB_SIM_AFIB = 1, EWB_SIM_AFLT = 2 };             /* rhythm */
enum { EWB_SIM_BBB_NONE = 0, EWB_SIM_LBBB = 1, EWB_SIM_RBBB = 2 };         /* bbb */
enum { EWB_SIM_ANTERIOR = 1, EWB_SIM_INFERIOR = 2, EWB_SIM_LATERAL = 4 };  /* st_territory bits */
enum { EWB_SIM_NOISE_BW = 1, EWB_SIM_NOISE_PL = 2, EWB_SIM_NOISE_EMG = 4, EWB_SIM_NOISE_EM = 8 };
/* label bits of ewb_sim_truth.labels; names from ewb_sim_label_name() */
enum {
    EWB_SIM_L_NORM = 0, EWB_SIM_L_SR, EWB_SIM_L_SBRAD, EWB_SIM_L_STACH, EWB_SIM_L_AFIB, EWB_SIM_L_AFLT,
    EWB_SIM_L_1AVB, EWB_SIM_L_CLBBB, EWB_SIM_L_CRBBB, EWB_SIM_L_PVC, EWB_SIM_L_STE_ANT, EWB_SIM_L_STE_INF,
    EWB_SIM_L_STE_LAT, EWB_SIM_L_STD, EWB_SIM_L_INVT, EWB_SIM_L_LVH, EWB_SIM_L_LNGQT, EWB_SIM_L_LAD,
    EWB_SIM_L_RAD, EWB_SIM_L_LVOLT, EWB_SIM_NUM_LABELS
};
typedef struct ewb_sim_config {
    double fs;        /* Hz */
    double seconds;
    double hr_mean;   /* bpm (sinus and AF; AFLT's rate follows its flutter and block) */
    double hr_std;    /* bpm, beat-to-beat variability */
    double lf_hf;     /* LF/HF power ratio of the RR spectrum (0.5) */
    uint64_t seed;
    uint64_t index;   /* record number: (seed, index) fixes the record */
    /* conditions */
    int rhythm;            /* EWB_SIM_SINUS, _AFIB, _AFLT */
    int flutter_block;     /* AFLT conduction ratio 2, 3 or 4; 0 = variable (2-4) */
    double af_rr_cv;       /* AFIB coefficient of variation of RR; 0 = 0.2 */
    double pr_ms;          /* PR interval (ms), 0 = drawn normal (130-190); > 200 is 1AVB */
    int bbb;               /* EWB_SIM_BBB_NONE, _LBBB, _RBBB */
    double pvc_prob;       /* probability that a beat is a PVC, [0, 0.5] */
    int st_territory;      /* EWB_SIM_ANTERIOR | _INFERIOR | _LATERAL */
    double st_mv;          /* ST elevation (mV) at J+60 ms in the territory's weakest lead */
    double std_mv;         /* diffuse ST depression (mV) at J+60 ms in V5 */
    int t_inversion;       /* invert the T wave */
    double lvh_mv;         /* LVH: Sokolow-Lyon SV1 + max(RV5, RV6) in mV (>= 3.5), with strain; 0 = off */
    double qt_extra_ms;    /* delay of the T wave (ms): long QT */
    int set_axis;          /* 1: use axis_deg */
    double axis_deg;       /* frontal QRS axis (deg), [-180, 180] */
    double low_voltage_mv; /* max QRS peak-to-peak in limb leads (mV), (0, 0.5); 0 = off */
    /* noise, added per electrode (limb-lead identities hold for the noisy signal too) */
    int noise;             /* EWB_SIM_NOISE_* bits */
    double snr_bw, snr_pl, snr_emg, snr_em; /* dB: mean clean lead power / mean noise lead power */
    double pl_hz;          /* powerline frequency, 50 or 60; 0 = 50 */
    double age;            /* years; 0 = drawn (18-90) */
    int sex;               /* 1 male, 2 female; 0 = drawn */
} ewb_sim_config;
/* the record's ground truth; intervals of the dominant (non-PVC) beat, NaN when absent */
typedef struct ewb_sim_truth {
    double hr;             /* bpm, from the R peaks */
    double pr_ms, qrs_ms, qt_ms, qtc_ms; /* QTc by Bazett */
    double axis_deg;       /* frontal QRS axis from the net QRS areas in I and aVF */
    double atrial_rate;    /* /min: P waves (sinus), F waves (AFLT), dominant f wave (AFIB) */
    double qrs_limb_mv;    /* largest QRS peak-to-peak in the limb leads */
    double sokolow_mv;     /* SV1 + max(RV5, RV6) */
    double st_mv[12];      /* ST level at J+60 ms minus PR level, per lead (clean) */
    double age;
    int sex;               /* 1 male, 2 female */
    int n_beats, n_pvc;
    int flutter_block;     /* AFLT: 2-4, 0 = variable */
    uint32_t labels;       /* bit k set: label k (EWB_SIM_L_*) */
} ewb_sim_truth;
/* ecg (12, round(fs*seconds)) in lead order I II III aVR aVL aVF V1..V6;
   rpeaks (n) i64 sample positions of the R waves (may be NULL) */
int ewb_sim_ecg(const ewb_sim_config *cfg, ewb_tensor **ecg, ewb_tensor **rpeaks);
/* everything about one record; any output may be NULL. clean is ecg before
   noise; waves (beats, 9) i64 samples per beat: P on, P peak, P off, QRS on,
   R, QRS off, T peak, T off (-1: absent), beat type (0 normal, 1 PVC) */
int ewb_sim_record(const ewb_sim_config *cfg, ewb_tensor **ecg, ewb_tensor **clean, ewb_tensor **rpeaks,
                   ewb_tensor **waves, ewb_sim_truth *truth);
/* count records in parallel (OpenMP over records), all with cfg[0]'s fs and
   seconds: ecg and clean (count, 12, n) f32, rpeaks (count, max beats) i64
   padded with -1, truth[count]; outputs may be NULL */
int ewb_sim_batch(const ewb_sim_config *cfg, int64_t count, ewb_tensor **ecg, ewb_tensor **clean,
                  ewb_tensor **rpeaks, ewb_sim_truth *truth);
const char *ewb_sim_label_name(int k);
const char *ewb_lead_name(int i);
/* ECGSYN's RR tachogram alone: n RR intervals (s) sampled at 1 Hz */
int ewb_sim_rr(ewb_tensor **out, int64_t n, double hr_mean, double hr_std, double lf_hf, uint64_t seed);
/* ---- tokenizer (core/tokenizer.c) ---- */
/* Byte-level BPE in the GPT-2 manner. Text is split into special tokens
   (matched first, longest first, never split) and, between them, words
   (GPT-2's pre-tokenisation, hand-written: see core/tokenizer.c); each word's
   bytes are merged by the learned merges, lowest merge first. Ids: 0..255
   are the bytes, 256 + i is merge i (in the order learned), and the special
   tokens follow the merges in the order they were added, so
   vocab size = 256 + merges + specials. Conventional specials: "<pad>"
   (batch padding), "<bos>" and "<eos>" (EWB_TOK_BOS / EWB_TOK_EOS), "<ecg>",
   "<gen>". Decoding concatenates token bytes, so decode(encode(s)) == s for
   any bytes s (specials decode to their own text). */
typedef struct ewb_tokenizer ewb_tokenizer;
enum {
    EWB_TOK_BOS = 1,            /* encode: prepend <bos> */
    EWB_TOK_EOS = 2,            /* encode: append <eos> */
    EWB_TOK_NO_SPECIAL = 4,     /* encode: special-token text is plain text */
    EWB_TOK_PAD_LEFT = 8,       /* encode_batch: pad on the left (for generation) */
    EWB_TOK_SKIP_SPECIAL = 16   /* decode: leave special tokens out */
};
/* no merges yet; specials: n distinct non-empty strings (may be NULL if n == 0) */
int ewb_tokenizer_new(ewb_tokenizer **out, const char *const *specials, int64_t n);
void ewb_tokenizer_free(ewb_tokenizer *tk);   /* NULL is fine */
/* appends a special token; *id (may be NULL) gets its id */
int ewb_tokenizer_add_special(ewb_tokenizer *tk, const char *s, int64_t *id);
/* learns merges from n texts (lens[i] bytes, or NUL-terminated if lens is
   NULL) until 256 + merges + specials == vocab_size, or no pair of symbols is
   left; replaces earlier merges. Greedy by pair count over the corpus; ties go
   to the pair with the smaller (left id, right id). Deterministic. */
int ewb_tokenizer_train(ewb_tokenizer *tk, const char *const *texts, const int64_t *lens, int64_t n,
                        int64_t vocab_size);
int64_t ewb_tokenizer_vocab_size(const ewb_tokenizer *tk);
int64_t ewb_tokenizer_num_merges(const ewb_tokenizer *tk);
int64_t ewb_tokenizer_num_specials(const ewb_tokenizer *tk);
/* merge i (0-based) joins tokens *left and *right into token 256 + i */
int ewb_tokenizer_merge(const ewb_tokenizer *tk, int64_t i, int64_t *left, int64_t *right);
/* error "unknown special token" if s is not one */
int ewb_tokenizer_special_id(const ewb_tokenizer *tk, const char *s, int64_t *id);
/* the bytes of token id (not NUL-terminated; valid until the tokenizer changes) */
int ewb_tokenizer_token(const ewb_tokenizer *tk, int64_t id, const char **bytes, int64_t *len);
/* the lowest id whose bytes are exactly these, or -1 */
int64_t ewb_tokenizer_token_id(const ewb_tokenizer *tk, const char *bytes, int64_t len);
/* ids (n) i64; len < 0: NUL-terminated; flags EWB_TOK_BOS | EWB_TOK_EOS | EWB_TOK_NO_SPECIAL */
int ewb_tokenizer_encode(const ewb_tokenizer *tk, const char *text, int64_t len, int flags, ewb_tensor **out);
/* ids (n, T) i64 and mask (n, T) bool (1 = token, 0 = padding); T = max_len if
   max_len > 0 (longer encodings are cut to their first T ids), else the
   longest encoding. Padding is <pad>'s id, or 0 without a <pad>. lens may be
   NULL (NUL-terminated texts). flags as encode, plus EWB_TOK_PAD_LEFT. */
int ewb_tokenizer_encode_batch(const ewb_tokenizer *tk, const char *const *texts, const int64_t *lens,
                               int64_t n, int64_t max_len, int flags, ewb_tensor **ids, ewb_tensor **mask);
/* the bytes of ids (any shape, i64 or i32, read in row-major order) into buf;
   *needed = their length. buf is written only when n >= *needed (no NUL added).
   flags: EWB_TOK_SKIP_SPECIAL */
int ewb_tokenizer_decode(const ewb_tokenizer *tk, const ewb_tensor *ids, int flags, char *buf, int64_t n,
                         int64_t *needed);
/* a text file: "ecgwb-bpe 1", the specials, the merges as id pairs, a checksum (format in core/tokenizer.c) */
int ewb_tokenizer_save(const ewb_tokenizer *tk, const char *file);
int ewb_tokenizer_load(ewb_tokenizer **out, const char *file);
/* the pre-tokenisation alone: end offsets of the words of text (no special
   tokens); the first cap go to ends (may be NULL), *n = the number of words */
int ewb_pretokenize(const char *text, int64_t len, int64_t *ends, int64_t cap, int64_t *n);
/* (end of tokenizer) */
/* ---- metrics (core/metrics.c) ---- */
/* Evaluation metrics whose heavy numeric parts are in C; lua/ecgwb/metrics.lua
   (wb.metrics) adds the text metrics and documents every definition.
   Classification: scores (N) or (N, L) f32; labels the same shape, any dtype,
   nonzero = positive. out holds one double per label (column). */
/* AUROC as sklearn's roc_auc_score: Mann-Whitney U with average ranks for
   ties; NaN for a label whose N labels are all one class */
int ewb_auroc(ewb_tensor *scores, ewb_tensor *labels, double *out);
/* average precision as sklearn's average_precision_score: sum over distinct
   thresholds (descending) of (R_k - R_{k-1}) * P_k; NaN without positives */
int ewb_average_precision(ewb_tensor *scores, ewb_tensor *labels, double *out);
/* per label tp, fp, fn, tn (L, 4 int64) with predicted positive = score >= threshold */
int ewb_binary_counts(ewb_tensor *scores, ewb_tensor *labels, double threshold, int64_t *counts);
/* (k, k) i64: rows the true class, columns the predicted one; target and
   pred (N) i32/i64 classes in [0, k) */
int ewb_confusion_matrix(ewb_tensor *target, ewb_tensor *pred, int64_t k, ewb_tensor **out);
/* Eigen-decomposition of a symmetric n x n matrix a (row-major, doubles,
   destroyed): w (n) the eigenvalues ascending; v (n, n) row-major with the
   eigenvectors as COLUMNS (v may be NULL). ewb_sym_eig: Householder
   tridiagonalisation + implicit QL (EISPACK tred2/tql2), returns 0;
   ewb_sym_eig_jacobi: cyclic Jacobi rotations in parallel round-robin
   order, slower (about 10 n^3 flops a sweep) and the most accurate, returns
   the sweeps used. Both return -1 on error. */
int ewb_sym_eig(double *a, int64_t n, double *w, double *v);
int ewb_sym_eig_jacobi(double *a, int64_t n, double *w, double *v);
/* x (N, D) f32 -> mean (D) and unbiased covariance (D, D) (N-1 divisor, as
   numpy.cov) in doubles; cov may be NULL */
int ewb_mean_cov(ewb_tensor *x, double *mean, double *cov);
/* Frechet distance between N(mu1, s1) and N(mu2, s2), d dims:
   |mu1-mu2|^2 + tr s1 + tr s2 - 2 tr sqrt(sqrt(s1) s2 sqrt(s1)) */
int ewb_frechet_distance(const double *mu1, const double *s1, const double *mu2, const double *s2,
                         int64_t d, double *out);
/* FID between two sets of embeddings a (N1, D), b (N2, D) f32 */
int ewb_fid(ewb_tensor *a, ewb_tensor *b, double *out);
/* k-NN precision and recall (Kynkaanniemi et al. 2019): real (N1, D),
   fake (N2, D) f32, Euclidean distances, radius = distance to the k-th
   nearest other sample of the same set, inside = distance <= radius */
int ewb_knn_precision_recall(ewb_tensor *real, ewb_tensor *fake, int k, double *precision, double *recall);
/* rows of a, b (N, D) f32: mean over rows of max(w * cos(a_i, b_i), 0) */
int ewb_clip_score(ewb_tensor *a, ewb_tensor *b, double w, double *out);
/* ecg (..., 12, T) f32 in lead order I II III aVR aVL aVF V1..V6:
   mean |I + III - II| and mean |aVR + aVL + aVF| over all samples (mV) */
int ewb_einthoven_error(ewb_tensor *ecg, double *limb, double *augmented);
/* (end of metrics) */

/* ---- WFDB records and annotations (core/wfdb.c) ---- */
/* PhysioNet's WFDB format: a text header (record.hea) and binary signal files;
   MIT annotation files (record.atr). Digital samples are i32; an invalid
   sample (the format's invalid code, a null segment or a format-0 signal) is
   EWB_WFDB_INVALID in digital output and NaN in physical output, where
   physical = (digital - baseline) / gain in the signal's units. */
enum {
    EWB_WFDB_INVALID = -2147483647 - 1,
    EWB_WFDB_LOWRES = 0,   /* one value per frame: the mean of a signal's samples in it (rdsamp's default) */
    EWB_WFDB_HIGHRES = 1   /* max spf values per frame; slower signals repeat (rdsamp -H) */
};
typedef struct ewb_wfdb_signal {
    char file[256];      /* signal file, relative to the header's folder; "~" for none */
    int fmt;             /* 0 (null), 8, 16, 24, 32, 61, 80, 160, 212, 310, 311 */
    int spf;             /* samples per frame (>= 1) */
    int skew;            /* frames */
    int64_t offset;      /* bytes before sample 0 in the file */
    double gain;         /* ADC units per physical unit (200 when the header gives 0 or none) */
    int baseline;        /* ADC units at physical zero */
    char units[32];      /* "mV" unless given */
    int adcres, adczero, initval;
    int checksum;        /* as written; compared modulo 65536 */
    int has_checksum;    /* the header gave one */
    int blocksize;
    char desc[128];      /* signal name */
    int checksum_ok;     /* set by ewb_wfdb_read: 1 match, 0 mismatch, -1 not checked */
} ewb_wfdb_signal;
typedef struct ewb_wfdb_segment {
    char name[128];      /* record name of the segment, "~" for a null segment */
    int64_t nsamp;       /* frames (0 for a layout header) */
} ewb_wfdb_segment;
typedef struct ewb_wfdb_header {
    char name[128];
    int nsig;
    double fs;           /* frames per second (Hz) */
    double counter_freq; /* 0 if not given */
    double base_counter;
    int64_t nsamp;       /* frames; -1 if the header does not say */
    char base_time[32], base_date[32];  /* as written, "" if absent */
    int nseg;            /* 0: single segment */
    ewb_wfdb_segment *segs;   /* (nseg) */
    int variable_layout; /* multi-segment with a layout header (first segment of 0 frames) */
    ewb_wfdb_signal *sigs;    /* (nsig): for multi-segment records the layout's or first segment's */
    int ncomments;
    char **comments;     /* without the leading '#' */
} ewb_wfdb_header;
typedef struct ewb_wfdb_read_opts {
    int physical;        /* 1: f32 physical units; 0: i32 digital */
    int mode;            /* EWB_WFDB_LOWRES or EWB_WFDB_HIGHRES */
    int64_t start, stop; /* frames; stop <= 0 means the end */
    int strict_checksum; /* 1: a checksum mismatch is an error (else only checksum_ok = 0) */
} ewb_wfdb_read_opts;
/* record: path without ".hea" (a trailing ".hea" is accepted) */
int ewb_wfdb_header_read(const char *record, ewb_wfdb_header **out);
void ewb_wfdb_header_free(ewb_wfdb_header *h);
/* signal (nsig, n): n = frames (LOWRES) or frames * max spf (HIGHRES); opts may be NULL
   (physical LOWRES, whole record); *hdr (may be NULL) receives the header with checksum_ok set */
int ewb_wfdb_read(const char *record, const ewb_wfdb_read_opts *opts, ewb_tensor **signal,
                  ewb_wfdb_header **hdr);
/* writes record.hea and record.dat (all signals interleaved in h->sigs[0].fmt, 16 or 212;
   spf 1, no skew). signal (nsig, n): i32 digital, or f32 physical (digital =
   round(x * gain + baseline), NaN -> invalid). h->name, file, initval and checksum are
   filled in by the writer; h->nsamp is ignored. */
int ewb_wfdb_write(const char *record, const ewb_wfdb_header *h, const ewb_tensor *signal);
typedef struct ewb_wfdb_annotation {
    int64_t sample;
    int type;            /* 1..49 (N = 1, V = 5, + = 28, ...) */
    int subtype, chan, num;
    int aux_len;         /* bytes of aux as stored (MIT files count a trailing NUL) */
    char aux[256];       /* always NUL-terminated */
} ewb_wfdb_annotation;
int ewb_wfdb_rdann(const char *file, ewb_wfdb_annotation **out, int64_t *n); /* free with ewb_wfdb_ann_free */
void ewb_wfdb_ann_free(ewb_wfdb_annotation *a);
int ewb_wfdb_wrann(const char *file, const ewb_wfdb_annotation *a, int64_t n); /* sorted by sample (stable) */
const char *ewb_wfdb_ann_symbol(int type);   /* "N", "+", ...; NULL if not a type */
int ewb_wfdb_ann_code(const char *symbol);   /* -1 if unknown */
/* (end of WFDB) */

/* ---- signal processing: filters, R peaks, delineation (core/signal.c) ---- */
/* Signals are f32 tensors (..., samples): filters work along the last dim
   on any leading shape, e.g. (leads, samples). Frequencies in Hz, intervals
   in ms, positions 0-based samples. Filters are second-order sections in
   scipy's layout: one row per section, b0 b1 b2 a0(=1) a1 a2 (doubles). */
enum { EWB_BUTTER_LOWPASS = 0, EWB_BUTTER_HIGHPASS = 1, EWB_BUTTER_BANDPASS = 2, EWB_BUTTER_BANDSTOP = 3 };
/* Butterworth by the bilinear transform with prewarping (scipy.signal.butter):
   order 1..10, f2 used by band filters only; sos holds 6*order doubles;
   *nsec gets the number of sections */
int ewb_butter_sos(int order, int kind, double f1, double f2, double fs, double *sos, int *nsec);
/* one-section notch at f0 with quality q (scipy.signal.iirnotch) */
int ewb_notch_sos(double f0, double q, double fs, double *sos);
/* |H(exp(2 pi i f/fs))| of a cascade of sections */
double ewb_sos_gain(const double *sos, int nsec, double f, double fs);
/* zero_phase 0: causal (scipy sosfilt, zero initial state);
   1: forward-backward (scipy sosfiltfilt: odd padding of 3*(2*nsec+1)
   samples, steady-state initial conditions) */
int ewb_sos_filter(ewb_tensor *x, const double *sos, int nsec, int zero_phase, ewb_tensor **out);
int ewb_butter_filter(ewb_tensor *x, double fs, int kind, double f1, double f2, int order,
                      int zero_phase, ewb_tensor **out);
int ewb_notch_filter(ewb_tensor *x, double fs, double f0, double q, int zero_phase, ewb_tensor **out);
/* method 0: zero-phase Butterworth high-pass, order 2 at 0.5 Hz;
   method 1: subtract the baseline found by median filters of 200 ms then 600 ms */
int ewb_baseline_remove(ewb_tensor *x, double fs, int method, ewb_tensor **out);
/* windowed-sinc interpolation (Kaiser, beta 5, 10 zero crossings of the
   lower rate each side) to round(samples*fs_out/fs_in) samples */
int ewb_resample(ewb_tensor *x, double fs_in, double fs_out, ewb_tensor **out);
/* per row: (x - mean) / (std + eps), std with no correction */
int ewb_standardize(ewb_tensor *x, double eps, ewb_tensor **out);
/* Pan-Tompkins R peaks of x (samples) or (leads, samples): i64 positions */
int ewb_rpeaks(ewb_tensor *x, double fs, ewb_tensor **out);
typedef struct ewb_rhythm {
    int64_t nbeats;
    double hr_bpm;            /* 60000 / rr_mean_ms */
    double rr_mean_ms, rr_median_ms, sdnn_ms, rmssd_ms;
    double rr_cv;             /* sdnn / rr_mean */
} ewb_rhythm;
int ewb_rhythm_measures(ewb_tensor *rpeaks, double fs, ewb_rhythm *out);
typedef struct ewb_intervals {
    int64_t nbeats;
    double hr_bpm;
    double pr_ms, qrs_ms, qt_ms;          /* medians over beats; NaN if none */
    double qtc_bazett_ms, qtc_fridericia_ms;
    double axis_deg;                      /* frontal QRS axis; NaN without leads I and aVF */
    double p_fraction;                    /* beats with a P wave found */
} ewb_intervals;
/* Delineation of x (leads, samples) around the given R peaks. points (nbeats, 8)
   i64: P onset, P peak, P offset, QRS onset, R, QRS offset, T peak, T offset
   (-1 where not found). lead_i / lead_avf: rows of leads I and aVF for the
   axis, -1 for none. points may be NULL. */
int ewb_delineate(ewb_tensor *x, double fs, ewb_tensor *rpeaks, int lead_i, int lead_avf,
                  ewb_tensor **points, ewb_intervals *out);

/* (end of signal processing) */

/* ---- batch loader (core/loader.c) ---- */
/* Shuffled, augmented batches from an ecgwb dataset (or from in-memory
   tensors), assembled on dedicated worker threads while the caller trains.
   The order of epoch e is a permutation drawn from the counter-based RNG
   keyed by (seed, e), and every augmentation draws from a stream keyed by
   (seed, e, record, augmentation), so the batches are the same at any
   thread count and prefetch depth. At most `prefetch` batches are being
   made or wait ready ahead of the one the caller last took. */
typedef struct ewb_loader ewb_loader;
enum {
    EWB_AUG_CROP = 1,       /* random window of `length` samples */
    EWB_AUG_LEAD_MASK = 2,  /* zero each lead with probability p, keep at least one */
    EWB_AUG_NOISE = 3,      /* Gaussian noise of std sigma (signal units, mV), or at snr_db if sigma == 0 */
    EWB_AUG_WANDER = 4,     /* per lead, `count` sinusoids of amplitude U(0, amplitude), f U(fmin, fmax) Hz, random phase */
    EWB_AUG_SCALE = 5,      /* multiply the record by U(lo, hi) */
    EWB_AUG_SHIFT = 6       /* shift by an integer U[-max_shift, max_shift] samples, circular or zero padded */
};
typedef struct ewb_loader_aug {
    int kind;               /* EWB_AUG_* */
    int64_t length;         /* crop: samples kept */
    double p;               /* lead_mask */
    double sigma, snr_db;   /* noise */
    double amplitude, fmin, fmax; int64_t count;   /* wander (mV, Hz) */
    double lo, hi;          /* scale */
    int64_t max_shift; int circular;               /* shift */
} ewb_loader_aug;
typedef struct ewb_loader_spec {
    const char *file;                 /* an ecgwb dataset (data/README.md), or NULL: */
    const ewb_tensor *signals;        /* (N, leads, samples) f32 in memory */
    const ewb_tensor *labels;         /* (N, ...) any dtype, rows gathered as they are; or NULL */
    const char *label_set;            /* dataset: the label set to load (NULL or "": `labels`) */
    double fs;                        /* Hz; tensors only (the dataset has its own); wander needs it */
    int64_t batch_size;
    int shuffle;                      /* 0: records in order */
    uint64_t seed;
    int64_t epochs;                   /* epochs to produce; 0: unbounded */
    int64_t start_epoch;              /* first epoch number (0-based; to resume) */
    int drop_last;                    /* drop the last, short batch of each epoch */
    const int32_t *splits;            /* dataset: keep records whose split is one of these; NULL: all */
    int64_t nsplits;
    int64_t prefetch;                 /* batches ahead; 0: 2 * threads */
    int64_t threads;                  /* worker threads; 0: 2 */
    int same_priority;                /* 0: workers run at nice 19 (they take the CPU time compute leaves idle); 1: the caller's */
    int64_t naug;
    const ewb_loader_aug *augs;       /* applied in order to every record */
} ewb_loader_spec;
/* one batch; the caller owns the tensors (ewb_tensor_free each) */
typedef struct ewb_loader_batch {
    ewb_tensor *signals;              /* (B, leads, samples after crop) f32 */
    ewb_tensor *index;                /* (B) i64 record numbers, 0-based */
    ewb_tensor *labels;               /* dataset: (B, nlabels) bool; tensors: rows of `labels`; or NULL */
    ewb_tensor *age, *sex, *patient_id, *split;   /* dataset only (B): f32, i32, i64, i32; else NULL */
    int64_t epoch, batch, size;       /* epoch (0-based), batch within it (0-based), B */
} ewb_loader_batch;
typedef struct ewb_loader_info {
    int64_t records;                  /* per epoch, after the split filter */
    int64_t batches_per_epoch, leads, samples, nlabels;
    double fs;
} ewb_loader_info;
typedef struct ewb_loader_stats {
    int64_t taken;                    /* batches handed to the caller */
    int64_t produced;                 /* batches finished by the workers */
    int64_t max_ahead;                /* most batches ever claimed ahead of the caller (<= prefetch) */
    int64_t waits;                    /* next() calls that had to block */
    double wait_seconds;              /* time spent blocked in next() */
    double work_seconds;              /* worker CPU time spent making batches (all threads; not waits for the HDF5 lock) */
} ewb_loader_stats;
int ewb_loader_new(ewb_loader **out, const ewb_loader_spec *spec);
/* the next batch, blocking until it is ready: 0 ok, 1 no more (all epochs
   produced), -1 error (a worker's error is reported here, naming the record) */
int ewb_loader_next(ewb_loader *ld, ewb_loader_batch *out);
/* 1 if ewb_loader_next would not block (a batch, an error or the end is ready), else 0 */
int ewb_loader_ready(ewb_loader *ld);
/* from now on each finished batch also calls uv_async_send(async) on the
   worker thread (a uv_async_t* of the caller's loop; NULL stops it); the
   loop's callback then takes the batch with ewb_loader_next, which will not block */
int ewb_loader_set_async(ewb_loader *ld, void *uv_async);
int ewb_loader_info_get(const ewb_loader *ld, ewb_loader_info *out);
int ewb_loader_stats_get(ewb_loader *ld, ewb_loader_stats *out);
/* stops the workers (waiting for a record being read), frees every batch not
   taken; NULL is fine */
int ewb_loader_close(ewb_loader *ld);
void ewb_loader_batch_free(ewb_loader_batch *b);   /* frees the tensors of b, sets them NULL */

/* (end of batch loader) */

/* ---- ECG datasets in HDF5 (core/dataset.c) ---- */
/* The layout is described in data/README.md: `signals` (N, leads, samples)
   f32 (or int16 with a `gain` attribute), one record per chunk, shuffle +
   deflate, appendable; per-record `id`, `patient_id`, `age`, `sex`, `split`,
   `labels` (N, L) u8 with `label_names`, `reports` (variable-length UTF-8).
   Records are numbered from 0 here. */
typedef struct ewb_dataset ewb_dataset;
/* a named label set, stored as labels_<name> (N, nlabels) u8 and
   label_names_<name> (nlabels) strings; the root attribute `label_sets`
   lists the names. name: letters, digits and '_' */
typedef struct ewb_dataset_label_set {
    const char *name;
    int64_t nlabels;
    const char *const *label_names;
} ewb_dataset_label_set;
typedef struct ewb_dataset_spec {
    double fs;                        /* Hz */
    int64_t leads, samples;
    const char *const *lead_names;    /* leads strings, or NULL: the 12 standard names (leads == 12) or "1".."n" */
    const char *units;                /* physical unit of the signals, or NULL: "mV" */
    int64_t nlabels;
    const char *const *label_names;   /* nlabels strings */
    int int16;                        /* 1: store signals as int16 = round(x * gain) */
    double gain;                      /* int16 steps per unit (e.g. 1000 per mV) */
    int compression;                  /* deflate level 0..9 (0: none), or -1: the default (4) */
    int64_t nsets;                    /* named label sets besides `labels` (e.g. PTB-XL's SCP levels) */
    const ewb_dataset_label_set *sets;
} ewb_dataset_spec;
/* a batch of n records to append; every field but signals may be NULL */
typedef struct ewb_dataset_batch {
    const ewb_tensor *signals;        /* (n, leads, samples) f32 */
    const ewb_tensor *labels;         /* (n, nlabels) any dtype, nonzero = 1; NULL: none set */
    const ewb_tensor *patient_id;     /* (n) integer; NULL: -1 */
    const ewb_tensor *age;            /* (n) years; NULL: NaN (unknown) */
    const ewb_tensor *sex;            /* (n) 0 female, 1 male, -1 unknown; NULL: -1 */
    const ewb_tensor *split;          /* (n) fold or split number; NULL: 0 */
    const char *const *ids;           /* n UTF-8 strings; NULL: the record numbers */
    const char *const *reports;       /* n UTF-8 strings; NULL: "" */
    int64_t nsets;                    /* label sets given: set_labels[k] (n, that set's nlabels) for the */
    const char *const *set_names;     /* set named set_names[k]; sets not given (or NULL tensors): none set */
    const ewb_tensor *const *set_labels;
} ewb_dataset_batch;
typedef struct ewb_dataset_info {
    int64_t n, leads, samples, nlabels;
    double fs;
    int int16;                        /* signals stored as int16 */
    double gain;                      /* 1 for f32 */
    int writable;
    int64_t nsets;                    /* named label sets */
} ewb_dataset_info;
int ewb_dataset_create(ewb_dataset **out, const char *file, const ewb_dataset_spec *spec); /* truncates */
int ewb_dataset_open(ewb_dataset **out, const char *file, int writable);
int ewb_dataset_close(ewb_dataset *ds);   /* NULL is fine; flushes and frees */
int ewb_dataset_append(ewb_dataset *ds, const ewb_dataset_batch *b);
int ewb_dataset_info_get(const ewb_dataset *ds, ewb_dataset_info *out);
int64_t ewb_dataset_size(const ewb_dataset *ds);               /* records, -1 for NULL */
const char *ewb_dataset_file(const ewb_dataset *ds);
const char *ewb_dataset_units(const ewb_dataset *ds);
const char *ewb_dataset_lead_name(const ewb_dataset *ds, int64_t i);   /* NULL if out of range */
const char *ewb_dataset_label_name(const ewb_dataset *ds, int64_t i);
const char *ewb_dataset_set_name(const ewb_dataset *ds, int64_t k);                 /* NULL if out of range */
int64_t ewb_dataset_set_nlabels(const ewb_dataset *ds, int64_t k);                  /* -1 if out of range */
const char *ewb_dataset_set_label_name(const ewb_dataset *ds, int64_t k, int64_t i);
/* records [start, start+count): signals (count, leads, samples) f32 in units */
int ewb_dataset_read(ewb_dataset *ds, int64_t start, int64_t count, ewb_tensor **out);
/* labels (count, nlabels) bool */
int ewb_dataset_read_labels(ewb_dataset *ds, int64_t start, int64_t count, ewb_tensor **out);
/* labels of the named set (NULL or "": `labels`), (count, that set's nlabels) bool */
int ewb_dataset_read_set_labels(ewb_dataset *ds, const char *set, int64_t start, int64_t count, ewb_tensor **out);
/* a numeric per-record field, (count): "patient_id" i64, "age" f32, "sex" i32, "split" i32 */
int ewb_dataset_read_field(ewb_dataset *ds, const char *field, int64_t start, int64_t count, ewb_tensor **out);
/* a string field ("id" or "reports") of count records into buf, each string
   followed by a NUL byte; *needed = the bytes it takes. When *needed > n the
   buffer is incomplete: call again with a larger one. Integer ids come as decimal text. */
int ewb_dataset_read_strings(ewb_dataset *ds, const char *field, int64_t start, int64_t count, char *buf,
                             int64_t n, int64_t *needed);
/* rows [start, start+count) along dim 0 of a plain HDF5 dataset, as ewb_h5_read
   reads it (core/h5.c); for large arrays such as CODE-15%'s `tracings` */
int ewb_h5_read_rows(const char *file, const char *name, int64_t start, int64_t count, ewb_tensor **out);

/* (end of datasets) */

/* ---- figures with cairo (core/plot.c) ---- */
/* Where a figure goes. With `file` set, the extension picks the format
   (.png or .svg). With file == NULL the figure is returned in memory, in
   `format`: "png" (NULL means png), "svg", or "argb32": the raw pixels,
   height rows of width uint32 0xAARRGGBB values (stride 4*width). Free
   `data` with ewb_plot_free. width/height come back in pixels (PNG, argb32)
   or millimetres (SVG, whose user unit is the millimetre). */
typedef struct ewb_plot_output {
    const char *file;
    const char *format;
    double dpi;              /* raster pixels per inch; 0 = 100 */
    unsigned char *data;     /* out: memory output */
    int64_t nbytes;          /* out */
    double width, height;    /* out */
} ewb_plot_output;
void ewb_plot_free(void *data);

/* ECG figures on ECG paper: 1 mm minor and 5 mm major grid, a 1 mV
   calibration pulse at the start of each row, lead labels, a title line at
   the top and a caption line ("25 mm/s, 10 mm/mV, fs 500 Hz, ...") below.
   Signals are f32 in mV, leads × samples. Layout in mm (the tests rely on
   it): margins 10 left and right, 15 above the grid, 10 below it; the grid
   starts with a calibration area of cal = 5*ceil((0.2*speed + 5)/5) mm,
   after which x = (t - start)*speed; row r's baseline lies at
   15 + row*(r + 1/2) below the top edge. */
typedef struct ewb_plot_ecg_opts {
    double fs;                          /* Hz, > 0 */
    double speed;                       /* mm/s; 0 = 25 */
    double gain;                        /* mm/mV; 0 = 10 */
    double row;                         /* mm between baselines; 0 = 40 (12-lead) or 30 (strips) */
    double start;                       /* s: first instant shown */
    double seconds;                     /* strips: duration shown; 0 = to the end */
    const char *title;                  /* top line (report text, HR, ...); NULL = none */
    const char *const *leads;           /* one name per lead; NULL = I..V6 for 12 leads, else 1..L (none for 1) */
    const char *rhythm;                 /* 12-lead: rhythm-strip lead; NULL = "II", "" = none */
    const ewb_tensor *markers;          /* (m,) integer sample positions (0-based), or NULL */
    const char *const *marker_labels;   /* m short labels drawn above the marks, or NULL */
    const char *marker_lead;            /* lead the marks go on; NULL = every lead */
    const char *name1, *name2;          /* pair: names of the two records; NULL = "A", "B" */
    int overlay;                        /* pair: both records on one layout, in two colours */
} ewb_plot_ecg_opts;
/* the clinical 12-lead layout: 3 rows × 4 columns of 2.5 s (I II III |
   aVR aVL aVF | V1 V2 V3 | V4 V5 V6, each column showing its own 2.5 s of
   the record) plus a 10 s rhythm strip; ecg (12, n) */
int ewb_plot_ecg12(const ewb_tensor *ecg, const ewb_plot_ecg_opts *o, ewb_plot_output *out);
/* one strip per lead, stacked; ecg (n) or (L, n) */
int ewb_plot_strips(const ewb_tensor *ecg, const ewb_plot_ecg_opts *o, ewb_plot_output *out);
/* two 12-lead records (12, n) side by side (or overlaid, o->overlay), e.g. real and generated */
int ewb_plot_ecg_pair(const ewb_tensor *a, const ewb_tensor *b, const ewb_plot_ecg_opts *o,
                      ewb_plot_output *out);

/* line plots (training curves) and scatter plots. x may be NULL (x = 0..n-1);
   x and y are (n) tensors of any real dtype; NaN/Inf points (and y <= 0 on a
   log axis) are skipped and break the line. */
typedef struct ewb_plot_series {
    const ewb_tensor *x, *y;
    const char *name;                   /* legend entry; NULL = none */
} ewb_plot_series;
typedef struct ewb_plot_chart_opts {
    const char *title, *xlabel, *ylabel;
    int logy;                           /* log10 y axis */
    int points;                         /* draw dots, not lines (scatter) */
    double width, height;               /* mm; 0 = 160 × 100 */
} ewb_plot_chart_opts;
int ewb_plot_lines(const ewb_plot_series *series, int nseries, const ewb_plot_chart_opts *o,
                   ewb_plot_output *out);

/* (end of figures) */

/* ---- event loop, jobs, checkpoints (core/loop.c, core/checkpoint.c) ---- */
/* The loop (libuv) lives on the thread that runs the Lua scheduler
   (lua/ecgwb/loop.lua). Nothing calls into Lua: timers and finished work
   queue (kind, id) events that the scheduler drains with ewb_loop_next_event. */
enum { EWB_EVENT_TIMER = 1, EWB_EVENT_WORK = 2 };
typedef struct ewb_event { int kind; int status; int64_t id; } ewb_event;
/* one libuv iteration; wait = 1 blocks until something happens. Returns 0,
   or 1 (at once) when asked to wait while nothing active (a timer, work, a
   handle such as the REPL's stdin) could end the wait */
int ewb_loop_run(int wait);
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


/* -- checkpoints (core/checkpoint.c): a bag of named tensors and string
   attributes, written atomically (FILE.tmp, fsync, rename) with a CRC-32,
   verified on read. ewb_ckpt_write touches only the bag: it may run on a
   worker thread (add tensors with copy = 1 to snapshot them first). -- */
typedef struct ewb_ckpt ewb_ckpt;
int ewb_ckpt_new(ewb_ckpt **out);
void ewb_ckpt_free(ewb_ckpt *ck);
/* name: a dataset path ("model/enc.weight"); copy = 1 snapshots t's data now,
   copy = 0 keeps a reference (t must not change until the write is done) */
int ewb_ckpt_add(ewb_ckpt *ck, const char *name, ewb_tensor *t, int copy);
int ewb_ckpt_set_attr(ewb_ckpt *ck, const char *key, const char *text); /* replaces */
int ewb_ckpt_write(const ewb_ckpt *ck, const char *path);
/* the same as slow work on the loop's worker (EWB_WORK_CALL with fn =
   ewb_ckpt_write_job, arg = an ewb_ckpt_job the caller keeps alive) */
typedef struct ewb_ckpt_job { const ewb_ckpt *ck; char path[4096]; } ewb_ckpt_job;
int ewb_ckpt_write_job(void *job);
int ewb_ckpt_read(const char *path, ewb_ckpt **out);   /* every tensor and attribute, checksum verified */
int ewb_ckpt_verify(const char *path);                 /* 0 if path reads and its checksum matches */
int ewb_ckpt_count(const ewb_ckpt *ck);
const char *ewb_ckpt_name(const ewb_ckpt *ck, int i);  /* 0-based; NULL out of range */
int ewb_ckpt_tensor(const ewb_ckpt *ck, int i, ewb_tensor **out); /* a new reference */
const char *ewb_ckpt_attr(const ewb_ckpt *ck, const char *key);   /* NULL if absent */
uint32_t ewb_crc32(uint32_t crc, const void *data, size_t n);     /* zlib's CRC-32; start with 0 */

/* -- dashboard (core/dashboard.c): a read-only HTTP server on the loop. A GET
   queues EWB_EVENT_HTTP with the server's id and status = a request number;
   the scheduler reads the target and answers with the bytes to send (C
   copies them, writes, closes). C itself answers 400/405/414/431. -- */
enum { EWB_EVENT_HTTP = 3 };
/* host NULL = "127.0.0.1"; port 0 picks a free one, *bound_port tells which */
int ewb_dashboard_start(const char *host, int port, int64_t id, int *bound_port);
void ewb_dashboard_stop(void);                 /* closes the server and its connections */
const char *ewb_dashboard_path(int req);       /* the request's target; NULL if it is gone */
/* 1 if sent, 0 if the client left (or the server stopped), -1 on error */
int ewb_dashboard_respond(int req, int status, const char *content_type, const void *body, int64_t n);
/* (end of event loop) */

/* ---- differentiable beat synthesiser (kernels/beat.c) ---- */
/* One ECGSYN beat per row, in closed form (derivation in kernels/beat.c):
     z = (RR/2π) Σ_i a_i b_i² exp(−Δθ_i² / 2b_i²),  Δθ_i = φ − θ_i wrapped to (−π, π],
   at the n phases φ_k = −π + 2πk/n (k = 0..n−1) of one RR interval.
   a (B,5) amplitudes of P Q R S T -> out (B,n); or a (B,5,L), one amplitude
   per wave and lead -> out (B,L,n). b (B,5) widths (rad, nonzero), theta (B,5)
   angles (rad), rr (B) RR intervals (s, > 0). Differentiable in all four. */
int ewb_beat_synth(ewb_tensor *a, ewb_tensor *b, ewb_tensor *theta, ewb_tensor *rr, int64_t n, ewb_tensor **out);

/* (end of beat synthesiser) */
/* ffi:end */

#ifdef __cplusplus
}
#endif
#endif
