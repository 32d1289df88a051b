// The shared heap: an MPI program's large allocations live in the channel
// to its proxy, so the proxy sends from them and receives into them in
// place and the real Open MPI moves the data once, as it does natively.
// The shim replaces malloc and the functions glibc's manual lists for
// replacing it ("Replacing malloc"; valloc and pvalloc stay glibc's,
// whose blocks free() hands back to it); small requests, and any the channel
// cannot take, go to glibc's own allocator.
//
// Only one process allocates from a channel: the first to try (the MPI
// program; ckpt-run gives each rank its own channel). A child it forks has
// another pid and allocates from glibc, so the two never hand out the same
// block; what the child writes into blocks it inherited the parent sees
// (docs/user-guide.md, "MPI programs"). The heap is saved and restored
// with the channel, at the same addresses.
#include "mpi_plugin/shim/shim.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace ckpt::mpi::shim {
namespace {

constexpr size_t kHeapMin = 128 * 1024;       // glibc's own mmap threshold: smaller blocks stay in its arenas
constexpr uint64_t kKeepForMessages = 1ull << 30;  // of the channel, never given to the heap
constexpr size_t kHeapAlign = 64;             // what the data area's blocks are aligned to

bool heap_disabled() {
    static const bool off = [] {
        const char* v = getenv("CKPT_MPI_SHARED_HEAP");
        return v && strcmp(v, "0") == 0;
    }();
    return off;
}

// Whether this process allocates from the channel: it claims it on first use.
bool heap_is_mine() {
    if (heap_disabled() || !map_channel()) return false;
    const auto me = static_cast<uint32_t>(getpid());
    uint32_t owner = S().header->heap_owner.load(std::memory_order_acquire);
    if (owner == 0 && S().header->heap_owner.compare_exchange_strong(owner, me)) return true;
    return owner == me;
}

unsigned char* channel_base() { return S().base.load(std::memory_order_acquire); }

// The data-area offset of a pointer into the channel, or 0.
uint64_t heap_offset(const void* p) {
    unsigned char* base = channel_base();
    if (!base || !p) return 0;
    const auto* c = static_cast<const unsigned char*>(p);
    if (c < base + S().header->data_offset || c >= base + S().header->size) return 0;
    return static_cast<uint64_t>(c - base);
}

void* heap_alloc(size_t bytes) {
    if (bytes < kHeapMin || !heap_is_mine()) return nullptr;
    const uint64_t off = try_alloc_data(bytes, kKeepForMessages);
    return off ? at(off) : nullptr;
}

size_t glibc_usable_size(void* p) {
    using Fn = size_t (*)(void*);
    static Fn fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "malloc_usable_size"));
    return fn ? fn(p) : 0;
}

}  // namespace

uint64_t in_place_offset(const void* buf, int64_t count, MPI_Datatype t) {
    if (count <= 0 || !channel_base()) return 0;
    const TypeMap& m = type_data(t).map;
    if (!m.is_contiguous()) return 0;
    const uint64_t off = heap_offset(buf);
    if (!off || off + m.size() * static_cast<uint64_t>(count) > S().header->size) return 0;
    return off;
}

}  // namespace ckpt::mpi::shim

using namespace ckpt::mpi::shim;

// Under a sanitizer its own allocator must stay in charge.
#if !defined(__SANITIZE_ADDRESS__)
extern "C" {

__attribute__((visibility("default"))) void* malloc(size_t bytes) {
    if (void* p = heap_alloc(bytes)) return p;
    return __libc_malloc(bytes);
}

__attribute__((visibility("default"))) void free(void* p) {
    if (const uint64_t off = heap_offset(p)) {
        free_data(off);
        return;
    }
    __libc_free(p);
}

__attribute__((visibility("default"))) void* calloc(size_t n, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return nullptr;
    }
    if (void* p = heap_alloc(bytes)) return memset(p, 0, bytes);
    return __libc_calloc(n, size);
}

__attribute__((visibility("default"))) void* realloc(void* p, size_t bytes) {
    const uint64_t off = heap_offset(p);
    if (!off) {
        if (!p || bytes < kHeapMin) return __libc_realloc(p, bytes);
        // A block that grows past the threshold moves to the channel.
        void* moved = heap_alloc(bytes);
        if (!moved) return __libc_realloc(p, bytes);
        memcpy(moved, p, std::min(bytes, glibc_usable_size(p)));
        __libc_free(p);
        return moved;
    }
    if (bytes == 0) {
        free_data(off);
        return nullptr;
    }
    const uint64_t have = data_block_bytes(off);
    if (bytes <= have && bytes >= have / 2) return p;
    void* moved = malloc(bytes);
    if (!moved) return nullptr;
    memcpy(moved, p, std::min<uint64_t>(bytes, have));
    free_data(off);
    return moved;
}

__attribute__((visibility("default"))) void* memalign(size_t alignment, size_t bytes) {
    if (alignment <= kHeapAlign)
        if (void* p = heap_alloc(bytes)) return p;
    return __libc_memalign(alignment, bytes);
}

__attribute__((visibility("default"))) int posix_memalign(void** out, size_t alignment, size_t bytes) {
    if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void* p = memalign(alignment, bytes);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

__attribute__((visibility("default"))) void* aligned_alloc(size_t alignment, size_t bytes) { return memalign(alignment, bytes); }

__attribute__((visibility("default"))) size_t malloc_usable_size(void* p) {
    if (const uint64_t off = heap_offset(p)) return data_block_bytes(off);
    return glibc_usable_size(p);
}

}  // extern "C"
#endif
