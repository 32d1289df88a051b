#include "agent/task.hpp"

#include <fcntl.h>

namespace ckpt::agent {

Task::Task(pid_t outer_pid, int32_t pid) : outer_(outer_pid), pid_(pid) {}

std::string Task::name() const {
    return "process " + std::to_string(pid_) + " (pid " + std::to_string(outer_) + " outside the job's namespace)";
}

void Task::open_memory() {
    const std::string path = "/proc/" + std::to_string(outer_) + "/mem";
    mem_.reset(open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!mem_.valid()) fail_errno("cannot open the memory of " + name());
}

void Task::read(uint64_t addr, void* out, size_t size) const {
    auto* p = static_cast<uint8_t*>(out);
    while (size > 0) {
        ssize_t n = pread(mem_.get(), p, size, static_cast<off_t>(addr));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail_errno("cannot read memory of " + name() + " at " + hex(addr));
        p += n;
        addr += static_cast<uint64_t>(n);
        size -= static_cast<size_t>(n);
    }
}

void Task::write(uint64_t addr, const void* data, size_t size) const {
    const auto* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
        ssize_t n = pwrite(mem_.get(), p, size, static_cast<off_t>(addr));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail_errno("cannot write memory of " + name() + " at " + hex(addr));
        p += n;
        addr += static_cast<uint64_t>(n);
        size -= static_cast<size_t>(n);
    }
}

long Task::call(const std::string& what, long nr, std::initializer_list<uint64_t> args, size_t thread, bool allow_fail) {
    if (insn_ == 0) fail("no place to run system calls in " + name());
    long r = threads_.at(thread).syscall(insn_, nr, args);
    if (r < 0 && r > -4096 && !allow_fail) {
        errno = static_cast<int>(-r);
        fail_errno(what + " in " + name());
    }
    return r;
}

}  // namespace ckpt::agent
