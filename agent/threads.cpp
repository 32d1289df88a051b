#include "agent/threads.hpp"

#include "agent/procfs.hpp"
#include "image/table.hpp"

#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <cstring>


namespace ckpt::agent {

namespace {

static_assert(sizeof(user_regs_struct) == kUserRegsWords * 8);

uint64_t hex_field(pid_t pid, pid_t tid, const std::string& name) {
    std::string text;
    try_read_text_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status", text);
    auto pos = text.find("\n" + name + ":");
    if (pos == std::string::npos) return 0;
    return std::stoull(text.substr(pos + name.size() + 2), nullptr, 16);
}

}  // namespace

void dump_threads(Task& task, hid_t task_group) {
    std::vector<ThreadRecord> records;
    std::vector<std::vector<uint8_t>> xsaves;
    size_t widest = 0;
    for (size_t i = 0; i < task.threads().size(); ++i) {
        Tracee& t = task.threads()[i];
        ThreadRecord rec;
        rec.tid = task.inner_tids()[i];
        const user_regs_struct& regs = t.stop_regs();
        std::memcpy(rec.gpregs.data(), &regs, sizeof regs);
        rec.fs_base = regs.fs_base;
        rec.gs_base = regs.gs_base;
        rec.sigmask = t.signal_mask();
        rec.sigpending = hex_field(task.outer(), t.tid(), "SigPnd");
        if (is_interrupted_call(regs)) {
            rec.state = 1;
            rec.syscall_nr = static_cast<int64_t>(regs.orig_rax);
        }
        const Tracee::Rseq rseq = t.rseq();
        rec.rseq_addr = rseq.address;
        rec.rseq_len = rseq.size;
        rec.rseq_sig = rseq.signature;
        uint64_t head = 0;
        size_t len = 0;
        if (syscall(SYS_get_robust_list, t.tid(), &head, &len) != 0) fail_errno("cannot read the robust futex list of thread " + std::to_string(rec.tid));
        rec.robust_list = head;
        rec.robust_list_len = len;
        // The clear-tid address and the alternate signal stack are only
        // visible from inside the thread.
        task.call("cannot read the clear-tid address", SYS_prctl, {PR_GET_TID_ADDRESS, task.scratch()}, i);
        rec.clear_tid_addr = task.read_value<uint64_t>(task.scratch());
        rec.timer_slack_ns = static_cast<uint64_t>(task.call("cannot read the timer slack", SYS_prctl, {PR_GET_TIMERSLACK}, i));
        task.call("cannot read the signal stack", SYS_sigaltstack, {0, task.scratch()}, i);
        const stack_t ss = task.read_value<stack_t>(task.scratch());
        rec.altstack_sp = reinterpret_cast<uint64_t>(ss.ss_sp);
        rec.altstack_size = ss.ss_size;
        rec.altstack_flags = static_cast<uint32_t>(ss.ss_flags);
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        if (sched_getaffinity(t.tid(), sizeof cpus, &cpus) != 0) fail_errno("cannot read the CPU affinity of thread " + std::to_string(rec.tid));
        std::memcpy(rec.cpu_affinity.data(), &cpus, sizeof cpus);
        std::string comm;
        try_read_text_file("/proc/" + std::to_string(task.outer()) + "/task/" + std::to_string(t.tid()) + "/comm", comm);
        if (!comm.empty() && comm.back() == '\n') comm.pop_back();
        rec.comm = comm;
        xsaves.push_back(t.xstate());
        rec.xsave_bytes = static_cast<uint32_t>(xsaves.back().size());
        widest = std::max(widest, xsaves.back().size());
        records.push_back(rec);
    }
    write_table(task_group, "threads", records);
    std::vector<uint8_t> matrix(records.size() * widest, 0);
    for (size_t i = 0; i < xsaves.size(); ++i) std::memcpy(matrix.data() + i * widest, xsaves[i].data(), xsaves[i].size());
    write_blob(task_group, "xsave", matrix, {records.size(), widest});
}

namespace {

pid_t outer_tid(const Task& task, int32_t inner) {
    for (pid_t tid : threads_of(task.outer())) {
        auto ids = ns_pids(task.outer(), tid);
        if (!ids.empty() && ids.back() == inner) return tid;
    }
    fail("thread " + std::to_string(inner) + " of " + task.name() + " is not visible after its creation");
}

void restore_thread_state(Task& task, size_t index, const ThreadRecord& rec, const Trampoline& tr) {
    task.call("cannot restore the robust futex list", SYS_set_robust_list, {rec.robust_list, rec.robust_list_len}, index);
    task.call("cannot restore the clear-tid address", SYS_set_tid_address, {rec.clear_tid_addr}, index);
    if (rec.timer_slack_ns) task.call("cannot restore the timer slack", SYS_prctl, {PR_SET_TIMERSLACK, rec.timer_slack_ns}, index);
    stack_t ss{};
    ss.ss_sp = reinterpret_cast<void*>(rec.altstack_sp);
    ss.ss_size = rec.altstack_size;
    ss.ss_flags = static_cast<int>(rec.altstack_flags & ~static_cast<uint32_t>(SS_ONSTACK));
    if (!(rec.altstack_flags & SS_DISABLE)) {
        task.write(tr.args(), &ss, sizeof ss);
        task.call("cannot restore the signal stack", SYS_sigaltstack, {tr.args(), 0}, index);
    }
    if (rec.rseq_len > 0)
        task.call("cannot register rseq", SYS_rseq, {rec.rseq_addr, rec.rseq_len, 0, rec.rseq_sig}, index);
    // Only the thread itself may rename itself.
    const std::string comm = rec.comm.substr(0, 15);
    task.write(tr.strings(), comm.c_str(), comm.size() + 1);
    task.call("cannot restore the thread name", SYS_prctl, {PR_SET_NAME, tr.strings()}, index);
}

void set_final_state(Tracee& t, const TaskImage& image, size_t index) {
    const ThreadRecord& rec = image.threads[index];
    user_regs_struct r{};
    std::memcpy(&r, rec.gpregs.data(), sizeof r);
    t.set_xstate(image.xsave[index]);
    t.resume_interrupted_call(r, false);
    t.set_signal_mask(rec.sigmask);
}

}  // namespace

void create_threads(Task& task, const TaskImage& image, const Trampoline& tr) {
    for (size_t i = 1; i < image.threads.size(); ++i) {
        const int32_t tid = image.threads[i].tid;
        task.write(tr.args() + 256, &tid, sizeof tid);
        clone_args args{};
        args.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
        args.set_tid = tr.args() + 256;
        args.set_tid_size = 1;
        task.write(tr.args(), &args, sizeof args);
        const long got = task.call("cannot create thread " + std::to_string(tid), SYS_clone3, {tr.args(), sizeof args});
        if (got != tid) fail("thread " + std::to_string(tid) + " of " + task.name() + " came back as " + std::to_string(got));
        Tracee thread = Tracee::adopt(outer_tid(task, tid));
        thread.wait_stop();
        task.threads().push_back(std::move(thread));
        task.inner_tids().push_back(tid);
    }
    for (size_t i = 0; i < image.threads.size(); ++i) restore_thread_state(task, i, image.threads[i], tr);
}

void finish_threads(Task& task, const TaskImage& image, const Trampoline& tr) {
    for (size_t i = 1; i < image.threads.size(); ++i) set_final_state(task.threads()[i], image, i);
    // The leader removes the trampoline last; its registers are then set at
    // that call's exit stop.
    Tracee& leader = task.leader();
    long r = leader.syscall(tr.code(), SYS_munmap, {tr.base, Trampoline::kSize}, true);
    if (r != 0) fail("cannot remove the restore trampoline from " + task.name());
    set_final_state(leader, image, 0);
}

}  // namespace ckpt::agent
