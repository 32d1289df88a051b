// Named fault points for tests: when the environment variable CKPT_FAULT
// names a point, the process kills itself with SIGKILL when it reaches it,
// the way a node failure would. Every point is listed here, once.
#pragma once

#include <string_view>

namespace ckpt {

enum class FaultPoint {
    CommitBeforeManifest,     // rank files written, manifest not yet
    CommitManifestUnrenamed,  // manifest.h5.tmp written and synced, not renamed
    CommitBeforeRename,       // manifest in place, checkpoint still .partial
    CommitBeforeLatest,       // checkpoint renamed, `latest` not moved yet
    RankBeforeRename,         // rank file written and synced as .tmp
};

std::string_view fault_name(FaultPoint p);
// Kills the process with SIGKILL when CKPT_FAULT names p.
void fault_point(FaultPoint p);

}  // namespace ckpt
