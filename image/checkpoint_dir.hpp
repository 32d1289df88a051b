// A checkpoint directory and its atomic commit protocol:
//
//   <dir>/ckpt-000007.partial/   being written: rank files, then manifest
//   <dir>/ckpt-000007/           committed: renamed only after every rank
//                                file and the manifest are fsync'd
//   <dir>/latest -> ckpt-000007  moved (symlink + rename) after the commit
//
// A crash at any moment leaves `latest` pointing at an intact checkpoint;
// leftovers of a dead writer are removed by the next begin().
#pragma once

#include "image/schema.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::image {

struct CheckpointRef {
    std::string path;  // <dir>/ckpt-NNNNNN
    uint64_t sequence = 0;
};

struct ManifestInfo {
    std::string job_id;
    uint64_t sequence = 0;
    uint32_t nranks = 0;
    uint32_t nnodes = 0;
    int64_t created_unix_ns = 0;
    int64_t duration_ns = 0;
    std::string status;
    uint32_t format_minor = 0;
};

struct Manifest {
    ManifestInfo info;
    std::vector<ManifestRankRecord> ranks;  // ordered by rank
};

std::string checkpoint_name(uint64_t sequence);  // "ckpt-000007"
std::string rank_file_name(uint32_t rank);       // "rank-00003.h5"

// An exclusive flock on a file, released on destruction.
class FileLock {
public:
    explicit FileLock(const std::string& path, bool wait = true);
    FileLock(FileLock&& o) noexcept;
    FileLock& operator=(FileLock&&) = delete;
    FileLock(const FileLock&) = delete;
    ~FileLock();
    bool held() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

class PendingCheckpoint;

class CheckpointDir {
public:
    // Creates the directory (mode 0700) when it does not exist.
    explicit CheckpointDir(std::string dir);

    const std::string& path() const { return dir_; }
    // Committed checkpoints, oldest first.
    std::vector<CheckpointRef> committed() const;
    // The checkpoint `latest` points at, if any.
    std::optional<CheckpointRef> latest() const;
    // Starts the next checkpoint: the sequence number after every one in the
    // directory (committed or partial), and at least at_least (a
    // coordinator never reuses the number of a round it aborted, whose
    // late messages would be taken for the new round's).
    PendingCheckpoint begin(uint64_t at_least = 1);
    // Deletes the oldest committed checkpoints until `keep` remain; never the
    // one `latest` points at. keep = 0 is treated as 1.
    void apply_retention(unsigned keep);
    // Removes the partial checkpoints of writers that died, and what a
    // remover that died left (under the directory's lock, as begin() does).
    void remove_abandoned();

private:
    void remove_abandoned_partials();
    std::string dir_;
};

class PendingCheckpoint {
public:
    PendingCheckpoint(std::string dir, uint64_t sequence);
    PendingCheckpoint(PendingCheckpoint&& o) noexcept;
    PendingCheckpoint(const PendingCheckpoint&) = delete;
    ~PendingCheckpoint();  // removes the partial directory unless committed

    uint64_t sequence() const { return sequence_; }
    const std::string& partial_path() const { return partial_; }
    std::string rank_path(uint32_t rank) const;

    // Checks the rank files against rows, writes the manifest, renames the
    // checkpoint into place and moves `latest`. Returns the final path.
    std::string commit(const std::string& job_id, int64_t duration_ns, std::vector<ManifestRankRecord> rows);
    // Removes the partial directory: renamed away first, so a rank still
    // writing into it fails rather than leave a file behind.
    void abort();

private:
    std::string dir_, partial_, final_;
    uint64_t sequence_ = 0;
    bool done_ = false;
    std::optional<FileLock> lock_;
};

struct RankHeader;
struct RankSummary;
// The manifest's row for a rank file, from what its writer reported.
ManifestRankRecord manifest_row(const RankHeader& header, const RankSummary& summary, int64_t dump_ns);

// Reads and validates a checkpoint's manifest (path is the checkpoint
// directory). Every rank file name is checked to lie inside the directory.
Manifest read_manifest(const std::string& checkpoint_path);

}  // namespace ckpt::image
