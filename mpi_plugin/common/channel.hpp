// The shared-memory channel between the application's MPI shim and its
// rank's proxy: one memfd, created by ckpt-run, mapped by both. It is part
// of the application's address space, so a checkpoint saves it with the
// application and a restart brings it back at the same address; the new
// proxy maps the restored memfd.
//
//   [ChannelHeader][Slot 0]...[Slot kSlots-1][data area ...............]
//
// Each application thread that calls MPI owns a slot: it writes a call into
// the slot and waits; a proxy thread of its own executes it and answers in
// the same slot. Payloads too large for the slot's inline area, and the
// buffers of nonblocking operations, live in the data area, allocated by
// the shim. Every payload is named by its offset from the channel's start,
// the same in both processes whatever their mapping addresses.
//
// No pointer into either process is ever stored here: the channel must make
// sense to a proxy that did not exist when it was written.
#pragma once

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <ctime>

namespace ckpt::mpi {

inline constexpr uint32_t kChannelMagic = 0x504d4b43;  // "CKMP"
inline constexpr uint32_t kChannelVersion = 1;
inline constexpr uint32_t kSlots = 64;
inline constexpr uint64_t kInlineBytes = 64 * 1024;
inline constexpr uint64_t kCallbackBytes = 64 * 1024;
inline constexpr uint64_t kChannelBytes = 4ull << 30;  // virtual; pages exist only where written
inline constexpr const char* kChannelFdEnv = "CKPT_MPI_CHANNEL_FD";
inline constexpr int kChannelFdNumber = 900;  // where ckpt-run places it in the program

// A slot's state word (also its futex).
enum SlotState : uint32_t {
    kSlotFree = 0,      // no thread owns it
    kSlotIdle = 1,      // owned, no call in it
    kSlotPosted = 2,    // a call waits for the proxy
    kSlotTaken = 3,     // the proxy is executing it
    kSlotDone = 4,      // the answer is there
    kSlotCallback = 5,  // the proxy asks the application to run a user function
    kSlotCallbackDone = 6,
};

inline constexpr int kMaxArgs = 40;
inline constexpr int kMaxResults = 16;

// What the proxy asks the application to run, in a kSlotCallback.
enum CallbackKind : int64_t {
    kCallbackUserOp = 1,  // args: op id, in offset, inout offset, len, datatype id
};

struct alignas(64) Slot {
    std::atomic<uint32_t> state;
    std::atomic<uint32_t> shim_sleeping;   // the application thread waits on the futex
    std::atomic<uint32_t> proxy_sleeping;  // the proxy thread waits on the futex
    uint32_t call;                         // Call
    int64_t args[kMaxArgs];
    int64_t results[kMaxResults];  // results[0]: MPI error code
    int64_t callback[8];           // a callback's kind and arguments
    alignas(64) unsigned char inline_data[kInlineBytes];
    // Scratch of callbacks: the call's own buffers may be in inline_data.
    alignas(64) unsigned char callback_data[kCallbackBytes];
};

struct alignas(4096) ChannelHeader {
    uint32_t magic;
    uint32_t version;
    uint64_t size;  // bytes of the memfd
    uint64_t data_offset;  // start of the data area
    std::atomic<uint32_t> slots_claimed;  // futex: the proxy watches it for new slots
    std::atomic<uint32_t> proxy_ready;    // futex: 1 once a proxy serves the channel
    std::atomic<uint32_t> shim_pid;       // the MPI process, in its PID namespace (0 before MPI_Init)
    std::atomic<uint32_t> proxy_generation;  // grows with every proxy that attaches
    int32_t shim_fd;                      // its descriptor of the channel
    uint32_t pad;
    alignas(64) Slot slots[kSlots];
};

inline uint64_t channel_data_offset() { return (sizeof(ChannelHeader) + 4095) & ~uint64_t{4095}; }

// Fills a fresh channel's header (its memory is zero).
inline void init_channel(void* base, uint64_t size) {
    auto* h = static_cast<ChannelHeader*>(base);
    h->magic = kChannelMagic;
    h->version = kChannelVersion;
    h->size = size;
    h->data_offset = channel_data_offset();
    h->shim_fd = -1;
}

// ---- futex helpers (shared mapping: not FUTEX_PRIVATE) -------------------------
inline int futex_wait(std::atomic<uint32_t>* word, uint32_t expected, const timespec* timeout) {
    return static_cast<int>(syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, timeout, nullptr, 0));
}
inline void futex_wake_all(std::atomic<uint32_t>* word) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

inline void cpu_relax() { __builtin_ia32_pause(); }

// Publishes a new state and wakes the other side if it sleeps.
inline void slot_publish(Slot& s, uint32_t state, std::atomic<uint32_t>& other_sleeping) {
    s.state.store(state, std::memory_order_seq_cst);
    if (other_sleeping.load(std::memory_order_seq_cst)) futex_wake_all(&s.state);
}

inline int64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Waits until pred(state) holds: spins `spins` times, then keeps polling
// while yielding the core for up to `yield_ns` (on an oversubscribed node the
// other side may need this very core), then sleeps on the futex (woken by
// slot_publish), rechecking every 200 ms so that `give_up` can end the wait.
// Returns the state, or UINT32_MAX when give_up said so.
template <class Pred, class GiveUp>
uint32_t slot_wait(Slot& s, std::atomic<uint32_t>& my_sleeping, Pred pred, int spins, GiveUp give_up, int64_t yield_ns = 200000) {
    uint32_t v = s.state.load(std::memory_order_acquire);
    for (int i = 0; i < spins && !pred(v); ++i) {
        cpu_relax();
        v = s.state.load(std::memory_order_acquire);
    }
    if (!pred(v) && yield_ns > 0) {
        const int64_t until = monotonic_ns() + yield_ns;
        while (!pred(v) && monotonic_ns() < until) {
            sched_yield();
            v = s.state.load(std::memory_order_acquire);
        }
    }
    while (!pred(v)) {
        my_sleeping.store(1, std::memory_order_seq_cst);
        v = s.state.load(std::memory_order_seq_cst);
        if (!pred(v)) {
            timespec ts{0, 200 * 1000 * 1000};
            futex_wait(&s.state, v, &ts);
        }
        my_sleeping.store(0, std::memory_order_relaxed);
        v = s.state.load(std::memory_order_acquire);
        if (!pred(v) && give_up()) return UINT32_MAX;
    }
    return v;
}

}  // namespace ckpt::mpi
