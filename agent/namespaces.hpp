// Namespaces of a job: a PID namespace (exact PIDs on restore), a user
// namespace when not root (so that an unprivileged user may create it and
// give PIDs), and on restore a time namespace in which CLOCK_MONOTONIC and
// CLOCK_BOOTTIME go on from their values at checkpoint time.
#pragma once

#include <cstdint>
#include <optional>

namespace ckpt::agent {

struct SavedClocks {
    int64_t monotonic_ns = 0;
    int64_t boottime_ns = 0;
};

// The launcher, while still single-threaded: a user namespace when not
// root, in which the launcher keeps the capabilities the engine needs.
void enter_user_namespace();
// A helper process just before it forks the job's init: the PID namespace
// (and, on restore, the time namespace) for its children. A process that
// did this cannot start threads any more, hence the helper.
void unshare_job_namespaces(const std::optional<SavedClocks>& clocks);

// The job's init, first thing: a mount namespace of its own with a /proc
// that shows the job's PID namespace, so that /proc/self/task/<tid> and
// friends agree with the PIDs the program sees.
void mount_job_proc();

}  // namespace ckpt::agent
