// XXH3-64 checksums. Tables are hashed in a canonical form (fixed-width
// little-endian integers, strings as length + bytes), so a checksum does not
// depend on in-memory padding or on how HDF5 laid the data out on disk.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>

namespace ckpt::image {

inline uint64_t xxh3(std::span<const uint8_t> data) { return XXH3_64bits(data.data(), data.size()); }

class Hasher {
public:
    Hasher() : state_(XXH3_createState(), &XXH3_freeState) {
        if (!state_) throw std::bad_alloc();
        XXH3_64bits_reset(state_.get());
    }
    void bytes(const void* p, size_t n) { XXH3_64bits_update(state_.get(), p, n); }
    template <class Int>
    void integer(Int v) {
        static_assert(std::is_integral_v<Int>);
        // Canonical little-endian: x86-64 is little-endian already.
        bytes(&v, sizeof v);
    }
    void string(const std::string& s) {
        integer<uint64_t>(s.size());
        bytes(s.data(), s.size());
    }
    uint64_t digest() const { return XXH3_64bits_digest(state_.get()); }

private:
    std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state_;
};

}  // namespace ckpt::image
