// ckpt under SLURM: which job this is, where its checkpoints live, whether a
// run resumes, which signals mean "checkpoint and stop", and how much wall
// time the job has left. Only the environment SLURM gives every task and
// SLURM's own commands (squeue) are used; no SLURM library is linked.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::slurm {

// The SLURM job the calling process belongs to (SLURM_JOB_ID), if any.
struct Job {
    std::string id;                       // SLURM_JOB_ID
    std::optional<unsigned> restarts;     // SLURM_RESTART_COUNT: unset on a first run
    std::optional<std::string> step;      // SLURM_STEP_ID: unset in the batch script itself
};
std::optional<Job> current_job();

// The id every rank of one srun step computes alike for its rendezvous:
// "slurm-JOB.STEP", with ".rN" after the job's N-th requeue, so that a
// requeued run never takes the address its previous run left in the
// checkpoint directory for its own.
std::string run_id(const Job& job);

// The directory a job's checkpoints live in, under the --ckpt-dir the user
// gave: DIR/slurm-JOB (or DIR/NAME for --job-id NAME), the same on every run
// of the job, requeued or not. DIR itself when it already is that directory.
std::string job_dir_name(const Job& job, const std::string& explicit_job_id);
std::string job_dir(const std::string& base, const std::string& name);

// What ckpt-run's own options say about SLURM.
struct Options {
    std::vector<int> checkpoint_signals;  // "checkpoint and stop" when one arrives
    unsigned before_walltime = 0;         // seconds: checkpoint and stop this long before the time limit (0: never)
};
// "USR1", "SIGUSR1", "10": a signal ckpt-run can be told means checkpoint
// and stop; throws agent::EngineError naming the allowed ones otherwise.
int parse_checkpoint_signal(const std::string& name);
// "90", "90s", "15m", "1h", "1:30" (m:s), "1:00:00": seconds; throws agent::EngineError.
unsigned parse_duration(const std::string& text, const std::string& option);

// ckpt-run's decisions before the launcher starts, under SLURM:
// the checkpoint directory becomes the job's, and a run that finds a
// committed checkpoint there resumes from it (restart = "auto") unless told
// --restart=never. restart is "", "auto", "never" or a path; argv the
// program. Returns the lines rank 0 prints about it (nothing elsewhere).
struct LaunchPlan {
    bool slurm = false;   // inside a SLURM job
    std::string ckpt_dir;
    std::string restart;  // "", "auto" or a path, for the launcher
    bool drop_program = false;  // resumed (also with --restart under SLURM): the program given is the checkpoint's
    std::vector<std::string> notes;
};
LaunchPlan plan_launch(const std::string& ckpt_dir, const std::string& restart, bool have_program, const std::string& explicit_job_id,
                       unsigned rank);

// The arguments of rank 0's watcher (`ckpt-run --role=slurm-watch ...`), the
// process that asks the coordinator for a checkpoint and stop when a
// checkpoint signal arrives or the time limit comes near; nullopt when
// neither is asked for or this is not rank 0.
// run is the job id of this run's coordinator (job_place.hpp).
std::optional<std::vector<std::string>> watcher_args(const Options& o, const std::string& ckpt_dir, const std::string& run, unsigned rank,
                                                     int verbosity);
// The launcher got signal sig: true when it means checkpoint and stop (it
// is then not passed on to the program; rank 0 hands it to its watcher).
bool take_checkpoint_signal(const Options& o, int sig, pid_t watcher);
// `ckpt-run --role=slurm-watch ...`; returns the exit status.
int run_watcher(int argc, char** argv);

// Seconds the job has left: from `squeue -h -j JOB -o %L` (it follows
// `scontrol update TimeLimit`), else SLURM_JOB_END_TIME. nullopt when the
// job has no limit; throws agent::EngineError when neither can tell.
std::optional<long> time_left(const std::string& job_id);
// squeue's %L: "UNLIMITED", "[D-]H:MM:SS", "M:SS"; nullopt for no limit.
std::optional<long> parse_time_left(const std::string& text);

// Under SLURM, marks close-on-exec every socket the task inherited (SLURM
// 22.05's pmix plugin leaves slurmstepd's listening socket open in every
// task, and a program holding a socket cannot be checkpointed), except the
// one PMI_FD names. Returns what it did, for -v.
std::vector<std::string> keep_inherited_sockets_from_program();

// ckpt-ctl's directory: --ckpt-dir DIR (a job's directory, or the one that
// holds DIR/slurm-$SLURM_JOB_ID when run inside the job), --job-id JOB with
// or without DIR (DIR/slurm-JOB, or the job's entry in the registry that
// ckpt-run keeps: $CKPT_JOBS_DIR, default ~/.ckpt/jobs). Throws
// agent::EngineError saying what it looked for.
std::string ctl_dir(const std::string& ckpt_dir, const std::string& job_id);
// Rank 0 records where a SLURM job's checkpoints are, for ckpt-ctl --job-id.
void register_job_dir(const Job& job, const std::string& dir);
std::string registry_dir();

}  // namespace ckpt::slurm
