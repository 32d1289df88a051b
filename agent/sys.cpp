#include "agent/sys.hpp"

#include <sys/resource.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include <vector>

namespace ckpt::agent {

std::string hex(uint64_t value) {
    char buf[32];
    snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
    return buf;
}

DeferSignal::DeferSignal(int sig) {
    sigset_t held;
    sigemptyset(&held);
    sigaddset(&held, sig);
    pthread_sigmask(SIG_BLOCK, &held, &old_);
}

DeferSignal::~DeferSignal() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

namespace {

char g_term_unlink[4096];
pid_t g_launcher = 0;
int g_death_pipe[2] = {-1, -1};
volatile sig_atomic_t g_launcher_died = 0;

void on_service_term(int) {
    if (getppid() == g_launcher) {  // the launcher ends the service
        unlink(g_term_unlink);
        _exit(0);
    }
    g_launcher_died = 1;
    (void)!write(g_death_pipe[1], "x", 1);
}

}  // namespace

LauncherDeath::LauncherDeath(const std::string& path) {
    snprintf(g_term_unlink, sizeof g_term_unlink, "%s", path.c_str());
    g_launcher = getppid();
    if (g_death_pipe[0] < 0 && pipe2(g_death_pipe, O_CLOEXEC | O_NONBLOCK) != 0) fail_errno("cannot create a pipe");
    signal(SIGTERM, on_service_term);
}

int LauncherDeath::fd() const { return g_death_pipe[0]; }
bool LauncherDeath::died() const { return g_launcher_died != 0; }

int64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool try_read_text_file(const std::string& path, std::string& out) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return false;
    out.clear();
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) return true;
        out.append(buf, static_cast<size_t>(n));
    }
}

std::string read_text_file(const std::string& path) {
    std::string out;
    if (!try_read_text_file(path, out)) fail_errno("cannot read " + path);
    return out;
}

void write_text_file(const std::string& path, const std::string& text) {
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) fail_errno("cannot open " + path);
    write_all(fd.get(), text.data(), text.size(), path);
}

std::string read_link(const std::string& path) {
    std::vector<char> buf(4096);
    ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) fail_errno("cannot read link " + path);
    return std::string(buf.data(), static_cast<size_t>(n));
}

void write_all(int fd, const void* data, size_t size, const std::string& what) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno("cannot write " + what);
        p += n;
        size -= static_cast<size_t>(n);
    }
}

size_t read_full(int fd, void* data, size_t size) {
    char* p = static_cast<char*>(data);
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, p + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    return done;
}

std::string human_bytes(double bytes) {
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

namespace {
rlimit g_original_nofile{};
bool g_raised = false;
}  // namespace

void raise_descriptor_limit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
    g_original_nofile = r;
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) == 0) g_raised = true;
}

void restore_descriptor_limit() {
    if (g_raised) setrlimit(RLIMIT_NOFILE, &g_original_nofile);
}

}  // namespace ckpt::agent
