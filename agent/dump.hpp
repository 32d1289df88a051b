// Checkpoint of a process tree: freeze every task of the job's PID
// namespace, write the rank image, then thaw or end the tree.
#pragma once

#include "agent/cgroup.hpp"
#include "agent/engine.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ckpt::agent {

// Every task of a PID namespace (but its init) stopped under ptrace. The
// destructor thaws whatever is still attached: a failed checkpoint never
// leaves the program frozen.
class FrozenTree {
public:
    // Seizes and stops every thread of every process in init's PID
    // namespace. With a cgroup, the job is frozen meanwhile so that nothing
    // can fork; without (or if freezing fails), passes repeat until no new
    // task or thread appears.
    // Threads found inside restart_syscall get their original call back
    // from `origins`; thaw() notes there the calls it lets threads resume.
    FrozenTree(pid_t init_outer, JobCgroup* cgroup, RestartOrigins& origins);
    FrozenTree(const FrozenTree&) = delete;
    FrozenTree& operator=(const FrozenTree&) = delete;
    ~FrozenTree();

    std::vector<std::unique_ptr<Task>>& tasks() { return tasks_; }
    const std::vector<TaskRecord>& records() const { return records_; }
    const std::string& method() const { return method_; }
    pid_t init() const { return init_; }

    void thaw();
    // SIGKILL to every task while frozen (checkpoint --stop).
    void kill_all();

private:
    pid_t init_;
    RestartOrigins& origins_;
    std::string method_ = "ptrace";
    std::vector<std::unique_ptr<Task>> tasks_;  // live tasks, parents first
    std::vector<TaskRecord> records_;           // every task, zombies too, parents first
};

struct DumpProgress {
    std::function<void(const std::string&)> phase;  // "dumping process 12"
};

// Writes the tree into writer (tasks must be frozen). Throws EngineError or
// ImageError; the caller aborts the checkpoint and thaws.
void dump_tree(FrozenTree& tree, RankWriter& writer, pid_t launcher, const DumpProgress& progress);

}  // namespace ckpt::agent
