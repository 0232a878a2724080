/* unary.h: the oneDNN eltwise path of the unary ops and its naive C twins,
 * exposed for tests (tests/test_unary.c checks one against the other).
 * Buffers are contiguous f32 of n elements; backward overwrites dx. */
#ifndef ECGWB_KERNELS_UNARY_H
#define ECGWB_KERNELS_UNARY_H
#include "../core/internal.h"

enum {
    EWB_UN_RELU, EWB_UN_GELU_ERF, EWB_UN_GELU_TANH, EWB_UN_TANH, EWB_UN_SIGMOID,
    EWB_UN_EXP, EWB_UN_SILU, EWB_UN_SQRT, EWB_UN_ABS,
    EWB_UN_COUNT
};

/* oneDNN eltwise primitives (cached by kind and element count) */
int ewb_unary_dnnl_fwd(int kind, const float *x, float *y, int64_t n);                    /* y (n) = f(x) */
int ewb_unary_dnnl_bwd(int kind, const float *x, const float *dy, float *dx, int64_t n);  /* dx (n) = f'(x) dy */
/* naive reference twins: torch's formulas in plain C */
void ewb_unary_ref_fwd(int kind, const float *x, float *y, int64_t n);
void ewb_unary_ref_bwd(int kind, const float *x, const float *dy, float *dx, int64_t n);
#endif
