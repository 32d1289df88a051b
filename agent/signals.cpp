#include "agent/signals.hpp"

#include "agent/procfs.hpp"
#include "image/table.hpp"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <cstring>

namespace ckpt::agent {

namespace {

// The kernel's struct sigaction on x86-64 (rt_sigaction with sigsetsize 8).
struct KernelSigaction {
    uint64_t handler;
    uint64_t flags;
    uint64_t restorer;
    uint64_t mask;
};

// A signal that is ignored (SIG_IGN, or SIG_DFL of a signal whose default
// is to be ignored) and not blocked is thrown away by the kernel when it is
// sent, except to a traced task: the tracer may want to see it. So one sent
// while the engine traces the program (SLURM's SIGCONT that comes with every
// signal it sends, forwarded by ckpt-run during a checkpoint) is queued, but
// it is no part of the program's state, and a restored thread would stop
// on it instead of resuming. It is not saved.
bool discarded_untraced(const std::vector<SigactionRecord>& actions, uint32_t signo, uint64_t blocked) {
    if (signo == 0 || signo > 64 || (blocked >> (signo - 1)) & 1) return false;
    for (const auto& a : actions)
        if (a.signo == signo)
            return a.handler == reinterpret_cast<uint64_t>(SIG_IGN) ||
                   (a.handler == reinterpret_cast<uint64_t>(SIG_DFL) &&
                    (signo == SIGCHLD || signo == SIGCONT || signo == SIGURG || signo == SIGWINCH));
    return false;
}

void peek_queue(Task& task, size_t thread, bool shared, int32_t tid, const std::vector<SigactionRecord>& actions,
                std::vector<PendingSignalRecord>& out) {
    // (A signal for the whole process is taken by a thread that does not block it; the leader's mask stands for them.)
    const uint64_t blocked = task.threads()[thread].signal_mask();
    for (uint64_t off = 0;; ++off) {
        __ptrace_peeksiginfo_args args{off, shared ? static_cast<uint32_t>(PTRACE_PEEKSIGINFO_SHARED) : 0u, 1};
        siginfo_t info{};
        long n = ptrace(PTRACE_PEEKSIGINFO, task.threads()[thread].tid(), &args, &info);
        if (n < 0) fail_errno("cannot read the pending signals of " + task.name());
        if (n == 0) return;
        if (discarded_untraced(actions, static_cast<uint32_t>(info.si_signo), blocked)) continue;
        PendingSignalRecord r;
        r.tid = shared ? 0 : tid;
        r.signo = static_cast<uint32_t>(info.si_signo);
        static_assert(sizeof info == 128);
        std::memcpy(r.siginfo.data(), &info, sizeof info);
        out.push_back(r);
    }
}

}  // namespace

void dump_signals(Task& task, hid_t task_group) {
    // Every signal, default ones too: a program may have set flags or a
    // restorer on a default disposition and look at them later.
    std::vector<SigactionRecord> actions;
    for (uint32_t sig = 1; sig <= 64; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP || sig == 32 || sig == 33) continue;
        task.call("cannot read the handler of signal " + std::to_string(sig), SYS_rt_sigaction, {sig, 0, task.scratch(), 8});
        const auto ka = task.read_value<KernelSigaction>(task.scratch());
        actions.push_back({sig, 0, ka.handler, ka.flags, ka.restorer, ka.mask});
    }
    write_table(task_group, "sigactions", actions);
    std::vector<PendingSignalRecord> pending;
    peek_queue(task, 0, true, 0, actions, pending);
    for (size_t i = 0; i < task.threads().size(); ++i) peek_queue(task, i, false, task.inner_tids()[i], actions, pending);
    write_table(task_group, "pending_signals", pending);
}

void reset_signals_in_restorer() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

void restore_sigactions(Task& task, const TaskImage& image, const Trampoline& tr) {
    for (const auto& a : image.sigactions) {
        KernelSigaction ka{a.handler, a.flags, a.restorer, a.mask};
        task.write(tr.args(), &ka, sizeof ka);
        task.call("cannot restore the handler of signal " + std::to_string(a.signo), SYS_rt_sigaction, {a.signo, tr.args(), 0, 8});
    }
}

void restore_pending_signals(Task& task, const TaskImage& image, const Trampoline& tr) {
    for (const auto& p : image.pending) {
        task.write(tr.args(), p.siginfo.data(), p.siginfo.size());
        // Queued from inside the process itself, so any si_code is accepted.
        if (p.tid == 0)
            task.call("cannot queue signal " + std::to_string(p.signo), SYS_rt_sigqueueinfo, {static_cast<uint64_t>(task.pid()), p.signo, tr.args()});
        else
            task.call("cannot queue signal " + std::to_string(p.signo), SYS_rt_tgsigqueueinfo,
                      {static_cast<uint64_t>(task.pid()), static_cast<uint64_t>(p.tid), p.signo, tr.args()});
    }
}

}  // namespace ckpt::agent
