#include "coordinator/control.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace ckpt::control {

using agent::fail;
using agent::fail_errno;
using agent::UniqueFd;

namespace {

std::string control_file(const std::string& dir) { return dir + "/.control"; }

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) fail("socket path too long: " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

UniqueFd try_connect(const std::string& path) {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a = address(path);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
    return fd;
}

// Runtime directories of launchers that were killed (SIGKILL) and could not
// clean up: theirs is a socket nobody answers on. (A directory gets its
// "ckpt-run." name only once its socket listens: see Server.)
void remove_stale_runtime_dirs() {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
        const std::string name = entry.path().filename().string();
        if (!name.starts_with("ckpt-run.")) continue;
        struct stat st {};
        if (lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid()) continue;
        const std::string sock = entry.path().string() + "/control.sock";
        if (try_connect(sock).valid()) continue;
        unlink(sock.c_str());
        rmdir(entry.path().c_str());
    }
}

}  // namespace

std::optional<std::string> Connection::read_line() {
    for (;;) {
        auto nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        char buf[4096];
        ssize_t n = read(fd_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        buffer_.append(buf, static_cast<size_t>(n));
    }
}

bool Connection::send_line(const std::string& line) {
    std::string data = line;
    for (char& ch : data)
        if (ch == '\n') ch = ' ';  // one message, one line
    data += "\n";
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
        ssize_t n = send(fd_.get(), p, left, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        left -= static_cast<size_t>(n);
    }
    return true;
}

Server::Server(const std::string& ckpt_dir) : ckpt_dir_(ckpt_dir) {
    // Held as long as this job runs: two launchers started at once on one
    // directory cannot both pass.
    lock_.emplace(control_file(ckpt_dir) + ".lock", false);
    if (!lock_->held()) fail("another ckpt-run is already running with --ckpt-dir " + ckpt_dir);
    remove_stale_runtime_dirs();
    // The socket listens before its directory takes the name other
    // launchers sweep (remove_stale_runtime_dirs): a directory being set up
    // must not look like one whose launcher died.
    char templ[] = "/tmp/.ckpt-run-new.XXXXXX";
    if (!mkdtemp(templ)) fail_errno("cannot create a private runtime directory");
    const std::string staging = templ;
    auto give_up = [&](const std::string& what) {
        const int err = errno;
        unlink((staging + "/control.sock").c_str());
        rmdir(staging.c_str());
        errno = err;
        fail_errno(what);
    };
    listen_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a = address(staging + "/control.sock");
    if (bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listen_.get(), 16) != 0)
        give_up("cannot listen on " + staging + "/control.sock");
    runtime_dir_ = "/tmp/ckpt-run." + staging.substr(staging.rfind('.') + 1);
    if (renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, runtime_dir_.c_str(), RENAME_NOREPLACE) != 0)
        give_up("cannot move " + staging + " to " + runtime_dir_);
    socket_path_ = runtime_dir_ + "/control.sock";
    const std::string tmp = control_file(ckpt_dir) + ".tmp";
    {
        UniqueFd f(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!f.valid()) fail_errno("cannot write " + tmp);
        agent::write_all(f.get(), socket_path_.data(), socket_path_.size(), tmp);
    }
    if (rename(tmp.c_str(), control_file(ckpt_dir).c_str()) != 0) fail_errno("cannot publish " + control_file(ckpt_dir));
}

Server::~Server() {
    std::string published;
    if (agent::try_read_text_file(control_file(ckpt_dir_), published) && published == socket_path_)
        unlink(control_file(ckpt_dir_).c_str());
    unlink(socket_path_.c_str());
    rmdir(runtime_dir_.c_str());
}

std::optional<Connection> Server::accept() {
    UniqueFd fd(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) return std::nullopt;
    ucred peer{};
    socklen_t len = sizeof peer;
    if (getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || (peer.uid != getuid() && peer.uid != 0)) {
        std::cerr << "ckpt-run: refused a control connection from uid " << peer.uid << " (pid " << peer.pid << ")\n";
        return std::nullopt;
    }
    // A client that connects and says nothing must not hold the job's
    // launcher: its request has to arrive within a few seconds.
    timeval timeout{5, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return Connection(std::move(fd));
}

Connection connect(const std::string& ckpt_dir) {
    std::string path;
    if (!agent::try_read_text_file(control_file(ckpt_dir), path))
        fail("no job is running with --ckpt-dir " + ckpt_dir + " (no " + control_file(ckpt_dir) + ")");
    UniqueFd fd = try_connect(path);
    if (!fd.valid()) fail_errno("the job of " + ckpt_dir + " does not answer at " + path + " (it has probably ended)");
    return Connection(std::move(fd));
}

}  // namespace ckpt::control
