// ptrace of one thread: seize, stop, registers, and running system calls
// inside it ("injection"), the way both dump and restore drive tasks.
#pragma once

#include "agent/sys.hpp"

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::agent {

// A thread under ptrace. The destructor detaches a still-attached thread,
// leaving it running as it was.
class Tracee {
public:
    // PTRACE_SEIZE; does not stop the thread. options: PTRACE_O_* bits.
    Tracee(pid_t tid, unsigned long options);
    // A thread the kernel attached on its own (PTRACE_O_TRACECLONE).
    static Tracee adopt(pid_t tid);
    Tracee(const Tracee&) = delete;
    Tracee& operator=(const Tracee&) = delete;
    Tracee(Tracee&& o) noexcept;
    Tracee& operator=(Tracee&& o) noexcept;
    ~Tracee();

    pid_t tid() const { return tid_; }
    bool stopped() const { return stopped_; }
    // Registers at the interrupt stop, before any call was injected: the
    // thread's state to save. orig_rax may be corrected by recall_call().
    const user_regs_struct& stop_regs() const { return stop_regs_; }
    // The thread was stopped inside restart_syscall: nr is the call it
    // continues (see RestartOrigins).
    void recall_call(uint64_t nr) { stop_regs_.orig_rax = nr; }
    // PTRACE_INTERRUPT and wait for the stop. Signals that arrive meanwhile
    // are delivered (a checkpoint is taken after them). Throws when the
    // thread died.
    void interrupt();
    // The two halves of interrupt(): a frozen (cgroup) thread stops only
    // once thawed, so every thread is asked first and waited for after.
    void request_interrupt();
    void wait_interrupted();
    // wait_interrupted without blocking (block = false): whether the
    // thread has reached its interrupt stop.
    bool poll_interrupted(bool block);
    // Lets a stopped thread run on (PTRACE_CONT), still traced.
    void resume();
    // Waits for the next stop of an attached thread (e.g. a new thread's
    // first stop, or a group stop after seizing a stopped task).
    int wait_stop();
    // Lets a thread marked by resume_interrupted_call enter its call, where it
    // stops again (at the call's entry). Done for every thread of a job
    // before any is released: then no signal can slip in between.
    void enter_restarted_call();
    // Leaves the thread running; sig is delivered when non-zero. A thread
    // that died meanwhile (another thread ended the process) is reaped.
    void detach(int sig = 0);
    // Forget the thread without detaching (it exited).
    void abandon() { attached_ = false; }

    user_regs_struct regs() const;
    void set_regs(const user_regs_struct& r) const;
    // Sets registers that make the thread re-execute the system call it was
    // interrupted in (see restart_interrupted_call) and marks it for
    // enter_restarted_call: a thread known to block in a call must be inside
    // it again when released, so that a signal sent to it afterwards
    // interrupts the call as it would have interrupted the original one.
    void resume_interrupted_call(const user_regs_struct& interrupted, bool same_process);
    std::vector<uint8_t> xstate() const;
    void set_xstate(const std::vector<uint8_t>& x) const;
    uint64_t signal_mask() const;
    // The thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION); size 0
    // when none.
    struct Rseq {
        uint64_t address = 0;
        uint32_t size = 0;
        uint32_t signature = 0;
    };
    Rseq rseq() const;
    void set_signal_mask(uint64_t mask) const;

    // Runs system call nr with args in this stopped thread by pointing it at
    // a `syscall` instruction at insn, and returns the raw result (-errno on
    // failure). The thread's registers and signal mask are left as they
    // were before, unless keep_regs (the thread then sits at the syscall's
    // exit stop).
    long syscall(uint64_t insn, long nr, std::initializer_list<uint64_t> args, bool keep_regs = false);

private:
    Tracee() = default;
    void release() noexcept;  // detach if attached, whatever state the thread is in
    void wait_syscall_stop(const char* phase);
    pid_t tid_ = 0;
    bool attached_ = false;
    bool restart_pending_ = false;
    bool stopped_ = false;  // known to be in a ptrace stop
    user_regs_struct stop_regs_{};
};

// A call the kernel resumes through its restart block (relative sleeps,
// poll, futex waits with a timeout: ERESTART_RESTARTBLOCK) continues in
// restart_syscall once it was interrupted without a handler, and from then
// on its registers no longer say which call it is. Every release of a
// thread into such a call (thaw after a checkpoint, release after a
// restore, where detaching wakes the thread once) is noted here, so that a
// later checkpoint of the same job can save the original call.
class RestartOrigins {
public:
    // regs: the thread's registers inside the original call (orig_rax = nr).
    void note(pid_t tid, const user_regs_struct& regs);
    // The original call of a thread stopped inside restart_syscall at the
    // same instruction, if this thread was released into one.
    std::optional<uint64_t> find(pid_t tid, const user_regs_struct& regs) const;
    // Forgets threads not in `alive` (their TIDs may be reused).
    void keep_only(const std::vector<pid_t>& alive);

private:
    struct Origin {
        uint64_t rip;
        uint64_t nr;
    };
    std::map<pid_t, Origin> origins_;
};

std::string describe_wait_status(int status);

// Registers of a thread that was stopped inside an interruptible system call
// (ax = -ERESTART*), rewritten so that the call runs again when the thread
// resumes, as the kernel's own restart would have done. Needed whenever the
// kernel's restart will not happen: after calls were injected into the thread
// (it then resumes from a syscall-exit stop), or in a restored process.
// same_process: ERESTART_RESTARTBLOCK may use the kernel's restart block
// (restart_syscall); a new process has none, so the original call runs again
// (restart_syscall itself, whose origin is unknown, then returns EINTR).
user_regs_struct restart_interrupted_call(user_regs_struct regs, bool same_process);
bool is_interrupted_call(const user_regs_struct& regs);
// The thread was interrupted inside restart_syscall.
bool in_restart_syscall(const user_regs_struct& regs);

}  // namespace ckpt::agent
