/* attention.c: scaled dot-product attention, forward and backward.
 *
 *   S = scale · Q Kᵀ            (…,T,S)   oneDNN matmul, Kᵀ a stride swap
 *   P = masked softmax(S)       (…,T,S)   fused C loop, saved for backward
 *   O = P V                     (…,T,Dv)  oneDNN matmul
 * Masking: key s is visible to query t when mask[…,t,s] is 1 (mask is bool,
 * broadcastable to (…,T,S), e.g. a key-padding mask (B,1,1,S)) and, with
 * causal, s <= t (top-left aligned, as torch's is_causal); both combine.
 * A query that sees no key gets P = 0, so O = 0 and no gradient (no NaN).
 * Backward, every product on oneDNN with transposes as strides:
 *   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),
 *   dQ = scale · dS K,  dK = scale · dSᵀ Q.
 * Batch dims of q, k and v broadcast. ewb_sdpa_ref (attention.h) is the
 * naive twin used by the tests.
 * Few queries (T <= SDPA_SMALL_T, a decode step with the KV cache): Q Kᵀ
 * and P V are plain loops over the rows of K and V instead of two batched
 * oneDNN matmuls with M = T, whose per-call overhead (tens of us) exceeds
 * the work (1 x S x 48 per head); same P, same backward. */
#include "attention.h"
#include "matmul.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* offset in the bool mask (a view broadcast to (…,T,S), nd dims whose batch
   dims are bshape) of row (b, t) */
static int64_t mask_row_off(const ewb_tensor *mask, int nd, const int64_t *bshape, int64_t b, int64_t t) {
    int64_t moff = 0, rem = b;
    for (int i = nd - 3; i >= 0; i--) { moff += (rem % bshape[i]) * mask->stride[i]; rem /= bshape[i]; }
    return moff + t * mask->stride[nd - 2];
}

/* row (S) of raw scores q·k for query t → softmax over the visible keys of
   scale·scores, in place; a row with no visible key becomes 0. m: NULL or
   the mask row, mss apart */
static void softmax_row(float *row, int64_t S, int64_t t, double scale, const uint8_t *m, int64_t mss, int causal) {
    int64_t last = causal ? (t < S - 1 ? t : S - 1) : S - 1; /* keys after `last` are hidden */
    float mx = -INFINITY;
    int any = 0;
    for (int64_t s = 0; s <= last; s++)
        if (!m || m[s * mss]) { any = 1; if (row[s] > mx) mx = row[s]; }
    if (!any) { memset(row, 0, sizeof(float) * (size_t)S); return; }
    float sc = (float)scale, off = sc * mx;
    double sum = 0;
    if (m) {
        for (int64_t s = 0; s <= last; s++) {
            float e = m[s * mss] ? expf(sc * row[s] - off) : 0.0f;
            row[s] = e;
            sum += e;
        }
    } else {
        for (int64_t s = 0; s <= last; s++) {
            float e = expf(sc * row[s] - off);
            row[s] = e;
            sum += e;
        }
    }
    for (int64_t s = last + 1; s < S; s++) row[s] = 0;
    float inv = (float)(1.0 / sum);
    for (int64_t s = 0; s <= last; s++) row[s] *= inv;
}

/* p (B,T,S) raw scores q·k → softmax_row of every row, in place. mask:
   NULL or a bool view broadcast to (…,T,S) with nd dims whose batch dims
   are bshape. */
static void masked_softmax(float *p, int64_t B, int64_t T, int64_t S, double scale, const ewb_tensor *mask, int nd,
                           const int64_t *bshape, int causal) {
    const uint8_t *m = mask ? (const uint8_t *)ewb_tensor_data(mask) : NULL;
    int64_t mss = mask ? mask->stride[nd - 1] : 0;
    #pragma omp parallel for if (B * T * S > 1 << 14)
    for (int64_t r = 0; r < B * T; r++) {
        int64_t b = r / T, t = r % T;
        softmax_row(p + r * S, S, t, scale, m ? m + mask_row_off(mask, nd, bshape, b, t) : NULL, mss, causal);
    }
}

/* element offset of batch index b (flat over the broadcast batch shape
   bshape, nd - 2 dims) in t, whose dims are left-padded to nd; dims of size
   1 repeat */
static int64_t batch_off(const ewb_tensor *t, int nd, const int64_t *bshape, int64_t b) {
    int64_t off = 0;
    for (int i = nd - 3; i >= 0; i--) {
        int64_t idx = b % bshape[i];
        b /= bshape[i];
        int j = i - (nd - t->ndim);
        if (j >= 0 && t->shape[j] != 1) off += idx * t->stride[j];
    }
    return off;
}

enum { SDPA_SMALL_T = 4 };

/* the small-T path, one pass per query row r = (b, t): P[r] = q kᵀ
   (unscaled, as the matmul gives it), softmax_row, then o[r] = P[r] v.
   q, k, v have unit stride in the last dim; S >= 1. Rows are shared among
   threads by ewb_run_blocks (core/threads.c), not an OpenMP region: a
   decode step's 8 rows take microseconds, and a region's closing barrier
   waits for a sleeping second thread (see matmul.c's GEMV). */
typedef struct {
    const ewb_tensor *q, *k, *v, *mask;
    float *P, *O;
    double scale;
    int causal, nd;
    const int64_t *bshape;
    int64_t T, S, D, Dv;
} attend_args;

/* q·k over D in 16 lanes (a GCC vector, one zmm register in attend_row's
   avx512f clone), the lanes summed as a tree of shuffles: a per-key
   horizontal sum written as a plain loop becomes 16 dependent scalar adds */
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));

static inline float dot_lanes(const float *a, const float *b, int64_t D) {
    f32x16 acc = {0}, x, y;
    int64_t d = 0;
    for (; d + 16 <= D; d += 16) {
        memcpy(&x, a + d, sizeof x);
        memcpy(&y, b + d, sizeof y);
        acc += x * y;
    }
    acc += __builtin_shuffle(acc, (i32x16){8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
    acc += __builtin_shuffle(acc, (i32x16){4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3});
    acc += __builtin_shuffle(acc, (i32x16){2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1});
    acc += __builtin_shuffle(acc, (i32x16){1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0});
    float sum = acc[0];
    for (; d < D; d++) sum += a[d] * b[d];
    return sum;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void attend_row(void *ctx, int64_t r) {
    const attend_args *a = ctx;
    const ewb_tensor *q = a->q, *k = a->k, *v = a->v, *mask = a->mask;
    int nd = a->nd;
    int64_t T = a->T, S = a->S, D = a->D, Dv = a->Dv;
    int64_t qt = q->stride[q->ndim - 2], ks = k->stride[k->ndim - 2], vs = v->stride[v->ndim - 2];
    int64_t b = r / T, t = r % T;
    const float *qr = ewb_f32(q) + batch_off(q, nd, a->bshape, b) + t * qt;  // (D)
    const float *kb = ewb_f32(k) + batch_off(k, nd, a->bshape, b);           // (S, D) rows ks apart
    const float *vb = ewb_f32(v) + batch_off(v, nd, a->bshape, b);           // (S, Dv) rows vs apart
    float *p = a->P + r * S;                                                // (S)
    float *o = a->O + r * Dv;                                               // (Dv)
    for (int64_t s = 0; s < S; s++) p[s] = dot_lanes(qr, kb + s * ks, D);
    const uint8_t *m = mask ? (const uint8_t *)ewb_tensor_data(mask) : NULL;
    softmax_row(p, S, t, a->scale, m ? m + mask_row_off(mask, nd, a->bshape, b, t) : NULL,
                mask ? mask->stride[nd - 1] : 0, a->causal);
    for (int64_t e = 0; e < Dv; e++) o[e] = 0;
    int64_t s = 0;
    for (; s + 4 <= S; s += 4) { /* four value rows per pass over o */
        const float *v0 = vb + s * vs, *v1 = v0 + vs, *v2 = v1 + vs, *v3 = v2 + vs;
        float p0 = p[s], p1 = p[s + 1], p2 = p[s + 2], p3 = p[s + 3];
        #pragma omp simd
        for (int64_t e = 0; e < Dv; e++) o[e] += p0 * v0[e] + p1 * v1[e] + p2 * v2[e] + p3 * v3[e];
    }
    for (; s < S; s++) {
        const float *vr = vb + s * vs, ps = p[s];
        #pragma omp simd
        for (int64_t e = 0; e < Dv; e++) o[e] += ps * vr[e];
    }
}

static void small_t_attend(const ewb_tensor *q, const ewb_tensor *k, const ewb_tensor *v, float *P, float *O,
                           double scale, const ewb_tensor *mask, int causal, int nd, const int64_t *bshape, int64_t B,
                           int64_t T, int64_t S, int64_t D, int64_t Dv) {
    attend_args a = {q, k, v, mask, P, O, scale, causal, nd, bshape, T, S, D, Dv};
    if (B * T * S * (D + Dv) > 1 << 15) ewb_run_blocks(attend_row, &a, B * T);
    else for (int64_t r = 0; r < B * T; r++) attend_row(&a, r);
}

/* shapes: q (…,T,D), k (…,S,D), v (…,S,Dv); fills the broadcast batch shape
   (nd-2 dims) followed by T, S in full */
static int sdpa_shapes(ewb_tensor *q, ewb_tensor *k, ewb_tensor *v, ewb_tensor *mask, int *ndp, int64_t *full) {
    const char *op = "sdpa";
    EWB_TRY(ewb_check_f32(op, q));
    EWB_TRY(ewb_check_f32(op, k));
    EWB_TRY(ewb_check_f32(op, v));
    if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2)
        return ewb_error("%s: q, k and v need at least 2 dims (…,T,D), got %s, %s, %s", op, ewb_s(q), ewb_s(k), ewb_s(v));
    int64_t D = q->shape[q->ndim - 1];
    if (k->shape[k->ndim - 1] != D)
        return ewb_error("%s: q %s and k %s differ in the last (head) dim", op, ewb_s(q), ewb_s(k));
    if (k->shape[k->ndim - 2] != v->shape[v->ndim - 2])
        return ewb_error("%s: k %s and v %s differ in the number of keys (dim -2)", op, ewb_s(k), ewb_s(v));
    if (D == 0) return ewb_error("%s: head dim of q %s is 0", op, ewb_s(q));
    int nd = q->ndim;
    if (k->ndim > nd) nd = k->ndim;
    if (v->ndim > nd) nd = v->ndim;
    const ewb_tensor *ts[3] = {q, k, v};
    for (int i = 0; i < nd - 2; i++) {
        full[i] = 1;
        for (int j = 0; j < 3; j++) {
            int d = i - (nd - ts[j]->ndim);
            int64_t sz = d >= 0 ? ts[j]->shape[d] : 1;
            if (sz != 1 && full[i] != 1 && sz != full[i])
                return ewb_error("%s: batch dims of q %s, k %s, v %s do not broadcast", op, ewb_s(q), ewb_s(k), ewb_s(v));
            if (sz != 1) full[i] = sz;
        }
    }
    full[nd - 2] = q->shape[q->ndim - 2];
    full[nd - 1] = k->shape[k->ndim - 2];
    if (mask) {
        EWB_TRY(ewb_check_alive(op, mask));
        if (mask->dtype != EWB_DTYPE_BOOL)
            return ewb_error("%s: mask must be bool (1 = may attend), got %s", op, ewb_s(mask));
        ewb_tensor *mv = ewb_broadcast_view(mask, nd, full);
        if (!mv) {
            char buf[160];
            int len = snprintf(buf, sizeof buf, "[");
            for (int i = 0; i < nd; i++) len += snprintf(buf + len, sizeof buf - len, i ? ",%lld" : "%lld", (long long)full[i]);
            snprintf(buf + len, sizeof buf - len, "]");
            return ewb_error("%s: mask %s does not broadcast to the scores (…,T,S) = %s", op, ewb_s(mask), buf);
        }
        ewb_tensor_free(mv);
    }
    *ndp = nd;
    return 0;
}

static int sdpa_backward(ewb_node *n) {
    ewb_tensor *q = n->saved[0], *k = n->saved[1], *v = n->saved[2], *P = n->saved[3]; // P (…,T,S)
    ewb_tensor *g = n->gout;                                                            // (…,T,Dv)
    ewb_tensor *gq = ewb_grad_slot(n, 0), *gk = ewb_grad_slot(n, 1), *gv = ewb_grad_slot(n, 2);
    int nd = P->ndim;
    int64_t T = P->shape[nd - 2], S = P->shape[nd - 1], Dv = g->shape[nd - 1], D = q->shape[q->ndim - 1];
    double scale = n->farg[0];
    if (ewb_tensor_numel(P) == 0 || Dv == 0) return 0;
    int64_t full[EWB_MAX_DIMS];
    memcpy(full, P->shape, sizeof full);
    int rc = 0;
    if (gv) { /* (…,S,Dv) += Pᵀ (…,S,T) @ dO (…,T,Dv) */
        ewb_tensor *pt = ewb_t_last2(P);
        full[nd - 2] = S; full[nd - 1] = Dv;
        rc = pt ? ewb_mm_accumulate(gv, pt, g, nd, full) : -1;
        ewb_tensor_free(pt);
    }
    if (rc || (!gq && !gk)) return rc;
    ewb_tensor *dP = ewb_empty(EWB_DTYPE_F32, nd, P->shape), *vt = ewb_t_last2(v); // (…,T,S), (…,Dv,S)
    if (!dP || !vt) { ewb_tensor_free(dP); ewb_tensor_free(vt); return -1; }
    rc = ewb_mm_raw(g, vt, dP, 0, NULL); /* dP = dO Vᵀ */
    ewb_tensor_free(vt);
    if (rc == 0) { /* dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)), in place in dP */
        float *dp = ewb_f32(dP);
        const float *p = ewb_f32(P);
        int64_t rows = ewb_tensor_numel(P) / S;
        #pragma omp parallel for if (rows * S > 1 << 15)
        for (int64_t r = 0; r < rows; r++) {
            float *d = dp + r * S;
            const float *pr = p + r * S;
            double dot = 0;
            for (int64_t s = 0; s < S; s++) dot += (double)d[s] * pr[s];
            for (int64_t s = 0; s < S; s++) d[s] = (float)(scale * pr[s] * (d[s] - dot));
        }
    }
    if (rc == 0 && gq) { /* (…,T,D) += dS (…,T,S) @ K (…,S,D) */
        full[nd - 2] = T; full[nd - 1] = D;
        rc = ewb_mm_accumulate(gq, dP, k, nd, full);
    }
    if (rc == 0 && gk) { /* (…,S,D) += dSᵀ (…,S,T) @ Q (…,T,D) */
        ewb_tensor *dst = ewb_t_last2(dP);
        full[nd - 2] = S; full[nd - 1] = D;
        rc = dst ? ewb_mm_accumulate(gk, dst, q, nd, full) : -1;
        ewb_tensor_free(dst);
    }
    ewb_tensor_free(dP);
    return rc;
}

int ewb_sdpa(ewb_tensor *q, ewb_tensor *k, ewb_tensor *v, ewb_tensor *mask, int causal, double scale, ewb_tensor **out) {
    const char *op = "sdpa";
    int nd = 0;
    int64_t full[EWB_MAX_DIMS]; // (…, T, S)
    EWB_TRY(sdpa_shapes(q, k, v, mask, &nd, full));
    int64_t D = q->shape[q->ndim - 1], Dv = v->shape[v->ndim - 1], T = full[nd - 2], S = full[nd - 1];
    if (!(scale > 0)) scale = 1 / sqrt((double)D);
    int64_t oshape[EWB_MAX_DIMS];
    memcpy(oshape, full, sizeof oshape);
    oshape[nd - 1] = Dv;
    ewb_tensor *P = ewb_empty(EWB_DTYPE_F32, nd, full), *o = ewb_empty(EWB_DTYPE_F32, nd, oshape);
    ewb_tensor *kt = ewb_t_last2(k), *mv = mask ? ewb_broadcast_view(mask, nd, full) : NULL; // (…,D,S)
    int rc = P && o && kt && (!mask || mv) ? 0 : -1;
    int64_t B = ewb_shape_numel(nd - 2, full);
    int small = T <= SDPA_SMALL_T && q->stride[q->ndim - 1] == 1 && k->stride[k->ndim - 1] == 1 &&
                v->stride[v->ndim - 1] == 1;
    if (rc == 0 && small && ewb_tensor_numel(P) > 0 && Dv > 0) {
        small_t_attend(q, k, v, ewb_f32(P), ewb_f32(o), scale, mv, causal, nd, full, B, T, S, D, Dv);
    } else {
        if (rc == 0 && ewb_tensor_numel(P) > 0) {
            rc = ewb_mm_raw(q, kt, P, 0, NULL);
            if (rc == 0) masked_softmax(ewb_f32(P), B, T, S, scale, mv, nd, full, causal);
        }
        if (rc == 0 && ewb_tensor_numel(o) > 0) {
            if (S == 0) memset(ewb_f32(o), 0, sizeof(float) * (size_t)ewb_tensor_numel(o));
            else rc = ewb_mm_raw(P, v, o, 0, NULL);
        }
    }
    ewb_tensor *ins[3] = {q, k, v};
    ewb_node *n = rc ? NULL : ewb_record(op, sdpa_backward, 3, ins, o);
    if (n) {
        ewb_save(n, 0, q);
        ewb_save(n, 1, k);
        ewb_save(n, 2, v);
        ewb_save(n, 3, P);
        n->farg[0] = scale;
    }
    ewb_tensor_free(P);
    ewb_tensor_free(kt);
    ewb_tensor_free(mv);
    return ewb_finish(op, o, rc, out);
}

/* ---------------- naive reference twin ---------------- */
/* element offset of t at a full index (nd dims, t left-padded; size-1 dims repeat) */
static int64_t ref_off(const ewb_tensor *t, int nd, const int64_t *idx) {
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) {
        int j = i + nd - t->ndim;
        if (t->shape[i] != 1) off += idx[j] * t->stride[i];
    }
    return off;
}

static int ref_run(const ewb_tensor *q, const ewb_tensor *k, const ewb_tensor *v, const ewb_tensor *mask, int causal,
                   double scale, ewb_tensor *out, const ewb_tensor *gout, ewb_tensor *gq, ewb_tensor *gk, ewb_tensor *gv) {
    const ewb_tensor *shp = out ? out : gout; // (…,T,Dv)
    int nd = shp->ndim;
    int64_t T = q->shape[q->ndim - 2], S = k->shape[k->ndim - 2], D = q->shape[q->ndim - 1], Dv = v->shape[v->ndim - 1];
    int64_t B = ewb_shape_numel(nd - 2, shp->shape);
    const float *Q = ewb_f32(q), *K = ewb_f32(k), *V = ewb_f32(v);
    const uint8_t *M = mask ? (const uint8_t *)ewb_tensor_data(mask) : NULL;
    double *p = malloc(sizeof(double) * (size_t)(S ? S : 1)), *dp = malloc(sizeof(double) * (size_t)(S ? S : 1));
    if (!p || !dp) { free(p); free(dp); return ewb_error("sdpa_ref: out of memory"); }
    int64_t idx[EWB_MAX_DIMS] = {0}; /* (batch…, row, col) */
    for (int64_t b = 0; b < B; b++) {
        int64_t rem = b;
        for (int i = nd - 3; i >= 0; i--) { idx[i] = rem % shp->shape[i]; rem /= shp->shape[i]; }
        for (int64_t t = 0; t < T; t++) {
            double mx = -INFINITY;
            for (int64_t s = 0; s < S; s++) {
                idx[nd - 2] = t; idx[nd - 1] = s;
                int vis = (!M || M[ref_off(mask, nd, idx)]) && (!causal || s <= t);
                double acc = 0;
                for (int64_t d = 0; d < D; d++) {
                    idx[nd - 2] = t; idx[nd - 1] = d;
                    double qv = Q[ref_off(q, nd, idx)];
                    idx[nd - 2] = s;
                    acc += qv * K[ref_off(k, nd, idx)];
                }
                p[s] = vis ? scale * acc : -INFINITY;
                if (p[s] > mx) mx = p[s];
            }
            double sum = 0;
            for (int64_t s = 0; s < S; s++) { p[s] = mx == -INFINITY ? 0 : exp(p[s] - mx); sum += p[s]; }
            for (int64_t s = 0; s < S; s++) p[s] = sum > 0 ? p[s] / sum : 0;
            if (out) {
                for (int64_t e = 0; e < Dv; e++) {
                    double acc = 0;
                    for (int64_t s = 0; s < S; s++) {
                        idx[nd - 2] = s; idx[nd - 1] = e;
                        acc += p[s] * V[ref_off(v, nd, idx)];
                    }
                    idx[nd - 2] = t;
                    ewb_f32(out)[ref_off(out, nd, idx)] = (float)acc;
                }
                continue;
            }
            const float *G = ewb_f32(gout);
            double dot = 0;
            for (int64_t s = 0; s < S; s++) {
                double acc = 0;
                for (int64_t e = 0; e < Dv; e++) {
                    idx[nd - 2] = t; idx[nd - 1] = e;
                    double gval = G[ref_off(gout, nd, idx)];
                    idx[nd - 2] = s;
                    acc += gval * V[ref_off(v, nd, idx)];
                    if (gv) ewb_f32(gv)[ref_off(gv, nd, idx)] += (float)(p[s] * gval);
                }
                dp[s] = acc;
                dot += acc * p[s];
            }
            for (int64_t s = 0; s < S; s++) {
                double ds = scale * p[s] * (dp[s] - dot);
                for (int64_t d = 0; d < D; d++) {
                    idx[nd - 2] = t; idx[nd - 1] = d;
                    int64_t qo = ref_off(q, nd, idx);
                    idx[nd - 2] = s;
                    int64_t ko = ref_off(k, nd, idx);
                    if (gq) { idx[nd - 2] = t; ewb_f32(gq)[ref_off(gq, nd, idx)] += (float)(ds * K[ko]); idx[nd - 2] = s; }
                    if (gk) ewb_f32(gk)[ref_off(gk, nd, idx)] += (float)(ds * Q[qo]);
                }
            }
        }
    }
    free(p);
    free(dp);
    return 0;
}

int ewb_sdpa_ref(const ewb_tensor *q, const ewb_tensor *k, const ewb_tensor *v, const ewb_tensor *mask, int causal,
                 double scale, ewb_tensor *out) {
    return ref_run(q, k, v, mask, causal, scale, out, NULL, NULL, NULL, NULL);
}

int ewb_sdpa_ref_backward(const ewb_tensor *q, const ewb_tensor *k, const ewb_tensor *v, const ewb_tensor *mask,
                          int causal, double scale, const ewb_tensor *gout, ewb_tensor *gq, ewb_tensor *gk,
                          ewb_tensor *gv) {
    return ref_run(q, k, v, mask, causal, scale, NULL, gout, gq, gk, gv);
}
