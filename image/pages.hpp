// Page data of one address space (a task, or a shared memory object): a
// chunked byte dataset "pages", the run table "page_index" mapping it to
// addresses, and "page_chunks" with each chunk's checksum and stored size.
// Chunks are written and read with HDF5's direct chunk calls so that
// compression and hashing run on worker threads, never inside HDF5.
#pragma once

#include "image/compression.hpp"
#include "image/h5.hpp"
#include "image/schema.hpp"
#include "image/worker_pool.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <vector>

namespace ckpt::image {

struct PageOptions {
    Compression compression = Compression::None;
    int level = 1;
    unsigned threads = 0;  // 0: one per core
    uint64_t chunk_bytes = uint64_t{1} << 20;
};

struct PageStats {
    uint64_t bytes = 0;         // page data, uncompressed
    uint64_t stored_bytes = 0;  // as written
    uint64_t runs = 0;
};

class PageWriter {
public:
    // Creates the page datasets in group; pool may be shared between writers.
    PageWriter(hid_t group, const PageOptions& options, WorkerPool& pool);
    PageWriter(const PageWriter&) = delete;
    PageWriter& operator=(const PageWriter&) = delete;
    ~PageWriter();

    // Adds pages at vaddr. vaddr and data.size() are page multiples and each
    // call starts above the previous one's end.
    void append(uint64_t vaddr, std::span<const uint8_t> data);
    // Writes the remaining chunks and the index; the writer is done after it.
    PageStats finish();

private:
    struct Chunk {
        std::unique_ptr<uint8_t[]> data;
        std::vector<uint8_t> compressed;
        bool is_compressed = false;
        uint64_t xxh3 = 0;
    };
    void submit_staged();
    void write_chunk(uint64_t index, const uint8_t* data, size_t bytes, bool compressed, uint64_t xxh3);
    void drain(size_t keep);

    hid_t group_;
    std::string file_, where_;
    PageOptions options_;
    WorkerPool& pool_;
    h5::Hid dataset_;
    std::vector<PageRunRecord> runs_;
    std::vector<PageChunkRecord> chunks_;
    std::unique_ptr<uint8_t[]> staging_;
    uint64_t staged_ = 0;
    uint64_t total_ = 0;
    uint64_t extent_ = 0;
    uint64_t next_chunk_ = 0;
    std::deque<std::future<Chunk>> in_flight_;
    bool finished_ = false;
};

class PageReader {
public:
    // Opens and validates the index of the page datasets in group.
    PageReader(hid_t group, WorkerPool& pool);

    const std::vector<PageRunRecord>& runs() const { return runs_; }
    uint64_t bytes() const { return bytes_; }
    uint64_t stored_bytes() const;
    Compression compression() const { return compression_; }

    using Sink = std::function<void(uint64_t vaddr, std::span<const uint8_t> data)>;
    // Reads every chunk, verifies its checksum and hands the pages to sink in
    // address order (a run may arrive in several pieces).
    void read(const Sink& sink);

private:
    struct Chunk {
        std::unique_ptr<uint8_t[]> data;
        std::string error;
    };
    std::future<Chunk> fetch(uint64_t index);

    std::string file_, where_;
    WorkerPool& pool_;
    h5::Hid dataset_;
    std::vector<PageRunRecord> runs_;
    std::vector<PageChunkRecord> chunks_;
    Compression compression_ = Compression::None;
    uint64_t chunk_bytes_ = 0;
    uint64_t bytes_ = 0;
};

}  // namespace ckpt::image
