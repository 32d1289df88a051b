// The job's cgroup, used as a freezer: while it is frozen no task of the
// job can fork or start a thread, so one ptrace pass catches them all.
// cgroup v2 (cgroup.freeze) where a cgroup2 hierarchy is writable, else the
// v1 freezer; where neither is (an unprivileged user without delegation),
// none, and the engine freezes with ptrace alone.
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

namespace ckpt::agent {

class JobCgroup {
public:
    // A new cgroup beside the caller's, or nullptr when none can be made.
    static std::unique_ptr<JobCgroup> create(const std::string& name);
    JobCgroup(const JobCgroup&) = delete;
    JobCgroup& operator=(const JobCgroup&) = delete;
    ~JobCgroup();  // thaws and removes the (by then empty) cgroup

    // Moves the calling process into the cgroup (its children follow).
    void join_self() const;
    // Freezes every task of the cgroup and waits until it is frozen;
    // throws EngineError on a timeout (the caller thaws).
    void freeze();
    void thaw();
    const std::string& method() const { return method_; }

private:
    JobCgroup(std::string path, bool v2);
    std::string path_;
    bool v2_ = true;
    bool frozen_ = false;
    std::string method_;
};

}  // namespace ckpt::agent
