// Named fault points for tests, in the style of CRIU's ZDTM: a test names
// the points where a process of the job is to fail, and how, in the
// environment of the job:
//
//   CKPT_FAULT=POINT[:ACTION][,POINT[:ACTION]...]
//     ACTION  kill (the default): the process that reaches POINT kills
//             itself with SIGKILL, the way a node failure would
//             stop: it stops itself (SIGSTOP): a hung process, a stalled
//             write; it goes on when sent SIGCONT
//   CKPT_FAULT_RANK=N
//     points reached in a rank's ckpt-run act in rank N only, and a node
//     agent's point about one of its ranks only for rank N (the other
//     points of the coordinator and of the node agents are not concerned)
//   CKPT_FAULT_ARM=PATH
//     points act only once PATH exists: a test arms them after the
//     checkpoints that must succeed (the environment is the whole job's)
//
// Every point is listed here, once, and in docs/architecture.md ("Fault
// points"; a unit test checks that the two agree). ckpt-run refuses a
// CKPT_FAULT that names an unknown point or action, so a misspelt fault
// cannot make a test pass that tested nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ckpt {

enum class FaultPoint {
    // The commit of a checkpoint (image/checkpoint_dir.cpp), in whoever
    // commits: the job's coordinator.
    CommitBeforeManifest,     // rank files written, manifest not yet
    CommitManifestUnrenamed,  // manifest.h5.tmp written and synced, not renamed
    CommitBeforeRename,       // manifest in place, checkpoint still .partial
    CommitBeforeLatest,       // checkpoint renamed, `latest` not moved yet
    // A rank's ckpt-run in a checkpoint round.
    RankBeforeRename,  // its rank file written and synced as .tmp (image/rank_image.cpp)
    RankDumpStart,     // DUMP received: its tree is frozen, nothing read yet
    RankDumped,        // its rank file in place in the partial checkpoint, not reported yet
    RankRestoring,     // restart: RESTORE received, nothing of its tree restored yet
    // The node agent.
    AgentDumping,       // DUMP handed to the node's ranks: their dumps are starting
    AgentCommittedOne,  // COMMITTED handed to one rank (in rank order), not to the node's higher ranks yet
    // The coordinator.
    CoordinatorDumping,        // DUMP sent to every node agent
    CoordinatorBeforeRelease,  // restart: every rank restored (stopped before release), RELEASE not sent
};

struct FaultPointInfo {
    FaultPoint point;
    std::string_view name;  // as CKPT_FAULT names it
    std::string_view what;  // where the process is when it fails there
};

// Every fault point, in the order of the enum.
std::span<const FaultPointInfo> fault_points();
std::string_view fault_name(FaultPoint p);

// Acts when CKPT_FAULT names p (see above). rank: the rank of the ckpt-run
// reaching p, for CKPT_FAULT_RANK; nullopt in the coordinator and agents.
// Says which point acts on stderr first.
void fault_point(FaultPoint p, std::optional<uint32_t> rank = std::nullopt);

// Why CKPT_FAULT or CKPT_FAULT_RANK is not understood (an unknown point or
// action, a rank that is not a number); "" when they are fine or unset.
std::string fault_spec_error();

}  // namespace ckpt
