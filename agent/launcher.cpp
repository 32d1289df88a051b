#include "agent/launcher.hpp"

#include "agent/cgroup.hpp"
#include "agent/dump.hpp"
#include "agent/namespaces.hpp"
#include "agent/restore.hpp"
#include "agent/job_place.hpp"
#include "agent/mpi_link.hpp"
#include "agent/node_agent.hpp"
#include "coordinator/coordinator.hpp"
#include "coordinator/protocol.hpp"
#include "image/checkpoint_dir.hpp"
#include "image/error.hpp"
#include "image/fault.hpp"
#include "image/inspect.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <thread>

namespace ckpt::agent {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A poll(2) timeout that ends at t (rounded up, so the wait is not cut short).
int ms_until(Clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count() + 1;
    return static_cast<int>(std::clamp<int64_t>(ms, 0, INT32_MAX));
}

// Signals ckpt-run passes on to the program.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH, SIGALRM};


int move_high(int fd) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, kRestoreFdBase + 4096);
    if (high < 0) fail_errno("cannot move a descriptor");
    close(fd);
    return high;
}

// ---- the job's init (PID 1 of its namespace) -----------------------------------

volatile sig_atomic_t g_main_pid = 0;

void forward_to_main(int sig) {
    if (g_main_pid > 0) kill(g_main_pid, sig);
}

// Reaps everything; when the program (main) ends, ends the namespace and
// reports the program's wait status to the launcher.
[[noreturn]] void init_reap(pid_t main, int status_fd) {
    g_main_pid = main;
    struct sigaction sa {};
    sa.sa_handler = forward_to_main;
    sa.sa_flags = SA_RESTART;
    for (int sig : kForwarded) sigaction(sig, &sa, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int main_status = 0;
    for (;;) {
        int st = 0;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0 && errno == EINTR) continue;
        if (p < 0) break;
        if (p == main) {
            main_status = st;
            kill(-1, SIGKILL);  // what the program left behind ends with it
        }
    }
    write(status_fd, &main_status, sizeof main_status);
    _exit(0);
}

[[noreturn]] void init_launch(const std::vector<std::string>& argv, int status_fd) {
    int exec_pipe[2];
    if (pipe2(exec_pipe, O_CLOEXEC) != 0) _exit(127);
    pid_t child = fork();
    if (child == 0) {
        restore_descriptor_limit();  // the program gets the limit it was started with
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        int err = errno;
        write(exec_pipe[1], &err, sizeof err);
        _exit(127);
    }
    close(exec_pipe[1]);
    int err = 0;
    if (read(exec_pipe[0], &err, sizeof err) == sizeof err) {
        std::cerr << "ckpt-run: cannot run " << argv[0] << ": " << strerror(err) << "\n";
        waitpid(child, nullptr, 0);
        int st = 127 << 8;
        write(status_fd, &st, sizeof st);
        _exit(0);
    }
    close(exec_pipe[0]);
    init_reap(child, status_fd);
}

[[noreturn]] void init_restore(const TreeImage& tree, const RankReader& reader, int ready_fd, int status_fd,
                               const FileOptions& files) {
    pid_t main = 0;
    try {
        main = spawn_tree(tree, reader, ready_fd, files);
    } catch (const std::exception& e) {
        std::string msg = std::string("E") + e.what();
        send(ready_fd, msg.data(), msg.size(), MSG_NOSIGNAL);
        _exit(1);
    }
    close(ready_fd);
    init_reap(main, status_fd);
}

// ---- the launcher ---------------------------------------------------------------

// Starts this same binary in another role (coordinator, node agent), ended
// when the launcher dies. Its stdout is not the program's.
pid_t spawn_role(const std::vector<std::string>& args) {
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) fail_errno("cannot fork");
    if (pid > 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    std::cerr << "ckpt-run: cannot start " << args[1] << ": " << strerror(errno) << "\n";
    _exit(127);
}

class Launcher {
public:
    explicit Launcher(const LaunchOptions& o) : options_(o) {}
    Launcher(const Launcher&) = delete;
    Launcher& operator=(const Launcher&) = delete;
    ~Launcher() { end_job_services(); }

    int run();

private:
    void say(const std::string& line, int level = 1) const {
        if (options_.verbosity >= level) std::cerr << "ckpt-run" + rank_tag_ + ": " + line + "\n" << std::flush;  // one write
    }
    void start_job_services();
    void join_job();
    void register_rank();
    void end_job_services();
    // Forks the helper that creates the job's namespaces and its init,
    // which runs `init_main`; sets init_ to init's pid.
    void fork_init(const std::optional<SavedClocks>& clocks, const std::function<void(int status_fd)>& init_main);
    void start_program();
    // The coordinated restart: RESTORE attempts until RELEASE (or FAIL).
    void restore_program(int signals);
    void prepare_restore(const std::string& checkpoint);
    void discard_restore();
    // Messages of a checkpoint round.
    void on_job_message(const control::Message& m);
    void freeze(uint64_t sequence);
    void dump(uint64_t sequence, const std::string& dir, bool stop, std::chrono::seconds phase_timeout);
    // A tree kept frozen for --stop whose checkpoint was neither committed
    // nor aborted in time (a coordinator stalled in its commit) thaws.
    void thaw_unanswered();
    void report_failure(const char* key, int64_t value, const std::string& why, const char* kind = "engine");
    // A coordinator killed in a round leaves its partial checkpoint behind:
    // nobody else knows the round ended, so rank 0 removes it.
    void reap_coordinator();
    // Messages of the MPI proxy, relayed to the node agent.
    void on_proxy_readable();
    // Hands the restored program's channel and MPI state to the new proxy.
    void attach_proxy();
    // Removes partial checkpoints nobody writes any more (their coordinator
    // died); every rank does when it learns that the coordinator is gone,
    // once its own dump is over, so the last one to stop writing leaves
    // nothing behind.
    void remove_abandoned_checkpoints();

    LaunchOptions options_;
    JobPlace place_;
    std::string rank_tag_;  // " (rank 3)" in a job of several ranks
    control::Channel link_;  // to the node agent
    bool linked_ = false;
    std::unique_ptr<JobCgroup> cgroup_;  // freezer of the job, when one can be made
    UniqueFd status_read_;               // the program's wait status arrives here
    RestartOrigins restart_origins_;
    std::unique_ptr<FrozenTree> frozen_;
    Clock::time_point frozen_at_;
    struct Unanswered {
        uint64_t sequence = 0;
        Clock::time_point thaw_at;
    };
    std::optional<Unanswered> unanswered_;  // a --stop dump awaiting COMMITTED or ABORT
    // A restore in progress: the image, and the tree stopped before release.
    std::optional<TreeImage> restore_image_;
    std::unique_ptr<RankReader> restore_reader_;
    std::unique_ptr<RestoredTree> restored_;
    std::vector<pid_t> services_;  // coordinator, node agent
    pid_t coordinator_ = 0;        // rank 0's, until it ends
    pid_t watcher_ = 0;            // rank 0's SLURM watcher (slurm/watch.cpp), when asked for
    pid_t helper_ = 0;  // parent of init, child of the launcher
    pid_t init_ = 0;
    bool stopped_ = false;
    std::unique_ptr<MpiLink> mpi_;                       // the rank's MPI proxy, when the program has the MPI layer
    std::optional<std::vector<uint8_t>> restore_mpi_;   // the MPI state of the checkpoint being restored
    bool mpi_program_ = false;                          // the program talks to the proxy (else it answers for it)
};

void Launcher::start_job_services() {
    const std::string self = "ckpt-run";
    const std::string verbosity = std::to_string(options_.verbosity);
    if (place_.rank == 0) {
        std::vector<std::string> args = {self, "--role=coordinator", options_.ckpt_dir, place_.job_id, std::to_string(place_.size),
                                          std::to_string(options_.keep), std::to_string(options_.interval_seconds),
                                          options_.restart, std::to_string(options_.phase_timeout), verbosity};
        coordinator_ = spawn_role(args);
        services_.push_back(coordinator_);
    }
    if (place_.local_rank == 0)
        services_.push_back(spawn_role({self, "--role=agent", options_.ckpt_dir, place_.job_id, verbosity}));
    if (auto args = slurm::watcher_args(options_.slurm, options_.ckpt_dir, place_.job_id, place_.rank, options_.verbosity))
        services_.push_back(watcher_ = spawn_role(*args));
}

// The coordinator and node agent this rank started end before it does: a
// job that has exited leaves nothing behind, and the directory's lock is
// free for the next job (a restart) as soon as this one's ckpt-run is gone.
// (SIGCONT: one that is stopped, a stalled coordinator, ends too.) A
// coordinator stopped in a round leaves its partial checkpoint: rank 0
// removes it.
void Launcher::end_job_services() {
    link_ = control::Channel();
    linked_ = false;
    for (pid_t s : services_) {
        kill(s, SIGTERM);
        kill(s, SIGCONT);
    }
    for (pid_t s : services_)
        while (waitpid(s, nullptr, 0) < 0 && errno == EINTR) {
        }
    if (coordinator_ > 0) {  // not reaped before: it may have left one
        coordinator_ = 0;
        remove_abandoned_checkpoints();
    }
    services_.clear();
}

// Registers with the node agent, which the node's local rank 0 starts.
void Launcher::join_job() {
    const std::string path = control::agent_socket_path(place_.job_id);
    const auto deadline = Clock::now() + std::chrono::seconds(options_.connect_timeout);
    UniqueFd fd;
    while (!(fd = control::connect_unix(path)).valid()) {
        for (pid_t s : services_)
            if (waitpid(s, nullptr, WNOHANG) == s) fail("the job's coordinator or node agent could not start (see above)");
        if (Clock::now() > deadline)
            fail("no node agent of job " + place_.job_id + " answered within " + std::to_string(options_.connect_timeout) + " s at " + path +
                 " (it is started by the node's local rank 0)");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    link_ = control::Channel(std::move(fd));
    linked_ = true;
}

// Once registered, the rank may be asked to freeze: a new program must
// have started by then.
void Launcher::register_rank() {
    control::Message reg("REGISTER");
    reg.set("rank", place_.rank).set("pid", getpid()).set("mpi", mpi_ ? 1 : 0);
    if (!link_.send(reg)) fail("the node agent of job " + place_.job_id + " went away");
}

// launcher -> helper -> init -> program, each killed when its parent dies:
// a launcher that dies takes the whole job with it.
void Launcher::fork_init(const std::optional<SavedClocks>& clocks, const std::function<void(int status_fd)>& init_main) {
    // Each job (each restore attempt) reports through a pipe of its own.
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0) fail_errno("cannot create a pipe");
    status_read_ = UniqueFd(move_high(status_pipe[0]));
    UniqueFd status_write(move_high(status_pipe[1]));
    int pid_pipe[2];
    if (pipe2(pid_pipe, O_CLOEXEC) != 0) fail_errno("cannot create a pipe");
    UniqueFd pid_read(pid_pipe[0]), pid_write(pid_pipe[1]);
    const pid_t launcher = getpid();
    helper_ = fork();
    if (helper_ < 0) fail_errno("cannot fork");
    if (helper_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != launcher) _exit(1);
        link_ = control::Channel();  // the job's link stays the launcher's
        try {
            if (cgroup_) cgroup_->join_self();
            unshare_job_namespaces(clocks);
        } catch (const std::exception& e) {
            std::cerr << "ckpt-run: error: " << e.what() << "\n";
            _exit(1);
        }
        pid_t init = fork();
        if (init == 0) {
            // (The helper outlives init unless killed, and its parent is
            // outside this PID namespace: getppid() says 0 here.)
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            setsid();
            try {
                mount_job_proc();
            } catch (const std::exception& e) {
                std::cerr << "ckpt-run: error: " << e.what() << "\n";
                _exit(1);
            }
            init_main(status_write.get());
            _exit(1);
        }
        write(pid_write.get(), &init, sizeof init);
        int st = 0;
        while (waitpid(init, &st, 0) < 0 && errno == EINTR) {
        }
        _exit(0);
    }
    pid_write.reset();
    status_write.reset();
    if (read_full(pid_read.get(), &init_, sizeof init_) != sizeof init_ || init_ <= 0) {
        waitpid(helper_, nullptr, 0);
        fail("could not start the job's namespaces");
    }
}

void Launcher::start_program() {
    mpi_program_ = mpi_ != nullptr;
    if (mpi_) mpi_->prepare_program();
    fork_init(std::nullopt, [&](int status_fd) { init_launch(options_.argv, status_fd); });
}

void Launcher::report_failure(const char* key, int64_t value, const std::string& why, const char* kind) {
    control::Message m("FAILED");
    m.set(key, value).set("text", why).set("kind", kind);
    link_.send(m);
}

void Launcher::reap_coordinator() {
    int st = 0;
    if (coordinator_ <= 0 || waitpid(coordinator_, &st, WNOHANG) != coordinator_) return;
    coordinator_ = 0;
    if (!WIFSIGNALED(st)) return;
    say(std::string("the job's coordinator was killed (") + strsignal(WTERMSIG(st)) + "): no more checkpoints for this job", 0);
    remove_abandoned_checkpoints();
}

void Launcher::remove_abandoned_checkpoints() {
    try {
        image::CheckpointDir(options_.ckpt_dir).remove_abandoned();
    } catch (const std::exception& e) {
        say(std::string("could not remove the partial checkpoint of the job's coordinator: ") + e.what(), 0);
    }
}

void Launcher::prepare_restore(const std::string& checkpoint) {
    const auto start = Clock::now();
    const std::string rank_file = checkpoint + "/" + rank_file_name(place_.rank);
    say("restoring from " + rank_file);
    fault_point(FaultPoint::RankRestoring, place_.rank);
    restore_reader_ = std::make_unique<RankReader>(rank_file);
    restore_image_ = load_tree(*restore_reader_);
    restore_mpi_ = MpiLink::read_image(*restore_reader_);
    if (restore_mpi_ && !mpi_) fail(rank_file + " holds an MPI program's state: restart it under mpirun or srun (or with --mpi openmpi)");
    if (!restore_mpi_ && mpi_) {
        if (options_.mpi != "auto") fail(rank_file + " was checkpointed without the MPI layer (--mpi none): restart it with --mpi none");
        // A program checkpointed without the MPI layer comes back without
        // it; the proxy stays idle (it finalizes with the others at the end).
    }
    mpi_program_ = mpi_ && restore_mpi_;
    const TreeImage& tree = *restore_image_;
    const RankReader& reader = *restore_reader_;
    SavedClocks clocks;
    for (const auto& t : tree.tasks)
        if (t.task.state != static_cast<uint32_t>(TaskState::Zombie)) {
            clocks = {t.process.monotonic_ns, t.process.boottime_ns};
            break;
        }
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) fail_errno("cannot create a socket pair");
    UniqueFd mine(move_high(pair[0])), theirs(move_high(pair[1]));
    int on = 1;
    setsockopt(mine.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    fork_init(clocks, [&](int status_fd) {
        mine.reset();
        init_restore(tree, reader, theirs.release(), status_fd, FileOptions{options_.truncate_written});
    });
    theirs.reset();
    restored_ = transform_tree(tree, reader, mine.get(), [&](const std::string& p) { say(p, 2); });
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f s", seconds_since(start));
    say("restored " + std::to_string(tree.tasks.size()) + " process(es) in " + buf + "; waiting for the other ranks", 2);
}

// Kills a restore that may not go on, and everything it created.
void Launcher::discard_restore() {
    restored_.reset();
    if (init_ > 0) {
        kill(init_, SIGKILL);
        waitpid(helper_, nullptr, 0);
        init_ = 0;
    }
    status_read_.reset();
    restore_reader_.reset();
    restore_image_.reset();
}

void Launcher::restore_program(int signals) {
    for (;;) {
        pollfd fds[2] = {{link_.fd(), POLLIN, 0}, {signals, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            fail_errno("poll");
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo si{};
            if (read(signals, &si, sizeof si) == sizeof si && si.ssi_signo != SIGCHLD) {
                discard_restore();
                fail(std::string("restart interrupted by ") + strsignal(static_cast<int>(si.ssi_signo)));
            }
        }
        if (!fds[0].revents) continue;
        const bool open = link_.fill();
        while (auto m = link_.buffered()) {
            if (m->verb == "RESTORE") {
                const int64_t attempt = m->number("attempt");
                discard_restore();
                try {
                    prepare_restore(m->get("path"));
                    link_.send(control::Message("RESTORED").set("attempt", attempt));
                } catch (const ImageError& e) {
                    discard_restore();
                    report_failure("attempt", attempt, e.what(), "image");
                } catch (const std::exception& e) {
                    discard_restore();
                    report_failure("attempt", attempt, e.what());
                }
            } else if (m->verb == "ABORT") {
                discard_restore();
            } else if (m->verb == "RELEASE") {
                if (!restored_) fail("the coordinator released a restore this rank does not have");
                if (mpi_) mpi_->send("INIT");  // every rank has restored: none will fail its MPI_Init now
                if (mpi_program_) attach_proxy();
                restored_->release(restart_origins_);
                restored_.reset();
                say("resumed from the checkpoint together with every rank", 2);
                return;
            } else if (m->verb == "FAIL") {
                discard_restore();
                fail(m->get("text"));
            } else if (m->verb == "DETACHED") {
                discard_restore();
                fail("restart failed before the restored ranks were released: " + m->get("text") + "; the restored processes of this rank were killed");
            }
        }
        if (!open) {
            discard_restore();
            fail("lost the node agent during the restart");
        }
    }
}

void Launcher::attach_proxy() {
    const auto [pid, fd] = MpiLink::channel_holder(*restore_mpi_);
    const pid_t outer = restored_->outer_pid(pid);
    if (outer <= 0) fail("the restored tree has no process " + std::to_string(pid) + " (the one that called MPI_Init)");
    mpi_->put_state(*restore_mpi_);
    mpi_->send("ATTACH", {{"pid", std::to_string(outer)}, {"fd", std::to_string(fd)}});
    mpi_->wait_for("ATTACHED", std::chrono::seconds(options_.phase_timeout));
    say("the MPI proxy stands in for the old one: objects made again, requests posted again", 2);
}

void Launcher::on_proxy_readable() {
    bool alive = true;
    for (auto& [verb, args] : mpi_->receive(alive)) {
        if (verb == "COUNTS" || verb == "RAISE" || verb == "SAFE" || verb == "DRAINED" || verb == "FAILED") {
            control::Message m(verb, args);
            if (verb == "FAILED" && !m.has("kind")) m.set("kind", "mpi");
            if (linked_) link_.send(m);
        }
    }
    if (!alive) {
        say("the MPI proxy of this rank died: the program cannot go on", 0);
        mpi_.reset();
        if (mpi_program_ && init_ > 0) kill(init_, SIGKILL);
        mpi_program_ = false;
    }
}

void Launcher::freeze(uint64_t sequence) {
    const auto seq = static_cast<int64_t>(sequence);
    try {
        if (frozen_) fail("already frozen for another checkpoint");
        frozen_at_ = Clock::now();
        frozen_ = std::make_unique<FrozenTree>(init_, cgroup_.get(), restart_origins_);
        say("frozen with " + frozen_->method() + ": " + std::to_string(frozen_->records().size()) + " process(es)", 2);
        link_.send(control::Message("FROZEN").set("sequence", seq));
    } catch (const std::exception& e) {
        frozen_.reset();
        report_failure("sequence", seq, std::string("cannot freeze: ") + e.what());
    }
}

void Launcher::dump(uint64_t sequence, const std::string& dir, bool stop, std::chrono::seconds phase_timeout) {
    const auto seq = static_cast<int64_t>(sequence);
    const auto start = Clock::now();
    try {
        if (!frozen_) fail("asked to dump while not frozen");
        fault_point(FaultPoint::RankDumpStart, place_.rank);
        RankHeader header;
        header.rank = place_.rank;
        header.job_id = place_.job_id;
        PageOptions pages;
        pages.compression = options_.compression;
        RankWriter writer(dir + "/" + rank_file_name(place_.rank), header, pages);
        dump_tree(*frozen_, writer, getpid(), DumpProgress{[&](const std::string& p) {
                      say(p, 2);
                      link_.send(control::Message("PROGRESS").set("text", p));
                  }});
        const int64_t dump_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
        // Everything is read: the program goes on while the image is
        // verified and synced (a commit that fails after this costs the
        // program nothing). With --stop it stays frozen until the commit.
        if (mpi_program_) MpiLink::write_image(writer, mpi_->take_state());
        double paused = 0;
        if (!stop) {
            if (mpi_program_) mpi_->send("RESUME");
            frozen_.reset();
            paused = seconds_since(frozen_at_);
        }
        link_.send(control::Message("PROGRESS").set("text", "writing and verifying the image"));
        RankSummary s = writer.finish(dump_ns);
        fault_point(FaultPoint::RankDumped, place_.rank);
        // The dump phase ends within a phase timeout of the DUMP, the commit
        // within another.
        if (stop) unanswered_ = Unanswered{sequence, start + 2 * phase_timeout};
        control::Message done("DUMPED");
        control::put_record(done, manifest_row(writer.header(), s, dump_ns));
        done.set("sequence", seq).set("paused_ns", static_cast<int64_t>(paused * 1e9));
        link_.send(done);
        char buf[128];
        snprintf(buf, sizeof buf, "dumped %s in %.3f s%s", human_bytes(static_cast<double>(s.on_disk_bytes)).c_str(), seconds_since(start),
                 stop ? "" : (", paused " + std::to_string(paused).substr(0, 5) + " s").c_str());
        say(buf, 2);
    } catch (const std::exception& e) {
        if (mpi_program_ && !stop) mpi_->send("RESUME");
        frozen_.reset();
        report_failure("sequence", seq, e.what());
    }
}

void Launcher::thaw_unanswered() {
    if (!unanswered_ || Clock::now() < unanswered_->thaw_at) return;
    const uint64_t sequence = unanswered_->sequence;
    unanswered_.reset();
    if (!frozen_) return;
    frozen_.reset();
    say("checkpoint " + std::to_string(sequence) + " was neither committed nor aborted in time (a stalled coordinator?): the program goes on", 0);
}

void Launcher::on_job_message(const control::Message& m) {
    if (m.verb == "FREEZE") {
        freeze(static_cast<uint64_t>(m.number("sequence")));
    } else if (m.verb == "DUMP") {
        const auto timeout = m.has("timeout") ? std::chrono::seconds(m.number("timeout")) : std::chrono::seconds(options_.phase_timeout);
        dump(static_cast<uint64_t>(m.number("sequence")), m.get("dir"), m.get("stop") == "1", timeout);
    } else if (m.verb == "PREPARE" || m.verb == "TARGETS" || m.verb == "DRAIN") {
        if (mpi_program_) {
            control::Message fwd = m;
            fwd.args.erase("to");
            mpi_->send(fwd.verb, fwd.args);
        } else {
            // A rank without MPI has nothing to quiesce: safe, and drained, at once.
            const int64_t seq = m.number("sequence");
            if (m.verb == "PREPARE") link_.send(control::Message("COUNTS").set("sequence", seq).set("counts", "-"));
            if (m.verb == "TARGETS") link_.send(control::Message("SAFE").set("sequence", seq).set("version", m.number("version")));
            if (m.verb == "DRAIN") link_.send(control::Message("DRAINED").set("sequence", seq).set("messages", 0));
        }
    } else if (m.verb == "ABORT") {
        if (frozen_) say("checkpoint aborted, the program goes on: " + m.get("text"), 2);
        if (mpi_program_) mpi_->send("RESUME");
        frozen_.reset();
    } else if (m.verb == "COMMITTED") {
        if (m.get("stop") == "1" && frozen_) {
            frozen_->kill_all();
            frozen_.reset();
            stopped_ = true;
        }
    } else if (m.verb == "DETACHED" || m.verb == "FAIL") {
        frozen_.reset();
        // (The coordinator leaves with rank 0 at the job's end: no news then.)
        say("no more checkpoints for this job: " + m.get("text"), m.verb == "FAIL" ? 0 : 2);
        if (m.verb == "DETACHED") remove_abandoned_checkpoints();
    }
    if (!frozen_) unanswered_.reset();
}

int Launcher::run() {
    place_ = detect_job_place(options_.job_id);
    if (place_.size > 1) rank_tag_ = " (rank " + std::to_string(place_.rank) + ")";
    start_job_services();
    cgroup_ = JobCgroup::create("ckpt-run." + std::to_string(getpid()));
    // The proxy stays outside the job's namespaces (and its cgroup).
    if (want_mpi(options_.mpi)) mpi_ = MpiLink::start(!options_.restart.empty());
    enter_user_namespace();
    join_job();

    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGCHLD);
    for (int sig : kForwarded) sigaddset(&handled, sig);
    sigprocmask(SIG_BLOCK, &handled, nullptr);
    UniqueFd signals(signalfd(-1, &handled, SFD_CLOEXEC));

    if (options_.restart.empty()) {
        if (mpi_) mpi_->send("INIT");  // the job is up: its node agent joined the coordinator
        start_program();
        register_rank();
    } else {
        register_rank();
        restore_program(signals.get());
    }

    int program_status = -1;
    for (;;) {
        // (The restart may have left messages read but not handled.)
        while (linked_) {
            auto m = link_.buffered();
            if (!m) break;
            on_job_message(*m);
        }
        pollfd fds[4] = {{status_read_.get(), POLLIN, 0},
                         {signals.get(), POLLIN, 0},
                         {linked_ ? link_.fd() : -1, POLLIN, 0},
                         {mpi_ ? mpi_->fd() : -1, POLLIN, 0}};
        const int ready = poll(fds, 4, unanswered_ ? ms_until(unanswered_->thaw_at) : -1);
        thaw_unanswered();
        if (ready < 0) {
            if (errno == EINTR) continue;
            fail_errno("poll");
        }
        if (fds[0].revents) {
            // The job's end is seen on the status pipe alone: it holds init's
            // report, or reaches end of file when init died without one.
            // (SIGCHLD also comes from tracees and may precede the report.)
            int st = 0;
            if (read(status_read_.get(), &st, sizeof st) == sizeof st) program_status = st;
            else if (!stopped_) say("the job's init process (pid " + std::to_string(init_) + ") ended without the program's exit status: it was killed", 0);
            waitpid(helper_, nullptr, 0);
            break;
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo si{};
            if (read(signals.get(), &si, sizeof si) == sizeof si && si.ssi_signo != SIGCHLD &&
                !slurm::take_checkpoint_signal(options_.slurm, static_cast<int>(si.ssi_signo), watcher_))
                kill(init_, static_cast<int>(si.ssi_signo));
            reap_coordinator();
        }
        if (fds[2].revents) {
            const bool open = link_.fill();
            try {
                while (auto m = link_.buffered()) on_job_message(*m);
            } catch (const EngineError& e) {
                say(std::string("bad message from the node agent: ") + e.what(), 0);
            }
            if (!open) {
                frozen_.reset();
                linked_ = false;
                if (!stopped_) say("lost the node agent: no more checkpoints for this job", 2);
            }
        }
        if (fds[3].revents && mpi_) on_proxy_readable();
    }
    // Every rank's proxy finalizes unless the program failed (then the
    // launcher must see this rank fail, not wait for the others).
    if (mpi_) mpi_->end(stopped_ || (program_status >= 0 && WIFEXITED(program_status) && WEXITSTATUS(program_status) == 0));
    end_job_services();
    if (stopped_) return kExitStopped;
    if (program_status < 0) return 1;
    if (WIFEXITED(program_status)) return WEXITSTATUS(program_status);
    if (WIFSIGNALED(program_status)) return 128 + WTERMSIG(program_status);
    return 1;
}

}  // namespace

int run_launcher(const LaunchOptions& options) {
    Launcher launcher(options);
    return launcher.run();
}

int run_role(int argc, char** argv) {
    const std::string role = argv[1];
    const std::vector<std::string> a(argv + 2, argv + argc);
    try {
        if (role == "--role=coordinator" && a.size() == 8) {
            control::CoordinatorOptions o;
            o.ckpt_dir = a[0];
            o.job_id = a[1];
            o.size = static_cast<uint32_t>(std::stoul(a[2]));
            o.keep = static_cast<unsigned>(std::stoul(a[3]));
            o.interval_seconds = static_cast<unsigned>(std::stoul(a[4]));
            o.restart = a[5];
            o.phase_timeout = std::chrono::seconds(std::stoul(a[6]));
            o.verbosity = std::stoi(a[7]);
            prctl(PR_SET_NAME, "ckpt-coordinatr");
            return control::run_coordinator(o);
        }
        if (role == "--role=agent" && a.size() == 3) {
            NodeAgentOptions o;
            o.ckpt_dir = a[0];
            o.job_id = a[1];
            o.verbosity = std::stoi(a[2]);
            prctl(PR_SET_NAME, "ckpt-agent");
            return run_node_agent(o);
        }
    } catch (const std::exception& e) {
        std::cerr << "ckpt-run " << role << ": error: " << e.what() << "\n";
        return 1;
    }
    std::cerr << "ckpt-run: bad internal invocation " << role << "\n";
    return 2;
}

}  // namespace ckpt::agent
