#include "image/pages.hpp"

#include "image/checksum.hpp"
#include "image/error.hpp"
#include "image/table.hpp"

#include <zstd.h>

#include <algorithm>
#include <cstring>

namespace ckpt::image {

namespace {

constexpr uint64_t kMaxChunkBytes = uint64_t{64} << 20;
constexpr uint32_t kFilterSkipped = 1;  // bit 0 of the filter mask: the zstd filter was not applied

std::string hex_range(uint64_t a, uint64_t b) {
    char buf[64];
    snprintf(buf, sizeof buf, "0x%llx-0x%llx", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
    return buf;
}

}  // namespace

PageWriter::PageWriter(hid_t group, const PageOptions& options, WorkerPool& pool)
    : group_(group), file_(h5::file_name(group)), where_(h5::object_path(group) + "/pages"), options_(options), pool_(pool) {
    if (options_.chunk_bytes == 0 || options_.chunk_bytes % kPageSize != 0 || options_.chunk_bytes > kMaxChunkBytes)
        throw ImageError(file_, where_, "chunk size must be a page multiple up to 64 MiB");
    if (options_.compression == Compression::Zstd) register_zstd_filter();
    hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {options_.chunk_bytes};
    h5::Hid space = h5::check(H5Screate_simple(1, dims, maxdims), file_, where_, "cannot create dataspace");
    h5::Hid dcpl = h5::check(H5Pcreate(H5P_DATASET_CREATE), file_, where_, "cannot create property list");
    h5::check(H5Pset_chunk(dcpl, 1, chunk), file_, where_, "cannot set chunking");
    h5::check(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), file_, where_, "cannot set fill time");
    if (options_.compression == Compression::Zstd) {
        unsigned level = static_cast<unsigned>(options_.level);
        h5::check(H5Pset_filter(dcpl, kZstdFilterId, H5Z_FLAG_OPTIONAL, 1, &level), file_, where_,
                  "cannot declare the zstd filter");
    }
    dataset_ = h5::check(H5Dcreate2(group, "pages", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), file_, where_,
                         "cannot create dataset");
}

PageWriter::~PageWriter() {
    // Jobs own their buffers; waiting keeps them from outliving the pool's user.
    for (auto& f : in_flight_) f.wait();
}

void PageWriter::append(uint64_t vaddr, std::span<const uint8_t> data) {
    if (finished_) throw ImageError(file_, where_, "append after finish");
    if (vaddr % kPageSize != 0 || data.size() % kPageSize != 0)
        throw ImageError(file_, where_, "pages at " + hex_range(vaddr, vaddr + data.size()) + " are not page aligned");
    if (data.empty()) return;
    if (!runs_.empty() && vaddr < runs_.back().vaddr + runs_.back().bytes)
        throw ImageError(file_, where_, "pages at " + hex_range(vaddr, vaddr + data.size()) + " are out of order");
    if (!runs_.empty() && runs_.back().vaddr + runs_.back().bytes == vaddr)
        runs_.back().bytes += data.size();
    else
        runs_.push_back({vaddr, data.size(), total_});
    total_ += data.size();

    const uint64_t chunk = options_.chunk_bytes;
    while (!data.empty()) {
        if (staged_ == 0 && options_.compression == Compression::None && data.size() >= chunk) {
            // Whole chunks straight from the caller's memory: no copy.
            write_chunk(next_chunk_++, data.data(), chunk, false, xxh3(data.first(chunk)));
            data = data.subspan(chunk);
            continue;
        }
        if (!staging_) staging_ = std::make_unique_for_overwrite<uint8_t[]>(chunk);
        const uint64_t n = std::min<uint64_t>(chunk - staged_, data.size());
        std::memcpy(staging_.get() + staged_, data.data(), n);
        staged_ += n;
        data = data.subspan(n);
        if (staged_ == chunk) submit_staged();
    }
}

void PageWriter::submit_staged() {
    const uint64_t chunk = options_.chunk_bytes;
    if (staged_ < chunk) std::memset(staging_.get() + staged_, 0, chunk - staged_);
    staged_ = 0;
    if (options_.compression == Compression::None) {
        write_chunk(next_chunk_++, staging_.get(), chunk, false, xxh3({staging_.get(), chunk}));
        return;
    }
    in_flight_.push_back(pool_.submit([data = std::move(staging_), chunk, level = options_.level]() mutable {
        Chunk c;
        c.xxh3 = xxh3({data.get(), chunk});
        if (auto packed = zstd_compress({data.get(), chunk}, level)) {
            c.compressed = std::move(*packed);
            c.is_compressed = true;
        } else {
            c.data = std::move(data);
        }
        return c;
    }));
    drain(2 * pool_.size());
}

void PageWriter::drain(size_t keep) {
    while (in_flight_.size() > keep) {
        Chunk c = in_flight_.front().get();
        in_flight_.pop_front();
        if (c.is_compressed)
            write_chunk(next_chunk_++, c.compressed.data(), c.compressed.size(), true, c.xxh3);
        else
            write_chunk(next_chunk_++, c.data.get(), options_.chunk_bytes, false, c.xxh3);
    }
}

void PageWriter::write_chunk(uint64_t index, const uint8_t* data, size_t bytes, bool compressed, uint64_t hash) {
    const uint64_t chunk = options_.chunk_bytes;
    const uint64_t needed = (index + 1) * chunk;
    if (needed > extent_) {
        // Grow geometrically: one extent change per doubling, not per chunk.
        extent_ = std::max(needed, extent_ * 2);
        hsize_t dims[1] = {extent_};
        h5::check(H5Dset_extent(dataset_, dims), file_, where_, "cannot extend dataset");
    }
    const uint32_t mask = (options_.compression == Compression::Zstd && !compressed) ? kFilterSkipped : 0;
    hsize_t offset[1] = {index * chunk};
    h5::check(H5Dwrite_chunk(dataset_, H5P_DEFAULT, mask, offset, bytes, data), file_, where_,
              "cannot write chunk " + std::to_string(index));
    chunks_.push_back({hash, bytes});
}

PageStats PageWriter::finish() {
    if (finished_) throw ImageError(file_, where_, "finish called twice");
    if (staged_ > 0) submit_staged();
    drain(0);
    finished_ = true;
    hsize_t dims[1] = {total_};
    h5::check(H5Dset_extent(dataset_, dims), file_, where_, "cannot set final extent");
    PageStats stats{total_, 0, runs_.size()};
    for (const auto& c : chunks_) stats.stored_bytes += c.stored_bytes;
    h5::set_attr_u64(dataset_, "bytes", total_);
    h5::set_attr_u64(dataset_, "chunk_bytes", options_.chunk_bytes);
    h5::set_attr_str(dataset_, "compression", to_string(options_.compression));
    h5::set_attr_i64(dataset_, "zstd_level", options_.level);
    h5::set_attr_u64(dataset_, "stored_bytes", stats.stored_bytes);
    write_table(group_, TableSchema<PageRunRecord>::name, runs_);
    write_table(group_, TableSchema<PageChunkRecord>::name, chunks_);
    return stats;
}

PageReader::PageReader(hid_t group, WorkerPool& pool) : pool_(pool) {
    dataset_ = h5::open_dataset(group, "pages");
    file_ = h5::file_name(dataset_);
    where_ = h5::object_path(dataset_);

    h5::Hid type = h5::check(H5Dget_type(dataset_), file_, where_, "cannot read type");
    if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != 1)
        throw ImageError(file_, where_, "page data is not a byte dataset");
    h5::Hid space = h5::check(H5Dget_space(dataset_), file_, where_, "cannot read dataspace");
    hsize_t dims[1] = {0};
    if (H5Sget_simple_extent_ndims(space) != 1) throw ImageError(file_, where_, "page data is not one-dimensional");
    H5Sget_simple_extent_dims(space, dims, nullptr);

    bytes_ = h5::require_attr_u64(dataset_, "bytes");
    chunk_bytes_ = h5::require_attr_u64(dataset_, "chunk_bytes");
    const std::string compression = h5::require_attr_str(dataset_, "compression");
    auto parsed = parse_compression(compression);
    if (!parsed) throw ImageError(file_, where_, "unknown compression '" + compression + "'");
    compression_ = *parsed;
    if (compression_ == Compression::Zstd) register_zstd_filter();
    if (dims[0] != bytes_)
        throw ImageError(file_, where_, "holds " + std::to_string(dims[0]) + " bytes but its index says " + std::to_string(bytes_));
    if (chunk_bytes_ == 0 || chunk_bytes_ % kPageSize != 0 || chunk_bytes_ > kMaxChunkBytes)
        throw ImageError(file_, where_, "implausible chunk size " + std::to_string(chunk_bytes_));
    if (bytes_ % kPageSize != 0) throw ImageError(file_, where_, "size is not a page multiple");
    if (bytes_ > 0) {
        h5::Hid dcpl = h5::check(H5Dget_create_plist(dataset_), file_, where_, "cannot read creation properties");
        hsize_t chunk_dims[1] = {0};
        if (H5Pget_layout(dcpl) != H5D_CHUNKED || H5Pget_chunk(dcpl, 1, chunk_dims) != 1 || chunk_dims[0] != chunk_bytes_)
            throw ImageError(file_, where_, "chunk layout does not match its chunk_bytes attribute");
    }

    runs_ = read_table<PageRunRecord>(group, TableSchema<PageRunRecord>::name);
    chunks_ = read_table<PageChunkRecord>(group, TableSchema<PageChunkRecord>::name);
    const std::string index_where = h5::object_path(group) + "/page_index";
    uint64_t expected_offset = 0, previous_end = 0;
    for (size_t i = 0; i < runs_.size(); ++i) {
        const auto& r = runs_[i];
        const std::string row = "row " + std::to_string(i) + ": ";
        if (r.vaddr % kPageSize != 0 || r.bytes % kPageSize != 0 || r.bytes == 0)
            throw ImageError(file_, index_where, row + "run is not page aligned");
        if (r.vaddr + r.bytes < r.vaddr) throw ImageError(file_, index_where, row + "run wraps around the address space");
        if (i > 0 && r.vaddr < previous_end) throw ImageError(file_, index_where, row + "runs overlap or are out of order");
        if (r.data_offset != expected_offset)
            throw ImageError(file_, index_where, row + "data offset " + std::to_string(r.data_offset) + " should be " +
                                                     std::to_string(expected_offset));
        expected_offset += r.bytes;
        previous_end = r.vaddr + r.bytes;
        if (expected_offset > bytes_) throw ImageError(file_, index_where, row + "run extends past the page data");
    }
    if (expected_offset != bytes_)
        throw ImageError(file_, index_where, "runs cover " + std::to_string(expected_offset) + " bytes of " + std::to_string(bytes_));
    const uint64_t nchunks = (bytes_ + chunk_bytes_ - 1) / chunk_bytes_;
    if (chunks_.size() != nchunks)
        throw ImageError(file_, h5::object_path(group) + "/page_chunks",
                         "has " + std::to_string(chunks_.size()) + " rows for " + std::to_string(nchunks) + " chunks");
}

uint64_t PageReader::stored_bytes() const {
    uint64_t total = 0;
    for (const auto& c : chunks_) total += c.stored_bytes;
    return total;
}

std::future<PageReader::Chunk> PageReader::fetch(uint64_t index) {
    const uint64_t chunk = chunk_bytes_;
    hsize_t offset[1] = {index * chunk};
    hsize_t stored = 0;
    const std::string name = "chunk " + std::to_string(index);
    if (H5Dget_chunk_storage_size(dataset_, offset, &stored) < 0 || stored == 0) {
        H5Eclear2(H5E_DEFAULT);
        throw ImageError(file_, where_, name + " is missing");
    }
    if (stored != chunks_[index].stored_bytes)
        throw ImageError(file_, where_, name + " is " + std::to_string(stored) + " bytes, its index says " +
                                            std::to_string(chunks_[index].stored_bytes));
    if (stored > std::max<uint64_t>(chunk, ZSTD_compressBound(chunk)))
        throw ImageError(file_, where_, name + " has an implausible size");
    auto raw = std::make_unique_for_overwrite<uint8_t[]>(stored);
    uint32_t mask = 0;
    h5::check(H5Dread_chunk(dataset_, H5P_DEFAULT, offset, &mask, raw.get()), file_, where_, "cannot read " + name);
    const bool compressed = compression_ == Compression::Zstd && (mask & kFilterSkipped) == 0;
    const uint64_t expected_hash = chunks_[index].xxh3;
    const uint64_t first = offset[0];
    return pool_.submit([raw = std::move(raw), stored, compressed, chunk, expected_hash, name, first]() mutable {
        Chunk c;
        if (compressed) {
            c.data = std::make_unique_for_overwrite<uint8_t[]>(chunk);
            if (!zstd_decompress({raw.get(), stored}, {c.data.get(), chunk})) {
                c.error = name + " does not decompress";
                return c;
            }
        } else if (stored != chunk) {
            c.error = name + " has the wrong size";
            return c;
        } else {
            c.data = std::move(raw);
        }
        if (xxh3({c.data.get(), chunk}) != expected_hash)
            c.error = "checksum mismatch in " + name + " (page data bytes " + std::to_string(first) + ".." +
                      std::to_string(first + chunk) + "): page data is damaged";
        return c;
    });
}

void PageReader::read(const Sink& sink) {
    const uint64_t nchunks = chunks_.size();
    const size_t lookahead = 2 * pool_.size() + 1;
    std::deque<std::future<Chunk>> pending;
    uint64_t next_fetch = 0;
    size_t run = 0;
    for (uint64_t i = 0; i < nchunks; ++i) {
        while (next_fetch < nchunks && pending.size() < lookahead) pending.push_back(fetch(next_fetch++));
        Chunk c = pending.front().get();
        pending.pop_front();
        if (!c.error.empty()) throw ImageError(file_, where_, c.error);
        const uint64_t begin = i * chunk_bytes_, end = std::min(begin + chunk_bytes_, bytes_);
        while (run < runs_.size() && runs_[run].data_offset < end) {
            const auto& r = runs_[run];
            const uint64_t from = std::max(r.data_offset, begin), to = std::min(r.data_offset + r.bytes, end);
            sink(r.vaddr + (from - r.data_offset), {c.data.get() + (from - begin), to - from});
            if (r.data_offset + r.bytes > end) break;  // the run continues in the next chunk
            ++run;
        }
    }
}

}  // namespace ckpt::image
