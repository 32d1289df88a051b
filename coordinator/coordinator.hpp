// The job's coordinator: one per job, started beside rank 0. Node agents
// and ckpt-ctl connect to it over TCP with the job's secret; it drives every
// coordinated checkpoint (FREEZE -> DUMP -> COMMIT -> RESUME or STOP) and the
// coordinated restart (RESTORE -> RELEASE), and aborts the whole round on
// any failure or timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ckpt::control {

struct CoordinatorOptions {
    std::string ckpt_dir;
    std::string job_id;
    uint32_t size = 1;                 // ranks in the job
    unsigned keep = 2;
    unsigned interval_seconds = 0;     // 0: only on request
    std::string restart;               // "" (a new run), "auto" or a checkpoint path
    std::chrono::seconds phase_timeout{600};
    std::chrono::seconds join_timeout{120};  // for every rank to register
    int verbosity = 1;
};

// Runs until every rank has left (or registration failed); returns the exit
// status of the coordinator process.
int run_coordinator(const CoordinatorOptions& options);

}  // namespace ckpt::control
