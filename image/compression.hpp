// Page-chunk compression. Chunks are compressed by worker threads and
// written with H5Dwrite_chunk; the dataset still declares the zstd filter
// (registered id 32015), so any HDF5 tool with the zstd filter plugin, and
// this library through H5Dread, can read them too.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ckpt::image {

enum class Compression { None, Zstd };

inline constexpr unsigned kZstdFilterId = 32015;

std::string to_string(Compression c);
std::optional<Compression> parse_compression(const std::string& name);

// Registers the zstd filter with the HDF5 library (once per process).
void register_zstd_filter();

// Returns the compressed chunk, or nullopt when compression does not pay
// (the chunk is then stored raw with the filter marked as skipped).
std::optional<std::vector<uint8_t>> zstd_compress(std::span<const uint8_t> in, int level);
// Decompresses into out, which must be exactly the uncompressed size.
// Returns false when the input is not a valid frame of that size.
bool zstd_decompress(std::span<const uint8_t> in, std::span<uint8_t> out);

}  // namespace ckpt::image
