#include "agent/dump.hpp"

#include "agent/files.hpp"
#include "agent/memory.hpp"
#include "agent/procfs.hpp"
#include "agent/process.hpp"
#include "agent/signals.hpp"
#include "agent/threads.hpp"
#include "agent/timers.hpp"
#include "image/table.hpp"

#include <linux/kcmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <map>
#include <set>

namespace ckpt::agent {

namespace {

int32_t innermost(const std::vector<pid_t>& ids) { return ids.empty() ? 0 : ids.back(); }

// Finds a `syscall` instruction the task can execute: its vDSO has some.
uint64_t find_syscall_insn(Task& task) {
    for (const auto& m : read_maps(task.outer())) {
        if (!m.exec || (m.path != "[vdso]" && !m.path.starts_with("/"))) continue;
        const uint64_t len = std::min<uint64_t>(m.end - m.start, uint64_t{4} << 20);
        std::vector<uint8_t> code(len);
        try {
            task.read(m.start, code.data(), len);
        } catch (const EngineError&) {
            continue;
        }
        for (uint64_t i = 0; i + 1 < len; ++i)
            if (code[i] == 0x0f && code[i + 1] == 0x05) return m.start + i;
    }
    fail("found no system call instruction in " + task.name());
}

// The task whose vfork() `parent` waits in: a child sharing its memory.
Task* vfork_child(pid_t parent, const std::map<pid_t, std::unique_ptr<Task>>& live) {
    for (const auto& [pid, task] : live) {
        if (pid == parent || !task) continue;
        StatFields st;
        try {
            st = read_stat(pid);
        } catch (const EngineError&) {
            continue;
        }
        if (st.ppid == parent && syscall(SYS_kcmp, parent, pid, KCMP_VM, 0, 0) == 0) return task.get();
    }
    return nullptr;
}

// Waits until every thread asked to stop has stopped. A parent inside
// vfork() cannot stop until its child has exec'd or exited, and that child
// is stopped too (dash runs every command through vfork): such a child is
// let run to its exec, then asked to stop again once its parent is out.
void wait_all_interrupted(const std::vector<Tracee*>& asked, const std::map<pid_t, std::unique_ptr<Task>>& live) {
    std::vector<Tracee*> pending = asked;
    std::vector<Tracee*> released;  // vfork children let go, to stop again
    auto quiet_since = std::chrono::steady_clock::now();
    int backoff_us = 50;
    while (!pending.empty()) {
        bool progress = false;
        for (auto it = pending.begin(); it != pending.end();) {
            if ((*it)->poll_interrupted(false)) {
                it = pending.erase(it);
                progress = true;
            } else {
                ++it;
            }
        }
        if (progress) {
            quiet_since = std::chrono::steady_clock::now();
            backoff_us = 50;
            // A parent that stopped has left vfork(): its child may stop now.
            for (Tracee* child : released) {
                child->request_interrupt();
                pending.push_back(child);
            }
            released.clear();
            continue;
        }
        if (std::chrono::steady_clock::now() - quiet_since > std::chrono::milliseconds(50)) {
            for (Tracee* t : pending) {
                Task* child = vfork_child(t->tid(), live);
                if (!child || !child->leader().stopped()) continue;
                child->leader().resume();
                released.push_back(&child->leader());
            }
            quiet_since = std::chrono::steady_clock::now();
        }
        std::this_thread::sleep_for(std::chrono::microseconds(backoff_us));
        backoff_us = std::min(backoff_us * 2, 2000);
    }
}

}  // namespace

FrozenTree::FrozenTree(pid_t init_outer, JobCgroup* cgroup, RestartOrigins& origins) : init_(init_outer), origins_(origins) {
    const uint64_t pidns = ns_inode(init_outer, "pid");
    std::map<pid_t, std::unique_ptr<Task>> live;
    std::set<pid_t> zombies;
    bool frozen = false;
    if (cgroup) {
        try {
            cgroup->freeze();
            frozen = true;
            method_ = cgroup->method() + " and ptrace";
        } catch (const EngineError&) {
            cgroup->thaw();
        }
    }
    // One pass seizes every task and thread not yet seized and asks it to
    // stop; the stops are awaited after the pass (after thawing the cgroup:
    // a frozen thread cannot stop). Returns whether it found anything new.
    auto pass = [&]() {
        bool changed = false;
        std::vector<Tracee*> asked;
        for (pid_t pid : processes_in_pidns(pidns, init_outer)) {
            if (zombies.contains(pid)) continue;
            const StatFields st = [&] {
                try {
                    return read_stat(pid);
                } catch (const EngineError&) {
                    return StatFields{};
                }
            }();
            if (st.state == '?') continue;  // gone
            if (st.state == 'Z' || st.state == 'X') {
                changed |= zombies.insert(pid).second;
                continue;
            }
            auto& task = live[pid];
            if (!task) {
                task = std::make_unique<Task>(pid, innermost(ns_pids(pid, pid)));
                changed = true;
            }
            for (pid_t tid : threads_of(pid)) {
                auto& tids = task->threads();
                if (std::any_of(tids.begin(), tids.end(), [&](const Tracee& t) { return t.tid() == tid; })) continue;
                try {
                    Tracee t(tid, PTRACE_O_TRACESYSGOOD);
                    t.request_interrupt();
                    tids.push_back(std::move(t));
                    task->inner_tids().push_back(innermost(ns_pids(pid, tid)));
                    changed = true;
                } catch (const EngineError&) {
                    if (access(("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid)).c_str(), F_OK) == 0) throw;
                }
            }
            for (auto& t : task->threads())
                if (!t.stopped()) asked.push_back(&t);
        }
        if (frozen) {
            cgroup->thaw();
            frozen = false;
        }
        wait_all_interrupted(asked, live);
        return changed;
    };
    for (int round = 0; pass(); ++round)
        if (round > 1000) fail("the process tree keeps changing; cannot freeze it");
    std::vector<pid_t> seized;
    for (auto& [pid, task] : live)
        for (auto& t : task->threads()) {
            seized.push_back(t.tid());
            if (!in_restart_syscall(t.stop_regs())) continue;
            if (auto nr = origins_.find(t.tid(), t.stop_regs())) t.recall_call(*nr);
        }
    origins_.keep_only(seized);
    // Leader first in every task; parents before children in the tree.
    std::map<pid_t, int32_t> inner;  // outer -> inner
    inner[init_outer] = 1;
    for (auto& [pid, task] : live) {
        auto& th = task->threads();
        auto& in = task->inner_tids();
        for (size_t i = 0; i < th.size(); ++i)
            if (th[i].tid() == pid && i != 0) {
                std::swap(th[i], th[0]);
                std::swap(in[i], in[0]);
            }
        inner[pid] = task->pid();
    }
    for (pid_t z : zombies) inner[z] = innermost(ns_pids(z, z));
    std::vector<std::pair<pid_t, TaskRecord>> all;
    for (auto& [pid, task] : live) {
        const StatFields st = read_stat(pid);
        TaskRecord r;
        r.pid = task->pid();
        r.ppid = inner.contains(st.ppid) ? inner[st.ppid] : 0;
        r.pgid = innermost_status_id(pid, "NSpgid");
        r.sid = innermost_status_id(pid, "NSsid");
        r.nthreads = static_cast<uint32_t>(task->threads().size());
        r.pidns_inode = pidns;
        r.userns_inode = ns_inode(pid, "user");
        r.mntns_inode = ns_inode(pid, "mnt");
        std::string comm;
        try_read_text_file("/proc/" + std::to_string(pid) + "/comm", comm);
        if (!comm.empty() && comm.back() == '\n') comm.pop_back();
        r.comm = comm;
        all.emplace_back(pid, r);
    }
    for (pid_t z : zombies) {
        const StatFields st = read_stat(z);
        TaskRecord r;
        r.pid = inner[z];
        r.ppid = inner.contains(st.ppid) ? inner[st.ppid] : 0;
        r.pgid = innermost_status_id(z, "NSpgid");
        r.sid = innermost_status_id(z, "NSsid");
        r.state = static_cast<uint32_t>(TaskState::Zombie);
        r.exit_status = st.exit_code;
        r.pidns_inode = pidns;
        r.comm = "zombie";
        all.emplace_back(z, r);
    }
    // Breadth-first from the children of init: parents before children.
    std::set<int32_t> placed = {1};
    while (records_.size() < all.size()) {
        bool progress = false;
        for (auto& [pid, r] : all) {
            if (placed.contains(r.pid) || !placed.contains(r.ppid)) continue;
            placed.insert(r.pid);
            records_.push_back(r);
            if (live.contains(pid)) tasks_.push_back(std::move(live[pid]));
            progress = true;
        }
        if (!progress) fail("the process tree has a task whose parent is outside the job");
    }
}

FrozenTree::~FrozenTree() { thaw(); }

void FrozenTree::thaw() {
    for (auto& t : tasks_)
        for (auto& th : t->threads()) origins_.note(th.tid(), th.stop_regs());
    for (auto& t : tasks_)
        for (auto& th : t->threads()) {
            try {
                th.enter_restarted_call();
            } catch (const EngineError&) {
            }
        }
    for (auto& t : tasks_)
        for (auto& th : t->threads()) {
            try {
                th.detach();
            } catch (const EngineError&) {
            }
        }
}

void FrozenTree::kill_all() {
    for (auto& t : tasks_) kill(t->outer(), SIGKILL);
    // A traced thread's death is reported to the tracer first; its parent
    // hears of it only once the tracer has collected it.
    // A leader is reported only after its other threads: wait for those first.
    for (auto& t : tasks_)
        for (auto th = t->threads().rbegin(); th != t->threads().rend(); ++th) {
            int status = 0;
            while (waitpid(th->tid(), &status, __WALL) == th->tid() && !WIFEXITED(status) && !WIFSIGNALED(status)) {
            }
            th->abandon();
        }
}

void dump_tree(FrozenTree& tree, RankWriter& writer, pid_t launcher, const DumpProgress& progress) {
    DumpState state(writer);
    state.launcher = launcher;
    state.progress = progress.phase;
    // A tree the restore cannot recreate is refused now, while the program
    // goes on (sessions and groups whose leader has exited come back
    // through stand-ins; see plan_spawn).
    try {
        plan_spawn(tree.records());
    } catch (const EngineError& e) {
        fail(std::string("cannot checkpoint ") + e.what());
    }
    writer.write_tree(tree.records());
    for (auto& task : tree.tasks()) {
        if (progress.phase) progress.phase("dumping " + task->name());
        task->open_memory();
        task->set_syscall_insn(find_syscall_insn(*task));
        const long scratch = task->call("cannot map a scratch page", SYS_mmap,
                                        {0, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~uint64_t{0}, 0});
        task->set_scratch(static_cast<uint64_t>(scratch));
        h5::Hid group = writer.create_task(task->pid());
        dump_threads(*task, group);
        dump_signals(*task, group);
        dump_timers(*task, group);
        dump_process(*task, group);
        task->call("cannot unmap the scratch page", SYS_munmap, {static_cast<uint64_t>(scratch), kPage});
        dump_files(*task, state, group);
        dump_memory(*task, state, group);
    }
    if (progress.phase) progress.phase("dumping shared objects");
    dump_shared_files(state);
    dump_shared_memory(state);
}

}  // namespace ckpt::agent
