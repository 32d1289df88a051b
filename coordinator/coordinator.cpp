#include "coordinator/coordinator.hpp"

#include "coordinator/protocol.hpp"
#include "image/checkpoint_dir.hpp"
#include "image/error.hpp"
#include "image/fault.hpp"
#include "mpi_plugin/common/state.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace ckpt::control {

namespace {

using agent::EngineError;
using agent::UniqueFd;
using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }


// Equal without leaking where they differ through timing.
bool same_secret(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

enum class Role { Unknown, Agent, Ctl };

struct Peer {
    Channel channel;
    Role role = Role::Unknown;
    std::string node;  // an agent's node
    std::string name;  // address, for logs
    Clock::time_point hello_deadline;
};

// A rank out of reach may well still run: only its node agent was lost.
enum class RankState { Absent, Running, Gone, OutOfReach };

struct RankSlot {
    RankState state = RankState::Absent;
    bool mpi = false;  // has an MPI proxy: takes part in the quiescing barrier
    int agent = -1;  // fd of the agent it is reached through
    std::string node;
    int64_t pid = 0;
    std::string gone;  // why it is Gone (it ended) or OutOfReach
};

// No longer reachable through the job: nothing more will come from it.
bool lost(const RankSlot& r) { return r.state == RankState::Gone || r.state == RankState::OutOfReach; }

// One coordinated checkpoint in progress.
struct Round {
    // An MPI job first quiesces (Prepare: collective counts, then targets
    // until every rank is safe), and drains the network once frozen.
    enum class Step { Prepare, Safe, Freeze, Drain, Dump, Commit } step = Step::Freeze;
    std::map<uint64_t, uint64_t> targets;  // communicator -> collectives, the maximum over its members
    uint64_t target_version = 0;
    uint64_t drained_messages = 0;
    uint64_t sequence = 0;
    bool stop = false;
    std::optional<image::PendingCheckpoint> pending;
    std::set<uint32_t> waiting;
    std::vector<image::ManifestRankRecord> rows;
    int64_t longest_pause_ns = 0;  // of the ranks that thawed after their dump
    Clock::time_point started, frozen, deadline;
    int client = -1;  // the ckpt-ctl that asked, -1 for an interval checkpoint
};


// The coordinated restart.
struct Restart {
    std::vector<std::string> candidates;  // checkpoint directories, preferred first
    size_t next = 0;
    std::string current;
    int attempt = 0;
    std::set<uint32_t> waiting;
    Clock::time_point started, deadline;
    bool active = false;
    bool released = false;
};

class Coordinator {
public:
    explicit Coordinator(const CoordinatorOptions& o) : o_(o), dir_(o.ckpt_dir), ranks_(o.size) {}
    int run();

private:
    void say(const std::string& line, int level = 1) const {
        if (o_.verbosity >= level) std::cerr << "ckpt-coordinator: " + line + "\n" << std::flush;  // one write: not cut by other lines
    }
    void accept_peer();
    void close_peer(int fd, const std::string& why);
    void on_message(int fd, const Message& m);
    void on_hello(int fd, Peer& peer, const Message& m);
    void on_rank_message(int fd, const Message& m);
    void on_client_message(int fd, const Message& m);
    void rank_gone(uint32_t rank, const std::string& why, RankState state = RankState::Gone);
    void check_deadlines();

    void send_rank(uint32_t rank, Message m);
    void broadcast(Message m);
    void reply(int client, const std::string& verb, const std::string& text);
    bool complete() const;
    std::string where(uint32_t rank) const;
    std::string ranks_list(const std::set<uint32_t>& rs) const;

    // Checkpoints.
    std::optional<std::string> why_no_checkpoint() const;
    // Whether the job may be checkpointed later (then requests wait).
    bool checkpoint_possible_later() const;
    void serve_requests();
    void start_round(bool stop, int client);
    void round_progress(const std::string& text);
    const char* round_phase() const;
    void commit_round();
    bool mpi_job() const;
    void next_step(Round::Step step, Message m);
    void start_dump();
    bool raise_targets(const std::string& text);
    void on_quiesce_message(uint32_t rank, const Message& m);
    void abort_round(const std::string& why);

    // Restart.
    void start_restart();
    void try_next_candidate(const std::string& why_previous);
    void restart_failed(const std::string& why);

    void status(int client);

    CoordinatorOptions o_;
    image::CheckpointDir dir_;
    std::optional<image::FileLock> lock_;
    UniqueFd listen_;
    std::string secret_;
    std::map<int, Peer> peers_;
    std::vector<RankSlot> ranks_;
    std::optional<Round> round_;
    // Requests wait here while the job starts, is restored, or another
    // checkpoint runs; one round at a time, in order.
    struct Request {
        bool stop = false;
        int client = -1;
    };
    std::deque<Request> requests_;
    Restart restart_;
    bool stopped_ = false;
    bool failed_ = false;
    uint64_t last_sequence_ = 0;  // of the last round begun
    Clock::time_point join_deadline_;
    Clock::time_point next_interval_ = Clock::time_point::max();
};

bool Coordinator::complete() const {
    return std::all_of(ranks_.begin(), ranks_.end(), [](const RankSlot& r) { return r.state == RankState::Running; });
}

std::string Coordinator::where(uint32_t rank) const {
    const RankSlot& r = ranks_[rank];
    return "rank " + std::to_string(rank) + (r.node.empty() ? "" : " on " + r.node);
}

std::string Coordinator::ranks_list(const std::set<uint32_t>& rs) const {
    std::string out;
    size_t n = 0;
    for (uint32_t r : rs) {
        if (n++ == 8) {
            out += ", ... (" + std::to_string(rs.size()) + " in all)";
            break;
        }
        out += (out.empty() ? "" : ", ") + where(r);
    }
    return out;
}

void Coordinator::send_rank(uint32_t rank, Message m) {
    const RankSlot& r = ranks_[rank];
    if (r.state != RankState::Running) return;
    auto it = peers_.find(r.agent);
    if (it == peers_.end()) return;
    m.set("to", static_cast<int64_t>(rank));
    it->second.channel.send(m);
}

// One message per agent, which hands it to each of its ranks: the fan-out
// is concurrent across nodes, not a round trip per rank. Every agent gets
// it before a SIGTERM ends this coordinator: rank 0's ckpt-run ends it as
// soon as it has COMMITTED of a --stop checkpoint, and an agent that saw
// the coordinator go first would thaw its ranks instead of stopping them.
void Coordinator::broadcast(Message m) {
    const agent::DeferSignal whole(SIGTERM);
    m.set("to", "all");
    for (auto& [fd, peer] : peers_)
        if (peer.role == Role::Agent) peer.channel.send(m);
}

void Coordinator::reply(int client, const std::string& verb, const std::string& text) {
    auto it = peers_.find(client);
    if (it == peers_.end()) return;
    it->second.channel.send(Message(verb).set("text", text));
}

void Coordinator::accept_peer() {
    UniqueFd fd(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd.valid()) return;
    // Without it, a message sent while the peer still owes the ACK of the
    // previous one (FREEZE right after COMMITTED, OK after PROGRESS) waits
    // for the peer's delayed ACK, 40 ms on Linux (Nagle's algorithm).
    int on = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    Peer p;
    p.name = peer_name(fd.get());
    p.hello_deadline = Clock::now() + std::chrono::seconds(10);
    const int key = fd.get();
    p.channel = Channel(std::move(fd));
    peers_.emplace(key, std::move(p));
}

void Coordinator::close_peer(int fd, const std::string& why) {
    auto it = peers_.find(fd);
    if (it == peers_.end()) return;
    const Role role = it->second.role;
    const std::string node = it->second.node;
    peers_.erase(it);
    if (role == Role::Agent) {
        for (uint32_t r = 0; r < ranks_.size(); ++r)
            if (ranks_[r].agent == fd && ranks_[r].state == RankState::Running)
                rank_gone(r, "is out of reach: the node agent on " + node + " " + why, RankState::OutOfReach);
    }
    if (round_ && round_->client == fd) round_->client = -1;
    std::erase_if(requests_, [&](const Request& r) { return r.client == fd; });
}

void Coordinator::on_hello(int fd, Peer& peer, const Message& m) {
    if (m.verb != "HELLO" || !same_secret(m.get("secret"), secret_)) {
        say("refused a connection from " + peer.name + ": " + (m.verb != "HELLO" ? "no greeting" : "wrong secret"), 0);
        close_peer(fd, "was refused");
        return;
    }
    const std::string role = m.get("role");
    if (role == "agent") {
        if (m.get("job") != o_.job_id) {
            say("refused an agent of job " + m.get("job") + " from " + peer.name + " (this is job " + o_.job_id + ")", 0);
            peer.channel.send(Message("REFUSED").set("text", "this coordinator serves job " + o_.job_id));
            close_peer(fd, "was refused");
            return;
        }
        peer.role = Role::Agent;
        peer.node = m.get("node");
        say("node agent on " + peer.node + " connected from " + peer.name, 2);
        peer.channel.send(Message("WELCOME"));
    } else if (role == "ctl") {
        peer.role = Role::Ctl;
    } else {
        say("refused a connection from " + peer.name + ": unknown role '" + role + "'", 0);
        close_peer(fd, "was refused");
    }
}

void Coordinator::on_message(int fd, const Message& m) {
    Peer& peer = peers_.at(fd);
    switch (peer.role) {
        case Role::Unknown: on_hello(fd, peer, m); break;
        case Role::Agent: on_rank_message(fd, m); break;
        case Role::Ctl: on_client_message(fd, m); break;
    }
}

void Coordinator::on_rank_message(int fd, const Message& m) {
    const int64_t rank_number = m.number("rank");
    if (rank_number < 0 || rank_number >= static_cast<int64_t>(ranks_.size())) {
        say("ignored " + m.verb + " for rank " + std::to_string(rank_number) + " of a job of " + std::to_string(ranks_.size()) + " rank(s)", 0);
        return;
    }
    const auto rank = static_cast<uint32_t>(rank_number);
    RankSlot& slot = ranks_[rank];
    if (m.verb == "REGISTER") {
        if (slot.state != RankState::Absent) {
            send_rank(rank, Message("FAIL").set("text", "rank " + std::to_string(rank) + " registered twice"));
            say("rank " + std::to_string(rank) + " registered twice (from " + peers_.at(fd).node + ")", 0);
            return;
        }
        slot.state = RankState::Running;
        slot.agent = fd;
        slot.node = peers_.at(fd).node;
        slot.pid = m.has("pid") ? m.number("pid") : 0;
        slot.mpi = m.get("mpi") == "1";
        if (complete()) {
            std::set<std::string> nodes;
            for (const auto& r : ranks_) nodes.insert(r.node);
            say("job " + o_.job_id + ": " + std::to_string(ranks_.size()) + " rank(s) on " + std::to_string(nodes.size()) + " node(s)", 2);
            if (!o_.restart.empty()) start_restart();
        }
        return;
    }
    if (m.verb == "GONE") {
        rank_gone(rank, m.get("text").empty() ? "has ended" : m.get("text"));
        return;
    }
    if (m.verb == "FAILED") {
        const std::string why = where(rank) + ": " + m.get("text");
        if (round_ && m.number("sequence") == static_cast<int64_t>(round_->sequence)) abort_round(why);
        else if (restart_.active && m.number("attempt") == restart_.attempt) {
            if (m.get("kind") == "image") try_next_candidate(why);
            else restart_failed(why);
        }
        return;
    }
    if (m.verb == "COUNTS" || m.verb == "RAISE" || m.verb == "SAFE" || m.verb == "DRAINED") {
        on_quiesce_message(rank, m);
        return;
    }
    if (m.verb == "FROZEN" || m.verb == "DUMPED") {
        if (!round_ || m.number("sequence") != static_cast<int64_t>(round_->sequence)) return;  // of an aborted round
        if (!round_->waiting.erase(rank)) return;
        if (m.verb == "DUMPED") {
            image::ManifestRankRecord row = get_record<image::ManifestRankRecord>(m);
            row.rank = rank;
            row.node = slot.node;
            round_->rows.push_back(row);
            round_->longest_pause_ns = std::max(round_->longest_pause_ns, m.has("paused_ns") ? m.number("paused_ns") : 0);
        }
        const size_t done = ranks_.size() - round_->waiting.size();
        if (round_->step == Round::Step::Freeze) {
            if (!round_->waiting.empty()) return;
            round_->frozen = Clock::now();
            round_progress("all " + std::to_string(ranks_.size()) + " rank(s) frozen in " + std::to_string(seconds(round_->frozen - round_->started)).substr(0, 5) + " s");
            if (mpi_job()) {
                next_step(Round::Step::Drain, Message("DRAIN"));
            } else {
                start_dump();
            }
        } else {
            round_progress("dumped " + std::to_string(done) + "/" + std::to_string(ranks_.size()) + " rank(s)");
            if (round_->waiting.empty()) commit_round();
        }
        return;
    }
    if (m.verb == "PROGRESS") {
        if (round_) round_progress((ranks_.size() > 1 ? "rank " + std::to_string(rank) + ": " : std::string()) + m.get("text"));
        return;
    }
    if (m.verb == "RESTORED") {
        if (!restart_.active || m.number("attempt") != restart_.attempt || !restart_.waiting.erase(rank)) return;
        if (!restart_.waiting.empty()) return;
        fault_point(FaultPoint::CoordinatorBeforeRelease);
        broadcast(Message("RELEASE"));
        restart_.active = false;
        restart_.released = true;
        char buf[64];
        snprintf(buf, sizeof buf, "%.3f s", seconds(Clock::now() - restart_.started));
        say("restored " + std::to_string(ranks_.size()) + " rank(s) from " + restart_.current + " in " + buf + "; released together");
        if (o_.interval_seconds > 0) next_interval_ = Clock::now() + std::chrono::seconds(o_.interval_seconds);
        return;
    }
    say("ignored an unknown message " + m.verb + " from " + where(rank), 0);
}

bool Coordinator::mpi_job() const {
    return std::any_of(ranks_.begin(), ranks_.end(), [](const RankSlot& r) { return r.mpi; });
}

// The next step of a round: every rank is waited for again, with a new deadline.
void Coordinator::next_step(Round::Step step, Message m) {
    round_->step = step;
    for (uint32_t r = 0; r < ranks_.size(); ++r) round_->waiting.insert(r);
    round_->deadline = Clock::now() + o_.phase_timeout;
    m.set("sequence", static_cast<int64_t>(round_->sequence));
    broadcast(m);
}

// With --stop, ranks that hear of no commit within a phase after the dump
// phase (a coordinator stalled in the commit) thaw rather than stay frozen.
void Coordinator::start_dump() {
    Message dump("DUMP");
    dump.set("dir", round_->pending->partial_path()).set("stop", round_->stop ? 1 : 0);
    dump.set("timeout", static_cast<int64_t>(o_.phase_timeout.count()));
    next_step(Round::Step::Dump, dump);
    round_progress("dumping");  // (names the phase: after the step changed)
    fault_point(FaultPoint::CoordinatorDumping);
}

// The targets are the maxima of the counts ranks report. True if one rose.
bool Coordinator::raise_targets(const std::string& text) {
    bool raised = false;
    for (const auto& [gid, n] : mpi::parse_counts(text)) {
        uint64_t& target = round_->targets[gid];
        if (n > target) target = n, raised = true;
    }
    return raised;
}

// The quiescing barrier of an MPI job (see mpi_plugin/proxy/quiesce.cpp).
void Coordinator::on_quiesce_message(uint32_t rank, const Message& m) {
    if (!round_ || m.number("sequence") != static_cast<int64_t>(round_->sequence)) return;
    Round& r = *round_;
    if (m.verb == "COUNTS" && r.step == Round::Step::Prepare) {
        raise_targets(m.get("counts"));
        if (!r.waiting.erase(rank) || !r.waiting.empty()) return;
        round_progress("collective targets of " + std::to_string(r.targets.size()) + " communicator(s) set; waiting for every rank to reach them");
        r.target_version = 1;
        next_step(Round::Step::Safe, Message("TARGETS").set("version", 1).set("targets", mpi::counts_text(r.targets)));
        return;
    }
    if (m.verb == "RAISE" && r.step == Round::Step::Safe) {
        // A rank must go past a target to reach another: every rank hears
        // the new targets and reports SAFE for them again.
        if (!raise_targets(m.get("targets"))) return;
        ++r.target_version;
        round_progress("rank " + std::to_string(rank) + " must pass a collective target to reach another: targets raised (version " +
                       std::to_string(r.target_version) + ")");
        next_step(Round::Step::Safe, Message("TARGETS").set("version", static_cast<int64_t>(r.target_version)).set("targets", mpi::counts_text(r.targets)));
        return;
    }
    if (m.verb == "SAFE" && r.step == Round::Step::Safe) {
        if (m.number("version") != static_cast<int64_t>(r.target_version) || !r.waiting.erase(rank) || !r.waiting.empty()) return;
        round_progress("every rank at a safe point in " + std::to_string(seconds(Clock::now() - r.started)).substr(0, 5) + " s; freezing");
        next_step(Round::Step::Freeze, Message("FREEZE"));
        return;
    }
    if (m.verb == "DRAINED" && r.step == Round::Step::Drain) {
        r.drained_messages += static_cast<uint64_t>(m.has("messages") ? m.number("messages") : 0);
        if (!r.waiting.erase(rank) || !r.waiting.empty()) return;
        round_progress("network drained (" + std::to_string(r.drained_messages) + " message(s) in flight kept)");
        start_dump();
    }
}

void Coordinator::rank_gone(uint32_t rank, const std::string& why, RankState state) {
    RankSlot& slot = ranks_[rank];
    if (lost(slot)) return;
    const bool was_running = slot.state == RankState::Running;
    slot.state = state;
    slot.gone = why;
    if (!was_running) return;
    say(where(rank) + " " + why, why == "has ended" || stopped_ ? 2 : 1);
    if (round_) abort_round(where(rank) + " " + why);
    if (restart_.active) restart_failed(where(rank) + " " + why);
}

// ---- checkpoints ---------------------------------------------------------------

std::optional<std::string> Coordinator::why_no_checkpoint() const {
    if (stopped_) return "the job was stopped after its last checkpoint";
    if (round_) return "checkpoint " + std::to_string(round_->sequence) + " is in progress";
    if (restart_.active || (!o_.restart.empty() && !restart_.released)) return "the job is still being restored";
    size_t absent = 0;
    for (uint32_t r = 0; r < ranks_.size(); ++r) {
        if (lost(ranks_[r]))
            return where(r) + " " + (ranks_[r].gone.empty() ? "has ended" : ranks_[r].gone) + ": a checkpoint needs every rank";
        absent += ranks_[r].state == RankState::Absent;
    }
    if (absent) return "the job is still starting: " + std::to_string(ranks_.size() - absent) + " of " + std::to_string(ranks_.size()) + " rank(s) have joined";
    return std::nullopt;
}

bool Coordinator::checkpoint_possible_later() const {
    if (stopped_ || failed_) return false;
    return std::none_of(ranks_.begin(), ranks_.end(), lost);
}

void Coordinator::serve_requests() {
    while (!requests_.empty()) {
        const Request req = requests_.front();
        if (!why_no_checkpoint()) {
            requests_.pop_front();
            start_round(req.stop, req.client);
            return;
        }
        if (checkpoint_possible_later()) return;
        requests_.pop_front();
        reply(req.client, "ERROR", *why_no_checkpoint());
    }
}

void Coordinator::start_round(bool stop, int client) {
    if (auto why = why_no_checkpoint()) {
        if (client >= 0) reply(client, "ERROR", *why);
        else say("interval checkpoint skipped: " + *why, 2);
        return;
    }
    Round r;
    r.stop = stop;
    r.client = client;
    r.started = Clock::now();
    try {
        r.pending.emplace(dir_.begin(last_sequence_ + 1));
    } catch (const std::exception& e) {
        const std::string why = std::string("cannot start a checkpoint: ") + e.what();
        say(why, 0);
        if (client >= 0) reply(client, "ERROR", why);
        return;
    }
    r.sequence = r.pending->sequence();
    last_sequence_ = r.sequence;
    for (uint32_t i = 0; i < ranks_.size(); ++i) r.waiting.insert(i);
    r.deadline = Clock::now() + o_.phase_timeout;
    round_.emplace(std::move(r));
    if (mpi_job()) {
        round_->step = Round::Step::Prepare;
        round_progress("checkpoint " + std::to_string(round_->sequence) + ": quiescing MPI in " + std::to_string(ranks_.size()) + " rank(s)");
        broadcast(Message("PREPARE").set("sequence", static_cast<int64_t>(round_->sequence)));
        return;
    }
    round_progress("checkpoint " + std::to_string(round_->sequence) + ": freezing " + std::to_string(ranks_.size()) + " rank(s)");
    broadcast(Message("FREEZE").set("sequence", static_cast<int64_t>(round_->sequence)));
}

const char* Coordinator::round_phase() const {
    switch (round_->step) {
        case Round::Step::Prepare: return "MPI quiesce";
        case Round::Step::Safe: return "MPI safe-point";
        case Round::Step::Freeze: return "freeze";
        case Round::Step::Drain: return "MPI drain";
        case Round::Step::Dump: return "dump";
        case Round::Step::Commit: return "commit";
    }
    return "?";
}

// The phase and the phase timeout go with the text: ckpt-ctl names the
// phase when this coordinator goes away, and gives up on one that says
// nothing for much longer than a phase may take (it is stalled).
void Coordinator::round_progress(const std::string& text) {
    say(text, 2);
    if (!round_ || round_->client < 0) return;
    auto it = peers_.find(round_->client);
    if (it == peers_.end()) return;
    Message m("PROGRESS");
    m.set("text", text).set("phase", round_phase()).set("sequence", static_cast<int64_t>(round_->sequence));
    m.set("timeout", static_cast<int64_t>(o_.phase_timeout.count()));
    it->second.channel.send(m);
}

void Coordinator::commit_round() {
    Round& r = *round_;
    std::sort(r.rows.begin(), r.rows.end(), [](const auto& a, const auto& b) { return a.rank < b.rank; });
    const int64_t total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - r.started).count();
    std::string path;
    r.step = Round::Step::Commit;
    try {
        round_progress("committing");
        path = r.pending->commit(o_.job_id, total_ns, r.rows);
        dir_.apply_retention(o_.keep);
    } catch (const std::exception& e) {
        abort_round(std::string("commit failed: ") + e.what());
        return;
    }
    uint64_t stored = 0, tasks = 0, threads = 0;
    for (const auto& row : r.rows) {
        stored += row.on_disk_bytes;
        tasks += row.ntasks;
        threads += row.nthreads;
    }
    const double secs = static_cast<double>(total_ns) / 1e9;
    // With --stop the ranks stay frozen from the freeze to the end.
    const double paused = r.stop ? seconds(Clock::now() - r.started) : static_cast<double>(r.longest_pause_ns) / 1e9;
    char buf[512];
    snprintf(buf, sizeof buf, "checkpoint %s committed: %zu rank(s), %llu process(es), %llu thread(s), %s stored in %.3f s (%.0f MB/s), paused %.3f s%s",
             std::filesystem::path(path).filename().c_str(), r.rows.size(), static_cast<unsigned long long>(tasks),
             static_cast<unsigned long long>(threads), agent::human_bytes(static_cast<double>(stored)).c_str(), secs,
             static_cast<double>(stored) / 1e6 / secs, paused, r.stop ? ", job stopped" : "");
    say(buf);
    // The client hears first: a stopped job's ranks end at COMMITTED, and
    // this coordinator with rank 0.
    if (r.client >= 0) reply(r.client, "OK", path + " " + buf);
    Message committed("COMMITTED");
    committed.set("sequence", static_cast<int64_t>(r.sequence)).set("path", path).set("stop", r.stop ? 1 : 0);
    broadcast(committed);
    if (r.stop) stopped_ = true;
    round_.reset();
}

void Coordinator::abort_round(const std::string& failure) {
    Round& r = *round_;
    const std::string why = "checkpoint " + std::to_string(r.sequence) + ", " + round_phase() + " phase: " + failure;
    broadcast(Message("ABORT").set("sequence", static_cast<int64_t>(r.sequence)).set("text", why));
    try {
        r.pending->abort();
    } catch (const std::exception& e) {
        say(std::string("could not remove the partial checkpoint: ") + e.what(), 0);
    }
    say("checkpoint failed, the job goes on: " + why, 0);
    if (r.client >= 0) reply(r.client, "ERROR", why);
    round_.reset();
}

// ---- restart -------------------------------------------------------------------

void Coordinator::start_restart() {
    restart_.started = Clock::now();
    if (o_.restart == "auto") {
        auto all = dir_.committed();
        for (auto it = all.rbegin(); it != all.rend(); ++it) restart_.candidates.push_back(it->path);
        if (restart_.candidates.empty()) {
            restart_failed("no committed checkpoint in " + o_.ckpt_dir + " to restart from");
            return;
        }
    } else {
        // A checkpoint directory, a job's directory (its `latest`), or a
        // rank file of the checkpoint.
        std::string path = o_.restart;
        std::error_code ec;
        if (std::filesystem::is_regular_file(path, ec)) path = std::filesystem::path(path).parent_path().string();
        if (std::filesystem::exists(path + "/latest", ec)) path = std::filesystem::canonical(path + "/latest", ec).string();
        restart_.candidates.push_back(path);
    }
    try_next_candidate("");
}

void Coordinator::try_next_candidate(const std::string& why_previous) {
    if (restart_.active) broadcast(Message("ABORT").set("attempt", restart_.attempt).set("text", why_previous));
    if (!why_previous.empty()) say("cannot restore from " + restart_.current + " (" + why_previous + ")", 0);
    while (restart_.next < restart_.candidates.size()) {
        const std::string path = restart_.candidates[restart_.next++];
        try {
            image::Manifest manifest = image::read_manifest(path);
            if (manifest.info.nranks != ranks_.size())
                throw EngineError("it holds " + std::to_string(manifest.info.nranks) + " rank(s), this job has " + std::to_string(ranks_.size()));
        } catch (const std::exception& e) {
            say("checkpoint " + path + " is not usable (" + e.what() + ")" + (o_.restart == "auto" ? "; trying an older one" : ""), 0);
            continue;
        }
        if (!why_previous.empty() || restart_.attempt > 0) say("trying the older checkpoint " + path, 0);
        restart_.current = path;
        ++restart_.attempt;
        restart_.active = true;
        restart_.waiting.clear();
        for (uint32_t r = 0; r < ranks_.size(); ++r) restart_.waiting.insert(r);
        restart_.deadline = Clock::now() + o_.phase_timeout;
        say("restoring " + std::to_string(ranks_.size()) + " rank(s) from " + path, 2);
        broadcast(Message("RESTORE").set("path", path).set("attempt", restart_.attempt));
        return;
    }
    restart_failed(o_.restart == "auto" ? "no checkpoint in " + o_.ckpt_dir + " can be restored" : "cannot restore from " + o_.restart);
}

void Coordinator::restart_failed(const std::string& why) {
    say("restart failed: " + why, 0);
    broadcast(Message("FAIL").set("text", "restart failed: " + why));
    restart_.active = false;
    failed_ = true;
}

// ---- ckpt-ctl -----------------------------------------------------------------

void Coordinator::on_client_message(int fd, const Message& m) {
    if (m.verb == "CHECKPOINT") {
        requests_.push_back({m.get("stop") == "1", fd});
        if (auto why = why_no_checkpoint(); why && checkpoint_possible_later()) reply(fd, "PROGRESS", "waiting: " + *why);
        serve_requests();
    } else if (m.verb == "STATUS") {
        status(fd);
    } else {
        reply(fd, "ERROR", "unknown request '" + m.verb + "'");
    }
}

void Coordinator::status(int client) {
    std::set<std::string> nodes;
    size_t joined = 0, gone = 0, out_of_reach = 0;
    for (const auto& r : ranks_) {
        if (r.state != RankState::Absent) nodes.insert(r.node);
        joined += r.state != RankState::Absent;
        gone += r.state == RankState::Gone;
        out_of_reach += r.state == RankState::OutOfReach;
    }
    reply(client, "PROGRESS", "job " + o_.job_id + ": " + std::to_string(ranks_.size()) + " rank(s) on " + std::to_string(nodes.size()) +
                                  " node(s); " + std::to_string(joined) + " joined, " + std::to_string(gone) + " ended" +
                                  (out_of_reach ? ", " + std::to_string(out_of_reach) + " out of reach" : ""));
    std::string phase = "running";
    if (round_)
        phase = "checkpoint " + std::to_string(round_->sequence) + ": " + round_phase() + " (" +
                std::to_string(ranks_.size() - round_->waiting.size()) + "/" + std::to_string(ranks_.size()) + " done)";
    else if (restart_.active)
        phase = "restoring from " + restart_.current;
    else if (stopped_)
        phase = "stopped after a checkpoint";
    else if (joined < ranks_.size())
        phase = "starting";
    reply(client, "PROGRESS", "phase " + phase);
    for (uint32_t r = 0; r < ranks_.size(); ++r) {
        const RankSlot& s = ranks_[r];
        // A rank out of reach is not known to have ended: it may run on.
        const std::string state = s.state == RankState::Absent       ? "not joined"
                                  : s.state == RankState::Running    ? "running"
                                  : s.state == RankState::OutOfReach ? "out of reach: its node agent was lost"
                                                                     : (s.gone.empty() ? "ended" : s.gone);
        reply(client, "PROGRESS", "rank " + std::to_string(r) + ": " + (s.node.empty() ? "-" : s.node) + ", " + state);
    }
    auto latest = dir_.latest();
    reply(client, "OK", "last committed checkpoint: " + (latest ? latest->path : std::string("none")));
}

void Coordinator::check_deadlines() {
    const auto now = Clock::now();
    if (round_ && now >= round_->deadline) {
        abort_round("timeout: the phase took more than " + std::to_string(o_.phase_timeout.count()) +
                    " s; still waiting for " + ranks_list(round_->waiting));
    }
    if (restart_.active && now >= restart_.deadline)
        restart_failed("timeout: restoring took more than " + std::to_string(o_.phase_timeout.count()) + " s; still waiting for " +
                       ranks_list(restart_.waiting));
    if (!complete() && now >= join_deadline_ && std::none_of(ranks_.begin(), ranks_.end(), lost)) {
        std::set<uint32_t> absent;
        for (uint32_t r = 0; r < ranks_.size(); ++r)
            if (ranks_[r].state == RankState::Absent) absent.insert(r);
        if (!absent.empty() && !failed_) {
            const std::string why = std::to_string(absent.size()) + " rank(s) did not join within " + std::to_string(o_.join_timeout.count()) + " s (" +
                                    ranks_list(absent) + ")";
            say(why, 0);
            broadcast(Message("FAIL").set("text", "the job could not form: " + why));
            failed_ = true;
        }
    }
    std::vector<int> late;
    for (auto& [fd, peer] : peers_)
        if (peer.role == Role::Unknown && now >= peer.hello_deadline) late.push_back(fd);
    for (int fd : late) {
        say("refused a connection from " + peers_.at(fd).name + ": no greeting within 10 s", 0);
        close_peer(fd, "was refused");
    }
    if (now >= next_interval_) {
        next_interval_ = now + std::chrono::seconds(o_.interval_seconds);
        if (round_) say("interval checkpoint skipped: checkpoint " + std::to_string(round_->sequence) + " is still running", 2);
        else start_round(false, -1);
    }
}

int Coordinator::run() {
    // Held while the job runs: a second job on this directory is refused.
    lock_.emplace(o_.ckpt_dir + "/.coordinator.lock", false);
    if (!lock_->held()) {
        std::string other = "another job";
        if (auto r = read_rendezvous(o_.ckpt_dir)) other = "job " + r->job_id;
        say("cannot coordinate job " + o_.job_id + ": " + other + " is already running with --ckpt-dir " + o_.ckpt_dir, 0);
        return 1;
    }
    secret_ = random_secret();
    uint16_t port = 0;
    const std::string host = node_address();
    listen_ = listen_tcp(host, port);
    // Ended with rank 0's ckpt-run, its parent (SIGTERM): nobody will answer
    // at the published address any more (the directory's lock makes it ours).
    const agent::LauncherDeath rank0(rendezvous_path(o_.ckpt_dir));
    publish_rendezvous(o_.ckpt_dir, {o_.job_id, host, port, secret_});
    say("job " + o_.job_id + " coordinated at " + host + ":" + std::to_string(port), 2);
    join_deadline_ = Clock::now() + o_.join_timeout;
    if (o_.interval_seconds > 0 && o_.restart.empty()) next_interval_ = Clock::now() + std::chrono::seconds(o_.interval_seconds);

    for (;;) {
        // (Ranks out of reach may still run: the coordinator stays to say
        // so, until rank 0's ckpt-run ends and ends it.)
        const bool all_gone = std::all_of(ranks_.begin(), ranks_.end(), [](const RankSlot& r) { return r.state == RankState::Gone; });
        if (all_gone || (failed_ && !std::any_of(peers_.begin(), peers_.end(), [](const auto& p) { return p.second.role == Role::Agent; })))
            break;
        if (rank0.died()) {
            // Rank 0's ckpt-run was killed: the others must hear of it from
            // here, the only process that knows (its node agent ends too).
            rank_gone(0, "has ended (its ckpt-run, which ran the job's coordinator, died)");
            failed_ = true;
            break;
        }
        std::vector<pollfd> fds{{listen_.get(), POLLIN, 0}, {rank0.fd(), POLLIN, 0}};
        for (auto& [fd, peer] : peers_) fds.push_back({fd, POLLIN, 0});
        auto next = Clock::now() + std::chrono::seconds(1);
        if (round_) next = std::min(next, round_->deadline);
        next = std::min(next, next_interval_);
        const int timeout = static_cast<int>(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count()));
        if (poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) agent::fail_errno("poll");
        if (fds[0].revents & POLLIN) accept_peer();
        for (size_t i = 2; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            const int fd = fds[i].fd;
            auto it = peers_.find(fd);
            if (it == peers_.end()) continue;
            const bool open = it->second.channel.fill();
            for (;;) {
                it = peers_.find(fd);
                if (it == peers_.end()) break;
                std::optional<Message> m;
                try {
                    m = it->second.channel.buffered();
                } catch (const EngineError& e) {
                    say("dropped " + it->second.name + ": " + e.what(), 0);
                    close_peer(fd, "sent a malformed message");
                    break;
                }
                if (!m) break;
                try {
                    on_message(fd, *m);
                } catch (const std::exception& e) {
                    say("bad message " + m->verb + " from " + it->second.name + ": " + e.what(), 0);
                }
            }
            if (!open) close_peer(fd, "disconnected");
        }
        check_deadlines();
        serve_requests();
    }
    if (auto r = read_rendezvous(o_.ckpt_dir); r && r->secret == secret_) unlink(rendezvous_path(o_.ckpt_dir).c_str());
    return failed_ ? 1 : 0;
}

}  // namespace

int run_coordinator(const CoordinatorOptions& options) {
    Coordinator c(options);
    return c.run();
}

}  // namespace ckpt::control
