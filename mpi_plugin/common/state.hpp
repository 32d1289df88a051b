// The proxy's logical MPI state at a checkpoint: what a new proxy needs to
// stand in for the old one. Encoded by the proxy, handed to ckpt-run
// through a memfd, stored in the rank file (/mpi), and handed back to the
// new proxy on restart. No MPI types here: ckpt-run uses it too.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ckpt::mpi {

inline constexpr uint32_t kStateVersion = 1;

// How one object was made (or freed): the call's arguments as the shim sent
// them, with the arrays it read from the channel copied in.
struct LogEntry {
    uint64_t seq = 0;
    uint32_t kind = 0;  // ObjKind
    uint32_t call = 0;  // Call
    uint64_t id = 0;    // the object made (or freed)
    std::vector<int64_t> args;
    std::vector<std::vector<int64_t>> arrays;
};

struct DrainedMessage {
    uint64_t comm = 0;
    int32_t source = 0;  // rank in comm
    int32_t tag = 0;
    std::vector<uint8_t> data;
};

struct PendingRequest {
    uint64_t id = 0;
    uint32_t kind = 0;  // 0 send, 1 receive, 2 collective
    uint32_t done = 0;
    uint64_t comm = 0;
    int32_t peer = 0, tag = 0;
    int64_t mode = 0;
    uint64_t offset = 0, bytes = 0, seq = 0;
    uint32_t freed = 0;
    int32_t status_source = 0, status_tag = 0, status_error = 0, status_cancelled = 0;
    uint64_t status_bytes = 0;
};

struct CommCount {
    uint64_t id = 0;
    uint64_t gid = 0;
    uint64_t collectives = 0;
};

struct ProxyState {
    int32_t world_rank = 0, world_size = 0;
    uint32_t shim_pid = 0;  // the process that called MPI_Init, in its PID namespace (0: none did)
    int32_t shim_fd = -1;   // its descriptor of the channel
    uint32_t finalized = 0;
    uint64_t next_internal_id = 0, next_seq = 0, next_log_seq = 0;
    std::vector<LogEntry> log;
    std::vector<DrainedMessage> drained;
    std::vector<PendingRequest> requests;
    std::vector<CommCount> counts;
};

class StateError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::vector<uint8_t> encode_state(const ProxyState& s);
// Throws StateError naming what is wrong; never reads out of bounds.
ProxyState decode_state(std::span<const uint8_t> bytes);

// The quiescing barrier's collective counts per communicator (gid -> count)
// as its messages carry them (COUNTS, TARGETS, RAISE): "gid:count,...",
// "-" for none. The parser throws std::invalid_argument on a bad number.
std::string counts_text(const std::map<uint64_t, uint64_t>& counts);
std::map<uint64_t, uint64_t> parse_counts(const std::string& text);

}  // namespace ckpt::mpi
