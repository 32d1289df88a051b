#include "coordinator/protocol.hpp"

#include "image/checksum.hpp"
#include "image/rank_image.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

namespace ckpt::control {

using agent::fail;
using agent::fail_errno;
using agent::UniqueFd;

namespace {

bool plain(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':' ||
           c == ',' || c == '@' || c == '+';
}

std::string escape(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (char c : s) {
        if (plain(c)) {
            out += c;
        } else {
            const auto u = static_cast<unsigned char>(c);
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    return out;
}

std::string unescape(const std::string& s, const std::string& line) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        unsigned value = 0;
        if (i + 2 >= s.size() || std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16).ptr != s.data() + i + 3)
            fail("malformed message (bad escape): " + line.substr(0, 200));
        out += static_cast<char>(value);
        i += 2;
    }
    return out;
}

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) fail("socket path too long: " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

sockaddr_in ipv4_address(const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0 || !res)
        fail("cannot resolve " + host + ": " + gai_strerror(rc));
    sockaddr_in a{};
    std::memcpy(&a, res->ai_addr, sizeof a);
    freeaddrinfo(res);
    a.sin_port = htons(port);
    return a;
}

}  // namespace

std::string Message::get(const std::string& key) const {
    auto it = args.find(key);
    return it == args.end() ? std::string() : it->second;
}

int64_t Message::number(const std::string& key) const {
    auto it = args.find(key);
    if (it == args.end()) fail("message " + verb + " lacks " + key);
    int64_t v = 0;
    const std::string& s = it->second;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size()) {
        // Unsigned 64-bit values above INT64_MAX travel as their bits.
        uint64_t u = 0;
        auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), u);
        if (ec2 != std::errc() || p2 != s.data() + s.size()) fail("message " + verb + ": " + key + "=" + s + " is not a number");
        v = static_cast<int64_t>(u);
    }
    return v;
}

std::string Message::encode() const {
    std::string out = escape(verb);
    // Appended piece by piece: `" " + escape(k)` trips GCC 12's -Wrestrict
    // (a false positive) in Release builds.
    for (const auto& [k, v] : args) {
        out += ' ';
        out += escape(k);
        out += '=';
        out += escape(v);
    }
    return out;
}

Message Message::decode(const std::string& line) {
    std::istringstream in(line);
    Message m;
    std::string word;
    if (!(in >> word)) fail("empty message");
    m.verb = unescape(word, line);
    while (in >> word) {
        auto eq = word.find('=');
        if (eq == std::string::npos) fail("malformed message (no '=' in " + word.substr(0, 60) + "): " + line.substr(0, 200));
        m.args[unescape(word.substr(0, eq), line)] = unescape(word.substr(eq + 1), line);
    }
    return m;
}

bool Channel::send(const Message& m) {
    const std::string data = m.encode() + "\n";
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::send(fd_.get(), p, left, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd pfd{fd_.get(), POLLOUT, 0};
            if (poll(&pfd, 1, 10000) <= 0) return false;  // a peer that reads nothing for 10 s is gone
            continue;
        }
        if (n <= 0) return false;
        p += n;
        left -= static_cast<size_t>(n);
    }
    return true;
}

std::optional<Message> Channel::buffered() {
    auto nl = in_.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = in_.substr(0, nl);
    in_.erase(0, nl + 1);
    return Message::decode(line);
}

bool Channel::fill() {
    char buf[65536];
    for (;;) {
        ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n <= 0) return false;
        in_.append(buf, static_cast<size_t>(n));
        if (in_.size() > (16u << 20)) return false;  // no message is this long: a broken peer
        if (static_cast<size_t>(n) < sizeof buf) return true;
    }
}

std::optional<Message> Channel::receive(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto m = buffered()) return m;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd pfd{fd_.get(), POLLIN, 0};
        int r = poll(&pfd, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return std::nullopt;
        if (!fill()) {
            if (auto m = buffered()) return m;
            return std::nullopt;
        }
    }
}

UniqueFd listen_tcp(const std::string& host, uint16_t& port) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) fail_errno("cannot create a TCP socket");
    sockaddr_in a = ipv4_address(host, 0);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail_errno("cannot bind a TCP socket on " + host);
    if (listen(fd.get(), 4096) != 0) fail_errno("cannot listen on " + host);
    socklen_t len = sizeof a;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

UniqueFd connect_tcp(const std::string& host, uint16_t port) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) fail_errno("cannot create a TCP socket");
    sockaddr_in a = ipv4_address(host, port);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        fail_errno("cannot connect to " + host + ":" + std::to_string(port));
    int on = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return fd;
}

UniqueFd listen_unix(const std::string& path) {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) fail_errno("cannot create a unix socket");
    sockaddr_un a = unix_address(path);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail_errno("cannot bind " + path);
    if (listen(fd.get(), 256) != 0) fail_errno("cannot listen on " + path);
    return fd;
}

UniqueFd connect_unix(const std::string& path) {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) fail_errno("cannot create a unix socket");
    sockaddr_un a = unix_address(path);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
    return fd;
}

std::string peer_name(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    if (ss.ss_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        char buf[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
    }
    ucred peer{};
    socklen_t clen = sizeof peer;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &clen) == 0) return "local pid " + std::to_string(peer.pid);
    return "local";
}

std::string random_secret() { return image::random_id() + image::random_id(); }

std::string node_name() {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}

std::string node_address() {
    try {
        sockaddr_in a = ipv4_address(node_name(), 0);
        char buf[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
        return buf;
    } catch (const agent::EngineError&) {
        return "127.0.0.1";
    }
}

std::string rendezvous_path(const std::string& ckpt_dir) { return ckpt_dir + "/.coordinator"; }

void publish_rendezvous(const std::string& ckpt_dir, const Rendezvous& r) {
    Message m("coordinator");
    m.set("job", r.job_id).set("host", r.host).set("port", r.port).set("secret", r.secret);
    const std::string path = rendezvous_path(ckpt_dir), tmp = path + ".tmp";
    {
        UniqueFd f(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!f.valid()) fail_errno("cannot write " + tmp);
        fchmod(f.get(), 0600);
        const std::string line = m.encode() + "\n";
        agent::write_all(f.get(), line.data(), line.size(), tmp);
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) fail_errno("cannot publish " + path);
}

std::optional<Rendezvous> read_rendezvous(const std::string& ckpt_dir) {
    std::string text;
    if (!agent::try_read_text_file(rendezvous_path(ckpt_dir), text)) return std::nullopt;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (text.empty()) return std::nullopt;
    try {
        Message m = Message::decode(text);
        Rendezvous r;
        r.job_id = m.get("job");
        r.host = m.get("host");
        r.port = static_cast<uint16_t>(m.number("port"));
        r.secret = m.get("secret");
        return r;
    } catch (const agent::EngineError&) {
        return std::nullopt;
    }
}

std::string private_runtime_dir() {
    const std::string dir = "/tmp/ckpt-" + std::to_string(getuid());
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail_errno("cannot create " + dir);
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0) fail_errno("cannot inspect " + dir);
    if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0)
        fail(dir + " is not a private directory of this user (owner uid " + std::to_string(st.st_uid) + ", mode " +
             std::to_string(st.st_mode & 0777) + "); remove it");
    return dir;
}

std::string agent_socket_path(const std::string& job_id) {
    // The job id may be long: a hash keeps the path within sun_path. The
    // node name is in it because /tmp may be shared between "nodes".
    const std::string key = job_id + "@" + node_name();
    const uint64_t h = image::xxh3({reinterpret_cast<const uint8_t*>(key.data()), key.size()});
    char buf[32];
    snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return private_runtime_dir() + "/agent-" + buf + ".sock";
}

}  // namespace ckpt::control
