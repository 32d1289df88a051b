#include "agent/restore.hpp"

#include "agent/memory.hpp"
#include "agent/procfs.hpp"
#include "agent/process.hpp"
#include "agent/signals.hpp"
#include "agent/threads.hpp"
#include "agent/timers.hpp"
#include "image/table.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <thread>

// A `syscall` instruction at the same address in the tracer and in every
// restoring process (they are forks of it): the first injected calls run
// here, before the trampoline exists.
extern "C" void ckpt_syscall_gadget();
asm(".pushsection .text\n"
    ".globl ckpt_syscall_gadget\n"
    ".type ckpt_syscall_gadget,@function\n"
    "ckpt_syscall_gadget:\n"
    "  syscall\n"
    "  int3\n"
    ".popsection\n");


namespace ckpt::agent {

const TaskImage* TreeImage::find(int32_t pid) const {
    for (const auto& t : tasks)
        if (t.task.pid == pid) return &t;
    return nullptr;
}

TreeImage load_tree(const RankReader& reader) {
    TreeImage tree;
    tree.path = reader.path();
    for (const auto& rec : reader.tasks()) {
        TaskImage t;
        t.task = rec;
        if (rec.state != static_cast<uint32_t>(TaskState::Zombie)) {
            h5::Hid g = reader.task(rec.pid);
            t.process = read_record<ProcessRecord>(g, "process");
            t.vmas = read_table<VmaRecord>(g, "vmas");
            t.threads = read_table<ThreadRecord>(g, "threads");
            Blob xsave = read_blob(g, "xsave", uint64_t{1} << 26);
            for (size_t i = 0; i < t.threads.size(); ++i) {
                auto row = xsave.data.begin() + static_cast<ptrdiff_t>(i * xsave.dims.at(1));
                t.xsave.emplace_back(row, row + t.threads[i].xsave_bytes);
            }
            t.fds = read_table<FdRecord>(g, "fds");
            t.sigactions = read_table<SigactionRecord>(g, "sigactions");
            t.pending = read_table<PendingSignalRecord>(g, "pending_signals");
            t.timers = read_table<TimerRecord>(g, "timers");
            t.rlimits = read_table<RlimitRecord>(g, "rlimits");
            t.auxv = read_blob(g, "auxv", 1 << 16).data;
            if (h5::link_exists(g, "creds")) {
                t.creds = read_record<CredsRecord>(g, "creds");
                t.has_creds = true;
            }
        }
        tree.tasks.push_back(std::move(t));
    }
    if (h5::link_exists(reader.root(), "shared")) {
        h5::Hid s = h5::open_group(reader.root(), "shared");
        if (h5::link_exists(s, "files")) tree.files = read_table<FileRecord>(s, "files");
        if (h5::link_exists(s, "pipes")) tree.pipes = read_table<PipeRecord>(s, "pipes");
        if (h5::link_exists(s, "pipe_data")) tree.pipe_data = read_blob(s, "pipe_data", uint64_t{1} << 30).data;
        if (h5::link_exists(s, "shmem")) tree.shmem = read_table<ShmemRecord>(s, "shmem");
    }
    return tree;
}

namespace {

// ---- stage 3: restorer code in every new process ------------------------------

void report(int ready_fd, const std::string& message) {
    send(ready_fd, message.data(), message.size(), MSG_NOSIGNAL);
}

pid_t clone_with_pid(int32_t pid) {
    pid_t tid = pid;
    clone_args args{};
    args.exit_signal = SIGCHLD;
    args.set_tid = reinterpret_cast<uint64_t>(&tid);
    args.set_tid_size = 1;
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r < 0) {
        if (errno == EEXIST) fail("PID " + std::to_string(pid) + " is already taken in the new namespace");
        fail_errno("cannot create process " + std::to_string(pid) + " with its PID");
    }
    return static_cast<pid_t>(r);
}

[[noreturn]] void become_zombie(const TaskImage& t) {
    const int status = t.task.exit_status;
    if (WIFSIGNALED(status)) {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigaction(WTERMSIG(status), &dfl, nullptr);
        rlimit no_core{0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        syscall(SYS_kill, syscall(SYS_getpid), WTERMSIG(status));
    }
    syscall(SYS_exit_group, WEXITSTATUS(status));
    __builtin_unreachable();
}

// A descriptor of the restore itself: above every descriptor of the program.
UniqueFd above_program(int fd, const SharedFds& fds) {
    UniqueFd low(fd);
    UniqueFd high(fcntl(fd, F_DUPFD_CLOEXEC, fds.lowest));
    if (!high.valid()) fail_errno("cannot move a descriptor of the restore");
    return high;
}

// Stage 3's two meeting points, kept by init through pipes every process
// inherits: no process joins a group before every process has made its own
// session or group (so every group exists, whoever leads it), and no
// stand-in exits before every joiner is in (its group must not vanish
// first).
class SpawnBarrier {
public:
    explicit SpawnBarrier(const SharedFds& fds) : arrived_(fds), join_(fds), leave_(fds) {}
    // A process has made its session or group and forked its children;
    // again once it has joined its group.
    void arrive() const { put(arrived_.write.get(), 1); }
    void await_join() const { take(join_.read.get(), 1); }
    void await_leave() const { take(leave_.read.get(), 1); }
    // In init, once it has forked its children.
    void run(const SpawnPlan& plan) const {
        take(arrived_.read.get(), plan.processes);
        put(join_.write.get(), plan.joiners);
        take(arrived_.read.get(), plan.joiners);
        put(leave_.write.get(), plan.stand_ins);
    }

private:
    struct Pipe {
        explicit Pipe(const SharedFds& fds) {
            int ends[2];
            if (pipe2(ends, O_CLOEXEC) != 0) fail_errno("cannot create a pipe for the restore");
            read = above_program(ends[0], fds);
            write = above_program(ends[1], fds);
        }
        UniqueFd read, write;
    };
    static void put(int fd, size_t n) {
        const std::vector<char> bytes(n, 1);
        write_all(fd, bytes.data(), n, "to the restore's barrier");
    }
    static void take(int fd, size_t n) {
        std::vector<char> bytes(n);
        if (read_full(fd, bytes.data(), n) != n) fail("the restore's barrier was closed");
    }
    Pipe arrived_, join_, leave_;
};

std::string node_name(const SpawnNode& node) {
    return (node.stand_in ? "the stand-in " : "process ") + std::to_string(node.pid);
}

// Its own session or group, first thing: its children inherit it.
void take_place(const SpawnNode& node) {
    if (node.new_session && setsid() < 0) fail_errno("cannot create session " + std::to_string(node.pid) + " in " + node_name(node));
    if (node.new_group && setpgid(0, 0) != 0) fail_errno("cannot create process group " + std::to_string(node.pid) + " in " + node_name(node));
}

void set_child_subreaper(const SpawnNode& node, bool on) {
    if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0) != 0) fail_errno("cannot set the child subreaper flag of " + node_name(node));
}

// Stage 3 as init and every process it creates run it (plan_spawn).
class Spawner {
public:
    Spawner(const TreeImage& tree, const SpawnPlan& plan, const SharedFds& fds, const SpawnBarrier& barrier, int ready_fd)
        : tree_(tree), plan_(plan), fds_(fds), barrier_(barrier), ready_fd_(ready_fd) {}

    void fork_children(const SpawnNode& node) const {
        for (int32_t pid : node.children)
            if (clone_with_pid(pid) == 0) run(plan_.node(pid));
    }
    // The stand-ins it forked, once every process has joined its group.
    void reap_stand_ins(const SpawnNode& node) const {
        for (int32_t pid : node.children) {
            if (!plan_.node(pid).stand_in) continue;
            int status = 0;
            while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) fail_errno(node_name(node) + " cannot reap the stand-in " + std::to_string(pid));
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("the stand-in " + std::to_string(pid) + " failed");
        }
    }

private:
    // In the new process.
    [[noreturn]] void run(const SpawnNode& node) const {
        try {
            take_place(node);
            if (node.stand_in) stand_in(node);
            become_task(node, *tree_.find(node.pid));
        } catch (const std::exception& e) {
            report(ready_fd_, std::string("E") + e.what());
            syscall(SYS_exit_group, 1);
        }
        for (;;) pause();  // until the tracer takes over
    }

    // Holds an exited leader's session or group (and forks the session's
    // orphans) until every process is in, then exits: its orphans go to
    // its parent, whose child subreaper flag is set meanwhile.
    [[noreturn]] void stand_in(const SpawnNode& node) const {
        fork_children(node);
        barrier_.arrive();
        barrier_.await_leave();
        reap_stand_ins(node);
        _exit(0);
    }

    void become_task(const SpawnNode& node, const TaskImage& t) const {
        if (node.adopts) set_child_subreaper(node, true);
        fork_children(node);
        barrier_.arrive();
        if (node.join) join_group(node);
        reap_stand_ins(node);
        await_zombie_children(node);
        if (node.adopts) set_child_subreaper(node, t.process.child_subreaper != 0);
        if (t.task.state == static_cast<uint32_t>(TaskState::Zombie)) become_zombie(t);
        reset_signals_in_restorer();
        apply_process_in_restorer(t);
        install_fds(t, fds_);
        report(ready_fd_, "R" + std::to_string(t.task.pid));
    }

    void join_group(const SpawnNode& node) const {
        barrier_.await_join();
        if (setpgid(0, node.join) != 0)
            fail_errno("cannot move " + node_name(node) + " into process group " + std::to_string(node.join));
        barrier_.arrive();
    }

    // Its zombie children must have exited before it reports ready: the
    // orphans of a zombie session leader come to it then.
    void await_zombie_children(const SpawnNode& node) const {
        for (const auto& t : tree_.tasks) {
            if (t.task.state != static_cast<uint32_t>(TaskState::Zombie) || t.task.ppid != node.pid) continue;
            siginfo_t info{};
            while (waitid(P_PID, static_cast<id_t>(t.task.pid), &info, WEXITED | WNOWAIT) != 0)
                if (errno != EINTR) fail_errno(node_name(node) + " cannot wait for its zombie child " + std::to_string(t.task.pid));
        }
    }

    const TreeImage& tree_;
    const SpawnPlan& plan_;
    const SharedFds& fds_;
    const SpawnBarrier& barrier_;
    int ready_fd_;
};

// The program's first process (init reports its end as the program's):
// init forked it first, so it has the lowest PID of init's live children
// (others are orphans init adopted).
int32_t main_process(const TreeImage& tree) {
    int32_t main = 0;
    for (const auto& t : tree.tasks)
        if (t.task.state != static_cast<uint32_t>(TaskState::Zombie) && tree.parent(t.task) == 1 && (main == 0 || t.task.pid < main))
            main = t.task.pid;
    if (main == 0) fail("the checkpoint holds no live process");
    return main;
}

SpawnPlan plan_restore(const TreeImage& tree) {
    std::vector<TaskRecord> records;
    for (const auto& t : tree.tasks) records.push_back(t.task);
    try {
        return plan_spawn(records);
    } catch (const EngineError& e) {
        fail(std::string("cannot restore ") + e.what());
    }
}

}  // namespace

int32_t spawn_tree(const TreeImage& tree, const RankReader& reader, int ready_fd, const FileOptions& options) {
    const SpawnPlan plan = plan_restore(tree);
    const int32_t main = main_process(tree);
    SharedFds fds;
    fds.lowest = restore_fd_base(tree);
    if (ready_fd < fds.lowest) fail("internal: the restore's descriptors must lie above the program's");
    create_shared_memory(reader, tree, fds);
    // The tracer maps these into the processes: tell it which fd is which.
    std::string announce = "S";
    for (const auto& [id, fd] : fds.shmem) announce += std::to_string(id) + "=" + std::to_string(fd) + ",";
    report(ready_fd, announce);
    create_shared_files(tree, fds, options);
    const SpawnBarrier barrier(fds);
    const Spawner spawner(tree, plan, fds, barrier, ready_fd);
    spawner.fork_children(plan.node(1));
    // init keeps none of them: a pipe's write end held here would keep its
    // reader from ever seeing end of file.
    for (auto& [id, fd] : fds.files) close(fd);
    for (auto& [id, fd] : fds.shmem) close(fd);
    barrier.run(plan);
    spawner.reap_stand_ins(plan.node(1));
    report(ready_fd, "D");  // every stand-in is gone
    return main;
}

// ---- stages 4 and 5: the tracer ---------------------------------------------------

namespace {

struct Ready {
    int32_t pid;
    pid_t outer;
};

// What stage 3 reports: every live process, and init (outer PIDs).
struct Spawned {
    std::vector<Ready> ready;
    pid_t init = 0;
};

// Collects init's announcement of the shared memory fds ("S<id>=<fd>,..."),
// one "R<pid>" per live process and init's "D" (done: the stand-ins are
// gone); "E<message>" is a failure.
Spawned wait_ready(const TreeImage& tree, int ready_fd, SharedFds& fds) {
    size_t expected = 0;
    for (const auto& t : tree.tasks) expected += t.task.state != static_cast<uint32_t>(TaskState::Zombie);
    Spawned spawned;
    while (spawned.ready.size() < expected || spawned.init == 0) {
        char buf[4096];
        char control[CMSG_SPACE(sizeof(ucred))];
        iovec iov{buf, sizeof buf - 1};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = recvmsg(ready_fd, &msg, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("the restoring processes went away before reporting ready");
        buf[n] = '\0';
        if (buf[0] == 'E') fail(buf + 1);
        if (buf[0] == 'S') {
            std::istringstream in(buf + 1);
            std::string item;
            while (std::getline(in, item, ','))
                if (auto eq = item.find('='); eq != std::string::npos)
                    fds.shmem[std::stoull(item.substr(0, eq))] = std::stoi(item.substr(eq + 1));
            continue;
        }
        const cmsghdr* c = CMSG_FIRSTHDR(&msg);
        if (!c || c->cmsg_type != SCM_CREDENTIALS) fail("a restoring process reported without credentials");
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        if (buf[0] == 'D')
            spawned.init = cred.pid;
        else
            spawned.ready.push_back({std::atoi(buf + 1), cred.pid});
    }
    return spawned;
}

// Stage 3 must have made the saved tree: every live process's parent,
// group and session, seen from outside, before anything of it is restored.
void check_tree(const TreeImage& tree, const Spawned& spawned) {
    std::map<pid_t, int32_t> inner = {{spawned.init, 1}};
    for (const auto& r : spawned.ready) inner[r.outer] = r.pid;
    for (const auto& r : spawned.ready) {
        const TaskImage* image = tree.find(r.pid);
        if (!image) fail("process " + std::to_string(r.pid) + " reported ready but is not in the checkpoint");
        const TaskRecord& want = image->task;
        const auto parent = inner.find(read_stat(r.outer).ppid);
        const int32_t ppid = parent == inner.end() ? 0 : parent->second;
        const int32_t pgid = innermost_status_id(r.outer, "NSpgid"), sid = innermost_status_id(r.outer, "NSsid");
        if (ppid != tree.parent(want) || pgid != want.pgid || sid != want.sid)
            fail("process " + std::to_string(r.pid) + " came back with parent/group/session " + std::to_string(ppid) + "/" +
                 std::to_string(pgid) + "/" + std::to_string(sid) + " instead of " + std::to_string(tree.parent(want)) + "/" +
                 std::to_string(want.pgid) + "/" + std::to_string(want.sid));
    }
}

Trampoline install_trampoline(Task& task, const TaskImage& image) {
    std::vector<std::pair<uint64_t, uint64_t>> avoid;
    for (const auto& v : image.vmas) avoid.emplace_back(v.start, v.end);
    for (const auto& m : read_maps(task.outer())) avoid.emplace_back(m.start, m.end);
    Trampoline tr;
    tr.base = find_hole(Trampoline::kSize, avoid);
    task.set_syscall_insn(reinterpret_cast<uint64_t>(&ckpt_syscall_gadget));
    task.call("cannot map the restore trampoline", SYS_mmap,
              {tr.base, Trampoline::kSize, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
               ~uint64_t{0}, 0});
    const uint8_t code[] = {0x0f, 0x05, 0xcc};  // syscall; int3
    task.write(tr.code(), code, sizeof code);
    task.set_syscall_insn(tr.code());
    return tr;
}

// glibc registered rseq for the restorer's thread in memory about to go.
void unregister_restorer_rseq(Task& task) {
    const Tracee::Rseq conf = task.leader().rseq();
    if (conf.size == 0) return;
    constexpr uint64_t kRseqUnregister = 1;
    task.call("cannot unregister the restorer's rseq", SYS_rseq, {conf.address, conf.size, kRseqUnregister, conf.signature});
}

void transform(Task& task, const TaskImage& image, const RankReader& reader, const SharedFds& fds, WorkerPool& pool) {
    const int lowest = fds.lowest;
    const Trampoline tr = install_trampoline(task, image);
    unregister_restorer_rseq(task);
    restore_memory(task, image, reader, fds, tr, pool);
    restore_sigactions(task, image, tr);
    restore_timers(task, image, tr);
    restore_process_injected(task, image, tr);
    create_threads(task, image, tr);
    restore_pending_signals(task, image, tr);
    task.call("cannot close the restore's descriptors", SYS_close_range, {static_cast<uint64_t>(lowest), ~0u, 0});
    restore_process_outside(task, image);
    restore_credentials(task, image, tr);
    finish_threads(task, image, tr);
}

}  // namespace

int restore_fd_base(const TreeImage& tree) {
    int highest = 2;
    for (const auto& t : tree.tasks)
        for (const auto& f : t.fds) highest = std::max(highest, f.fd);
    return std::max(kRestoreFdBase, highest + 1);
}

RestoredTree::~RestoredTree() {
    if (released_) return;
    for (pid_t pid : processes_) kill(pid, SIGKILL);
    // Every thread is our tracee: its death is ours to collect, and a
    // leader's is reported only once its other threads are collected (waiting
    // for the leader first, as ~Tracee would, never returns).
    for (auto& t : tasks_)
        for (auto th = t->threads().rbegin(); th != t->threads().rend(); ++th) {
            try {
                th->detach();
            } catch (const std::exception&) {
            }
        }
}

void RestoredTree::release(RestartOrigins& origins) {
    for (auto& t : tasks_)
        for (auto& th : t->threads()) th.enter_restarted_call();
    released_ = true;
    for (size_t i = 0; i < tasks_.size(); ++i)
        for (size_t j = 0; j < tasks_[i]->threads().size(); ++j) {
            user_regs_struct r{};
            std::memcpy(&r, images_[i]->threads[j].gpregs.data(), sizeof r);
            origins.note(tasks_[i]->threads()[j].tid(), r);
        }
    for (auto& t : tasks_)
        for (auto& th : t->threads()) th.detach();
}

pid_t RestoredTree::outer_pid(int32_t pid) const {
    for (const auto& t : tasks_)
        if (pid == 0 || t->pid() == pid) return t->outer();
    return 0;
}

std::unique_ptr<RestoredTree> transform_tree(const TreeImage& tree, const RankReader& reader, int ready_fd,
                                             const std::function<void(const std::string&)>& progress) {
    if (progress) progress("waiting for the restored processes");
    SharedFds fds;
    fds.lowest = restore_fd_base(tree);
    auto restored = std::make_unique<RestoredTree>();
    const Spawned spawned = wait_ready(tree, ready_fd, fds);
    const std::vector<Ready>& ready = spawned.ready;
    for (const auto& r : ready) restored->processes_.push_back(r.outer);
    check_tree(tree, spawned);
    WorkerPool pool(std::max(1u, std::thread::hardware_concurrency()));
    for (const auto& image : tree.tasks) {
        if (image.task.state == static_cast<uint32_t>(TaskState::Zombie)) continue;
        auto it = std::find_if(ready.begin(), ready.end(), [&](const Ready& r) { return r.pid == image.task.pid; });
        if (it == ready.end()) fail("process " + std::to_string(image.task.pid) + " did not report ready");
        // Owned by the tree before anything can fail: if the restore
        // fails, ~RestoredTree kills every process before it lets any go
        // (a task let go half restored would run, and crash).
        restored->tasks_.push_back(std::make_unique<Task>(it->outer, image.task.pid));
        restored->images_.push_back(&image);
        Task& task = *restored->tasks_.back();
        if (progress) progress("restoring " + task.name());
        task.threads().emplace_back(it->outer, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE);
        task.inner_tids().push_back(image.task.pid);
        task.leader().interrupt();
        task.open_memory();
        transform(task, image, reader, fds, pool);
    }
    return restored;
}

}  // namespace ckpt::agent
