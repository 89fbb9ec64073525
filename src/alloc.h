/* The library's single allocator: every block libcnn owns comes from here. */
#ifndef CNN_ALLOC_H
#define CNN_ALLOC_H

#include <stddef.h>

/* 64-byte aligned block of `size` bytes, or NULL. size 0 gives a valid block. */
void *cnn__alloc(size_t size);
/* Zero-filled cnn__alloc(count * size); NULL also when the product overflows. */
void *cnn__calloc(size_t count, size_t size);
void cnn__free(void *block);

/* Live-net bookkeeping, so the allocator cannot be swapped under a net. */
void cnn__net_count_add(int delta);

#endif
