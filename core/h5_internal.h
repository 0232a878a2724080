/* h5_internal.h: what core/h5.c shares with the other HDF5 code in core/
 * (core/dataset.c, core/checkpoint.c): the one HDF5 mutex, the error helper,
 * the opener of existing files, and tensor datasets read and written in a file
 * the caller has open (with the lock held). Every entry point that touches HDF5 does
 *     ewb_h5_enter(); ... return ewb_h5_leave(rc);
 * and reports failures with ewb_h5_fail(), which appends the innermost HDF5
 * message and clears HDF5's error stack. */
#ifndef ECGWB_H5_INTERNAL_H
#define ECGWB_H5_INTERNAL_H
#include <hdf5.h>
#include "ecgwb.h"

void ewb_h5_enter(void);   /* takes the mutex, silences HDF5's own printing */
int ewb_h5_leave(int rc);  /* releases the mutex, returns rc */
int ewb_h5_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* an existing HDF5 file, or -1 with a clear error (missing, directory, not
   HDF5, truncated); op prefixes the message */
hid_t ewb_h5_open_existing(const char *op, const char *file, unsigned flags);
/* creates dataset `name` (groups on the way) in the open file f and writes t
   (types as in h5.c); file names the file in errors */
int ewb_h5_write_dataset(hid_t f, const char *op, const char *file, const char *name, const ewb_tensor *t);
/* reads dataset `name` of the open file f into a new tensor */
int ewb_h5_read_dataset(hid_t f, const char *op, const char *file, const char *name, ewb_tensor **out);

#endif
