#include "agent/restore.hpp"

#include "agent/memory.hpp"
#include "agent/procfs.hpp"
#include "agent/process.hpp"
#include "agent/signals.hpp"
#include "agent/threads.hpp"
#include "agent/timers.hpp"
#include "image/table.hpp"

#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>


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

void spawn(const TreeImage& tree, const TaskImage& t, const SharedFds& fds, int ready_fd);

[[noreturn]] void become_task(const TreeImage& tree, const TaskImage& t, const SharedFds& fds, int ready_fd) {
    try {
        if (t.task.sid == t.task.pid) {
            if (setsid() < 0) fail_errno("cannot restore the session of process " + std::to_string(t.task.pid));
        } else if (t.task.pgid == t.task.pid) {
            setpgid(0, 0);
        } else if (t.task.pgid != 0 && getpgid(0) != t.task.pgid) {
            setpgid(0, t.task.pgid);
        }
        for (const auto& child : tree.tasks)
            if (child.task.ppid == t.task.pid) spawn(tree, child, fds, ready_fd);
        if (t.task.state == static_cast<uint32_t>(TaskState::Zombie)) become_zombie(t);
        reset_signals_in_restorer();
        apply_process_in_restorer(t);
        install_fds(t, fds);
        report(ready_fd, "R" + std::to_string(t.task.pid));
    } catch (const std::exception& e) {
        report(ready_fd, std::string("E") + e.what());
        syscall(SYS_exit_group, 1);
    }
    for (;;) pause();
}

void spawn(const TreeImage& tree, const TaskImage& t, const SharedFds& fds, int ready_fd) {
    if (clone_with_pid(t.task.pid) == 0) become_task(tree, t, fds, ready_fd);
}

}  // namespace

int32_t spawn_tree(const TreeImage& tree, const RankReader& reader, int ready_fd, const FileOptions& options) {
    SharedFds fds;
    fds.lowest = restore_fd_base(tree);
    if (ready_fd < fds.lowest) fail("internal: the restore's descriptors must lie above the program's");
    create_shared_memory(reader, tree, fds);
    // The tracer maps these into the processes: tell it which fd is which.
    std::string announce = "S";
    for (const auto& [id, fd] : fds.shmem) announce += std::to_string(id) + "=" + std::to_string(fd) + ",";
    report(ready_fd, announce);
    create_shared_files(tree, fds, options);
    int32_t first = 0;
    for (const auto& t : tree.tasks) {
        if (t.task.ppid > 1 && tree.find(t.task.ppid)) continue;  // its parent creates it
        if (first == 0 && t.task.state != static_cast<uint32_t>(TaskState::Zombie)) first = t.task.pid;
        spawn(tree, t, fds, ready_fd);
    }
    // init keeps none of them: a pipe's write end held here would keep its
    // reader from ever seeing end of file.
    for (auto& [id, fd] : fds.files) close(fd);
    for (auto& [id, fd] : fds.shmem) close(fd);
    if (first == 0) fail("the checkpoint holds no live process");
    return first;
}

// ---- stages 4 and 5: the tracer ---------------------------------------------------

namespace {

struct Ready {
    int32_t pid;
    pid_t outer;
};

// Collects init's announcement of the shared memory fds ("S<id>=<fd>,...")
// and one "R<pid>" per live process; "E<message>" is a failure.
std::vector<Ready> wait_ready(const TreeImage& tree, int ready_fd, SharedFds& fds) {
    size_t expected = 0;
    for (const auto& t : tree.tasks) expected += t.task.state != static_cast<uint32_t>(TaskState::Zombie);
    std::vector<Ready> ready;
    while (ready.size() < expected) {
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
        ready.push_back({std::atoi(buf + 1), cred.pid});
    }
    return ready;
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

std::unique_ptr<RestoredTree> transform_tree(const TreeImage& tree, const RankReader& reader, int ready_fd,
                                             const std::function<void(const std::string&)>& progress) {
    if (progress) progress("waiting for the restored processes");
    SharedFds fds;
    fds.lowest = restore_fd_base(tree);
    auto restored = std::make_unique<RestoredTree>();
    auto ready = wait_ready(tree, ready_fd, fds);
    for (const auto& r : ready) restored->processes_.push_back(r.outer);
    WorkerPool pool(std::max(1u, std::thread::hardware_concurrency()));
    for (const auto& image : tree.tasks) {
        if (image.task.state == static_cast<uint32_t>(TaskState::Zombie)) continue;
        auto it = std::find_if(ready.begin(), ready.end(), [&](const Ready& r) { return r.pid == image.task.pid; });
        if (it == ready.end()) fail("process " + std::to_string(image.task.pid) + " did not report ready");
        auto task = std::make_unique<Task>(it->outer, image.task.pid);
        if (progress) progress("restoring " + task->name());
        task->threads().emplace_back(it->outer, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE);
        task->inner_tids().push_back(image.task.pid);
        task->leader().interrupt();
        task->open_memory();
        transform(*task, image, reader, fds, pool);
        restored->tasks_.push_back(std::move(task));
        restored->images_.push_back(&image);
    }
    return restored;
}

}  // namespace ckpt::agent
