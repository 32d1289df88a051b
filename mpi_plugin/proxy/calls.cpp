// The proxy's side of each call: the real Open MPI on channel memory.
#include "mpi_plugin/proxy/proxy.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace ckpt::mpi::proxy {

// Shim datatype ids to the real predefined types (the ompi_mpi_* objects of
// the real library; some have no MPI_ name in this mpi.h).
extern "C" {
#define X(sym, name, size, extent, off2, size2) extern struct ompi_predefined_datatype_t ompi_mpi_##sym;
#include "mpi_plugin/common/predefined_types.def"
#undef X
}

void register_predefined(std::map<uint64_t, MPI_Datatype>& types, std::map<uint64_t, MPI_Op>& ops) {
    uint64_t index = 0;
#define X(sym, name, size, extent, off2, size2) types[kTypeBase + index++] = reinterpret_cast<MPI_Datatype>(&ompi_mpi_##sym);
#include "mpi_plugin/common/predefined_types.def"
#undef X
    const MPI_Op predefined[] = {MPI_OP_NULL, MPI_MAX, MPI_MIN, MPI_SUM, MPI_PROD, MPI_LAND, MPI_BAND, MPI_LOR,
                                 MPI_BOR,     MPI_LXOR, MPI_BXOR, MPI_MAXLOC, MPI_MINLOC, MPI_REPLACE, MPI_NO_OP};
    for (uint64_t i = 0; i < static_cast<uint64_t>(PredefOp::Count); ++i) ops[kOpBase + i] = predefined[i];
}

namespace {

// A creation-log entry of the slot's call, about object `id`.
LogEntry entry_of(const Slot& s, ObjKind kind, Call call, uint64_t id, int nargs = 0) {
    LogEntry e;
    e.kind = static_cast<uint32_t>(kind);
    e.call = static_cast<uint32_t>(call);
    e.id = id;
    e.args.assign(s.args, s.args + nargs);
    return e;
}

void put_status(int64_t* w, const MPI_Status& st, bool done) {
    w[kStSource] = st.MPI_SOURCE;
    w[kStTag] = st.MPI_TAG;
    w[kStError] = st.MPI_ERROR;
    w[kStCancelled] = st._cancelled;
    w[kStBytes] = static_cast<int64_t>(st._ucount);
    w[kStDone] = done;
}

std::vector<int> read_ints(const Proxy& p, int64_t offset, int64_t n) {
    std::vector<int> v(static_cast<size_t>(std::max<int64_t>(n, 0)));
    const auto* src = reinterpret_cast<const int64_t*>(p.at(static_cast<uint64_t>(offset)));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<int>(src[i]);
    return v;
}

std::vector<int64_t> read_words(const Proxy& p, int64_t offset, int64_t n) {
    const auto* src = reinterpret_cast<const int64_t*>(p.at(static_cast<uint64_t>(offset)));
    return std::vector<int64_t>(src, src + std::max<int64_t>(n, 0));
}

}  // namespace

// ---- environment -----------------------------------------------------------------------

Outcome Proxy::call_init(Slot& s) {
    const int required = static_cast<int>(s.args[0]);
    int flag = 0;
    int* tag_ub = nullptr;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
    int* universe = nullptr;
    int uflag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_UNIVERSE_SIZE, &universe, &uflag);
    int* appnum = nullptr;
    int aflag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_APPNUM, &appnum, &aflag);
    int* wtime_global = nullptr;
    int wflag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_WTIME_IS_GLOBAL, &wtime_global, &wflag);
    s.results[kInitRank] = world_rank_;
    s.results[kInitSize] = world_size_;
    s.results[kInitTagUb] = flag ? *tag_ub : 32767;
    s.results[kInitUniverse] = uflag ? *universe : world_size_;
    s.results[kInitAppnum] = aflag ? *appnum : 0;
    s.results[kInitProvided] = std::min(required, static_cast<int>(MPI_THREAD_MULTIPLE));
    s.results[kInitWtimeGlobal] = wflag ? *wtime_global : 0;
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(name, &len);
    memcpy(at(static_cast<uint64_t>(s.args[1])), name, static_cast<size_t>(len) + 1);
    return Outcome::Done;
}

// Finalize is a collective of MPI_COMM_WORLD for the quiescing barrier: a
// checkpoint finds every rank before it or every rank past it.
Outcome Proxy::call_finalize(Slot& s) {
    if (!enter_collective(kCommWorld)) return Outcome::Abandon;
    s.results[0] = MPI_Finalize();
    {
        std::lock_guard lock(mu_);
        finalized_ = true;
    }
    leave_collective();
    return Outcome::Done;
}

Outcome Proxy::call_abort(Slot& s) {
    MPI_Abort(comm(static_cast<uint64_t>(s.args[0])), static_cast<int>(s.args[1]));
    return Outcome::Done;
}

// ---- requests ------------------------------------------------------------------------------

uint64_t Proxy::add_request(Request r, uint64_t id) {
    std::lock_guard lock(mu_);
    if (id == 0) id = next_internal_id_++;
    r.seq = next_seq_++;
    requests_[id] = std::move(r);
    return id;
}

void Proxy::count_completion_locked(Request& r) {
    if (r.kind == Request::Kind::Recv && !r.status._cancelled && r.status.MPI_SOURCE >= 0) {
        auto it = comms_.find(r.comm);
        if (it != comms_.end() && r.status.MPI_SOURCE < static_cast<int>(it->second.world.size()))
            ++received_from_[static_cast<size_t>(it->second.world[static_cast<size_t>(r.status.MPI_SOURCE)])];
    }
    if (r.kind == Request::Kind::Collective) {
        --collectives_in_flight_;
        cv_.notify_all();
    }
}

bool Proxy::test_locked(uint64_t, Request& r) {
    if (r.done) return true;
    if (r.real == MPI_REQUEST_NULL) return false;  // cancelled at a checkpoint, posted again at resume
    int flag = 0;
    MPI_Status st{};
    MPI_Test(&r.real, &flag, &st);
    if (!flag) return false;
    r.done = true;
    r.status = st;
    count_completion_locked(r);
    return true;
}

void Proxy::retire_locked(uint64_t id) { requests_.erase(id); }

// Between two polls of the network: the other ranks, or this rank's
// program, may need this very CPU (cores are oversubscribed).
void Proxy::pause_waiting() {
    if (current_slot) note_cpu(*current_slot, Side::Proxy);
    sched_yield();
}

Outcome Proxy::wait_request(uint64_t id) {
    std::unique_lock lock(mu_);
    ++threads_waiting_;
    cv_.notify_all();
    for (;;) {
        auto it = requests_.find(id);
        if (it == requests_.end()) break;
        if (test_locked(id, it->second)) break;
        if (interrupt_) {
            --threads_waiting_;
            return Outcome::Abandon;
        }
        lock.unlock();
        pause_waiting();
        lock.lock();
    }
    --threads_waiting_;
    return Outcome::Done;
}

// A message drained at a checkpoint that matches a new receive comes first.
int Proxy::try_drained(uint64_t comm, int source, int tag, uint64_t offset, uint64_t capacity, MPI_Status& st) {
    std::lock_guard lock(mu_);
    for (auto it = drained_.begin(); it != drained_.end(); ++it) {
        if (it->comm != comm) continue;
        if (source != MPI_ANY_SOURCE && it->source != source) continue;
        if (tag != MPI_ANY_TAG && it->tag != tag) continue;
        const uint64_t n = std::min<uint64_t>(capacity, it->data.size());
        if (n) memcpy(at(offset), it->data.data(), n);
        st = MPI_Status{};
        st.MPI_SOURCE = it->source;
        st.MPI_TAG = it->tag;
        st.MPI_ERROR = it->data.size() > capacity ? MPI_ERR_TRUNCATE : MPI_SUCCESS;
        st._ucount = n;
        drained_.erase(it);
        return 1;
    }
    return 0;
}

// ---- point to point -------------------------------------------------------------------------

// Posts a send: Call::Send's arguments (comm, dest, tag, mode, offset,
// bytes, request id: 0 for a blocking send, which gets an internal id).
// A carried send's data is the request's own copy, not channel memory.
int Proxy::post_send(const int64_t* args, std::vector<unsigned char> carried, uint64_t& id) {
    const uint64_t comm_id = static_cast<uint64_t>(args[0]);
    const int dest = static_cast<int>(args[1]), tag = static_cast<int>(args[2]);
    const int64_t mode = args[3];
    MPI_Comm c = comm(comm_id);
    if (c == MPI_COMM_NULL) return MPI_ERR_COMM;
    const int wr = world_rank(comm_id, dest);
    if (wr < 0) return MPI_ERR_RANK;
    Request r;
    r.kind = Request::Kind::Send;
    r.comm = comm_id;
    r.peer = dest;
    r.tag = tag;
    r.mode = mode;
    r.offset = static_cast<uint64_t>(args[4]);
    r.bytes = static_cast<uint64_t>(args[5]);
    r.carried = std::move(carried);
    void* buf = r.carried.empty() ? at(r.offset) : r.carried.data();
    const int n = static_cast<int>(r.bytes);
    int rc;
    {
        // Posted and counted together: the drain's count exchange never
        // sees one without the other.
        std::lock_guard lock(mu_);
        if (mode == kSendSync)
            rc = MPI_Issend(buf, n, MPI_BYTE, dest, tag, c, &r.real);
        else if (mode == kSendReady)
            rc = MPI_Irsend(buf, n, MPI_BYTE, dest, tag, c, &r.real);
        else
            rc = MPI_Isend(buf, n, MPI_BYTE, dest, tag, c, &r.real);
        if (rc == MPI_SUCCESS) ++sent_to_[static_cast<size_t>(wr)];
    }
    if (rc == MPI_SUCCESS) id = add_request(std::move(r), static_cast<uint64_t>(args[6]));
    return rc;
}

// Posts a receive: Call::Recv's arguments (comm, source, tag, offset,
// capacity, request id). A message drained at a checkpoint may complete it
// at once.
int Proxy::post_recv(const int64_t* args, uint64_t& id) {
    const uint64_t comm_id = static_cast<uint64_t>(args[0]);
    const int source = static_cast<int>(args[1]), tag = static_cast<int>(args[2]);
    const uint64_t off = static_cast<uint64_t>(args[3]), capacity = static_cast<uint64_t>(args[4]);
    MPI_Comm c = comm(comm_id);
    if (c == MPI_COMM_NULL) return MPI_ERR_COMM;
    Request r;
    r.kind = Request::Kind::Recv;
    r.comm = comm_id;
    r.peer = source;
    r.tag = tag;
    r.offset = off;
    r.bytes = capacity;
    MPI_Status st{};
    if (try_drained(comm_id, source, tag, off, capacity, st)) {
        r.done = true;
        r.status = st;
    } else if (const int rc = MPI_Irecv(at(off), static_cast<int>(capacity), MPI_BYTE, source, tag, c, &r.real); rc != MPI_SUCCESS) {
        return rc;
    }
    id = add_request(std::move(r), static_cast<uint64_t>(args[5]));
    return MPI_SUCCESS;
}

// The answer to a send or receive posted for the slot's call: at once
// for a nonblocking post; a blocking one waits for its request and answers
// its error (and a receive's status).
Outcome Proxy::answer_post(Slot& s, int rc, uint64_t id, bool blocking, bool with_status) {
    if (rc != MPI_SUCCESS || !blocking) {
        s.results[0] = rc;
        return Outcome::Done;
    }
    const Outcome out = wait_request(id);
    std::lock_guard lock(mu_);
    auto it = requests_.find(id);
    if (it == requests_.end()) return out;
    if (out == Outcome::Done) {
        if (with_status) put_status(&s.results[1], it->second.status, true);
        s.results[0] = it->second.status.MPI_ERROR;
    }
    retire_locked(id);
    return out;
}

Outcome Proxy::call_send(Slot& s) {
    uint64_t id = 0;
    const int rc = post_send(s.args, {}, id);
    return answer_post(s, rc, id, s.args[6] == 0, false);
}

Outcome Proxy::call_recv(Slot& s) {
    uint64_t id = 0;
    const int rc = post_recv(s.args, id);
    return answer_post(s, rc, id, s.args[5] == 0, true);
}

// The posts the shim queued on a slot, in order. A failed nonblocking post
// completes its request with the error; a failed blocking send is reported
// by the shim's next call. A blocking send's request is forgotten once it
// completes.
void Proxy::execute_queued(Slot& s) {
    uint32_t tail = s.queue_tail.load(std::memory_order_relaxed);
    const uint32_t head = s.queue_head.load(std::memory_order_acquire);
    for (; tail != head; ++tail) {
        const QueuedPost& q = s.queue[tail % kQueueLength];
        uint64_t id = 0;
        int rc;
        if (static_cast<Call>(q.call) == Call::Send)
            rc = post_send(q.args, std::vector<unsigned char>(q.data, q.data + q.carried), id);
        else
            rc = post_recv(q.args, id);
        const auto request = static_cast<uint64_t>(static_cast<Call>(q.call) == Call::Send ? q.args[6] : q.args[5]);
        if (rc != MPI_SUCCESS && request != 0) {
            Request failed;
            failed.done = true;
            failed.status.MPI_ERROR = rc;
            add_request(std::move(failed), request);
        } else if (rc != MPI_SUCCESS) {
            int32_t none = 0;
            s.queued_error.compare_exchange_strong(none, rc);
        } else if (request == 0) {
            std::lock_guard lock(mu_);
            detached_.push_back(id);
        }
        s.queue_tail.store(tail + 1, std::memory_order_release);
    }
    std::lock_guard lock(mu_);
    forget_detached_locked();
}

// Requests nobody will wait for (queued blocking sends, MPI_Request_free)
// are forgotten once complete, oldest first.
void Proxy::forget_detached_locked() {
    while (!detached_.empty()) {
        auto it = requests_.find(detached_.front());
        if (it != requests_.end() && !test_locked(it->first, it->second)) break;
        if (it != requests_.end()) retire_locked(it->first);
        detached_.pop_front();
    }
}

Outcome Proxy::call_probe(Slot& s) {
    const uint64_t comm_id = static_cast<uint64_t>(s.args[0]);
    const int source = static_cast<int>(s.args[1]), tag = static_cast<int>(s.args[2]);
    const bool blocking = s.args[3] != 0;
    MPI_Comm c = comm(comm_id);
    if (c == MPI_COMM_NULL) {
        s.results[0] = MPI_ERR_COMM;
        return Outcome::Done;
    }
    std::unique_lock lock(mu_);
    ++threads_waiting_;
    for (;;) {
        for (const auto& m : drained_) {
            if (m.comm != comm_id || (source != MPI_ANY_SOURCE && m.source != source) || (tag != MPI_ANY_TAG && m.tag != tag)) continue;
            MPI_Status st{};
            st.MPI_SOURCE = m.source;
            st.MPI_TAG = m.tag;
            st._ucount = m.data.size();
            s.results[1] = 1;
            put_status(&s.results[2], st, true);
            --threads_waiting_;
            return Outcome::Done;
        }
        int flag = 0;
        MPI_Status st{};
        MPI_Iprobe(source, tag, c, &flag, &st);
        if (flag) {
            s.results[1] = 1;
            put_status(&s.results[2], st, true);
            break;
        }
        if (!blocking) {
            s.results[1] = 0;
            break;
        }
        if (interrupt_) {
            --threads_waiting_;
            return Outcome::Abandon;
        }
        lock.unlock();
        pause_waiting();
        lock.lock();
    }
    --threads_waiting_;
    return Outcome::Done;
}

Outcome Proxy::call_complete(Slot& s) {
    const auto mode = static_cast<CompleteMode>(s.args[0]);
    const int64_t n = s.args[1];
    const auto* ids = reinterpret_cast<const int64_t*>(at(static_cast<uint64_t>(s.args[2])));
    auto* words = reinterpret_cast<int64_t*>(at(static_cast<uint64_t>(s.args[3])));
    const bool all = mode == CompleteMode::WaitAll || mode == CompleteMode::TestAll;
    const bool wait = mode == CompleteMode::WaitAll || mode == CompleteMode::WaitAny || mode == CompleteMode::WaitSome;
    std::unique_lock lock(mu_);
    ++threads_waiting_;
    for (;;) {
        int64_t ndone = 0;
        for (int64_t i = 0; i < n; ++i) {
            auto it = requests_.find(static_cast<uint64_t>(ids[i]));
            if (it == requests_.end() || test_locked(it->first, it->second)) ++ndone;
        }
        const bool satisfied = all ? ndone == n : ndone > 0;
        if (satisfied || !wait) {
            if (satisfied || !all) {
                for (int64_t i = 0; i < n; ++i) {
                    int64_t* w = words + i * kStWords;
                    auto it = requests_.find(static_cast<uint64_t>(ids[i]));
                    if (it == requests_.end()) {
                        MPI_Status empty{};
                        put_status(w, empty, true);
                        continue;
                    }
                    put_status(w, it->second.status, it->second.done);
                    if (it->second.done) {
                        if (it->second.status.MPI_ERROR != MPI_SUCCESS && s.results[0] == MPI_SUCCESS) s.results[0] = MPI_ERR_IN_STATUS;
                        retire_locked(it->first);
                    }
                }
            } else {
                for (int64_t i = 0; i < n; ++i) words[i * kStWords + kStDone] = 0;
            }
            break;
        }
        if (interrupt_) {
            --threads_waiting_;
            return Outcome::Abandon;
        }
        lock.unlock();
        pause_waiting();
        lock.lock();
    }
    --threads_waiting_;
    if (s.results[0] == MPI_ERR_IN_STATUS && n == 1) s.results[0] = words[kStError];
    return Outcome::Done;
}

Outcome Proxy::call_cancel(Slot& s) {
    std::lock_guard lock(mu_);
    auto it = requests_.find(static_cast<uint64_t>(s.args[0]));
    if (it != requests_.end() && !it->second.done && it->second.real != MPI_REQUEST_NULL) {
        MPI_Cancel(&it->second.real);
    } else if (it != requests_.end() && !it->second.done && it->second.reposted) {
        // Not posted again yet: cancelled without the network.
        it->second.done = true;
        it->second.reposted = false;
        it->second.status = MPI_Status{};
        it->second.status._cancelled = 1;
    }
    return Outcome::Done;
}

Outcome Proxy::call_request_free(Slot& s) {
    std::lock_guard lock(mu_);
    auto it = requests_.find(static_cast<uint64_t>(s.args[0]));
    if (it == requests_.end()) return Outcome::Done;
    if (it->second.done) {
        retire_locked(it->first);
    } else {
        it->second.freed = true;
        detached_.push_back(it->first);
    }
    forget_detached_locked();
    return Outcome::Done;
}

// ---- user-defined reduction operations ---------------------------------------------------------
namespace {

constexpr int kTrampolines = 256;
Proxy* g_proxy = nullptr;  // the trampolines' way back (MPI_User_function has no context argument)
uint64_t g_trampoline_op[kTrampolines];

template <int N>
void trampoline(void* in, void* inout, int* len, MPI_Datatype* type) {
    g_proxy->run_user_op(g_trampoline_op[N], in, inout, *len, type);
}

template <int... N>
constexpr auto make_trampolines(std::integer_sequence<int, N...>) {
    return std::array<MPI_User_function*, sizeof...(N)>{&trampoline<N>...};
}
const auto kTrampolineFns = make_trampolines(std::make_integer_sequence<int, kTrampolines>{});

}  // namespace

// The operation's function is the application's: the thread blocked in the
// collective runs it, on copies of the two buffers in its slot.
void Proxy::run_user_op(uint64_t op_id, void* in, void* inout, int len, MPI_Datatype* type) {
    Slot* s = current_slot;
    if (!s) {
        say("a user-defined reduction was progressed outside the calling thread; unsupported");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Aint lb = 0, extent = 0;
    MPI_Type_get_extent(*type, &lb, &extent);
    uint64_t tid = 0;
    {
        std::lock_guard lock(mu_);
        for (const auto& [id, t] : types_)
            if (t == *type) tid = id;
    }
    const uint64_t half = kCallbackBytes / 2;
    const int per_chunk = extent > 0 ? static_cast<int>(std::max<uint64_t>(1, half / static_cast<uint64_t>(extent))) : len;
    if (static_cast<uint64_t>(extent) > half) {
        say("a user-defined reduction on elements larger than " + std::to_string(half) + " bytes is unsupported");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    const uint64_t in_off = static_cast<uint64_t>(s->callback_data - base_);
    const uint64_t inout_off = in_off + half;
    for (int done = 0; done < len; done += per_chunk) {
        const int n = std::min(per_chunk, len - done);
        const size_t bytes = static_cast<size_t>(n) * static_cast<size_t>(extent);
        memcpy(s->callback_data, static_cast<unsigned char*>(in) + static_cast<size_t>(done) * static_cast<size_t>(extent), bytes);
        memcpy(s->callback_data + half, static_cast<unsigned char*>(inout) + static_cast<size_t>(done) * static_cast<size_t>(extent), bytes);
        s->callback[0] = kCallbackUserOp;
        s->callback[1] = static_cast<int64_t>(op_id);
        s->callback[2] = static_cast<int64_t>(in_off);
        s->callback[3] = static_cast<int64_t>(inout_off);
        s->callback[4] = n;
        s->callback[5] = static_cast<int64_t>(tid);
        slot_publish(*s, kSlotCallback, Side::Shim);
        if (!slot_wait(*s, Side::Proxy, [s] { return s->state.load(std::memory_order_acquire) == kSlotCallbackDone; }, 2000,
                       [&] { return stopping_.load(); }, kProxyYieldNs, SleepBeside::Other))
            return;  // the program is gone
        s->state.store(kSlotTaken);
        memcpy(static_cast<unsigned char*>(inout) + static_cast<size_t>(done) * static_cast<size_t>(extent), s->callback_data + half, bytes);
    }
}

int Proxy::exec_op_create(const LogEntry& e) {
    g_proxy = this;
    std::lock_guard lock(mu_);
    int slot = -1;
    std::vector<bool> used(kTrampolines, false);
    for (const auto& [id, o] : ops_)
        for (int i = 0; i < kTrampolines; ++i)
            if (g_trampoline_op[i] == id && id >= kFirstUserId) used[static_cast<size_t>(i)] = true;
    for (int i = 0; i < kTrampolines && slot < 0; ++i)
        if (!used[static_cast<size_t>(i)]) slot = i;
    if (slot < 0) {
        say("more than " + std::to_string(kTrampolines) + " user-defined reduction operations at once are unsupported");
        return MPI_ERR_OP;
    }
    g_trampoline_op[slot] = e.id;
    MPI_Op real;
    const int rc = MPI_Op_create(kTrampolineFns[static_cast<size_t>(slot)], static_cast<int>(e.args[1]), &real);
    if (rc == MPI_SUCCESS) ops_[e.id] = real;
    return rc;
}

Outcome Proxy::call_op_create(Slot& s) {
    LogEntry e = entry_of(s, ObjKind::Op, Call::OpCreate, static_cast<uint64_t>(s.args[0]), 2);
    s.results[0] = exec_op_create(e);
    if (s.results[0] == MPI_SUCCESS) log(std::move(e));
    return Outcome::Done;
}

Outcome Proxy::call_op_free(Slot& s) {
    return free_object(entry_of(s, ObjKind::Op, Call::OpFree, static_cast<uint64_t>(s.args[0])));
}

// ---- collectives ----------------------------------------------------------------------------


Outcome Proxy::call_collective(Slot& s) {
    const auto kind = static_cast<Coll>(s.args[kCKind]);
    const uint64_t comm_id = static_cast<uint64_t>(s.args[kCComm]);
    const uint64_t req_id = static_cast<uint64_t>(s.args[kCRequest]);
    MPI_Comm c = comm(comm_id);
    if (c == MPI_COMM_NULL) {
        s.results[0] = MPI_ERR_COMM;
        return Outcome::Done;
    }
    int size = 0, me = 0;
    MPI_Comm_size(c, &size);
    MPI_Comm_rank(c, &me);
    const int root = static_cast<int>(s.args[kCRoot]);
    const bool in_place = s.args[kCInPlace] != 0;
    auto ptr = [&](int a) -> void* { return base_ + s.args[a]; };
    const int sbytes = static_cast<int>(s.args[kCSendBytes]);
    const int rbytes = static_cast<int>(s.args[kCRecvBytes]);
    MPI_Datatype t = s.args[kCType] ? type(static_cast<uint64_t>(s.args[kCType])) : MPI_DATATYPE_NULL;
    MPI_Op o = s.args[kCOp] ? op(static_cast<uint64_t>(s.args[kCOp])) : MPI_OP_NULL;
    const int count = static_cast<int>(s.args[kCCount]);

    Request r;
    r.kind = Request::Kind::Collective;
    r.comm = comm_id;
    if (s.args[kCSendCounts]) r.a = read_ints(*this, s.args[kCSendCounts], size);
    if (s.args[kCSendDispls]) r.b = read_ints(*this, s.args[kCSendDispls], size);
    if (s.args[kCRecvCounts]) r.c = read_ints(*this, s.args[kCRecvCounts], size);
    if (s.args[kCRecvDispls]) r.d = read_ints(*this, s.args[kCRecvDispls], size);
    r.uses_user_op = s.args[kCOp] >= static_cast<int64_t>(kFirstUserId);

    if (!enter_collective(comm_id)) return Outcome::Abandon;
    MPI_Request* rq = req_id ? &r.real : nullptr;
    int rc = MPI_SUCCESS;
    const bool is_root = me == root;
    switch (kind) {
        case Coll::Barrier: rc = rq ? MPI_Ibarrier(c, rq) : MPI_Barrier(c); break;
        case Coll::Bcast: rc = rq ? MPI_Ibcast(ptr(kCSendOff), sbytes, MPI_BYTE, root, c, rq) : MPI_Bcast(ptr(kCSendOff), sbytes, MPI_BYTE, root, c); break;
        case Coll::Reduce: {
            void* sb = in_place && is_root ? MPI_IN_PLACE : ptr(kCSendOff);
            void* rb = is_root ? ptr(kCRecvOff) : nullptr;
            rc = rq ? MPI_Ireduce(sb, rb, count, t, o, root, c, rq) : MPI_Reduce(sb, rb, count, t, o, root, c);
            break;
        }
        case Coll::Allreduce: {
            void* sb = in_place ? MPI_IN_PLACE : ptr(kCSendOff);
            rc = rq ? MPI_Iallreduce(sb, ptr(kCRecvOff), count, t, o, c, rq) : MPI_Allreduce(sb, ptr(kCRecvOff), count, t, o, c);
            break;
        }
        case Coll::Scan:
        case Coll::Exscan: {
            void* sb = in_place ? MPI_IN_PLACE : ptr(kCSendOff);
            if (kind == Coll::Scan)
                rc = rq ? MPI_Iscan(sb, ptr(kCRecvOff), count, t, o, c, rq) : MPI_Scan(sb, ptr(kCRecvOff), count, t, o, c);
            else
                rc = rq ? MPI_Iexscan(sb, ptr(kCRecvOff), count, t, o, c, rq) : MPI_Exscan(sb, ptr(kCRecvOff), count, t, o, c);
            break;
        }
        case Coll::ReduceScatter:
        case Coll::ReduceScatterBlock: {
            void* sb = in_place ? MPI_IN_PLACE : ptr(kCSendOff);
            if (kind == Coll::ReduceScatterBlock)
                rc = rq ? MPI_Ireduce_scatter_block(sb, ptr(kCRecvOff), count, t, o, c, rq) : MPI_Reduce_scatter_block(sb, ptr(kCRecvOff), count, t, o, c);
            else
                rc = rq ? MPI_Ireduce_scatter(sb, ptr(kCRecvOff), r.c.data(), t, o, c, rq) : MPI_Reduce_scatter(sb, ptr(kCRecvOff), r.c.data(), t, o, c);
            break;
        }
        case Coll::Gather:
        case Coll::Allgather: {
            // Every block has the same size: the packed counts agree.
            const int each = r.c.empty() ? 0 : r.c[0];
            if (kind == Coll::Gather)
                rc = rq ? MPI_Igather(ptr(kCSendOff), sbytes, MPI_BYTE, is_root ? ptr(kCRecvOff) : nullptr, each, MPI_BYTE, root, c, rq)
                        : MPI_Gather(ptr(kCSendOff), sbytes, MPI_BYTE, is_root ? ptr(kCRecvOff) : nullptr, each, MPI_BYTE, root, c);
            else
                rc = rq ? MPI_Iallgather(ptr(kCSendOff), sbytes, MPI_BYTE, ptr(kCRecvOff), each, MPI_BYTE, c, rq)
                        : MPI_Allgather(ptr(kCSendOff), sbytes, MPI_BYTE, ptr(kCRecvOff), each, MPI_BYTE, c);
            break;
        }
        case Coll::Gatherv:
        case Coll::Allgatherv: {
            if (kind == Coll::Gatherv)
                rc = rq ? MPI_Igatherv(ptr(kCSendOff), sbytes, MPI_BYTE, is_root ? ptr(kCRecvOff) : nullptr, r.c.data(), r.d.data(), MPI_BYTE, root, c, rq)
                        : MPI_Gatherv(ptr(kCSendOff), sbytes, MPI_BYTE, is_root ? ptr(kCRecvOff) : nullptr, r.c.data(), r.d.data(), MPI_BYTE, root, c);
            else
                rc = rq ? MPI_Iallgatherv(ptr(kCSendOff), sbytes, MPI_BYTE, ptr(kCRecvOff), r.c.data(), r.d.data(), MPI_BYTE, c, rq)
                        : MPI_Allgatherv(ptr(kCSendOff), sbytes, MPI_BYTE, ptr(kCRecvOff), r.c.data(), r.d.data(), MPI_BYTE, c);
            break;
        }
        case Coll::Scatter:
        case Coll::Scatterv: {
            void* rb = in_place && is_root ? MPI_IN_PLACE : ptr(kCRecvOff);
            if (kind == Coll::Scatter) {
                const int each = r.a.empty() ? rbytes : r.a[0];
                rc = rq ? MPI_Iscatter(is_root ? ptr(kCSendOff) : nullptr, each, MPI_BYTE, rb, rbytes, MPI_BYTE, root, c, rq)
                        : MPI_Scatter(is_root ? ptr(kCSendOff) : nullptr, each, MPI_BYTE, rb, rbytes, MPI_BYTE, root, c);
            } else {
                rc = rq ? MPI_Iscatterv(is_root ? ptr(kCSendOff) : nullptr, r.a.data(), r.b.data(), MPI_BYTE, rb, rbytes, MPI_BYTE, root, c, rq)
                        : MPI_Scatterv(is_root ? ptr(kCSendOff) : nullptr, r.a.data(), r.b.data(), MPI_BYTE, rb, rbytes, MPI_BYTE, root, c);
            }
            break;
        }
        case Coll::Alltoall:
        case Coll::Alltoallv:
            rc = rq ? MPI_Ialltoallv(ptr(kCSendOff), r.a.data(), r.b.data(), MPI_BYTE, ptr(kCRecvOff), r.c.data(), r.d.data(), MPI_BYTE, c, rq)
                    : MPI_Alltoallv(ptr(kCSendOff), r.a.data(), r.b.data(), MPI_BYTE, ptr(kCRecvOff), r.c.data(), r.d.data(), MPI_BYTE, c);
            break;
        default: rc = MPI_ERR_ARG; break;
    }
    if (!rq || rc != MPI_SUCCESS) {
        leave_collective();
        s.results[0] = rc;
        return Outcome::Done;
    }
    // Nonblocking: in flight until its request completes.
    add_request(std::move(r), req_id);
    return Outcome::Done;
}

// ---- objects ----------------------------------------------------------------------------------

Outcome Proxy::free_object(LogEntry e) {
    exec_free(e);
    log(std::move(e));
    return Outcome::Done;
}

void Proxy::log(LogEntry e) {
    std::lock_guard lock(mu_);
    e.seq = next_log_seq_++;
    log_.push_back(std::move(e));
}

namespace {
// The arrays each constructor reads from the channel: (count arg, offset arg) pairs.
std::vector<std::pair<int, int>> comm_arrays(CommCtor ctor) {
    switch (ctor) {
        case CommCtor::CartCreate: return {{3, 4}, {3, 5}};
        case CommCtor::GraphCreate: return {{3, 4}, {5, 6}};
        case CommCtor::DistGraphAdjacent: return {{3, 4}, {3, 5}, {6, 7}, {6, 8}};
        default: return {};
    }
}
}  // namespace

Outcome Proxy::call_comm_create(Slot& s) {
    const auto ctor = static_cast<CommCtor>(s.args[0]);
    LogEntry e = entry_of(s, ObjKind::Comm, Call::CommCreate, static_cast<uint64_t>(s.args[2]), 12);
    if (ctor == CommCtor::CartSub) {
        int ndims = 0;
        MPI_Cartdim_get(comm(static_cast<uint64_t>(s.args[1])), &ndims);
        e.arrays.push_back(read_words(*this, s.args[3], ndims));
    }
    for (auto [n, off] : comm_arrays(ctor)) e.arrays.push_back(read_words(*this, s.args[off], s.args[n]));
    if (ctor == CommCtor::CartSub) e.arrays.resize(1);
    if (!enter_collective(static_cast<uint64_t>(s.args[1]))) return Outcome::Abandon;
    s.results[0] = exec_comm_create(e, s.results);
    leave_collective();
    if (ctor == CommCtor::SplitType && s.results[0] == MPI_SUCCESS) {
        // Replayed as the split it made: on other nodes, the same members
        // in the same order (the program already knows its rank and size).
        e.args[0] = static_cast<int64_t>(CommCtor::Split);
        e.args[3] = s.results[3] ? MPI_UNDEFINED : world_rank(e.id, 0);
        e.args[4] = s.results[3] ? 0 : s.results[1];
    }
    log(std::move(e));  // collective: logged even when it failed or gave MPI_COMM_NULL, so every member replays it
    return Outcome::Done;
}

int Proxy::exec_comm_create(const LogEntry& e, int64_t* res) {
    const auto ctor = static_cast<CommCtor>(e.args[0]);
    const uint64_t parent_id = static_cast<uint64_t>(e.args[1]);
    MPI_Comm parent = comm(parent_id);
    if (parent == MPI_COMM_NULL) return MPI_ERR_COMM;
    MPI_Comm out = MPI_COMM_NULL;
    auto arr = [&](size_t i) {
        std::vector<int> v;
        for (int64_t x : e.arrays.at(i)) v.push_back(static_cast<int>(x));
        return v;
    };
    int rc = MPI_SUCCESS;
    switch (ctor) {
        case CommCtor::Dup: rc = MPI_Comm_dup(parent, &out); break;
        case CommCtor::Split: rc = MPI_Comm_split(parent, static_cast<int>(e.args[3]), static_cast<int>(e.args[4]), &out); break;
        case CommCtor::SplitType: rc = MPI_Comm_split_type(parent, static_cast<int>(e.args[3]), static_cast<int>(e.args[4]), MPI_INFO_NULL, &out); break;
        case CommCtor::Create: rc = MPI_Comm_create(parent, group(static_cast<uint64_t>(e.args[3])), &out); break;
        case CommCtor::CreateGroup: rc = MPI_Comm_create_group(parent, group(static_cast<uint64_t>(e.args[3])), static_cast<int>(e.args[4]), &out); break;
        case CommCtor::CartCreate: {
            auto dims = arr(0), periods = arr(1);
            rc = MPI_Cart_create(parent, static_cast<int>(e.args[3]), dims.data(), periods.data(), static_cast<int>(e.args[6]), &out);
            break;
        }
        case CommCtor::CartSub: {
            auto remain = arr(0);
            rc = MPI_Cart_sub(parent, remain.data(), &out);
            break;
        }
        case CommCtor::GraphCreate: {
            auto index = arr(0), edges = arr(1);
            rc = MPI_Graph_create(parent, static_cast<int>(e.args[3]), index.data(), edges.data(), static_cast<int>(e.args[7]), &out);
            break;
        }
        case CommCtor::DistGraphAdjacent: {
            auto src = arr(0), sw = arr(1), dst = arr(2), dw = arr(3);
            const bool unweighted = e.args[9] != 0;
            rc = MPI_Dist_graph_create_adjacent(parent, static_cast<int>(e.args[3]), src.data(), unweighted ? MPI_UNWEIGHTED : sw.data(),
                                                static_cast<int>(e.args[6]), dst.data(), unweighted ? MPI_UNWEIGHTED : dw.data(), MPI_INFO_NULL,
                                                static_cast<int>(e.args[10]), &out);
            break;
        }
        default: rc = MPI_ERR_ARG; break;
    }
    if (rc != MPI_SUCCESS) return rc;
    res[3] = out == MPI_COMM_NULL;
    if (out == MPI_COMM_NULL) return MPI_SUCCESS;
    MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN);
    CommEntry entry;
    entry.real = out;
    int rank = 0, size = 0, topo = MPI_UNDEFINED;
    MPI_Comm_rank(out, &rank);
    MPI_Comm_size(out, &size);
    MPI_Topo_test(out, &topo);
    res[1] = rank;
    res[2] = size;
    res[4] = topo;
    MPI_Group g, wg;
    MPI_Comm_group(out, &g);
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    std::vector<int> ranks(static_cast<size_t>(size));
    for (int i = 0; i < size; ++i) ranks[static_cast<size_t>(i)] = i;
    entry.world.resize(static_cast<size_t>(size));
    MPI_Group_translate_ranks(g, size, ranks.data(), wg, entry.world.data());
    MPI_Group_free(&g);
    MPI_Group_free(&wg);
    std::lock_guard lock(mu_);
    const CommEntry& p = comms_.at(parent_id);
    // Same on every member: the parent, how many collectives it had seen,
    // and who leads the new communicator.
    entry.gid = (p.gid * 1000003u) ^ (p.collectives * 7919u) ^ (static_cast<uint64_t>(entry.world[0]) << 40) ^ 0x9e3779b97f4a7c15ull;
    comms_[e.id] = std::move(entry);
    return MPI_SUCCESS;
}

void Proxy::exec_free(const LogEntry& e) {
    std::lock_guard lock(mu_);
    switch (static_cast<ObjKind>(e.kind)) {
        case ObjKind::Comm: {
            auto it = comms_.find(e.id);
            if (it != comms_.end()) {
                MPI_Comm_free(&it->second.real);
                comms_.erase(it);
            }
            break;
        }
        case ObjKind::Group: {
            auto it = groups_.find(e.id);
            if (it != groups_.end()) {
                if (it->second != MPI_GROUP_EMPTY) MPI_Group_free(&it->second);
                groups_.erase(it);
            }
            break;
        }
        case ObjKind::Datatype: {
            auto it = types_.find(e.id);
            if (it != types_.end()) {
                MPI_Type_free(&it->second);
                types_.erase(it);
            }
            break;
        }
        case ObjKind::Op: {
            auto it = ops_.find(e.id);
            if (it != ops_.end()) {
                MPI_Op_free(&it->second);
                ops_.erase(it);
            }
            break;
        }
        default: break;
    }
}

Outcome Proxy::call_comm_free(Slot& s) {
    return free_object(entry_of(s, ObjKind::Comm, Call::CommFree, static_cast<uint64_t>(s.args[0])));
}

Outcome Proxy::call_comm_query(Slot& s) {
    const auto q = static_cast<CommQ>(s.args[0]);
    MPI_Comm c = comm(static_cast<uint64_t>(s.args[1]));
    auto* out = reinterpret_cast<int64_t*>(at(static_cast<uint64_t>(s.args[2])));
    const int64_t* a = s.args + 3;
    std::vector<int> v1, v2, v3, v4;
    int rc = MPI_SUCCESS;
    switch (q) {
        case CommQ::Compare: {
            int result = 0;
            rc = MPI_Comm_compare(c, comm(static_cast<uint64_t>(a[0])), &result);
            out[0] = result;
            break;
        }
        case CommQ::Cartdim: {
            int n = 0;
            rc = MPI_Cartdim_get(c, &n);
            out[0] = n;
            break;
        }
        case CommQ::CartGet: {
            const int n = static_cast<int>(a[0]);
            v1.resize(static_cast<size_t>(n));
            v2.resize(static_cast<size_t>(n));
            v3.resize(static_cast<size_t>(n));
            rc = MPI_Cart_get(c, n, v1.data(), v2.data(), v3.data());
            for (int i = 0; i < n; ++i) {
                out[i] = v1[static_cast<size_t>(i)];
                out[n + i] = v2[static_cast<size_t>(i)];
                out[2 * n + i] = v3[static_cast<size_t>(i)];
            }
            break;
        }
        case CommQ::CartCoords: {
            const int n = static_cast<int>(a[1]);
            v1.resize(static_cast<size_t>(n));
            rc = MPI_Cart_coords(c, static_cast<int>(a[0]), n, v1.data());
            for (int i = 0; i < n; ++i) out[i] = v1[static_cast<size_t>(i)];
            break;
        }
        case CommQ::CartRank: {
            int n = 0;
            MPI_Cartdim_get(c, &n);
            for (int i = 0; i < n; ++i) v1.push_back(static_cast<int>(a[i]));
            int rank = 0;
            rc = MPI_Cart_rank(c, v1.data(), &rank);
            out[0] = rank;
            break;
        }
        case CommQ::CartShift: {
            int src = 0, dst = 0;
            rc = MPI_Cart_shift(c, static_cast<int>(a[0]), static_cast<int>(a[1]), &src, &dst);
            out[0] = src;
            out[1] = dst;
            break;
        }
        case CommQ::GraphdimsGet: {
            int nn = 0, ne = 0;
            rc = MPI_Graphdims_get(c, &nn, &ne);
            out[0] = nn;
            out[1] = ne;
            break;
        }
        case CommQ::GraphGet: {
            v1.resize(static_cast<size_t>(a[0]));
            v2.resize(static_cast<size_t>(a[1]));
            rc = MPI_Graph_get(c, static_cast<int>(a[0]), static_cast<int>(a[1]), v1.data(), v2.data());
            for (size_t i = 0; i < v1.size(); ++i) out[i] = v1[i];
            for (size_t i = 0; i < v2.size(); ++i) out[v1.size() + i] = v2[i];
            break;
        }
        case CommQ::GraphNeighborsCount: {
            int n = 0;
            rc = MPI_Graph_neighbors_count(c, static_cast<int>(a[0]), &n);
            out[0] = n;
            break;
        }
        case CommQ::GraphNeighbors: {
            v1.resize(static_cast<size_t>(a[1]));
            rc = MPI_Graph_neighbors(c, static_cast<int>(a[0]), static_cast<int>(a[1]), v1.data());
            for (size_t i = 0; i < v1.size(); ++i) out[i] = v1[i];
            break;
        }
        case CommQ::DistGraphNeighborsCount: {
            int in = 0, outd = 0, w = 0;
            rc = MPI_Dist_graph_neighbors_count(c, &in, &outd, &w);
            out[0] = in;
            out[1] = outd;
            out[2] = w;
            break;
        }
        case CommQ::DistGraphNeighbors: {
            const int mi = static_cast<int>(a[0]), mo = static_cast<int>(a[1]);
            v1.resize(static_cast<size_t>(mi));
            v2.resize(static_cast<size_t>(mi));
            v3.resize(static_cast<size_t>(mo));
            v4.resize(static_cast<size_t>(mo));
            rc = MPI_Dist_graph_neighbors(c, mi, v1.data(), v2.data(), mo, v3.data(), v4.data());
            for (int i = 0; i < mi; ++i) {
                out[i] = v1[static_cast<size_t>(i)];
                out[mi + i] = v2[static_cast<size_t>(i)];
            }
            for (int i = 0; i < mo; ++i) {
                out[2 * mi + i] = v3[static_cast<size_t>(i)];
                out[2 * mi + mo + i] = v4[static_cast<size_t>(i)];
            }
            break;
        }
        case CommQ::DimsCreate: {
            const int nnodes = static_cast<int>(a[0]), ndims = static_cast<int>(a[1]);
            for (int i = 0; i < ndims; ++i) v1.push_back(static_cast<int>(a[2 + i]));
            rc = MPI_Dims_create(nnodes, ndims, v1.data());
            for (int i = 0; i < ndims; ++i) out[i] = v1[static_cast<size_t>(i)];
            break;
        }
        default: rc = MPI_ERR_ARG; break;
    }
    s.results[0] = rc;
    return Outcome::Done;
}

// ---- groups ---------------------------------------------------------------------------------

int Proxy::exec_group_create(const LogEntry& e, int64_t* res) {
    const auto ctor = static_cast<GroupCtor>(e.args[0]);
    MPI_Group out = MPI_GROUP_NULL;
    int rc = MPI_SUCCESS;
    std::vector<int> ranks;
    if (!e.arrays.empty())
        for (int64_t x : e.arrays[0]) ranks.push_back(static_cast<int>(x));
    switch (ctor) {
        case GroupCtor::OfComm: rc = MPI_Comm_group(comm(static_cast<uint64_t>(e.args[2])), &out); break;
        case GroupCtor::Incl: rc = MPI_Group_incl(group(static_cast<uint64_t>(e.args[2])), static_cast<int>(ranks.size()), ranks.data(), &out); break;
        case GroupCtor::Excl: rc = MPI_Group_excl(group(static_cast<uint64_t>(e.args[2])), static_cast<int>(ranks.size()), ranks.data(), &out); break;
        case GroupCtor::RangeIncl:
            rc = MPI_Group_range_incl(group(static_cast<uint64_t>(e.args[2])), static_cast<int>(ranks.size() / 3),
                                      reinterpret_cast<int(*)[3]>(ranks.data()), &out);
            break;
        case GroupCtor::RangeExcl:
            rc = MPI_Group_range_excl(group(static_cast<uint64_t>(e.args[2])), static_cast<int>(ranks.size() / 3),
                                      reinterpret_cast<int(*)[3]>(ranks.data()), &out);
            break;
        case GroupCtor::Union: rc = MPI_Group_union(group(static_cast<uint64_t>(e.args[2])), group(static_cast<uint64_t>(e.args[3])), &out); break;
        case GroupCtor::Intersection:
            rc = MPI_Group_intersection(group(static_cast<uint64_t>(e.args[2])), group(static_cast<uint64_t>(e.args[3])), &out);
            break;
        case GroupCtor::Difference:
            rc = MPI_Group_difference(group(static_cast<uint64_t>(e.args[2])), group(static_cast<uint64_t>(e.args[3])), &out);
            break;
        default: rc = MPI_ERR_ARG; break;
    }
    if (rc != MPI_SUCCESS) return rc;
    int size = 0, rank = MPI_UNDEFINED;
    MPI_Group_size(out, &size);
    MPI_Group_rank(out, &rank);
    res[1] = size;
    res[2] = rank;
    res[3] = 0;
    std::lock_guard lock(mu_);
    groups_[e.id] = out;
    return MPI_SUCCESS;
}

Outcome Proxy::call_group_create(Slot& s) {
    LogEntry e = entry_of(s, ObjKind::Group, Call::GroupCreate, static_cast<uint64_t>(s.args[1]), 6);
    const auto ctor = static_cast<GroupCtor>(s.args[0]);
    if (ctor == GroupCtor::Incl || ctor == GroupCtor::Excl || ctor == GroupCtor::RangeIncl || ctor == GroupCtor::RangeExcl)
        e.arrays.push_back(read_words(*this, s.args[5], s.args[4]));
    s.results[0] = exec_group_create(e, s.results);
    if (s.results[0] == MPI_SUCCESS) log(std::move(e));
    return Outcome::Done;
}

Outcome Proxy::call_group_free(Slot& s) {
    return free_object(entry_of(s, ObjKind::Group, Call::GroupFree, static_cast<uint64_t>(s.args[0])));
}

Outcome Proxy::call_group_query(Slot& s) {
    const auto q = static_cast<GroupQ>(s.args[0]);
    MPI_Group a = group(static_cast<uint64_t>(s.args[1])), b = group(static_cast<uint64_t>(s.args[2]));
    if (q == GroupQ::Compare) {
        int result = 0;
        s.results[0] = MPI_Group_compare(a, b, &result);
        s.results[1] = result;
        return Outcome::Done;
    }
    const int n = static_cast<int>(s.args[3]);
    std::vector<int> in = read_ints(*this, s.args[4], n), out(static_cast<size_t>(n));
    s.results[0] = MPI_Group_translate_ranks(a, n, in.data(), b, out.data());
    auto* dst = reinterpret_cast<int64_t*>(at(static_cast<uint64_t>(s.args[5])));
    for (int i = 0; i < n; ++i) dst[i] = out[static_cast<size_t>(i)];
    return Outcome::Done;
}

// ---- datatypes --------------------------------------------------------------------------------

namespace {
// The arrays each constructor reads: (count arg, offset arg).
std::vector<std::pair<int, int>> type_arrays(TypeCtor ctor) {
    switch (ctor) {
        case TypeCtor::Indexed:
        case TypeCtor::Hindexed: return {{3, 4}, {3, 5}};
        case TypeCtor::IndexedBlock:
        case TypeCtor::HindexedBlock: return {{3, 5}};
        case TypeCtor::Struct: return {{3, 4}, {3, 5}, {3, 6}};
        case TypeCtor::Subarray: return {{3, 4}, {3, 5}, {3, 6}};
        default: return {};
    }
}
}  // namespace

int Proxy::exec_type_create(const LogEntry& e) {
    const auto ctor = static_cast<TypeCtor>(e.args[0]);
    const int64_t* a = e.args.data() + 2;  // after ctor and id
    MPI_Datatype old = ctor == TypeCtor::Struct ? MPI_DATATYPE_NULL : type(static_cast<uint64_t>(a[0]));
    auto ints = [&](size_t i) {
        std::vector<int> v;
        for (int64_t x : e.arrays.at(i)) v.push_back(static_cast<int>(x));
        return v;
    };
    auto aints = [&](size_t i) {
        std::vector<MPI_Aint> v;
        for (int64_t x : e.arrays.at(i)) v.push_back(static_cast<MPI_Aint>(x));
        return v;
    };
    MPI_Datatype out = MPI_DATATYPE_NULL;
    int rc = MPI_SUCCESS;
    switch (ctor) {
        case TypeCtor::Contiguous: rc = MPI_Type_contiguous(static_cast<int>(a[1]), old, &out); break;
        case TypeCtor::Vector: rc = MPI_Type_vector(static_cast<int>(a[1]), static_cast<int>(a[2]), static_cast<int>(a[3]), old, &out); break;
        case TypeCtor::Hvector: rc = MPI_Type_create_hvector(static_cast<int>(a[1]), static_cast<int>(a[2]), a[3], old, &out); break;
        case TypeCtor::Indexed: {
            auto b = ints(0), d = ints(1);
            rc = MPI_Type_indexed(static_cast<int>(a[1]), b.data(), d.data(), old, &out);
            break;
        }
        case TypeCtor::Hindexed: {
            auto b = ints(0);
            auto d = aints(1);
            rc = MPI_Type_create_hindexed(static_cast<int>(a[1]), b.data(), d.data(), old, &out);
            break;
        }
        case TypeCtor::IndexedBlock: {
            auto d = ints(0);
            rc = MPI_Type_create_indexed_block(static_cast<int>(a[1]), static_cast<int>(a[2]), d.data(), old, &out);
            break;
        }
        case TypeCtor::HindexedBlock: {
            auto d = aints(0);
            rc = MPI_Type_create_hindexed_block(static_cast<int>(a[1]), static_cast<int>(a[2]), d.data(), old, &out);
            break;
        }
        case TypeCtor::Struct: {
            auto b = ints(0);
            auto d = aints(1);
            std::vector<MPI_Datatype> ts;
            for (int64_t id : e.arrays.at(2)) ts.push_back(type(static_cast<uint64_t>(id)));
            rc = MPI_Type_create_struct(static_cast<int>(a[1]), b.data(), d.data(), ts.data(), &out);
            break;
        }
        case TypeCtor::Subarray: {
            auto sz = ints(0), sub = ints(1), st = ints(2);
            rc = MPI_Type_create_subarray(static_cast<int>(a[1]), sz.data(), sub.data(), st.data(), static_cast<int>(a[5]), old, &out);
            break;
        }
        case TypeCtor::Resized: rc = MPI_Type_create_resized(old, a[1], a[2], &out); break;
        case TypeCtor::Dup: rc = MPI_Type_dup(old, &out); break;
        default: rc = MPI_ERR_ARG; break;
    }
    if (rc != MPI_SUCCESS) return rc;
    MPI_Type_commit(&out);
    std::lock_guard lock(mu_);
    types_[e.id] = out;
    return MPI_SUCCESS;
}

Outcome Proxy::call_type_create(Slot& s) {
    const auto ctor = static_cast<TypeCtor>(s.args[0]);
    LogEntry e = entry_of(s, ObjKind::Datatype, Call::TypeCreate, static_cast<uint64_t>(s.args[1]), 10);
    for (auto [n, off] : type_arrays(ctor)) e.arrays.push_back(read_words(*this, s.args[off], s.args[n]));
    s.results[0] = exec_type_create(e);
    if (s.results[0] == MPI_SUCCESS) log(std::move(e));
    return Outcome::Done;
}

Outcome Proxy::call_type_free(Slot& s) {
    return free_object(entry_of(s, ObjKind::Datatype, Call::TypeFree, static_cast<uint64_t>(s.args[0])));
}

}  // namespace ckpt::mpi::proxy
