/* h5.c: tensors in HDF5 files (only core/ knows HDF5).
 *
 * A dataset is addressed by a slash path ("enc/layers.0/weight", a leading
 * "/" is optional); writing creates the groups on the way. Stored types:
 *   f32 -> IEEE f32 LE, i32 -> I32 LE, i64 -> I64 LE,
 *   bool -> an enum over u8 {FALSE = 0, TRUE = 1} (what h5py writes for numpy bool).
 * Reading also accepts any float dataset (converted to f32) and any other
 * integer dataset (converted to i64); a scalar dataspace is a 0-d tensor.
 *
 * HDF5's own error printing is switched off; a failure becomes an ewb_error
 * naming the file, the dataset and the innermost HDF5 message. The serial
 * HDF5 library is not thread safe, so every entry point holds one mutex.
 * The mutex, the error helper, the file opener and the dataset read and write
 * on an open file are shared with the other HDF5 users in core/ (dataset.c,
 * checkpoint.c) through core/h5_internal.h.
 */
#include "internal.h"
#include "h5_internal.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------- errors ---------------- */

/* the innermost (most specific) message on HDF5's error stack */
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *ud) {
    if (e->desc) snprintf((char *)ud, 256, "%s", e->desc);
    return 0;
}

/* ewb_error("h5 <op>: <what> (<hdf5 detail>)"), then clears HDF5's stack */
int ewb_h5_fail(const char *fmt, ...) {
    char msg[768], detail[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermost, detail);
    H5Eclear2(H5E_DEFAULT);
    if (detail[0]) return ewb_error("%s (HDF5: %s)", msg, detail);
    return ewb_error("%s", msg);
}

void ewb_h5_enter(void) {
    pthread_mutex_lock(&h5_lock);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
int ewb_h5_leave(int rc) {
    pthread_mutex_unlock(&h5_lock);
    return rc;
}

/* ---------------- files ---------------- */

/* opens an existing HDF5 file, with a clear error when it is missing or not HDF5 */
hid_t ewb_h5_open_existing(const char *op, const char *file, unsigned flags) {
    struct stat st;
    if (stat(file, &st) != 0) {
        ewb_error("%s: cannot open '%s': %s", op, file, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        ewb_error("%s: '%s' is a directory, not an HDF5 file", op, file);
        return -1;
    }
    htri_t is = H5Fis_hdf5(file);
    if (is <= 0) {
        H5Eclear2(H5E_DEFAULT);
        ewb_error("%s: '%s' is not an HDF5 file (%lld bytes, no HDF5 signature)", op, file, (long long)st.st_size);
        return -1;
    }
    hid_t f = H5Fopen(file, flags, H5P_DEFAULT);
    if (f < 0) ewb_h5_fail("%s: cannot open '%s': truncated or corrupt HDF5 file", op, file);
    return f;
}

/* "/a//b/" style names are refused; returns the name without its leading '/' */
static const char *clean_name(const char *op, const char *file, const char *name) {
    if (!name) { ewb_error("%s: '%s': dataset name is NULL", op, file); return NULL; }
    while (*name == '/') name++;
    size_t n = strlen(name);
    if (n == 0 || name[n - 1] == '/' || strstr(name, "//")) {
        ewb_error("%s: '%s': bad dataset name '%s' (want a path like \"group/name\")", op, file, name);
        return NULL;
    }
    return name;
}

/* ---------------- write ---------------- */

static hid_t file_type_of(int dtype) {
    switch (dtype) {
    case EWB_DTYPE_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case EWB_DTYPE_I32: return H5Tcopy(H5T_STD_I32LE);
    case EWB_DTYPE_I64: return H5Tcopy(H5T_STD_I64LE);
    case EWB_DTYPE_BOOL: {
        hid_t t = H5Tenum_create(H5T_STD_U8LE);
        uint8_t f = 0, tr = 1;
        H5Tenum_insert(t, "FALSE", &f);
        H5Tenum_insert(t, "TRUE", &tr);
        return t;
    }
    }
    return -1;
}
static hid_t mem_type_of(int dtype) {
    switch (dtype) {
    case EWB_DTYPE_F32: return H5Tcopy(H5T_NATIVE_FLOAT);
    case EWB_DTYPE_I32: return H5Tcopy(H5T_NATIVE_INT32);
    case EWB_DTYPE_I64: return H5Tcopy(H5T_NATIVE_INT64);
    case EWB_DTYPE_BOOL: {
        hid_t t = H5Tenum_create(H5T_NATIVE_UINT8);
        uint8_t f = 0, tr = 1;
        H5Tenum_insert(t, "FALSE", &f);
        H5Tenum_insert(t, "TRUE", &tr);
        return t;
    }
    }
    return -1;
}

/* removes an existing dataset `name` so it can be written again */
static int replace_existing(hid_t f, const char *file, const char *name) {
    /* every prefix must be a group (or absent) for the name to be valid */
    char path[1024];
    snprintf(path, sizeof path, "%s", name);
    for (char *p = strchr(path, '/');; p = strchr(p + 1, '/')) {
        if (p) *p = 0;
        htri_t ex = H5Lexists(f, path, H5P_DEFAULT);
        if (ex < 0) return ewb_h5_fail("h5_write: '%s': cannot look up '%s'", file, path);
        if (!ex) return 0;
        H5O_info_t info;
        if (H5Oget_info_by_name(f, path, &info, H5P_DEFAULT) < 0)
            return ewb_h5_fail("h5_write: '%s': cannot inspect '%s'", file, path);
        if (!p) {
            if (info.type != H5O_TYPE_DATASET)
                return ewb_error("h5_write: '%s': '%s' exists and is not a dataset", file, name);
            if (H5Ldelete(f, name, H5P_DEFAULT) < 0)
                return ewb_h5_fail("h5_write: '%s': cannot replace dataset '%s'", file, name);
            return 0;
        }
        if (info.type != H5O_TYPE_GROUP)
            return ewb_error("h5_write: '%s': cannot write '%s': '%s' is a dataset, not a group", file, name, path);
        *p = '/';
    }
}

int ewb_h5_write_dataset(hid_t f, const char *op, const char *file, const char *name, const ewb_tensor *t) {
    EWB_TRY(ewb_check_alive(op, t));
    /* the data, contiguous */
    int64_t n = ewb_tensor_numel(t);
    size_t nbytes = (size_t)n * ewb_dtype_size(t->dtype);
    void *buf = NULL;
    const void *data = ewb_tensor_data(t);
    if (!ewb_tensor_is_contiguous(t) && n > 0) {
        buf = malloc(nbytes);
        if (!buf) return ewb_error("%s: out of memory copying %s", op, ewb_s(t));
        if (ewb_tensor_copy_to(t, buf, (int64_t)nbytes) != 0) { free(buf); return -1; }
        data = buf;
    }
    hid_t space = -1, ftype = -1, mtype = -1, lcpl = -1, d = -1;
    int rc = -1;
    hsize_t dims[EWB_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = (hsize_t)t->shape[i];
    space = t->ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(t->ndim, dims, NULL);
    ftype = file_type_of(t->dtype);
    mtype = mem_type_of(t->dtype);
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (space < 0 || ftype < 0 || mtype < 0 || lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        ewb_h5_fail("%s: '%s': cannot describe dataset '%s' %s", op, file, name, ewb_s(t));
        goto done;
    }
    d = H5Dcreate2(f, name, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) { ewb_h5_fail("%s: '%s': cannot create dataset '%s' %s", op, file, name, ewb_s(t)); goto done; }
    if (n > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        ewb_h5_fail("%s: '%s': cannot write dataset '%s' %s", op, file, name, ewb_s(t));
        goto done;
    }
    rc = 0;
done:
    if (d >= 0) H5Dclose(d);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (mtype >= 0) H5Tclose(mtype);
    if (ftype >= 0) H5Tclose(ftype);
    if (space >= 0) H5Sclose(space);
    free(buf);
    return rc;
}

static int write_locked(const char *file, const char *name, const ewb_tensor *t, int truncate) {
    if (!file) return ewb_error("h5_write: file name is NULL");
    if (!(name = clean_name("h5_write", file, name))) return -1;
    if (strlen(name) >= 1024) return ewb_error("h5_write: '%s': dataset name longer than 1023 bytes", file);
    EWB_TRY(ewb_check_alive("h5_write", t));
    hid_t f = -1;
    int rc = -1;
    struct stat st;
    if (truncate || stat(file, &st) != 0) {
        f = H5Fcreate(file, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (f < 0) { ewb_h5_fail("h5_write: cannot create '%s'", file); goto done; }
    } else {
        f = ewb_h5_open_existing("h5_write", file, H5F_ACC_RDWR);
        if (f < 0) goto done;
        if (replace_existing(f, file, name) != 0) goto done;
    }
    rc = ewb_h5_write_dataset(f, "h5_write", file, name, t);
done:
    if (f >= 0 && H5Fclose(f) < 0 && rc == 0) rc = ewb_h5_fail("h5_write: '%s': cannot close the file", file);
    return rc;
}

int ewb_h5_write(const char *file, const char *name, const ewb_tensor *t, int truncate) {
    ewb_h5_enter();
    return ewb_h5_leave(write_locked(file, name, t, truncate));
}

/* ---------------- read ---------------- */

/* the ecgwb dtype a stored type reads as, or -1 */
static int dtype_of(hid_t ftype) {
    H5T_class_t cls = H5Tget_class(ftype);
    size_t size = H5Tget_size(ftype);
    if (cls == H5T_FLOAT) return EWB_DTYPE_F32;
    if (cls == H5T_INTEGER) {
        if (size == 4 && H5Tget_sign(ftype) == H5T_SGN_2) return EWB_DTYPE_I32;
        return EWB_DTYPE_I64;
    }
    if (cls == H5T_ENUM && size == 1 && H5Tget_nmembers(ftype) == 2) return EWB_DTYPE_BOOL;
    return -1;
}

static const char *class_name(H5T_class_t c) {
    switch (c) {
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length";
    case H5T_ARRAY: return "array";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    case H5T_BITFIELD: return "bitfield";
    case H5T_TIME: return "time";
    default: return "unknown";
    }
}

/* rows [start, start+count) along dim 0 of dataset `name` of the open file
   f, or the whole dataset when count < 0 */
static int read_rows_of(hid_t f, const char *op, const char *file, const char *name, int64_t start, int64_t count,
                        ewb_tensor **out) {
    hid_t d = -1, space = -1, mspace = -1, ftype = -1, mtype = -1;
    ewb_tensor *t = NULL;
    int rc = -1;
    *out = NULL;
    /* walk the path so a missing group or dataset gets a plain message */
    {
        char path[1024];
        snprintf(path, sizeof path, "%s", name);
        for (char *p = strchr(path, '/');; p = strchr(p + 1, '/')) {
            if (p) *p = 0;
            htri_t e = H5Lexists(f, path, H5P_DEFAULT);
            if (e <= 0) {
                H5Eclear2(H5E_DEFAULT);
                ewb_error("%s: '%s' has no dataset '%s'%s%s", op, file, name, p ? ": no group " : "", p ? path : "");
                goto done;
            }
            if (!p) break;
            *p = '/';
        }
    }
    d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) { ewb_h5_fail("%s: '%s': '%s' is not a dataset", op, file, name); goto done; }
    space = H5Dget_space(d);
    ftype = H5Dget_type(d);
    if (space < 0 || ftype < 0) { ewb_h5_fail("%s: '%s': cannot inspect dataset '%s'", op, file, name); goto done; }
    int dtype = dtype_of(ftype);
    if (dtype < 0) {
        ewb_error("%s: '%s': dataset '%s' has an unsupported %s type (want float, integer or bool)", op, file, name,
                  class_name(H5Tget_class(ftype)));
        goto done;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(space);
    if (sc == H5S_NULL) { ewb_error("%s: '%s': dataset '%s' has a null dataspace (no data)", op, file, name); goto done; }
    int ndim = H5Sget_simple_extent_ndims(space);
    if (ndim < 0 || ndim > EWB_MAX_DIMS) {
        ewb_h5_fail("%s: '%s': dataset '%s' has %d dims (at most %d)", op, file, name, ndim, EWB_MAX_DIMS);
        goto done;
    }
    hsize_t dims[EWB_MAX_DIMS];
    int64_t shape[EWB_MAX_DIMS];
    H5Sget_simple_extent_dims(space, dims, NULL);
    for (int i = 0; i < ndim; i++) shape[i] = (int64_t)dims[i];
    if (count >= 0) { /* a hyperslab of rows */
        if (ndim == 0) { ewb_error("%s: '%s': dataset '%s' is a scalar, it has no rows", op, file, name); goto done; }
        if (start < 0 || start + count > shape[0]) {
            ewb_error("%s: '%s': rows [%lld, %lld) are out of range for dataset '%s' of %lld rows", op, file,
                      (long long)start, (long long)(start + count), name, (long long)shape[0]);
            goto done;
        }
        shape[0] = count;
        hsize_t off[EWB_MAX_DIMS] = {0}, cnt[EWB_MAX_DIMS];
        off[0] = (hsize_t)start;
        for (int i = 0; i < ndim; i++) cnt[i] = (hsize_t)shape[i];
        if (count > 0 && H5Sselect_hyperslab(space, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0) {
            ewb_h5_fail("%s: '%s': cannot select rows of dataset '%s'", op, file, name);
            goto done;
        }
        mspace = H5Screate_simple(ndim, cnt, NULL);
        if (mspace < 0) { ewb_h5_fail("%s: '%s': cannot describe rows of '%s'", op, file, name); goto done; }
    }
    t = ewb_empty(dtype, ndim, shape);
    if (!t) goto done;
    /* a bool enum may use other names or a signed base: read its raw bytes */
    mtype = dtype == EWB_DTYPE_BOOL ? H5Tget_native_type(ftype, H5T_DIR_ASCEND) : mem_type_of(dtype);
    if (mtype < 0) { ewb_h5_fail("%s: '%s': cannot map the type of dataset '%s'", op, file, name); goto done; }
    if (ewb_tensor_numel(t) > 0 &&
        H5Dread(d, mtype, mspace >= 0 ? mspace : H5S_ALL, mspace >= 0 ? space : H5S_ALL, H5P_DEFAULT,
                ewb_tensor_data(t)) < 0) {
        ewb_h5_fail("%s: '%s': cannot read dataset '%s' as %s", op, file, name, ewb_s(t));
        goto done;
    }
    if (dtype == EWB_DTYPE_BOOL) { /* normalise to 0/1 */
        uint8_t *p = ewb_tensor_data(t);
        for (int64_t i = 0; i < ewb_tensor_numel(t); i++) p[i] = p[i] != 0;
    }
    *out = t;
    t = NULL;
    rc = 0;
done:
    ewb_tensor_free(t);
    if (mtype >= 0) H5Tclose(mtype);
    if (ftype >= 0) H5Tclose(ftype);
    if (mspace >= 0) H5Sclose(mspace);
    if (space >= 0) H5Sclose(space);
    if (d >= 0) H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

int ewb_h5_read_dataset(hid_t f, const char *op, const char *file, const char *name, ewb_tensor **out) {
    return read_rows_of(f, op, file, name, 0, -1, out);
}

static int read_locked(const char *file, const char *name, int64_t start, int64_t count, ewb_tensor **out) {
    if (!file) return ewb_error("h5_read: file name is NULL");
    if (!out) return ewb_error("h5_read: '%s': out pointer is NULL", file);
    *out = NULL;
    if (!(name = clean_name("h5_read", file, name))) return -1;
    hid_t f = ewb_h5_open_existing("h5_read", file, H5F_ACC_RDONLY);
    if (f < 0) return -1;
    int rc = read_rows_of(f, "h5_read", file, name, start, count, out);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

int ewb_h5_read(const char *file, const char *name, ewb_tensor **out) {
    ewb_h5_enter();
    return ewb_h5_leave(read_locked(file, name, 0, -1, out));
}

int ewb_h5_read_rows(const char *file, const char *name, int64_t start, int64_t count, ewb_tensor **out) {
    if (out) *out = NULL;
    if (count < 0) return ewb_error("h5_read_rows: '%s': negative row count %lld", file ? file : "(null)", (long long)count);
    ewb_h5_enter();
    return ewb_h5_leave(read_locked(file, name, start, count, out));
}

/* ---------------- list ---------------- */

typedef struct {
    char *buf;
    int64_t cap, len; /* len counts every byte needed, even past cap */
} list_acc;

static herr_t list_one(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
    list_acc *a = ud;
    if (info->type != H5L_TYPE_HARD) return 0;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) return -1;
    if (oi.type != H5O_TYPE_DATASET) return 0;
    int64_t k = (int64_t)strlen(name);
    if (a->len + k + 1 < a->cap) {
        memcpy(a->buf + a->len, name, (size_t)k);
        a->buf[a->len + k] = '\n';
    }
    a->len += k + 1;
    return 0;
}

static int list_locked(const char *file, char *buf, int64_t n) {
    if (!file) return ewb_error("h5_list: file name is NULL");
    hid_t f = ewb_h5_open_existing("h5_list", file, H5F_ACC_RDONLY);
    if (f < 0) return -1;
    list_acc a = {buf, buf ? n : 0, 0};
    int rc = 0;
    if (H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, list_one, &a) < 0)
        rc = ewb_h5_fail("h5_list: '%s': cannot walk the file", file);
    H5Fclose(f);
    if (rc) return rc;
    if (a.len + 1 > a.cap)
        return ewb_error("h5_list: '%s': buffer of %lld bytes is too small, need %lld bytes", file, (long long)n,
                         (long long)(a.len + 1));
    buf[a.len] = 0;
    return 0;
}

int ewb_h5_list(const char *file, char *buf, int64_t n) {
    ewb_h5_enter();
    return ewb_h5_leave(list_locked(file, buf, n));
}
