/* loader.c: the batch loader. Worker threads read records from an ecgwb
 * dataset (core/dataset.c) or gather them from in-memory tensors, augment
 * them and assemble (B, leads, samples) f32 batches plus labels and
 * per-record fields, while the caller trains.
 *
 * Threads. The workers are dedicated libuv threads (uv_thread_create, one
 * uv_mutex and two uv_conds), not jobs on libuv's shared thread pool: that
 * pool is global, 4 threads by default and shared with filesystem work, and a
 * loader keeps its threads busy for a whole run, which would starve it (see
 * DESIGN.md). The event loop plugs in through ewb_loader_set_async: each
 * finished batch calls uv_async_send on the loop's handle, whose callback
 * (on the loop thread) checks ewb_loader_ready and takes the batch with
 * ewb_loader_next, which then does not block. No Lua state is touched here.
 * The workers lower their own priority (nice 19) unless same_priority is
 * set: oneDNN's OpenMP threads already use every core, and an OpenMP region
 * waits for its slowest thread, so a worker preempting one of them costs the
 * step more than the worker's own CPU time.
 *
 * Order. Batches are numbered seq = 0, 1, ... across epochs; a worker claims
 * the lowest unclaimed seq, but only while fewer than `prefetch` batches are
 * claimed ahead of the caller, and files the result in slot seq % prefetch.
 * The caller takes slots in seq order. What a batch holds depends only on
 * (seed, epoch, position), never on which thread made it or when:
 *   - the order of epoch e is a Fisher-Yates permutation of the eligible
 *     records drawn from Philox keyed by hash(seed, e);
 *   - augmentation k of record r in epoch e draws from a counter-based
 *     stream (SplitMix64) keyed by hash(seed, e, r, k), counter from 0.
 *
 * Reading. Only signals are read per batch: labels, age, sex, patient_id and
 * split are read once at creation. A batch's records are sorted and runs of
 * consecutive record numbers are read with one call (an unshuffled loader
 * reads a whole batch at once) into the worker's own buffer, where they are
 * augmented in place. The dataset layer holds the single HDF5 mutex only
 * while it copies a record's stored chunk; inflating, unshuffling and int16
 * conversion run on the worker without it (ewb_dataset_read_into, see
 * core/dataset_internal.h), so workers decompress in parallel. Layouts that
 * path does not handle are read with H5Dread under the mutex.
 */
#define _GNU_SOURCE /* sincosf */
#include "internal.h"
#include "dataset_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

enum { SLOT_EMPTY = 0, SLOT_READY = 1, SLOT_ERROR = 2 };

typedef struct slot {
    int state;
    ewb_loader_batch b;
    char *err;
} slot;

typedef struct perm {
    int64_t epoch;
    int64_t *rec;      /* (n) record numbers in the epoch's order */
} perm;

struct ewb_loader {
    /* configuration, fixed after creation */
    ewb_dataset *ds;
    ewb_tensor *src_x, *src_y;      /* in-memory source: aliases of contiguous tensors */
    int64_t leads, samples, out_samples, nlabels;
    double fs;
    int64_t n;                      /* eligible records */
    int64_t *records;               /* (n) ascending record numbers */
    uint8_t *labels;                /* dataset: (N, nlabels) 0/1 */
    float *age;                     /* dataset: (N) each */
    int32_t *sex, *split;
    int64_t *pid;
    int64_t B, nb, total;           /* batch size, batches per epoch, batches overall */
    int shuffle;
    uint64_t seed;
    int64_t start_epoch;
    int naug;
    ewb_loader_aug *augs;
    int64_t depth;
    int nthreads;
    int same_priority;
    uv_thread_t *threads;
    int started;                    /* threads created */

    /* shared state, under mu */
    uv_mutex_t mu;
    uv_cond_t work_cv, ready_cv;
    int stop;
    int64_t claimed, taken;
    slot *slots;                    /* depth */
    perm *perms;
    int nperms, capperms;
    void *async;
    ewb_loader_stats st;
};

/* ---------------- random streams ---------------- */

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* the key of (seed, epoch, record, tag); record -1 is the epoch's permutation */
static uint64_t stream_key(uint64_t seed, int64_t epoch, int64_t record, int64_t tag) {
    uint64_t k = mix64(seed);
    k = mix64(k ^ (uint64_t)epoch);
    k = mix64(k ^ (uint64_t)record);
    return mix64(k ^ (uint64_t)tag);
}

/* Augmentation streams: SplitMix64 in counter mode (output n = mix(key + n*gamma)),
   also counter based and about five times cheaper than Philox per word, which
   matters for the noise (one draw per sample). The permutation uses Philox. */
typedef struct stream {
    uint64_t key, ctr;
    uint32_t hi;
    int has_hi;
} stream;

static void stream_init(stream *s, uint64_t key) { s->key = key, s->ctr = 0, s->has_hi = 0; }

static uint64_t next_u64(stream *s) { return mix64(s->key + 0x9E3779B97F4A7C15ull * ++s->ctr); }

static uint32_t next_u32(stream *s) {
    if (s->has_hi) { s->has_hi = 0; return s->hi; }
    uint64_t x = next_u64(s);
    s->hi = (uint32_t)(x >> 32), s->has_hi = 1;
    return (uint32_t)x;
}

/* uniform in (0, 1), 53 bits */
static double next_open01(stream *s) { return ((double)(next_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* uniform integer in [0, n) */
static int64_t next_below(stream *s, int64_t n) { return (int64_t)(next_u64(s) % (uint64_t)n); }

/* N(0, 1) by Marsaglia and Tsang's ziggurat (128 boxes); the tables are built once */
static uint32_t zig_k[128];
static float zig_w[128], zig_f[128];
static uv_once_t zig_once = UV_ONCE_INIT;

static void zig_init(void) {
    const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
    double dn = 3.442619855899, tn = dn, q = vn / exp(-0.5 * dn * dn);
    zig_k[0] = (uint32_t)((dn / q) * m1);
    zig_k[1] = 0;
    zig_w[0] = (float)(q / m1), zig_w[127] = (float)(dn / m1);
    zig_f[0] = 1.0f, zig_f[127] = (float)exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; i--) {
        dn = sqrt(-2.0 * log(vn / dn + exp(-0.5 * dn * dn)));
        zig_k[i + 1] = (uint32_t)((dn / tn) * m1);
        tn = dn;
        zig_f[i] = (float)exp(-0.5 * dn * dn);
        zig_w[i] = (float)(dn / m1);
    }
}

static float next_normal(stream *s) {
    for (;;) {
        int32_t hz = (int32_t)next_u32(s);
        int iz = hz & 127;
        uint32_t az = hz < 0 ? (uint32_t)(-(int64_t)hz) : (uint32_t)hz;
        float x = (float)hz * zig_w[iz];
        if (az < zig_k[iz]) return x;   /* inside the box: 99% of draws */
        if (iz == 0) {                  /* the tail beyond r */
            const double r = 3.442619855899;
            double tx, ty;
            do {
                tx = -log(next_open01(s)) / r;
                ty = -log(next_open01(s));
            } while (ty + ty < tx * tx);
            return (float)(hz > 0 ? r + tx : -r - tx);
        }
        if (zig_f[iz] + (float)next_open01(s) * (zig_f[iz - 1] - zig_f[iz]) < expf(-0.5f * x * x)) return x;
    }
}

/* ---------------- augmentations ---------------- */

/* A record in work: rows of x with stride `stride`, the current window
   [off, off + len) of each row. */
typedef struct rec {
    float *x;
    int64_t leads, stride, off, len;
} rec;

static void aug_crop(rec *r, const ewb_loader_aug *a, stream *s) {
    int64_t start = next_below(s, r->len - a->length + 1);
    r->off += start;
    r->len = a->length;
}

static void aug_lead_mask(rec *r, const ewb_loader_aug *a, stream *s) {
    int64_t kept = 0;
    unsigned char drop[r->leads];
    for (int64_t l = 0; l < r->leads; l++) {
        drop[l] = next_open01(s) < a->p;
        kept += !drop[l];
    }
    if (kept == 0) drop[next_below(s, r->leads)] = 0;
    for (int64_t l = 0; l < r->leads; l++)
        if (drop[l]) memset(r->x + l * r->stride + r->off, 0, (size_t)r->len * sizeof(float));
}

static void aug_noise(rec *r, const ewb_loader_aug *a, stream *s) {
    double sigma = a->sigma;
    if (!(sigma > 0)) { /* from the SNR: signal power = mean square over the whole record */
        double p = 0;
        for (int64_t l = 0; l < r->leads; l++) {
            const float *row = r->x + l * r->stride + r->off;
            for (int64_t t = 0; t < r->len; t++) p += (double)row[t] * row[t];
        }
        p /= (double)(r->leads * r->len);
        sigma = sqrt(p / pow(10.0, a->snr_db / 10.0));
    }
    float sg = (float)sigma;
    for (int64_t l = 0; l < r->leads; l++) {
        float *row = r->x + l * r->stride + r->off;
        for (int64_t t = 0; t < r->len; t++) row[t] += sg * next_normal(s);
    }
}

static void aug_wander(rec *r, const ewb_loader_aug *a, stream *s, double fs) {
    for (int64_t l = 0; l < r->leads; l++) {
        float *row = r->x + l * r->stride + r->off;
        for (int64_t c = 0; c < a->count; c++) {
            double amp = a->amplitude * next_open01(s);
            double f = a->fmin + (a->fmax - a->fmin) * next_open01(s);   /* Hz */
            double ph = 2 * M_PI * next_open01(s);
            double w = 2 * M_PI * f / fs, cw = cos(w), sw = sin(w);   /* rotation per sample */
            double re = cos(ph), im = sin(ph);
            for (int64_t t = 0; t < r->len; t++) {
                row[t] += (float)(amp * im);
                double re2 = re * cw - im * sw;
                im = im * cw + re * sw;
                re = re2;
            }
        }
    }
}

static void aug_scale(rec *r, const ewb_loader_aug *a, stream *s) {
    float k = (float)(a->lo + (a->hi - a->lo) * next_open01(s));
    for (int64_t l = 0; l < r->leads; l++) {
        float *row = r->x + l * r->stride + r->off;
        for (int64_t t = 0; t < r->len; t++) row[t] *= k;
    }
}

/* y[t] = x[t - k]: circular, or zero where t - k falls outside; tmp holds len floats */
static void aug_shift(rec *r, const ewb_loader_aug *a, stream *s, float *tmp) {
    int64_t k = next_below(s, 2 * a->max_shift + 1) - a->max_shift, n = r->len;
    if (k == 0) return;
    int64_t a_ = k > 0 ? k : -k;
    if (a_ > n) a_ = n;
    for (int64_t l = 0; l < r->leads; l++) {
        float *row = r->x + l * r->stride + r->off;
        memcpy(tmp, row, (size_t)n * sizeof(float));
        if (a->circular) {
            int64_t c = ((k % n) + n) % n;   /* row[t] = tmp[(t - c) mod n] */
            memcpy(row + c, tmp, (size_t)(n - c) * sizeof(float));
            memcpy(row, tmp + n - c, (size_t)c * sizeof(float));
        } else if (k > 0) {                  /* right: zeros enter at the start */
            memset(row, 0, (size_t)a_ * sizeof(float));
            memcpy(row + a_, tmp, (size_t)(n - a_) * sizeof(float));
        } else {
            memcpy(row, tmp + a_, (size_t)(n - a_) * sizeof(float));
            memset(row + n - a_, 0, (size_t)a_ * sizeof(float));
        }
    }
}

/* augments one record (leads, samples) in x and writes the final window to dst (leads, out_samples) */
static void process_record(const ewb_loader *ld, float *x, int64_t epoch, int64_t record, float *dst, float *tmp) {
    rec r = {x, ld->leads, ld->samples, 0, ld->samples};
    for (int k = 0; k < ld->naug; k++) {
        const ewb_loader_aug *a = &ld->augs[k];
        stream s;
        stream_init(&s, stream_key(ld->seed, epoch, record, k + 1));
        switch (a->kind) {
        case EWB_AUG_CROP: aug_crop(&r, a, &s); break;
        case EWB_AUG_LEAD_MASK: aug_lead_mask(&r, a, &s); break;
        case EWB_AUG_NOISE: aug_noise(&r, a, &s); break;
        case EWB_AUG_WANDER: aug_wander(&r, a, &s, ld->fs); break;
        case EWB_AUG_SCALE: aug_scale(&r, a, &s); break;
        case EWB_AUG_SHIFT: aug_shift(&r, a, &s, tmp); break;
        }
    }
    for (int64_t l = 0; l < r.leads; l++)
        memcpy(dst + l * r.len, r.x + l * r.stride + r.off, (size_t)r.len * sizeof(float));
}

/* checks the augmentation list against the record length; sets *out_len */
static int check_augs(const ewb_loader_spec *sp, int64_t samples, double fs, int64_t *out_len) {
    int64_t len = samples;
    for (int64_t k = 0; k < sp->naug; k++) {
        const ewb_loader_aug *a = &sp->augs[k];
        switch (a->kind) {
        case EWB_AUG_CROP:
            if (a->length < 1 || a->length > len)
                return ewb_error("loader: augmentation %lld (crop): length %lld must be in 1..%lld (the record length there)",
                                 (long long)k + 1, (long long)a->length, (long long)len);
            len = a->length;
            break;
        case EWB_AUG_LEAD_MASK:
            if (!(a->p >= 0 && a->p <= 1))
                return ewb_error("loader: augmentation %lld (lead_mask): p = %g must be in [0, 1]", (long long)k + 1, a->p);
            break;
        case EWB_AUG_NOISE:
            if (!(a->sigma >= 0) || !isfinite(a->sigma) || (!(a->sigma > 0) && !isfinite(a->snr_db)))
                return ewb_error("loader: augmentation %lld (noise): want sigma >= 0 (mV), or sigma = 0 and a finite snr_db; got sigma %g, snr_db %g",
                                 (long long)k + 1, a->sigma, a->snr_db);
            break;
        case EWB_AUG_WANDER:
            if (!(fs > 0))
                return ewb_error("loader: augmentation %lld (wander) needs the sampling rate: give fs for in-memory signals", (long long)k + 1);
            if (!(a->amplitude >= 0) || !isfinite(a->amplitude) || !(a->fmin >= 0) || !(a->fmax >= a->fmin) || !(a->fmax < fs / 2) ||
                a->count < 1)
                return ewb_error("loader: augmentation %lld (wander): want amplitude >= 0, 0 <= fmin <= fmax < fs/2 = %g Hz and count >= 1; "
                                 "got amplitude %g, fmin %g, fmax %g, count %lld",
                                 (long long)k + 1, fs / 2, a->amplitude, a->fmin, a->fmax, (long long)a->count);
            break;
        case EWB_AUG_SCALE:
            if (!isfinite(a->lo) || !isfinite(a->hi) || a->lo > a->hi)
                return ewb_error("loader: augmentation %lld (scale): want finite lo <= hi, got lo %g, hi %g", (long long)k + 1, a->lo, a->hi);
            break;
        case EWB_AUG_SHIFT:
            if (a->max_shift < 0)
                return ewb_error("loader: augmentation %lld (shift): max_shift %lld must be >= 0", (long long)k + 1, (long long)a->max_shift);
            break;
        default:
            return ewb_error("loader: augmentation %lld has unknown kind %d (want EWB_AUG_CROP..EWB_AUG_SHIFT, 1..6)", (long long)k + 1, a->kind);
        }
    }
    *out_len = len;
    return 0;
}

/* ---------------- permutations ---------------- */

/* the order of `epoch` (called with mu held); NULL + error on OOM */
static const int64_t *epoch_order(ewb_loader *ld, int64_t epoch) {
    if (!ld->shuffle) return ld->records;
    for (int i = 0; i < ld->nperms; i++)
        if (ld->perms[i].epoch == epoch) return ld->perms[i].rec;
    /* epochs before the caller's are never needed again */
    int64_t oldest = ld->start_epoch + ld->taken / ld->nb;
    int j = 0;
    for (int i = 0; i < ld->nperms; i++) {
        if (ld->perms[i].epoch < oldest) free(ld->perms[i].rec);
        else ld->perms[j++] = ld->perms[i];
    }
    ld->nperms = j;
    if (ld->nperms == ld->capperms) {
        int cap = ld->capperms ? 2 * ld->capperms : 4;
        perm *p = realloc(ld->perms, (size_t)cap * sizeof *p);
        if (!p) { ewb_error("loader: out of memory"); return NULL; }
        ld->perms = p, ld->capperms = cap;
    }
    int64_t *rec = malloc((size_t)ld->n * sizeof *rec);
    if (!rec) { ewb_error("loader: out of memory for the order of %lld records", (long long)ld->n); return NULL; }
    memcpy(rec, ld->records, (size_t)ld->n * sizeof *rec);
    uint64_t key = stream_key(ld->seed, epoch, -1, 0);
    for (int64_t i = ld->n - 1; i > 0; i--) { /* Fisher-Yates; draw i is Philox block i */
        uint32_t w[4];
        ewb_philox(key, (uint64_t)i, w);
        int64_t k = (int64_t)(((uint64_t)w[0] << 32 | w[1]) % (uint64_t)(i + 1)), t = rec[i];
        rec[i] = rec[k], rec[k] = t;
    }
    ld->perms[ld->nperms++] = (perm){epoch, rec};
    return rec;
}

/* ---------------- making a batch (worker, without mu) ---------------- */

void ewb_loader_batch_free(ewb_loader_batch *b) {
    if (!b) return;
    ewb_tensor *ts[7] = {b->signals, b->index, b->labels, b->age, b->sex, b->patient_id, b->split};
    for (int i = 0; i < 7; i++) ewb_tensor_free(ts[i]);
    b->signals = b->index = b->labels = b->age = b->sex = b->patient_id = b->split = NULL;
}

typedef struct pos_rec { int64_t rec, pos; } pos_rec;

static int cmp_rec(const void *a, const void *b) {
    int64_t x = ((const pos_rec *)a)->rec, y = ((const pos_rec *)b)->rec;
    return x < y ? -1 : x > y;
}

typedef struct worker_buf {
    pos_rec *pr;        /* B */
    float *x;           /* (leads, samples) for in-memory sources; (B, leads, samples) for datasets */
    float *tmp;         /* samples */
    ewb_chunk_scratch sc;
} worker_buf;

/* gathers m elements of size esz from rows idx of src (row = esz * rowlen bytes) */
static void gather(void *dst, const void *src, size_t rowbytes, const pos_rec *pr, int64_t m) {
    for (int64_t k = 0; k < m; k++)
        memcpy((char *)dst + (size_t)pr[k].pos * rowbytes, (const char *)src + (size_t)pr[k].rec * rowbytes, rowbytes);
}

static ewb_tensor *empty_rows(int dtype, int64_t m, int64_t a, int64_t b, int ndim) {
    int64_t shape[3] = {m, a, b};
    return ewb_empty(dtype, ndim, shape);
}

static int make_batch(ewb_loader *ld, worker_buf *w, int64_t epoch, int64_t m, ewb_loader_batch *out) {
    ewb_loader_batch b = {0};
    b.size = m;
    int64_t rowlen = ld->leads * ld->samples, outlen = ld->leads * ld->out_samples;
    b.signals = empty_rows(EWB_DTYPE_F32, m, ld->leads, ld->out_samples, 3);
    b.index = empty_rows(EWB_DTYPE_I64, m, 0, 0, 1);
    if (!b.signals || !b.index) goto fail;
    int64_t *idx = ewb_tensor_data(b.index);
    for (int64_t k = 0; k < m; k++) idx[w->pr[k].pos] = w->pr[k].rec;
    float *out_x = ewb_f32(b.signals);
    if (ld->ds) {
        qsort(w->pr, (size_t)m, sizeof *w->pr, cmp_rec);
        for (int64_t k = 0; k < m;) {
            int64_t e = k + 1;
            while (e < m && w->pr[e].rec == w->pr[e - 1].rec + 1) e++;
            if (ewb_dataset_read_into(ld->ds, w->pr[k].rec, e - k, w->x, &w->sc) != 0) goto fail;
            for (int64_t j = k; j < e; j++)
                process_record(ld, w->x + (j - k) * rowlen, epoch, w->pr[j].rec, out_x + w->pr[j].pos * outlen, w->tmp);
            k = e;
        }
        if (ld->nlabels > 0 || ld->labels) {
            if (!(b.labels = empty_rows(EWB_DTYPE_BOOL, m, ld->nlabels, 0, 2))) goto fail;
            gather(ewb_tensor_data(b.labels), ld->labels, (size_t)ld->nlabels, w->pr, m);
        }
        if (!(b.age = empty_rows(EWB_DTYPE_F32, m, 0, 0, 1)) || !(b.sex = empty_rows(EWB_DTYPE_I32, m, 0, 0, 1)) ||
            !(b.patient_id = empty_rows(EWB_DTYPE_I64, m, 0, 0, 1)) || !(b.split = empty_rows(EWB_DTYPE_I32, m, 0, 0, 1)))
            goto fail;
        gather(ewb_tensor_data(b.age), ld->age, sizeof(float), w->pr, m);
        gather(ewb_tensor_data(b.sex), ld->sex, sizeof(int32_t), w->pr, m);
        gather(ewb_tensor_data(b.patient_id), ld->pid, sizeof(int64_t), w->pr, m);
        gather(ewb_tensor_data(b.split), ld->split, sizeof(int32_t), w->pr, m);
    } else {
        const float *sx = ewb_f32(ld->src_x);
        for (int64_t k = 0; k < m; k++) {
            memcpy(w->x, sx + w->pr[k].rec * rowlen, (size_t)rowlen * sizeof(float));
            process_record(ld, w->x, epoch, w->pr[k].rec, out_x + w->pr[k].pos * outlen, w->tmp);
        }
        if (ld->src_y) {
            const ewb_tensor *y = ld->src_y;
            int64_t shape[EWB_MAX_DIMS];
            int nd = ewb_tensor_ndim(y);
            for (int d = 0; d < nd; d++) shape[d] = ewb_tensor_size(y, d);
            shape[0] = m;
            if (!(b.labels = ewb_empty(ewb_tensor_dtype(y), nd, shape))) goto fail;
            size_t rowbytes = ewb_dtype_size(ewb_tensor_dtype(y)) * (size_t)(ewb_tensor_numel(y) / ewb_tensor_size(y, 0));
            gather(ewb_tensor_data(b.labels), ewb_tensor_data(y), rowbytes, w->pr, m);
        }
    }
    *out = b;
    return 0;
fail:
    ewb_loader_batch_free(&b);
    return -1;
}

static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void worker(void *arg) {
    ewb_loader *ld = arg;
    worker_buf w = {0};
    w.pr = malloc((size_t)ld->B * sizeof *w.pr);
    w.x = malloc((size_t)((ld->ds ? ld->B : 1) * ld->leads * ld->samples) * sizeof(float));
    w.tmp = malloc((size_t)ld->samples * sizeof(float));
    int oom = !w.pr || !w.x || !w.tmp;
    /* nice 19 for this thread only (Linux): the compute threads keep the
       cores, and the worker runs on what they leave idle, or on everything
       while the caller waits for a batch */
    if (!ld->same_priority) setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    uv_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && !(ld->claimed < ld->total && ld->claimed < ld->taken + ld->depth))
            uv_cond_wait(&ld->work_cv, &ld->mu);
        if (ld->stop) break;
        int64_t seq = ld->claimed++;
        if (ld->claimed - ld->taken > ld->st.max_ahead) ld->st.max_ahead = ld->claimed - ld->taken;
        int64_t epoch = ld->start_epoch + seq / ld->nb, first = (seq % ld->nb) * ld->B;
        int64_t m = ld->n - first < ld->B ? ld->n - first : ld->B;
        int rc = -1;
        const int64_t *order = NULL;
        if (oom) ewb_error("loader: out of memory for a worker's buffers");
        else order = epoch_order(ld, epoch);
        if (order)
            for (int64_t k = 0; k < m; k++) w.pr[k] = (pos_rec){order[first + k], k};
        uv_mutex_unlock(&ld->mu);

        ewb_loader_batch b = {0};
        double t0 = thread_cpu();
        if (order) rc = make_batch(ld, &w, epoch, m, &b);
        b.epoch = epoch, b.batch = seq % ld->nb;
        char *err = NULL;
        if (rc != 0) {
            const char *e = ewb_last_error();
            size_t k = strlen(e) + 96;
            err = malloc(k);
            if (err) snprintf(err, k, "loader: epoch %lld, batch %lld: %s", (long long)epoch, (long long)(seq % ld->nb), e);
        }
        double dt = thread_cpu() - t0;

        uv_mutex_lock(&ld->mu);
        slot *s = &ld->slots[seq % ld->depth];
        s->state = rc == 0 ? SLOT_READY : SLOT_ERROR;
        s->b = b;
        s->err = err;
        ld->st.produced++;
        ld->st.work_seconds += dt;
        uv_cond_broadcast(&ld->ready_cv);
        if (ld->async) uv_async_send(ld->async);
    }
    uv_mutex_unlock(&ld->mu);
    free(w.pr);
    free(w.x);
    free(w.tmp);
    ewb_chunk_scratch_free(&w.sc);
}

/* ---------------- creation ---------------- */

static int load_dataset(ewb_loader *ld, const ewb_loader_spec *sp, int64_t *N) {
    EWB_TRY(ewb_dataset_open(&ld->ds, sp->file, 0));
    ewb_dataset_info info;
    EWB_TRY(ewb_dataset_info_get(ld->ds, &info));
    *N = info.n;
    ld->leads = info.leads, ld->samples = info.samples, ld->fs = info.fs;
    ewb_tensor *t = NULL;
    EWB_TRY(ewb_dataset_read_set_labels(ld->ds, sp->label_set, 0, info.n, &t));
    ld->nlabels = ewb_tensor_size(t, 1);
    ld->labels = malloc((size_t)(info.n * ld->nlabels) + 1);
    if (ld->labels) memcpy(ld->labels, ewb_tensor_data(t), (size_t)(info.n * ld->nlabels));
    ewb_tensor_free(t);
    if (!ld->labels) return ewb_error("loader: out of memory");
    const char *fields[4] = {"age", "sex", "patient_id", "split"};
    void **dst[4] = {(void **)&ld->age, (void **)&ld->sex, (void **)&ld->pid, (void **)&ld->split};
    for (int i = 0; i < 4; i++) {
        EWB_TRY(ewb_dataset_read_field(ld->ds, fields[i], 0, info.n, &t));
        size_t bytes = ewb_dtype_size(ewb_tensor_dtype(t)) * (size_t)info.n;
        *dst[i] = malloc(bytes + 8);
        if (*dst[i]) memcpy(*dst[i], ewb_tensor_data(t), bytes);
        ewb_tensor_free(t);
        if (!*dst[i]) return ewb_error("loader: out of memory");
    }
    return 0;
}

static int load_tensors(ewb_loader *ld, const ewb_loader_spec *sp, int64_t *N) {
    const ewb_tensor *x = sp->signals, *y = sp->labels;
    if (!x) return ewb_error("loader: give a dataset file or a signals tensor");
    EWB_TRY(ewb_check_alive("loader", x));
    if (ewb_tensor_dtype(x) != EWB_DTYPE_F32 || ewb_tensor_ndim(x) != 3)
        return ewb_error("loader: signals must be f32 (N, leads, samples), got %s", ewb_s(x));
    *N = ewb_tensor_size(x, 0);
    ld->leads = ewb_tensor_size(x, 1), ld->samples = ewb_tensor_size(x, 2), ld->fs = sp->fs;
    if (ld->leads < 1 || ld->samples < 1) return ewb_error("loader: signals %s have no samples", ewb_s(x));
    if (y) {
        EWB_TRY(ewb_check_alive("loader", y));
        if (ewb_tensor_ndim(y) < 1 || ewb_tensor_size(y, 0) != *N)
            return ewb_error("loader: labels %s must have one row per record of signals %s", ewb_s(y), ewb_s(x));
    }
    /* private aliases of contiguous data: the caller may free or dispose its tensors */
    ewb_tensor *c = ewb_contig_or_self((ewb_tensor *)x);
    if (!c) return -1;
    ld->src_x = ewb_alias(c);
    ewb_tensor_free(c);
    if (!ld->src_x) return -1;
    if (y) {
        c = ewb_contig_or_self((ewb_tensor *)y);
        if (!c) return -1;
        ld->src_y = ewb_alias(c);
        ewb_tensor_free(c);
        if (!ld->src_y) return -1;
    }
    return 0;
}

static int create(ewb_loader *ld, const ewb_loader_spec *sp) {
    if (sp->batch_size < 1) return ewb_error("loader: batch_size must be >= 1, got %lld", (long long)sp->batch_size);
    if (sp->epochs < 0 || sp->start_epoch < 0 || sp->prefetch < 0 || sp->threads < 0 || sp->naug < 0 || (sp->naug > 0 && !sp->augs))
        return ewb_error("loader: epochs, start_epoch, prefetch, threads and naug must be >= 0 (and augs given when naug > 0)");
    if (sp->threads > 64) return ewb_error("loader: %lld threads is too many (at most 64)", (long long)sp->threads);
    if (sp->nsplits > 0 && !sp->file) return ewb_error("loader: the split filter needs a dataset file");
    int64_t N = 0;
    if (sp->file) EWB_TRY(load_dataset(ld, sp, &N));
    else EWB_TRY(load_tensors(ld, sp, &N));
    EWB_TRY(check_augs(sp, ld->samples, ld->fs, &ld->out_samples));

    ld->records = malloc((size_t)(N ? N : 1) * sizeof *ld->records);
    if (!ld->records) return ewb_error("loader: out of memory");
    for (int64_t i = 0; i < N; i++) {
        int keep = sp->nsplits <= 0;
        for (int64_t k = 0; !keep && k < sp->nsplits; k++) keep = ld->split[i] == sp->splits[k];
        if (keep) ld->records[ld->n++] = i;
    }
    char what[300];
    if (sp->file) snprintf(what, sizeof what, "'%s'%s", sp->file, sp->nsplits > 0 ? " after the split filter" : "");
    else snprintf(what, sizeof what, "signals %s", ewb_s(sp->signals));
    if (ld->n == 0) return ewb_error("loader: no records in %s", what);
    ld->B = sp->batch_size;
    ld->nb = sp->drop_last ? ld->n / ld->B : (ld->n + ld->B - 1) / ld->B;
    if (ld->nb == 0)
        return ewb_error("loader: batch_size %lld is larger than the %lld records of %s, and drop_last drops every batch",
                         (long long)ld->B, (long long)ld->n, what);
    ld->total = sp->epochs > 0 ? sp->epochs * ld->nb : INT64_MAX;
    ld->shuffle = sp->shuffle != 0;
    ld->seed = sp->seed;
    ld->start_epoch = sp->start_epoch;
    ld->nthreads = sp->threads ? (int)sp->threads : 2;
    ld->same_priority = sp->same_priority != 0;
    ld->depth = sp->prefetch ? sp->prefetch : 2 * ld->nthreads;
    ld->naug = (int)sp->naug;
    if (ld->naug) {
        ld->augs = malloc((size_t)ld->naug * sizeof *ld->augs);
        if (!ld->augs) return ewb_error("loader: out of memory");
        memcpy(ld->augs, sp->augs, (size_t)ld->naug * sizeof *ld->augs);
    }
    ld->slots = calloc((size_t)ld->depth, sizeof *ld->slots);
    ld->threads = calloc((size_t)ld->nthreads, sizeof *ld->threads);
    if (!ld->slots || !ld->threads) return ewb_error("loader: out of memory");
    for (int i = 0; i < ld->nthreads; i++) {
        int e = uv_thread_create(&ld->threads[i], worker, ld);
        if (e != 0) return ewb_error("loader: cannot start worker thread %d: %s", i + 1, uv_strerror(e));
        ld->started = i + 1;
    }
    return 0;
}

int ewb_loader_new(ewb_loader **out, const ewb_loader_spec *spec) {
    uv_once(&zig_once, zig_init);
    if (!out) return ewb_error("loader: out pointer is NULL");
    *out = NULL;
    if (!spec) return ewb_error("loader: spec is NULL");
    ewb_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return ewb_error("loader: out of memory");
    if (uv_mutex_init(&ld->mu) != 0) { free(ld); return ewb_error("loader: cannot create a mutex"); }
    uv_cond_init(&ld->work_cv);
    uv_cond_init(&ld->ready_cv);
    if (create(ld, spec) != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ewb_last_error());
        ewb_loader_close(ld);
        return ewb_error("%s", msg);
    }
    *out = ld;
    return 0;
}

/* ---------------- the caller's side ---------------- */

int ewb_loader_next(ewb_loader *ld, ewb_loader_batch *out) {
    if (!ld || !out) return ewb_error("loader_next: loader or out is NULL");
    memset(out, 0, sizeof *out);
    uv_mutex_lock(&ld->mu);
    if (ld->taken >= ld->total) {
        uv_mutex_unlock(&ld->mu);
        return 1;
    }
    slot *s = &ld->slots[ld->taken % ld->depth];
    if (s->state == SLOT_EMPTY) {
        double t0 = ewb_now();
        ld->st.waits++;
        while (s->state == SLOT_EMPTY) uv_cond_wait(&ld->ready_cv, &ld->mu);
        ld->st.wait_seconds += ewb_now() - t0;
    }
    int rc = 0;
    if (s->state == SLOT_ERROR) { /* stays: every later call reports it again */
        rc = ewb_error("%s", s->err ? s->err : "loader: a worker failed (out of memory for its message)");
    } else {
        *out = s->b;
        memset(&s->b, 0, sizeof s->b);
        s->state = SLOT_EMPTY;
        ld->taken++;
        ld->st.taken++;
        uv_cond_broadcast(&ld->work_cv);
    }
    uv_mutex_unlock(&ld->mu);
    return rc;
}

int ewb_loader_ready(ewb_loader *ld) {
    if (!ld) return 0;
    uv_mutex_lock(&ld->mu);
    int r = ld->taken >= ld->total || ld->slots[ld->taken % ld->depth].state != SLOT_EMPTY;
    uv_mutex_unlock(&ld->mu);
    return r;
}

int ewb_loader_set_async(ewb_loader *ld, void *uv_async) {
    if (!ld) return ewb_error("loader_set_async: loader is NULL");
    uv_mutex_lock(&ld->mu);
    ld->async = uv_async;
    uv_mutex_unlock(&ld->mu);
    return 0;
}

int ewb_loader_info_get(const ewb_loader *ld, ewb_loader_info *out) {
    if (!ld || !out) return ewb_error("loader_info: loader or out is NULL");
    *out = (ewb_loader_info){ld->n, ld->nb, ld->leads, ld->out_samples, ld->nlabels, ld->fs};
    if (ld->src_y) out->nlabels = ewb_tensor_ndim(ld->src_y) > 1 ? ewb_tensor_numel(ld->src_y) / ewb_tensor_size(ld->src_y, 0) : 1;
    return 0;
}

int ewb_loader_stats_get(ewb_loader *ld, ewb_loader_stats *out) {
    if (!ld || !out) return ewb_error("loader_stats: loader or out is NULL");
    uv_mutex_lock(&ld->mu);
    *out = ld->st;
    uv_mutex_unlock(&ld->mu);
    return 0;
}

int ewb_loader_close(ewb_loader *ld) {
    if (!ld) return 0;
    uv_mutex_lock(&ld->mu);
    ld->stop = 1;
    uv_cond_broadcast(&ld->work_cv);
    uv_cond_broadcast(&ld->ready_cv);
    uv_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->started; i++) uv_thread_join(&ld->threads[i]);
    for (int64_t i = 0; ld->slots && i < ld->depth; i++) {
        ewb_loader_batch_free(&ld->slots[i].b);
        free(ld->slots[i].err);
    }
    for (int i = 0; i < ld->nperms; i++) free(ld->perms[i].rec);
    free(ld->perms);
    free(ld->slots);
    free(ld->threads);
    free(ld->augs);
    free(ld->records);
    free(ld->labels);
    free(ld->age);
    free(ld->sex);
    free(ld->pid);
    free(ld->split);
    ewb_tensor_free(ld->src_x);
    ewb_tensor_free(ld->src_y);
    ewb_dataset_close(ld->ds);
    uv_cond_destroy(&ld->work_cv);
    uv_cond_destroy(&ld->ready_cv);
    uv_mutex_destroy(&ld->mu);
    free(ld);
    return 0;
}
