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
inline constexpr uint32_t kChannelVersion = 3;
inline constexpr uint32_t kSlots = 64;
inline constexpr uint64_t kInlineBytes = 64 * 1024;
inline constexpr uint64_t kCallbackBytes = 64 * 1024;
inline constexpr uint64_t kChannelBytes = 16ull << 30;  // virtual; pages exist only where written (it holds the shared heap)
// Polls before a waiter yields its CPU (while the other side runs elsewhere).
inline constexpr int kShimSpins = 100;
inline constexpr int kProxySpins = 100;
// How long a waiter keeps yielding before it sleeps on the futex. A
// program waiting for its proxy sleeps soon: yielding, it would take CPU
// time from the proxies that move its data (1 MiB ping-pong: 3.7 GB/s
// with 200 us, 10.4 GB/s with 5 us, as natively). So does a proxy waiting
// for its program's next call: yielding for 200 us, it took a computing
// program's CPU time (halo mini-application with 2 ranks on 2 cores:
// 1.5x native with 200 us, 1.1x to 1.2x with 5 us); beside its program,
// on the same CPU, it does not yield at all (SleepBeside::Other).
inline constexpr int64_t kShimYieldNs = 5000;
inline constexpr int64_t kProxyYieldNs = 5000;
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

// Posts the shim queues without waiting for the proxy (nonblocking sends
// and receives, small blocking sends): the proxy's thread for the slot
// executes them in order, before the slot's next call.
inline constexpr uint32_t kQueueLength = 32;
inline constexpr uint64_t kCarriedBytes = 512;  // a blocking send's data, carried in its post
inline constexpr int kPostArgs = 8;
struct QueuedPost {
    uint32_t call;     // Call::Send or Call::Recv, with the call's arguments
    uint32_t carried;  // bytes of a blocking send's data in `data` (the proxy keeps a copy)
    int64_t args[kPostArgs];
    alignas(64) unsigned char data[kCarriedBytes];
};
inline constexpr int kMaxResults = 16;

// What the proxy asks the application to run, in a kSlotCallback.
enum CallbackKind : int64_t {
    kCallbackUserOp = 1,  // args: op id, in offset, inout offset, len, datatype id
};

struct alignas(64) Slot {
    std::atomic<uint32_t> state;
    std::atomic<uint32_t> shim_sleeping;   // the application thread waits on the futex
    std::atomic<uint32_t> proxy_sleeping;  // the proxy thread waits on the futex
    std::atomic<int32_t> shim_cpu;         // the CPU each side last ran on (see slot_wait)
    std::atomic<int32_t> proxy_cpu;
    std::atomic<uint32_t> doorbell;        // the proxy thread's futex: bumped by every post and call
    std::atomic<uint32_t> queue_head;      // posts written by the shim
    std::atomic<uint32_t> queue_tail;      // posts executed by the proxy
    std::atomic<int32_t> queued_error;     // the first failure of a queued blocking send (0: none)
    uint32_t call;                         // Call
    int64_t args[kMaxArgs];
    int64_t results[kMaxResults];  // results[0]: MPI error code
    int64_t callback[8];           // a callback's kind and arguments
    QueuedPost queue[kQueueLength];
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
    std::atomic<uint32_t> heap_owner;        // the pid whose shared heap is in the data area (0: none yet)
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

// The two ends of a slot.
enum class Side { Shim, Proxy };

inline std::atomic<uint32_t>& sleeping_word(Slot& s, Side side) { return side == Side::Shim ? s.shim_sleeping : s.proxy_sleeping; }
inline std::atomic<int32_t>& cpu_word(Slot& s, Side side) { return side == Side::Shim ? s.shim_cpu : s.proxy_cpu; }
// The shim sleeps on the slot's state; the proxy on its doorbell, which
// queued posts ring too.
inline std::atomic<uint32_t>& futex_word(Slot& s, Side side) { return side == Side::Shim ? s.state : s.doorbell; }
inline Side other(Side side) { return side == Side::Shim ? Side::Proxy : Side::Shim; }

// Records the CPU this side runs on (sched_getcpu reads it from rseq: no
// system call). Returns it.
inline int note_cpu(Slot& s, Side me) {
    const int cpu = sched_getcpu();
    cpu_word(s, me).store(cpu, std::memory_order_relaxed);
    return cpu;
}

// Wakes side `to` if it sleeps, once what it waits for is written. The
// first notifier takes the sleeper's flag: a burst of queued posts makes
// one wake-up system call, not one each.
inline void slot_notify(Slot& s, Side to) {
    std::atomic<uint32_t>& word = futex_word(s, to);
    if (to == Side::Proxy) word.fetch_add(1, std::memory_order_seq_cst);
    std::atomic<uint32_t>& sleeping = sleeping_word(s, to);
    if (sleeping.load(std::memory_order_seq_cst) && sleeping.exchange(0, std::memory_order_seq_cst)) futex_wake_all(&word);
}

// Publishes a new state for the other side.
inline void slot_publish(Slot& s, uint32_t state, Side to) {
    s.state.store(state, std::memory_order_seq_cst);
    slot_notify(s, to);
}

inline int64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// What a waiter does when the other side last ran on its own CPU, where
// the scheduler (EEVDF) favours whichever used less CPU time.
enum class SleepBeside {
    Never,  // yields: a program waiting for its proxy, which then gets the CPU
    // Sleeps at once: a proxy waiting for its program. Yielding would not
    // let the program run, as the proxy kept being picked: a halo
    // exchange's completion reached the program 7 us after its proxy
    // published it, 2.3 us with the proxy asleep.
    Other,
};

// Waits on side `me` until ready() holds. Spinning (up to `spins` polls)
// only pays while the other side runs on another CPU: a waiter on the
// other side's CPU yields at once, since the answer needs this very CPU
// (ranks and proxies oversubscribe the cores), or sleeps at once (see
// SleepBeside). After `yield_ns` of polling it sleeps on its futex word
// (woken by slot_notify), rechecking every 200 ms so that `give_up` can
// end the wait. False when give_up said so.
template <class Ready, class GiveUp>
bool slot_wait(Slot& s, Side me, Ready ready, int spins, GiveUp give_up, int64_t yield_ns, SleepBeside beside) {
    const std::atomic<int32_t>& other_cpu = cpu_word(s, other(me));
    int64_t until = 0;
    for (int polls = 0; !ready(); ++polls) {
        const int cpu = note_cpu(s, me);
        const bool beside_other = other_cpu.load(std::memory_order_relaxed) == cpu;
        if (polls < spins && !beside_other) {
            cpu_relax();
            continue;
        }
        if (beside_other && beside == SleepBeside::Other) break;
        const int64_t now = monotonic_ns();
        if (until == 0) until = now + yield_ns;
        if (now >= until) break;
        sched_yield();
    }
    std::atomic<uint32_t>& my_sleeping = sleeping_word(s, me);
    std::atomic<uint32_t>& word = futex_word(s, me);
    while (!ready()) {
        my_sleeping.store(1, std::memory_order_seq_cst);
        const uint32_t seen = word.load(std::memory_order_seq_cst);
        if (!ready()) {
            timespec ts{0, 200 * 1000 * 1000};
            futex_wait(&word, seen, &ts);
        }
        my_sleeping.store(0, std::memory_order_relaxed);
        if (!ready() && give_up()) return false;
    }
    return true;
}

}  // namespace ckpt::mpi
