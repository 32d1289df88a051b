// A client of a running job's coordinator: what ckpt-ctl does, also used by
// the SLURM watcher of rank 0 (slurm/watch.cpp) to ask for a checkpoint.
#pragma once

#include "coordinator/protocol.hpp"

#include <functional>
#include <string>

namespace ckpt::control {

struct CtlAnswer {
    int status = 1;    // 0 the job answered OK, 1 it answered ERROR or went away, 3 no job runs with the directory
    std::string text;  // OK's or ERROR's text, or why there is no answer
};

// Sends request to the coordinator published in ckpt_dir and waits for its
// answer; progress gets the text of every PROGRESS message on the way. With
// job_id, a coordinator of another job (an earlier run's address left in the
// directory) counts as none (status 3) and is not contacted.
CtlAnswer ask_job(const std::string& ckpt_dir, const Message& request, const std::function<void(const std::string&)>& progress,
                  const std::string& job_id = "");

}  // namespace ckpt::control
