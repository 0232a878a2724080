/* h5_internal.h: the parts of core/h5.c that other core files reuse
 * (core/checkpoint.c). Private to core/: it includes hdf5.h, which the
 * public header must not. Every helper expects the caller to hold the HDF5
 * lock (ewb_h5_enter ... ewb_h5_leave), because serial HDF5 is not thread safe. */
#ifndef ECGWB_H5_INTERNAL_H
#define ECGWB_H5_INTERNAL_H
#include <hdf5.h>
#include "internal.h"

/* takes the global HDF5 mutex and silences HDF5's own error printing */
void ewb_h5_enter(void);
/* releases the mutex; returns rc */
int ewb_h5_leave(int rc);
/* ewb_error("<message> (HDF5: <innermost HDF5 message>)"), then clears HDF5's error stack */
int ewb_h5_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* opens an existing HDF5 file; a missing file, a directory, a non-HDF5 file
   or a truncated one give a clear error (op names the caller). -1 on error */
hid_t ewb_h5_open_existing(const char *op, const char *file, unsigned flags);
/* creates dataset `name` (groups on the way) in the open file f and writes t */
int ewb_h5_write_dataset(hid_t f, const char *op, const char *file, const char *name, const ewb_tensor *t);
/* reads dataset `name` of the open file f into a new tensor */
int ewb_h5_read_dataset(hid_t f, const char *op, const char *file, const char *name, ewb_tensor **out);
#endif
