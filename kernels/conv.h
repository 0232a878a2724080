/* conv.h: naive reference twins of the 1-D convolutions in conv.c (direct
 * loops, no oneDNN), used only by tests. Same arguments and PyTorch
 * semantics as ewb_conv1d / ewb_conv_transpose1d; no autograd.
 *   conv:       x (B,Cin,L), w (Cout,Cin/G,K)  -> y (B,Cout,Lout)
 *   transposed: x (B,Cin,L), w (Cin,Cout/G,K)  -> y (B,Cout,Lout)
 * The backward twins ACCUMULATE into dx (shape of x), dw (shape of w) and
 * db (Cout), each of which may be NULL; dy is the gradient of y. */
#ifndef ECGWB_KERNELS_CONV_H
#define ECGWB_KERNELS_CONV_H
#include "../core/internal.h"
int ewb_conv1d_ref(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding, int dilation,
                   int groups, ewb_tensor **y);
int ewb_conv1d_ref_backward(ewb_tensor *x, ewb_tensor *w, ewb_tensor *dy, int stride, int padding,
                            int dilation, int groups, ewb_tensor *dx, ewb_tensor *dw, ewb_tensor *db);
int ewb_conv_transpose1d_ref(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding,
                             int output_padding, int dilation, int groups, ewb_tensor **y);
int ewb_conv_transpose1d_ref_backward(ewb_tensor *x, ewb_tensor *w, ewb_tensor *dy, int stride, int padding,
                                      int dilation, int groups, ewb_tensor *dx, ewb_tensor *dw, ewb_tensor *db);
#endif
