#include "image/checkpoint_dir.hpp"

#include "image/error.hpp"
#include "image/fault.hpp"
#include "image/h5.hpp"
#include "image/rank_image.hpp"
#include "image/table.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace ckpt::image {

namespace {

constexpr const char* kPartialSuffix = ".partial";
constexpr const char* kDeletingSuffix = ".deleting";
constexpr const char* kLockName = ".lock";

std::optional<uint64_t> parse_checkpoint_name(const std::string& name, bool partial) {
    std::string base = name;
    if (partial) {
        if (!base.ends_with(kPartialSuffix)) return std::nullopt;
        base.resize(base.size() - strlen(kPartialSuffix));
    }
    if (!base.starts_with("ckpt-") || base.size() != 11) return std::nullopt;
    uint64_t seq = 0;
    for (char c : base.substr(5)) {
        if (c < '0' || c > '9') return std::nullopt;
        seq = seq * 10 + static_cast<uint64_t>(c - '0');
    }
    return seq;
}

[[noreturn]] void fail_errno(const std::string& path, const std::string& what) {
    throw ImageError(path, "", what + ": " + strerror(errno));
}

// A rank file name must be a plain name of the form rank-NNNNN.h5, so a
// manifest can never make a reader open a file outside its directory.
bool plain_rank_file_name(const std::string& name) {
    if (name.size() != 13 || !name.starts_with("rank-") || !name.ends_with(".h5")) return false;
    return std::all_of(name.begin() + 5, name.begin() + 10, [](char c) { return c >= '0' && c <= '9'; });
}

// Removes a partial checkpoint for good. It is renamed first, so that from
// then on nothing can be written into it by its name: a rank still dumping
// into an aborted checkpoint fails instead of leaving its file behind in a
// directory that was already being removed.
void discard_partial(const std::string& partial) {
    std::error_code ec;
    const std::string doomed = partial + kDeletingSuffix;
    if (rename(partial.c_str(), doomed.c_str()) != 0) {
        fs::remove_all(partial, ec);
        return;
    }
    fs::remove_all(doomed, ec);
}

// ckpt-NNNNNN.deleting or ckpt-NNNNNN.partial.deleting: left by a remover
// that died.
bool being_deleted(const std::string& name) {
    if (!name.ends_with(kDeletingSuffix)) return false;
    const std::string base = name.substr(0, name.size() - strlen(kDeletingSuffix));
    return parse_checkpoint_name(base, false) || parse_checkpoint_name(base, true);
}

}  // namespace

std::string checkpoint_name(uint64_t sequence) {
    char buf[32];
    snprintf(buf, sizeof buf, "ckpt-%06llu", static_cast<unsigned long long>(sequence));
    return buf;
}

std::string rank_file_name(uint32_t rank) {
    char buf[32];
    snprintf(buf, sizeof buf, "rank-%05u.h5", rank);
    return buf;
}

FileLock::FileLock(const std::string& path, bool wait) {
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) fail_errno(path, "cannot open lock file");
    if (flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
        int err = errno;
        close(fd_);
        fd_ = -1;
        if (err != EWOULDBLOCK) {
            errno = err;
            fail_errno(path, "cannot lock");
        }
    }
}

FileLock::FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

FileLock::~FileLock() {
    if (fd_ >= 0) close(fd_);
}

CheckpointDir::CheckpointDir(std::string dir) : dir_(std::move(dir)) {
    if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) fail_errno(dir_, "cannot create checkpoint directory");
    struct stat st {};
    if (stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw ImageError(dir_, "", "is not a directory");
}

std::vector<CheckpointRef> CheckpointDir::committed() const {
    std::vector<CheckpointRef> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
        auto seq = parse_checkpoint_name(entry.path().filename().string(), false);
        if (seq && entry.is_directory() && !entry.is_symlink() && fs::exists(entry.path() / "manifest.h5"))
            out.push_back({entry.path().string(), *seq});
    }
    if (ec) throw ImageError(dir_, "", "cannot list: " + ec.message());
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.sequence < b.sequence; });
    return out;
}

std::optional<CheckpointRef> CheckpointDir::latest() const {
    std::error_code ec;
    fs::path target = fs::read_symlink(fs::path(dir_) / "latest", ec);
    if (ec) return std::nullopt;
    auto seq = parse_checkpoint_name(target.filename().string(), false);
    if (!seq || target.has_parent_path()) return std::nullopt;
    return CheckpointRef{(fs::path(dir_) / target).string(), *seq};
}

void CheckpointDir::remove_abandoned_partials() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
        const std::string name = entry.path().filename().string();
        if (being_deleted(name)) {
            std::error_code ignored;
            fs::remove_all(entry.path(), ignored);
            continue;
        }
        if (!parse_checkpoint_name(name, true)) continue;
        // A live writer holds the lock inside its partial directory.
        try {
            FileLock probe((entry.path() / kLockName).string(), false);
            if (probe.held()) discard_partial(entry.path().string());
        } catch (const ImageError&) {
            // Gone meanwhile (its writer aborted it), or not ours to open.
        }
    }
}

void CheckpointDir::remove_abandoned() {
    FileLock dir_lock((fs::path(dir_) / kLockName).string());
    remove_abandoned_partials();
}

PendingCheckpoint CheckpointDir::begin(uint64_t at_least) {
    FileLock dir_lock((fs::path(dir_) / kLockName).string());
    remove_abandoned_partials();
    uint64_t next = std::max<uint64_t>(at_least, 1);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
        const std::string name = entry.path().filename().string();
        auto seq = parse_checkpoint_name(name, false);
        if (!seq) seq = parse_checkpoint_name(name, true);
        if (seq) next = std::max(next, *seq + 1);
    }
    return PendingCheckpoint(dir_, next);
}

void CheckpointDir::apply_retention(unsigned keep) {
    FileLock dir_lock((fs::path(dir_) / kLockName).string());
    keep = std::max(keep, 1u);
    auto all = committed();
    auto newest = latest();
    size_t excess = all.size() > keep ? all.size() - keep : 0;
    for (size_t i = 0; i < all.size() && excess > 0; ++i) {
        if (newest && all[i].sequence == newest->sequence) continue;
        // Rename first so a half-deleted checkpoint is never taken as committed.
        const std::string doomed = all[i].path + ".deleting";
        if (rename(all[i].path.c_str(), doomed.c_str()) != 0) fail_errno(all[i].path, "cannot retire checkpoint");
        std::error_code ec;
        fs::remove_all(doomed, ec);
        --excess;
    }
}

PendingCheckpoint::PendingCheckpoint(std::string dir, uint64_t sequence)
    : dir_(std::move(dir)), sequence_(sequence) {
    partial_ = (fs::path(dir_) / (checkpoint_name(sequence) + kPartialSuffix)).string();
    final_ = (fs::path(dir_) / checkpoint_name(sequence)).string();
    if (mkdir(partial_.c_str(), 0700) != 0) fail_errno(partial_, "cannot create checkpoint directory");
    lock_.emplace((fs::path(partial_) / kLockName).string());
}

PendingCheckpoint::PendingCheckpoint(PendingCheckpoint&& o) noexcept
    : dir_(std::move(o.dir_)), partial_(std::move(o.partial_)), final_(std::move(o.final_)),
      sequence_(o.sequence_), done_(std::exchange(o.done_, true)), lock_(std::move(o.lock_)) {
    o.lock_.reset();
}

PendingCheckpoint::~PendingCheckpoint() {
    if (!done_) abort();
}

std::string PendingCheckpoint::rank_path(uint32_t rank) const { return (fs::path(partial_) / rank_file_name(rank)).string(); }

void PendingCheckpoint::abort() {
    if (done_) return;
    done_ = true;
    discard_partial(partial_);
    lock_.reset();
}

namespace {

void write_manifest(const std::string& path, const ManifestInfo& info, const std::vector<ManifestRankRecord>& rows) {
    const std::string tmp = path + ".tmp";
    {
        h5::Hid fapl = image_file_access(tmp);
        h5::Hid file = h5::check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), tmp, "", "cannot create manifest");
        if (chmod(tmp.c_str(), 0600) != 0) fail_errno(tmp, "cannot chmod");
        h5::set_attr_str(file, "format_name", kManifestFormatName);
        h5::set_attr_u64(file, "format_major", kFormatMajor);
        h5::set_attr_u64(file, "format_minor", kFormatMinor);
        h5::set_attr_str(file, "job_id", info.job_id);
        h5::set_attr_u64(file, "sequence", info.sequence);
        h5::set_attr_u64(file, "nranks", info.nranks);
        h5::set_attr_u64(file, "nnodes", info.nnodes);
        h5::set_attr_i64(file, "created_unix_ns", info.created_unix_ns);
        h5::set_attr_i64(file, "duration_ns", info.duration_ns);
        h5::set_attr_str(file, "status", "committed");
        write_table(file, TableSchema<ManifestRankRecord>::name, rows);
        h5::Hid ranks = h5::create_group(file, "ranks");
        for (const auto& r : rows) {
            const std::string link = r.file.substr(0, r.file.size() - 3);  // "rank-00003"
            h5::check(H5Lcreate_external(r.file.c_str(), "/", ranks, link.c_str(), H5P_DEFAULT, H5P_DEFAULT), tmp,
                      "/ranks/" + link, "cannot create external link");
        }
    }
    fsync_path(tmp);
    fault_point(FaultPoint::CommitManifestUnrenamed);
    if (rename(tmp.c_str(), path.c_str()) != 0) fail_errno(path, "cannot rename manifest into place");
}

}  // namespace

std::string PendingCheckpoint::commit(const std::string& job_id, int64_t duration_ns, std::vector<ManifestRankRecord> rows) {
    if (done_) throw ImageError(partial_, "", "checkpoint already committed or aborted");
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.rank < b.rank; });
    std::set<std::string> nodes;
    int64_t created = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
        auto& r = rows[i];
        if (r.rank != i) throw ImageError(partial_, "", "rank " + std::to_string(i) + " is missing from the checkpoint");
        r.file = rank_file_name(r.rank);
        RankReader reader(rank_path(r.rank));  // exists, complete, right format
        if (reader.header().image_id != r.image_id || reader.header().rank != r.rank)
            throw ImageError(reader.path(), "/", "is not the image rank " + std::to_string(r.rank) + " reported");
        r.file_bytes = fs::file_size(rank_path(r.rank));
        nodes.insert(r.node);
        created = created == 0 ? reader.header().created_unix_ns : std::min(created, reader.header().created_unix_ns);
    }
    if (rows.empty()) throw ImageError(partial_, "", "a checkpoint needs at least one rank");
    ManifestInfo info{job_id, sequence_, static_cast<uint32_t>(rows.size()), static_cast<uint32_t>(nodes.size()),
                      created, duration_ns, "committed", kFormatMinor};
    fault_point(FaultPoint::CommitBeforeManifest);
    write_manifest((fs::path(partial_) / "manifest.h5").string(), info, rows);
    // Under the directory lock: once its own lock file is gone, a partial
    // checkpoint must not be mistaken for an abandoned one by begin().
    FileLock dir_lock((fs::path(dir_) / kLockName).string());
    unlink((fs::path(partial_) / kLockName).c_str());
    fsync_path(partial_);
    fault_point(FaultPoint::CommitBeforeRename);
    if (rename(partial_.c_str(), final_.c_str()) != 0) fail_errno(final_, "cannot commit checkpoint");
    done_ = true;
    lock_.reset();
    fsync_path(dir_);
    fault_point(FaultPoint::CommitBeforeLatest);
    // Move `latest` atomically: a new symlink renamed over the old one.
    const std::string link_tmp = (fs::path(dir_) / "latest.tmp").string();
    unlink(link_tmp.c_str());
    if (symlink(checkpoint_name(sequence_).c_str(), link_tmp.c_str()) != 0) fail_errno(link_tmp, "cannot create symlink");
    if (rename(link_tmp.c_str(), (fs::path(dir_) / "latest").c_str()) != 0) fail_errno(dir_, "cannot move latest");
    fsync_path(dir_);
    return final_;
}

ManifestRankRecord manifest_row(const RankHeader& header, const RankSummary& s, int64_t dump_ns) {
    ManifestRankRecord row;
    row.rank = header.rank;
    row.ntasks = s.ntasks;
    row.nthreads = s.nthreads;
    row.nvmas = s.nvmas;
    row.memory_bytes = s.memory_bytes;
    row.stored_bytes = s.stored_bytes;
    row.on_disk_bytes = s.on_disk_bytes;
    row.dump_ns = dump_ns;
    row.node = header.node;
    row.image_id = header.image_id;
    return row;
}

Manifest read_manifest(const std::string& checkpoint_path) {
    const std::string path = (fs::path(checkpoint_path) / "manifest.h5").string();
    h5::Hid file = open_image_file(path);
    const std::string format = h5::require_attr_str(file, "format_name");
    if (format != kManifestFormatName) throw ImageError(path, "/", "is a '" + format + "', not a checkpoint manifest");
    Manifest m;
    const uint64_t major = h5::require_attr_u64(file, "format_major");
    m.info.format_minor = static_cast<uint32_t>(h5::require_attr_u64(file, "format_minor"));
    if (major != kFormatMajor)
        throw ImageError(path, "/", "format version " + std::to_string(major) + "." + std::to_string(m.info.format_minor) +
                                        " is not supported (this reader understands " + std::to_string(kFormatMajor) + ".x)");
    m.info.job_id = h5::require_attr_str(file, "job_id");
    m.info.sequence = h5::require_attr_u64(file, "sequence");
    m.info.nranks = static_cast<uint32_t>(h5::require_attr_u64(file, "nranks"));
    m.info.nnodes = static_cast<uint32_t>(h5::require_attr_u64(file, "nnodes"));
    m.info.created_unix_ns = h5::require_attr_i64(file, "created_unix_ns");
    m.info.duration_ns = h5::require_attr_i64(file, "duration_ns");
    m.info.status = h5::require_attr_str(file, "status");
    if (m.info.status != "committed") throw ImageError(path, "/", "checkpoint status is '" + m.info.status + "'");
    m.ranks = read_table<ManifestRankRecord>(file, TableSchema<ManifestRankRecord>::name);
    const std::string table = "/" + std::string(TableSchema<ManifestRankRecord>::name);
    if (m.ranks.size() != m.info.nranks)
        throw ImageError(path, table, "lists " + std::to_string(m.ranks.size()) + " ranks, nranks says " + std::to_string(m.info.nranks));
    for (size_t i = 0; i < m.ranks.size(); ++i) {
        const auto& r = m.ranks[i];
        if (r.rank != i) throw ImageError(path, table, "row " + std::to_string(i) + " is rank " + std::to_string(r.rank));
        if (!plain_rank_file_name(r.file) || r.file != rank_file_name(r.rank))
            throw ImageError(path, table, "rank " + std::to_string(r.rank) + " names file '" + r.file +
                                              "', which is not a rank file inside the checkpoint directory");
        // The external link must point at the same file as the table.
        const std::string link = "ranks/" + r.file.substr(0, r.file.size() - 3);
        H5L_info_t info{};
        if (H5Lget_info(file, link.c_str(), &info, H5P_DEFAULT) < 0 || info.type != H5L_TYPE_EXTERNAL || info.u.val_size > 4096) {
            H5Eclear2(H5E_DEFAULT);
            throw ImageError(path, "/" + link, "external link to the rank file is missing");
        }
        std::vector<char> value(info.u.val_size);
        const char* target_file = nullptr;
        const char* target_object = nullptr;
        unsigned flags = 0;
        if (H5Lget_val(file, link.c_str(), value.data(), value.size(), H5P_DEFAULT) < 0 ||
            H5Lunpack_elink_val(value.data(), value.size(), &flags, &target_file, &target_object) < 0 ||
            target_file == nullptr || std::string(target_file) != r.file) {
            H5Eclear2(H5E_DEFAULT);
            throw ImageError(path, "/" + link, "external link does not point at " + r.file + " in this directory");
        }
    }
    return m;
}

}  // namespace ckpt::image
