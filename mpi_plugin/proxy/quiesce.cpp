// The quiescing barrier on the proxy's side (DESIGN.md, "The quiescing
// barrier"), its state at a checkpoint, and its replay on restart.
//
//   PREPARE   the proxy reports how many collectives its rank entered on
//             each communicator (COUNTS) and lets no new collective start
//             until the coordinator answers with the maximum per
//             communicator (TARGETS).
//   TARGETS   a rank below a target runs on; a collective beyond the target
//             waits, unless the rank is still below the target of another
//             communicator: then it enters, and asks the coordinator to raise
//             this communicator's target for every member (RAISE; the
//             coordinator answers with TARGETS of a new version). SAFE once
//             every communicator is at its target and no collective is in
//             progress: every collective begun anywhere has been entered by
//             all its members and has completed.
//   (FREEZE)  ckpt-run freezes the program.
//   DRAIN     the proxies exchange how many messages each sent to each, and
//             receive until all have arrived: into posted receives, or kept
//             as drained messages; receives still posted are cancelled (and
//             posted again later). Calls waiting on the network give up and
//             are executed again later; the state is handed to ckpt-run
//             (DRAINED).
//   RESUME    after the dump (or an abort): receives posted again, calls
//             executed again, collectives let through.
#include "mpi_plugin/proxy/proxy.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace ckpt::mpi::proxy {

bool Proxy::behind_target_locked(const CommEntry& c) const {
    auto t = targets_.find(c.gid);
    return t != targets_.end() && c.collectives < t->second;
}

bool Proxy::behind_any_target_locked() const {
    for (const auto& [id, c] : comms_)
        if (behind_target_locked(c)) return true;
    return false;
}

bool Proxy::enter_collective(uint64_t comm_id) {
    std::unique_lock lock(mu_);
    for (;;) {
        if (!accepting_ || interrupt_) return false;
        if (phase_ == Phase::Running) break;
        auto it = comms_.find(comm_id);
        if (it == comms_.end()) break;
        if (comm_id == kCommSelf) break;  // nobody else takes part
        if (have_targets_) {
            CommEntry& c = it->second;
            if (behind_target_locked(c)) break;  // behind: catch up
            if (behind_any_target_locked()) {
                // At this communicator's target but behind on another one,
                // which this rank can only reach through this collective:
                // every member must enter it too. The coordinator raises
                // the target for all (RAISE), and the others catch up.
                targets_[c.gid] = c.collectives + 1;
                send_line("RAISE sequence=" + std::to_string(sequence_) + " targets=" + counts_text({{c.gid, c.collectives + 1}}));
                break;
            }
        }
        // Before the targets are known no collective starts (its count is
        // already reported); at its target it waits for the checkpoint.
        cv_.wait(lock);
    }
    auto it = comms_.find(comm_id);
    if (it != comms_.end()) ++it->second.collectives;
    ++collectives_in_flight_;
    return true;
}

void Proxy::leave_collective() {
    std::lock_guard lock(mu_);
    --collectives_in_flight_;
    cv_.notify_all();
    report_if_safe_locked();
}

void Proxy::progress_locked() {
    for (auto& [id, r] : requests_)
        if (r.kind == Request::Kind::Collective && !r.done && !r.uses_user_op) test_locked(id, r);
}

void Proxy::prepare(uint64_t sequence) {
    std::map<uint64_t, uint64_t> counts;
    {
        std::lock_guard lock(mu_);
        sequence_ = sequence;
        phase_ = Phase::Preparing;
        have_targets_ = false;
        reported_safe_ = false;
        targets_.clear();
        for (const auto& [id, c] : comms_)
            if (id != kCommSelf) counts[c.gid] = c.collectives;
    }
    send_line("COUNTS sequence=" + std::to_string(sequence) + " counts=" + counts_text(counts));
}

void Proxy::set_targets(uint64_t sequence, uint64_t version, const std::string& targets) {
    std::lock_guard lock(mu_);
    if (sequence != sequence_ || phase_ != Phase::Preparing) return;
    targets_ = parse_counts(targets);
    target_version_ = version;
    have_targets_ = true;
    reported_safe_ = false;
    cv_.notify_all();
    report_if_safe_locked();
}

void Proxy::report_if_safe_locked() {
    if (phase_ != Phase::Preparing || !have_targets_ || reported_safe_) return;
    if (collectives_in_flight_ > 0 || behind_any_target_locked()) return;
    reported_safe_ = true;
    // (send_line takes only the link's lock.)
    send_line("SAFE sequence=" + std::to_string(sequence_) + " version=" + std::to_string(target_version_));
}

void Proxy::drain(uint64_t sequence) {
    std::unique_lock lock(mu_);
    phase_ = Phase::Draining;
    accepting_ = false;
    cv_.notify_all();
    // Every call in service has posted what it will post.
    cv_.wait(lock, [&] { return threads_in_service_ == threads_waiting_; });
    if (!finalized_) {
        // How many messages every rank sent to every other.
        std::vector<uint64_t> expected(static_cast<size_t>(world_size_));
        MPI_Alltoall(sent_to_.data(), 1, MPI_UINT64_T, expected.data(), 1, MPI_UINT64_T, ctl_);
        auto all_in = [&] {
            for (size_t p = 0; p < expected.size(); ++p)
                if (received_from_[p] < expected[p]) return false;
            for (auto& [id, r] : requests_)
                if (r.kind == Request::Kind::Send && !test_locked(id, r)) return false;
            return true;
        };
        for (;;) {
            for (auto& [id, r] : requests_) test_locked(id, r);
            if (all_in()) break;
            // Messages no posted receive took.
            for (auto& [cid, c] : comms_) {
                int flag = 0;
                MPI_Status st{};
                MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c.real, &flag, &st);
                if (!flag) continue;
                int bytes = 0;
                MPI_Get_count(&st, MPI_BYTE, &bytes);
                DrainedMessage m;
                m.comm = cid;
                m.source = st.MPI_SOURCE;
                m.tag = st.MPI_TAG;
                m.data.resize(static_cast<size_t>(bytes));
                MPI_Recv(m.data.data(), bytes, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, c.real, MPI_STATUS_IGNORE);
                ++received_from_[static_cast<size_t>(c.world[static_cast<size_t>(st.MPI_SOURCE)])];
                drained_.push_back(std::move(m));
            }
        }
        // Receives still posted match nothing that was sent: cancelled now,
        // posted again after the checkpoint.
        for (auto& [id, r] : requests_) {
            if (r.kind != Request::Kind::Recv || r.done || r.real == MPI_REQUEST_NULL) continue;
            MPI_Cancel(&r.real);
            MPI_Status st{};
            MPI_Wait(&r.real, &st);
            int cancelled = 0;
            MPI_Test_cancelled(&st, &cancelled);
            if (cancelled) {
                r.real = MPI_REQUEST_NULL;
                r.reposted = true;
            } else {
                r.done = true;
                r.status = st;
                count_completion_locked(r);
            }
        }
        std::fill(sent_to_.begin(), sent_to_.end(), 0);
        std::fill(received_from_.begin(), received_from_.end(), 0);
    }
    // Calls still waiting give up, to be executed again.
    interrupt_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return threads_in_service_ == 0; });
    phase_ = Phase::Parked;
    // Blocking calls' own requests go with them (they are executed again).
    for (auto it = requests_.begin(); it != requests_.end();) {
        if (it->first >= (1ull << 62))
            it = requests_.erase(it);
        else
            ++it;
    }
    lock.unlock();
    const std::vector<uint8_t> bytes = encode_state(capture_state());
    if (ftruncate(state_fd_, 0) != 0 || pwrite(state_fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
        send_line("FAILED sequence=" + std::to_string(sequence) + " text=cannot%20write%20the%20MPI%20state");
        return;
    }
    send_line("DRAINED sequence=" + std::to_string(sequence) + " bytes=" + std::to_string(bytes.size()) +
              " messages=" + std::to_string(drained_.size()));
}

void Proxy::resume() {
    std::lock_guard lock(mu_);
    // Receives posted again in their original order.
    std::vector<std::pair<uint64_t, uint64_t>> order;
    for (auto& [id, r] : requests_)
        if (r.reposted) order.emplace_back(r.seq, id);
    std::sort(order.begin(), order.end());
    for (auto [seq, id] : order) {
        Request& r = requests_[id];
        MPI_Status st{};
        // A drained message may match it now.
        bool matched = false;
        for (auto it = drained_.begin(); it != drained_.end(); ++it) {
            if (it->comm != r.comm || (r.peer != MPI_ANY_SOURCE && it->source != r.peer) || (r.tag != MPI_ANY_TAG && it->tag != r.tag)) continue;
            const uint64_t n = std::min<uint64_t>(r.bytes, it->data.size());
            memcpy(at(r.offset), it->data.data(), n);
            st.MPI_SOURCE = it->source;
            st.MPI_TAG = it->tag;
            st._ucount = n;
            drained_.erase(it);
            matched = true;
            break;
        }
        r.reposted = false;
        if (matched) {
            r.done = true;
            r.status = st;
            continue;
        }
        MPI_Irecv(at(r.offset), static_cast<int>(r.bytes), MPI_BYTE, r.peer, r.tag, comms_.at(r.comm).real, &r.real);
    }
    phase_ = Phase::Running;
    have_targets_ = false;
    targets_.clear();
    interrupt_ = false;
    accepting_ = true;
    cv_.notify_all();
}

ProxyState Proxy::capture_state() {
    std::lock_guard lock(mu_);
    ProxyState st;
    st.world_rank = world_rank_;
    st.world_size = world_size_;
    st.shim_pid = header_ ? header_->shim_pid.load() : 0;
    st.shim_fd = header_ ? header_->shim_fd : -1;
    st.finalized = finalized_;
    st.next_internal_id = next_internal_id_;
    st.next_seq = next_seq_;
    st.next_log_seq = next_log_seq_;
    st.log = log_;
    st.drained.assign(drained_.begin(), drained_.end());
    for (const auto& [id, r] : requests_) {
        PendingRequest p;
        p.id = id;
        p.kind = static_cast<uint32_t>(r.kind);
        p.done = r.done;
        p.comm = r.comm;
        p.peer = r.peer;
        p.tag = r.tag;
        p.mode = r.mode;
        p.offset = r.offset;
        p.bytes = r.bytes;
        p.seq = r.seq;
        p.freed = r.freed;
        p.status_source = r.status.MPI_SOURCE;
        p.status_tag = r.status.MPI_TAG;
        p.status_error = r.status.MPI_ERROR;
        p.status_cancelled = r.status._cancelled;
        p.status_bytes = r.status._ucount;
        st.requests.push_back(p);
    }
    for (const auto& [id, c] : comms_) st.counts.push_back({id, c.gid, c.collectives});
    return st;
}

// On restart: the objects are made again in the order they were made, by
// the same calls (every member of a communicator replays its creation
// together), then the requests and messages of the checkpoint come back.
void Proxy::restore_state(const ProxyState& st) {
    if (st.world_rank != world_rank_ || st.world_size != world_size_)
        throw StateError("the checkpoint is of rank " + std::to_string(st.world_rank) + " of " + std::to_string(st.world_size) +
                         ", this is rank " + std::to_string(world_rank_) + " of " + std::to_string(world_size_));
    for (const LogEntry& e : st.log) {
        int64_t res[kMaxResults] = {};
        const auto call = static_cast<Call>(e.call);
        int rc = MPI_SUCCESS;
        switch (call) {
            case Call::CommCreate: rc = exec_comm_create(e, res); break;
            case Call::GroupCreate: rc = exec_group_create(e, res); break;
            case Call::TypeCreate: rc = exec_type_create(e); break;
            case Call::OpCreate: rc = exec_op_create(e); break;
            case Call::CommFree:
            case Call::GroupFree:
            case Call::TypeFree:
            case Call::OpFree: exec_free(e); break;
            default: throw StateError(std::string("the creation log holds a ") + call_name(call));
        }
        if (rc != MPI_SUCCESS && call != Call::CommCreate)
            throw StateError(std::string("replaying ") + call_name(call) + " of object " + std::to_string(e.id) + " failed with MPI error " +
                             std::to_string(rc));
    }
    std::lock_guard lock(mu_);
    log_ = st.log;
    next_internal_id_ = st.next_internal_id;
    next_seq_ = st.next_seq;
    next_log_seq_ = st.next_log_seq;
    for (const CommCount& c : st.counts) {
        auto it = comms_.find(c.id);
        if (it == comms_.end()) continue;
        it->second.gid = c.gid;
        it->second.collectives = c.collectives;
    }
    drained_.assign(st.drained.begin(), st.drained.end());
    for (const PendingRequest& p : st.requests) {
        Request r;
        r.kind = static_cast<Request::Kind>(p.kind);
        r.done = p.done;
        r.comm = p.comm;
        r.peer = p.peer;
        r.tag = p.tag;
        r.mode = p.mode;
        r.offset = p.offset;
        r.bytes = p.bytes;
        r.seq = p.seq;
        r.freed = p.freed;
        r.status.MPI_SOURCE = p.status_source;
        r.status.MPI_TAG = p.status_tag;
        r.status.MPI_ERROR = p.status_error;
        r.status._cancelled = p.status_cancelled;
        r.status._ucount = p.status_bytes;
        r.reposted = r.kind == Request::Kind::Recv && !r.done;
        requests_[p.id] = std::move(r);
        if (p.freed) detached_.push_back(p.id);
    }
    if (st.finalized) {
        finalized_ = true;
        MPI_Finalize();
    }
    // Posting again happens at resume, with the channel mapped.
    accepting_ = false;
    phase_ = Phase::Parked;
}

}  // namespace ckpt::mpi::proxy
