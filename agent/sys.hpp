// Small system-level building blocks of the engine: errors that carry
// context, an owning file descriptor, and reading whole /proc files.
#pragma once

#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <ctime>
#include <unistd.h>
#include <utility>

namespace ckpt::agent {

// An engine error: says which process/thread/fd/resource and why.
class EngineError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& what) { throw EngineError(what); }
// Throws with strerror(errno) appended.
[[noreturn]] inline void fail_errno(const std::string& what) {
    const int err = errno;
    throw EngineError(what + ": " + strerror(err));
}

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~UniqueFd() { reset(); }
    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

// Holds a signal back in this thread while it lives; a handler for it runs
// when it ends. For work that must not be cut in the middle, such as
// handing one message to every peer.
class DeferSignal {
public:
    explicit DeferSignal(int sig);
    DeferSignal(const DeferSignal&) = delete;
    DeferSignal& operator=(const DeferSignal&) = delete;
    ~DeferSignal();

private:
    sigset_t old_{};
};

// SIGTERM in a service of a rank's ckpt-run (its coordinator, its node
// agent), which is its parent: at the job's end the launcher sends it and
// waits, and the service unlinks `path` and exits 0 at once, as before. When
// the launcher died without ending it (SIGKILL, a crash), SIGTERM comes as
// the parent-death signal: then fd() becomes readable and died() is true,
// so that the service can tell its peers which rank was lost before it ends.
// One per process (the handler's state is static).
class LauncherDeath {
public:
    explicit LauncherDeath(const std::string& path);
    LauncherDeath(const LauncherDeath&) = delete;
    LauncherDeath& operator=(const LauncherDeath&) = delete;
    int fd() const;
    bool died() const;
};

// "0x7f12..." for messages.
std::string hex(uint64_t value);
// "3.2 GiB" for messages.
std::string human_bytes(double bytes);

// clock_gettime in nanoseconds.
int64_t clock_ns(clockid_t clock);

// Reads a whole (small, /proc) file; throws naming the path.
std::string read_text_file(const std::string& path);
// Like read_text_file but returns false instead of throwing when absent.
bool try_read_text_file(const std::string& path, std::string& out);
void write_text_file(const std::string& path, const std::string& text);
std::string read_link(const std::string& path);

// ckpt-run keeps its own descriptors above those of the program (from
// 1000 up): it raises its soft RLIMIT_NOFILE to the hard limit at start,
// and a program it starts gets the original limit back.
void raise_descriptor_limit();
void restore_descriptor_limit();

// Full read/write loops over a descriptor.
void write_all(int fd, const void* data, size_t size, const std::string& what);
size_t read_full(int fd, void* data, size_t size);  // short only at EOF

}  // namespace ckpt::agent
