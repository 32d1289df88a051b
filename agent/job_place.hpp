// Where this ckpt-run stands in its job: rank, size, rank on the node, and
// an id every rank of the job computes alike, from what the launcher that
// started it (Open MPI's mpirun, PMIx, SLURM's srun) put in the environment.
#pragma once

#include <cstdint>
#include <string>

namespace ckpt::agent {

struct JobPlace {
    uint32_t rank = 0;
    uint32_t size = 1;
    uint32_t local_rank = 0;
    std::string job_id;
    std::string launcher;  // "Open MPI", "SLURM", "none"
};

// explicit_job_id (--job-id) wins over the environment's. Throws EngineError
// when the environment is inconsistent (rank outside 0..size-1, a number
// that is not one).
JobPlace detect_job_place(const std::string& explicit_job_id);

}  // namespace ckpt::agent
