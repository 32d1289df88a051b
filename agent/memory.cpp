#include "agent/memory.hpp"

#include "image/pages.hpp"
#include "image/table.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/prctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

namespace ckpt::agent {

namespace {

constexpr uint64_t kPagemapPresent = uint64_t{1} << 63;
constexpr uint64_t kPagemapSwapped = uint64_t{1} << 62;
constexpr uint64_t kPagemapFile = uint64_t{1} << 61;
constexpr uint64_t kReadBatch = uint64_t{8} << 20;

bool ends_with_deleted(const std::string& p) { return p.ends_with(" (deleted)"); }

bool special(VmaKind k) {
    return k == VmaKind::Vdso || k == VmaKind::Vvar || k == VmaKind::VvarVclock || k == VmaKind::Vsyscall;
}

uint32_t prot_of(const MapEntry& m) {
    return (m.read ? PROT_READ : 0) | (m.write ? PROT_WRITE : 0) | (m.exec ? PROT_EXEC : 0);
}

// Which pages of a private mapping hold data a restore needs.
std::vector<bool> pages_to_store(int pagemap_fd, const MapEntry& m, VmaKind kind, bool whole) {
    const uint64_t npages = (m.end - m.start) / kPage;
    std::vector<bool> store(npages, whole);
    if (whole) return store;
    std::vector<uint64_t> entries(npages);
    const ssize_t want = static_cast<ssize_t>(npages * 8);
    if (pread(pagemap_fd, entries.data(), static_cast<size_t>(want), static_cast<off_t>(m.start / kPage * 8)) != want)
        fail_errno("cannot read pagemap for mapping " + hex(m.start));
    for (uint64_t i = 0; i < npages; ++i) {
        const uint64_t e = entries[i];
        if (kind == VmaKind::FilePrivate)
            store[i] = (e & kPagemapSwapped) || ((e & kPagemapPresent) && !(e & kPagemapFile));  // copied on write
        else
            store[i] = (e & (kPagemapPresent | kPagemapSwapped)) != 0;
    }
    return store;
}

// Appends [start, end) of the task's memory to the page writer in batches.
void copy_range(const Task& task, PageWriter& pages, uint64_t start, uint64_t end, std::vector<uint8_t>& buffer,
                DumpState& state) {
    for (uint64_t at = start; at < end;) {
        const uint64_t n = std::min(end - at, kReadBatch);
        buffer.resize(n);
        task.read(at, buffer.data(), n);
        pages.append(at, buffer);
        at += n;
        state.count_bytes(n, task.name());
    }
}

// madvise state of every mapping, from the VmFlags lines of smaps.
enum MadviseBit : uint32_t { kWipeOnFork = 1, kDontFork = 2, kDontDump = 4, kHugePage = 8, kNoHugePage = 16, kMergeable = 32 };

std::map<uint64_t, uint32_t> read_madvise(pid_t pid) {
    std::map<uint64_t, uint32_t> out;
    std::string text;
    if (!try_read_text_file("/proc/" + std::to_string(pid) + "/smaps", text)) return out;
    std::istringstream in(text);
    std::string line;
    uint64_t current = 0;
    while (std::getline(in, line)) {
        if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') != std::string::npos) {
            current = std::stoull(line, nullptr, 16);
        } else if (line.starts_with("VmFlags:")) {
            std::istringstream flags(line.substr(8));
            std::string f;
            uint32_t bits = 0;
            while (flags >> f) {
                if (f == "wf") bits |= kWipeOnFork;
                else if (f == "dc") bits |= kDontFork;
                else if (f == "dd") bits |= kDontDump;
                else if (f == "hg") bits |= kHugePage;
                else if (f == "nh") bits |= kNoHugePage;
                else if (f == "mg") bits |= kMergeable;
            }
            out[current] = bits;
        }
    }
    return out;
}

void restore_madvise(Task& task, const VmaRecord& v) {
    static const std::pair<uint32_t, int> advice[] = {{kWipeOnFork, MADV_WIPEONFORK}, {kDontFork, MADV_DONTFORK},
                                                      {kDontDump, MADV_DONTDUMP},     {kHugePage, MADV_HUGEPAGE},
                                                      {kNoHugePage, MADV_NOHUGEPAGE}, {kMergeable, MADV_MERGEABLE}};
    for (const auto& [bit, adv] : advice)
        if (v.madvise & bit)
            task.call("cannot restore madvise " + std::to_string(adv) + " of " + hex(v.start), SYS_madvise,
                      {v.start, v.end - v.start, static_cast<uint64_t>(adv)}, 0, true);
}

}  // namespace

void DumpState::count_bytes(uint64_t n, const std::string& what) {
    bytes_done += n;
    const auto now = std::chrono::steady_clock::now();
    if (!progress || now - last_report < std::chrono::seconds(1)) return;
    last_report = now;
    const double seconds = std::chrono::duration<double>(now - started).count();
    char buf[160];
    snprintf(buf, sizeof buf, "%.0f MiB of memory written, %.0f MB/s", static_cast<double>(bytes_done) / (1 << 20),
             static_cast<double>(bytes_done) / 1e6 / seconds);
    progress("dumping " + what + ": " + buf);
}

std::optional<VmaKind> unlinked_kind(const std::string& path) {
    if (path.starts_with("/memfd:")) return VmaKind::Memfd;
    if (ends_with_deleted(path)) return VmaKind::DeletedFile;
    return std::nullopt;
}

VmaKind classify_mapping(const MapEntry& m) {
    const std::string& p = m.path;
    if (p == "[vdso]") return VmaKind::Vdso;
    if (p == "[vvar]") return VmaKind::Vvar;
    if (p == "[vvar_vclock]") return VmaKind::VvarVclock;
    if (p == "[vsyscall]") return VmaKind::Vsyscall;
    const bool anonymous = p.empty() || p[0] == '[';
    if (m.shared) {
        if (anonymous || p.starts_with("/dev/zero") || p.starts_with("/SYSV")) return VmaKind::AnonShared;
        return unlinked_kind(p).value_or(VmaKind::FileShared);
    }
    if (anonymous) return VmaKind::AnonPrivate;
    // Private views of files that only exist through their mappings: the
    // content is kept once as a shared memory object, and only the pages
    // this process changed are stored with the process.
    return unlinked_kind(p).value_or(VmaKind::FilePrivate);
}

namespace {

// The shared memory object of a mapping or descriptor, by device and inode:
// one id for all of them, in every process.
uint64_t shmem_object(DumpState& state, ObjectKey key, VmaKind kind, const std::string& name) {
    auto [it, fresh] = state.shmem_ids.try_emplace(key, state.shmem_ids.size() + 1);
    if (fresh) {
        ShmemRecord s;
        s.id = it->second;
        s.kind = static_cast<uint32_t>(kind);
        s.name = name;
        state.shmem.push_back(s);
    }
    return it->second;
}

ShmemRecord& shmem_record(DumpState& state, uint64_t id) {
    return *std::find_if(state.shmem.begin(), state.shmem.end(), [&](const ShmemRecord& s) { return s.id == id; });
}

}  // namespace

void dump_memory(Task& task, DumpState& state, hid_t task_group) {
    const auto maps = read_maps(task.outer());
    const std::string pagemap_path = "/proc/" + std::to_string(task.outer()) + "/pagemap";
    UniqueFd pagemap(open(pagemap_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!pagemap.valid()) fail_errno("cannot open " + pagemap_path);

    const auto madvise = read_madvise(task.outer());
    std::vector<VmaRecord> vmas;
    // First which pages to store (pagemap), so the page writer knows the size.
    std::vector<std::vector<bool>> stores(maps.size());
    uint64_t total = 0;
    for (size_t index = 0; index < maps.size(); ++index) {
        const MapEntry& m = maps[index];
        VmaKind kind = classify_mapping(m);
        VmaRecord v;
        v.start = m.start;
        v.end = m.end;
        v.prot = prot_of(m);
        v.flags = m.shared ? MAP_SHARED : MAP_PRIVATE;
        if (m.path == "[stack]") v.flags |= MAP_GROWSDOWN;
        v.kind = static_cast<uint32_t>(kind);
        v.pgoff = m.offset;
        v.dev = m.dev;
        v.inode = m.inode;
        v.path = m.path;
        if (auto it = madvise.find(m.start); it != madvise.end()) v.madvise = it->second;
        if (m.path.starts_with("/SYSV"))
            fail("cannot checkpoint " + task.name() + ": mapping " + hex(m.start) + "-" + hex(m.end) +
                 " is System V shared memory, which is not supported");
        if (kind == VmaKind::AnonShared || kind == VmaKind::Memfd || kind == VmaKind::DeletedFile) {
            const uint64_t id = shmem_object(state, {m.dev, m.inode}, kind, m.path);
            // A descriptor of the object tells its size; without one, its
            // mappings show how much of it there is.
            if (!state.shmem_files.contains(id)) {
                ShmemRecord& rec = shmem_record(state, id);
                rec.bytes = std::max(rec.bytes, m.offset + (m.end - m.start));
            }
            state.shmem_views[id].push_back({&task, m.start, m.end, m.offset, m.shared, m.write});
            v.shmem_id = id;
        }
        vmas.push_back(v);
        if (special(kind) || kind == VmaKind::FileShared || (v.shmem_id != 0 && m.shared)) continue;
        // Private views of a file (or of a memfd) keep only their copied-on-write pages.
        const VmaKind page_kind = v.shmem_id != 0 ? VmaKind::FilePrivate : kind;
        stores[index] = pages_to_store(pagemap.get(), m, page_kind, false);
        total += static_cast<uint64_t>(std::count(stores[index].begin(), stores[index].end(), true)) * kPage;
    }
    auto pages = state.writer.page_writer(task_group, total);
    std::vector<uint8_t> buffer;
    for (size_t index = 0; index < maps.size(); ++index) {
        const auto& store = stores[index];
        const uint64_t start = maps[index].start;
        for (uint64_t i = 0; i < store.size();) {
            if (!store[i]) {
                ++i;
                continue;
            }
            uint64_t j = i;
            while (j < store.size() && store[j]) ++j;
            copy_range(task, *pages, start + i * kPage, start + j * kPage, buffer, state);
            i = j;
        }
    }
    write_table(task_group, "vmas", vmas);
    pages->finish();
}

uint64_t dump_shmem_descriptor(const Task& task, int fd, const struct stat& st, VmaKind kind, const std::string& target,
                               DumpState& state, const std::string& where) {
    const uint64_t id = shmem_object(state, {st.st_dev, st.st_ino}, kind, target);
    if (state.shmem_files.contains(id)) return id;
    // A description of our own: reading it moves no offset of the program's.
    const std::string path = "/proc/" + std::to_string(task.outer()) + "/fd/" + std::to_string(fd);
    UniqueFd file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file.valid()) fail_errno("cannot checkpoint " + where + ": cannot open " + target + " to read its contents");
    ShmemRecord& rec = shmem_record(state, id);
    if (kind == VmaKind::Memfd) {
        struct statfs fs {};
        if (fstatfs(file.get(), &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC)
            fail("cannot checkpoint " + where + ": " + target + " is a memfd of huge pages (MFD_HUGETLB, not supported)");
        const int seals = fcntl(file.get(), F_GET_SEALS);
        if (seals < 0) fail_errno("cannot checkpoint " + where + ": cannot read the seals of " + target);
        rec.seals = static_cast<uint32_t>(seals);
    }
    rec.bytes = static_cast<uint64_t>(st.st_size);
    state.shmem_files[id] = ShmemFile{std::move(file), where};
    return id;
}

namespace {

// A restore seals a memfd before its mappings are made again; the kernel
// refuses a writable shared mapping of a memfd sealed with
// F_SEAL_FUTURE_WRITE (the original's was made before the seal).
void check_sealed_views(DumpState& state) {
    for (const auto& s : state.shmem) {
        if (!(s.seals & F_SEAL_FUTURE_WRITE)) continue;
        for (const auto& v : state.shmem_views[s.id])
            if (v.shared && v.writable)
                fail("cannot checkpoint " + v.task->name() + ": mapping " + hex(v.start) + "-" + hex(v.end) + " of " + s.name +
                     " is writable, but the memfd is sealed with F_SEAL_FUTURE_WRITE (not supported)");
    }
}

// The content of an object known only through its mappings: every page some
// mapping shows, read through a shared mapping when there is one (a private
// view may hold its own changes), in offset order.
void copy_views(const std::vector<ShmemView>& views, uint64_t bytes, PageWriter& pages, std::vector<uint8_t>& buffer) {
    const uint64_t npages = (bytes + kPage - 1) / kPage;
    std::vector<int> source(npages, -1);
    for (int pass = 0; pass < 2; ++pass)
        for (size_t i = 0; i < views.size(); ++i) {
            if (views[i].shared != (pass == 0)) continue;
            for (uint64_t off = views[i].pgoff; off < views[i].pgoff + (views[i].end - views[i].start); off += kPage)
                if (source[off / kPage] < 0) source[off / kPage] = static_cast<int>(i);
        }
    for (uint64_t p = 0; p < npages;) {
        if (source[p] < 0) {
            ++p;
            continue;
        }
        uint64_t q = p;
        while (q < npages && source[q] == source[p] && q - p < kReadBatch / kPage) ++q;
        const ShmemView& v = views[static_cast<size_t>(source[p])];
        buffer.resize((q - p) * kPage);
        v.task->read(v.start + (p * kPage - v.pgoff), buffer.data(), buffer.size());
        pages.append(p * kPage, buffer);
        p = q;
    }
}

// The content of an object read through a descriptor: its data, not its
// holes (SEEK_DATA/SEEK_HOLE), in batches, offsets as addresses; the last
// page is padded with zeros.
void copy_file(const ShmemFile& file, const ShmemRecord& s, PageWriter& pages, std::vector<uint8_t>& buffer, DumpState& state) {
    const std::string what = s.name + " (" + file.where + ")";
    const int fd = file.fd.get();
    const uint64_t limit = (s.bytes + kPage - 1) / kPage * kPage;
    for (uint64_t at = 0; at < limit;) {
        const off_t data = lseek(fd, static_cast<off_t>(at), SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) break;  // only a hole is left
            fail_errno("cannot find the data of " + what);
        }
        const off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0) fail_errno("cannot find the holes of " + what);
        const uint64_t start = static_cast<uint64_t>(data) / kPage * kPage;
        const uint64_t end = std::min(limit, (static_cast<uint64_t>(hole) + kPage - 1) / kPage * kPage);
        if (start >= end) break;  // data beyond the size the checkpoint saw
        for (uint64_t pos = start; pos < end;) {
            const uint64_t n = std::min(end - pos, kReadBatch);
            buffer.resize(n);
            uint64_t got = 0;
            while (got < n) {
                const ssize_t r = pread(fd, buffer.data() + got, n - got, static_cast<off_t>(pos + got));
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) fail_errno("cannot read " + what);
                if (r == 0) break;  // end of file: the rest of the page is zeros
                got += static_cast<uint64_t>(r);
            }
            std::fill(buffer.begin() + static_cast<ptrdiff_t>(got), buffer.end(), uint8_t{0});
            pages.append(pos, buffer);
            state.count_bytes(n, what);
            pos += n;
        }
        at = end;
    }
}

}  // namespace

void dump_shared_memory(DumpState& state) {
    if (state.shmem.empty()) return;
    check_sealed_views(state);
    h5::Hid shared = state.writer.shared();
    write_table(shared, "shmem", state.shmem);
    std::vector<uint8_t> buffer;
    for (const auto& s : state.shmem) {
        h5::Hid group = h5::create_group(state.writer.root(), shmem_group_name(s.id));
        auto pages = state.writer.page_writer(group, s.bytes);
        if (auto file = state.shmem_files.find(s.id); file != state.shmem_files.end())
            copy_file(file->second, s, *pages, buffer, state);
        else
            copy_views(state.shmem_views[s.id], s.bytes, *pages, buffer);
        pages->finish();
    }
}

namespace {

// A file at a deleted file's path, unlinked again, so that /proc/PID/fd and
// /proc/PID/maps show the original name: at that path when it is free, else
// under a unique name beside it. When the directory is gone or cannot be
// written (another node, another user), the content still comes back, in
// an unnamed file in /tmp, with a warning: the name of a deleted file is
// only seen in /proc.
UniqueFd recreate_deleted_file(const std::string& path) {
    int err = ENOENT;
    if (path.starts_with("/")) {
        std::string name = path;
        UniqueFd fd(open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd.valid() && errno == EEXIST) {
            name = path + ".XXXXXX";
            fd.reset(mkostemp(name.data(), O_CLOEXEC));
        }
        if (fd.valid()) {
            if (unlink(name.c_str()) != 0) fail_errno("cannot unlink " + name + ", the new copy of deleted file " + path);
            return fd;
        }
        err = errno;
        if (err != ENOENT && err != ENOTDIR && err != EACCES && err != EPERM && err != EROFS && err != ENAMETOOLONG)
            fail_errno("cannot recreate deleted file " + path);
    }
    std::cerr << "ckpt-run: warning: deleted file " << path
              << " comes back as an unnamed file in /tmp: its directory cannot be used (" << strerror(err) << ")\n";
    UniqueFd fd(open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd.valid()) fail_errno("cannot recreate deleted file " + path + " in /tmp either");
    return fd;
}

// A descriptor for a shared memory object that looks like the original in
// /proc/PID/maps and /proc/PID/fd: a recreated deleted file, or a memfd of
// the same name. A memfd made without MFD_ALLOW_SEALING shows just
// F_SEAL_SEAL; any other seals are added once it is filled.
UniqueFd create_backing(const ShmemRecord& s) {
    const std::string deleted = " (deleted)";
    std::string name = s.name.ends_with(deleted) ? s.name.substr(0, s.name.size() - deleted.size()) : s.name;
    if (s.kind == static_cast<uint32_t>(VmaKind::DeletedFile)) return recreate_deleted_file(name);
    unsigned flags = MFD_CLOEXEC;
    if (s.kind == static_cast<uint32_t>(VmaKind::Memfd) && s.seals != F_SEAL_SEAL) flags |= MFD_ALLOW_SEALING;
    if (name.starts_with("/memfd:")) name = name.substr(7);
    else if (name.empty() || name.starts_with("/")) name = "ckpt-shmem-" + std::to_string(s.id);
    return UniqueFd(static_cast<int>(syscall(SYS_memfd_create, name.substr(0, 249).c_str(), flags)));
}

}  // namespace

void create_shared_memory(const RankReader& reader, const TreeImage& tree, SharedFds& fds) {
    WorkerPool pool(1);
    for (const auto& s : tree.shmem) {
        const std::string what = "shared memory object " + std::to_string(s.id) + " (" + s.name + ")";
        UniqueFd fd = create_backing(s);
        if (!fd.valid()) fail_errno("cannot create " + what);
        if (s.bytes > static_cast<uint64_t>(std::numeric_limits<off_t>::max()) || ftruncate(fd.get(), static_cast<off_t>(s.bytes)) != 0)
            fail_errno("cannot size " + what + " to " + std::to_string(s.bytes) + " bytes");
        h5::Hid group = h5::open_group(reader.root(), shmem_group_name(s.id));
        PageReader pages(group, pool);
        pages.read([&](uint64_t offset, std::span<const uint8_t> data) {
            // The last page of a file may reach past its end.
            if (offset >= s.bytes) return;
            const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), s.bytes - offset));
            if (pwrite(fd.get(), data.data(), n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n))
                fail_errno("cannot fill " + what);
        });
        int high = fcntl(fd.get(), F_DUPFD_CLOEXEC, fds.lowest);
        if (high < 0) fail_errno("cannot move the descriptor of " + what);
        fds.shmem[s.id] = high;
    }
}

void finish_shared_memory(const TreeImage& tree, const SharedFds& fds) {
    for (const auto& s : tree.shmem) {
        const bool memfd = s.kind == static_cast<uint32_t>(VmaKind::Memfd);
        if (!memfd && s.kind != static_cast<uint32_t>(VmaKind::DeletedFile)) continue;
        auto it = fds.shmem.find(s.id);
        if (it == fds.shmem.end()) fail("internal: shared memory object " + std::to_string(s.id) + " was not created");
        const int fd = it->second;
        const std::string what = s.name + " (shared memory object " + std::to_string(s.id) + ")";
        // The mode as its descriptors saw it; one known only from its
        // mappings keeps the mode it was made with.
        for (const auto& f : tree.files) {
            if (f.object_id != s.id ||
                (f.kind != static_cast<uint32_t>(FileKind::Memfd) && f.kind != static_cast<uint32_t>(FileKind::DeletedFile)))
                continue;
            struct stat st {};
            if (fstat(fd, &st) != 0) fail_errno("cannot stat " + what);
            char mode[16];
            snprintf(mode, sizeof mode, "0%o", f.mode & 07777);
            if ((st.st_mode & 07777) != (f.mode & 07777) && fchmod(fd, f.mode & 07777) != 0)
                fail_errno("cannot restore the mode " + std::string(mode) + " of " + what);
            break;
        }
        if (memfd && s.seals != 0 && s.seals != F_SEAL_SEAL && fcntl(fd, F_ADD_SEALS, static_cast<int>(s.seals)) != 0)
            fail_errno("cannot restore the seals " + hex(s.seals) + " of " + what);
    }
}

uint64_t find_hole(uint64_t size, const std::vector<std::pair<uint64_t, uint64_t>>& avoid) {
    for (uint64_t at = uint64_t{1} << 32; at < (uint64_t{1} << 46); at += uint64_t{1} << 30) {
        bool clear = true;
        for (const auto& [s, e] : avoid)
            if (at < e && s < at + size) {
                clear = false;
                break;
            }
        if (clear) return at;
    }
    fail("no free address range for the restore's trampoline");
}

namespace {

// Writes a NUL-terminated path into the trampoline's data page.
uint64_t put_string(Task& task, uint64_t data, const std::string& s) {
    if (s.size() >= 8192) fail("path too long to restore: " + s);
    task.write(data, s.c_str(), s.size() + 1);
    return data;
}

void move_special_mappings(Task& task, const TaskImage& image, const std::vector<MapEntry>& current,
                           const std::vector<std::pair<uint64_t, uint64_t>>& avoid) {
    std::vector<const MapEntry*> now;
    std::vector<const VmaRecord*> saved;
    for (const auto& m : current) {
        VmaKind k = classify_mapping(m);
        if (k == VmaKind::Vdso || k == VmaKind::Vvar || k == VmaKind::VvarVclock) now.push_back(&m);
    }
    for (const auto& v : image.vmas) {
        VmaKind k = static_cast<VmaKind>(v.kind);
        if (k == VmaKind::Vdso || k == VmaKind::Vvar || k == VmaKind::VvarVclock) saved.push_back(&v);
    }
    auto mismatch = [&] {
        fail("the vDSO/vvar of this kernel differ from the checkpoint's (restore on a node with the same kernel)");
    };
    if (now.size() != saved.size()) mismatch();
    for (size_t i = 0; i < now.size(); ++i)
        if (now[i]->path != saved[i]->path || now[i]->end - now[i]->start != saved[i]->end - saved[i]->start) mismatch();
    if (now.empty()) return;
    // Park them in a hole first: moving one straight to its saved place could
    // land on another that has not moved yet.
    const uint64_t span = now.back()->end - now.front()->start;
    const uint64_t park = find_hole(span, avoid);
    for (int pass = 0; pass < 2; ++pass) {
        for (size_t i = 0; i < now.size(); ++i) {
            const uint64_t len = now[i]->end - now[i]->start;
            const uint64_t from = pass == 0 ? now[i]->start : park + (now[i]->start - now.front()->start);
            const uint64_t to = pass == 0 ? park + (now[i]->start - now.front()->start) : saved[i]->start;
            if (from == to) continue;
            task.call("cannot move " + now[i]->path, SYS_mremap, {from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to});
        }
    }
}

}  // namespace

void restore_memory(Task& task, const TaskImage& image, const RankReader& reader, const SharedFds& fds,
                    const Trampoline& trampoline, WorkerPool& pool) {
    const auto current = read_maps(task.outer());

    // 1. The restorer's own mappings go, but for the trampoline and the
    // kernel's special mappings.
    for (const auto& m : current) {
        VmaKind k = classify_mapping(m);
        if (special(k) || trampoline.contains(m.start, m.end)) continue;
        task.call("cannot unmap the restorer at " + hex(m.start), SYS_munmap, {m.start, m.end - m.start});
    }

    // 2. vDSO and vvar to where the program knows them.
    std::vector<std::pair<uint64_t, uint64_t>> avoid = {{trampoline.base, trampoline.base + Trampoline::kSize}};
    for (const auto& v : image.vmas) avoid.emplace_back(v.start, v.end);
    for (const auto& m : current) avoid.emplace_back(m.start, m.end);
    move_special_mappings(task, image, current, avoid);

    // 3. Every saved mapping at its address.
    for (const auto& v : image.vmas) {
        const VmaKind kind = static_cast<VmaKind>(v.kind);
        if (special(kind)) continue;
        const uint64_t len = v.end - v.start;
        const std::string what = "cannot map " + hex(v.start) + "-" + hex(v.end) + (v.path.empty() ? "" : " (" + v.path + ")");
        const uint64_t growsdown = (v.flags & MAP_GROWSDOWN) ? MAP_GROWSDOWN : 0;
        if (kind == VmaKind::AnonPrivate) {
            task.call(what, SYS_mmap, {v.start, len, v.prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | growsdown, ~uint64_t{0}, 0});
        } else if (kind == VmaKind::FilePrivate || kind == VmaKind::FileShared) {
            const bool shared = kind == VmaKind::FileShared;
            const uint64_t mode = shared && (v.prot & PROT_WRITE) ? O_RDWR : O_RDONLY;
            const long fd = task.call("cannot open mapped file " + v.path, SYS_openat,
                                      {static_cast<uint64_t>(AT_FDCWD), put_string(task, trampoline.strings(), v.path), mode | O_CLOEXEC, 0});
            task.call(what, SYS_mmap,
                      {v.start, len, v.prot, static_cast<uint64_t>((shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED), static_cast<uint64_t>(fd), v.pgoff});
            task.call("cannot close", SYS_close, {static_cast<uint64_t>(fd)});
        } else {
            auto it = fds.shmem.find(v.shmem_id);
            if (it == fds.shmem.end()) fail(what + ": shared memory " + std::to_string(v.shmem_id) + " was not prepared");
            const uint64_t sharing = (v.flags & MAP_SHARED) ? MAP_SHARED : MAP_PRIVATE;
            task.call(what, SYS_mmap, {v.start, len, v.prot, sharing | MAP_FIXED, static_cast<uint64_t>(it->second), v.pgoff});
        }
        restore_madvise(task, v);
    }

    // 4. Their content.
    PageReader pages(reader.task(image.task.pid), pool);
    pages.read([&](uint64_t vaddr, std::span<const uint8_t> bytes) { task.write(vaddr, bytes.data(), bytes.size()); });

    // 5. brk, arg/env bounds, auxv and /proc/self/exe.
    const auto& p = image.process;
    const uint64_t auxv_at = trampoline.auxv();
    if (image.auxv.size() > 2048) fail("the auxiliary vector of " + task.name() + " is too large");
    if (!image.auxv.empty()) task.write(auxv_at, image.auxv.data(), image.auxv.size());
    const long exe_fd = task.call("cannot open the executable " + p.exe, SYS_openat,
                                  {static_cast<uint64_t>(AT_FDCWD), put_string(task, trampoline.strings(), p.exe), O_RDONLY | O_CLOEXEC, 0});
    prctl_mm_map map{};
    map.start_code = p.start_code;
    map.end_code = p.end_code;
    map.start_data = p.start_data;
    map.end_data = p.end_data;
    map.start_brk = p.start_brk;
    map.brk = p.brk;
    map.start_stack = p.start_stack;
    map.arg_start = p.arg_start;
    map.arg_end = p.arg_end;
    map.env_start = p.env_start;
    map.env_end = p.env_end;
    map.auxv = reinterpret_cast<__u64*>(auxv_at);
    map.auxv_size = static_cast<uint32_t>(image.auxv.size());
    map.exe_fd = static_cast<uint32_t>(exe_fd);
    task.write(trampoline.args(), &map, sizeof map);
    task.call("cannot restore the mm fields (PR_SET_MM_MAP)", SYS_prctl, {PR_SET_MM, PR_SET_MM_MAP, trampoline.args(), sizeof map});
    task.call("cannot close", SYS_close, {static_cast<uint64_t>(exe_fd)});
}

}  // namespace ckpt::agent
