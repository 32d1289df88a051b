#include "agent/namespaces.hpp"

#include "agent/sys.hpp"

#include <sched.h>
#include <sys/mount.h>

#include <ctime>

namespace ckpt::agent {

namespace {

std::string offset_line(const char* clock, int64_t ns) {
    int64_t sec = ns / 1000000000, nsec = ns % 1000000000;
    if (nsec < 0) {
        nsec += 1000000000;
        sec -= 1;
    }
    return std::string(clock) + " " + std::to_string(sec) + " " + std::to_string(nsec) + "\n";
}

}  // namespace

void enter_user_namespace() {
    if (geteuid() != 0) {
        const uid_t uid = geteuid();
        const gid_t gid = getegid();
        if (unshare(CLONE_NEWUSER) != 0)
            fail_errno("cannot create a user namespace (needed without root; check kernel.unprivileged_userns_clone "
                       "and user.max_user_namespaces)");
        write_text_file("/proc/self/setgroups", "deny");
        write_text_file("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1");
        write_text_file("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1");
    }
}

void unshare_job_namespaces(const std::optional<SavedClocks>& clocks) {
    int flags = CLONE_NEWPID;
    if (clocks) flags |= CLONE_NEWTIME;
    if (unshare(flags) != 0) fail_errno(clocks ? "cannot create PID and time namespaces" : "cannot create a PID namespace");
    if (clocks) {
        // Offsets are fixed before any process enters the namespace.
        write_text_file("/proc/self/timens_offsets",
                        offset_line("monotonic", clocks->monotonic_ns - clock_ns(CLOCK_MONOTONIC)) +
                            offset_line("boottime", clocks->boottime_ns - clock_ns(CLOCK_BOOTTIME)));
    }
}

void mount_job_proc() {
    if (unshare(CLONE_NEWNS) != 0) fail_errno("cannot create a mount namespace for the job");
    // Nothing the job mounts leaks out; mounts made outside still show.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) fail_errno("cannot make / a slave mount");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
        fail_errno("cannot mount /proc for the job's PID namespace");
}

}  // namespace ckpt::agent
