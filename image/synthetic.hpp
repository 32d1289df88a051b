// Synthetic rank images: every kind of object the schema has, with page data
// from a caller-supplied buffer. Used by the demo, the tests and the
// benchmarks until (and besides) images made by the engine.
#pragma once

#include "image/rank_image.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace ckpt::image {

struct SyntheticSpec {
    uint32_t tasks = 2;
    uint32_t threads_per_task = 3;
    uint64_t bytes_per_task = uint64_t{8} << 20;
};

// Deterministic page content: `compressible` of it is text-like, the rest
// random. bytes is rounded up to a page multiple.
std::vector<uint8_t> synthetic_memory(uint64_t bytes, double compressible, uint64_t seed);

// Fills a rank image; task i's pages are `memory` (which must hold at least
// bytes_per_task bytes), split into several mappings.
void write_synthetic_rank(RankWriter& writer, const SyntheticSpec& spec, std::span<const uint8_t> memory);

}  // namespace ckpt::image
