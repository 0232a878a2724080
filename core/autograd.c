/* autograd.c: the define-by-run tape. Each differentiable op records one
 * node on its output (ewb_record); ewb_backward sorts the nodes reachable from
 * the root topologically, runs their backward functions in reverse order, and
 * frees the graph unless asked to retain it. */
#include "internal.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local int g_grad_enabled = 1;
static int g_anomaly;
static uint64_t g_mark;

int ewb_grad_enabled(void) { return g_grad_enabled; }
void ewb_set_grad_enabled(int flag) { g_grad_enabled = flag != 0; }
int ewb_anomaly_enabled(void) { return g_anomaly; }
void ewb_set_anomaly(int flag) { g_anomaly = flag != 0; }

int ewb_needs_grad(int n, ewb_tensor *const *ins) {
    if (!g_grad_enabled) return 0;
    for (int i = 0; i < n; i++)
        if (ins[i] && ins[i]->requires_grad) return 1;
    return 0;
}

/* drops what a node holds (inputs, saved tensors, pending gradient) */
static void node_clear(ewb_node *n) {
    for (int i = 0; i < EWB_NODE_MAX_IN; i++) { ewb_tensor_free(n->inputs[i]); n->inputs[i] = NULL; }
    for (int i = 0; i < EWB_NODE_MAX_SAVED; i++) { ewb_tensor_free(n->saved[i]); n->saved[i] = NULL; }
    ewb_tensor_free(n->gout);
    n->gout = NULL;
    free(n->ctx);
    n->ctx = NULL;
}

/* Releasing a long chain recursively could exhaust the C stack, so nodes
   whose refcount drops to zero are queued and cleared iteratively. */
void ewb_node_release(ewb_node *n) {
    static _Thread_local ewb_node **queue;
    static _Thread_local int qlen, qcap, draining;
    if (--n->refcount > 0) return;
    if (qlen == qcap) {
        qcap = qcap ? 2 * qcap : 64;
        queue = realloc(queue, sizeof *queue * (size_t)qcap);
    }
    queue[qlen++] = n;
    if (draining) return;
    draining = 1;
    while (qlen > 0) {
        ewb_node *m = queue[--qlen];
        node_clear(m); /* may push more nodes */
        free(m);
    }
    draining = 0;
}

ewb_node *ewb_record(const char *name, ewb_backward_fn bw, int n, ewb_tensor *const *ins, ewb_tensor *out) {
    if (!ewb_needs_grad(n, ins)) return NULL;
    ewb_node *node = calloc(1, sizeof *node);
    if (!node) return NULL;
    node->refcount = 1;
    node->name = name;
    node->backward = bw;
    node->ninputs = n;
    for (int i = 0; i < n; i++) {
        node->inputs[i] = ins[i];
        ewb_tensor_retain(ins[i]);
    }
    node->out_ndim = out->ndim;
    memcpy(node->out_shape, out->shape, sizeof node->out_shape);
    out->grad_fn = node;
    out->requires_grad = 1;
    return node;
}

void ewb_save(ewb_node *n, int slot, const ewb_tensor *t) {
    ewb_tensor_free(n->saved[slot]);
    n->saved[slot] = t ? ewb_alias(t) : NULL;
}

ewb_tensor *ewb_grad_slot(ewb_node *n, int i) {
    ewb_tensor *t = n->inputs[i];
    if (!t || !t->requires_grad) return NULL;
    if (t->grad_fn) {
        ewb_node *m = t->grad_fn;
        if (!m->gout) m->gout = ewb_zeros_like(t);
        return m->gout;
    }
    if (!t->grad) {
        ewb_tensor *g = ewb_empty(EWB_DTYPE_F32, t->ndim, t->shape);
        if (g) memset(ewb_tensor_data(g), 0, (size_t)ewb_tensor_numel(g) * 4);
        t->grad = g;
    }
    return t->grad;
}

static volatile sig_atomic_t g_interrupt;
void ewb_set_interrupt(int flag) { g_interrupt = flag != 0; }

int ewb_finish(const char *name, ewb_tensor *out, int rc, ewb_tensor **dst) {
    if (rc != 0) { ewb_tensor_free(out); return -1; }
    if (g_interrupt) {
        g_interrupt = 0;
        ewb_tensor_free(out);
        return ewb_error("interrupted (in op '%s')", name);
    }
    if (g_anomaly && ewb_has_nonfinite(out)) {
        ewb_error("anomaly: op '%s' produced NaN or Inf in its output %s", name, ewb_s(out));
        ewb_tensor_free(out);
        return -1;
    }
    *dst = out;
    return 0;
}

/* ---------------- backward ---------------- */
typedef struct { ewb_node **v; int n, cap; } node_vec;
static int vec_push(node_vec *s, ewb_node *n) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        ewb_node **v = realloc(s->v, sizeof *v * (size_t)cap);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = n;
    return 0;
}

/* iterative DFS; appends nodes in post-order (inputs before users) */
static int topo_sort(ewb_node *root, node_vec *order) {
    node_vec stack = {0};
    node_vec iter = {0}; /* parallel stack of "next input index" encoded as pointer-size ints */
    uint64_t mark = ++g_mark;
    int rc = 0;
    root->mark = mark;
    if (vec_push(&stack, root) || vec_push(&iter, NULL)) rc = -1;
    while (!rc && stack.n > 0) {
        ewb_node *n = stack.v[stack.n - 1];
        intptr_t k = (intptr_t)iter.v[iter.n - 1];
        if (k < n->ninputs) {
            iter.v[iter.n - 1] = (ewb_node *)(k + 1);
            ewb_tensor *in = n->inputs[k];
            ewb_node *m = in ? in->grad_fn : NULL;
            if (m && m->mark != mark) {
                m->mark = mark;
                if (vec_push(&stack, m) || vec_push(&iter, NULL)) rc = -1;
            }
        } else {
            stack.n--;
            iter.n--;
            if (vec_push(order, n)) rc = -1;
        }
    }
    free(stack.v);
    free(iter.v);
    return rc ? ewb_error("backward: out of memory") : 0;
}

int ewb_backward(ewb_tensor *root, ewb_tensor *grad, int retain_graph) {
    EWB_TRY(ewb_check_f32("backward", root));
    if (!root->requires_grad)
        return ewb_error("backward: tensor %s does not require grad and has no grad_fn", ewb_s(root));
    ewb_tensor *g0;
    if (grad) {
        EWB_TRY(ewb_check_f32("backward", grad));
        int same = grad->ndim == root->ndim;
        for (int i = 0; same && i < root->ndim; i++) same = grad->shape[i] == root->shape[i];
        if (!same) return ewb_error("backward: gradient %s does not match tensor %s", ewb_s(grad), ewb_s(root));
        g0 = ewb_contig_or_self(grad);
    } else {
        if (ewb_tensor_numel(root) != 1)
            return ewb_error("backward: grad can be implicitly created only for scalar outputs, got %s", ewb_s(root));
        g0 = ewb_empty(EWB_DTYPE_F32, root->ndim, root->shape);
        if (g0) *ewb_f32(g0) = 1.0f;
    }
    if (!g0) return -1;

    ewb_node *rn = root->grad_fn;
    if (!rn) { /* a leaf: its gradient is the seed */
        if (!root->grad) root->grad = ewb_zeros_like(g0);
        int rc = ewb_add_(root->grad, g0, 1.0);
        ewb_tensor_free(g0);
        return rc;
    }
    if (rn->freed) {
        ewb_tensor_free(g0);
        return ewb_error("backward: trying to backward through the graph a second time (op '%s'); its saved "
                         "tensors were freed after the first backward; pass retain_graph to keep them",
                         rn->name);
    }
    node_vec order = {0};
    if (topo_sort(rn, &order) != 0) { ewb_tensor_free(g0); return -1; }
    for (int i = 0; i < order.n; i++) order.v[i]->refcount++;
    ewb_tensor_free(rn->gout);
    rn->gout = g0;

    int rc = 0;
    for (int i = order.n - 1; i >= 0 && rc == 0; i--) {
        ewb_node *n = order.v[i];
        if (!n->gout) continue; /* no gradient flowed here */
        if (n->freed) {
            rc = ewb_error("backward: trying to backward through the graph a second time (op '%s')", n->name);
            break;
        }
        rc = n->backward(n);
        if (rc == 0 && g_anomaly) {
            for (int k = 0; k < n->ninputs; k++) {
                ewb_tensor *in = n->inputs[k];
                if (!in || !in->requires_grad) continue;
                ewb_tensor *gs = in->grad_fn ? in->grad_fn->gout : in->grad;
                if (ewb_has_nonfinite(gs)) {
                    rc = ewb_error("anomaly: backward of op '%s' produced NaN or Inf in the gradient of input %d %s",
                                   n->name, k, ewb_s(in));
                    break;
                }
            }
        }
        ewb_tensor_free(n->gout);
        n->gout = NULL;
        if (!retain_graph) {
            node_clear(n);
            n->freed = 1;
        }
    }
    for (int i = 0; i < order.n; i++) {
        ewb_tensor_free(order.v[i]->gout);
        order.v[i]->gout = NULL;
        ewb_node_release(order.v[i]);
    }
    free(order.v);
    return rc;
}

/* ---------------- grad accessors ---------------- */
int ewb_tensor_set_requires_grad(ewb_tensor *t, int flag) {
    EWB_TRY(ewb_check_alive("requires_grad", t));
    if (t->grad_fn)
        return ewb_error("requires_grad: can only be set on leaf tensors; this one comes from op '%s' (use detach())",
                         t->grad_fn->name);
    if (flag && t->dtype != EWB_DTYPE_F32)
        return ewb_error("requires_grad: only f32 tensors can require gradients, got %s", ewb_s(t));
    t->requires_grad = flag != 0;
    return 0;
}
int ewb_tensor_grad(const ewb_tensor *t, ewb_tensor **out) {
    *out = t->grad;
    if (t->grad) ewb_tensor_retain(t->grad);
    return 0;
}
int ewb_tensor_set_grad(ewb_tensor *t, ewb_tensor *g) {
    EWB_TRY(ewb_check_alive("set_grad", t));
    if (g) {
        EWB_TRY(ewb_check_f32("set_grad", g));
        int same = g->ndim == t->ndim;
        for (int i = 0; same && i < t->ndim; i++) same = g->shape[i] == t->shape[i];
        if (!same) return ewb_error("set_grad: gradient %s does not match tensor %s", ewb_s(g), ewb_s(t));
        g = ewb_contig_or_self(g);
        if (!g) return -1;
    }
    ewb_tensor_free(t->grad);
    t->grad = g;
    return 0;
}
const char *ewb_tensor_grad_fn(const ewb_tensor *t) { return t->grad_fn ? t->grad_fn->name : NULL; }

/* ---------------- differentiable copies ---------------- */
static int copy_backward(ewb_node *n) {
    ewb_tensor *g = ewb_grad_slot(n, 0);
    return g ? ewb_add_(g, n->gout, 1.0) : 0;
}
int ewb_clone(ewb_tensor *t, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("clone", t));
    ewb_tensor *o = ewb_empty_like(t);
    if (!o) return -1;
    int rc = ewb_copy_(o, t);
    if (rc == 0 && t->dtype == EWB_DTYPE_F32) ewb_record("clone", copy_backward, 1, &t, o);
    return ewb_finish("clone", o, rc, out);
}
int ewb_contiguous(ewb_tensor *t, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("contiguous", t));
    if (ewb_tensor_is_contiguous(t)) {
        ewb_tensor_retain(t);
        *out = t;
        return 0;
    }
    return ewb_clone(t, out);
}
int ewb_to_dtype(ewb_tensor *t, int dtype, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("to_dtype", t));
    if (dtype < 0 || dtype > 3) return ewb_error("to_dtype: unknown dtype %d", dtype);
    if (dtype == t->dtype) return ewb_clone(t, out);
    ewb_tensor *o = ewb_empty(dtype, t->ndim, t->shape);
    if (!o) return -1;
    return ewb_finish("to_dtype", o, ewb_copy_(o, t), out);
}
