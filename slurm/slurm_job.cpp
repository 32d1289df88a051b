#include "slurm/slurm_job.hpp"

#include "agent/sys.hpp"
#include "image/checkpoint_dir.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <map>

extern char** environ;

namespace ckpt::slurm {

using agent::fail;
namespace fs = std::filesystem;

namespace {

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
}

std::optional<long> to_number(std::string_view s) {
    long n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size() || n < 0) return std::nullopt;
    return n;
}

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

// "H:MM:SS", "M:SS" or "N": (seconds counting the last field as seconds, number of fields).
std::optional<std::pair<long, int>> colon_seconds(std::string_view text) {
    long total = 0;
    int parts = 0;
    for (;;) {
        const size_t colon = text.find(':');
        auto n = to_number(text.substr(0, colon));
        if (!n || ++parts > 3) return std::nullopt;
        total = total * 60 + *n;
        if (colon == std::string_view::npos) return std::pair{total, parts};
        text.remove_prefix(colon + 1);
    }
}

// The signals the launcher catches and may be told mean "checkpoint and stop".
const std::map<std::string, int>& checkpoint_signal_names() {
    static const std::map<std::string, int> names = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},
                                                     {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
                                                     {"ALRM", SIGALRM}};
    return names;
}

// Runs argv (found on PATH) with stdout captured, for at most timeout.
// Returns (exit status or -1, stdout).
std::pair<int, std::string> capture(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) agent::fail_errno("cannot create a pipe");
    agent::UniqueFd rd(out[0]), wr(out[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, wr.get(), STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int err = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    wr.reset();
    if (err != 0) {
        errno = err;
        agent::fail_errno("cannot run " + argv[0]);
    }
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        pollfd p{rd.get(), POLLIN, 0};
        if (left <= 0 || (poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR)) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            return {-1, text};
        }
        char buf[4096];
        const ssize_t n = read(rd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, text};
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    while (!s.empty() && s.front() == ' ') s.erase(0, 1);
    return s;
}

}  // namespace

std::optional<Job> current_job() {
    auto id = env("SLURM_JOB_ID");
    if (!id) return std::nullopt;
    Job j;
    j.id = *id;
    if (auto r = env("SLURM_RESTART_COUNT")) {
        auto n = to_number(*r);
        if (!n) fail("SLURM_RESTART_COUNT=" + *r + " is not a number");
        j.restarts = static_cast<unsigned>(*n);
    }
    j.step = env("SLURM_STEP_ID");
    return j;
}

std::string run_id(const Job& job) {
    std::string id = "slurm-" + job.id + "." + job.step.value_or("batch");
    if (job.restarts && *job.restarts > 0) id += ".r" + std::to_string(*job.restarts);
    return id;
}

std::string job_dir_name(const Job& job, const std::string& explicit_job_id) {
    if (explicit_job_id.empty()) return "slurm-" + job.id;
    if (all_digits(explicit_job_id)) return "slurm-" + explicit_job_id;
    if (explicit_job_id == "." || explicit_job_id == ".." ||
        explicit_job_id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
        fail("--job-id " + explicit_job_id + " cannot name the job's checkpoint directory: use letters, digits, '.', '_' and '-'");
    return explicit_job_id;
}

std::string job_dir(const std::string& base, const std::string& name) {
    fs::path b(base);
    while (b.has_relative_path() && b.filename().empty()) b = b.parent_path();  // "DIR/" names DIR
    if (b.filename() == name) return b.string();
    return (b / name).string();
}

int parse_checkpoint_signal(const std::string& name) {
    std::string n = name;
    if (n.starts_with("SIG")) n = n.substr(3);
    const auto& names = checkpoint_signal_names();
    if (auto it = names.find(n); it != names.end()) return it->second;
    if (auto num = to_number(n))
        for (const auto& [_, sig] : names)
            if (sig == *num) return sig;
    std::string allowed;
    for (const auto& [k, _] : names) allowed += (allowed.empty() ? "" : ", ") + k;
    fail("--checkpoint-signal " + name + ": not a signal ckpt-run can take as 'checkpoint and stop' (" + allowed + ")");
}

unsigned parse_duration(const std::string& text, const std::string& option) {
    const auto bad = [&] { fail(option + " " + text + ": not a duration (90, 90s, 15m, 2h, M:SS or H:MM:SS)"); };
    if (text.empty()) bad();
    if (text.find(':') != std::string::npos) {
        auto c = colon_seconds(text);
        if (!c) bad();
        return static_cast<unsigned>(c->first);
    }
    static const std::map<char, long> units = {{'s', 1}, {'m', 60}, {'h', 3600}};
    long unit = 1;
    std::string digits = text;
    if (auto it = units.find(text.back()); it != units.end()) {
        unit = it->second;
        digits.pop_back();
    }
    auto n = to_number(digits);
    if (!n) bad();
    return static_cast<unsigned>(*n * unit);
}

LaunchPlan plan_launch(const std::string& ckpt_dir, const std::string& restart, bool have_program, const std::string& explicit_job_id,
                       unsigned rank) {
    LaunchPlan plan;
    plan.ckpt_dir = ckpt_dir;
    plan.restart = restart == "never" ? "" : restart;
    auto job = current_job();
    if (!job) return plan;
    plan.slurm = true;
    plan.ckpt_dir = job_dir(ckpt_dir, job_dir_name(*job, explicit_job_id));
    std::error_code ec;
    fs::create_directories(fs::path(plan.ckpt_dir).parent_path(), ec);  // (CheckpointDir makes the last one, 0700)
    if (restart.empty() && have_program && fs::is_directory(plan.ckpt_dir)) {
        auto committed = image::CheckpointDir(plan.ckpt_dir).committed();
        if (!committed.empty()) {
            plan.restart = "auto";
            plan.drop_program = true;
            const std::string runs = job->restarts ? " (requeued " + std::to_string(*job->restarts) + " time(s))" : "";
            plan.notes.push_back("SLURM job " + job->id + runs + ": resuming from " + committed.back().path +
                                 ", the newest committed checkpoint (older ones if it cannot be restored; --restart=never starts anew)");
        }
    }
    // A batch script passes its program on every run; --restart (from another
    // job's directory, say) resumes whatever the checkpoint holds.
    if (!plan.restart.empty() && have_program) plan.drop_program = true;
    if (plan.restart.empty() && job->restarts && *job->restarts > 0)
        plan.notes.push_back("SLURM job " + job->id + " was requeued (" + std::to_string(*job->restarts) + " time(s)), but " +
                             plan.ckpt_dir + " holds no committed checkpoint" + (restart == "never" ? " to use (--restart=never)" : "") +
                             ": the program starts from the beginning");
    if (rank == 0) {
        try {
            register_job_dir(*job, plan.ckpt_dir);
        } catch (const std::exception& e) {
            plan.notes.push_back(std::string("cannot record the job's checkpoint directory for `ckpt-ctl --job-id`: ") + e.what());
        }
    }
    if (rank != 0) plan.notes.clear();
    return plan;
}

std::optional<long> parse_time_left(const std::string& text) {
    const std::string t = trim(text);
    if (t == "UNLIMITED" || t == "NOT_SET" || t == "INFINITE") return std::nullopt;
    long days = 0;
    std::string clock = t;
    if (auto dash = t.find('-'); dash != std::string::npos) {
        auto d = to_number(std::string_view(t).substr(0, dash));
        if (!d) fail("squeue's time left '" + t + "' is not [D-]H:MM:SS");
        days = *d;
        clock = t.substr(dash + 1);
    }
    auto c = colon_seconds(clock);
    if (!c) fail("squeue's time left '" + t + "' is not [D-]H:MM:SS");
    const long seconds = c->second == 1 ? c->first * 60 : c->first;  // a bare number is minutes, as in SLURM's time formats
    return days * 86400 + seconds;
}

std::optional<long> time_left(const std::string& job_id) {
    std::string why;
    try {
        auto [rc, out] = capture({"squeue", "-h", "-j", job_id, "-o", "%L"}, std::chrono::seconds(30));
        if (rc == 0 && !trim(out).empty()) return parse_time_left(out);
        why = rc < 0 ? "squeue did not answer within 30 s" : "squeue -j " + job_id + " exited " + std::to_string(rc);
    } catch (const agent::EngineError& e) {
        why = e.what();
    }
    if (auto end = env("SLURM_JOB_END_TIME")) {
        auto t = to_number(*end);
        if (!t) fail("SLURM_JOB_END_TIME=" + *end + " is not a time");
        return std::max(0L, *t - static_cast<long>(::time(nullptr)));
    }
    fail("cannot tell when job " + job_id + " ends: " + why + ", and SLURM_JOB_END_TIME is not set");
}

std::vector<std::string> keep_inherited_sockets_from_program() {
    std::vector<std::string> done;
    if (!current_job()) return done;
    const long pmi_fd = to_number(env("PMI_FD").value_or("")).value_or(-1);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
        const auto fd = to_number(e.path().filename().string());
        struct stat st {};
        if (!fd || *fd <= 2 || *fd == pmi_fd || fstat(static_cast<int>(*fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        const int flags = fcntl(static_cast<int>(*fd), F_GETFD);
        if (flags < 0 || (flags & FD_CLOEXEC)) continue;
        fcntl(static_cast<int>(*fd), F_SETFD, flags | FD_CLOEXEC);
        done.push_back("descriptor " + std::to_string(*fd) + " (a socket SLURM left open in the task) is not passed to the program");
    }
    return done;
}

std::string registry_dir() {
    if (auto d = env("CKPT_JOBS_DIR")) return *d;
    auto home = env("HOME");
    if (!home) fail("neither CKPT_JOBS_DIR nor HOME is set");
    return *home + "/.ckpt/jobs";
}

void register_job_dir(const Job& job, const std::string& dir) {
    const std::string reg = registry_dir();
    std::error_code ec;
    fs::create_directories(reg, ec);
    if (ec) fail("cannot create " + reg + ": " + ec.message());
    // Entries of jobs whose directories are gone are removed on the way.
    for (const auto& e : fs::directory_iterator(reg, ec))
        if (e.is_symlink(ec) && !fs::exists(e.path(), ec)) fs::remove(e.path(), ec);
    const std::string link = reg + "/slurm-" + job.id, tmp = link + ".tmp" + std::to_string(getpid());
    const fs::path target = fs::absolute(dir);
    fs::remove(tmp, ec);
    if (symlink(target.c_str(), tmp.c_str()) != 0) agent::fail_errno("cannot create " + tmp);
    if (rename(tmp.c_str(), link.c_str()) != 0) agent::fail_errno("cannot create " + link);
}

std::string ctl_dir(const std::string& ckpt_dir, const std::string& job_id) {
    std::string id = job_id;
    if (id.empty() && ckpt_dir.empty()) {
        if (auto job = current_job()) id = job->id;
        else fail("--ckpt-dir or --job-id is required (outside a SLURM job)");
    }
    if (id.empty()) {
        // A job's own directory, or the one above it inside the job.
        if (fs::exists(ckpt_dir + "/.coordinator") || fs::exists(ckpt_dir + "/latest")) return ckpt_dir;
        if (auto job = current_job()) {
            const std::string d = job_dir(ckpt_dir, "slurm-" + job->id);
            if (fs::is_directory(d)) return d;
        }
        return ckpt_dir;
    }
    const std::string name = id.starts_with("slurm-") ? id : all_digits(id) ? "slurm-" + id : id;
    if (!ckpt_dir.empty()) {
        const std::string d = job_dir(ckpt_dir, name);
        if (!fs::is_directory(d)) fail("job " + id + " has no checkpoint directory " + d);
        return d;
    }
    const std::string link = registry_dir() + "/" + name;
    std::error_code ec;
    const fs::path target = fs::read_symlink(link, ec);
    if (ec)
        fail("no checkpoint directory is recorded for job " + id + " in " + registry_dir() +
             " (ckpt-run records it there when it starts under SLURM; CKPT_JOBS_DIR or HOME must be the same here); give --ckpt-dir");
    return target.string();
}

}  // namespace ckpt::slurm
