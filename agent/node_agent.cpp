#include "agent/node_agent.hpp"

#include "coordinator/protocol.hpp"
#include "image/fault.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

namespace ckpt::agent {

namespace {

using control::Channel;

using control::Message;
using Clock = std::chrono::steady_clock;

class NodeAgent {
public:
    explicit NodeAgent(const NodeAgentOptions& o) : o_(o) {}
    int run();

private:
    void say(const std::string& line, int level = 1) const {
        if (o_.verbosity >= level) std::cerr << "ckpt-agent (" + control::node_name() + "): " + line + "\n" << std::flush;  // one write
    }
    // Connects and authenticates; the coordinator may not have published
    // its address yet, or an older job's may still be there.
    Channel join_coordinator();
    void from_coordinator(const Message& m);
    void from_rank(int fd, const Message& m);
    void rank_left(int fd, const std::string& why);
    void launcher_died();

    struct Local {
        Channel channel;
        int64_t rank = -1;  // once registered
    };
    NodeAgentOptions o_;
    Channel coordinator_;
    std::map<int, Local> ranks_;
    int64_t launcher_rank_ = -1;  // the rank whose ckpt-run started this agent, once it registered
};

Channel NodeAgent::join_coordinator() {
    const auto deadline = Clock::now() + o_.connect_timeout;
    std::string last = "no coordinator address published in " + control::rendezvous_path(o_.ckpt_dir);
    while (Clock::now() < deadline) {
        if (auto r = control::read_rendezvous(o_.ckpt_dir); r && r->job_id == o_.job_id) {
            try {
                Channel c(control::connect_tcp(r->host, r->port));
                Message hello("HELLO");
                hello.set("role", "agent").set("secret", r->secret).set("job", o_.job_id).set("node", control::node_name());
                if (c.send(hello)) {
                    auto answer = c.receive(std::chrono::seconds(10));
                    if (answer && answer->verb == "WELCOME") return c;
                    last = answer ? "the coordinator refused this node: " + answer->get("text") : "the coordinator did not answer";
                }
            } catch (const EngineError& e) {
                last = e.what();
            }
        } else if (auto r2 = control::read_rendezvous(o_.ckpt_dir)) {
            last = "the directory's coordinator is job " + r2->job_id + "'s, not " + o_.job_id + "'s";
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    fail("cannot reach the coordinator of job " + o_.job_id + " within " + std::to_string(o_.connect_timeout.count()) + " s: " + last);
}

// In rank order, and every local rank gets the message before a SIGTERM
// ends this agent: the node's local rank 0 ends it as soon as it has
// COMMITTED of a --stop checkpoint, and a rank that lost its agent first
// would thaw instead of stopping.
void NodeAgent::from_coordinator(const Message& m) {
    const DeferSignal whole(SIGTERM);
    const std::string to = m.get("to");
    std::vector<Local*> targets;
    for (auto& [fd, local] : ranks_)
        if (local.rank >= 0 && (to == "all" || to == std::to_string(local.rank))) targets.push_back(&local);
    std::sort(targets.begin(), targets.end(), [](const Local* a, const Local* b) { return a->rank < b->rank; });
    for (Local* local : targets) {
        local->channel.send(m);
        if (m.verb == "COMMITTED") fault_point(FaultPoint::AgentCommittedOne, static_cast<uint32_t>(local->rank));
    }
    if (m.verb == "DUMP") fault_point(FaultPoint::AgentDumping);
}

void NodeAgent::from_rank(int fd, const Message& m) {
    Local& local = ranks_.at(fd);
    if (m.verb == "REGISTER") {
        local.rank = m.number("rank");
        if (m.has("pid") && m.number("pid") == getppid()) launcher_rank_ = local.rank;
        Message fwd = m;
        fwd.set("node", control::node_name());
        coordinator_.send(fwd);
        return;
    }
    if (local.rank < 0) {
        say("ignored " + m.verb + " from an unregistered local client", 0);
        return;
    }
    Message fwd = m;
    fwd.set("rank", local.rank);  // a rank speaks for itself only
    coordinator_.send(fwd);
}

// The rank whose ckpt-run ran this agent was killed: the coordinator hears
// that it ended (not that its node is out of reach), the node's other
// ranks which rank it was, before the agent ends with it.
void NodeAgent::launcher_died() {
    std::string who = "the ckpt-run that ran this node's agent";
    if (launcher_rank_ >= 0) who = "rank " + std::to_string(launcher_rank_) + " on " + control::node_name();
    for (auto& [fd, local] : ranks_)
        if (local.rank >= 0 && local.rank == launcher_rank_) {  // (its link may not have closed yet)
            rank_left(fd, "has ended (its ckpt-run, which ran the node agent, died)");
            break;
        }
    const DeferSignal whole(SIGTERM);
    for (auto& [fd, local] : ranks_) local.channel.send(Message("DETACHED").set("text", who + " has ended, and the node agent with it"));
    say(who + " has ended: the node agent ends", 2);
}

void NodeAgent::rank_left(int fd, const std::string& why) {
    auto it = ranks_.find(fd);
    if (it == ranks_.end()) return;
    if (it->second.rank >= 0) coordinator_.send(Message("GONE").set("rank", it->second.rank).set("text", why));
    ranks_.erase(it);
}

int NodeAgent::run() {
    const std::string path = control::agent_socket_path(o_.job_id);
    coordinator_ = join_coordinator();
    // A socket left by a killed agent of this job is replaced.
    if (control::connect_unix(path).valid()) fail("another agent of job " + o_.job_id + " already serves " + path);
    unlink(path.c_str());
    // Ended with its launcher, the node's local rank 0 (SIGTERM): the socket goes too.
    const LauncherDeath launcher(path);
    UniqueFd listen = control::listen_unix(path);
    say("serving job " + o_.job_id + " at " + path, 2);
    for (;;) {
        if (launcher.died()) {
            launcher_died();
            break;
        }
        std::vector<pollfd> fds{{coordinator_.fd(), POLLIN, 0}, {listen.get(), POLLIN, 0}, {launcher.fd(), POLLIN, 0}};
        for (auto& [fd, local] : ranks_) fds.push_back({fd, POLLIN, 0});
        if (poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            fail_errno("poll");
        }
        if (fds[0].revents) {
            const bool open = coordinator_.fill();
            while (auto m = coordinator_.buffered()) from_coordinator(*m);
            if (!open) {
                for (auto& [fd, local] : ranks_) local.channel.send(Message("DETACHED").set("text", "the job's coordinator went away (killed or crashed)"));
                say("the job's coordinator went away", 2);
                break;
            }
        }
        if (fds[1].revents & POLLIN) {
            UniqueFd fd(accept4(listen.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            ucred peer{};
            socklen_t len = sizeof peer;
            if (fd.valid() && getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 && peer.uid == getuid()) {
                const int key = fd.get();
                ranks_[key].channel = Channel(std::move(fd));
            } else if (fd.valid()) {
                say("refused a local connection from uid " + std::to_string(peer.uid) + " (pid " + std::to_string(peer.pid) + ")", 0);
            }
        }
        for (size_t i = 3; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            auto it = ranks_.find(fds[i].fd);
            if (it == ranks_.end()) continue;
            const bool open = it->second.channel.fill();
            try {
                while (auto m = it->second.channel.buffered()) from_rank(fds[i].fd, *m);
            } catch (const EngineError& e) {
                say(std::string("dropped a local client: ") + e.what(), 0);
                rank_left(fds[i].fd, "sent a malformed message");
                continue;
            }
            if (!open) rank_left(fds[i].fd, "has ended");
        }
    }
    unlink(path.c_str());
    return 0;
}

}  // namespace

int run_node_agent(const NodeAgentOptions& options) {
    NodeAgent agent(options);
    return agent.run();
}

}  // namespace ckpt::agent
