#include "image/fault.hpp"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include <vector>

namespace ckpt {

namespace {

constexpr FaultPointInfo kPoints[] = {
    {FaultPoint::CommitBeforeManifest, "commit-before-manifest", "the committer checked every rank file; no manifest yet"},
    {FaultPoint::CommitManifestUnrenamed, "commit-manifest-unrenamed", "manifest.h5.tmp is written and synced, not renamed"},
    {FaultPoint::CommitBeforeRename, "commit-before-rename", "manifest.h5 is in place, the checkpoint is still .partial"},
    {FaultPoint::CommitBeforeLatest, "commit-before-latest", "the checkpoint is renamed into place, `latest` not moved yet"},
    {FaultPoint::RankBeforeRename, "rank-before-rename", "a rank's file is written, verified and synced as .tmp, not renamed"},
    {FaultPoint::RankDumpStart, "rank-dump-start", "a rank got DUMP: its tree is frozen, nothing of it read yet"},
    {FaultPoint::RankDumped, "rank-dumped", "a rank's file is in place in the partial checkpoint, DUMPED not sent"},
    {FaultPoint::RankRestoring, "rank-restoring", "restart: a rank got RESTORE; nothing of its tree restored yet"},
    {FaultPoint::AgentDumping, "agent-dumping", "the node agent handed DUMP to its ranks, whose dumps are starting"},
    {FaultPoint::AgentCommittedOne, "agent-committed-one",
     "the node agent handed COMMITTED to one of its ranks (CKPT_FAULT_RANK: which), not yet to the node's higher ranks"},
    {FaultPoint::CoordinatorDumping, "coordinator-dumping", "the coordinator sent DUMP to every node agent"},
    {FaultPoint::CoordinatorBeforeRelease, "coordinator-before-release",
     "restart: every rank reported its tree restored (stopped before release); RELEASE not sent"},
};

struct Wanted {
    std::string point, action;
};

// CKPT_FAULT as a list of (point, action).
std::vector<Wanted> wanted_faults() {
    std::vector<Wanted> out;
    const char* spec = std::getenv("CKPT_FAULT");
    if (spec == nullptr) return out;
    std::string_view rest(spec);
    while (!rest.empty()) {
        const size_t comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (item.empty()) continue;
        const size_t colon = item.find(':');
        out.push_back({std::string(item.substr(0, colon)), colon == std::string_view::npos ? "kill" : std::string(item.substr(colon + 1))});
    }
    return out;
}

std::optional<uint32_t> selected_rank(std::string& error) {
    const char* only = std::getenv("CKPT_FAULT_RANK");
    if (only == nullptr || *only == '\0') return std::nullopt;
    uint32_t rank = 0;
    const std::string_view s(only);
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), rank);
    if (ec != std::errc() || ptr != s.data() + s.size()) {
        error = "CKPT_FAULT_RANK=" + std::string(s) + " is not a rank number";
        return std::nullopt;
    }
    return rank;
}

}  // namespace

std::span<const FaultPointInfo> fault_points() { return kPoints; }

std::string_view fault_name(FaultPoint p) {
    for (const auto& info : kPoints)
        if (info.point == p) return info.name;
    return "unknown";
}

void fault_point(FaultPoint p, std::optional<uint32_t> rank) {
    if (std::getenv("CKPT_FAULT") == nullptr) return;
    if (const char* arm = std::getenv("CKPT_FAULT_ARM"); arm != nullptr && *arm != '\0' && access(arm, F_OK) != 0) return;
    std::string error;
    if (auto only = selected_rank(error); rank && only && *only != *rank) return;
    for (const auto& w : wanted_faults()) {
        if (w.point != fault_name(p)) continue;
        const bool stop = w.action == "stop";
        char line[160];
        const int n = snprintf(line, sizeof line, "ckpt fault point %s: %s of pid %d\n", w.point.c_str(), stop ? "SIGSTOP" : "SIGKILL", getpid());
        if (n > 0) (void)!write(STDERR_FILENO, line, static_cast<size_t>(n));
        if (stop) raise(SIGSTOP);  // the whole process stops, until SIGCONT
        else kill(getpid(), SIGKILL);
        return;
    }
}

std::string fault_spec_error() {
    std::string error;
    selected_rank(error);
    if (!error.empty()) return error;
    for (const auto& w : wanted_faults()) {
        bool known = false;
        for (const auto& info : kPoints) known = known || info.name == w.point;
        if (!known) {
            std::string names;
            for (const auto& info : kPoints) names += (names.empty() ? "" : ", ") + std::string(info.name);
            return "CKPT_FAULT names an unknown fault point '" + w.point + "' (known: " + names + ")";
        }
        if (w.action != "kill" && w.action != "stop")
            return "CKPT_FAULT: unknown action '" + w.action + "' for " + w.point + " (kill or stop)";
    }
    return "";
}

}  // namespace ckpt
