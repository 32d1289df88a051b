// A rank's MPI proxy, seen from its ckpt-run: starting it, the channel the
// program reaches it through, the proxy's part in a checkpoint (its
// messages are relayed to and from the coordinator) and in a restart.
#pragma once

#include "agent/sys.hpp"
#include "image/rank_image.hpp"

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::agent {

// Whether ckpt-run should run an MPI proxy: "auto" when started by mpirun
// or by srun with PMIx.
bool want_mpi(const std::string& mode);

class MpiLink {
public:
    // Starts the proxy. On a first run it does MPI_Init at once and the
    // channel is made here; on a restart it waits for INIT (sent once every
    // rank has restored) and the channel comes from the restored program.
    static std::unique_ptr<MpiLink> start(bool restarting);
    MpiLink(const MpiLink&) = delete;
    MpiLink& operator=(const MpiLink&) = delete;
    ~MpiLink();

    // What the program needs: the channel at a known descriptor and the
    // shim first on its library path (called in the program's process
    // before exec; async-signal-safe apart from setenv).
    void prepare_program() const;
    // Lines for the launcher's environment of the program.
    int fd() const { return link_.get(); }
    pid_t pid() const { return pid_; }

    void send(const std::string& verb, const std::map<std::string, std::string>& args = {});
    // Reads what the proxy sent; returns complete messages (verb, args).
    // False in `alive` when the proxy is gone.
    std::vector<std::pair<std::string, std::map<std::string, std::string>>> receive(bool& alive);
    // Waits for one message with this verb (others are kept for receive()).
    std::map<std::string, std::string> wait_for(const std::string& verb, std::chrono::seconds timeout);

    // The state the proxy handed over at DRAINED, and the one to hand back.
    std::vector<uint8_t> take_state() const;
    void put_state(const std::vector<uint8_t>& bytes) const;
    // Saves it into a rank file (/mpi), and reads it back.
    static void write_image(image::RankWriter& writer, const std::vector<uint8_t>& state);
    static std::optional<std::vector<uint8_t>> read_image(const image::RankReader& reader);
    // Which process of the restored tree holds the channel, and at which fd.
    static std::pair<int32_t, int32_t> channel_holder(const std::vector<uint8_t>& state);

    // Ends the proxy: with finalize, it calls MPI_Finalize first (as every
    // rank of the job must, or the launcher tears the job down).
    void end(bool finalize);

private:
    MpiLink() = default;
    void parse_lines();

    pid_t pid_ = -1;
    UniqueFd link_, channel_, state_;
    std::string in_;
    std::vector<std::pair<std::string, std::map<std::string, std::string>>> pending_;
    std::string shim_dir_;
};

}  // namespace ckpt::agent
