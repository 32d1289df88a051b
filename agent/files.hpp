// Files: the descriptor table, open file descriptions (stored once, shared
// again), pipes with their unread bytes, devices, descriptors of memfds and
// deleted files (their content is a shared memory object, memory.cpp), and
// the launcher's stdio.
#pragma once

#include "agent/engine.hpp"

namespace ckpt::agent {

struct FileOptions {
    // Files open for writing are cut back to their size at checkpoint time,
    // so output written after the checkpoint is not duplicated.
    bool truncate_written = true;
};

// Writes /task/<pid>/fds; open file descriptions and pipes are collected in
// state. Throws EngineError naming the process, fd and resource for anything
// that cannot be restored.
void dump_files(Task& task, DumpState& state, hid_t task_group);
void dump_shared_files(DumpState& state);

// In the restore's init: every open file description and pipe, at fds >=
// fds.lowest, inherited by every restoring process. Descriptions of memfds
// and deleted files are opened on the objects create_shared_memory made
// (it runs first), which then get their mode and seals.
void create_shared_files(const TreeImage& tree, SharedFds& fds, const FileOptions& options);
// In a restoring process (its own code): installs its descriptor table.
void install_fds(const TaskImage& task, const SharedFds& fds);

}  // namespace ckpt::agent
