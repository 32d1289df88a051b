#include "coordinator/ctl_client.hpp"

namespace ckpt::control {

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
    // timeouts end it.
    while (auto m = job.receive(std::chrono::hours(24 * 365))) {
        if (m->verb == "PROGRESS") progress(m->get("text"));
        else if (m->verb == "OK") return {0, m->get("text")};
        else if (m->verb == "ERROR") return {1, m->get("text")};
    }
    return {1, "the job went away before answering (it may have ended or crashed)"};
}

}  // namespace ckpt::control
