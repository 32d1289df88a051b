#include "image/compression.hpp"

#include <hdf5.h>
#include <zstd.h>

#include <cstring>
#include <mutex>

namespace ckpt::image {

std::string to_string(Compression c) { return c == Compression::Zstd ? "zstd" : "none"; }

std::optional<Compression> parse_compression(const std::string& name) {
    if (name == "none") return Compression::None;
    if (name == "zstd") return Compression::Zstd;
    return std::nullopt;
}

std::optional<std::vector<uint8_t>> zstd_compress(std::span<const uint8_t> in, int level) {
    std::vector<uint8_t> out(ZSTD_compressBound(in.size()));
    size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), level);
    // Keep a chunk raw unless it shrinks by at least 1/16: decompressing a
    // barely smaller chunk costs more than reading the difference.
    if (ZSTD_isError(n) || n >= in.size() - in.size() / 16) return std::nullopt;
    out.resize(n);
    return out;
}

bool zstd_decompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
    unsigned long long content = ZSTD_getFrameContentSize(in.data(), in.size());
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN || content != out.size()) return false;
    size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
    return !ZSTD_isError(n) && n == out.size();
}

namespace {

// The HDF5 filter callback: used by H5Dread on compressed datasets (and by
// H5Dwrite, which this library does not use for pages).
size_t zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes, size_t* buf_size,
                   void** buf) {
    const auto* in = static_cast<const uint8_t*>(*buf);
    if (flags & H5Z_FLAG_REVERSE) {
        unsigned long long content = ZSTD_getFrameContentSize(in, nbytes);
        if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN || content > (1ull << 32)) return 0;
        void* out = H5allocate_memory(content, false);
        if (!out) return 0;
        size_t n = ZSTD_decompress(out, content, in, nbytes);
        if (ZSTD_isError(n) || n != content) {
            H5free_memory(out);
            return 0;
        }
        H5free_memory(*buf);
        *buf = out;
        *buf_size = content;
        return n;
    }
    int level = cd_nelmts > 0 ? static_cast<int>(cd_values[0]) : 1;
    size_t bound = ZSTD_compressBound(nbytes);
    void* out = H5allocate_memory(bound, false);
    if (!out) return 0;
    size_t n = ZSTD_compress(out, bound, in, nbytes, level);
    if (ZSTD_isError(n)) {
        H5free_memory(out);
        return 0;
    }
    H5free_memory(*buf);
    *buf = out;
    *buf_size = bound;
    return n;
}

}  // namespace

void register_zstd_filter() {
    static std::once_flag once;
    std::call_once(once, [] {
        static const H5Z_class2_t filter_class = {
            H5Z_CLASS_T_VERS, static_cast<H5Z_filter_t>(kZstdFilterId), 1, 1, "zstd", nullptr, nullptr, zstd_filter,
        };
        H5Zregister(&filter_class);
    });
}

}  // namespace ckpt::image
