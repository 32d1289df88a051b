// The control channel between ckpt-ctl and the process that runs the job:
// a unix socket in a private (0700) directory, its path published in
// <ckpt-dir>/.control (0600). Peers must be the same user (or root).
// Requests and replies are lines; a reply is any number of "progress ..."
// lines ended by one "ok ..." or "error ..." line.
#pragma once

#include "agent/sys.hpp"
#include "image/checkpoint_dir.hpp"

#include <optional>
#include <string>

namespace ckpt::control {

class Connection {
public:
    explicit Connection(agent::UniqueFd fd) : fd_(std::move(fd)) {}
    // Empty optional at end of stream.
    std::optional<std::string> read_line();
    // False when the peer went away.
    bool send_line(const std::string& line);

private:
    agent::UniqueFd fd_;
    std::string buffer_;
};

class Server {
public:
    // Refuses when another live job already serves this directory.
    explicit Server(const std::string& ckpt_dir);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();
    int fd() const { return listen_.get(); }
    // Accepts one client; nullopt for a refused peer (logged to stderr).
    std::optional<Connection> accept();

private:
    std::string ckpt_dir_, runtime_dir_, socket_path_;
    std::optional<image::FileLock> lock_;
    agent::UniqueFd listen_;
};

// Connects to the job serving ckpt_dir; throws EngineError saying why not.
Connection connect(const std::string& ckpt_dir);

}  // namespace ckpt::control
