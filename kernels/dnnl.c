/* dnnl.c: oneDNN engine, stream, memory descriptors and the per-shape
 * primitive cache shared by every kernel (see dnnl.h). */
#include "dnnl.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_engine(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) == dnnl_success)
        dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags);
}
dnnl_engine_t ewb_dnnl_engine(void) { pthread_once(&g_once, init_engine); return g_engine; }
dnnl_stream_t ewb_dnnl_stream(void) { pthread_once(&g_once, init_engine); return g_stream; }

int ewb_dnnl_check(dnnl_status_t s, const char *op, const char *what) {
    if (s == dnnl_success) return 0;
    const char *why = s == dnnl_unimplemented ? "unimplemented for these shapes/strides"
                    : s == dnnl_invalid_arguments ? "invalid arguments"
                    : s == dnnl_out_of_memory ? "out of memory" : "failed";
    return ewb_error("%s: oneDNN %s %s (status %d)", op, what, why, (int)s);
}

dnnl_status_t ewb_md_dims(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, const int64_t *strides) {
    dnnl_dims_t d, s;
    for (int i = 0; i < ndim; i++) { d[i] = dims[i]; s[i] = strides[i]; }
    return dnnl_memory_desc_init_by_strides(md, ndim, d, dnnl_f32, s);
}
dnnl_status_t ewb_md_of(dnnl_memory_desc_t *md, const ewb_tensor *t) {
    return ewb_md_dims(md, t->ndim, t->shape, t->stride);
}

dnnl_primitive_attr_t ewb_attr_new(int accumulate) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (accumulate) {
        dnnl_post_ops_t po;
        dnnl_post_ops_create(&po);
        dnnl_post_ops_append_sum(po, 1.0f);
        dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    return attr;
}

/* ---------------- keys ---------------- */
void ewb_key_add(ewb_key *k, const void *p, size_t n) {
    if (k->n + n > sizeof k->buf) n = sizeof k->buf - k->n; /* callers keep keys small */
    memcpy(k->buf + k->n, p, n);
    k->n += n;
}
void ewb_key_tensor(ewb_key *k, const ewb_tensor *t) {
    ewb_key_int(k, t->ndim);
    ewb_key_int(k, t->dtype);
    ewb_key_add(k, t->shape, sizeof(int64_t) * t->ndim);
    ewb_key_add(k, t->stride, sizeof(int64_t) * t->ndim);
}

/* ---------------- cache: open hashing, grows, never evicts ---------------- */
typedef struct entry { uint64_t hash; size_t keylen; char *key; ewb_prim prim; struct entry *next; } entry;
static entry **g_table;
static size_t g_buckets, g_count;
static void *g_scratch;
static size_t g_scratch_size;

static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

ewb_prim *ewb_prim_get(const void *key, size_t keylen) {
    uint64_t h = fnv1a(key, keylen);
    pthread_mutex_lock(&g_lock);
    ewb_prim *found = NULL;
    if (g_buckets)
        for (entry *e = g_table[h % g_buckets]; e; e = e->next)
            if (e->hash == h && e->keylen == keylen && !memcmp(e->key, key, keylen)) { found = &e->prim; break; }
    pthread_mutex_unlock(&g_lock);
    return found;
}

static void rehash(void) {
    size_t nb = g_buckets ? g_buckets * 2 : 256;
    entry **t = calloc(nb, sizeof *t);
    if (!t) return;
    for (size_t i = 0; i < g_buckets; i++)
        for (entry *e = g_table[i], *nx; e; e = nx) {
            nx = e->next;
            e->next = t[e->hash % nb];
            t[e->hash % nb] = e;
        }
    free(g_table);
    g_table = t;
    g_buckets = nb;
}

ewb_prim *ewb_prim_put(const void *key, size_t keylen, dnnl_primitive_desc_t pd, const char *op) {
    dnnl_primitive_t prim;
    if (ewb_dnnl_check(dnnl_primitive_create(&prim, pd), op, "primitive creation")) {
        dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    entry *e = calloc(1, sizeof *e);
    e->key = malloc(keylen);
    memcpy(e->key, key, keylen);
    e->keylen = keylen;
    e->hash = fnv1a(key, keylen);
    e->prim.pd = pd;
    e->prim.prim = prim;
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    e->prim.is_ref = impl && !strncmp(impl, "ref", 3);
    pthread_mutex_lock(&g_lock);
    if (g_count + 1 > g_buckets) rehash();
    e->next = g_table[e->hash % g_buckets];
    g_table[e->hash % g_buckets] = e;
    g_count++;
    pthread_mutex_unlock(&g_lock);
    return &e->prim;
}

int ewb_prim_exec(ewb_prim *p, const char *op, int nargs, const int *kinds, void *const *ptrs) {
    dnnl_exec_arg_t args[EWB_PRIM_MAX_ARGS + 1];
    dnnl_engine_t eng = ewb_dnnl_engine();
    if (nargs > EWB_PRIM_MAX_ARGS) return ewb_error("%s: too many primitive arguments", op);
    for (int i = 0; i < nargs; i++) {
        int slot = -1;
        for (int j = 0; j < p->nargs; j++)
            if (p->arg_kind[j] == kinds[i]) { slot = j; break; }
        if (slot < 0) {
            const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(p->pd, dnnl_query_exec_arg_md, kinds[i]);
            if (!md) return ewb_error("%s: oneDNN has no argument %d", op, kinds[i]);
            slot = p->nargs++;
            p->arg_kind[slot] = kinds[i];
            if (ewb_dnnl_check(dnnl_memory_create(&p->mem[slot], md, eng, DNNL_MEMORY_NONE), op, "memory creation")) {
                p->nargs--;
                return -1;
            }
        }
        dnnl_memory_set_data_handle(p->mem[slot], ptrs[i]);
        args[i].arg = kinds[i];
        args[i].memory = p->mem[slot];
    }
    /* one shared scratchpad, grown to the largest primitive's need */
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(p->pd, dnnl_query_scratchpad_md, 0);
    size_t ssz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (ssz > 0) {
        if (ssz > g_scratch_size) {
            free(g_scratch);
            g_scratch = aligned_alloc(64, (ssz + 63) / 64 * 64);
            if (!g_scratch) { g_scratch_size = 0; return ewb_error("%s: out of memory for scratchpad", op); }
            g_scratch_size = ssz;
        }
        if (p->scratch) dnnl_memory_set_data_handle(p->scratch, g_scratch);
        else if (ewb_dnnl_check(dnnl_memory_create(&p->scratch, smd, eng, g_scratch), op, "scratchpad")) return -1;
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = p->scratch;
        nargs++;
    }
    if (ewb_dnnl_check(dnnl_primitive_execute(p->prim, ewb_dnnl_stream(), nargs, args), op, "execution")) return -1;
    return ewb_dnnl_check(dnnl_stream_wait(ewb_dnnl_stream()), op, "stream wait");
}
