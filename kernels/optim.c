/* optim.c: fused optimiser updates, in place and outside autograd:
 * AdamW and SGD steps, the global gradient L2 norm (for clipping) and the
 * exponential moving average of weights.
 *
 * The updates follow torch.optim's single-tensor code in float32, term by
 * term, so that a run matches PyTorch's to rounding:
 *   AdamW (step t >= 1):
 *     p *= 1 - lr*wd
 *     m = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g*g
 *     p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   SGD:
 *     d = g + wd*p
 *     buf = momentum*buf + (1-dampening)*d ;  d = nesterov ? d + momentum*buf : buf
 *     p -= lr*d
 * torch initialises the momentum buffer to d on the first step (no
 * dampening). Here the caller owns a zero-filled buffer and passes
 * dampening = 0 on the first step: momentum*0 + (1-0)*d = d exactly
 * (lua/ecgwb/optim.lua does this). With momentum == 0 the buffer is unused
 * and may be NULL.
 *
 * param, m, v, buf and ema are updated in place and must be contiguous f32;
 * a strided grad is copied first. */
#include "../core/internal.h"
#include <string.h>

static int same_shape(const ewb_tensor *a, const ewb_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* a state tensor updated in place: alive, f32, contiguous, shaped like param */
static int check_state(const char *op, const char *what, const ewb_tensor *t, const ewb_tensor *param) {
    EWB_TRY(ewb_check_f32(op, t));
    if (!same_shape(t, param)) return ewb_error("%s: %s %s does not match param %s", op, what, ewb_s(t), ewb_s(param));
    if (!ewb_tensor_is_contiguous(t)) return ewb_error("%s: %s must be contiguous, got a strided view %s", op, what, ewb_s(t));
    return 0;
}

int ewb_adamw_step(ewb_tensor *param, ewb_tensor *grad, ewb_tensor *m, ewb_tensor *v, double lr,
                   double beta1, double beta2, double eps, double weight_decay, int64_t step) {
    const char *op = "adamw_step";
    EWB_TRY(ewb_check_f32(op, param));
    if (!ewb_tensor_is_contiguous(param)) return ewb_error("%s: param must be contiguous, got a strided view %s", op, ewb_s(param));
    EWB_TRY(ewb_check_f32(op, grad));
    if (!same_shape(grad, param)) return ewb_error("%s: grad %s does not match param %s", op, ewb_s(grad), ewb_s(param));
    EWB_TRY(check_state(op, "m (exp_avg)", m, param));
    EWB_TRY(check_state(op, "v (exp_avg_sq)", v, param));
    if (step < 1) return ewb_error("%s: step counts from 1, got %lld", op, (long long)step);
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
        return ewb_error("%s: betas must be in [0, 1), got (%g, %g)", op, beta1, beta2);
    if (!(eps >= 0) || !(lr >= 0) || !(weight_decay >= 0))
        return ewb_error("%s: lr, eps and weight_decay must be >= 0, got lr=%g eps=%g weight_decay=%g", op, lr, eps, weight_decay);
    ewb_tensor *gc = ewb_contig_or_self(grad);
    if (!gc) return -1;
    int64_t n = ewb_tensor_numel(param);
    float *p = ewb_f32(param), *mp = ewb_f32(m), *vp = ewb_f32(v); // (n)
    const float *g = ewb_f32(gc);                                   // (n)
    float decay = (float)(1.0 - lr * weight_decay);
    float b1 = (float)beta1, b2 = (float)beta2, c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2);
    float step_size = (float)(lr / (1.0 - pow(beta1, (double)step)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, (double)step));
    float fe = (float)eps;
    #pragma omp parallel for if (n > 1 << 15)
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i] * decay;
        float mi = b1 * mp[i] + c1 * g[i];
        float vi = b2 * vp[i] + c2 * g[i] * g[i];
        mp[i] = mi;
        vp[i] = vi;
        p[i] = pi - step_size * (mi / (sqrtf(vi) / bc2_sqrt + fe));
    }
    ewb_tensor_free(gc);
    return 0;
}

int ewb_sgd_step(ewb_tensor *param, ewb_tensor *grad, ewb_tensor *buf, double lr, double momentum,
                 double dampening, double weight_decay, int nesterov) {
    const char *op = "sgd_step";
    EWB_TRY(ewb_check_f32(op, param));
    if (!ewb_tensor_is_contiguous(param)) return ewb_error("%s: param must be contiguous, got a strided view %s", op, ewb_s(param));
    EWB_TRY(ewb_check_f32(op, grad));
    if (!same_shape(grad, param)) return ewb_error("%s: grad %s does not match param %s", op, ewb_s(grad), ewb_s(param));
    if (!(lr >= 0) || !(momentum >= 0) || !(weight_decay >= 0))
        return ewb_error("%s: lr, momentum and weight_decay must be >= 0, got lr=%g momentum=%g weight_decay=%g", op, lr, momentum, weight_decay);
    if (nesterov && (momentum <= 0 || dampening != 0))
        return ewb_error("%s: nesterov needs momentum > 0 and zero dampening, got momentum=%g dampening=%g", op, momentum, dampening);
    if (momentum != 0) {
        if (!buf) return ewb_error("%s: momentum %g needs a momentum buffer, got nil", op, momentum);
        EWB_TRY(check_state(op, "momentum buffer", buf, param));
    }
    ewb_tensor *gc = ewb_contig_or_self(grad);
    if (!gc) return -1;
    int64_t n = ewb_tensor_numel(param);
    float *p = ewb_f32(param), *b = momentum != 0 ? ewb_f32(buf) : NULL; // (n)
    const float *g = ewb_f32(gc);                                         // (n)
    float flr = (float)lr, mu = (float)momentum, damp = (float)(1.0 - dampening), wd = (float)weight_decay;
    #pragma omp parallel for if (n > 1 << 15)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (wd != 0) d += wd * p[i];
        if (b) {
            float bi = mu * b[i] + damp * d;
            b[i] = bi;
            d = nesterov ? d + mu * bi : bi;
        }
        p[i] -= flr * d;
    }
    ewb_tensor_free(gc);
    return 0;
}

/* sqrt of the sum of squares of every element of every grad; NULL entries
   (parameters without a gradient) are skipped, as torch's clip_grad_norm_ does */
int ewb_grad_norm(int n, ewb_tensor *const *grads, double *norm) {
    if (n < 0) return ewb_error("grad_norm: negative tensor count %d", n);
    if (n > 0 && !grads) return ewb_error("grad_norm: grads array is NULL");
    for (int k = 0; k < n; k++)
        if (grads[k]) EWB_TRY(ewb_check_f32("grad_norm", grads[k]));
    double total = 0;
    for (int k = 0; k < n; k++) {
        if (!grads[k]) continue;
        ewb_tensor *c = ewb_contig_or_self(grads[k]);
        if (!c) return -1;
        const float *g = ewb_f32(c); // (numel)
        int64_t m = ewb_tensor_numel(c);
        double s = 0;
        #pragma omp parallel for reduction(+ : s) if (m > 1 << 15)
        for (int64_t i = 0; i < m; i++) s += (double)g[i] * g[i];
        total += s;
        ewb_tensor_free(c);
    }
    *norm = sqrt(total);
    return 0;
}

int ewb_ema_update(ewb_tensor *ema, ewb_tensor *param, double decay) {
    const char *op = "ema_update";
    EWB_TRY(ewb_check_f32(op, param));
    EWB_TRY(check_state(op, "ema", ema, param));
    if (!(decay >= 0 && decay <= 1)) return ewb_error("%s: decay must be in [0, 1], got %g", op, decay);
    ewb_tensor *pc = ewb_contig_or_self(param);
    if (!pc) return -1;
    int64_t n = ewb_tensor_numel(ema);
    float *e = ewb_f32(ema);          // (n)
    const float *p = ewb_f32(pc);     // (n)
    float d = (float)decay, c = (float)(1.0 - decay);
    #pragma omp parallel for if (n > 1 << 15)
    for (int64_t i = 0; i < n; i++) e[i] = d * e[i] + c * p[i];
    ewb_tensor_free(pc);
    return 0;
}
