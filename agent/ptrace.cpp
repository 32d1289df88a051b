#include "agent/ptrace.hpp"

#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <utility>

namespace ckpt::agent {

namespace {
std::string who(pid_t tid) { return "thread " + std::to_string(tid); }
}  // namespace

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    if (WIFSTOPPED(status)) return std::string("stopped by signal ") + strsignal(WSTOPSIG(status));
    return "status " + std::to_string(status);
}

Tracee::Tracee(pid_t tid, unsigned long options) : tid_(tid) {
    if (ptrace(PTRACE_SEIZE, tid, nullptr, options) != 0) fail_errno("cannot ptrace " + who(tid));
    attached_ = true;
}

bool is_interrupted_call(const user_regs_struct& r) {
    return restart_interrupted_call(r, true).rip != r.rip;
}

namespace {
constexpr long kErestartSys = -512, kErestartNoIntr = -513, kErestartNoHand = -514, kErestartRestartBlock = -516;
}  // namespace

bool in_restart_syscall(const user_regs_struct& r) {
    return r.orig_rax == SYS_restart_syscall && static_cast<long>(r.rax) == kErestartRestartBlock;
}

user_regs_struct restart_interrupted_call(user_regs_struct r, bool same_process) {
    const long ax = static_cast<long>(r.rax);
    if (static_cast<long>(r.orig_rax) >= 0) {
        if (ax == kErestartSys || ax == kErestartNoIntr || ax == kErestartNoHand) {
            r.rax = r.orig_rax;
            r.rip -= 2;  // back onto the syscall instruction
        } else if (ax == kErestartRestartBlock && !same_process && r.orig_rax == SYS_restart_syscall) {
            r.rax = static_cast<uint64_t>(-EINTR);  // what restart_syscall without its block returns
        } else if (ax == kErestartRestartBlock) {
            r.rax = same_process ? SYS_restart_syscall : r.orig_rax;
            r.rip -= 2;
        } else if (ax == -EINTR && (r.orig_rax == SYS_epoll_wait || r.orig_rax == SYS_epoll_pwait || r.orig_rax == SYS_epoll_pwait2)) {
            // epoll_wait fails with EINTR when its thread is merely stopped
            // (signal(7)); the stop was ours, so the wait goes on.
            r.rax = r.orig_rax;
            r.rip -= 2;
        }
    }
    r.orig_rax = ~uint64_t{0};  // and no second restart by the kernel
    return r;
}

Tracee Tracee::adopt(pid_t tid) {
    Tracee t;
    t.tid_ = tid;
    t.attached_ = true;
    return t;
}

Tracee::Tracee(Tracee&& o) noexcept
    : tid_(o.tid_),
      attached_(std::exchange(o.attached_, false)),
      restart_pending_(std::exchange(o.restart_pending_, false)),
      stopped_(std::exchange(o.stopped_, false)),
      stop_regs_(o.stop_regs_) {}

Tracee& Tracee::operator=(Tracee&& o) noexcept {
    if (this != &o) {
        release();
        tid_ = o.tid_;
        attached_ = std::exchange(o.attached_, false);
        restart_pending_ = std::exchange(o.restart_pending_, false);
        stopped_ = std::exchange(o.stopped_, false);
        stop_regs_ = o.stop_regs_;
    }
    return *this;
}

Tracee::~Tracee() { release(); }

void Tracee::release() noexcept {
    if (!attached_) return;
    attached_ = false;
    // PTRACE_DETACH needs a stopped tracee; a running one is stopped first.
    if (ptrace(PTRACE_DETACH, tid_, nullptr, nullptr) != 0 && errno == ESRCH) {
        if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) == 0) {
            int status = 0;
            if (waitpid(tid_, &status, __WALL) == tid_ && WIFSTOPPED(status)) ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
        }
    }
}

int Tracee::wait_stop() {
    for (;;) {
        int status = 0;
        pid_t r = waitpid(tid_, &status, __WALL);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail_errno("cannot wait for " + who(tid_));
        if (!WIFSTOPPED(status)) {
            attached_ = false;
            fail(who(tid_) + " " + describe_wait_status(status) + " while being stopped");
        }
        return status;
    }
}

void Tracee::interrupt() {
    request_interrupt();
    wait_interrupted();
}

void Tracee::request_interrupt() {
    if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) fail_errno("cannot interrupt " + who(tid_));
}

void Tracee::wait_interrupted() {
    while (!poll_interrupted(true)) {
    }
}

bool Tracee::poll_interrupted(bool block) {
    for (;;) {
        int status = 0;
        pid_t r = waitpid(tid_, &status, __WALL | (block ? 0 : WNOHANG));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail_errno("cannot wait for " + who(tid_));
        if (r == 0) return false;
        if (!WIFSTOPPED(status)) {
            attached_ = false;
            fail(who(tid_) + " " + describe_wait_status(status) + " while being stopped");
        }
        const int event = status >> 16;
        if (event == PTRACE_EVENT_STOP) {
            stopped_ = true;
            stop_regs_ = regs();
            return true;
        }
        const int sig = WSTOPSIG(status);
        if (event != 0 || sig == (SIGTRAP | 0x80)) {
            // A ptrace event (clone, exec) or a stray syscall stop: let the
            // thread go on; the pending interrupt stops it again.
            ptrace(PTRACE_CONT, tid_, nullptr, nullptr);
            continue;
        }
        // A signal arrived first: deliver it, the interrupt stop follows.
        if (ptrace(PTRACE_CONT, tid_, nullptr, reinterpret_cast<void*>(static_cast<long>(sig))) != 0)
            fail_errno("cannot resume " + who(tid_));
    }
}

void Tracee::resume() {
    if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0) fail_errno("cannot resume " + who(tid_));
    stopped_ = false;
}

void Tracee::resume_interrupted_call(const user_regs_struct& interrupted, bool same_process) {
    set_regs(restart_interrupted_call(interrupted, same_process));
    // Detaching wakes the thread once. A call the kernel restarts after a
    // mere wakeup (ERESTART*) is entered before the release; one that would
    // fail with EINTR instead (epoll_wait) is entered after it.
    const bool restarted_by_kernel = is_interrupted_call(interrupted) && static_cast<long>(interrupted.rax) != -EINTR;
    restart_pending_ = restart_pending_ || restarted_by_kernel;
}

void Tracee::enter_restarted_call() {
    if (!attached_ || !restart_pending_) return;
    restart_pending_ = false;
    wait_syscall_stop("re-entry");
}

void Tracee::detach(int sig) {
    if (!attached_) return;
    if (ptrace(PTRACE_DETACH, tid_, nullptr, reinterpret_cast<void*>(static_cast<long>(sig))) != 0) {
        if (errno != ESRCH) fail_errno("cannot detach from " + who(tid_));
        // Only SIGKILL takes a thread out of a ptrace stop: it is dying,
        // and its exit is ours to collect.
        int status = 0;
        while (waitpid(tid_, &status, __WALL) == tid_ && !WIFEXITED(status) && !WIFSIGNALED(status)) {
        }
    }
    attached_ = false;
}

user_regs_struct Tracee::regs() const {
    user_regs_struct r{};
    if (ptrace(PTRACE_GETREGS, tid_, nullptr, &r) != 0) fail_errno("cannot read registers of " + who(tid_));
    return r;
}

void Tracee::set_regs(const user_regs_struct& r) const {
    if (ptrace(PTRACE_SETREGS, tid_, nullptr, &r) != 0) fail_errno("cannot set registers of " + who(tid_));
}

std::vector<uint8_t> Tracee::xstate() const {
    std::vector<uint8_t> buf(64 * 1024);
    iovec iov{buf.data(), buf.size()};
    if (ptrace(PTRACE_GETREGSET, tid_, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
        fail_errno("cannot read the XSAVE area of " + who(tid_));
    buf.resize(iov.iov_len);
    return buf;
}

void Tracee::set_xstate(const std::vector<uint8_t>& x) const {
    iovec iov{const_cast<uint8_t*>(x.data()), x.size()};
    if (ptrace(PTRACE_SETREGSET, tid_, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
        fail_errno("cannot restore the XSAVE area of " + who(tid_));
}

uint64_t Tracee::signal_mask() const {
    uint64_t mask = 0;
    if (ptrace(PTRACE_GETSIGMASK, tid_, reinterpret_cast<void*>(sizeof mask), &mask) != 0)
        fail_errno("cannot read the signal mask of " + who(tid_));
    return mask;
}

void Tracee::set_signal_mask(uint64_t mask) const {
    if (ptrace(PTRACE_SETSIGMASK, tid_, reinterpret_cast<void*>(sizeof mask), &mask) != 0)
        fail_errno("cannot set the signal mask of " + who(tid_));
}

Tracee::Rseq Tracee::rseq() const {
    struct {
        uint64_t rseq_abi_pointer;
        uint32_t rseq_abi_size;
        uint32_t signature;
        uint32_t flags;
        uint32_t pad;
    } conf{};
    constexpr int kGetRseqConfiguration = 0x420f;
    if (ptrace(static_cast<__ptrace_request>(kGetRseqConfiguration), tid_, sizeof conf, &conf) != static_cast<long>(sizeof conf))
        return {};
    return {conf.rseq_abi_pointer, conf.rseq_abi_size, conf.signature};
}

void Tracee::wait_syscall_stop(const char* phase) {
    for (;;) {
        if (ptrace(PTRACE_SYSCALL, tid_, nullptr, nullptr) != 0) fail_errno("cannot run an injected call in " + who(tid_));
        int status = wait_stop();
        if (WSTOPSIG(status) == (SIGTRAP | 0x80)) return;
        const int event = status >> 16;
        if (event != 0) continue;  // e.g. PTRACE_EVENT_CLONE of an injected clone3: its exit stop follows
        // Every signal is blocked during injection, so only a synchronous
        // fault gets here: the injected call's setup is wrong.
        fail(who(tid_) + " got signal " + std::string(strsignal(WSTOPSIG(status))) + " at the " + phase +
             " of an injected system call");
    }
}

long Tracee::syscall(uint64_t insn, long nr, std::initializer_list<uint64_t> args, bool keep_regs) {
    const user_regs_struct saved = regs();
    const uint64_t saved_mask = signal_mask();
    set_signal_mask(~uint64_t{0});
    user_regs_struct r = saved;
    r.rip = insn;
    r.rax = static_cast<uint64_t>(nr);
    // No restart of an interrupted call while the injected one runs.
    r.orig_rax = ~uint64_t{0};
    uint64_t a[6] = {};
    size_t i = 0;
    for (uint64_t v : args) a[i++] = v;
    r.rdi = a[0];
    r.rsi = a[1];
    r.rdx = a[2];
    r.r10 = a[3];
    r.r8 = a[4];
    r.r9 = a[5];
    set_regs(r);
    wait_syscall_stop("entry");
    wait_syscall_stop("exit");
    const long result = static_cast<long>(regs().rax);
    set_signal_mask(saved_mask);
    // The thread now resumes from this call's exit stop, where the kernel
    // does not restart the call it had interrupted: do it here.
    // (After the first injected call the registers are already rewritten
    // and this changes nothing.)
    if (!keep_regs) resume_interrupted_call(saved, true);
    return result;
}

void RestartOrigins::note(pid_t tid, const user_regs_struct& regs) {
    if (static_cast<long>(regs.rax) == kErestartRestartBlock && !in_restart_syscall(regs))
        origins_[tid] = {regs.rip, regs.orig_rax};
}

std::optional<uint64_t> RestartOrigins::find(pid_t tid, const user_regs_struct& regs) const {
    auto it = origins_.find(tid);
    if (it == origins_.end() || it->second.rip != regs.rip) return std::nullopt;
    return it->second.nr;
}

void RestartOrigins::keep_only(const std::vector<pid_t>& alive) {
    std::erase_if(origins_, [&](const auto& entry) { return std::find(alive.begin(), alive.end(), entry.first) == alive.end(); });
}

}  // namespace ckpt::agent
