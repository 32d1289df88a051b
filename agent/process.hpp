// Process-wide state: cwd, umask, exe, the mm fields, clocks, credentials,
// resource limits, auxv and CPU affinity.
#pragma once

#include "agent/engine.hpp"
#include "agent/namespaces.hpp"

namespace ckpt::agent {

void dump_process(Task& task, hid_t task_group);

// Clock readings of the job's time namespace as its processes see them.
SavedClocks job_clocks(pid_t outer_pid);

// In the restorer's own code.
void apply_process_in_restorer(const TaskImage& image);
// From outside, once the process is restored: limits and CPU affinity.
void restore_process_outside(Task& task, const TaskImage& image);
// Through the trampoline: child subreaper and parent-death signal.
void restore_process_injected(Task& task, const TaskImage& image, const Trampoline& trampoline);
// Last, per thread: drops the capabilities the restorer had and the
// program did not.
void restore_credentials(Task& task, const TaskImage& image, const Trampoline& trampoline);

}  // namespace ckpt::agent
