// A stopped process the engine works on, from outside: its threads under
// ptrace, its memory through /proc/PID/mem, and system calls run inside it.
// Dump and restore both drive processes through this.
#pragma once

#include "agent/ptrace.hpp"
#include "agent/sys.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt::agent {

class Task {
public:
    Task(pid_t outer_pid, int32_t pid);

    pid_t outer() const { return outer_; }  // pid as the engine sees it
    int32_t pid() const { return pid_; }    // pid inside the job's PID namespace
    std::string name() const;               // "process 12 (outer 3456)" for messages

    std::vector<Tracee>& threads() { return threads_; }  // [0] is the leader
    Tracee& leader() { return threads_.front(); }
    std::vector<int32_t>& inner_tids() { return inner_tids_; }

    // Memory of the task (works on any mapping, whatever its protection).
    void read(uint64_t addr, void* out, size_t size) const;
    void write(uint64_t addr, const void* data, size_t size) const;
    template <class T>
    T read_value(uint64_t addr) const {
        T v{};
        read(addr, &v, sizeof v);
        return v;
    }

    // Where injected system calls run: the address of a `syscall`
    // instruction in the task, and a page of scratch memory for their
    // arguments and results.
    void set_syscall_insn(uint64_t addr) { insn_ = addr; }
    uint64_t syscall_insn() const { return insn_; }
    void set_scratch(uint64_t addr) { scratch_ = addr; }
    uint64_t scratch() const { return scratch_; }

    // Runs a system call in the leader (or thread t); throws EngineError
    // naming `what` on a negative result unless allow_fail.
    long call(const std::string& what, long nr, std::initializer_list<uint64_t> args, size_t thread = 0, bool allow_fail = false);

    void open_memory();

private:
    pid_t outer_;
    int32_t pid_;
    std::vector<Tracee> threads_;
    std::vector<int32_t> inner_tids_;
    UniqueFd mem_;
    uint64_t insn_ = 0;
    uint64_t scratch_ = 0;
};

inline constexpr uint64_t kPage = 4096;

}  // namespace ckpt::agent
