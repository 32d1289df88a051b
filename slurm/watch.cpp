// Rank 0's watcher: asks the job's coordinator for a checkpoint and stop
// when the launcher hands it a checkpoint signal, or when the job's time
// limit is --before-walltime away. A process of its own (`ckpt-run
// --role=slurm-watch`), so that the launcher's loop never waits for it.
#include "coordinator/ctl_client.hpp"
#include "slurm/slurm_job.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <iostream>

namespace ckpt::slurm {

namespace {

using Clock = std::chrono::steady_clock;

// The launcher queues this to its watcher, with the signal it got as value.
constexpr int kWatchSignal = SIGUSR1;
// How often the time limit is read again (`scontrol update TimeLimit` may move it).
constexpr auto kRecheck = std::chrono::seconds(60);
// How long a request waits for the coordinator to come up (a signal may come
// while the job is still starting).
constexpr auto kCoordinatorWait = std::chrono::seconds(120);

class Watcher {
public:
    Watcher(std::string dir, std::string run, unsigned margin, std::string job, int verbosity)
        : dir_(std::move(dir)), run_(std::move(run)), margin_(margin), job_(std::move(job)), verbosity_(verbosity) {}
    int run();

private:
    void say(const std::string& line, int level = 1) const {
        if (verbosity_ >= level) std::cerr << "ckpt-run (rank 0): " + line + "\n" << std::flush;  // one write
    }
    // Reads the time left; sets the moment to stop (or none) and the next look.
    void read_time_limit();
    void checkpoint_and_stop(const std::string& why);

    std::string dir_;
    std::string run_;  // the job id of this run's coordinator
    unsigned margin_;
    std::string job_;
    int verbosity_;
    std::optional<Clock::time_point> stop_at_;
    Clock::time_point next_look_ = Clock::time_point::max();
    bool walltime_done_ = false;
    bool first_look_ = true;
};

void Watcher::read_time_limit() {
    next_look_ = Clock::now() + kRecheck;
    try {
        auto left = time_left(job_);
        if (!left) {
            if (first_look_) say("job " + job_ + " has no time limit: no checkpoint before it", 2);
            first_look_ = false;
            stop_at_.reset();
            return;
        }
        if (first_look_ && *left <= static_cast<long>(margin_)) {
            say("job " + job_ + " has " + std::to_string(*left) + " s left, not more than --before-walltime " + std::to_string(margin_) +
                ": no checkpoint before the time limit", 0);
            walltime_done_ = true;
        }
        first_look_ = false;
        const auto at = Clock::now() + std::chrono::seconds(*left - static_cast<long>(margin_));
        if (!stop_at_ && !walltime_done_) say("job " + job_ + " ends in " + std::to_string(*left) + " s: checkpoint and stop " + std::to_string(margin_) +
                           " s before", 2);
        stop_at_ = at;
    } catch (const std::exception& e) {
        say(std::string("cannot read the job's time limit (trying again in a minute): ") + e.what(), 0);
    }
}

void Watcher::checkpoint_and_stop(const std::string& why) {
    say(why + ": checkpoint and stop");
    control::Message request("CHECKPOINT");
    request.set("stop", 1);
    const auto give_up = Clock::now() + kCoordinatorWait;
    control::CtlAnswer answer;
    while ((answer = control::ask_job(dir_, request, [&](const std::string& p) { say(p, 2); }, run_)).status == 3 && Clock::now() < give_up)
        poll(nullptr, 0, 200);
    if (answer.status == 0) say("checkpoint committed, the job stops: " + answer.text);
    else say("the checkpoint failed, the program goes on: " + answer.text, 0);
}

int Watcher::run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, kWatchSignal);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    agent::UniqueFd sfd(signalfd(-1, &set, SFD_CLOEXEC));
    if (!sfd.valid()) agent::fail_errno("cannot create a signalfd");
    if (margin_ > 0) read_time_limit();
    for (;;) {
        const auto now = Clock::now();
        if (margin_ > 0 && !walltime_done_ && stop_at_ && now >= *stop_at_) {
            read_time_limit();  // the limit may have moved since
            if (stop_at_ && Clock::now() >= *stop_at_ - std::chrono::seconds(1)) {
                walltime_done_ = true;
                checkpoint_and_stop(std::to_string(margin_) + " s or less before the time limit of job " + job_);
            }
            continue;
        }
        if (margin_ > 0 && now >= next_look_) read_time_limit();
        auto wake = margin_ > 0 ? next_look_ : Clock::time_point::max();
        if (stop_at_ && !walltime_done_) wake = std::min(wake, *stop_at_);
        int timeout = -1;
        if (wake != Clock::time_point::max())
            timeout = static_cast<int>(std::clamp<long>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count(), 0, 60000));
        pollfd p{sfd.get(), POLLIN, 0};
        if (poll(&p, 1, timeout) < 0 && errno != EINTR) agent::fail_errno("poll");
        if (!(p.revents & POLLIN)) continue;
        signalfd_siginfo si{};
        if (read(sfd.get(), &si, sizeof si) != sizeof si) continue;
        const char* name = sigabbrev_np(si.ssi_int);
        checkpoint_and_stop(std::string("SIG") + (name ? name : "?") + " arrived");
    }
}

}  // namespace

std::optional<std::vector<std::string>> watcher_args(const Options& o, const std::string& ckpt_dir, const std::string& run, unsigned rank,
                                                     int verbosity) {
    if (rank != 0 || (o.checkpoint_signals.empty() && o.before_walltime == 0)) return std::nullopt;
    std::string job;
    if (o.before_walltime > 0) {
        auto j = current_job();
        if (!j) agent::fail("--before-walltime needs a SLURM job (SLURM_JOB_ID is not set)");
        job = j->id;
    }
    return std::vector<std::string>{"ckpt-run", "--role=slurm-watch", ckpt_dir, run, std::to_string(o.before_walltime), std::to_string(verbosity),
                                    job};
}

bool take_checkpoint_signal(const Options& o, int sig, pid_t watcher) {
    if (std::find(o.checkpoint_signals.begin(), o.checkpoint_signals.end(), sig) == o.checkpoint_signals.end()) return false;
    // Every rank gets it from srun; rank 0's watcher asks once for the job.
    if (watcher > 0) {
        sigval v{};
        v.sival_int = sig;
        sigqueue(watcher, kWatchSignal, v);
    }
    return true;
}

int run_watcher(int argc, char** argv) {
    if (argc != 7) {
        std::cerr << "ckpt-run: bad internal invocation --role=slurm-watch\n";
        return 2;
    }
    try {
        return Watcher(argv[2], argv[3], static_cast<unsigned>(std::stoul(argv[4])), argv[6], std::stoi(argv[5])).run();
    } catch (const std::exception& e) {
        std::cerr << "ckpt-run --role=slurm-watch: error: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace ckpt::slurm
