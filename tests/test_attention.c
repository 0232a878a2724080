/* test_attention.c: kernels/attention.c. The oneDNN-composed sdpa against
 * the naive twin (normalised error, forward and all three gradients) on
 * shapes with batch and head dims, with masks, causal, strided and broadcast
 * operands; the few-query loop path (T <= 4, as a KV-cache decode step);
 * hand-computed cases; fully masked rows; finite-difference
 * gradchecks; bad input errors. */
#include "check.h"
#include "../kernels/attention.h"

static ewb_tensor *F32(int nd, const int64_t *shape, const float *data) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_F32, nd, shape, data)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}
static ewb_tensor *BOOL(int nd, const int64_t *shape, const uint8_t *data) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_BOOL, nd, shape, data)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}
static ewb_tensor *GRAD(ewb_tensor *t) {
    ewb_tensor *g = NULL;
    ewb_tensor_grad(t, &g);
    return g;
}
static int all_finite(const ewb_tensor *t) { return t && !ewb_has_nonfinite(t); }

/* op vs twin, forward and backward; q, k, v require grad and are leaves */
static void compare(const char *name, ewb_tensor *q, ewb_tensor *k, ewb_tensor *v, ewb_tensor *mask, int causal, double scale) {
    ewb_tensor *out = NULL;
    ewb_tensor_set_grad(q, NULL); ewb_tensor_set_grad(k, NULL); ewb_tensor_set_grad(v, NULL);
    OK(ewb_sdpa(q, k, v, mask, causal, scale, &out));
    if (!out) return;
    double sc = scale > 0 ? scale : 1 / sqrt((double)ewb_tensor_size(q, ewb_tensor_ndim(q) - 1));
    ewb_tensor *ref = ewb_empty_like(out), *gout = T(out->ndim, out->shape);
    OK(ewb_sdpa_ref(q, k, v, mask, causal, sc, ref));
    double e = max_rel_err(out, ref);
    CHECK(e < 1e-5, "%s forward: normalised error %g", name, e);
    CHECK(all_finite(out), "%s forward has NaN/Inf", name);
    OK(ewb_backward(out, gout, 0));
    ewb_tensor *rq = ewb_zeros_like(q), *rk = ewb_zeros_like(k), *rv = ewb_zeros_like(v);
    OK(ewb_sdpa_ref_backward(q, k, v, mask, causal, sc, gout, rq, rk, rv));
    ewb_tensor *gq = GRAD(q), *gk = GRAD(k), *gv = GRAD(v);
    CHECK(gq && gk && gv, "%s: missing gradients", name);
    if (gq && gk && gv) {
        double eq = max_rel_err(gq, rq), ek = max_rel_err(gk, rk), ev = max_rel_err(gv, rv);
        CHECK(eq < 1e-5 && ek < 1e-5 && ev < 1e-5, "%s backward: normalised errors dq %g dk %g dv %g", name, eq, ek, ev);
        CHECK(all_finite(gq) && all_finite(gk) && all_finite(gv), "%s gradients have NaN/Inf", name);
    }
    ewb_tensor_free(gq); ewb_tensor_free(gk); ewb_tensor_free(gv);
    ewb_tensor_free(rq); ewb_tensor_free(rk); ewb_tensor_free(rv);
    ewb_tensor_free(ref); ewb_tensor_free(gout); ewb_tensor_free(out);
}

static void test_against_twin(void) {
    int64_t sq[4] = {2, 3, 5, 8}, sk[4] = {2, 3, 7, 8}, sv[4] = {2, 3, 7, 6};
    ewb_tensor *q = T_req(4, sq), *k = T_req(4, sk), *v = T_req(4, sv);
    compare("plain", q, k, v, NULL, 0, 0);
    compare("causal", q, k, v, NULL, 1, 0);
    compare("scale 0.7", q, k, v, NULL, 0, 0.7);
    /* key padding (B,1,1,S): batch 0 sees 4 keys, batch 1 sees 6 */
    int64_t sm[4] = {2, 1, 1, 7};
    uint8_t mv[14] = {1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0};
    ewb_tensor *pad = BOOL(4, sm, mv);
    compare("key padding", q, k, v, pad, 0, 0);
    compare("key padding + causal", q, k, v, pad, 1, 0);
    /* a full (T,S) mask broadcast over batch and heads, with a fully masked query row (row 2) */
    int64_t sm2[2] = {5, 7};
    uint8_t m2[35];
    for (int i = 0; i < 35; i++) m2[i] = (uint8_t)((i * 7 + 3) % 5 != 0);
    for (int s = 0; s < 7; s++) m2[2 * 7 + s] = 0;
    ewb_tensor *tm = BOOL(2, sm2, m2);
    compare("(T,S) mask with an empty row", q, k, v, tm, 0, 0);
    ewb_tensor_free(q); ewb_tensor_free(k); ewb_tensor_free(v);

    /* strided q: (B,T,H,D) permuted to (B,H,T,D), no copy; k, v broadcast over batch (1,H,S,D) */
    int64_t sqp[4] = {2, 5, 3, 8}, skb[4] = {1, 3, 7, 8}, svb[4] = {1, 3, 7, 4};
    ewb_tensor *qp = T_req(4, sqp), *kb = T_req(4, skb), *vb = T_req(4, svb), *qv = NULL;
    int perm[4] = {0, 2, 1, 3};
    OK(ewb_permute(qp, perm, &qv));
    /* compare() needs leaves; check the permuted view through its leaf by hand */
    ewb_tensor *out = NULL, *ref = NULL;
    OK(ewb_sdpa(qv, kb, vb, pad, 1, 0, &out));
    if (out) {
        ref = ewb_empty_like(out);
        OK(ewb_sdpa_ref(qv, kb, vb, pad, 1, 1 / sqrt(8.0), ref));
        double e = max_rel_err(out, ref);
        CHECK(e < 1e-5, "strided q, broadcast k/v forward: %g", e);
        ewb_tensor *gout = T(out->ndim, out->shape);
        OK(ewb_backward(out, gout, 0));
        ewb_tensor *rq = ewb_zeros_like(qv), *rk = ewb_zeros_like(kb), *rv = ewb_zeros_like(vb);
        OK(ewb_sdpa_ref_backward(qv, kb, vb, pad, 1, 1 / sqrt(8.0), gout, rq, rk, rv));
        ewb_tensor *gq = GRAD(qp), *gk = GRAD(kb), *gv = GRAD(vb), *gqv = NULL, *gqc = NULL;
        OK(ewb_permute(gq, perm, &gqv)); /* grad of the leaf (B,T,H,D) seen as (B,H,T,D) */
        OK(ewb_contiguous(gqv, &gqc));
        double eq = max_rel_err(gqc, rq), ek = max_rel_err(gk, rk), ev = max_rel_err(gv, rv);
        CHECK(eq < 1e-5 && ek < 1e-5 && ev < 1e-5, "strided/broadcast backward: dq %g dk %g dv %g", eq, ek, ev);
        ewb_tensor_free(gq); ewb_tensor_free(gk); ewb_tensor_free(gv); ewb_tensor_free(gqv); ewb_tensor_free(gqc);
        ewb_tensor_free(rq); ewb_tensor_free(rk); ewb_tensor_free(rv); ewb_tensor_free(gout);
    }
    ewb_tensor_free(out); ewb_tensor_free(ref);
    ewb_tensor_free(qp); ewb_tensor_free(qv); ewb_tensor_free(kb); ewb_tensor_free(vb);
    ewb_tensor_free(pad); ewb_tensor_free(tm);
}

/* few queries (T <= 4: the loop path, not oneDNN), as a decode step with the
   KV cache: T = 1 and 3, masks, causal; and q, k, v as the cache gives them
   (k, v narrowed from a longer buffer: rows of a strided view) */
static void test_small_t(void) {
    int64_t sk[4] = {2, 3, 7, 8}, sv[4] = {2, 3, 7, 6}, sm[4] = {2, 1, 1, 7};
    uint8_t mv[14] = {1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0};
    ewb_tensor *k = T_req(4, sk), *v = T_req(4, sv), *pad = BOOL(4, sm, mv);
    for (int64_t tq = 1; tq <= 3; tq += 2) {
        int64_t sq[4] = {2, 3, tq, 8};
        ewb_tensor *q = T_req(4, sq);
        char name[64];
        snprintf(name, sizeof name, "T=%lld plain", (long long)tq);
        compare(name, q, k, v, NULL, 0, 0);
        snprintf(name, sizeof name, "T=%lld causal", (long long)tq);
        compare(name, q, k, v, NULL, 1, 0);
        snprintf(name, sizeof name, "T=%lld key padding + causal", (long long)tq);
        compare(name, q, k, v, pad, 1, 0.7);
        ewb_tensor_free(q);
    }
    { /* GPT small's decode step shape, big enough for the rows to be split among threads */
        int64_t sq8[4] = {1, 8, 1, 48}, sk8[4] = {1, 8, 100, 48};
        ewb_tensor *q8 = T_req(4, sq8), *k8 = T_req(4, sk8), *v8 = T_req(4, sk8);
        compare("T=1, 8 heads x 100 keys", q8, k8, v8, NULL, 0, 0);
        ewb_tensor_free(q8); ewb_tensor_free(k8); ewb_tensor_free(v8);
    }
    { /* a head dim that is not a multiple of 16 (16 lanes, then a tail of 4) */
        int64_t sq20[4] = {1, 2, 2, 20}, sk20[4] = {1, 2, 7, 20};
        ewb_tensor *q20 = T_req(4, sq20), *k20 = T_req(4, sk20), *v20 = T_req(4, sk20);
        compare("T=2, head dim 20, causal", q20, k20, v20, NULL, 1, 0);
        ewb_tensor_free(q20); ewb_tensor_free(k20); ewb_tensor_free(v20);
    }
    /* the cache: (1, H, max 10, D) buffers, the first 7 positions visible */
    int64_t sc[4] = {1, 3, 10, 8}, sq1[4] = {1, 3, 1, 8};
    ewb_tensor *kc = T_req(4, sc), *vc = T_req(4, sc), *q1 = T_req(4, sq1), *kn = NULL, *vn = NULL, *out = NULL;
    OK(ewb_narrow(kc, 2, 0, 7, &kn));
    OK(ewb_narrow(vc, 2, 0, 7, &vn));
    CHECK(kn && !ewb_tensor_is_contiguous(kn), "a narrowed cache is a strided view");
    OK(ewb_sdpa(q1, kn, vn, NULL, 0, 0, &out));
    if (out) {
        ewb_tensor *ref = ewb_empty_like(out);
        OK(ewb_sdpa_ref(q1, kn, vn, NULL, 0, 1 / sqrt(8.0), ref));
        double e = max_rel_err(out, ref);
        CHECK(e < 1e-5, "T=1 on a narrowed cache: %g", e);
        ewb_tensor *gout = T(out->ndim, out->shape);
        OK(ewb_backward(out, gout, 0));
        ewb_tensor *rq = ewb_zeros_like(q1), *rk = ewb_zeros_like(kn), *rv = ewb_zeros_like(vn);
        OK(ewb_sdpa_ref_backward(q1, kn, vn, NULL, 0, 1 / sqrt(8.0), gout, rq, rk, rv));
        ewb_tensor *gq = GRAD(q1), *gk = GRAD(kc), *gv = GRAD(vc), *gkn = NULL, *gvn = NULL;
        OK(ewb_narrow(gk, 2, 0, 7, &gkn));
        OK(ewb_narrow(gv, 2, 0, 7, &gvn));
        double eq = max_rel_err(gq, rq), ek = gkn ? max_rel_err(gkn, rk) : 1, ev = gvn ? max_rel_err(gvn, rv) : 1;
        CHECK(eq < 1e-5 && ek < 1e-5 && ev < 1e-5, "T=1 on a narrowed cache, backward: dq %g dk %g dv %g", eq, ek, ev);
        ewb_tensor_free(gq); ewb_tensor_free(gk); ewb_tensor_free(gv); ewb_tensor_free(gkn); ewb_tensor_free(gvn);
        ewb_tensor_free(rq); ewb_tensor_free(rk); ewb_tensor_free(rv); ewb_tensor_free(gout); ewb_tensor_free(ref);
    }
    ewb_tensor_free(out); ewb_tensor_free(kn); ewb_tensor_free(vn);
    ewb_tensor_free(kc); ewb_tensor_free(vc); ewb_tensor_free(q1);
    ewb_tensor_free(k); ewb_tensor_free(v); ewb_tensor_free(pad);
}

static void test_hand_cases(void) {
    ewb_tensor *out = NULL;
    { /* q = 0: uniform weights, output = mean of v's rows; causal: mean of the first t+1 rows */
        int64_t sq[2] = {3, 2}, sv[2] = {3, 2};
        float z[6] = {0}, vv[6] = {1, 2, 3, 4, 5, 9};
        ewb_tensor *q = F32(2, sq, z), *k = T(2, sq), *v = F32(2, sv, vv);
        OK(ewb_sdpa(q, k, v, NULL, 0, 0, &out));
        const float *o = ewb_f32(out);
        for (int t = 0; t < 3; t++)
            CHECK(fabs(o[t * 2] - 3) < 1e-6 && fabs(o[t * 2 + 1] - 5) < 1e-6, "uniform row %d: %g %g", t, o[t * 2], o[t * 2 + 1]);
        ewb_tensor_free(out);
        OK(ewb_sdpa(q, k, v, NULL, 1, 0, &out));
        o = ewb_f32(out);
        const float want[6] = {1, 2, 2, 3, 3, 5};
        for (int i = 0; i < 6; i++) CHECK(fabs(o[i] - want[i]) < 1e-6, "causal uniform [%d]: %g vs %g", i, o[i], want[i]);
        ewb_tensor_free(out);
        ewb_tensor_free(q); ewb_tensor_free(k); ewb_tensor_free(v);
    }
    { /* one query, two keys: scores (q·k)/√D = 0 and ln 3 -> weights 1/4, 3/4 */
        int64_t sq[2] = {1, 1}, sk[2] = {2, 1}, sv[2] = {2, 1};
        float qv[1] = {1}, kv[2] = {0, (float)log(3.0)}, vv[2] = {4, 8};
        ewb_tensor *q = F32(2, sq, qv), *k = F32(2, sk, kv), *v = F32(2, sv, vv);
        OK(ewb_sdpa(q, k, v, NULL, 0, 0, &out));
        CHECK(fabs(ewb_f32(out)[0] - 7) < 1e-5, "1/4·4 + 3/4·8 = 7, got %g", ewb_f32(out)[0]);
        ewb_tensor_free(out);
        ewb_tensor_free(q); ewb_tensor_free(k); ewb_tensor_free(v);
    }
    { /* a fully masked batch: zeros out, zero gradients, no NaN */
        int64_t sq[3] = {2, 3, 4}, sm[3] = {2, 1, 5};
        int64_t sk[3] = {2, 5, 4};
        uint8_t m[10] = {0, 0, 0, 0, 0, 1, 0, 1, 1, 0};
        ewb_tensor *q = T_req(3, sq), *k = T_req(3, sk), *v = T_req(3, sk), *mask = BOOL(3, sm, m);
        OK(ewb_sdpa(q, k, v, mask, 0, 0, &out));
        const float *o = ewb_f32(out);
        double mx = 0;
        for (int i = 0; i < 12; i++) mx = fmax(mx, fabs(o[i]));
        CHECK(mx == 0, "fully masked batch must give zeros, max %g", mx);
        CHECK(all_finite(out), "fully masked: NaN in output");
        ewb_tensor *gout = T(3, sq);
        OK(ewb_backward(out, gout, 0));
        ewb_tensor *gq = GRAD(q), *gk = GRAD(k), *gv = GRAD(v);
        CHECK(all_finite(gq) && all_finite(gk) && all_finite(gv), "fully masked: NaN in gradients");
        double gm = 0;
        for (int i = 0; i < 12; i++) gm = fmax(gm, fabs(ewb_f32(gq)[i]));
        for (int i = 0; i < 20; i++) gm = fmax(gm, fmax(fabs(ewb_f32(gk)[i]), fabs(ewb_f32(gv)[i])));
        CHECK(gm == 0, "fully masked batch must give zero gradients, max %g", gm);
        double g1 = 0;
        for (int i = 12; i < 24; i++) g1 = fmax(g1, fabs(ewb_f32(gq)[i]));
        CHECK(g1 > 0, "the unmasked batch gets a gradient");
        ewb_tensor_free(gq); ewb_tensor_free(gk); ewb_tensor_free(gv); ewb_tensor_free(gout); ewb_tensor_free(out);
        ewb_tensor_free(q); ewb_tensor_free(k); ewb_tensor_free(v); ewb_tensor_free(mask);
    }
}

typedef struct { ewb_tensor *mask; int causal; } gc_args;
static int sdpa_fn(ewb_tensor **in, ewb_tensor **out, void *ud) {
    gc_args *a = ud;
    return ewb_sdpa(in[0], in[1], in[2], a->mask, a->causal, 0, out);
}

static void test_gradcheck(void) {
    int64_t sq[4] = {1, 2, 3, 4}, sk[4] = {1, 2, 5, 4}, sv[4] = {1, 2, 5, 3}, sm[4] = {1, 1, 3, 5};
    ewb_tensor *in[3] = {T_req(4, sq), T_req(4, sk), T_req(4, sv)};
    uint8_t m[15] = {1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1};
    ewb_tensor *mask = BOOL(4, sm, m);
    const char *names[4] = {"plain", "mask", "causal", "mask + causal"};
    for (int c = 0; c < 4; c++) {
        gc_args a = {c & 1 ? mask : NULL, c >> 1};
        double e = gradcheck(names[c], sdpa_fn, 3, in, &a, 1e-2, 1e-2);
        CHECK(e < 1e-2, "sdpa gradcheck %s: %g", names[c], e);
    }
    ewb_tensor_free(in[0]); ewb_tensor_free(in[1]); ewb_tensor_free(in[2]); ewb_tensor_free(mask);
}

static void test_errors(void) {
    ewb_tensor *out = NULL;
    int64_t sq[3] = {2, 3, 4}, sk5[3] = {2, 5, 5}, sk[3] = {2, 5, 4}, sv6[3] = {2, 6, 4}, sk3[3] = {3, 5, 4}, s1[1] = {4};
    int64_t sm[2] = {3, 4};
    ewb_tensor *q = T(3, sq), *kbadD = T(3, sk5), *k = T(3, sk), *vbadS = T(3, sv6), *kbadB = T(3, sk3), *q1 = T(1, s1);
    ewb_tensor *mf = T(2, sm), *mb = NULL, *ki = NULL;
    uint8_t ones[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    mb = BOOL(2, sm, ones);
    OK(ewb_randint(&ki, 0, 3, 3, sk));
    FAILS(ewb_sdpa(q, kbadD, kbadD, NULL, 0, 0, &out), "sdpa: q f32[2,3,4] and k f32[2,5,5] differ in the last (head) dim");
    FAILS(ewb_sdpa(q, k, vbadS, NULL, 0, 0, &out), "sdpa: k f32[2,5,4] and v f32[2,6,4] differ in the number of keys");
    FAILS(ewb_sdpa(q, kbadB, kbadB, NULL, 0, 0, &out), "do not broadcast");
    FAILS(ewb_sdpa(q1, k, k, NULL, 0, 0, &out), "sdpa: q, k and v need at least 2 dims");
    FAILS(ewb_sdpa(q, k, k, mf, 0, 0, &out), "sdpa: mask must be bool (1 = may attend), got f32[3,4]");
    FAILS(ewb_sdpa(q, k, k, mb, 0, 0, &out), "sdpa: mask bool[3,4] does not broadcast to the scores (…,T,S) = [2,3,5]");
    FAILS(ewb_sdpa(q, ki, k, NULL, 0, 0, &out), "sdpa: expected an f32 tensor, got i64[2,5,4]");
    ewb_tensor_free(q); ewb_tensor_free(kbadD); ewb_tensor_free(k); ewb_tensor_free(vbadS); ewb_tensor_free(kbadB);
    ewb_tensor_free(q1); ewb_tensor_free(mf); ewb_tensor_free(mb); ewb_tensor_free(ki);
}

int main(void) {
    ewb_manual_seed(11);
    test_against_twin();
    test_small_t();
    test_hand_cases();
    test_gradcheck();
    test_errors();
    return check_report();
}
