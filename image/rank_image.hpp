// One rank's checkpoint: a single HDF5 file holding the rank's process tree
// (/tree, /task/<pid>), objects shared between its processes (/shared) and
// the MPI proxy's state (/mpi). See docs/image-format.md.
#pragma once

#include "image/h5.hpp"
#include "image/pages.hpp"
#include "image/schema.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ckpt::image {

struct RankHeader {
    uint32_t rank = 0;
    std::string job_id;
    std::string node;      // host name; filled from gethostname() when empty
    std::string image_id;  // random when empty
    int64_t created_unix_ns = 0;  // now when 0
};

struct RankSummary {
    uint32_t ntasks = 0;
    uint32_t nthreads = 0;
    uint64_t nvmas = 0;
    uint64_t memory_bytes = 0;   // address space covered by mappings
    uint64_t stored_bytes = 0;   // page data, uncompressed
    uint64_t on_disk_bytes = 0;  // page data as stored
    uint64_t datasets = 0;       // datasets whose checksum was verified
};

// Group names inside a rank file.
std::string task_group_name(int32_t pid);         // "task/<pid>"
std::string shmem_group_name(uint64_t shmem_id);  // "shared/shmem_<id>"

// Writes a rank file as PATH.tmp; finish() fsyncs it and renames it to PATH.
// A writer destroyed before finish() removes the temporary file.
class RankWriter {
public:
    RankWriter(std::string path, RankHeader header, PageOptions page_options);
    RankWriter(const RankWriter&) = delete;
    RankWriter& operator=(const RankWriter&) = delete;
    ~RankWriter();

    hid_t root() const { return file_; }
    const RankHeader& header() const { return header_; }
    const std::string& path() const { return path_; }

    void write_tree(const std::vector<TaskRecord>& tasks);
    // Creates /task/<pid>; the caller fills it with write_table/write_record
    // and page_writer().
    h5::Hid create_task(int32_t pid);
    h5::Hid shared();  // /shared, created on first use
    h5::Hid mpi();     // /mpi, created on first use
    // A page writer for a group (a task, or shared memory object). When the
    // caller knows how many bytes will be stored and they are less than one
    // chunk, the chunk is sized to them (small processes stay small on disk).
    std::unique_ptr<PageWriter> page_writer(hid_t group, uint64_t expected_bytes = 0);

    // Writes the summary attributes, closes, fsyncs and renames into place.
    RankSummary finish(int64_t dump_ns);

private:
    std::string path_, tmp_path_;
    RankHeader header_;
    PageOptions page_options_;
    WorkerPool pool_;
    h5::Hid file_;
    h5::Hid shared_, mpi_;
    bool finished_ = false;
};

// Opens a rank file read-only after checking that it is a complete rank
// image of a format version this reader understands.
class RankReader {
public:
    explicit RankReader(const std::string& path);

    hid_t root() const { return file_; }
    const std::string& path() const { return path_; }
    const RankHeader& header() const { return header_; }
    uint32_t format_minor() const { return minor_; }
    int64_t dump_ns() const { return dump_ns_; }

    std::vector<TaskRecord> tasks() const;
    h5::Hid task(int32_t pid) const;

    // Reads every dataset, checks every checksum and every cross reference;
    // with verify_pages, also reads and checks all page data. Throws
    // ImageError at the first problem.
    RankSummary verify(bool verify_pages, WorkerPool& pool) const;

private:
    std::string path_;
    h5::Hid file_;
    RankHeader header_;
    uint32_t minor_ = 0;
    int64_t dump_ns_ = 0;
};

// Creates the file access properties shared by every image file.
h5::Hid image_file_access(const std::string& path);
// Opens an existing image file read-only with a clear error when it is
// missing, empty or not HDF5.
h5::Hid open_image_file(const std::string& path);
// fsync of a file or directory by path.
void fsync_path(const std::string& path);
std::string random_id();

}  // namespace ckpt::image
