/* softmax.h: the naive reference twins of ewb_softmax / ewb_log_softmax
 * (kernels/softmax.c): double-precision loops without oneDNN, tests only.
 * is_log selects log_softmax. The backward takes the forward's output y and
 * the output gradient dy and ACCUMULATES into dx (shape of y). */
#ifndef ECGWB_KERNELS_SOFTMAX_H
#define ECGWB_KERNELS_SOFTMAX_H
#include "../core/internal.h"
int ewb_softmax_ref(ewb_tensor *x, int dim, int is_log, ewb_tensor **y);
int ewb_softmax_ref_backward(ewb_tensor *y, ewb_tensor *dy, int dim, int is_log, ewb_tensor *dx);
#endif
