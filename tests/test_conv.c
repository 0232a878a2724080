/* test_conv.c: conv1d and conv_transpose1d (kernels/conv.c). The oneDNN path
 * is checked against the naive twins of kernels/conv.h (forward and every
 * gradient) over strides, paddings, dilations, groups, depthwise and
 * output_padding; against hand-computed values for PyTorch's meaning of
 * dilation and of the transposed weight layout; by finite differences on
 * x, w and b; and bad arguments must fail with a clear message. */
#include "check.h"
#include "../kernels/conv.h"

typedef struct {
    int transposed, stride, padding, output_padding, dilation, groups, bias;
    int64_t B, Cin, Cout, L, K;
} cfg;

static int run(const cfg *c, ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, ewb_tensor **y) {
    if (c->transposed)
        return ewb_conv_transpose1d(x, w, b, c->stride, c->padding, c->output_padding, c->dilation, c->groups, y);
    return ewb_conv1d(x, w, b, c->stride, c->padding, c->dilation, c->groups, y);
}

static void weight_shape(const cfg *c, int64_t *ws) {
    ws[0] = c->transposed ? c->Cin : c->Cout;
    ws[1] = c->transposed ? c->Cout / c->groups : c->Cin / c->groups;
    ws[2] = c->K;
}

static double grad_err(ewb_tensor *t, ewb_tensor *ref) {
    ewb_tensor *g = NULL;
    ewb_tensor_grad(t, &g);
    if (!g) return INFINITY;
    double e = max_rel_err(g, ref);
    ewb_tensor_free(g);
    return e;
}

/* oneDNN vs naive twin: forward and the gradients of x, w, b. With
   strided_x, x is a transposed view of a (B, L, Cin) tensor. */
static void compare(const char *name, cfg c, int strided_x) {
    int64_t xs[3] = {c.B, c.Cin, c.L}, xt[3] = {c.B, c.L, c.Cin}, ws[3], bs[1] = {c.Cout};
    weight_shape(&c, ws);
    ewb_tensor *x, *xbase = NULL;
    if (strided_x) {
        xbase = T_req(3, xt);
        OK(ewb_transpose(xbase, 1, 2, &x));
        CHECK(!ewb_tensor_is_contiguous(x), "%s: x should be a strided view", name);
    } else {
        x = T_req(3, xs);
    }
    ewb_tensor *w = T_req(3, ws), *b = c.bias ? T_req(1, bs) : NULL, *y = NULL, *yr = NULL;
    OK(run(&c, x, w, b, &y));
    if (!y) { ewb_tensor_free(x); ewb_tensor_free(xbase); ewb_tensor_free(w); ewb_tensor_free(b); return; }
    if (c.transposed)
        OK(ewb_conv_transpose1d_ref(x, w, b, c.stride, c.padding, c.output_padding, c.dilation, c.groups, &yr));
    else
        OK(ewb_conv1d_ref(x, w, b, c.stride, c.padding, c.dilation, c.groups, &yr));
    double e = max_rel_err(y, yr);
    CHECK(e < 1e-5, "%s: forward error %g vs naive twin", name, e);
    ewb_tensor *dy = T(y->ndim, y->shape);
    OK(ewb_backward(y, dy, 0));
    ewb_tensor *dx = ewb_zeros_like(x), *dw = ewb_zeros_like(w), *db = b ? ewb_zeros_like(b) : NULL;
    if (c.transposed)
        OK(ewb_conv_transpose1d_ref_backward(x, w, dy, c.stride, c.padding, c.dilation, c.groups, dx, dw, db));
    else
        OK(ewb_conv1d_ref_backward(x, w, dy, c.stride, c.padding, c.dilation, c.groups, dx, dw, db));
    if (!strided_x) {
        e = grad_err(x, dx);
    } else { /* xbase's grad is (B, L, Cin): compare through a transposed view of dx */
        ewb_tensor *g = NULL, *gt = NULL;
        ewb_tensor_grad(xbase, &g);
        if (g) OK(ewb_transpose(g, 1, 2, &gt));
        e = gt ? max_rel_err(gt, dx) : INFINITY;
        ewb_tensor_free(g);
        ewb_tensor_free(gt);
    }
    CHECK(e < 1e-5, "%s: dx error %g vs naive twin", name, e);
    e = grad_err(w, dw);
    CHECK(e < 1e-5, "%s: dw error %g vs naive twin", name, e);
    if (b) {
        e = grad_err(b, db);
        CHECK(e < 1e-5, "%s: db error %g vs naive twin", name, e);
    }
    /* a second backward through a fresh graph must accumulate into .grad */
    ewb_tensor *y2 = NULL;
    if (!strided_x) OK(run(&c, x, w, b, &y2));
    if (y2) {
        OK(ewb_backward(y2, dy, 0));
        ewb_add_(dw, dw, 1.0);
        e = grad_err(w, dw);
        CHECK(e < 1e-5, "%s: dw does not accumulate over two backwards (error %g)", name, e);
        ewb_tensor_free(y2);
    }
    ewb_tensor *all[] = {x, xbase, w, b, y, yr, dy, dx, dw, db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) ewb_tensor_free(all[i]);
}

static int gc_run(ewb_tensor **in, ewb_tensor **out, void *ud) { return run(ud, in[0], in[1], in[2], out); }

static void grad_check(const char *name, cfg c) {
    int64_t xs[3] = {c.B, c.Cin, c.L}, ws[3], bs[1] = {c.Cout};
    weight_shape(&c, ws);
    ewb_tensor *in[3] = {T_req(3, xs), T_req(3, ws), c.bias ? T_req(1, bs) : NULL};
    double e = gradcheck(name, gc_run, 3, in, &c, 1e-2, 1e-2);
    CHECK(e < 1e-2, "%s: gradcheck error %g", name, e);
    for (int i = 0; i < 3; i++) ewb_tensor_free(in[i]);
}

static ewb_tensor *vec3(int64_t a, int64_t b, int64_t c, const float *data) {
    ewb_tensor *t = NULL;
    int64_t s[3] = {a, b, c};
    ewb_tensor_from_data(&t, EWB_DTYPE_F32, 3, s, data);
    return t;
}

/* values worked out by hand */
static void hand_values(void) {
    /* dilation 2 (PyTorch): y[o] = x[o]*1 + x[o+2]*(-1) */
    float xv[5] = {1, 2, 3, 4, 5}, wv[2] = {1, -1};
    ewb_tensor *x = vec3(1, 1, 5, xv), *w = vec3(1, 1, 2, wv), *y = NULL;
    OK(ewb_conv1d(x, w, NULL, 1, 0, 2, 1, &y));
    if (y) {
        CHECK(y->shape[2] == 3, "dilated conv length %lld, want 3", (long long)y->shape[2]);
        for (int i = 0; i < 3 && i < y->shape[2]; i++)
            CHECK(ewb_f32(y)[i] == -2.0f, "dilated conv y[%d] = %g, want -2", i, ewb_f32(y)[i]);
    }
    ewb_tensor_free(y);
    ewb_tensor_free(x);
    ewb_tensor_free(w);
    /* transposed, stride 2: x = [1, 2], w = [1, 10, 100] -> [1, 10, 102, 20, 200];
       output_padding 1 adds a sample that only the bias reaches */
    float x2[2] = {1, 2}, w2[3] = {1, 10, 100}, b2[1] = {0.5f}, want[6] = {1.5f, 10.5f, 102.5f, 20.5f, 200.5f, 0.5f};
    ewb_tensor *b = NULL;
    int64_t one = 1;
    ewb_tensor_from_data(&b, EWB_DTYPE_F32, 1, &one, b2);
    x = vec3(1, 1, 2, x2);
    w = vec3(1, 1, 3, w2);
    OK(ewb_conv_transpose1d(x, w, b, 2, 0, 1, 1, 1, &y));
    if (y) {
        CHECK(y->shape[2] == 6, "transposed length %lld, want 6", (long long)y->shape[2]);
        for (int i = 0; i < 6 && i < y->shape[2]; i++)
            CHECK(ewb_f32(y)[i] == want[i], "transposed y[%d] = %g, want %g", i, ewb_f32(y)[i], want[i]);
    }
    ewb_tensor_free(y);
    /* groups: w (Cin=2, Cout/G=1, K=1), G=2: channel c of y is x[c]*w[c] */
    float x3[4] = {1, 2, 3, 4}, w3[2] = {10, 100};
    ewb_tensor *x3t = vec3(1, 2, 2, x3), *w3t = vec3(2, 1, 1, w3);
    OK(ewb_conv_transpose1d(x3t, w3t, NULL, 1, 0, 0, 1, 2, &y));
    if (y) {
        float want3[4] = {10, 20, 300, 400};
        for (int i = 0; i < 4; i++) CHECK(ewb_f32(y)[i] == want3[i], "grouped transposed y[%d] = %g, want %g", i, ewb_f32(y)[i], want3[i]);
    }
    ewb_tensor *all[] = {y, x, w, b, x3t, w3t};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) ewb_tensor_free(all[i]);
}

static void bad_inputs(void) {
    int64_t xs[3] = {2, 3, 10}, ws[3] = {4, 3, 3}, w2s[3] = {4, 2, 3}, w1s[3] = {4, 1, 3}, wl[3] = {4, 3, 7}, bs[1] = {5};
    int64_t x2s[2] = {3, 10}, x4s[3] = {2, 4, 10}, wt[3] = {3, 3, 3};
    ewb_tensor *x = T(3, xs), *w = T(3, ws), *w2 = T(3, w2s), *w1 = T(3, w1s), *wlong = T(3, wl), *b = T(1, bs);
    ewb_tensor *x2 = T(2, x2s), *x4 = T(3, x4s), *wtr = T(3, wt), *xi = NULL, *y = NULL;
    ewb_tensor_new(&xi, EWB_DTYPE_I64, 3, xs);
    FAILS(ewb_conv1d(x, w2, NULL, 1, 0, 1, 1, &y), "expects 2");        /* wrong channel count */
    FAILS(ewb_conv1d(xi, w, NULL, 1, 0, 1, 1, &y), "expected an f32");  /* wrong dtype */
    FAILS(ewb_conv1d(x, w1, NULL, 1, 0, 1, 2, &y), "does not divide");  /* groups 2 vs 3 channels */
    FAILS(ewb_conv1d(x4, w1, NULL, 1, 0, 1, 3, &y), "does not divide"); /* groups 3 vs 4 channels */
    FAILS(ewb_conv1d(x, wlong, NULL, 1, 0, 2, 1, &y), "too short");     /* extent 13 > 10 */
    FAILS(ewb_conv1d(x, w, b, 1, 0, 1, 1, &y), "bias");
    FAILS(ewb_conv1d(x2, w, NULL, 1, 0, 1, 1, &y), "(B, Cin, L)");
    FAILS(ewb_conv1d(x, w, NULL, 0, 0, 1, 1, &y), "invalid stride");
    FAILS(ewb_conv1d(x, w, NULL, 1, 0, 0, 1, &y), "dilation");
    FAILS(ewb_conv_transpose1d(x4, wtr, NULL, 1, 0, 0, 1, 1, &y), "expects 3"); /* 4 channels, weight (3,..) */
    FAILS(ewb_conv_transpose1d(xi, wtr, NULL, 1, 0, 0, 1, 1, &y), "expected an f32");
    FAILS(ewb_conv_transpose1d(x, wtr, NULL, 2, 0, 2, 1, 1, &y), "output_padding 2 must be smaller");
    FAILS(ewb_conv_transpose1d(x, w1, NULL, 1, 0, 0, 1, 2, &y), "does not divide");
    /* the one PyTorch-valid case oneDNN cannot express reports itself */
    FAILS(ewb_conv_transpose1d(x, wtr, NULL, 1, 0, 2, 3, 1, &y), "not supported");
    CHECK(y == NULL, "no output on failure");
    ewb_tensor *all[] = {x, w, w2, w1, wlong, b, x2, x4, wtr, xi};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) ewb_tensor_free(all[i]);
}

int main(void) {
    ewb_manual_seed(7);
    /* transposed, stride, padding, output_padding, dilation, groups, bias, B, Cin, Cout, L, K */
    cfg convs[] = {
        {0, 1, 0, 0, 1, 1, 1, 2, 3, 4, 17, 3},
        {0, 2, 1, 0, 1, 1, 1, 2, 3, 5, 17, 4},  /* stride 2, floor */
        {0, 1, 2, 0, 2, 1, 1, 2, 3, 4, 16, 3},  /* dilation 2 */
        {0, 1, 1, 0, 1, 2, 1, 2, 4, 6, 15, 3},  /* groups 2 */
        {0, 1, 1, 0, 1, 4, 1, 2, 4, 4, 15, 3},  /* depthwise */
        {0, 2, 1, 0, 1, 4, 0, 2, 4, 8, 15, 5},  /* depthwise, multiplier 2, no bias */
        {0, 2, 3, 0, 2, 2, 0, 3, 4, 6, 20, 3},  /* everything at once */
        {0, 2, 0, 0, 1, 1, 1, 2, 12, 32, 64, 2}, /* ECG-FM's feature extractor layer */
        {0, 1, 0, 0, 1, 1, 1, 1, 5, 3, 7, 1},   /* K = 1 */
    };
    cfg deconvs[] = {
        {1, 1, 0, 0, 1, 1, 1, 2, 3, 4, 9, 3},
        {1, 2, 1, 1, 1, 1, 1, 2, 3, 5, 9, 4},   /* stride 2, output_padding */
        {1, 1, 1, 0, 2, 1, 1, 2, 3, 4, 9, 3},   /* dilation 2 */
        {1, 2, 1, 1, 1, 2, 1, 2, 4, 6, 9, 3},   /* groups 2, output_padding */
        {1, 2, 0, 0, 1, 4, 1, 2, 4, 4, 9, 3},   /* depthwise */
        {1, 2, 0, 1, 1, 1, 0, 2, 3, 4, 9, 3},   /* output_padding > padding */
        {1, 1, 1, 1, 2, 2, 1, 2, 4, 2, 9, 3},   /* output_padding >= stride, < dilation */
        {1, 4, 2, 3, 2, 2, 1, 3, 6, 4, 8, 4},   /* everything at once */
    };
    char name[64];
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
        snprintf(name, sizeof name, "conv1d[%zu]", i);
        compare(name, convs[i], 0);
    }
    for (size_t i = 0; i < sizeof deconvs / sizeof *deconvs; i++) {
        snprintf(name, sizeof name, "conv_transpose1d[%zu]", i);
        compare(name, deconvs[i], 0);
    }
    compare("conv1d strided x", convs[3], 1);
    compare("conv_transpose1d strided x", deconvs[3], 1);
    cfg gc[] = {
        {0, 2, 1, 0, 2, 2, 1, 2, 4, 2, 9, 3},
        {0, 1, 1, 0, 1, 2, 1, 1, 2, 2, 6, 3},
        {1, 2, 1, 1, 2, 2, 1, 2, 4, 2, 4, 3},
        {1, 1, 0, 0, 1, 1, 1, 1, 2, 3, 4, 2},
    };
    for (size_t i = 0; i < sizeof gc / sizeof *gc; i++) {
        snprintf(name, sizeof name, "%s gradcheck[%zu]", gc[i].transposed ? "conv_transpose1d" : "conv1d", i);
        grad_check(name, gc[i]);
    }
    hand_values();
    bad_inputs();
    return check_report();
}
