// ckpt-run: runs a program (or restores one) as the job's process tree, in
// its own namespaces, and serves checkpoint requests for it.
#pragma once

#include "image/compression.hpp"
#include "slurm/slurm_job.hpp"

#include <string>
#include <vector>

namespace ckpt::agent {

struct LaunchOptions {
    std::string ckpt_dir;
    std::vector<std::string> argv;  // empty on restart
    std::string restart;            // "" (run), "auto", or a checkpoint path
    unsigned interval_seconds = 0;
    unsigned keep = 2;
    image::Compression compression = image::Compression::None;
    bool truncate_written = true;
    int verbosity = 1;  // 0 quiet, 1 normal, 2 verbose
    std::string job_id;             // "" : from the environment (job_place.hpp)
    unsigned phase_timeout = 600;   // seconds a checkpoint or restore phase may take
    unsigned connect_timeout = 120; // seconds for the job's ranks to find each other
    std::string mpi = "auto";       // auto, openmpi or none: whether the program gets the MPI layer
    slurm::Options slurm;           // checkpoint signals, --before-walltime (slurm/)
};

// Exit status of ckpt-run after `checkpoint --stop`: the program was saved
// and ended, to be resumed later (EX_TEMPFAIL of sysexits.h).
inline constexpr int kExitStopped = 75;

// Runs the job to its end; returns the exit status ckpt-run should end
// with (the program's, or 128+signal).
int run_launcher(const LaunchOptions& options);

// ckpt-run started in another role by a rank's ckpt-run ("--role=..." as
// first argument): the job's coordinator or a node agent. Returns the exit
// status.
int run_role(int argc, char** argv);

}  // namespace ckpt::agent
