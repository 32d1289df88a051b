// The per-rank MPI proxy: it runs the real Open MPI for the application,
// outside the checkpointed tree, and keeps the rank's logical MPI state:
// how every object was made (replayed on restart), the requests in flight,
// the messages drained at a checkpoint, and per-communicator collective
// counts for the quiescing barrier.
#pragma once

#include <mpi.h>

#include "mpi_plugin/common/calls.hpp"
#include "mpi_plugin/common/channel.hpp"
#include "mpi_plugin/common/state.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ckpt::mpi::proxy {

struct CommEntry {
    MPI_Comm real = MPI_COMM_NULL;
    uint64_t gid = 0;  // the same on every member: names it in collective counts
    uint64_t collectives = 0;  // entered by this rank
    std::vector<int> world;    // world rank of each rank of the communicator
};

// A nonblocking operation (or the one inside a blocking call).
struct Request {
    enum class Kind { Send, Recv, Collective } kind = Kind::Send;
    MPI_Request real = MPI_REQUEST_NULL;
    uint64_t comm = 0;
    int peer = 0;  // dest or source (may be MPI_ANY_SOURCE)
    int tag = 0;
    int64_t mode = 0;
    uint64_t offset = 0, bytes = 0;
    uint64_t seq = 0;  // posting order (receives are re-posted in it)
    bool done = false;
    bool freed = false;     // MPI_Request_free: forget when complete
    bool reposted = false;  // cancelled at a checkpoint, to post again
    bool uses_user_op = false;
    std::vector<int> a, b, c, d;  // arrays a nonblocking collective needs until it ends
    std::vector<unsigned char> carried;  // a queued blocking send's data
    MPI_Status status{};
};

// The outcome of a call: answered, or abandoned at a checkpoint (the slot is
// posted again and re-executed after the checkpoint or on restart).
enum class Outcome { Done, Abandon };

// The real handles of the predefined datatypes and operations, by shim id.
void register_predefined(std::map<uint64_t, MPI_Datatype>& types, std::map<uint64_t, MPI_Op>& ops);

class Proxy {
public:
    Proxy(int link_fd, int channel_fd, int state_fd, bool restarting);
    int run();

    // ---- used by the call handlers (calls.cpp) ----
    unsigned char* at(uint64_t offset) const { return base_ + offset; }
    MPI_Comm comm(uint64_t id);
    MPI_Datatype type(uint64_t id);
    MPI_Op op(uint64_t id);
    MPI_Group group(uint64_t id);
    CommEntry& comm_entry(uint64_t id);
    int world_rank(uint64_t comm, int rank);

    int post_send(const int64_t* args, std::vector<unsigned char> carried, uint64_t& id);
    int post_recv(const int64_t* args, uint64_t& id);
    void execute_queued(Slot& s);
    Outcome answer_post(Slot& s, int rc, uint64_t id, bool blocking, bool with_status);
    void forget_detached_locked();  // mu_ held
    Outcome call_send(Slot& s);
    Outcome call_recv(Slot& s);
    Outcome call_probe(Slot& s);
    Outcome call_complete(Slot& s);
    Outcome call_cancel(Slot& s);
    Outcome call_request_free(Slot& s);
    Outcome call_collective(Slot& s);
    Outcome call_comm_create(Slot& s);
    Outcome call_comm_free(Slot& s);
    Outcome call_comm_query(Slot& s);
    Outcome call_group_create(Slot& s);
    Outcome call_group_free(Slot& s);
    Outcome call_group_query(Slot& s);
    Outcome call_type_create(Slot& s);
    Outcome call_type_free(Slot& s);
    Outcome call_op_create(Slot& s);
    Outcome call_op_free(Slot& s);
    Outcome call_init(Slot& s);
    Outcome call_finalize(Slot& s);
    Outcome call_abort(Slot& s);

    // The slot whose call this thread runs (user-op callbacks go to it).
    static thread_local Slot* current_slot;
    void run_user_op(uint64_t op_id, void* in, void* inout, int len, MPI_Datatype* type);

private:
    friend struct Quiesce;
    void say(const std::string& line) const;
    void attach_channel(int fd);
    void serve_slot(uint32_t index);
    void watch_slots();
    void dispatch(Slot& s);
    void control_loop();
    void on_control(const std::string& verb, const std::map<std::string, std::string>& args);

    // Requests.
    uint64_t add_request(Request r, uint64_t id);
    // Waits for a request to complete; Abandon when a checkpoint interrupts.
    Outcome wait_request(uint64_t id);
    void pause_waiting();
    bool test_locked(uint64_t id, Request& r);  // mu_ held
    void count_completion_locked(Request& r);
    void retire_locked(uint64_t id);
    int try_drained(uint64_t comm, int source, int tag, uint64_t offset, uint64_t capacity, MPI_Status& st);

    // Objects: executing a creation (live or replayed).
    int exec_comm_create(const LogEntry& e, int64_t* results);
    int exec_group_create(const LogEntry& e, int64_t* results);
    int exec_type_create(const LogEntry& e);
    int exec_op_create(const LogEntry& e);
    void exec_free(const LogEntry& e);
    void log(LogEntry e);
    Outcome free_object(LogEntry e);

    // Collective counting and the quiescing barrier (quiesce.cpp).
    bool enter_collective(uint64_t comm);  // false: abandon (checkpoint)
    void leave_collective();
    void prepare(uint64_t sequence);
    void set_targets(uint64_t sequence, uint64_t version, const std::string& targets);
    void report_if_safe_locked();
    void progress_locked();  // tests nonblocking collectives (nobody else may while the program computes)
    void drain(uint64_t sequence);
    void resume();
    void restore_state(const ProxyState& st);
    ProxyState capture_state();
    void send_line(const std::string& line);
    bool wait_for_init();
    bool behind_target_locked(const CommEntry& c) const;
    bool behind_any_target_locked() const;

    int link_fd_, state_fd_;
    bool restarting_;
    unsigned char* base_ = nullptr;
    ChannelHeader* header_ = nullptr;
    int world_rank_ = 0, world_size_ = 1;
    MPI_Comm ctl_ = MPI_COMM_NULL;  // private duplicate of MPI_COMM_WORLD

    std::mutex mu_;  // tables, requests, counters, and every MPI_Test on a table request
    std::condition_variable cv_;
    std::map<uint64_t, CommEntry> comms_;
    std::map<uint64_t, MPI_Datatype> types_;
    std::map<uint64_t, MPI_Op> ops_;
    std::map<uint64_t, MPI_Group> groups_;
    std::map<uint64_t, Request> requests_;
    uint64_t next_internal_id_ = 1ull << 62;
    uint64_t next_seq_ = 1;
    std::vector<LogEntry> log_;
    uint64_t next_log_seq_ = 1;
    std::deque<DrainedMessage> drained_;
    std::deque<uint64_t> detached_;  // requests nobody waits for, forgotten once complete
    std::vector<uint64_t> sent_to_, received_from_;  // messages per world rank

    // Checkpoint state.
    enum class Phase { Running, Preparing, Draining, Parked } phase_ = Phase::Running;
    std::vector<uint8_t> last_state_;
    uint64_t sequence_ = 0, target_version_ = 0;
    std::map<uint64_t, uint64_t> targets_;  // gid -> collectives
    bool have_targets_ = false;
    bool reported_safe_ = false;
    int collectives_in_flight_ = 0;  // blocking ones running, nonblocking ones not complete
    int threads_in_service_ = 0;  // slot threads executing a call
    int threads_waiting_ = 0;     // of those, the ones waiting for the network (posted all they will post)
    bool accepting_ = true;       // new calls are taken (false from a checkpoint's drain until resume)
    bool interrupt_ = false;      // waits give up: their calls are executed again later
    bool finalized_ = false;
    bool finalize_on_exit_ = true;

    std::mutex link_mu_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stopping_{false};
};

}  // namespace ckpt::mpi::proxy
