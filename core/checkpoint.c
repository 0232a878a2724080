/* checkpoint.c: training checkpoints as single HDF5 files, written
 * atomically and verified by a checksum on load.
 *
 * An ewb_ckpt is a bag of named tensors (dataset paths such as
 * "model/enc.weight") and of string attributes (JSON text from Lua: the
 * config, the step, the data-loader position). Lua fills it on the loop
 * thread; ewb_ckpt_write() is then plain C on the bag's own tensors, so it
 * may run on a worker thread (add the tensors with copy = 1 so training can
 * go on meanwhile). It takes the global HDF5 lock of core/h5.c.
 *
 * File layout (h5py opens it):
 *   /<name>             one dataset per tensor (f32, i32, i64, bool as in h5.c)
 *   attribute format    "ecgwb-checkpoint 1"
 *   attribute <key>     each string attribute, fixed-length, NUL-terminated
 *   attribute checksum  u32, CRC-32 (zlib's) of the stream below
 * The file uses HDF5's 1.8 format, whose metadata (superblock, object
 * headers, attributes) carries HDF5's own checksums, so damage to the
 * metadata fails in HDF5 with an error and damage to the data fails our
 * checksum.
 *
 * Checksum stream (little-endian host): for every dataset in strcmp order
 * of its name: the name, a 0 byte, the dtype code (1 byte), ndim (1 byte),
 * each dim as int64 little-endian, then the raw element bytes; then for every
 * string attribute (format included) in strcmp order of its key: the key,
 * a 0 byte, the text, a 0 byte.
 *
 * Writing is atomic: FILE.tmp is written, flushed (H5Fflush) and fsynced,
 * then renamed over FILE, and the directory is fsynced. A crash at any
 * moment leaves either the old FILE or the new one, never a mix.
 */
#include "internal.h"
#include "h5_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_FORMAT "ecgwb-checkpoint 1"

struct ewb_ckpt {
    int n, cap;
    char **names;
    ewb_tensor **tensors;
    int nattr, attr_cap;
    char **keys, **texts;
};

/* ---------------- CRC-32 (the polynomial of zlib and PNG) ---------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t ewb_crc32(uint32_t crc, const void *data, size_t n) {
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* one dataset's share of the checksum stream; t is contiguous */
static uint32_t crc_dataset(uint32_t crc, const char *name, const ewb_tensor *t) {
    uint8_t head[2 + 8 * EWB_MAX_DIMS];
    int k = 0;
    head[k++] = (uint8_t)t->dtype;
    head[k++] = (uint8_t)t->ndim;
    for (int i = 0; i < t->ndim; i++)
        for (int b = 0; b < 8; b++) head[k++] = (uint8_t)((uint64_t)t->shape[i] >> (8 * b));
    crc = ewb_crc32(crc, name, strlen(name) + 1);
    crc = ewb_crc32(crc, head, (size_t)k);
    return ewb_crc32(crc, ewb_tensor_data(t), (size_t)ewb_tensor_numel(t) * ewb_dtype_size(t->dtype));
}

static uint32_t crc_attr(uint32_t crc, const char *key, const char *text) {
    crc = ewb_crc32(crc, key, strlen(key) + 1);
    return ewb_crc32(crc, text, strlen(text) + 1);
}

/* ---------------- the bag ---------------- */

int ewb_ckpt_new(ewb_ckpt **out) {
    if (!out) return ewb_error("ckpt_new: out pointer is NULL");
    *out = calloc(1, sizeof(ewb_ckpt));
    if (!*out) return ewb_error("ckpt_new: out of memory");
    return 0;
}

void ewb_ckpt_free(ewb_ckpt *ck) {
    if (!ck) return;
    for (int i = 0; i < ck->n; i++) {
        free(ck->names[i]);
        ewb_tensor_free(ck->tensors[i]);
    }
    for (int i = 0; i < ck->nattr; i++) {
        free(ck->keys[i]);
        free(ck->texts[i]);
    }
    free(ck->names);
    free(ck->tensors);
    free(ck->keys);
    free(ck->texts);
    free(ck);
}

/* takes ownership of name and t (one reference) */
static int push_tensor(ewb_ckpt *ck, char *name, ewb_tensor *t) {
    if (ck->n == ck->cap) {
        int cap = ck->cap ? 2 * ck->cap : 16;
        char **nn = realloc(ck->names, (size_t)cap * sizeof *nn);
        if (nn) ck->names = nn;
        ewb_tensor **nt = realloc(ck->tensors, (size_t)cap * sizeof *nt);
        if (nt) ck->tensors = nt;
        if (!nn || !nt) {
            free(name);
            ewb_tensor_free(t);
            return ewb_error("ckpt: out of memory");
        }
        ck->cap = cap;
    }
    ck->names[ck->n] = name;
    ck->tensors[ck->n] = t;
    ck->n++;
    return 0;
}

static int check_name(const char *op, const char *name) {
    if (!name) return ewb_error("%s: name is NULL", op);
    size_t n = strlen(name);
    if (n == 0 || n >= 1024 || name[0] == '/' || name[n - 1] == '/' || strstr(name, "//") || strchr(name, '.') == name)
        return ewb_error("%s: bad dataset name '%s' (want a path like \"model/enc.weight\", under 1024 bytes)", op, name);
    return 0;
}

int ewb_ckpt_add(ewb_ckpt *ck, const char *name, ewb_tensor *t, int copy) {
    if (!ck) return ewb_error("ckpt_add: checkpoint is NULL");
    EWB_TRY(check_name("ckpt_add", name));
    EWB_TRY(ewb_check_alive("ckpt_add", t));
    for (int i = 0; i < ck->n; i++)
        if (!strcmp(ck->names[i], name)) return ewb_error("ckpt_add: '%s' is already in the checkpoint", name);
    ewb_tensor *keep;
    if (copy) { /* a snapshot: later in-place updates of t do not reach the checkpoint */
        keep = ewb_empty(t->dtype, t->ndim, t->shape);
        if (!keep) return -1;
        int64_t nbytes = ewb_tensor_numel(t) * (int64_t)ewb_dtype_size(t->dtype);
        if (nbytes > 0 && ewb_tensor_copy_to(t, ewb_tensor_data(keep), nbytes) != 0) {
            ewb_tensor_free(keep);
            return -1;
        }
    } else {
        keep = ewb_contig_or_self(t);
        if (!keep) return -1;
    }
    char *nm = strdup(name);
    if (!nm) {
        ewb_tensor_free(keep);
        return ewb_error("ckpt_add: out of memory");
    }
    return push_tensor(ck, nm, keep);
}

static int put_attr(ewb_ckpt *ck, const char *key, const char *text) {
    for (int i = 0; i < ck->nattr; i++) {
        if (!strcmp(ck->keys[i], key)) {
            char *t = strdup(text);
            if (!t) return ewb_error("ckpt: out of memory");
            free(ck->texts[i]);
            ck->texts[i] = t;
            return 0;
        }
    }
    if (ck->nattr == ck->attr_cap) {
        int cap = ck->attr_cap ? 2 * ck->attr_cap : 8;
        char **nk = realloc(ck->keys, (size_t)cap * sizeof *nk);
        if (nk) ck->keys = nk;
        char **nt = realloc(ck->texts, (size_t)cap * sizeof *nt);
        if (nt) ck->texts = nt;
        if (!nk || !nt) return ewb_error("ckpt: out of memory");
        ck->attr_cap = cap;
    }
    char *k = strdup(key), *t = strdup(text);
    if (!k || !t) {
        free(k);
        free(t);
        return ewb_error("ckpt: out of memory");
    }
    ck->keys[ck->nattr] = k;
    ck->texts[ck->nattr] = t;
    ck->nattr++;
    return 0;
}

int ewb_ckpt_set_attr(ewb_ckpt *ck, const char *key, const char *text) {
    if (!ck) return ewb_error("ckpt_set_attr: checkpoint is NULL");
    if (!key || !key[0] || strlen(key) >= 256) return ewb_error("ckpt_set_attr: the key must be 1 to 255 bytes");
    if (!text) return ewb_error("ckpt_set_attr: '%s': text is NULL", key);
    if (!strcmp(key, "checksum") || !strcmp(key, "format"))
        return ewb_error("ckpt_set_attr: '%s' is reserved for the checkpoint itself", key);
    return put_attr(ck, key, text);
}

int ewb_ckpt_count(const ewb_ckpt *ck) { return ck ? ck->n : 0; }
const char *ewb_ckpt_name(const ewb_ckpt *ck, int i) { return ck && i >= 0 && i < ck->n ? ck->names[i] : NULL; }

int ewb_ckpt_tensor(const ewb_ckpt *ck, int i, ewb_tensor **out) {
    if (!ck || !out) return ewb_error("ckpt_tensor: NULL argument");
    if (i < 0 || i >= ck->n) return ewb_error("ckpt_tensor: index %d out of range (%d tensors)", i, ck->n);
    ewb_tensor_retain(ck->tensors[i]);
    *out = ck->tensors[i];
    return 0;
}

const char *ewb_ckpt_attr(const ewb_ckpt *ck, const char *key) {
    if (!ck || !key) return NULL;
    for (int i = 0; i < ck->nattr; i++)
        if (!strcmp(ck->keys[i], key)) return ck->texts[i];
    return NULL;
}

/* strcmp order of a list of strings, as positions */
typedef struct { const char *s; int i; } ranked;
static int by_string(const void *a, const void *b) { return strcmp(((const ranked *)a)->s, ((const ranked *)b)->s); }
static int *sorted_order(char *const *strs, int n) {
    ranked *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!r || !order) {
        free(r);
        free(order);
        ewb_error("ckpt: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) r[i] = (ranked){strs[i], i};
    qsort(r, (size_t)n, sizeof *r, by_string);
    for (int i = 0; i < n; i++) order[i] = r[i].i;
    free(r);
    return order;
}

/* ---------------- write ---------------- */

static int write_string_attr(hid_t f, const char *file, const char *key, const char *text) {
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR), a = -1;
    int rc = -1;
    if (type < 0 || space < 0 || H5Tset_size(type, strlen(text) + 1) < 0 || H5Tset_strpad(type, H5T_STR_NULLTERM) < 0) {
        ewb_h5_fail("ckpt_write: '%s': cannot describe attribute '%s'", file, key);
        goto done;
    }
    a = H5Acreate2(f, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, text) < 0) {
        ewb_h5_fail("ckpt_write: '%s': cannot write attribute '%s'", file, key);
        goto done;
    }
    rc = 0;
done:
    if (a >= 0) H5Aclose(a);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    return rc;
}

static int write_checksum(hid_t f, const char *file, uint32_t crc) {
    hid_t space = H5Screate(H5S_SCALAR), a = -1;
    int rc = -1;
    a = space < 0 ? -1 : H5Acreate2(f, "checksum", H5T_STD_U32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT32, &crc) < 0) ewb_h5_fail("ckpt_write: '%s': cannot write the checksum", file);
    else rc = 0;
    if (a >= 0) H5Aclose(a);
    if (space >= 0) H5Sclose(space);
    return rc;
}

/* fsync of the directory holding path, so the rename itself is durable */
static int sync_dir(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    const char *dir = dirname(buf);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return ewb_error("ckpt_write: cannot open directory '%s' to sync it: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    if (rc != 0 && err != EINVAL) return ewb_error("ckpt_write: fsync of directory '%s': %s", dir, strerror(err));
    return 0;
}

static int write_locked(const ewb_ckpt *ck, const char *path, const char *tmp) {
    int *order = sorted_order(ck->names, ck->n);
    int *aorder = order ? sorted_order(ck->keys, ck->nattr) : NULL;
    if (!order || !aorder) {
        free(order);
        return -1;
    }
    hid_t fapl = -1, f = -1;
    int rc = -1;
    uint32_t crc = 0;
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* the 1.8 format: checksummed metadata, and large attributes in dense storage */
    if (fapl < 0 || H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0) {
        ewb_h5_fail("ckpt_write: '%s': cannot set up the file access properties", path);
        goto done;
    }
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) {
        ewb_h5_fail("ckpt_write: cannot create '%s'", tmp);
        goto done;
    }
    for (int k = 0; k < ck->n; k++) {
        int i = order[k];
        if (k > 0 && !strcmp(ck->names[i], ck->names[order[k - 1]])) {
            ewb_error("ckpt_write: '%s': dataset '%s' appears twice", path, ck->names[i]);
            goto done;
        }
        crc = crc_dataset(crc, ck->names[i], ck->tensors[i]);
        if (ewb_h5_write_dataset(f, "ckpt_write", tmp, ck->names[i], ck->tensors[i]) != 0) goto done;
    }
    /* "format" sorts among the user's keys */
    int format_done = 0;
    for (int k = 0; k <= ck->nattr; k++) {
        const char *key = k < ck->nattr ? ck->keys[aorder[k]] : NULL;
        if (!format_done && (!key || strcmp("format", key) < 0)) {
            crc = crc_attr(crc, "format", CKPT_FORMAT);
            if (write_string_attr(f, tmp, "format", CKPT_FORMAT) != 0) goto done;
            format_done = 1;
        }
        if (!key) break;
        crc = crc_attr(crc, key, ck->texts[aorder[k]]);
        if (write_string_attr(f, tmp, key, ck->texts[aorder[k]]) != 0) goto done;
    }
    if (write_checksum(f, tmp, crc) != 0) goto done;
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) {
        ewb_h5_fail("ckpt_write: '%s': flush failed", tmp);
        goto done;
    }
    void *handle = NULL;
    if (H5Fget_vfd_handle(f, fapl, &handle) < 0 || !handle) {
        ewb_h5_fail("ckpt_write: '%s': cannot get the file descriptor to fsync", tmp);
        goto done;
    }
    if (fsync(*(int *)handle) != 0) {
        ewb_error("ckpt_write: fsync of '%s': %s", tmp, strerror(errno));
        goto done;
    }
    hid_t closing = f;
    f = -1;
    if (H5Fclose(closing) < 0) {
        ewb_h5_fail("ckpt_write: '%s': cannot close the file", tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        ewb_error("ckpt_write: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto done;
    }
    rc = sync_dir(path);
done:
    if (f >= 0) H5Fclose(f);
    if (fapl >= 0) H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    if (rc != 0) unlink(tmp); /* the previous FILE, if any, is untouched */
    free(order);
    free(aorder);
    return rc;
}

int ewb_ckpt_write_job(void *job) {
    const ewb_ckpt_job *j = job;
    return j ? ewb_ckpt_write(j->ck, j->path) : ewb_error("ckpt_write: job is NULL");
}

int ewb_ckpt_write(const ewb_ckpt *ck, const char *path) {
    if (!ck) return ewb_error("ckpt_write: checkpoint is NULL");
    if (!path || !path[0]) return ewb_error("ckpt_write: path is empty");
    size_t n = strlen(path);
    if (n > 4000) return ewb_error("ckpt_write: path longer than 4000 bytes");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ewb_h5_enter();
    return ewb_h5_leave(write_locked(ck, path, tmp));
}

/* ---------------- read ---------------- */

typedef struct {
    ewb_ckpt *ck;
    const char *file;
    int failed;
} visit_ctx;

/* collects every dataset path, with a placeholder tensor filled in later */
static herr_t collect_dataset(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
    visit_ctx *v = ud;
    if (info->type != H5L_TYPE_HARD) return 0;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) return -1;
    if (oi.type != H5O_TYPE_DATASET) return 0;
    char *nm = strdup(name);
    if (!nm || push_tensor(v->ck, nm, NULL) != 0) {
        if (!nm) ewb_error("ckpt_read: out of memory");
        v->failed = 1;
        return -1;
    }
    return 0;
}

static herr_t collect_attr(hid_t loc, const char *key, const H5A_info_t *info, void *ud) {
    visit_ctx *v = ud;
    if (!strcmp(key, "checksum")) return 0;
    hid_t a = H5Aopen(loc, key, H5P_DEFAULT), type = -1, mtype = -1;
    char *text = NULL;
    herr_t rc = -1;
    if (a < 0 || (type = H5Aget_type(a)) < 0) {
        ewb_h5_fail("ckpt_read: '%s': cannot open attribute '%s'", v->file, key);
        goto done;
    }
    if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) > 0) {
        ewb_error("ckpt_read: '%s': attribute '%s' is not a fixed-length string (not written by ecgwb?)", v->file, key);
        goto done;
    }
    size_t size = H5Tget_size(type);
    text = calloc(size + 1, 1);
    mtype = H5Tcopy(H5T_C_S1);
    if (!text || mtype < 0 || H5Tset_size(mtype, size + 1) < 0 || H5Aread(a, mtype, text) < 0) {
        ewb_h5_fail("ckpt_read: '%s': cannot read attribute '%s'", v->file, key);
        goto done;
    }
    if (put_attr(v->ck, key, text) == 0) rc = 0;
done:
    if (rc != 0) v->failed = 1;
    free(text);
    if (mtype >= 0) H5Tclose(mtype);
    if (type >= 0) H5Tclose(type);
    if (a >= 0) H5Aclose(a);
    return rc;
}

static int read_checksum(hid_t f, const char *file, uint32_t *crc) {
    htri_t has = H5Aexists(f, "checksum");
    if (has <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ewb_error("ckpt_read: '%s' has no checksum attribute (not a checkpoint, or a partial one)", file);
    }
    hid_t a = H5Aopen(f, "checksum", H5P_DEFAULT), type = a >= 0 ? H5Aget_type(a) : -1;
    int rc = 0;
    if (type < 0 || H5Tget_class(type) != H5T_INTEGER || H5Aread(a, H5T_NATIVE_UINT32, crc) < 0)
        rc = ewb_h5_fail("ckpt_read: '%s': cannot read the checksum attribute", file);
    if (type >= 0) H5Tclose(type);
    if (a >= 0) H5Aclose(a);
    return rc;
}

static int read_locked(const char *path, ewb_ckpt *ck) {
    hid_t f = ewb_h5_open_existing("ckpt_read", path, H5F_ACC_RDONLY);
    if (f < 0) return -1;
    int rc = -1;
    int *order = NULL, *aorder = NULL;
    uint32_t stored, crc = 0;
    visit_ctx v = {ck, path, 0};
    if (H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_attr, &v) < 0) {
        if (!v.failed) ewb_h5_fail("ckpt_read: '%s': cannot walk the attributes", path);
        goto done;
    }
    const char *format = ewb_ckpt_attr(ck, "format");
    if (!format) {
        ewb_error("ckpt_read: '%s' is not an ecgwb checkpoint (no 'format' attribute; a plain state dict loads with "
                  "wb.load_state_dict)", path);
        goto done;
    }
    if (strcmp(format, CKPT_FORMAT) != 0) {
        ewb_error("ckpt_read: '%s' has format '%s', this ecgwb reads '%s'", path, format, CKPT_FORMAT);
        goto done;
    }
    if (read_checksum(f, path, &stored) != 0) goto done;
    if (H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &v) < 0) {
        if (!v.failed) ewb_h5_fail("ckpt_read: '%s': cannot walk the file", path);
        goto done;
    }
    if (!(order = sorted_order(ck->names, ck->n)) || !(aorder = sorted_order(ck->keys, ck->nattr))) goto done;
    for (int k = 0; k < ck->n; k++) {
        int i = order[k];
        if (ewb_h5_read_dataset(f, "ckpt_read", path, ck->names[i], &ck->tensors[i]) != 0) goto done;
        crc = crc_dataset(crc, ck->names[i], ck->tensors[i]);
    }
    for (int k = 0; k < ck->nattr; k++) crc = crc_attr(crc, ck->keys[aorder[k]], ck->texts[aorder[k]]);
    if (crc != stored) {
        ewb_error("ckpt_read: '%s' is corrupt: checksum mismatch (stored %08x, computed %08x over %d datasets)", path,
                  stored, crc, ck->n);
        goto done;
    }
    rc = 0;
done:
    free(order);
    free(aorder);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

int ewb_ckpt_read(const char *path, ewb_ckpt **out) {
    if (!out) return ewb_error("ckpt_read: out pointer is NULL");
    *out = NULL;
    if (!path || !path[0]) return ewb_error("ckpt_read: path is empty");
    ewb_ckpt *ck;
    EWB_TRY(ewb_ckpt_new(&ck));
    ewb_h5_enter();
    int rc = ewb_h5_leave(read_locked(path, ck));
    if (rc != 0) {
        ewb_ckpt_free(ck);
        return rc;
    }
    *out = ck;
    return 0;
}

int ewb_ckpt_verify(const char *path) {
    ewb_ckpt *ck;
    EWB_TRY(ewb_ckpt_read(path, &ck));
    ewb_ckpt_free(ck);
    return 0;
}
