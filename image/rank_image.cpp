#include "image/rank_image.hpp"

#include "image/error.hpp"
#include "image/fault.hpp"
#include "image/table.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace ckpt::image {

namespace {

constexpr uint64_t kMaxBlobBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxXsaveBytes = 1 << 16;

int64_t now_unix_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}

}  // namespace

std::string random_id() {
    uint8_t bytes[16];
    if (getrandom(bytes, sizeof bytes, 0) != sizeof bytes) throw std::runtime_error("getrandom failed");
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (uint8_t b : bytes) {
        s += hex[b >> 4];
        s += hex[b & 15];
    }
    return s;
}

std::string task_group_name(int32_t pid) { return "task/" + std::to_string(pid); }
std::string shmem_group_name(uint64_t shmem_id) { return "shared/shmem_" + std::to_string(shmem_id); }

void fsync_path(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ImageError(path, "", std::string("cannot open to fsync: ") + strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    if (rc != 0) throw ImageError(path, "", std::string("fsync failed: ") + strerror(err));
}

h5::Hid image_file_access(const std::string& path) {
    h5::quiet_library();
    h5::Hid fapl = h5::check(H5Pcreate(H5P_FILE_ACCESS), path, "", "cannot create file access properties");
    // The 1.10 format gives chunked datasets the fast extensible-array index.
    h5::check(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110), path, "", "cannot set format bounds");
    // Page-aligned objects: chunk I/O is whole pages.
    h5::check(H5Pset_alignment(fapl, 4096, 4096), path, "", "cannot set alignment");
    return fapl;
}

h5::Hid open_image_file(const std::string& path) {
    h5::quiet_library();
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) throw ImageError(path, "", std::string("cannot open: ") + strerror(errno));
    if (!S_ISREG(st.st_mode)) throw ImageError(path, "", "is not a regular file");
    if (st.st_size == 0) throw ImageError(path, "", "file is empty");
    h5::Hid fapl = image_file_access(path);
    htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
    H5Eclear2(H5E_DEFAULT);
    if (is_hdf5 <= 0) throw ImageError(path, "", "is not an HDF5 file");
    return h5::check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), path, "",
                     "cannot open (the file is truncated or damaged)");
}

// ---- writing ------------------------------------------------------------------

RankWriter::RankWriter(std::string path, RankHeader header, PageOptions page_options)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp"), header_(std::move(header)), page_options_(page_options),
      pool_(page_options.threads ? page_options.threads : std::max(1u, std::thread::hardware_concurrency())) {
    if (header_.node.empty()) header_.node = host_name();
    if (header_.image_id.empty()) header_.image_id = random_id();
    if (header_.created_unix_ns == 0) header_.created_unix_ns = now_unix_ns();
    h5::Hid fapl = image_file_access(tmp_path_);
    file_ = h5::check(H5Fcreate(tmp_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), tmp_path_, "",
                      "cannot create rank file");
    // Memory images hold whatever the program held: readable by its owner only.
    if (chmod(tmp_path_.c_str(), 0600) != 0) throw ImageError(tmp_path_, "", std::string("cannot chmod: ") + strerror(errno));
    h5::set_attr_str(file_, "format_name", kRankFormatName);
    h5::set_attr_u64(file_, "format_major", kFormatMajor);
    h5::set_attr_u64(file_, "format_minor", kFormatMinor);
    h5::set_attr_u64(file_, "rank", header_.rank);
    h5::set_attr_str(file_, "job_id", header_.job_id);
    h5::set_attr_str(file_, "node", header_.node);
    h5::set_attr_str(file_, "image_id", header_.image_id);
    h5::set_attr_i64(file_, "created_unix_ns", header_.created_unix_ns);
    h5::create_group(file_, "task");
}

RankWriter::~RankWriter() {
    if (!finished_) {
        shared_.reset();
        mpi_.reset();
        file_.reset();
        unlink(tmp_path_.c_str());
    }
}

void RankWriter::write_tree(const std::vector<TaskRecord>& tasks) {
    h5::Hid tree = h5::create_group(file_, "tree");
    write_table(tree, TableSchema<TaskRecord>::name, tasks);
}

h5::Hid RankWriter::create_task(int32_t pid) { return h5::create_group(file_, task_group_name(pid)); }

h5::Hid RankWriter::shared() {
    if (!shared_.valid()) shared_ = h5::create_group(file_, "shared");
    return h5::Hid(H5Oopen(file_, "shared", H5P_DEFAULT));
}

h5::Hid RankWriter::mpi() {
    if (!mpi_.valid()) mpi_ = h5::create_group(file_, "mpi");
    return h5::Hid(H5Oopen(file_, "mpi", H5P_DEFAULT));
}

std::unique_ptr<PageWriter> RankWriter::page_writer(hid_t group, uint64_t expected_bytes) {
    PageOptions options = page_options_;
    if (expected_bytes > 0 && expected_bytes < options.chunk_bytes)
        options.chunk_bytes = (expected_bytes + kPageSize - 1) / kPageSize * kPageSize;
    return std::make_unique<PageWriter>(group, options, pool_);
}

RankSummary RankWriter::finish(int64_t dump_ns) {
    if (finished_) throw ImageError(tmp_path_, "", "finish called twice");
    // The writer checks its own output the way a reader will, before the
    // file can become part of a checkpoint.
    RankSummary summary;
    h5::set_attr_i64(file_, "dump_ns", dump_ns);
    h5::set_attr_u64(file_, "complete", 1);
    shared_.reset();
    mpi_.reset();
    h5::check(H5Fflush(file_, H5F_SCOPE_GLOBAL), tmp_path_, "", "cannot flush");
    file_.reset();
    {
        RankReader check(tmp_path_);
        summary = check.verify(false, pool_);
    }
    fsync_path(tmp_path_);
    fault_point(FaultPoint::RankBeforeRename, header_.rank);
    if (rename(tmp_path_.c_str(), path_.c_str()) != 0)
        throw ImageError(path_, "", std::string("cannot rename into place: ") + strerror(errno));
    finished_ = true;
    return summary;
}

// ---- reading ------------------------------------------------------------------

RankReader::RankReader(const std::string& path) : path_(path) {
    file_ = open_image_file(path);
    const std::string format = h5::require_attr_str(file_, "format_name");
    if (format != kRankFormatName) throw ImageError(path, "/", "is a '" + format + "', not a rank image");
    const uint64_t major = h5::require_attr_u64(file_, "format_major");
    minor_ = static_cast<uint32_t>(h5::require_attr_u64(file_, "format_minor"));
    if (major != kFormatMajor)
        throw ImageError(path, "/", "format version " + std::to_string(major) + "." + std::to_string(minor_) +
                                        " is not supported (this reader understands " + std::to_string(kFormatMajor) +
                                        ".x)");
    if (h5::get_attr_u64(file_, "complete").value_or(0) != 1)
        throw ImageError(path, "/", "image is incomplete (its writer did not finish)");
    header_.rank = static_cast<uint32_t>(h5::require_attr_u64(file_, "rank"));
    header_.job_id = h5::require_attr_str(file_, "job_id");
    header_.node = h5::require_attr_str(file_, "node");
    header_.image_id = h5::require_attr_str(file_, "image_id");
    header_.created_unix_ns = h5::require_attr_i64(file_, "created_unix_ns");
    dump_ns_ = h5::require_attr_i64(file_, "dump_ns");
}

std::vector<TaskRecord> RankReader::tasks() const {
    return read_table<TaskRecord>(h5::open_group(file_, "tree"), TableSchema<TaskRecord>::name);
}

h5::Hid RankReader::task(int32_t pid) const { return h5::open_group(h5::open_group(file_, "task"), std::to_string(pid)); }

namespace {

// Verification of one rank file: every dataset is read through its typed
// reader (which checks its checksum) and recorded; cross references are
// checked; at the end no dataset may remain unchecked.
class RankVerifier {
public:
    RankVerifier(hid_t root, uint32_t minor, bool verify_pages, WorkerPool& pool)
        : root_(root), file_(h5::file_name(root)), minor_(minor), verify_pages_(verify_pages), pool_(pool) {}

    RankSummary run() {
        h5::Hid tree = h5::open_group(root_, "tree");
        auto tasks = table<TaskRecord>(tree);
        verify_tasks(tasks);
        if (h5::link_exists(root_, "shared")) verify_shared(h5::open_group(root_, "shared"));
        h5::Hid task_root = h5::open_group(root_, "task");
        for (const auto& t : tasks) {
            if (t.state == static_cast<uint32_t>(TaskState::Zombie)) continue;  // nothing but its tree row
            verify_task(t, h5::open_group(task_root, std::to_string(t.pid)));
        }
        if (h5::link_exists(root_, "mpi")) verify_mpi(h5::open_group(root_, "mpi"));
        check_nothing_unverified();
        summary_.ntasks = static_cast<uint32_t>(tasks.size());
        summary_.datasets = verified_.size();
        return summary_;
    }

private:
    std::string path_of(hid_t loc, const std::string& name) {
        std::string p = h5::object_path(loc);
        return (p == "/" ? "" : p) + "/" + name;
    }

    template <class Rec>
    std::vector<Rec> table(hid_t loc, const char* name = TableSchema<Rec>::name) {
        auto rows = read_table<Rec>(loc, name);
        verified_.insert(path_of(loc, name));
        return rows;
    }

    template <class Rec>
    std::vector<Rec> optional_table(hid_t loc) {
        if (!h5::link_exists(loc, TableSchema<Rec>::name)) return {};
        return table<Rec>(loc);
    }

    Blob blob(hid_t loc, const std::string& name, uint64_t max_bytes) {
        Blob b = read_blob(loc, name, max_bytes);
        verified_.insert(path_of(loc, name));
        return b;
    }

    [[noreturn]] void fail(hid_t loc, const std::string& name, const std::string& what) {
        throw ImageError(file_, path_of(loc, name), what);
    }

    void verify_tasks(const std::vector<TaskRecord>& tasks) {
        h5::Hid tree = h5::open_group(root_, "tree");
        if (tasks.empty()) fail(tree, "tasks", "the process tree is empty");
        std::unordered_set<int32_t> pids;
        for (size_t i = 0; i < tasks.size(); ++i) {
            const auto& t = tasks[i];
            const std::string row = "row " + std::to_string(i) + " (pid " + std::to_string(t.pid) + "): ";
            if (t.pid <= 0) fail(tree, "tasks", row + "invalid pid");
            if (!pids.insert(t.pid).second) fail(tree, "tasks", row + "duplicate pid");
            if (t.state > static_cast<uint32_t>(TaskState::Zombie)) fail(tree, "tasks", row + "invalid state");
            if (t.state == static_cast<uint32_t>(TaskState::Running) && t.nthreads == 0)
                fail(tree, "tasks", row + "a live task without threads");
            // Parents come before children. The root's parent is outside the
            // tree, and so is the namespace's init (1), which adopts orphans.
            if (i > 0 && t.ppid > 1 && !pids.contains(t.ppid)) fail(tree, "tasks", row + "parent " + std::to_string(t.ppid) + " is not in the tree before it");
        }
    }

    void verify_shared(hid_t shared) {
        for (const auto& f : optional_table<FileRecord>(shared)) {
            if (f.id == 0 || !file_ids_.insert(f.id).second) fail(shared, "files", "invalid or duplicate id " + std::to_string(f.id));
            if (f.kind > static_cast<uint32_t>(FileKind::DeletedFile)) fail(shared, "files", "file " + std::to_string(f.id) + " has an unknown kind");
            if ((f.kind == static_cast<uint32_t>(FileKind::PipeRead) || f.kind == static_cast<uint32_t>(FileKind::PipeWrite) ||
                 f.kind == static_cast<uint32_t>(FileKind::Fifo)))
                pipe_refs_.push_back(f.object_id);
            if (f.kind == static_cast<uint32_t>(FileKind::Memfd)) shmem_refs_.push_back({f.id, f.object_id, VmaKind::Memfd});
            if (f.kind == static_cast<uint32_t>(FileKind::DeletedFile)) shmem_refs_.push_back({f.id, f.object_id, VmaKind::DeletedFile});
        }
        auto pipes = optional_table<PipeRecord>(shared);
        uint64_t pipe_data = 0;
        if (h5::link_exists(shared, "pipe_data")) pipe_data = blob(shared, "pipe_data", kMaxBlobBytes).data.size();
        std::unordered_set<uint64_t> pipe_ids;
        for (const auto& p : pipes) {
            if (p.id == 0 || !pipe_ids.insert(p.id).second) fail(shared, "pipes", "invalid or duplicate id " + std::to_string(p.id));
            if (p.data_offset > pipe_data || p.data_bytes > pipe_data - p.data_offset)
                fail(shared, "pipes", "pipe " + std::to_string(p.id) + " data lies outside pipe_data");
        }
        for (uint64_t ref : pipe_refs_)
            if (!pipe_ids.contains(ref)) fail(shared, "files", "refers to pipe " + std::to_string(ref) + " that is not in pipes");
        std::unordered_map<uint64_t, uint32_t> shmem_kinds;
        for (const auto& s : optional_table<ShmemRecord>(shared)) {
            if (s.id == 0 || !shmem_.emplace(s.id, s.bytes).second) fail(shared, "shmem", "invalid or duplicate id " + std::to_string(s.id));
            if (s.kind != static_cast<uint32_t>(VmaKind::AnonShared) && s.kind != static_cast<uint32_t>(VmaKind::Memfd) &&
                s.kind != static_cast<uint32_t>(VmaKind::DeletedFile))
                fail(shared, "shmem", "object " + std::to_string(s.id) + " has kind " + std::to_string(s.kind) + ", not a shared memory kind");
            shmem_kinds[s.id] = s.kind;
            h5::Hid group = h5::open_group(root_, shmem_group_name(s.id));
            auto covered = pages(group);
            // A file's last page may reach past its end (the rest is zeros).
            const uint64_t limit = s.bytes > ~uint64_t{0} - (kPageSize - 1) ? ~uint64_t{0} : (s.bytes + kPageSize - 1) / kPageSize * kPageSize;
            for (const auto& r : covered)
                if (r.bytes > limit || r.vaddr > limit - r.bytes) fail(group, "page_index", "pages lie beyond the object's size");
        }
        for (const auto& ref : shmem_refs_) {
            auto it = shmem_kinds.find(ref.object_id);
            if (it == shmem_kinds.end())
                fail(shared, "files", "file " + std::to_string(ref.file_id) + " refers to shared memory " + std::to_string(ref.object_id) +
                                          " that is not in /shared/shmem");
            if (it->second != static_cast<uint32_t>(ref.kind))
                fail(shared, "files", "file " + std::to_string(ref.file_id) + " and shared memory " + std::to_string(ref.object_id) +
                                          " disagree on the kind of object");
        }
    }

    std::vector<PageRunRecord> pages(hid_t group) {
        PageReader reader(group, pool_);
        for (const char* name : {"pages", "page_index", "page_chunks"}) verified_.insert(path_of(group, name));
        summary_.stored_bytes += reader.bytes();
        summary_.on_disk_bytes += reader.stored_bytes();
        if (verify_pages_) reader.read([](uint64_t, std::span<const uint8_t>) {});
        return reader.runs();
    }

    void verify_task(const TaskRecord& t, hid_t group) {
        table<ProcessRecord>(group);
        auto vmas = table<VmaRecord>(group);
        uint64_t previous_end = 0;
        for (size_t i = 0; i < vmas.size(); ++i) {
            const auto& v = vmas[i];
            const std::string row = "row " + std::to_string(i) + ": ";
            if (v.start % kPageSize || v.end % kPageSize || v.start >= v.end) fail(group, "vmas", row + "bad bounds");
            if (i > 0 && v.start < previous_end) fail(group, "vmas", row + "mappings overlap or are out of order");
            if (v.kind > static_cast<uint32_t>(VmaKind::DeletedFile)) fail(group, "vmas", row + "unknown kind");
            const bool needs_shmem = v.kind == static_cast<uint32_t>(VmaKind::AnonShared) ||
                                     v.kind == static_cast<uint32_t>(VmaKind::Memfd) ||
                                     v.kind == static_cast<uint32_t>(VmaKind::DeletedFile);
            if (needs_shmem && !shmem_.contains(v.shmem_id))
                fail(group, "vmas", row + "refers to shared memory " + std::to_string(v.shmem_id) + " that is not in /shared/shmem");
            previous_end = v.end;
            summary_.memory_bytes += v.end - v.start;
        }
        summary_.nvmas += vmas.size();
        size_t cursor = 0;
        for (const auto& r : pages(group)) {
            for (uint64_t pos = r.vaddr; pos < r.vaddr + r.bytes;) {
                while (cursor < vmas.size() && vmas[cursor].end <= pos) ++cursor;
                if (cursor == vmas.size() || vmas[cursor].start > pos)
                    fail(group, "page_index", "stored pages at address " + std::to_string(pos) + " lie outside every mapping");
                pos = vmas[cursor].end;
            }
        }

        auto threads = table<ThreadRecord>(group);
        if (threads.size() != t.nthreads)
            fail(group, "threads", "has " + std::to_string(threads.size()) + " rows, the tree says " + std::to_string(t.nthreads));
        std::unordered_set<int32_t> tids;
        uint64_t widest = 0;
        for (const auto& th : threads) {
            if (th.tid <= 0 || !tids.insert(th.tid).second) fail(group, "threads", "invalid or duplicate tid " + std::to_string(th.tid));
            widest = std::max<uint64_t>(widest, th.xsave_bytes);
        }
        if (!threads.empty() && threads.front().tid != t.pid) fail(group, "threads", "the first thread is not the leader");
        summary_.nthreads += static_cast<uint32_t>(threads.size());
        Blob xsave = blob(group, "xsave", kMaxXsaveBytes * std::max<uint64_t>(threads.size(), 1));
        if (xsave.dims.size() != 2 || xsave.dims[0] != threads.size() || xsave.dims[1] < widest || xsave.dims[1] > kMaxXsaveBytes)
            fail(group, "xsave", "shape does not match the threads table");

        for (const auto& fd : optional_table<FdRecord>(group)) {
            if (fd.fd < 0) fail(group, "fds", "negative descriptor");
            if (!file_ids_.contains(fd.file_id))
                fail(group, "fds", "fd " + std::to_string(fd.fd) + " refers to file " + std::to_string(fd.file_id) + " that is not in /shared/files");
        }
        optional_table<SigactionRecord>(group);
        optional_table<PendingSignalRecord>(group);
        optional_table<TimerRecord>(group);
        optional_table<RlimitRecord>(group);
        if (h5::link_exists(group, TableSchema<CredsRecord>::name)) table<CredsRecord>(group);
        if (h5::link_exists(group, "auxv")) blob(group, "auxv", 1 << 16);
    }

    void verify_mpi(hid_t mpi) {
        // The MPI proxy's encoded state (mpi_plugin/common/state.hpp): drained
        // messages make it as large as what was in flight.
        if (h5::link_exists(mpi, "state")) blob(mpi, "state", uint64_t{1} << 36);
        uint64_t payload = 0;
        if (h5::link_exists(mpi, "payload")) payload = blob(mpi, "payload", kMaxBlobBytes * 4).data.size();
        auto within = [&](const char* name, uint64_t offset, uint64_t bytes) {
            if (offset > payload || bytes > payload - offset) fail(mpi, name, "refers to bytes outside payload");
        };
        for (const auto& o : optional_table<MpiObjectRecord>(mpi)) within("creation_log", o.args_offset, o.args_bytes);
        for (const auto& m : optional_table<MpiMessageRecord>(mpi)) within("drained_messages", m.data_offset, m.data_bytes);
        for (const auto& r : optional_table<MpiRequestRecord>(mpi)) within("pending_requests", r.args_offset, r.args_bytes);
    }

    static herr_t collect(hid_t, const char* name, const H5O_info_t* info, void* data) {
        if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->push_back(std::string("/") + name);
        return 0;
    }

    void check_nothing_unverified() {
        std::vector<std::string> all;
        h5::check(H5Ovisit(root_, H5_INDEX_NAME, H5_ITER_NATIVE, collect, &all), file_, "/", "cannot list objects");
        for (const auto& d : all) {
            if (verified_.contains(d)) continue;
            // Objects added by a newer minor version are not ours to judge.
            if (minor_ > kFormatMinor) continue;
            throw ImageError(file_, d, "unexpected dataset (not part of format " + std::to_string(kFormatMajor) + "." +
                                           std::to_string(kFormatMinor) + ")");
        }
    }

    hid_t root_;
    std::string file_;
    uint32_t minor_;
    bool verify_pages_;
    WorkerPool& pool_;
    RankSummary summary_;
    std::set<std::string> verified_;
    std::unordered_set<uint64_t> file_ids_;
    std::vector<uint64_t> pipe_refs_;
    struct ShmemRef {
        uint64_t file_id, object_id;
        VmaKind kind;
    };
    std::vector<ShmemRef> shmem_refs_;  // descriptors of memfds and deleted files
    std::unordered_map<uint64_t, uint64_t> shmem_;
};

}  // namespace

RankSummary RankReader::verify(bool verify_pages, WorkerPool& pool) const {
    return RankVerifier(file_, minor_, verify_pages, pool).run();
}

}  // namespace ckpt::image
