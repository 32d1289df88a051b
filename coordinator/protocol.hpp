// The job protocol between the coordinator, the node agents, the ranks'
// ckpt-run and ckpt-ctl: one message per line, "VERB key=value ...", values
// percent-encoded. Sockets: TCP between nodes, unix sockets on a node.
#pragma once

#include "agent/sys.hpp"
#include "image/table.hpp"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <type_traits>

namespace ckpt::control {

struct Message {
    std::string verb;
    std::map<std::string, std::string> args;

    Message() = default;
    explicit Message(std::string v, std::map<std::string, std::string> a = {}) : verb(std::move(v)), args(std::move(a)) {}

    bool has(const std::string& key) const { return args.contains(key); }
    // The value of key, "" when absent.
    std::string get(const std::string& key) const;
    // The value of key as a number; throws EngineError naming the key when
    // it is absent or not a number.
    int64_t number(const std::string& key) const;
    Message& set(const std::string& key, const std::string& value) {
        args[key] = value;
        return *this;
    }
    Message& set(const std::string& key, int64_t value) { return set(key, std::to_string(value)); }

    std::string encode() const;  // without the newline
    // Throws EngineError on a malformed line.
    static Message decode(const std::string& line);
};

// A record of the image schema (its integer and string fields) as message
// arguments, and back; used for manifest rows reported by ranks.
template <class Rec>
void put_record(Message& m, const Rec& rec) {
    image::detail::for_each_field<Rec>([&](const auto& f) {
        using M = decltype(image::detail::field_member_type(f));
        if constexpr (std::is_integral_v<M>)
            m.set(f.name, std::to_string(rec.*(f.member)));
        else if constexpr (std::is_same_v<M, std::string>)
            m.set(f.name, rec.*(f.member));
    });
}

template <class Rec>
Rec get_record(const Message& m) {
    Rec rec{};
    image::detail::for_each_field<Rec>([&](const auto& f) {
        using M = decltype(image::detail::field_member_type(f));
        if constexpr (std::is_integral_v<M>)
            rec.*(f.member) = static_cast<M>(m.number(f.name));
        else if constexpr (std::is_same_v<M, std::string>)
            rec.*(f.member) = m.get(f.name);
    });
    return rec;
}

// A connection carrying messages. Reads are buffered; a read that would
// block waits at most until the deadline given.
class Channel {
public:
    Channel() = default;
    explicit Channel(agent::UniqueFd fd) : fd_(std::move(fd)) {}
    int fd() const { return fd_.get(); }
    bool valid() const { return fd_.valid(); }
    // False when the peer went away.
    bool send(const Message& m);
    // A complete message already buffered, without reading.
    std::optional<Message> buffered();
    // Reads what the socket has (call when poll says it is readable);
    // false at end of stream or on error.
    bool fill();
    // Blocks until a message arrives; nullopt at end of stream or timeout.
    std::optional<Message> receive(std::chrono::milliseconds timeout);

private:
    agent::UniqueFd fd_;
    std::string in_;
};

// ---- sockets ----------------------------------------------------------------
// Listens on host (an address or a name) at an ephemeral port.
agent::UniqueFd listen_tcp(const std::string& host, uint16_t& port);
agent::UniqueFd connect_tcp(const std::string& host, uint16_t port);
agent::UniqueFd listen_unix(const std::string& path);
agent::UniqueFd connect_unix(const std::string& path);
// "a.b.c.d:port" of a connected socket's peer, for logs.
std::string peer_name(int fd);

// 32 random bytes as hex.
std::string random_secret();
// The address other nodes reach this one at: the host name's IPv4 address
// (127.0.0.1 when it does not resolve).
std::string node_address();
std::string node_name();

// ---- rendezvous in the checkpoint directory -----------------------------------
// <ckpt-dir>/.coordinator (0600): where the job's coordinator listens and the
// secret every peer must present.
struct Rendezvous {
    std::string job_id;
    std::string host;
    uint16_t port = 0;
    std::string secret;
};
std::string rendezvous_path(const std::string& ckpt_dir);
void publish_rendezvous(const std::string& ckpt_dir, const Rendezvous& r);
std::optional<Rendezvous> read_rendezvous(const std::string& ckpt_dir);

// The private (0700) directory of this user's node-local sockets; refuses
// one that another user owns or others can enter.
std::string private_runtime_dir();
// The node agent's socket of a job on this node.
std::string agent_socket_path(const std::string& job_id);

}  // namespace ckpt::control
