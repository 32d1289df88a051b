#include "agent/launcher.hpp"

#include "agent/cgroup.hpp"
#include "agent/dump.hpp"
#include "agent/namespaces.hpp"
#include "agent/restore.hpp"
#include "coordinator/control.hpp"
#include "image/checkpoint_dir.hpp"
#include "image/error.hpp"
#include "image/inspect.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>

namespace ckpt::agent {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Signals ckpt-run passes on to the program.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH, SIGALRM};

std::string human(double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
    return buf;
}

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

class Launcher {
public:
    explicit Launcher(const LaunchOptions& o) : options_(o), dir_(o.ckpt_dir) {}

    int run();

private:
    void say(const std::string& line, int level = 1) const {
        if (options_.verbosity >= level) std::cerr << "ckpt-run: " << line << std::endl;
    }
    // Forks the helper that creates the job's namespaces and its init,
    // which runs `init_main`; sets init_ to init's pid.
    void fork_init(const std::optional<SavedClocks>& clocks, const std::function<void(int status_fd)>& init_main);
    void start_program();
    void restore_program();
    // Rank files to restore from, in order of preference.
    std::vector<std::string> restart_candidates() const;
    void restore_from(const std::string& rank_file);
    // Takes a checkpoint; reports progress to `client` when there is one.
    bool checkpoint(bool stop, control::Connection* client);
    void serve(control::Connection client);

    LaunchOptions options_;
    CheckpointDir dir_;
    std::unique_ptr<JobCgroup> cgroup_;  // freezer of the job, when one can be made
    UniqueFd status_read_;               // the program's wait status arrives here
    RestartOrigins restart_origins_;
    pid_t helper_ = 0;  // parent of init, child of the launcher
    pid_t init_ = 0;
    bool stopped_ = false;
    bool busy_ = false;
};

std::vector<std::string> Launcher::restart_candidates() const {
    auto rank_file_of = [](std::string path) {
        std::error_code ec;
        if (std::filesystem::is_directory(path, ec)) {
            if (std::filesystem::exists(path + "/latest")) path += "/latest";
            // Two appends: GCC 12's -Wrestrict misreads `"/" + std::string&&` at -O2.
            path += '/';
            path += rank_file_name(0);
        }
        return path;
    };
    if (options_.restart != "auto") return {rank_file_of(options_.restart)};
    // Newest first, skipping those whose structure and tables do not
    // validate; page data is verified while it is restored, and a damaged
    // one sends the restore on to the next candidate.
    auto all = dir_.committed();
    if (all.empty()) fail("no committed checkpoint in " + options_.ckpt_dir + " to restart from");
    std::vector<std::string> out;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        InspectReport report = inspect(it->path, false, 1);
        if (report.error.empty())
            out.push_back(rank_file_of(it->path));
        else
            say("checkpoint " + it->path + " is not usable (" + report.error + "); trying an older one", 0);
    }
    if (out.empty()) fail("no checkpoint in " + options_.ckpt_dir + " validates");
    return out;
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
    fork_init(std::nullopt, [&](int status_fd) { init_launch(options_.argv, status_fd); });
}

void Launcher::restore_program() {
    const auto candidates = restart_candidates();
    for (size_t i = 0; i < candidates.size(); ++i) {
        try {
            restore_from(candidates[i]);
            return;
        } catch (const ImageError& e) {
            if (i + 1 == candidates.size()) throw;
            say(std::string("cannot restore from a damaged image (") + e.what() + "); trying an older checkpoint", 0);
        }
    }
}

void Launcher::restore_from(const std::string& rank_file) {
    const auto start = Clock::now();
    say("restoring from " + rank_file);
    RankReader reader(rank_file);
    const TreeImage tree = load_tree(reader);
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
    try {
        transform_tree(tree, reader, mine.get(), restart_origins_, [&](const std::string& p) { say(p, 2); });
    } catch (...) {
        kill(init_, SIGKILL);
        waitpid(helper_, nullptr, 0);
        init_ = 0;
        throw;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f s", seconds_since(start));
    say("restored " + std::to_string(tree.tasks.size()) + " process(es) in " + buf);
}

bool Launcher::checkpoint(bool stop, control::Connection* client) {
    auto progress = [&](const std::string& line) {
        say(line, 2);
        if (client) client->send_line("progress " + line);
    };
    const auto start = Clock::now();
    try {
        progress("freezing the process tree");
        FrozenTree tree(init_, cgroup_.get(), restart_origins_);
        progress("frozen with " + tree.method() + ": " + std::to_string(tree.records().size()) + " process(es)");
        const auto frozen = Clock::now();
        PendingCheckpoint pending = dir_.begin();
        RankHeader header;
        header.rank = 0;
        header.job_id = options_.job_id;
        PageOptions pages;
        pages.compression = options_.compression;
        RankWriter writer(pending.rank_path(0), header, pages);
        dump_tree(tree, writer, getpid(), DumpProgress{progress});
        const int64_t dump_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - frozen).count();
        // Everything is read: the program goes on while the image is
        // verified, synced and committed (a commit that fails after this
        // costs the program nothing). With --stop it stays frozen until
        // the commit and is killed after it.
        double paused = 0;
        if (!stop) {
            tree.thaw();
            paused = seconds_since(frozen);
        }
        progress("writing and verifying the image");
        RankSummary s = writer.finish(dump_ns);
        const ManifestRankRecord row = manifest_row(writer.header(), s, dump_ns);
        const int64_t total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
        const std::string path = pending.commit(options_.job_id, total_ns, {row});
        if (stop) {
            paused = seconds_since(frozen);
            tree.kill_all();
            stopped_ = true;
        }
        dir_.apply_retention(options_.keep);
        char buf[512];
        snprintf(buf, sizeof buf, "checkpoint %s committed: %u process(es), %u thread(s), %s stored in %.3f s (%.0f MB/s), paused %.3f s%s",
                 std::filesystem::path(path).filename().c_str(), s.ntasks, s.nthreads, human(static_cast<double>(s.stored_bytes)).c_str(),
                 static_cast<double>(total_ns) / 1e9, static_cast<double>(s.stored_bytes) / 1e6 / (static_cast<double>(total_ns) / 1e9),
                 paused, stop ? ", program stopped" : "");
        say(buf);
        if (client) client->send_line(std::string("ok ") + path + " " + buf);
        return true;
    } catch (const std::exception& e) {
        const std::string why = std::string("checkpoint failed, the program goes on: ") + e.what();
        say(why, 0);
        if (client) client->send_line("error " + std::string(e.what()));
        return false;
    }
}

void Launcher::serve(control::Connection client) {
    auto line = client.read_line();
    if (!line) return;
    if (*line == "checkpoint" || *line == "checkpoint stop") {
        if (stopped_) {
            client.send_line("error the program was already stopped after a checkpoint");
            return;
        }
        checkpoint(*line == "checkpoint stop", &client);
    } else if (*line == "status") {
        auto latest = dir_.latest();
        client.send_line("progress job " + (options_.job_id.empty() ? std::string("-") : options_.job_id) + ", 1 rank on this node");
        client.send_line("progress phase " + std::string(busy_ ? "checkpointing" : "running"));
        client.send_line("ok last committed checkpoint: " + (latest ? latest->path : std::string("none")));
    } else {
        client.send_line("error unknown request '" + *line + "'");
    }
}

int Launcher::run() {
    cgroup_ = JobCgroup::create("ckpt-run." + std::to_string(getpid()));
    enter_user_namespace();
    control::Server server(options_.ckpt_dir);

    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGCHLD);
    for (int sig : kForwarded) sigaddset(&handled, sig);
    sigprocmask(SIG_BLOCK, &handled, nullptr);
    UniqueFd signals(signalfd(-1, &handled, SFD_CLOEXEC));

    if (options_.restart.empty())
        start_program();
    else
        restore_program();
    const UniqueFd& status_read = status_read_;

    UniqueFd timer;
    if (options_.interval_seconds > 0) {
        timer.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
        itimerspec every{{static_cast<time_t>(options_.interval_seconds), 0}, {static_cast<time_t>(options_.interval_seconds), 0}};
        timerfd_settime(timer.get(), 0, &every, nullptr);
    }
    int program_status = -1;
    for (;;) {
        pollfd fds[4] = {{server.fd(), POLLIN, 0}, {signals.get(), POLLIN, 0}, {status_read.get(), POLLIN, 0}, {timer.get(), POLLIN, 0}};
        if (poll(fds, timer.valid() ? 4 : 3, -1) < 0) {
            if (errno == EINTR) continue;
            fail_errno("poll");
        }
        if (fds[2].revents) {
            int st = 0;
            if (read(status_read.get(), &st, sizeof st) == sizeof st) program_status = st;
            waitpid(helper_, nullptr, 0);
            break;
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo si{};
            if (read(signals.get(), &si, sizeof si) == sizeof si && si.ssi_signo != SIGCHLD) kill(init_, static_cast<int>(si.ssi_signo));
            // The job's end is seen on the status pipe alone: it holds init's
            // report, or reaches end of file when init died without one.
            // (SIGCHLD also comes from tracees and may precede the report.)
        }
        if (fds[0].revents & POLLIN) {
            if (auto client = server.accept()) {
                busy_ = true;
                serve(std::move(*client));
                busy_ = false;
            }
        }
        if (timer.valid() && (fds[3].revents & POLLIN)) {
            uint64_t expirations = 0;
            read(timer.get(), &expirations, sizeof expirations);
            if (!stopped_) checkpoint(false, nullptr);
        }
    }
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

}  // namespace ckpt::agent
