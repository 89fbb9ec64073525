/**
 * @file cnn.h
 * @brief libcnn — a small convolutional neural network library with a stable C ABI.
 *
 * libcnn builds a network layer by layer behind an opaque handle and runs it.
 * Convolutions are lowered with im2col to single-precision GEMM (CBLAS
 * `cblas_sgemm`); pooling, activations and softmax are plain C loops.
 *
 * Conventions used by every call:
 * - All tensors are caller-owned, contiguous `float` buffers.
 * - Activations are NHWC: batch, height, width, channels.
 * - Convolution weights are OHWI (out, kernel row, kernel column, in) natively;
 *   PyTorch's OIHW is accepted and returned with ::CNN_LAYOUT_PYTORCH.
 * - Dense weights are `[out][in]`, with `in` in NHWC order of the flattened
 *   input natively; with ::CNN_LAYOUT_PYTORCH, `in` is in NCHW order (what
 *   `torch.flatten` of an NCHW tensor gives).
 * - Layer indices are 0-based. Output sizes use floor:
 *   `OH = (H + 2*pad - KH) / stride + 1`.
 * - Every fallible call returns a ::cnn_status; results come back through
 *   out-parameters. A call that fails leaves every object exactly as it was.
 * - The library never aborts, exits or prints, and never changes the caller's
 *   floating-point environment.
 *
 * Threads: distinct nets may be used from different threads at the same time.
 * One net must be used by one thread at a time (this includes the read-only
 * queries, which share the net's error message). A clone made with
 * cnn_net_clone() is a distinct net and may run beside its source.
 */
#ifndef CNN_H
#define CNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks every function of the public ABI. */
#if defined(_WIN32)
#  if defined(CNN_BUILDING_LIBRARY)
#    define CNN_API __declspec(dllexport)
#  else
#    define CNN_API
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define CNN_API __attribute__((visibility("default")))
#else
#  define CNN_API
#endif

/** @name Version
 * The header's version; compare with cnn_version() to detect a header/library mismatch.
 * @{ */
#define CNN_VERSION_MAJOR 1
#define CNN_VERSION_MINOR 0
#define CNN_VERSION_PATCH 0
/** MAJOR*10000 + MINOR*100 + PATCH, the same encoding as cnn_version(). */
#define CNN_VERSION_NUMBER \
    (CNN_VERSION_MAJOR * 10000 + CNN_VERSION_MINOR * 100 + CNN_VERSION_PATCH)
/** @} */

/** Version of the library loaded at run time, encoded like ::CNN_VERSION_NUMBER. */
CNN_API int cnn_version(void);

/** Version of the library loaded at run time as "MAJOR.MINOR.PATCH"; never NULL. */
CNN_API const char *cnn_version_string(void);

/**
 * Result of every fallible call. Values are part of the ABI and never renumbered;
 * new statuses only get new numbers.
 */
typedef enum cnn_status {
    CNN_OK = 0,                /**< success */
    CNN_E_NULL_ARG = 1,        /**< a required pointer argument is NULL */
    CNN_E_INVALID_ARG = 2,     /**< a value is outside its documented range (size <= 0, stride < 1, unknown enum, ...) */
    CNN_E_SHAPE = 3,           /**< the shapes do not fit (kernel larger than its padded input, ...) */
    CNN_E_OVERFLOW = 4,        /**< an element count or byte size would overflow */
    CNN_E_NOMEM = 5,           /**< memory allocation failed */
    CNN_E_INDEX = 6,           /**< a layer index is out of range */
    CNN_E_LAYER_KIND = 7,      /**< the operation does not apply to this kind of layer */
    CNN_E_EMPTY_NET = 8,       /**< the net has no layers */
    CNN_E_STRUCT_SIZE = 9,     /**< a descriptor's struct_size is not one this library knows */
    CNN_E_BUFFER_SIZE = 10,    /**< a buffer's element count is not the one required */
    CNN_E_OVERLAP = 11,        /**< buffers that must be distinct overlap */
    CNN_E_STATE = 12           /**< the call is not allowed in the current state */
} cnn_status;

/** Short English name of a status ("CNN_E_SHAPE: shapes do not fit"); never NULL,
 *  also for values this library does not know. */
CNN_API const char *cnn_status_string(cnn_status status);

/** Opaque network handle. */
typedef struct cnn_net cnn_net;

/* ------------------------------------------------------------------------ */
/** @name Creating and destroying nets
 * @{ */

/**
 * Create an empty net for inputs of `height` x `width` x `channels` (NHWC).
 * On success `*net` owns a new net; on failure `*net` is set to NULL (when
 * `net` itself is not NULL) and cnn_net_last_error(NULL) says why.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INVALID_ARG (a size <= 0),
 *         ::CNN_E_OVERFLOW, ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_net_create(cnn_net **net, int height, int width, int channels);

/** Destroy a net and everything it owns. NULL is allowed and does nothing. */
CNN_API void cnn_net_destroy(cnn_net *net);

/**
 * Make an independent net with the same layers and parameters as `source`.
 * Parameters are shared copy-on-write: setting or initialising parameters on
 * either net first gives that net its own copy, so the other keeps the old
 * values. The clone has its own workspace and error message, so it may run in
 * another thread beside `source`. On failure `*clone` is NULL (when `clone`
 * is not NULL) and the message is on `source` (on the thread's message when
 * `source` is NULL).
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_net_clone(const cnn_net *source, cnn_net **clone);

/**
 * Detailed message of the last failed call on `net` (naming the layer and the
 * reason), or, for `net == NULL`, the calling thread's message of the last
 * failure that had no net (for example a failed cnn_net_create()). An empty
 * string when nothing failed yet. Never NULL. The string stays valid until
 * the next call on the same net (or, for NULL, in the same thread).
 */
CNN_API const char *cnn_net_last_error(const cnn_net *net);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Building a net
 * Each builder validates its arguments against the current output shape of
 * the net, infers the new output shape, and appends one layer. `index`, when
 * not NULL, receives the new layer's 0-based index. A net may grow after it
 * has run; the next forward pass replans its buffers.
 * @{ */

/** Options of a convolution layer. Fill with cnn_conv_desc_init() or
 *  ::CNN_CONV_DESC_INIT, then change what you need. */
typedef struct cnn_conv_desc {
    size_t struct_size; /**< sizeof(cnn_conv_desc) as compiled by the caller */
    int filters;        /**< number of kernels = output channels; default 0, must be set */
    int kernel_h;       /**< kernel height; default 3 */
    int kernel_w;       /**< kernel width; default 3 */
    int stride_h;       /**< vertical stride, >= 1; default 1 */
    int stride_w;       /**< horizontal stride, >= 1; default 1 */
    int pad_h;          /**< zero rows added above and below, >= 0; default 0 */
    int pad_w;          /**< zero columns added left and right, >= 0; default 0 */
    int bias;           /**< nonzero: one bias per filter, added after the dot products; default 1 */
} cnn_conv_desc;

/** Static initialiser with the documented defaults. */
#define CNN_CONV_DESC_INIT { sizeof(cnn_conv_desc), 0, 3, 3, 1, 1, 0, 0, 1 }

/** Fill `desc` with the documented defaults (see ::cnn_conv_desc). NULL is ignored. */
CNN_API void cnn_conv_desc_init(cnn_conv_desc *desc);

/**
 * Append a convolution. The kernel's channel count equals the input's; each
 * of the `filters` kernels gives one output channel. Weights start at zero.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_STRUCT_SIZE, ::CNN_E_INVALID_ARG,
 *         ::CNN_E_SHAPE (kernel larger than the padded input), ::CNN_E_OVERFLOW, ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_layer_add_conv(cnn_net *net, const cnn_conv_desc *desc, int *index);

/** Pooling operator. */
typedef enum cnn_pool_kind {
    CNN_POOL_MAX = 0, /**< maximum of the window; padded cells are ignored */
    CNN_POOL_AVG = 1  /**< mean of the window */
} cnn_pool_kind;

/** Options of a pooling layer. Fill with cnn_pool_desc_init() or ::CNN_POOL_DESC_INIT. */
typedef struct cnn_pool_desc {
    size_t struct_size;  /**< sizeof(cnn_pool_desc) as compiled by the caller */
    cnn_pool_kind kind;  /**< default ::CNN_POOL_MAX */
    int window_h;        /**< default 2 */
    int window_w;        /**< default 2 */
    int stride_h;        /**< >= 1; default 2 */
    int stride_w;        /**< >= 1; default 2 */
    int pad_h;           /**< >= 0 and at most window_h / 2; default 0 */
    int pad_w;           /**< >= 0 and at most window_w / 2; default 0 */
    int count_pad;       /**< average pooling only: nonzero divides by the whole window,
                              padded cells included (PyTorch's default); zero divides by the
                              number of real input cells. Default 1 */
} cnn_pool_desc;

/** Static initialiser with the documented defaults. */
#define CNN_POOL_DESC_INIT { sizeof(cnn_pool_desc), CNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 1 }

/** Fill `desc` with the documented defaults (see ::cnn_pool_desc). NULL is ignored. */
CNN_API void cnn_pool_desc_init(cnn_pool_desc *desc);

/**
 * Append a pooling layer; each channel is pooled independently.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_STRUCT_SIZE, ::CNN_E_INVALID_ARG,
 *         ::CNN_E_SHAPE, ::CNN_E_OVERFLOW, ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_layer_add_pool(cnn_net *net, const cnn_pool_desc *desc, int *index);

/** Element-wise activation function. */
typedef enum cnn_activation {
    CNN_ACT_RELU = 0,       /**< max(0, x) */
    CNN_ACT_LEAKY_RELU = 1, /**< x for x >= 0, slope * x otherwise */
    CNN_ACT_SIGMOID = 2,    /**< 1 / (1 + exp(-x)) */
    CNN_ACT_TANH = 3        /**< tanh(x) */
} cnn_activation;

/**
 * Append an element-wise activation. `slope` is used by ::CNN_ACT_LEAKY_RELU
 * only (it must be finite; PyTorch's default is 0.01) and ignored otherwise.
 * NaN propagates through every activation.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INVALID_ARG, ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_layer_add_activation(cnn_net *net, cnn_activation kind, float slope,
                                            int *index);

/**
 * Append a fully connected layer of `units` outputs (output shape 1x1x`units`).
 * An input of H x W x C is flattened implicitly in NHWC order. `bias` nonzero
 * adds one bias per unit.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INVALID_ARG, ::CNN_E_OVERFLOW, ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_layer_add_dense(cnn_net *net, int units, int bias, int *index);

/**
 * Append a softmax over the channel axis of each pixel (the last axis of NHWC).
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_layer_add_softmax(cnn_net *net, int *index);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Running a net
 * @{ */

/**
 * Run the net on `batch` images. `input` holds batch x H x W x C floats of the
 * net's input shape, `output` batch x OH x OW x OC floats of its output shape
 * (cnn_net_output_shape()). The two buffers must not overlap. The first call
 * for a given batch size (or after the net grew, or its thread count or
 * workspace changed) plans the net's scratch and starts its threads; later
 * calls with the same batch size allocate nothing. Convolution weights are
 * packed into the scratch at the first call after they were set or changed. Results are bit-identical
 * run after run for the same input, batch size and thread count.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INVALID_ARG (batch < 1),
 *         ::CNN_E_EMPTY_NET, ::CNN_E_OVERLAP, ::CNN_E_OVERFLOW, ::CNN_E_NOMEM,
 *         ::CNN_E_BUFFER_SIZE (a workspace set by cnn_net_set_workspace() is too small)
 */
CNN_API cnn_status cnn_forward(cnn_net *net, const float *input, int batch, float *output);
/** @} */

/** @name Threads and workspace
 * @{ */

/**
 * Number of threads the net uses in cnn_forward(), for everything: its own
 * loops and the BLAS calls. 0 (the default) means every core the process may
 * run on. At most 1024. A clone starts with its source's setting. The threads
 * start at the next forward pass and belong to the net (one pool per net).
 *
 * BLAS: libcnn splits work between its own threads and calls BLAS from each,
 * so BLAS must not start threads of its own meanwhile. With OpenBLAS (whose
 * thread count is process-wide), the first cnn_forward() in flight in the
 * process saves OpenBLAS's thread count and sets it to 1, and the last one to
 * return restores it: BLAS calls the application makes from other threads
 * while a forward pass runs are single-threaded too. With another CBLAS,
 * libcnn changes nothing and that library's own threading applies.
 * Results are bit-identical run after run for the same thread count and batch
 * size; they may differ in the last bits between thread counts.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INVALID_ARG
 */
CNN_API cnn_status cnn_net_set_threads(cnn_net *net, int threads);

/** The thread count cnn_forward() will use (the request, or the available cores for 0).
 *  @return ::CNN_OK, ::CNN_E_NULL_ARG */
CNN_API cnn_status cnn_net_get_threads(const cnn_net *net, int *threads);

/**
 * Bytes of scratch one cnn_forward() of `batch` images needs with the net's
 * current layers and thread count: the buffers between layers, each thread's
 * im2col column buffer or padded input rows (at most 4 MiB per thread), and a
 * copy of the weights of each convolution that runs a direct loop, packed in
 * the order the loop reads them; aligned.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INVALID_ARG, ::CNN_E_OVERFLOW
 */
CNN_API cnn_status cnn_net_workspace_size(const cnn_net *net, int batch, size_t *bytes);

/**
 * Hand the net a caller-owned scratch block of `bytes` bytes (any alignment)
 * for its forward passes, instead of memory it allocates itself; the net then
 * allocates nothing for scratch. The block must stay valid, and untouched by
 * the caller during a forward pass, until the net is destroyed or another
 * block (or NULL, which returns to the net's own memory) is set. A forward
 * pass whose scratch (cnn_net_workspace_size()) exceeds `bytes` fails with
 * ::CNN_E_BUFFER_SIZE. Clones do not inherit the block. The block is scratch
 * only: between passes the caller may reuse it, or hand it to another net, so
 * a net working in it packs its convolution weights into it on every pass (in
 * its own memory, only after the weights change).
 * @return ::CNN_OK, ::CNN_E_NULL_ARG (NULL net, or NULL block with bytes > 0)
 */
CNN_API cnn_status cnn_net_set_workspace(cnn_net *net, void *workspace, size_t bytes);

/**
 * One line naming the code paths this process runs: the SIMD level of the
 * element-wise and pooling kernels ("avx2+fma" or "portable"; the environment
 * variable CNN_FORCE_PORTABLE=1, read once, forces the portable path), the BLAS
 * and what libcnn does to its threading, and the default thread count. Never NULL.
 */
CNN_API const char *cnn_runtime_info(void);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Parameters
 * Weights and biases of conv and dense layers. Every other layer kind
 * answers ::CNN_E_LAYER_KIND.
 * @{ */

/** Order of the elements of a weight buffer. */
typedef enum cnn_weight_layout {
    CNN_LAYOUT_NATIVE = 0,  /**< conv: OHWI; dense: [out][in], `in` in NHWC order */
    CNN_LAYOUT_PYTORCH = 1  /**< conv: OIHW; dense: [out][in], `in` in NCHW order */
} cnn_weight_layout;

/**
 * Number of weight and bias elements of a layer (bias count is 0 for a layer
 * without bias). Either out-pointer may be NULL.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INDEX, ::CNN_E_LAYER_KIND
 */
CNN_API cnn_status cnn_layer_param_sizes(const cnn_net *net, int layer, size_t *weight_count,
                                         size_t *bias_count);

/**
 * Copy `count` weights into layer `layer`, converting from `layout` once.
 * `count` must equal the layer's weight count.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INDEX, ::CNN_E_LAYER_KIND,
 *         ::CNN_E_INVALID_ARG (unknown layout), ::CNN_E_BUFFER_SIZE, ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_layer_set_weights(cnn_net *net, int layer, const float *weights,
                                         size_t count, cnn_weight_layout layout);

/** Copy the layer's weights out in `layout`; `count` must equal the weight count.
 *  Statuses as cnn_layer_set_weights(). */
CNN_API cnn_status cnn_layer_get_weights(const cnn_net *net, int layer, float *weights,
                                         size_t count, cnn_weight_layout layout);

/** Copy `count` biases into the layer; `count` must equal the bias count
 *  (a layer without bias answers ::CNN_E_LAYER_KIND). */
CNN_API cnn_status cnn_layer_set_bias(cnn_net *net, int layer, const float *bias, size_t count);

/** Copy the layer's biases out; statuses as cnn_layer_set_bias(). */
CNN_API cnn_status cnn_layer_get_bias(const cnn_net *net, int layer, float *bias, size_t count);

/** Weight initialisation scheme. `fan_in` = KH*KW*Cin (conv) or inputs (dense);
 *  `fan_out` = KH*KW*Cout (conv) or units (dense). */
typedef enum cnn_init {
    CNN_INIT_HE_UNIFORM = 0,     /**< U(-b, b), b = sqrt(6 / fan_in) */
    CNN_INIT_HE_NORMAL = 1,      /**< N(0, 2 / fan_in) */
    CNN_INIT_XAVIER_UNIFORM = 2, /**< U(-b, b), b = sqrt(6 / (fan_in + fan_out)) */
    CNN_INIT_XAVIER_NORMAL = 3   /**< N(0, 2 / (fan_in + fan_out)) */
} cnn_init;

/**
 * Initialise the weights of every conv and dense layer from a seeded generator
 * and set every bias to zero. The generator is the library's own and uses only
 * IEEE-754 arithmetic, so the same seed gives the same weights on every machine
 * and in every version of the 1.x series.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INVALID_ARG (unknown scheme), ::CNN_E_NOMEM
 */
CNN_API cnn_status cnn_net_init_params(cnn_net *net, cnn_init scheme, uint64_t seed);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Introspection
 * @{ */

/** Kind of a layer. */
typedef enum cnn_layer_kind {
    CNN_LAYER_CONV = 0,
    CNN_LAYER_POOL = 1,
    CNN_LAYER_ACTIVATION = 2,
    CNN_LAYER_DENSE = 3,
    CNN_LAYER_SOFTMAX = 4
} cnn_layer_kind;

/** Lower-case name of a layer kind ("conv", "pool", ...); "unknown" for other values. */
CNN_API const char *cnn_layer_kind_name(cnn_layer_kind kind);

/** Number of layers. @return ::CNN_OK, ::CNN_E_NULL_ARG */
CNN_API cnn_status cnn_net_layer_count(const cnn_net *net, int *count);

/** Kind of layer `layer`. @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INDEX */
CNN_API cnn_status cnn_layer_kind_of(const cnn_net *net, int layer, cnn_layer_kind *kind);

/** Output shape of layer `layer` (per image). Any out-pointer may be NULL.
 *  @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INDEX */
CNN_API cnn_status cnn_layer_output_shape(const cnn_net *net, int layer, int *height,
                                          int *width, int *channels);

/** Number of trainable parameters (weights + biases) of a layer.
 *  @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INDEX */
CNN_API cnn_status cnn_layer_param_count(const cnn_net *net, int layer, size_t *count);

/**
 * Floating-point operations of a layer for one image: a multiply-add counts 2;
 * conv and dense also count one per bias add; activations, pooling and softmax
 * count one per output element.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INDEX
 */
CNN_API cnn_status cnn_layer_flops(const cnn_net *net, int layer, uint64_t *flops);

/**
 * Receptive field of one output pixel of layer `layer`, per axis, in input
 * pixels of the net (padding included, so it may exceed the input size). A
 * dense layer sees its whole input. Either out-pointer may be NULL.
 * @return ::CNN_OK, ::CNN_E_NULL_ARG, ::CNN_E_INDEX
 */
CNN_API cnn_status cnn_layer_receptive_field(const cnn_net *net, int layer, int *height,
                                             int *width);

/** Input shape of the net. Any out-pointer may be NULL. @return ::CNN_OK, ::CNN_E_NULL_ARG */
CNN_API cnn_status cnn_net_input_shape(const cnn_net *net, int *height, int *width,
                                       int *channels);

/** Output shape of the net: that of its last layer, or its input shape when it
 *  has no layers. Any out-pointer may be NULL. @return ::CNN_OK, ::CNN_E_NULL_ARG */
CNN_API cnn_status cnn_net_output_shape(const cnn_net *net, int *height, int *width,
                                        int *channels);

/** Total parameters of the net. @return ::CNN_OK, ::CNN_E_NULL_ARG */
CNN_API cnn_status cnn_net_param_count(const cnn_net *net, size_t *count);

/** Total FLOPs of the net for one image. @return ::CNN_OK, ::CNN_E_NULL_ARG */
CNN_API cnn_status cnn_net_flops(const cnn_net *net, uint64_t *flops);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Memory
 * @{ */

/** Replacement allocator. Blocks libcnn asks for are used with 64-byte
 *  alignment, which the library arranges itself: `alloc` needs only malloc's. */
typedef struct cnn_allocator {
    size_t struct_size;                         /**< sizeof(cnn_allocator) */
    void *(*alloc)(void *user, size_t size);    /**< like malloc; NULL on failure */
    void (*free)(void *user, void *block);      /**< like free; never called with NULL */
    void *user;                                 /**< passed to both callbacks */
} cnn_allocator;

/**
 * Route every allocation libcnn makes through `allocator` (NULL restores
 * malloc/free). Allowed only while no net exists in the process, since blocks
 * must be freed by the allocator that made them. OpenBLAS's own allocations
 * are outside this hook.
 * @return ::CNN_OK, ::CNN_E_STRUCT_SIZE, ::CNN_E_NULL_ARG (a NULL callback),
 *         ::CNN_E_STATE (a net exists)
 */
CNN_API cnn_status cnn_set_allocator(const cnn_allocator *allocator);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* CNN_H */
