// Process-wide state: cwd, umask, exe, the mm fields, clocks, credentials,
// resource limits, auxv and CPU affinity; and the plan that recreates the
// tree's parents, sessions and process groups.
#pragma once

#include "agent/engine.hpp"
#include "agent/namespaces.hpp"

#include <map>
#include <vector>

namespace ckpt::agent {

// ---- how stage 3 of a restore recreates the tree ---------------------------
//
// A process gets its session only from the process that forks it (or by
// setsid(), as its leader), and can join a group only while the group
// exists in its session. A session or group whose leader has exited comes
// back through a stand-in: a temporary process with the leader's PID that
// creates it, forks the session's orphans (or lets the group's members in),
// and exits before the program runs. An orphan (a process in a session its
// parent is not in: it was adopted by a child subreaper or init when the
// process that forked it exited) is forked by its session's stand-in (or
// zombie leader), and the exit hands it to its parent.
//
// Every process first makes its own session or group and forks its
// children; once all have, those not yet in their group join it (so every
// group exists by then, whoever leads it); once all have joined, the
// stand-ins exit and are reaped by the process that forked them.
struct SpawnNode {
    int32_t pid = 0;
    bool stand_in = false;     // not a process of the image
    bool new_session = false;  // setsid() first thing
    bool new_group = false;    // setpgid(0, 0) first thing (its PID names a group)
    int32_t join = 0;          // group it joins once every group exists (0: none)
    bool adopts = false;       // a child subreaper while stand-ins or a zombie leader hand it orphans
    std::vector<int32_t> children;  // processes it forks, in order
};

struct SpawnPlan {
    std::map<int32_t, SpawnNode> nodes;  // by PID; 1 is init
    size_t processes = 0;                // every node but init
    size_t joiners = 0;
    size_t stand_ins = 0;
    const SpawnNode& node(int32_t pid) const { return nodes.at(pid); }
};

// Plans the restore of `tasks` (one record per process, zombies included).
// Throws EngineError "process N: why" for a tree that cannot come back.
SpawnPlan plan_spawn(const std::vector<TaskRecord>& tasks);

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
