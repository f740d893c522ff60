// The index type of every kernel of gee_ref/kernels, put before each .cu file's own text by
// compiler.source_text. Indices and sizes are index_t: int when the host has checked that every
// index a launch forms fits in 32 bits (compiler.py, index_type), long long otherwise. A GPU
// divides 32-bit integers several times faster than 64-bit ones, and these kernels divide per
// element.
#if INDEX_BITS == 32
typedef int index_t;
#elif INDEX_BITS == 64
typedef long long index_t;
#else
#error "compile with -DINDEX_BITS=32 or -DINDEX_BITS=64"
#endif
