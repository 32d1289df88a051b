// Restore of a process tree, in named stages:
//   1. load      the tree's tables are read (page data stays on disk)
//   2. share     init creates every shared object once (files, pipes,
//                shared memory) so that sharing is inherited
//   3. fork      every process is created with its exact PID (clone3
//                set_tid) by its parent, still running restorer code,
//                gets its session and group (stand-ins recreate those of
//                exited leaders, see plan_spawn), installs its descriptors,
//                cwd and umask, and reports ready
//   4. transform the tracer replaces each process's memory with the image's
//                through injected system calls, creates its threads with
//                their TIDs, and restores signals, timers, limits
//   5. release   registers are set and every thread of every process is
//                let go at once
#pragma once

#include "agent/engine.hpp"
#include "agent/files.hpp"

#include <functional>
#include <memory>
#include <string>

namespace ckpt::agent {

// Descriptors of the restore itself lie at or above this number, clear of
// every descriptor of the program.
int restore_fd_base(const TreeImage& tree);

// Stage 2 and 3, in the restore's init (PID 1 of the new namespace).
// Returns the PID of the first process of the tree (the program); every
// stand-in init forked is reaped by then.
int32_t spawn_tree(const TreeImage& tree, const RankReader& reader, int ready_fd, const FileOptions& options);

// A restored tree after stage 4: every thread stopped under ptrace, ready
// to go. Destroyed before release(), it kills every process of the tree:
// a half-restored (or never released) process never runs.
class RestoredTree {
public:
    RestoredTree() = default;
    RestoredTree(const RestoredTree&) = delete;
    RestoredTree& operator=(const RestoredTree&) = delete;
    ~RestoredTree();
    // Stage 5: every thread of every process is let go at once. The calls
    // threads are released into are noted in `origins`.
    void release(RestartOrigins& origins);
    // The outer PID of the process with this PID in the job's namespace (0
    // for none; pid 0 means the tree's first process).
    pid_t outer_pid(int32_t pid) const;

private:
    friend std::unique_ptr<RestoredTree> transform_tree(const TreeImage&, const RankReader&, int,
                                                        const std::function<void(const std::string&)>&);
    std::vector<pid_t> processes_;  // outer PIDs
    std::vector<std::unique_ptr<Task>> tasks_;
    std::vector<const TaskImage*> images_;
    bool released_ = false;
};

// Stage 4, in the tracer. ready_fd receives one message per live process
// and init's when the stand-ins are gone (SO_PASSCRED set). On failure throws after killing what it restored; the
// caller also kills the namespace's init.
std::unique_ptr<RestoredTree> transform_tree(const TreeImage& tree, const RankReader& reader, int ready_fd,
                                             const std::function<void(const std::string&)>& progress);

}  // namespace ckpt::agent
