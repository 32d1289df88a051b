// What ckpt-info shows: resolving a path (checkpoint directory, a
// checkpoint, `latest`, or one rank file), verifying it, and summarising it.
#pragma once

#include "image/checkpoint_dir.hpp"
#include "image/rank_image.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ckpt::image {

struct RankReport {
    ManifestRankRecord row;  // from the manifest, or from the rank file alone
    RankSummary summary;
};

struct InspectReport {
    std::string path;        // what was inspected, resolved
    bool is_checkpoint = false;  // false: a single rank file
    std::optional<ManifestInfo> manifest;
    std::vector<RankReport> ranks;
    RankSummary totals;
    bool pages_verified = false;
    std::string error;  // empty when valid
    std::vector<std::string> nodes;
};

// Never throws for a bad image: the problem is reported in .error.
InspectReport inspect(const std::string& path, bool verify_pages, unsigned threads);

std::string format_human(const InspectReport& report, bool per_rank);
std::string format_json(const InspectReport& report);
// The whole schema as Markdown tables (docs/image-format.md embeds it).
std::string schema_markdown();

}  // namespace ckpt::image
