#include "agent/job_place.hpp"

#include "agent/sys.hpp"
#include "slurm/slurm_job.hpp"

#include <charconv>
#include <cstdlib>
#include <optional>

namespace ckpt::agent {

namespace {

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
}

uint32_t env_number(const char* name, uint32_t fallback) {
    auto v = env(name);
    if (!v) return fallback;
    uint32_t n = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || ptr != v->data() + v->size()) fail(std::string(name) + "=" + *v + " is not a number");
    return n;
}

std::string host_name() {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}

}  // namespace

JobPlace detect_job_place(const std::string& explicit_job_id) {
    JobPlace p;
    if (env("OMPI_COMM_WORLD_RANK")) {
        p.launcher = "Open MPI";
        p.rank = env_number("OMPI_COMM_WORLD_RANK", 0);
        p.size = env_number("OMPI_COMM_WORLD_SIZE", 1);
        p.local_rank = env_number("OMPI_COMM_WORLD_LOCAL_RANK", 0);
        // Every rank of one mpirun shares its PMIx namespace (and ORTE job id).
        if (auto ns = env("PMIX_NAMESPACE")) p.job_id = "ompi-" + *ns;
        else if (auto id = env("OMPI_MCA_ess_base_jobid")) p.job_id = "ompi-" + *id;
    } else if (env("SLURM_PROCID") && env("SLURM_STEP_ID")) {
        p.launcher = "SLURM";
        p.rank = env_number("SLURM_PROCID", 0);
        p.size = env("SLURM_STEP_NUM_TASKS") ? env_number("SLURM_STEP_NUM_TASKS", 1) : env_number("SLURM_NTASKS", 1);
        p.local_rank = env_number("SLURM_LOCALID", 0);
        // The same on every rank of the step; another on the next run of a requeued job.
        auto job = slurm::current_job();
        if (!job) fail("SLURM_STEP_ID is set but SLURM_JOB_ID is not");
        p.job_id = slurm::run_id(*job);
    } else {
        p.launcher = "none";
        p.job_id = "single-" + host_name() + "-" + std::to_string(getpid());
    }
    if (!explicit_job_id.empty()) p.job_id = explicit_job_id;
    if (p.job_id.empty()) fail("cannot tell which job this rank belongs to: " + p.launcher + " set no job id; give --job-id");
    if (p.size == 0 || p.rank >= p.size)
        fail("rank " + std::to_string(p.rank) + " is outside a job of " + std::to_string(p.size) + " rank(s) (" + p.launcher + ")");
    return p;
}

}  // namespace ckpt::agent
