// The shim's core: attaching to the channel, this thread's slot, calls to
// the proxy, the data area, errors, and the environment functions of MPI.
#include "mpi_plugin/shim/shim.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace ckpt::mpi::shim {

Shim& S() {
    static Shim* s = new Shim;  // never destroyed: MPI may be called from atexit handlers
    return *s;
}

uint64_t new_id() { return S().next_id.fetch_add(1); }

void register_type(MPI_Datatype t) {
    std::lock_guard lock(S().registry_mu);
    S().types_by_id[t->id] = t;
}

void forget_type(uint64_t id) {
    std::lock_guard lock(S().registry_mu);
    S().types_by_id.erase(id);
}

[[noreturn]] void die(const char* function, const std::string& why) {
    std::string line = std::string("ckpt MPI shim: ") + function + ": " + why + "\n";
    (void)!write(STDERR_FILENO, line.data(), line.size());
    _exit(134);
}

[[noreturn]] void unsupported(const char* function) {
    die(function, "not supported under ckpt-run (see docs/user-guide.md, \"MPI coverage\")");
}

void require_init(const char* function) {
    const Shim& s = S();
    if (!s.initialized) die(function, "called before MPI_Init");
    if (s.finalized) die(function, "called after MPI_Finalize");
}

// ---- the data area ---------------------------------------------------------------------
// First fit over the free blocks; blocks are 64-byte aligned. Very large blocks
// given back return their pages to the kernel.
namespace {
constexpr uint64_t kAlign = 64;
constexpr uint64_t kReleaseAbove = 64ull << 20;  // smaller blocks keep their pages: reused at once, no page faults
}  // namespace

uint64_t try_alloc_data(uint64_t bytes, uint64_t keep_free) {
    Shim& s = S();
    bytes = (bytes + kAlign - 1) & ~(kAlign - 1);
    if (bytes == 0) bytes = kAlign;
    std::lock_guard lock(s.alloc_mu);
    if (s.free_bytes < bytes + keep_free) return 0;
    for (auto it = s.free_blocks.begin(); it != s.free_blocks.end(); ++it) {
        if (it->second < bytes) continue;
        const uint64_t off = it->first, have = it->second;
        s.free_blocks.erase(it);
        if (have > bytes) s.free_blocks[off + bytes] = have - bytes;
        s.used_blocks[off] = bytes;
        s.free_bytes -= bytes;
        return off;
    }
    return 0;
}

uint64_t alloc_data(uint64_t bytes) {
    const uint64_t off = try_alloc_data(bytes, 0);
    if (off == 0) die("MPI", "the channel's data area (" + std::to_string(S().header->size >> 20) + " MiB) is full: too much data in flight");
    return off;
}

uint64_t data_block_bytes(uint64_t offset) {
    Shim& s = S();
    std::lock_guard lock(s.alloc_mu);
    auto it = s.used_blocks.find(offset);
    return it == s.used_blocks.end() ? 0 : it->second;
}

void free_data(uint64_t offset) {
    if (offset == 0) return;
    Shim& s = S();
    std::lock_guard lock(s.alloc_mu);
    auto used = s.used_blocks.find(offset);
    if (used == s.used_blocks.end()) return;
    uint64_t off = offset, bytes = used->second;
    s.used_blocks.erase(used);
    s.free_bytes += bytes;
    if (bytes >= kReleaseAbove) madvise(s.base + off, bytes, MADV_REMOVE);
    auto next = s.free_blocks.lower_bound(off);
    if (next != s.free_blocks.end() && next->first == off + bytes) {
        bytes += next->second;
        next = s.free_blocks.erase(next);
    }
    if (next != s.free_blocks.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second == off) {
            prev->second += bytes;
            return;
        }
    }
    s.free_blocks[off] = bytes;
}

bool map_channel() {
    Shim& s = S();
    static std::mutex mu;  // malloc of several threads may come here first
    std::lock_guard lock(mu);
    if (s.base) return true;
    const char* env = getenv(kChannelFdEnv);
    if (!env) return false;
    const int fd = atoi(env);
    void* base = mmap(nullptr, kChannelBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) return false;
    auto* header = static_cast<ChannelHeader*>(base);
    if (header->magic != kChannelMagic || header->size != kChannelBytes) {
        munmap(base, kChannelBytes);
        errno = EPROTO;
        return false;
    }
    {
        std::lock_guard alloc_lock(s.alloc_mu);
        s.free_blocks[header->data_offset] = header->size - header->data_offset;
        s.free_bytes = header->size - header->data_offset;
    }
    s.fd = fd;
    s.header = header;
    s.base = static_cast<unsigned char*>(base);  // last: the heap tests it without a lock
    return true;
}

// ---- slots -------------------------------------------------------------------------------
namespace {

struct ThreadSlot {
    Slot* slot = nullptr;
    ~ThreadSlot() {
        // A thread that ends gives its slot back (the proxy's thread for it
        // waits on; the next claimer reuses both).
        if (!slot) return;
        Shim& s = S();
        const auto index = static_cast<uint64_t>(slot - s.header->slots);
        slot->state.store(kSlotIdle);
        std::lock_guard lock(s.slot_mu);
        s.free_slots.push_back(index);
    }
};
thread_local ThreadSlot t_slot;

Slot* my_slot() {
    if (t_slot.slot) return t_slot.slot;
    Shim& s = S();
    std::lock_guard lock(s.slot_mu);
    uint64_t index;
    if (!s.free_slots.empty()) {
        index = s.free_slots.back();
        s.free_slots.pop_back();
    } else {
        index = s.header->slots_claimed.load();
        if (index >= kSlots) die("MPI", "more than " + std::to_string(kSlots) + " threads call MPI");
        s.header->slots[index].state.store(kSlotIdle);
        s.header->slots_claimed.store(static_cast<uint32_t>(index + 1));
        futex_wake_all(&s.header->slots_claimed);
        // From now on nothing is queued (queue_post): another thread may
        // complete a request this thread posted, so its posts must be out.
        if (index == 1) {
            Slot& first = s.header->slots[0];
            while (first.queue_head.load() != first.queue_tail.load()) sched_yield();
        }
    }
    t_slot.slot = &s.header->slots[index];
    return t_slot.slot;
}

}  // namespace

CallFrame::CallFrame(Call call) : slot_(my_slot()) { slot_->call = static_cast<uint32_t>(call); }

CallFrame::~CallFrame() {
    for (uint64_t off : temporaries_) free_data(off);
}

CallFrame& CallFrame::arg(int64_t v) {
    if (nargs_ >= kMaxArgs) die(call_name(static_cast<Call>(slot_->call)), "too many arguments (internal)");
    slot_->args[nargs_++] = v;
    return *this;
}

uint64_t CallFrame::space(uint64_t n) {
    const uint64_t aligned = (n + 63) & ~uint64_t{63};
    if (inline_used_ + aligned <= kInlineBytes) {
        const uint64_t off = static_cast<uint64_t>(slot_->inline_data - S().base) + inline_used_;
        inline_used_ += aligned;
        return off;
    }
    const uint64_t off = alloc_data(n);
    temporaries_.push_back(off);
    return off;
}

uint64_t CallFrame::put(const void* data, uint64_t n) {
    const uint64_t off = space(n);
    if (n) memcpy(at(off), data, n);
    return off;
}

namespace {

void run_callback(Slot& slot) {
    if (slot.callback[0] != kCallbackUserOp) return;
    Shim& s = S();
    MPI_Op op = nullptr;
    MPI_Datatype type = MPI_DATATYPE_NULL;
    {
        std::lock_guard lock(s.registry_mu);
        auto o = s.ops_by_id.find(static_cast<uint64_t>(slot.callback[1]));
        auto t = s.types_by_id.find(static_cast<uint64_t>(slot.callback[5]));
        if (o != s.ops_by_id.end()) op = o->second;
        if (t != s.types_by_id.end()) type = t->second;
    }
    if (!op || !op->d || !op->d->fn) die("MPI (user-defined reduction)", "the proxy named an operation this program does not have");
    void* in = at(static_cast<uint64_t>(slot.callback[2]));
    void* inout = at(static_cast<uint64_t>(slot.callback[3]));
    int len = static_cast<int>(slot.callback[4]);
    op->d->fn(in, inout, &len, &type);
}

// A blocking send queued earlier that the proxy could not post: the
// program's error handler is fatal (queue_post), so it ends here.
void check_queued_error(Slot& s) {
    if (const int32_t rc = s.queued_error.load(std::memory_order_relaxed); rc != 0)
        die("MPI_Send", "a send made earlier failed at the proxy: MPI error " + std::to_string(rc));
}

}  // namespace

bool queue_post(Call call, const int64_t* args, int nargs, const void* carried, uint64_t carried_bytes) {
    Shim& sh = S();
    if (sh.header->slots_claimed.load(std::memory_order_relaxed) > 1 || carried_bytes > kCarriedBytes || nargs > kPostArgs) return false;
    Slot& s = *my_slot();
    check_queued_error(s);
    const uint32_t head = s.queue_head.load(std::memory_order_relaxed);
    if (head - s.queue_tail.load(std::memory_order_acquire) >= kQueueLength) return false;  // full: the caller makes a call
    QueuedPost& q = s.queue[head % kQueueLength];
    q.call = static_cast<uint32_t>(call);
    q.carried = static_cast<uint32_t>(carried_bytes);
    for (int i = 0; i < kPostArgs; ++i) q.args[i] = i < nargs ? args[i] : 0;
    if (carried_bytes) memcpy(q.data, carried, carried_bytes);
    s.queue_head.store(head + 1, std::memory_order_release);
    slot_notify(s, Side::Proxy);
    return true;
}

int CallFrame::run() {
    Slot& s = *slot_;
    check_queued_error(s);
    slot_publish(s, kSlotPosted, Side::Proxy);
    for (;;) {
        uint32_t st = 0;
        slot_wait(
            s, Side::Shim,
            [&] {
                st = s.state.load(std::memory_order_acquire);
                return st == kSlotDone || st == kSlotCallback;
            },
            kShimSpins, [] { return false; }, kShimYieldNs, SleepBeside::Never);
        if (st == kSlotCallback) {
            run_callback(s);
            slot_publish(s, kSlotCallbackDone, Side::Proxy);
            continue;
        }
        break;
    }
    s.state.store(kSlotIdle, std::memory_order_relaxed);
    return static_cast<int>(s.results[0]);
}

// ---- errors ---------------------------------------------------------------------------
int handle_error(MPI_Comm comm, int code, const char* function) {
    if (code == MPI_SUCCESS) return code;
    MPI_Errhandler eh = MPI_ERRORS_ARE_FATAL;
    if (comm != MPI_COMM_NULL && valid_comm(comm)) eh = comm_data(comm).errhandler;
    if (eh == MPI_ERRORS_RETURN) return code;
    if (eh != MPI_ERRORS_ARE_FATAL && eh->d && eh->d->comm_fn) {
        MPI_Comm c = comm;
        int e = code;
        eh->d->comm_fn(&c, &e);
        return code;
    }
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    PMPI_Error_string(code, text, &len);
    die(function, std::string("error ") + std::to_string(code) + " (" + text + "); MPI_ERRORS_ARE_FATAL");
}

// ---- attaching ---------------------------------------------------------------------------
namespace {

void attach_channel() {
    Shim& s = S();
    const char* env = getenv(kChannelFdEnv);
    if (!env) die("MPI_Init", "this program uses the ckpt MPI shim but was not started by `ckpt-run` (no " + std::string(kChannelFdEnv) + ")");
    if (!map_channel()) die("MPI_Init", std::string("cannot map the channel to the proxy (fd ") + env + "): " + strerror(errno));
    if (s.header->magic != kChannelMagic || s.header->version != kChannelVersion) die("MPI_Init", "the channel to the proxy is not one this shim knows");
    s.header->shim_fd = s.fd;
    s.header->shim_pid.store(static_cast<uint32_t>(getpid()));
    // The proxy does its own MPI_Init meanwhile.
    while (!s.header->proxy_ready.load()) {
        timespec ts{1, 0};
        futex_wait(&s.header->proxy_ready, 0, &ts);
    }
}

int do_init(int required, int* provided) {
    Shim& s = S();
    if (s.initialized) return MPI_ERR_OTHER;
    attach_channel();
    init_predefined();
    CallFrame c(Call::Init);
    c.arg(required);
    const uint64_t name_off = c.space(MPI_MAX_PROCESSOR_NAME);
    c.arg(static_cast<int64_t>(name_off));
    const int rc = c.run();
    if (rc != MPI_SUCCESS) die("MPI_Init", "the proxy's MPI_Init failed");
    s.world_rank = static_cast<int>(c.result(kInitRank));
    s.world_size = static_cast<int>(c.result(kInitSize));
    s.tag_ub = static_cast<int>(c.result(kInitTagUb));
    s.universe = static_cast<int>(c.result(kInitUniverse));
    s.appnum = static_cast<int>(c.result(kInitAppnum));
    s.provided = static_cast<int>(c.result(kInitProvided));
    s.wtime_global = static_cast<int>(c.result(kInitWtimeGlobal));
    s.processor_name = static_cast<const char*>(at(name_off));
    comm_data(MPI_COMM_WORLD).rank = s.world_rank;
    comm_data(MPI_COMM_WORLD).size = s.world_size;
    comm_data(MPI_COMM_SELF).rank = 0;
    comm_data(MPI_COMM_SELF).size = 1;
    s.initialized = true;
    if (provided) *provided = s.provided;
    return MPI_SUCCESS;
}

}  // namespace

}  // namespace ckpt::mpi::shim

using namespace ckpt::mpi;
using namespace ckpt::mpi::shim;

extern "C" {

int PMPI_Init(int*, char***) { return do_init(MPI_THREAD_SINGLE, nullptr); }
int PMPI_Init_thread(int*, char***, int required, int* provided) { return do_init(required, provided); }

int PMPI_Initialized(int* flag) {
    *flag = S().initialized;
    return MPI_SUCCESS;
}

int PMPI_Finalized(int* flag) {
    *flag = S().finalized;
    return MPI_SUCCESS;
}

int PMPI_Finalize(void) {
    require_init("MPI_Finalize");
    CallFrame c(Call::Finalize);
    const int rc = c.run();
    S().finalized = true;
    return rc;
}

int PMPI_Abort(MPI_Comm comm, int errorcode) {
    if (!S().initialized) _exit(errorcode ? errorcode : 1);
    CallFrame c(Call::Abort);
    c.arg(static_cast<int64_t>(id_of(comm))).arg(errorcode);
    c.run();
    _exit(errorcode ? errorcode : 1);
}

int PMPI_Query_thread(int* provided) {
    *provided = S().provided;
    return MPI_SUCCESS;
}

int PMPI_Is_thread_main(int* flag) {
    *flag = getpid() == static_cast<pid_t>(syscall(SYS_gettid));
    return MPI_SUCCESS;
}

int PMPI_Get_processor_name(char* name, int* resultlen) {
    require_init("MPI_Get_processor_name");
    const std::string& n = S().processor_name;
    const size_t len = std::min<size_t>(n.size(), MPI_MAX_PROCESSOR_NAME - 1);
    memcpy(name, n.data(), len);
    name[len] = 0;
    *resultlen = static_cast<int>(len);
    return MPI_SUCCESS;
}

int PMPI_Get_version(int* version, int* subversion) {
    *version = MPI_VERSION;
    *subversion = MPI_SUBVERSION;
    return MPI_SUCCESS;
}

int PMPI_Get_library_version(char* version, int* resultlen) {
    const char* v = "Open MPI v4.1.4 (through the ckpt MPI shim: checkpointable, network-agnostic)";
    snprintf(version, MPI_MAX_LIBRARY_VERSION_STRING, "%s", v);
    *resultlen = static_cast<int>(strlen(version));
    return MPI_SUCCESS;
}

double PMPI_Wtime(void) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double PMPI_Wtick(void) { return 1e-9; }

int PMPI_Error_class(int errorcode, int* errorclass) {
    *errorclass = errorcode;
    return MPI_SUCCESS;
}

int PMPI_Error_string(int errorcode, char* string, int* resultlen) {
    static const char* const names[] = {"MPI_SUCCESS: no errors",
                                        "MPI_ERR_BUFFER: invalid buffer pointer",
                                        "MPI_ERR_COUNT: invalid count argument",
                                        "MPI_ERR_TYPE: invalid datatype",
                                        "MPI_ERR_TAG: invalid tag",
                                        "MPI_ERR_COMM: invalid communicator",
                                        "MPI_ERR_RANK: invalid rank",
                                        "MPI_ERR_REQUEST: invalid request",
                                        "MPI_ERR_ROOT: invalid root",
                                        "MPI_ERR_GROUP: invalid group",
                                        "MPI_ERR_OP: invalid reduce operation",
                                        "MPI_ERR_TOPOLOGY: invalid communicator topology",
                                        "MPI_ERR_DIMS: invalid topology dimension",
                                        "MPI_ERR_ARG: invalid argument of some other kind",
                                        "MPI_ERR_UNKNOWN: unknown error",
                                        "MPI_ERR_TRUNCATE: message truncated",
                                        "MPI_ERR_OTHER: known error not in list",
                                        "MPI_ERR_INTERN: internal error",
                                        "MPI_ERR_IN_STATUS: error code is in status"};
    const char* text = errorcode >= 0 && errorcode < static_cast<int>(sizeof names / sizeof names[0]) ? names[errorcode] : "MPI error";
    snprintf(string, MPI_MAX_ERROR_STRING, "%s", text);
    *resultlen = static_cast<int>(strlen(string));
    return MPI_SUCCESS;
}

int PMPI_Alloc_mem(MPI_Aint size, MPI_Info, void* baseptr) {
    void* p = malloc(size > 0 ? static_cast<size_t>(size) : 1);
    if (!p) return MPI_ERR_NO_MEM;
    *static_cast<void**>(baseptr) = p;
    return MPI_SUCCESS;
}

int PMPI_Free_mem(void* base) {
    free(base);
    return MPI_SUCCESS;
}

int PMPI_Pcontrol(const int, ...) { return MPI_SUCCESS; }

}  // extern "C"

// Every MPI function the shim does not implement lands here (stubs.S).
extern "C" [[noreturn]] void ckpt_mpi_unsupported(const char* name) { ckpt::mpi::shim::unsupported(name); }
