#include "alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "error.h"

#define CNN_ALIGN 64

static void *default_alloc(void *user, size_t size)
{
    (void)user;
    return malloc(size);
}

static void default_free(void *user, void *block)
{
    (void)user;
    free(block);
}

static cnn_allocator current = { sizeof(cnn_allocator), default_alloc, default_free, NULL };
static atomic_int live_nets;

void cnn__net_count_add(int delta) { atomic_fetch_add(&live_nets, delta); }

/* Over-allocate, align up, and keep the raw pointer just below the block. */
void *cnn__alloc(size_t size)
{
    size_t total;
    if (size > SIZE_MAX - CNN_ALIGN - sizeof(void *))
        return NULL;
    total = size + CNN_ALIGN + sizeof(void *);
    unsigned char *raw = current.alloc(current.user, total);
    if (!raw)
        return NULL;
    uintptr_t start = (uintptr_t)(raw + sizeof(void *));
    uintptr_t aligned = (start + CNN_ALIGN - 1) & ~(uintptr_t)(CNN_ALIGN - 1);
    unsigned char *block = raw + (aligned - (uintptr_t)raw);
    memcpy(block - sizeof(void *), &raw, sizeof raw);
    return block;
}

void *cnn__calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *block = cnn__alloc(count * size);
    if (block)
        memset(block, 0, count * size);
    return block;
}

void cnn__free(void *block)
{
    if (!block)
        return;
    void *raw;
    memcpy(&raw, (unsigned char *)block - sizeof(void *), sizeof raw);
    current.free(current.user, raw);
}

cnn_status cnn_set_allocator(const cnn_allocator *allocator)
{
    if (allocator) {
        if (allocator->struct_size != sizeof(cnn_allocator))
            return cnn__fail(NULL, CNN_E_STRUCT_SIZE,
                             "cnn_set_allocator: struct_size %zu is not %zu",
                             allocator->struct_size, sizeof(cnn_allocator));
        if (!allocator->alloc || !allocator->free)
            return cnn__fail(NULL, CNN_E_NULL_ARG,
                             "cnn_set_allocator: alloc and free callbacks must not be NULL");
    }
    if (atomic_load(&live_nets) != 0)
        return cnn__fail(NULL, CNN_E_STATE,
                         "cnn_set_allocator: %d net(s) still exist; destroy them first",
                         atomic_load(&live_nets));
    if (allocator)
        current = *allocator;
    else
        current = (cnn_allocator){ sizeof(cnn_allocator), default_alloc, default_free, NULL };
    return CNN_OK;
}
