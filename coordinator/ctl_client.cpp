#include "coordinator/ctl_client.hpp"

#include "image/checkpoint_dir.hpp"

#include <algorithm>
#include <filesystem>

namespace ckpt::control {

namespace {

// What the coordinator last said of the checkpoint round in progress.
struct RoundSeen {
    std::string phase;  // freeze, dump, commit...; "" before the round starts
    int64_t sequence = 0;
    int64_t timeout = 0;  // the job's phase timeout, seconds
};

// Why a checkpoint request ended without an answer: the coordinator went
// away (killed, crashed) or stalled, and what became of the checkpoint.
std::string no_answer(const std::string& dir, const RoundSeen& round, bool stalled, int64_t waited) {
    if (round.phase.empty()) return "the job went away before answering (it may have ended or crashed)";
    const std::string name = image::checkpoint_name(static_cast<uint64_t>(round.sequence));
    std::string why = stalled ? "the job's coordinator said nothing for " + std::to_string(waited) + " s in the " + round.phase +
                                    " phase of checkpoint " + std::to_string(round.sequence) + ": it is stalled"
                              : "the job's coordinator went away in the " + round.phase + " phase of checkpoint " +
                                    std::to_string(round.sequence) + " (it was killed or crashed)";
    try {
        image::CheckpointDir d(dir);
        const auto all = d.committed();
        const auto latest = d.latest();
        const std::string now_latest = latest ? std::filesystem::path(latest->path).filename().string() : "nothing";
        const bool committed =
            std::any_of(all.begin(), all.end(), [&](const auto& c) { return c.sequence == static_cast<uint64_t>(round.sequence); });
        if (committed && now_latest == name) return why + "; " + dir + "/" + name + " was committed all the same, and `latest` names it";
        if (committed)
            return why + "; " + dir + "/" + name + " was committed all the same, but `latest` still names " + now_latest +
                   " (`ckpt-run --restart` takes the newest committed checkpoint, " + name + ")";
        return why + "; " + name + " is not committed, `latest` names " + now_latest;
    } catch (const std::exception& e) {
        return why + " (" + dir + ": " + e.what() + ")";
    }
}

}  // namespace

CtlAnswer ask_job(const std::string& dir, const Message& request, const std::function<void(const std::string&)>& progress,
                  const std::string& expect_job) {
    Channel job;
    std::string job_id;
    try {
        auto where = read_rendezvous(dir);
        if (!where) return {3, "no job is running with --ckpt-dir " + dir + " (no " + rendezvous_path(dir) + ")"};
        job_id = where->job_id;
        if (!expect_job.empty() && job_id != expect_job)
            return {3, rendezvous_path(dir) + " is job " + job_id + "'s, not " + expect_job + "'s (not started yet?)"};
        try {
            job = Channel(connect_tcp(where->host, where->port));
        } catch (const agent::EngineError& e) {
            return {3, "no job is running with --ckpt-dir " + dir + ": job " + job_id + " does not answer (it has ended or was killed): " +
                           e.what()};
        }
        Message hello("HELLO");
        hello.set("role", "ctl").set("secret", where->secret);
        if (!job.send(hello) || !job.send(request)) return {3, "job " + job_id + " closed the connection"};
    } catch (const std::exception& e) {
        return {3, e.what()};
    }
    // A checkpoint takes as long as it takes; the coordinator's phase
    // timeouts end it. Once the round runs, each message says its phase and
    // the phase timeout T: a phase ends within T and the commit takes less
    // than another T, so a coordinator silent for 2 T + 5 s is stalled.
    RoundSeen round;
    for (;;) {
        const auto patience = round.timeout > 0 ? std::chrono::seconds(2 * round.timeout + 5) : std::chrono::hours(24 * 365);
        const auto asked = std::chrono::steady_clock::now();
        auto m = job.receive(patience);
        if (!m) {
            const bool stalled = std::chrono::steady_clock::now() - asked >= patience;
            return {1, no_answer(dir, round, stalled, 2 * round.timeout + 5)};
        }
        if (m->verb == "PROGRESS") {
            if (m->has("phase")) round = {m->get("phase"), m->number("sequence"), m->number("timeout")};
            progress(m->get("text"));
        } else if (m->verb == "OK") {
            return {0, m->get("text")};
        } else if (m->verb == "ERROR") {
            return {1, m->get("text")};
        }
    }
}

}  // namespace ckpt::control
