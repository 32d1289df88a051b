// ckpt-mpi-proxy: started by a rank's ckpt-run, outside the checkpointed
// tree. It does the rank's MPI_Init, serves the application's calls from
// the shared channel (one thread per application thread that calls MPI),
// and answers ckpt-run's checkpoint messages on its link.
//
//   ckpt-mpi-proxy LINK_FD CHANNEL_FD STATE_FD [restart]
//
// On restart there is no channel yet: ckpt-run sends ATTACH with the
// restored application's channel once the tree is restored.
#include "mpi_plugin/proxy/proxy.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

namespace ckpt::mpi::proxy {

thread_local Slot* Proxy::current_slot = nullptr;

namespace {

std::string escape(const std::string& v) {
    std::string out;
    for (unsigned char c : v) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

std::string unescape(const std::string& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
            out += static_cast<char>(std::strtol(v.substr(i + 1, 2).c_str(), nullptr, 16));
            i += 2;
        } else {
            out += v[i];
        }
    }
    return out;
}

}  // namespace

Proxy::Proxy(int link_fd, int channel_fd, int state_fd, bool restarting)
    : link_fd_(link_fd), state_fd_(state_fd), restarting_(restarting) {
    if (!restarting) attach_channel(channel_fd);
}

void Proxy::say(const std::string& line) const {
    const std::string text = "ckpt-mpi-proxy (rank " + std::to_string(world_rank_) + "): " + line + "\n";
    (void)!write(STDERR_FILENO, text.data(), text.size());
}

void Proxy::send_line(const std::string& line) {
    std::lock_guard lock(link_mu_);
    const std::string text = line + "\n";
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = write(link_fd_, text.data() + done, text.size() - done);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return;
        }
        done += static_cast<size_t>(n);
    }
}

void Proxy::attach_channel(int fd) {
    void* base = mmap(nullptr, kChannelBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        say(std::string("cannot map the channel: ") + strerror(errno));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    close(fd);
    base_ = static_cast<unsigned char*>(base);
    header_ = static_cast<ChannelHeader*>(base);
}

CommEntry& Proxy::comm_entry(uint64_t id) {
    auto it = comms_.find(id);
    if (it == comms_.end()) throw std::runtime_error("unknown communicator " + std::to_string(id));
    return it->second;
}

MPI_Comm Proxy::comm(uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = comms_.find(id);
    return it == comms_.end() ? MPI_COMM_NULL : it->second.real;
}

MPI_Datatype Proxy::type(uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = types_.find(id);
    return it == types_.end() ? MPI_DATATYPE_NULL : it->second;
}

MPI_Op Proxy::op(uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = ops_.find(id);
    return it == ops_.end() ? MPI_OP_NULL : it->second;
}

MPI_Group Proxy::group(uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = groups_.find(id);
    return it == groups_.end() ? MPI_GROUP_NULL : it->second;
}

int Proxy::world_rank(uint64_t comm, int rank) {
    std::lock_guard lock(mu_);
    auto it = comms_.find(comm);
    if (it == comms_.end() || rank < 0 || rank >= static_cast<int>(it->second.world.size())) return -1;
    return it->second.world[static_cast<size_t>(rank)];
}

// ---- serving the channel ------------------------------------------------------------------

void Proxy::dispatch(Slot& s) {
    Outcome out = Outcome::Done;
    s.results[0] = MPI_SUCCESS;
    current_slot = &s;
    try {
        switch (static_cast<Call>(s.call)) {
#define CKPT_CASE(name, fn) \
    case Call::name: out = fn(s); break;
            CKPT_CASE(Init, call_init)
            CKPT_CASE(Finalize, call_finalize)
            CKPT_CASE(Abort, call_abort)
            CKPT_CASE(Send, call_send)
            CKPT_CASE(Recv, call_recv)
            CKPT_CASE(Probe, call_probe)
            CKPT_CASE(Complete, call_complete)
            CKPT_CASE(Cancel, call_cancel)
            CKPT_CASE(RequestFree, call_request_free)
            CKPT_CASE(Collective, call_collective)
            CKPT_CASE(CommCreate, call_comm_create)
            CKPT_CASE(CommFree, call_comm_free)
            CKPT_CASE(CommQuery, call_comm_query)
            CKPT_CASE(GroupCreate, call_group_create)
            CKPT_CASE(GroupFree, call_group_free)
            CKPT_CASE(GroupQuery, call_group_query)
            CKPT_CASE(TypeCreate, call_type_create)
            CKPT_CASE(TypeFree, call_type_free)
            CKPT_CASE(OpCreate, call_op_create)
            CKPT_CASE(OpFree, call_op_free)
#undef CKPT_CASE
            default: s.results[0] = MPI_ERR_INTERN; break;
        }
    } catch (const std::exception& e) {
        say(std::string(call_name(static_cast<Call>(s.call))) + ": " + e.what());
        s.results[0] = MPI_ERR_ARG;
    }
    current_slot = nullptr;
    {
        std::lock_guard lock(mu_);
        --threads_in_service_;
        cv_.notify_all();
    }
    if (out == Outcome::Abandon) {
        // Executed again after the checkpoint (or by the next proxy).
        s.state.store(kSlotPosted, std::memory_order_seq_cst);
        return;
    }
    slot_publish(s, kSlotDone, Side::Shim);
}

void Proxy::serve_slot(uint32_t index) {
    Slot& s = header_->slots[index];
    auto posted = [&s] { return s.state.load(std::memory_order_acquire) == kSlotPosted; };
    auto queued = [&s] { return s.queue_head.load(std::memory_order_acquire) != s.queue_tail.load(std::memory_order_relaxed); };
    for (;;) {
        // Calls wait while a checkpoint has parked the proxy.
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return accepting_ || stopping_; });
        }
        if (stopping_) return;
        if (!slot_wait(s, Side::Proxy, [&] { return posted() || queued(); }, kProxySpins, [&] { return stopping_.load() || !accepting_; }, kProxyYieldNs,
                       SleepBeside::Other)) {
            if (stopping_) return;
            continue;
        }
        {
            std::unique_lock lock(mu_);
            if (!accepting_) continue;
            ++threads_in_service_;
        }
        // Queued posts come before the slot's call, as the program made
        // them: the call seen first, every post queued before it is seen.
        const bool call = posted();
        current_slot = &s;
        if (queued()) execute_queued(s);
        current_slot = nullptr;
        if (!call) {
            std::lock_guard lock(mu_);
            --threads_in_service_;
            cv_.notify_all();
            continue;
        }
        s.state.store(kSlotTaken, std::memory_order_seq_cst);
        dispatch(s);
    }
}

void Proxy::watch_slots() {
    uint32_t served = 0;
    while (!stopping_) {
        const uint32_t claimed = header_->slots_claimed.load();
        while (served < claimed && served < kSlots) {
            const uint32_t index = served++;
            threads_.emplace_back([this, index] { serve_slot(index); });
        }
        timespec ts{0, 200 * 1000 * 1000};
        futex_wait(&header_->slots_claimed, claimed, &ts);
    }
}

// ---- the link to ckpt-run ----------------------------------------------------------------

void Proxy::on_control(const std::string& verb, const std::map<std::string, std::string>& args) {
    auto num = [&](const char* k) -> uint64_t {
        auto it = args.find(k);
        return it == args.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
    };
    auto str = [&](const char* k) -> std::string {
        auto it = args.find(k);
        return it == args.end() ? "" : it->second;
    };
    if (verb == "PREPARE") {
        prepare(num("sequence"));
    } else if (verb == "TARGETS") {
        set_targets(num("sequence"), num("version"), str("targets"));
    } else if (verb == "DRAIN") {
        drain(num("sequence"));
    } else if (verb == "RESUME") {
        resume();
    } else if (verb == "ATTACH") {
        // The restored application's channel, through its descriptor.
        const std::string path = "/proc/" + str("pid") + "/fd/" + str("fd");
        const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            send_line("FAILED text=" + escape("cannot open the restored channel " + path + ": " + strerror(errno)));
            return;
        }
        attach_channel(fd);
        try {
            std::vector<uint8_t> bytes(static_cast<size_t>(lseek(state_fd_, 0, SEEK_END)));
            if (pread(state_fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) throw StateError("cannot read the MPI state");
            restore_state(decode_state(bytes));
            resume();
        } catch (const std::exception& e) {
            send_line("FAILED text=" + escape(std::string("cannot restore the MPI state: ") + e.what()));
            return;
        }
        threads_.emplace_back([this] { watch_slots(); });
        header_->proxy_generation.fetch_add(1);
        header_->proxy_ready.store(1);
        futex_wake_all(&header_->proxy_ready);
        send_line("ATTACHED");
    } else if (verb == "EXIT") {
        finalize_on_exit_ = str("finalize") == "1";
        stopping_ = true;
    }
}

void Proxy::control_loop() {
    std::string in;
    char buf[4096];
    while (!stopping_) {
        pollfd p{link_fd_, POLLIN, 0};
        bool preparing;
        {
            std::lock_guard lock(mu_);
            preparing = phase_ == Phase::Preparing;
        }
        if (poll(&p, 1, preparing ? 1 : 500) <= 0) {
            if (preparing) {
                std::lock_guard lock(mu_);
                progress_locked();
                report_if_safe_locked();
            }
            continue;
        }
        const ssize_t n = read(link_fd_, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            break;  // ckpt-run is gone
        }
        in.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = in.find('\n')) != std::string::npos) {
            std::istringstream line(in.substr(0, nl));
            in.erase(0, nl + 1);
            std::string verb, word;
            line >> verb;
            std::map<std::string, std::string> args;
            while (line >> word) {
                const auto eq = word.find('=');
                if (eq != std::string::npos) args[unescape(word.substr(0, eq))] = unescape(word.substr(eq + 1));
            }
            on_control(unescape(verb), args);
        }
    }
    stopping_ = true;
}

// A proxy calls MPI_Init only when ckpt-run sends INIT: on a fresh start once
// the rank has joined the job (its node agent is the coordinator's), on a
// restart once every rank has restored its program. A job that fails before
// (a second job refused on a busy --ckpt-dir, a missing rank file) then ends
// with no proxy in the launcher's PMIx handshake: a client that connects or
// is killed in the middle of it while mpirun tears the job down can leave
// mpirun hung in PMIx_server_finalize. False when ckpt-run went away first.
bool Proxy::wait_for_init() {
    std::string line;
    char c;
    for (;;) {
        const ssize_t n = read(link_fd_, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        if (c != '\n') {
            line += c;
            continue;
        }
        if (line == "INIT") return true;
        line.clear();  // (nothing else comes before INIT)
    }
}

int Proxy::run() {
    if (!wait_for_init()) return 0;
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (provided < MPI_THREAD_MULTIPLE) {
        say("Open MPI does not provide MPI_THREAD_MULTIPLE");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
    MPI_Comm_dup(MPI_COMM_WORLD, &ctl_);
    sent_to_.assign(static_cast<size_t>(world_size_), 0);
    received_from_.assign(static_cast<size_t>(world_size_), 0);
    // The predefined objects.
    {
        CommEntry world;
        world.real = MPI_COMM_WORLD;
        world.gid = kCommWorld;
        for (int i = 0; i < world_size_; ++i) world.world.push_back(i);
        comms_[kCommWorld] = world;
        CommEntry self;
        self.real = MPI_COMM_SELF;
        self.gid = (static_cast<uint64_t>(world_rank_) << 32) | kCommSelf;
        self.world = {world_rank_};
        MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
        comms_[kCommSelf] = self;
        groups_[kGroupEmpty] = MPI_GROUP_EMPTY;
        register_predefined(types_, ops_);
    }
    send_line("READY rank=" + std::to_string(world_rank_) + " size=" + std::to_string(world_size_));
    if (!restarting_) {
        threads_.emplace_back([this] { watch_slots(); });
        header_->proxy_generation.fetch_add(1);
        header_->proxy_ready.store(1);
        futex_wake_all(&header_->proxy_ready);
    }
    control_loop();
    // The application or ckpt-run ended.
    stopping_ = true;
    cv_.notify_all();
    if (header_)
        for (uint32_t i = 0; i < kSlots; ++i) futex_wake_all(&header_->slots[i].state);
    if (header_) futex_wake_all(&header_->slots_claimed);
    // A rank that registered with the launcher must finalize, or the job
    // is torn down as if it had failed. A thread still inside the library
    // (the program died in a call) rules that out.
    bool idle;
    {
        std::lock_guard lock(mu_);
        idle = threads_in_service_ == threads_waiting_;
    }
    for (auto& t : threads_) t.detach();
    if (!finalized_ && finalize_on_exit_ && idle) MPI_Finalize();
    return 0;
}

}  // namespace ckpt::mpi::proxy

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "ckpt-mpi-proxy: started by ckpt-run, not by hand\n";
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "ckpt-mpi-proxy");
    // A batch task does not preempt the task running where it wakes: a
    // program's queued posts wake its proxy, and preempted on its core at
    // each one, the program took 20 us for the 8 posts of a halo exchange
    // (2.5 us natively); the proxy now runs when the program waits. Its
    // threads, Open MPI's included, inherit the policy. Not fatal if refused.
    const sched_param batch{};
    sched_setscheduler(0, SCHED_BATCH, &batch);
    const bool restarting = argc > 4 && std::string(argv[4]) == "restart";
    ckpt::mpi::proxy::Proxy proxy(atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), restarting);
    const int rc = proxy.run();
    _exit(rc);  // threads of Open MPI may still run
}
