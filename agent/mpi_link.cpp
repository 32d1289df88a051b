#include "agent/mpi_link.hpp"

#include "coordinator/protocol.hpp"
#include "image/error.hpp"
#include "image/h5.hpp"
#include "image/table.hpp"
#include "mpi_plugin/common/channel.hpp"
#include "mpi_plugin/common/state.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string_view>
#include <filesystem>
#include <thread>

namespace ckpt::agent {

namespace {

std::string exe_dir() { return std::filesystem::path(read_link("/proc/self/exe")).parent_path().string(); }

// lib/ckpt-mpi of the build tree or of the installation, next to ckpt-run.
std::string find_shim_dir() {
    for (const char* rel : {CKPT_MPI_FROM_BIN_BUILD, CKPT_MPI_FROM_BIN_INSTALL}) {
        const std::string dir = exe_dir() + "/" + rel;
        if (std::filesystem::exists(dir + "/libmpi.so.40") && std::filesystem::exists(dir + "/ckpt-mpi-proxy"))
            return std::filesystem::weakly_canonical(dir).string();
    }
    fail("the MPI layer is not installed next to ckpt-run (no libmpi.so.40 and ckpt-mpi-proxy in " + exe_dir() + "/" +
         CKPT_MPI_FROM_BIN_INSTALL + "); run with --mpi none for a program that does not use MPI");
}

UniqueFd make_memfd(const char* name, uint64_t size) {
    UniqueFd fd(memfd_create(name, MFD_CLOEXEC));
    if (!fd.valid()) fail_errno(std::string("cannot create the memfd ") + name);
    if (size && ftruncate(fd.get(), static_cast<off_t>(size)) != 0) fail_errno(std::string("cannot size the memfd ") + name);
    return fd;
}

// Waits for the proxy to end (killed, or told to exit).
void reap(pid_t pid) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

// One read of what the link has, appended to `into`; returns read's result.
ssize_t read_into(int fd, std::string& into) {
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) into.append(buf, static_cast<size_t>(n));
    return n;
}

}  // namespace

bool want_mpi(const std::string& mode) {
    if (mode == "none") return false;
    if (mode == "openmpi") return true;
    // A launcher with a PMIx server to connect to: mpirun, or srun --mpi=pmix.
    if (!getenv("PMIX_RANK")) return false;
    for (char** e = environ; *e; ++e)
        if (std::string_view(*e).starts_with("PMIX_SERVER_URI")) return true;
    return false;
}

std::unique_ptr<MpiLink> MpiLink::start(bool restarting) {
    std::unique_ptr<MpiLink> link(new MpiLink);
    link->shim_dir_ = find_shim_dir();
    if (!restarting) {
        link->channel_ = make_memfd("ckpt-mpi-channel", mpi::kChannelBytes);
        void* base = mmap(nullptr, 4096 * 2, PROT_READ | PROT_WRITE, MAP_SHARED, link->channel_.get(), 0);
        if (base == MAP_FAILED) fail_errno("cannot map the MPI channel");
        mpi::init_channel(base, mpi::kChannelBytes);
        munmap(base, 4096 * 2);
    }
    link->state_ = make_memfd("ckpt-mpi-state", 0);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) fail_errno("cannot create a socket pair");
    UniqueFd mine(pair[0]), theirs(pair[1]);
    const std::string proxy = link->shim_dir_ + "/ckpt-mpi-proxy";
    const pid_t parent = getpid();
    const int channel = link->channel_.valid() ? link->channel_.get() : -1;
    const int state = link->state_.get();
    link->pid_ = fork();
    if (link->pid_ < 0) fail_errno("cannot fork the MPI proxy");
    if (link->pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        // The proxy's descriptors, inherited across exec.
        for (int fd : {theirs.get(), channel, state})
            if (fd >= 0) fcntl(fd, F_SETFD, 0);
        const std::string a1 = std::to_string(theirs.get()), a2 = std::to_string(channel), a3 = std::to_string(state);
        const char* argv[] = {proxy.c_str(), a1.c_str(), a2.c_str(), a3.c_str(), restarting ? "restart" : nullptr, nullptr};
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        execv(proxy.c_str(), const_cast<char**>(argv));
        _exit(127);
    }
    link->link_ = std::move(mine);
    return link;
}

MpiLink::~MpiLink() {
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        reap(pid_);
    }
}

void MpiLink::prepare_program() const {
    if (channel_.valid()) {
        dup2(channel_.get(), mpi::kChannelFdNumber);  // without close-on-exec: the program keeps it
        setenv(mpi::kChannelFdEnv, std::to_string(mpi::kChannelFdNumber).c_str(), 1);
    }
    const char* old = getenv("LD_LIBRARY_PATH");
    setenv("LD_LIBRARY_PATH", (shim_dir_ + (old && *old ? ":" + std::string(old) : "")).c_str(), 1);
}

void MpiLink::send(const std::string& verb, const std::map<std::string, std::string>& args) {
    control::Message m(verb, args);
    const std::string line = m.encode() + "\n";
    write_all(link_.get(), line.data(), line.size(), "the MPI proxy's link");
}

void MpiLink::parse_lines() {
    size_t nl;
    while ((nl = in_.find('\n')) != std::string::npos) {
        const std::string line = in_.substr(0, nl);
        in_.erase(0, nl + 1);
        try {
            control::Message m = control::Message::decode(line);
            pending_.emplace_back(m.verb, m.args);
        } catch (const std::exception&) {
            // (a malformed line from our own proxy: ignored)
        }
    }
}

std::vector<std::pair<std::string, std::map<std::string, std::string>>> MpiLink::receive(bool& alive) {
    const ssize_t n = read_into(link_.get(), in_);
    // Lost at its end, or on an error other than an interruption or no data yet.
    alive = n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN));
    parse_lines();
    return std::exchange(pending_, {});
}

std::map<std::string, std::string> MpiLink::wait_for(const std::string& verb, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (auto it = pending_.begin(); it != pending_.end(); ++it)
            if (it->first == verb || it->first == "FAILED") {
                auto args = it->second;
                const bool failed = it->first == "FAILED";
                pending_.erase(it);
                if (failed) fail("the MPI proxy: " + args["text"]);
                return args;
            }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) fail("the MPI proxy did not answer " + verb + " within " + std::to_string(timeout.count()) + " s");
        pollfd p{link_.get(), POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        if (read_into(link_.get(), in_) == 0) fail("the MPI proxy died");
        parse_lines();
    }
}

std::vector<uint8_t> MpiLink::take_state() const {
    const off_t size = lseek(state_.get(), 0, SEEK_END);
    if (size < 0) fail_errno("cannot read the MPI proxy's state");
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    if (size && pread(state_.get(), bytes.data(), bytes.size(), 0) != size) fail_errno("cannot read the MPI proxy's state");
    return bytes;
}

void MpiLink::put_state(const std::vector<uint8_t>& bytes) const {
    if (ftruncate(state_.get(), 0) != 0 || pwrite(state_.get(), bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
        fail_errno("cannot hand the MPI state to the proxy");
}

// /mpi/state is the proxy's state as it encoded it (the replay reads it);
// the tables beside it say the same for people and tools.
void MpiLink::write_image(image::RankWriter& writer, const std::vector<uint8_t>& state) {
    image::h5::Hid mpi = writer.mpi();
    image::write_blob(mpi.get(), "state", state);
    const mpi::ProxyState st = mpi::decode_state(state);
    image::h5::set_attr_u64(mpi.get(), "creation_log_entries", st.log.size());
    image::h5::set_attr_u64(mpi.get(), "drained_messages", st.drained.size());
    image::h5::set_attr_u64(mpi.get(), "pending_requests", st.requests.size());
    image::h5::set_attr_u64(mpi.get(), "communicators", st.counts.size());
    image::h5::set_attr_i64(mpi.get(), "mpi_process", st.shim_pid);
}

std::optional<std::vector<uint8_t>> MpiLink::read_image(const image::RankReader& reader) {
    if (!image::h5::link_exists(reader.root(), "mpi")) return std::nullopt;
    image::h5::Hid mpi = image::h5::open_group(reader.root(), "mpi");
    if (!image::h5::link_exists(mpi.get(), "state")) return std::nullopt;
    image::Blob b = image::read_blob(mpi.get(), "state", 1ull << 34);
    try {
        mpi::decode_state(b.data);
    } catch (const mpi::StateError& e) {
        throw image::ImageError(reader.path(), "/mpi/state", e.what());
    }
    return std::move(b.data);
}

std::pair<int32_t, int32_t> MpiLink::channel_holder(const std::vector<uint8_t>& state) {
    const mpi::ProxyState st = mpi::decode_state(state);
    return {static_cast<int32_t>(st.shim_pid), st.shim_fd >= 0 ? st.shim_fd : mpi::kChannelFdNumber};
}

void MpiLink::end(bool finalize) {
    if (pid_ <= 0) return;
    try {
        send("EXIT", {{"finalize", finalize ? "1" : "0"}});
    } catch (const std::exception&) {
    }
    reap(pid_);
    pid_ = -1;
}

}  // namespace ckpt::agent
