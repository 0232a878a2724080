/* test_loss.c: kernels/loss.c. Forward against hand-computed values, values
 * printed by PyTorch 1.13 and a plain double-loop reference of
 * cross_entropy; gradients by finite differences; bad input errors. */
#include "check.h"

static ewb_tensor *F32(int nd, const int64_t *shape, const float *data) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_F32, nd, shape, data)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}
static ewb_tensor *I64(int64_t n, const int64_t *data) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_I64, 1, &n, data)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}
static double item(ewb_tensor *t) {
    double v = NAN;
    if (ewb_tensor_item(t, &v)) fprintf(stderr, "item: %s\n", ewb_last_error());
    return v;
}
static double at(ewb_tensor *t, int64_t i) { /* flat index into a contiguous tensor */
    return ewb_f32(t)[i];
}

/* ---------------- cross entropy ---------------- */
typedef struct { int64_t ignore; double ls; int red; } ce_args;
static int ce_fn(ewb_tensor **in, ewb_tensor **out, void *ud) {
    ce_args *a = ud;
    return ewb_cross_entropy(in[0], in[1], a->ignore, a->ls, a->red, out);
}

/* independent reference: the torch formula written out in doubles */
static double ce_ref(const float *x, const int64_t *y, int64_t N, int64_t C, int64_t ignore, double ls, int red, double *rows) {
    double tot = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < N; i++) {
        rows[i] = 0;
        if (y[i] == ignore) continue;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += exp(x[i * C + c]);
        double nll = -(x[i * C + y[i]] - log(s)), smooth = 0;
        for (int64_t c = 0; c < C; c++) smooth += -(x[i * C + c] - log(s));
        rows[i] = (1 - ls) * nll + ls / C * smooth;
        tot += rows[i];
        cnt++;
    }
    return red == EWB_REDUCE_SUM ? tot : tot / cnt;
}

static void test_cross_entropy(void) {
    ewb_tensor *out = NULL;
    { /* uniform logits: log C, with or without smoothing */
        int64_t s[2] = {3, 5};
        float z[15] = {0};
        int64_t y[3] = {0, 4, 2};
        ewb_tensor *x = F32(2, s, z), *t = I64(3, y);
        OK(ewb_cross_entropy(x, t, -100, 0, EWB_REDUCE_MEAN, &out));
        CHECK(fabs(item(out) - log(5.0)) < 1e-6, "uniform logits: %g vs log 5", item(out));
        ewb_tensor_free(out);
        OK(ewb_cross_entropy(x, t, -100, 0.3, EWB_REDUCE_SUM, &out));
        CHECK(fabs(item(out) - 3 * log(5.0)) < 1e-5, "uniform logits, smoothed sum: %g", item(out));
        ewb_tensor_free(out);
        ewb_tensor_free(x); ewb_tensor_free(t);
    }
    { /* one row by hand: log(e + e² + e³) - 3 */
        int64_t s[2] = {1, 3};
        float v[3] = {1, 2, 3};
        int64_t y[1] = {2};
        ewb_tensor *x = F32(2, s, v), *t = I64(1, y);
        OK(ewb_cross_entropy(x, t, -100, 0, EWB_REDUCE_MEAN, &out));
        double want = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3;
        CHECK(fabs(item(out) - want) < 1e-6, "hand row: %g vs %g", item(out), want);
        CHECK(ewb_tensor_ndim(out) == 0, "mean gives a 0-d tensor, got %d dims", ewb_tensor_ndim(out));
        ewb_tensor_free(out);
        ewb_tensor_free(x); ewb_tensor_free(t);
    }
    { /* a -inf logit (a masked class) is a class of probability 0, not NaN */
        int64_t s[2] = {1, 3};
        float v[3] = {1, -INFINITY, 3};
        int64_t y[1] = {0};
        ewb_tensor *x = F32(2, s, v), *t = I64(1, y);
        OK(ewb_cross_entropy(x, t, -100, 0, EWB_REDUCE_MEAN, &out));
        double want = log(exp(1.0) + exp(3.0)) - 1;
        CHECK(fabs(item(out) - want) < 1e-6, "-inf logit: %g vs %g", item(out), want);
        ewb_tensor_free(out);
        ewb_tensor_free(x); ewb_tensor_free(t);
    }
    { /* PyTorch 1.13: label_smoothing 0.2, ignore_index -100 in row 1 */
        int64_t s[2] = {4, 3};
        float v[12] = {0.5f, -1, 2, 1, 1, 0, -0.3f, 0.2f, 0.1f, 2, 0, -1};
        int64_t y[4] = {2, -100, 0, 1};
        ewb_tensor *x = F32(2, s, v), *t = I64(4, y);
        OK(ewb_cross_entropy(x, t, -100, 0.2, EWB_REDUCE_MEAN, &out));
        CHECK(fabs(item(out) - 1.3351062536239624) < 1e-6, "torch mean: %.8g", item(out));
        ewb_tensor_free(out);
        OK(ewb_cross_entropy(x, t, -100, 0.2, EWB_REDUCE_SUM, &out));
        CHECK(fabs(item(out) - 4.0053181648254395) < 1e-5, "torch sum: %.8g", item(out));
        ewb_tensor_free(out);
        OK(ewb_cross_entropy(x, t, -100, 0.2, EWB_REDUCE_NONE, &out));
        const double want[4] = {0.5413113832473755, 0.0, 1.3608276844024658, 2.103179454803467};
        for (int i = 0; i < 4; i++) CHECK(fabs(at(out, i) - want[i]) < 1e-6, "torch none[%d]: %g vs %g", i, at(out, i), want[i]);
        ewb_tensor_free(out);
        /* an i32 target gives the same */
        ewb_tensor *t32 = NULL;
        OK(ewb_to_dtype(t, EWB_DTYPE_I32, &t32));
        OK(ewb_cross_entropy(x, t32, -100, 0.2, EWB_REDUCE_MEAN, &out));
        CHECK(fabs(item(out) - 1.3351062536239624) < 1e-6, "i32 target: %.8g", item(out));
        ewb_tensor_free(out);
        ewb_tensor_free(t32);
        /* every row ignored: 0 (torch: NaN), and no gradient */
        int64_t all[4] = {1, 1, 1, 1};
        ewb_tensor *ta = I64(4, all);
        ewb_tensor_set_requires_grad(x, 1);
        OK(ewb_cross_entropy(x, ta, 1, 0, EWB_REDUCE_MEAN, &out));
        CHECK(item(out) == 0, "all ignored: %g", item(out));
        OK(ewb_backward(out, NULL, 0));
        ewb_tensor *g = NULL;
        ewb_tensor_grad(x, &g);
        double gmax = 0;
        for (int i = 0; g && i < 12; i++) gmax = fmax(gmax, fabs(at(g, i)));
        CHECK(g && gmax == 0, "all ignored: gradient should be 0, max %g", gmax);
        ewb_tensor_free(g);
        ewb_tensor_free(out);
        ewb_tensor_free(ta);
        ewb_tensor_free(x); ewb_tensor_free(t);
    }
    { /* random logits against the double reference, ignore_index a real class, strided logits */
        int64_t N = 7, C = 5, s[2] = {C, N};
        int64_t y[7] = {0, 3, 2, 3, 4, 1, 3};
        ewb_tensor *xt = T(2, s), *x = NULL, *t = I64(N, y);
        OK(ewb_transpose(xt, 0, 1, &x)); /* (N, C) view with strides (1, N) */
        float xv[35];
        double rows[7];
        ewb_tensor_copy_to(x, xv, sizeof xv);
        for (int red = 0; red < 3; red++) {
            double want = ce_ref(xv, y, N, C, 3, 0.15, red, rows);
            OK(ewb_cross_entropy(x, t, 3, 0.15, red, &out));
            if (red == EWB_REDUCE_NONE) {
                for (int i = 0; i < N; i++) CHECK(fabs(at(out, i) - rows[i]) < 1e-5, "ref row %d: %g vs %g", i, at(out, i), rows[i]);
            } else {
                CHECK(fabs(item(out) - want) < 1e-5 * fabs(want), "ref reduction %d: %g vs %g", red, item(out), want);
            }
            ewb_tensor_free(out);
        }
        ewb_tensor_free(xt); ewb_tensor_free(x); ewb_tensor_free(t);
    }
    { /* gradchecks: reductions x smoothing x ignore */
        int64_t s[2] = {6, 4};
        int64_t y[6] = {1, -100, 3, 0, 2, -100};
        ewb_tensor *x = T_req(2, s), *t = I64(6, y);
        ewb_tensor *in[2] = {x, t};
        for (int red = 0; red < 3; red++)
            for (int k = 0; k < 2; k++) {
                ce_args a = {-100, k ? 0.1 : 0, red};
                double e = gradcheck("cross_entropy", ce_fn, 2, in, &a, 1e-2, 1e-2);
                CHECK(e < 1e-2, "cross_entropy gradcheck red %d ls %g: %g", red, a.ls, e);
            }
        ce_args a = {3, 0.25, EWB_REDUCE_MEAN}; /* ignore a real class; row 1's -100 is then out of range */
        int64_t y2[6] = {1, 0, 3, 0, 2, 3};
        ewb_tensor *t2 = I64(6, y2);
        in[1] = t2;
        double e = gradcheck("cross_entropy ignore 3", ce_fn, 2, in, &a, 1e-2, 1e-2);
        CHECK(e < 1e-2, "cross_entropy gradcheck ignore_index 3: %g", e);
        ewb_tensor_free(x); ewb_tensor_free(t); ewb_tensor_free(t2);
    }
    { /* errors */
        int64_t s[2] = {3, 5}, s1[1] = {5};
        int64_t ybad[3] = {0, 5, 1}, yneg[3] = {0, -1, 1}, y[3] = {0, 1, 2};
        ewb_tensor *x = T(2, s), *x1 = T(1, s1), *tb = I64(3, ybad), *tn = I64(3, yneg), *t = I64(3, y), *t2 = I64(2, y);
        ewb_tensor *tf = T(1, s);
        FAILS(ewb_cross_entropy(x, tb, -100, 0, EWB_REDUCE_MEAN, &out), "target 5 at row 1 is out of range for 5 classes");
        FAILS(ewb_cross_entropy(x, tn, -100, 0, EWB_REDUCE_MEAN, &out), "target -1 at row 1 is out of range");
        FAILS(ewb_cross_entropy(x1, t, -100, 0, EWB_REDUCE_MEAN, &out), "logits must be (N, C), got f32[5]");
        FAILS(ewb_cross_entropy(x, t2, -100, 0, EWB_REDUCE_MEAN, &out), "target i64[2] does not match logits f32[3,5]");
        FAILS(ewb_cross_entropy(x, tf, -100, 0, EWB_REDUCE_MEAN, &out), "target must hold class ids as i64 or i32, got f32[3]");
        FAILS(ewb_cross_entropy(x, t, -100, 0, 7, &out), "cross_entropy: reduction must be");
        FAILS(ewb_cross_entropy(x, t, -100, 1.5, EWB_REDUCE_MEAN, &out), "label_smoothing must be in [0, 1]");
        FAILS(ewb_cross_entropy(t, t, -100, 0, EWB_REDUCE_MEAN, &out), "cross_entropy: expected an f32 tensor");
        ewb_tensor_free(x); ewb_tensor_free(x1); ewb_tensor_free(tb); ewb_tensor_free(tn);
        ewb_tensor_free(t); ewb_tensor_free(t2); ewb_tensor_free(tf);
    }
}

/* ---------------- pointwise losses ---------------- */
typedef int (*loss2_fn)(ewb_tensor *, ewb_tensor *, int, ewb_tensor **);
typedef struct { loss2_fn f; int red; } pw_args;
static int pw_fn(ewb_tensor **in, ewb_tensor **out, void *ud) {
    pw_args *a = ud;
    return a->f(in[0], in[1], a->red, out);
}

static void test_pointwise(void) {
    ewb_tensor *out = NULL;
    { /* bce: PyTorch 1.13 values, including the saturated ends */
        int64_t s[1] = {4};
        float xv[4] = {-100, 0, 3, 100}, tv[4] = {1, 0.3f, 0.5f, 1};
        const double want[4] = {100.0, 0.6931471824645996, 1.5485873222351074, 0.0};
        ewb_tensor *x = F32(1, s, xv), *t = F32(1, s, tv);
        OK(ewb_bce_with_logits(x, t, EWB_REDUCE_NONE, &out));
        for (int i = 0; i < 4; i++) CHECK(fabs(at(out, i) - want[i]) < 1e-5, "bce[%d]: %g vs %g", i, at(out, i), want[i]);
        ewb_tensor_free(out);
        OK(ewb_bce_with_logits(x, t, EWB_REDUCE_MEAN, &out));
        CHECK(fabs(item(out) - (want[0] + want[1] + want[2]) / 4) < 1e-5, "bce mean: %g", item(out));
        ewb_tensor_free(out);
        ewb_tensor_free(x); ewb_tensor_free(t);
    }
    { /* mse / l1 by hand, with broadcasting b (2) against a (2,2) */
        int64_t sa[2] = {2, 2}, sb[1] = {2};
        float av[4] = {1, 2, 3, 5}, bv[2] = {0, 4};
        ewb_tensor *a = F32(2, sa, av), *b = F32(1, sb, bv);
        OK(ewb_mse_loss(a, b, EWB_REDUCE_SUM, &out)); /* 1 + 4 + 9 + 1 */
        CHECK(fabs(item(out) - 15) < 1e-6, "mse sum: %g", item(out));
        ewb_tensor_free(out);
        OK(ewb_mse_loss(a, b, EWB_REDUCE_MEAN, &out));
        CHECK(fabs(item(out) - 3.75) < 1e-6, "mse mean: %g", item(out));
        ewb_tensor_free(out);
        OK(ewb_l1_loss(a, b, EWB_REDUCE_NONE, &out));
        const float want[4] = {1, 2, 3, 1};
        CHECK(ewb_tensor_ndim(out) == 2 && ewb_tensor_size(out, 1) == 2, "l1 none keeps the shape");
        for (int i = 0; i < 4; i++) CHECK(at(out, i) == want[i], "l1[%d]: %g", i, at(out, i));
        ewb_tensor_free(out);
        ewb_tensor_free(a); ewb_tensor_free(b);
    }
    { /* gradchecks, both inputs, every reduction; mse and l1 with a broadcast operand */
        int64_t s[2] = {3, 4}, sb[1] = {4};
        ewb_tensor *x = T_req(2, s), *t = NULL, *b = T_req(1, sb), *u = NULL;
        OK(ewb_rand(&t, 2, s));
        ewb_tensor_set_requires_grad(t, 1);
        OK(ewb_rand(&u, 2, s)); /* keep a - b away from 0 for l1: a in [2,3), b ~ N(0,1) mostly below */
        for (int64_t i = 0; i < 12; i++) ewb_f32(u)[i] += 2;
        ewb_tensor_set_requires_grad(u, 1);
        for (int red = 0; red < 3; red++) {
            pw_args a = {ewb_bce_with_logits, red};
            ewb_tensor *in[2] = {x, t};
            double e = gradcheck("bce", pw_fn, 2, in, &a, 1e-2, 1e-2);
            CHECK(e < 1e-2, "bce gradcheck red %d: %g", red, e);
            a.f = ewb_mse_loss;
            in[1] = b;
            e = gradcheck("mse", pw_fn, 2, in, &a, 1e-2, 1e-2);
            CHECK(e < 1e-2, "mse gradcheck red %d: %g", red, e);
            a.f = ewb_l1_loss;
            in[0] = u;
            for (int64_t i = 0; i < 4; i++) ewb_f32(b)[i] = (float)(0.3 * i - 0.5);
            e = gradcheck("l1", pw_fn, 2, in, &a, 1e-3, 1e-2);
            CHECK(e < 1e-2, "l1 gradcheck red %d: %g", red, e);
        }
        ewb_tensor_free(x); ewb_tensor_free(t); ewb_tensor_free(b); ewb_tensor_free(u);
    }
    { /* errors */
        int64_t s[2] = {3, 4}, s2[2] = {4, 3};
        ewb_tensor *a = T(2, s), *b = T(2, s2), *i = NULL;
        OK(ewb_randint(&i, 0, 2, 2, s));
        FAILS(ewb_bce_with_logits(a, b, EWB_REDUCE_MEAN, &out), "bce_with_logits: target f32[4,3] must have the shape of the input f32[3,4]");
        FAILS(ewb_bce_with_logits(a, i, EWB_REDUCE_MEAN, &out), "bce_with_logits: expected an f32 tensor, got i64[3,4]");
        FAILS(ewb_mse_loss(a, b, EWB_REDUCE_MEAN, &out), "mse_loss: shapes f32[3,4] and f32[4,3] do not broadcast");
        FAILS(ewb_l1_loss(a, a, -1, &out), "l1_loss: reduction must be");
        ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(i);
    }
}

/* ---------------- cosine similarity, normalize ---------------- */
typedef struct { int dim; double eps; } dim_args;
static int cos_fn(ewb_tensor **in, ewb_tensor **out, void *ud) {
    dim_args *a = ud;
    return ewb_cosine_similarity(in[0], in[1], a->dim, a->eps, out);
}
static int norm_fn(ewb_tensor **in, ewb_tensor **out, void *ud) {
    dim_args *a = ud;
    return ewb_normalize(in[0], a->dim, a->eps, out);
}

static void test_cosine_normalize(void) {
    ewb_tensor *out = NULL, *g = NULL;
    int64_t s2[2] = {1, 2};
    { /* [1,0]·[1,1] = 1/√2 */
        float av[2] = {1, 0}, bv[2] = {1, 1};
        ewb_tensor *a = F32(2, s2, av), *b = F32(2, s2, bv);
        OK(ewb_cosine_similarity(a, b, 1, 1e-8, &out));
        CHECK(fabs(at(out, 0) - M_SQRT1_2) < 1e-6 && ewb_tensor_ndim(out) == 1, "cos: %g", at(out, 0));
        ewb_tensor_free(out);
        ewb_tensor_free(a); ewb_tensor_free(b);
    }
    { /* torch 1.13's eps: squared norms clamped to eps² each; [3,4]·[1,0], eps 10 -> 3/100.
         Gradients printed by PyTorch 1.13: a (0.0091, -0.0012), b (0.0297, 0.04) */
        float av[2] = {3, 4}, bv[2] = {1, 0};
        ewb_tensor *a = F32(2, s2, av), *b = F32(2, s2, bv);
        ewb_tensor_set_requires_grad(a, 1);
        ewb_tensor_set_requires_grad(b, 1);
        OK(ewb_cosine_similarity(a, b, -1, 10, &out));
        CHECK(fabs(at(out, 0) - 0.03) < 1e-7, "cos with eps 10: %g (0.3 would be the clamp of the norm product)", at(out, 0));
        OK(ewb_backward(out, NULL, 0));
        ewb_tensor_grad(a, &g);
        CHECK(fabs(at(g, 0) - 0.0091) < 1e-6 && fabs(at(g, 1) + 0.0012) < 1e-6, "cos grad a: %g %g", at(g, 0), at(g, 1));
        ewb_tensor_free(g);
        ewb_tensor_grad(b, &g);
        CHECK(fabs(at(g, 0) - 0.0297) < 1e-6 && fabs(at(g, 1) - 0.04) < 1e-6, "cos grad b: %g %g", at(g, 0), at(g, 1));
        ewb_tensor_free(g);
        ewb_tensor_free(out);
        ewb_tensor_free(a); ewb_tensor_free(b);
    }
    { /* gradchecks: last dim, a middle dim, and broadcasting (2,1,4) with (3,4) */
        int64_t sa[3] = {2, 3, 4}, sb[3] = {2, 1, 4}, sc[2] = {3, 4};
        ewb_tensor *a = T_req(3, sa), *b = T_req(3, sa), *c = T_req(3, sb), *d = T_req(2, sc);
        dim_args da = {-1, 1e-8};
        ewb_tensor *in[2] = {a, b};
        double e = gradcheck("cos dim -1", cos_fn, 2, in, &da, 1e-2, 1e-2);
        CHECK(e < 1e-2, "cosine gradcheck dim -1: %g", e);
        da.dim = 1;
        e = gradcheck("cos dim 1", cos_fn, 2, in, &da, 1e-2, 1e-2);
        CHECK(e < 1e-2, "cosine gradcheck dim 1: %g", e);
        in[0] = c; in[1] = d;
        da.dim = 2;
        OK(cos_fn(in, &out, &da));
        CHECK(ewb_tensor_ndim(out) == 2 && ewb_tensor_size(out, 0) == 2 && ewb_tensor_size(out, 1) == 3, "broadcast cos shape");
        ewb_tensor_free(out);
        e = gradcheck("cos broadcast", cos_fn, 2, in, &da, 1e-2, 1e-2);
        CHECK(e < 1e-2, "cosine gradcheck broadcast: %g", e);
        /* normalize */
        dim_args na = {1, 1e-12};
        in[0] = a;
        e = gradcheck("normalize dim 1", norm_fn, 1, in, &na, 1e-2, 1e-2);
        CHECK(e < 1e-2, "normalize gradcheck dim 1: %g", e);
        na.dim = -1;
        e = gradcheck("normalize dim -1", norm_fn, 1, in, &na, 1e-2, 1e-2);
        CHECK(e < 1e-2, "normalize gradcheck dim -1: %g", e);
        na.eps = 5; /* some rows clamped (norm < 5), as torch's clamp_min: no gradient through the norm */
        e = gradcheck("normalize clamped", norm_fn, 1, in, &na, 1e-2, 1e-2);
        CHECK(e < 1e-2, "normalize gradcheck eps 5: %g", e);
        int64_t sbad[2] = {4, 3};
        ewb_tensor *bad = T(2, sbad);
        FAILS(ewb_cosine_similarity(a, bad, 0, 1e-8, &out), "cosine_similarity: shapes f32[2,3,4] and f32[4,3] do not broadcast");
        ewb_tensor_free(bad);
        FAILS(ewb_cosine_similarity(a, b, 3, 1e-8, &out), "cosine_similarity: dim 3 out of range");
        FAILS(ewb_normalize(a, -4, 1e-12, &out), "normalize: dim -4 out of range for f32[2,3,4]");
        ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(c); ewb_tensor_free(d);
    }
    { /* normalize by hand, and PyTorch 1.13's gradients at eps 10 (clamped) and eps 5 (= the norm) */
        float xv[2] = {3, 4}, gv[2] = {1, 2};
        ewb_tensor *x = F32(2, s2, xv), *gg = F32(2, s2, gv);
        ewb_tensor_set_requires_grad(x, 1);
        const double eps[3] = {1e-12, 10, 5};
        const double want_y[3][2] = {{0.6, 0.8}, {0.3, 0.4}, {0.6, 0.8}};
        const double want_g[3][2] = {{-0.064, 0.048}, {0.1, 0.2}, {-0.064, 0.048}};
        for (int k = 0; k < 3; k++) {
            ewb_tensor_set_grad(x, NULL);
            OK(ewb_normalize(x, 1, eps[k], &out));
            CHECK(fabs(at(out, 0) - want_y[k][0]) < 1e-6 && fabs(at(out, 1) - want_y[k][1]) < 1e-6,
                  "normalize eps %g: %g %g", eps[k], at(out, 0), at(out, 1));
            OK(ewb_backward(out, gg, 0));
            ewb_tensor_grad(x, &g);
            CHECK(fabs(at(g, 0) - want_g[k][0]) < 1e-6 && fabs(at(g, 1) - want_g[k][1]) < 1e-6,
                  "normalize grad eps %g: %g %g", eps[k], at(g, 0), at(g, 1));
            ewb_tensor_free(g);
            ewb_tensor_free(out);
        }
        ewb_tensor_free(x); ewb_tensor_free(gg);
    }
}

int main(void) {
    ewb_manual_seed(7);
    test_cross_entropy();
    test_pointwise();
    test_cosine_normalize();
    return check_report();
}
