#ifndef CVESSEL_SYSTEM_H
#define CVESSEL_SYSTEM_H

#include <stdint.h>

/// Starts writeback of a byte range without waiting (Linux `sync_file_range`); a no-op elsewhere.
/// Swift's Glibc module does not export it, as it needs _GNU_SOURCE.
int vessel_start_writeback(int fd, int64_t offset, int64_t length);

#endif
