/* test_optim.c: the fused optimiser kernels (kernels/optim.c) against plain
 * double-precision loops written from torch.optim's documented algorithms,
 * over several steps; the global grad norm against a hand sum; EMA; and the
 * errors for mismatched shapes, dtypes and arguments. */
#include "check.h"

enum { N = 37 };

static void to_f(const ewb_tensor *t, float *dst) { ewb_tensor_copy_to(t, dst, ewb_tensor_numel(t) * 4); }
static double max_diff(const float *a, const double *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) if (!(fabs(a[i] - b[i]) <= d)) d = fabs(a[i] - b[i]);
    return d;
}

static void test_adamw(void) {
    int64_t s[2] = {N, 1};
    ewb_tensor *p = T(2, s), *m, *v;
    OK(ewb_tensor_new(&m, 0, 2, s));
    OK(ewb_tensor_new(&v, 0, 2, s));
    double P[N], M[N] = {0}, V[N] = {0};
    float buf[N];
    to_f(p, buf);
    for (int i = 0; i < N; i++) P[i] = buf[i];
    double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    for (int step = 1; step <= 5; step++) {
        ewb_tensor *g = T(2, s);
        float G[N];
        to_f(g, G);
        OK(ewb_adamw_step(p, g, m, v, lr, b1, b2, eps, wd, step));
        for (int i = 0; i < N; i++) { /* torch.optim.AdamW, amsgrad=False */
            P[i] *= 1 - lr * wd;
            M[i] = b1 * M[i] + (1 - b1) * G[i];
            V[i] = b2 * V[i] + (1 - b2) * G[i] * G[i];
            double mhat = M[i] / (1 - pow(b1, step)), vhat = V[i] / (1 - pow(b2, step));
            P[i] -= lr * mhat / (sqrt(vhat) + eps);
        }
        ewb_tensor_free(g);
    }
    float fp[N], fm[N], fv[N];
    to_f(p, fp); to_f(m, fm); to_f(v, fv);
    CHECK(max_diff(fp, P, N) < 1e-5, "adamw param differs by %g", max_diff(fp, P, N));
    CHECK(max_diff(fm, M, N) < 1e-6, "adamw m differs by %g", max_diff(fm, M, N));
    CHECK(max_diff(fv, V, N) < 1e-6, "adamw v differs by %g", max_diff(fv, V, N));
    /* the first step of Adam moves every element by about lr (|mhat/sqrt(vhat)| = 1) */
    {
        ewb_tensor *q, *g = T(2, s), *m1, *v1;
        OK(ewb_full(&q, 0, 2, s, 0.5));
        OK(ewb_tensor_new(&m1, 0, 2, s));
        OK(ewb_tensor_new(&v1, 0, 2, s));
        OK(ewb_adamw_step(q, g, m1, v1, 0.01, 0.9, 0.999, 0, 0, 1));
        float fq[N], fg[N];
        to_f(q, fq); to_f(g, fg);
        int bad = 0;
        for (int i = 0; i < N; i++) bad += fabs(fq[i] - (0.5 - 0.01 * (fg[i] > 0 ? 1 : -1))) > 1e-6;
        CHECK(bad == 0, "adamw first step is not lr*sign(g) in %d elements", bad);
        ewb_tensor_free(q); ewb_tensor_free(g); ewb_tensor_free(m1); ewb_tensor_free(v1);
    }
    /* errors */
    int64_t s2[2] = {N, 2};
    ewb_tensor *bad = T(2, s2), *ib, *tr;
    OK(ewb_tensor_new(&ib, EWB_DTYPE_I64, 2, s));
    FAILS(ewb_adamw_step(p, bad, m, v, lr, b1, b2, eps, wd, 6), "adamw_step: grad f32[37,2] does not match param f32[37,1]");
    FAILS(ewb_adamw_step(p, p, bad, v, lr, b1, b2, eps, wd, 6), "adamw_step: m (exp_avg) f32[37,2] does not match");
    FAILS(ewb_adamw_step(p, p, m, bad, lr, b1, b2, eps, wd, 6), "v (exp_avg_sq)");
    FAILS(ewb_adamw_step(p, ib, m, v, lr, b1, b2, eps, wd, 6), "expected an f32 tensor, got i64[37,1]");
    FAILS(ewb_adamw_step(p, p, m, v, lr, b1, b2, eps, wd, 0), "step counts from 1");
    FAILS(ewb_adamw_step(p, p, m, v, lr, 1.0, b2, eps, wd, 1), "betas must be in [0, 1)");
    FAILS(ewb_adamw_step(p, p, m, NULL, lr, b1, b2, eps, wd, 1), "tensor argument is nil");
    OK(ewb_transpose(bad, 0, 1, &tr));
    FAILS(ewb_adamw_step(tr, tr, tr, tr, lr, b1, b2, eps, wd, 1), "param must be contiguous");
    ewb_tensor_free(tr); ewb_tensor_free(bad); ewb_tensor_free(ib);
    ewb_tensor_free(p); ewb_tensor_free(m); ewb_tensor_free(v);
}

/* torch.optim.SGD on one tensor, with the first step initialising the buffer */
static void sgd_ref(double *P, double *B, const float *G, int first, double lr, double mu, double damp,
                    double wd, int nesterov) {
    for (int i = 0; i < N; i++) {
        double d = G[i] + wd * P[i];
        if (mu != 0) {
            B[i] = first ? d : mu * B[i] + (1 - damp) * d;
            d = nesterov ? d + mu * B[i] : B[i];
        }
        P[i] -= lr * d;
    }
}

static void test_sgd(void) {
    int64_t s[1] = {N};
    struct { double mu, damp, wd; int nesterov; } cfg[4] = {
        {0, 0, 0, 0}, {0.9, 0, 1e-2, 0}, {0.9, 0.3, 0, 0}, {0.8, 0, 5e-2, 1}};
    for (int c = 0; c < 4; c++) {
        ewb_tensor *p = T(1, s), *b;
        OK(ewb_tensor_new(&b, 0, 1, s));
        double P[N], B[N] = {0};
        float buf[N];
        to_f(p, buf);
        for (int i = 0; i < N; i++) P[i] = buf[i];
        for (int step = 1; step <= 4; step++) {
            ewb_tensor *g = T(1, s);
            float G[N];
            to_f(g, G);
            /* first step: zero buffer and no dampening == torch's buf = d */
            OK(ewb_sgd_step(p, g, cfg[c].mu ? b : NULL, 0.05, cfg[c].mu, step == 1 ? 0 : cfg[c].damp, cfg[c].wd, cfg[c].nesterov));
            sgd_ref(P, B, G, step == 1, 0.05, cfg[c].mu, cfg[c].damp, cfg[c].wd, cfg[c].nesterov);
            ewb_tensor_free(g);
        }
        float fp[N], fb[N];
        to_f(p, fp); to_f(b, fb);
        CHECK(max_diff(fp, P, N) < 1e-5, "sgd config %d: param differs by %g", c, max_diff(fp, P, N));
        if (cfg[c].mu) CHECK(max_diff(fb, B, N) < 1e-5, "sgd config %d: buffer differs by %g", c, max_diff(fb, B, N));
        ewb_tensor_free(p); ewb_tensor_free(b);
    }
    int64_t s2[1] = {N + 1};
    ewb_tensor *p = T(1, s), *b = T(1, s), *bad = T(1, s2);
    FAILS(ewb_sgd_step(p, bad, b, 0.1, 0.9, 0, 0, 0), "sgd_step: grad f32[38] does not match param f32[37]");
    FAILS(ewb_sgd_step(p, p, bad, 0.1, 0.9, 0, 0, 0), "sgd_step: momentum buffer f32[38] does not match param f32[37]");
    FAILS(ewb_sgd_step(p, p, NULL, 0.1, 0.9, 0, 0, 0), "needs a momentum buffer");
    FAILS(ewb_sgd_step(p, p, b, 0.1, 0, 0, 0, 1), "nesterov needs momentum > 0");
    FAILS(ewb_sgd_step(p, p, b, -0.1, 0, 0, 0, 0), "lr, momentum and weight_decay must be >= 0");
    ewb_tensor_free(p); ewb_tensor_free(b); ewb_tensor_free(bad);
}

static void test_grad_norm(void) {
    int64_t s1[2] = {3, 5}, s2[1] = {7};
    ewb_tensor *a = T(2, s1), *b = T(1, s2), *at;
    float fa[15], fb[7];
    to_f(a, fa); to_f(b, fb);
    double ss = 0;
    for (int i = 0; i < 15; i++) ss += (double)fa[i] * fa[i];
    for (int i = 0; i < 7; i++) ss += (double)fb[i] * fb[i];
    double norm = -1;
    ewb_tensor *gs[3] = {a, NULL, b};
    OK(ewb_grad_norm(3, gs, &norm));
    CHECK(fabs(norm - sqrt(ss)) < 1e-9 * sqrt(ss), "grad_norm %g vs %g", norm, sqrt(ss));
    /* a strided view gives the same norm */
    OK(ewb_transpose(a, 0, 1, &at));
    ewb_tensor *gt[2] = {at, b};
    double n2 = -1;
    OK(ewb_grad_norm(2, gt, &n2));
    CHECK(fabs(n2 - norm) < 1e-9 * norm, "grad_norm of a transposed view %g vs %g", n2, norm);
    OK(ewb_grad_norm(0, NULL, &n2));
    CHECK(n2 == 0, "grad_norm of nothing is %g", n2);
    /* 3-4-5 */
    int64_t s3[1] = {2};
    ewb_tensor *t;
    float v[2] = {3, 4};
    OK(ewb_tensor_from_data(&t, 0, 1, s3, v));
    OK(ewb_grad_norm(1, &t, &n2));
    CHECK(n2 == 5, "grad_norm of (3,4) is %g", n2);
    ewb_tensor *ib;
    OK(ewb_tensor_new(&ib, EWB_DTYPE_I32, 1, s3));
    ewb_tensor *gb[2] = {t, ib};
    FAILS(ewb_grad_norm(2, gb, &n2), "grad_norm: expected an f32 tensor, got i32[2]");
    ewb_tensor_free(ib); ewb_tensor_free(t);
    ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(at);
}

static void test_ema(void) {
    int64_t s[1] = {N};
    ewb_tensor *e = T(1, s), *p = T(1, s);
    float fe[N], fp[N], out[N];
    to_f(e, fe); to_f(p, fp);
    OK(ewb_ema_update(e, p, 0.9));
    to_f(e, out);
    double ref[N];
    for (int i = 0; i < N; i++) ref[i] = 0.9 * fe[i] + 0.1 * fp[i];
    CHECK(max_diff(out, ref, N) < 1e-6, "ema differs by %g", max_diff(out, ref, N));
    int64_t s2[1] = {N - 1};
    ewb_tensor *bad = T(1, s2);
    FAILS(ewb_ema_update(e, bad, 0.9), "ema_update: ema f32[37] does not match param f32[36]");
    FAILS(ewb_ema_update(e, p, 1.5), "decay must be in [0, 1]");
    ewb_tensor_free(bad); ewb_tensor_free(e); ewb_tensor_free(p);
}

int main(void) {
    ewb_manual_seed(7);
    test_adamw();
    test_sgd();
    test_grad_norm();
    test_ema();
    return check_report();
}
