// Internals of the MPI shim (libmpi.so.40): the handle objects the
// application holds, the process-wide state, and calls to the proxy.
//
// The application is compiled against Open MPI's mpi.h: its handles are
// pointers to the structs mpi.h leaves incomplete, so the shim completes
// them. Every handle object starts with the object's id, which is all the
// proxy ever sees. Handle objects live in the application's memory and
// come back with it on restart, at the same addresses.
#pragma once

#include <mpi.h>

#include "mpi_plugin/common/calls.hpp"
#include "mpi_plugin/common/channel.hpp"
#include "mpi_plugin/shim/typemap.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::mpi::shim {

struct Keyval;

// Attributes cached on a communicator, datatype or window.
using AttrMap = std::map<int, void*>;

struct CommData {
    int rank = MPI_UNDEFINED;
    int size = 0;
    MPI_Errhandler errhandler = MPI_ERRORS_ARE_FATAL;
    AttrMap attrs;
    std::string name;
    int topo = MPI_UNDEFINED;  // MPI_CART, MPI_GRAPH, MPI_DIST_GRAPH
    bool inter = false;
};

struct TypeData {
    explicit TypeData(TypeMap m) : map(std::move(m)) {}
    TypeMap map;
    bool committed = false;
    bool predefined = false;
    std::string name;
    AttrMap attrs;
    // How it was made, for MPI_Type_get_envelope/contents.
    int combiner = MPI_COMBINER_NAMED;
    std::vector<int> ints;
    std::vector<MPI_Aint> aints;
    std::vector<MPI_Datatype> types;
};

enum class ReqKind { Send, Recv, Collective, PersistentSend, PersistentRecv, Generalized };

struct RequestData {
    ReqKind kind = ReqKind::Send;
    bool active = true;     // an inactive persistent request has nothing in flight
    uint64_t proxy_id = 0;  // the operation in flight at the proxy (0: none)
    // Where the data goes on completion (receives, collectives with output).
    void* user_buf = nullptr;
    int count = 0;
    MPI_Datatype type = MPI_DATATYPE_NULL;
    bool layout = false;      // staged in the type's layout, not packed
    uint64_t offset = 0;      // channel buffer of the operation
    uint64_t bytes = 0;
    // Extra output buffers of collectives (Gatherv, Alltoallv...): each is
    // unpacked from the channel into user memory on completion.
    struct Piece {
        void* user_buf;
        int count;
        MPI_Datatype type;
        uint64_t offset;
    };
    std::vector<Piece> pieces;
    std::vector<uint64_t> extra_allocations;  // freed on completion
    // Persistent requests: the operation to start again.
    const void* p_buf = nullptr;
    int p_dest = 0, p_tag = 0;
    MPI_Comm p_comm = MPI_COMM_NULL;
    int64_t p_mode = 0;
    bool cancelled = false;
    bool complete_locally = false;  // finished without the proxy (MPI_PROC_NULL, drained...)
    MPI_Status status{};
};

struct GroupData {
    int size = 0;
    int rank = MPI_UNDEFINED;
};

struct OpData {
    MPI_User_function* fn = nullptr;
    bool commute = true;
};

struct ErrhandlerData {
    MPI_Comm_errhandler_function* comm_fn = nullptr;
    int kind = 0;  // 0 fatal, 1 return, 2 user
};

struct InfoData {
    std::map<std::string, std::string> entries;
};

}  // namespace ckpt::mpi::shim

// The structs mpi.h declares, completed. Every one starts with the id.
struct ompi_communicator_t {
    uint64_t id;
    ckpt::mpi::shim::CommData* d;
};
struct ompi_datatype_t {
    uint64_t id;
    ckpt::mpi::shim::TypeData* d;
};
struct ompi_request_t {
    uint64_t id;
    ckpt::mpi::shim::RequestData* d;
};
struct ompi_group_t {
    uint64_t id;
    ckpt::mpi::shim::GroupData* d;
};
struct ompi_op_t {
    uint64_t id;
    ckpt::mpi::shim::OpData* d;
};
struct ompi_errhandler_t {
    uint64_t id;
    ckpt::mpi::shim::ErrhandlerData* d;
};
struct ompi_info_t {
    uint64_t id;
    ckpt::mpi::shim::InfoData* d;
};
struct ompi_message_t {
    uint64_t id;
    void* d;
};
struct ompi_win_t {
    uint64_t id;
    void* d;
};
struct ompi_file_t {
    uint64_t id;
    void* d;
};

namespace ckpt::mpi::shim {

// ---- process-wide state ----------------------------------------------------------
// A library with a C ABI has no caller to hand its state to: this is the one
// global object of the shim.
struct Shim {
    ChannelHeader* header = nullptr;
    std::atomic<unsigned char*> base{nullptr};
    int fd = -1;
    bool initialized = false;
    bool finalized = false;
    int provided = MPI_THREAD_SINGLE;
    int world_rank = 0, world_size = 1;
    int tag_ub = 0, universe = 0, appnum = 0, wtime_global = 0;
    std::atomic<uint64_t> next_id{kFirstUserId};
    std::mutex alloc_mu;
    std::map<uint64_t, uint64_t> free_blocks;  // offset -> bytes, data area
    std::map<uint64_t, uint64_t> used_blocks;  // offset -> bytes
    uint64_t free_bytes = 0;
    std::mutex keyval_mu;
    std::map<int, std::unique_ptr<Keyval>> keyvals;
    int next_keyval = 100;
    std::mutex slot_mu;
    std::vector<uint64_t> free_slots;
    std::string processor_name;
    // Handles by id, for the proxy's callbacks (it names objects by id).
    std::mutex registry_mu;
    std::map<uint64_t, MPI_Op> ops_by_id;
    std::map<uint64_t, MPI_Datatype> types_by_id;
};
void register_type(MPI_Datatype t);
void forget_type(uint64_t id);
Shim& S();

uint64_t new_id();
// Aborts the process with a message naming the MPI function: for calls
// before MPI_Init, unsupported features, and a lost proxy.
[[noreturn]] void die(const char* function, const std::string& why);
// A function that is not implemented: fails loudly naming itself.
[[noreturn]] void unsupported(const char* function);
// Called at the top of every MPI function that needs the proxy.
void require_init(const char* function);

// ---- the data area -----------------------------------------------------------------
// Maps the channel named by the environment (once); false when there is
// none or it cannot be mapped (errno says why).
bool map_channel();
// A block of the data area, or 0 when fewer than bytes + keep_free are free.
uint64_t try_alloc_data(uint64_t bytes, uint64_t keep_free);
uint64_t alloc_data(uint64_t bytes);  // dies when the area is full
void free_data(uint64_t offset);
uint64_t data_block_bytes(uint64_t offset);  // 0: not a block
// The channel offset of count elements of t at buf when the proxy can use
// them in place (a contiguous type in the shared heap, heap.cpp); 0 when
// they must be staged.
uint64_t in_place_offset(const void* buf, int64_t count, MPI_Datatype t);
inline void* at(uint64_t offset) { return S().base + offset; }

// ---- a call to the proxy from this thread's slot --------------------------------------
// Queues a post (Call::Send or Call::Recv with its arguments; a blocking
// send's data carried in it) that the proxy executes in order without the
// program waiting. False when it must be made as a call instead: several
// threads use MPI, the data is too large, or the queue is full.
bool queue_post(Call call, const int64_t* args, int nargs, const void* carried, uint64_t carried_bytes);

class CallFrame {
public:
    explicit CallFrame(Call call);
    CallFrame(const CallFrame&) = delete;
    CallFrame& operator=(const CallFrame&) = delete;
    ~CallFrame();

    CallFrame& arg(int64_t v);
    int64_t& arg_at(int i) { return slot_->args[i]; }
    // Space in the slot's inline area (or a temporary data-area block) for
    // n bytes; returns its channel offset.
    uint64_t space(uint64_t n);
    // Copies n bytes into channel space; returns its offset.
    uint64_t put(const void* data, uint64_t n);
    // Posts the call and waits for the proxy's answer (running callbacks
    // it asks for). Returns the MPI error code.
    int run();
    int64_t result(int i) const { return slot_->results[i]; }

private:
    Slot* slot_;
    int nargs_ = 0;
    uint64_t inline_used_ = 0;
    std::vector<uint64_t> temporaries_;
};

// ---- handles ---------------------------------------------------------------------
inline uint64_t id_of(const void* handle) { return handle ? *static_cast<const uint64_t*>(handle) : 0; }
TypeData& type_data(MPI_Datatype t);
CommData& comm_data(MPI_Comm c);
bool valid_comm(MPI_Comm c);
bool valid_type(MPI_Datatype t);

// Applies the communicator's error handler to an error code (MPI_SUCCESS
// passes through); returns what the MPI function should return.
int handle_error(MPI_Comm comm, int code, const char* function);

// The first check of an MPI function on a communicator (dies before
// MPI_Init): MPI_SUCCESS or MPI_ERR_COMM.
inline int check_comm(MPI_Comm comm, const char* function) {
    require_init(function);
    return valid_comm(comm) ? MPI_SUCCESS : MPI_ERR_COMM;
}
// The same through the communicator's error handler: what the MPI function
// returns at once when it is not MPI_SUCCESS.
inline int comm_call_error(MPI_Comm comm, const char* function) { return handle_error(comm, check_comm(comm, function), function); }

// Copies n values into the call's channel space as int64 words, the form of
// the arrays the proxy reads (a null array sends zeros); returns the offset.
template <class T>
uint64_t put_words(CallFrame& c, const T* values, int n) {
    std::vector<int64_t> words(static_cast<size_t>(std::max(n, 0)));
    for (size_t i = 0; i < words.size(); ++i) words[i] = values ? static_cast<int64_t>(values[i]) : 0;
    return c.put(words.data(), words.size() * sizeof(int64_t));
}

// ---- buffers -----------------------------------------------------------------------
// Staging of `count` elements of a datatype between user memory and the
// channel. Packed: the type map's bytes back to back (what goes on the
// wire). Layout: the span the elements cover, as in user memory (for
// reductions with derived datatypes, which the proxy applies to the real
// type).
uint64_t packed_bytes(MPI_Datatype t, int64_t count);
void pack_into(void* out, const void* buf, int64_t count, MPI_Datatype t);
// Unpacks the first `bytes` of packed data (a partial message fills the
// first elements only).
void unpack_from(const void* in, uint64_t bytes, void* buf, int64_t count, MPI_Datatype t);
struct Span {
    int64_t start;  // displacement of the first byte from the buffer address
    uint64_t bytes;
};
Span layout_span(MPI_Datatype t, int64_t count);
void copy_layout_out(void* user_buf, const void* channel_span_start, int64_t count, MPI_Datatype t);
// MPI_Get_elements: basic elements in `bytes` of packed data (MPI_UNDEFINED
// when they end inside one).
int64_t elements_in(MPI_Datatype t, uint64_t bytes);
// The type map of predefined type number `index` (predefined_types.def).
TypeMap predefined_type_map(unsigned index, uint64_t size, uint64_t extent, uint64_t second_offset, uint64_t second_size);

// Completes the shim's side of a request the proxy reports complete:
// copies received data out, frees channel memory, fills status.
void finish_request(MPI_Request req, const MPI_Status* proxy_status);
void fill_status(MPI_Status* st, const int64_t* words);

// Keyvals and attribute callbacks.
struct Keyval {
    int kind = 0;  // 0 comm, 1 type, 2 win
    MPI_Comm_copy_attr_function* comm_copy = nullptr;
    MPI_Comm_delete_attr_function* comm_delete = nullptr;
    MPI_Type_copy_attr_function* type_copy = nullptr;
    MPI_Type_delete_attr_function* type_delete = nullptr;
    void* extra = nullptr;
};

// One implementation of keyvals and attributes for every kind of object
// (comm.cpp); each kind's MPI functions check their own handle and name the
// callbacks of their kind.
// MPI_*_create_keyval: registers a keyval (its kind and callbacks) and
// gives its number in *keyval.
int create_keyval(const Keyval& k, int* keyval);
// MPI_*_free_keyval: *keyval becomes MPI_KEYVAL_INVALID.
int free_keyval(int* keyval);
// A copy of a keyval, so that its callbacks run without the keyval lock
// (they may create or free keyvals); nullopt for a keyval freed or unknown.
std::optional<Keyval> find_keyval(int keyval);
// MPI_*_get_attr of an object's own attributes: *flag says whether it is set.
void get_attr(const AttrMap& attrs, int keyval, void* value, int* flag);

// The callbacks of a keyval for a kind of handle.
inline MPI_Comm_copy_attr_function* copy_callback(const Keyval& k, MPI_Comm) { return k.comm_copy; }
inline MPI_Type_copy_attr_function* copy_callback(const Keyval& k, MPI_Datatype) { return k.type_copy; }
inline MPI_Comm_delete_attr_function* delete_callback(const Keyval& k, MPI_Comm) { return k.comm_delete; }
inline MPI_Type_delete_attr_function* delete_callback(const Keyval& k, MPI_Datatype) { return k.type_delete; }

// Runs the delete callback of an attribute that has left object h.
template <class Handle>
void attribute_deleted(Handle h, int key, void* value) {
    const std::optional<Keyval> k = find_keyval(key);
    if (k)
        if (auto* fn = delete_callback(*k, h)) fn(h, key, value, k->extra);
}

// Copies attributes to a duplicate through their copy callbacks.
template <class Handle>
void copy_attributes(Handle from, Handle to) {
    const AttrMap attrs = from->d->attrs;  // a callback may change them
    for (const auto& [key, value] : attrs) {
        const std::optional<Keyval> k = find_keyval(key);
        auto* fn = k ? copy_callback(*k, from) : nullptr;
        if (!fn) continue;
        void* out = nullptr;
        int flag = 0;
        fn(from, key, k->extra, value, &out, &flag);
        if (flag) to->d->attrs[key] = out;
    }
}

// MPI_*_set_attr: a value it replaces is deleted first.
template <class Handle>
void set_attribute(Handle h, int key, void* value) {
    if (auto it = h->d->attrs.find(key); it != h->d->attrs.end()) {
        void* old = it->second;
        h->d->attrs.erase(it);
        attribute_deleted(h, key, old);
    }
    h->d->attrs[key] = value;
}

// MPI_*_delete_attr, and every attribute of an object being freed.
template <class Handle>
void delete_attribute(Handle h, int key) {
    auto it = h->d->attrs.find(key);
    if (it == h->d->attrs.end()) return;
    void* value = it->second;
    h->d->attrs.erase(it);
    attribute_deleted(h, key, value);
}
template <class Handle>
void delete_attributes(Handle h) {
    while (!h->d->attrs.empty()) delete_attribute(h, h->d->attrs.begin()->first);
}

MPI_Comm make_comm(uint64_t id, int rank, int size);
void init_predefined();

}  // namespace ckpt::mpi::shim

// The shim defines PMPI_X for what it implements; MPI_X of every function of
// mpi.h is a weak jump to PMPI_X, and a PMPI_X not implemented is a weak
// stub that fails naming itself (stubs.S, generated from mpi_functions.txt).
