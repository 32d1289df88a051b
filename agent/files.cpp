#include "agent/files.hpp"

#include "agent/memory.hpp"
#include "agent/procfs.hpp"
#include "image/table.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace ckpt::agent {

namespace {

struct FdInfo {
    uint64_t pos = 0;
    uint32_t flags = 0;
};

FdInfo read_fdinfo(pid_t pid, int fd) {
    FdInfo info;
    std::istringstream in(read_text_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd)));
    std::string key;
    while (in >> key) {
        if (key == "pos:") in >> info.pos;
        else if (key == "flags:") in >> std::oct >> info.flags >> std::dec;
        else in.ignore(1 << 20, '\n');
    }
    return info;
}

bool same_description(pid_t a, int fd_a, pid_t b, int fd_b) {
    return syscall(SYS_kcmp, a, b, KCMP_FILE, fd_a, fd_b) == 0;
}

FileKind device_kind(const std::string& path) {
    if (path == "/dev/null") return FileKind::DevNull;
    if (path == "/dev/zero") return FileKind::DevZero;
    if (path == "/dev/urandom" || path == "/dev/random" || path == "/dev/full") return FileKind::DevUrandom;  // reopened by path
    return FileKind::Inherited;  // means: not restorable
}

std::vector<uint8_t> peek_pipe(pid_t pid, int fd, uint64_t capacity, const std::string& where) {
    // A new reader of the same pipe, and tee() into a pipe of our own, copy
    // the buffered bytes without consuming them.
    const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    UniqueFd reader(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!reader.valid()) fail_errno("cannot open " + where + " to read its buffered bytes");
    int ends[2];
    if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) fail_errno("cannot create a pipe");
    UniqueFd out(ends[0]), in(ends[1]);
    fcntl(in.get(), F_SETPIPE_SZ, static_cast<int>(capacity));
    std::vector<uint8_t> data;
    ssize_t n = tee(reader.get(), in.get(), capacity, SPLICE_F_NONBLOCK);
    if (n < 0 && errno != EAGAIN) fail_errno("cannot copy the buffered bytes of " + where);
    if (n > 0) {
        data.resize(static_cast<size_t>(n));
        if (read_full(out.get(), data.data(), data.size()) != data.size()) fail("short read of the bytes of " + where);
    }
    return data;
}

// A memfd, or a file unlinked while open: only descriptors and mappings
// reach it, so its content goes into the image, as a shared memory object
// (the same one as its mappings). A name ending in " (deleted)" whose file
// still has links is a file really named so (found at that path), or one
// reached by another name that /proc does not tell.
std::optional<VmaKind> unlinked_object(const std::string& target, const struct stat& st, const std::string& where) {
    const auto kind = unlinked_kind(target);
    if (!kind || st.st_nlink == 0) return kind;
    struct stat named {};
    if (stat(target.c_str(), &named) == 0 && named.st_dev == st.st_dev && named.st_ino == st.st_ino) return std::nullopt;
    fail("cannot checkpoint " + where + ": " + target + " was unlinked, but the file has " + std::to_string(st.st_nlink) +
         " other link(s) under a name the engine cannot know (not supported)");
}

}  // namespace

void dump_files(Task& task, DumpState& state, hid_t task_group) {
    std::vector<FdRecord> fds;
    const std::string dir = "/proc/" + std::to_string(task.outer()) + "/fd";
    std::vector<int> numbers;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') numbers.push_back(atoi(e->d_name));
        closedir(d);
    }
    std::sort(numbers.begin(), numbers.end());
    for (int fd : numbers) {
        const std::string where = task.name() + " fd " + std::to_string(fd);
        const std::string link_path = dir + "/" + std::to_string(fd);
        const std::string target = read_link(link_path);
        FdInfo info = read_fdinfo(task.outer(), fd);
        FdRecord rec;
        rec.fd = fd;
        rec.fd_flags = (info.flags & O_CLOEXEC) ? FD_CLOEXEC : 0;

        // The launcher's own stdio: re-bound to the new launcher's on restore.
        int launcher_fd = -1;
        for (int lfd = 0; lfd <= 2 && launcher_fd < 0; ++lfd)
            if (same_description(state.launcher, lfd, task.outer(), fd)) launcher_fd = lfd;

        struct stat st {};
        if (stat(link_path.c_str(), &st) != 0) fail_errno("cannot stat " + where + " (" + target + ")");
        const ObjectKey key{st.st_dev, st.st_ino};
        uint64_t id = 0;
        for (const auto& [file_id, rep] : state.file_reps) {
            if (rep.key == key && same_description(rep.pid, rep.fd, task.outer(), fd)) {
                id = file_id;
                break;
            }
        }
        if (id == 0) {
            FileRecord f;
            f.id = state.files.size() + 1;
            f.flags = info.flags & ~static_cast<uint32_t>(O_CLOEXEC);
            f.pos = info.pos;
            f.mode = st.st_mode;
            f.path = target;
            if (launcher_fd >= 0) {
                f.kind = static_cast<uint32_t>(FileKind::Inherited);
                f.inherited_fd = static_cast<uint32_t>(launcher_fd);
            } else if (S_ISREG(st.st_mode)) {
                f.size = static_cast<uint64_t>(st.st_size);
                f.kind = static_cast<uint32_t>(FileKind::Regular);
                if (const auto unlinked = unlinked_object(target, st, where)) {
                    f.kind = static_cast<uint32_t>(*unlinked == VmaKind::Memfd ? FileKind::Memfd : FileKind::DeletedFile);
                    f.object_id = dump_shmem_descriptor(task, fd, st, *unlinked, target, state, where);
                }
            } else if (S_ISDIR(st.st_mode)) {
                f.kind = static_cast<uint32_t>(FileKind::Directory);
            } else if (S_ISFIFO(st.st_mode)) {
                const bool anonymous = target.starts_with("pipe:");
                const uint32_t access = info.flags & O_ACCMODE;
                f.kind = static_cast<uint32_t>(!anonymous ? FileKind::Fifo : access == O_WRONLY ? FileKind::PipeWrite : FileKind::PipeRead);
                auto [it, fresh] = state.pipe_ids.try_emplace(key, state.pipe_ids.size() + 1);
                if (fresh) {
                    PipeRecord p;
                    p.id = it->second;
                    const std::string own = "/proc/" + std::to_string(task.outer()) + "/fd/" + std::to_string(fd);
                    UniqueFd probe(open(own.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
                    int cap = probe.valid() ? fcntl(probe.get(), F_GETPIPE_SZ) : -1;
                    p.capacity = cap > 0 ? static_cast<uint64_t>(cap) : 65536;
                    auto bytes = peek_pipe(task.outer(), fd, p.capacity, where + " (" + target + ")");
                    p.data_offset = state.pipe_data.size();
                    p.data_bytes = bytes.size();
                    state.pipe_data.insert(state.pipe_data.end(), bytes.begin(), bytes.end());
                    state.pipes.push_back(p);
                }
                f.object_id = it->second;
            } else if (S_ISCHR(st.st_mode) && device_kind(target) != FileKind::Inherited) {
                f.kind = static_cast<uint32_t>(device_kind(target));
            } else {
                fail("cannot checkpoint " + where + ": " + target +
                     " is not a kind of file the engine can restore (sockets, eventfd, epoll, timerfd, signalfd, "
                     "inotify and devices other than /dev/{null,zero,random,urandom,full} are not supported)");
            }
            state.files.push_back(f);
            state.file_reps[f.id] = {task.outer(), fd, key};
            id = f.id;
        }
        rec.file_id = id;
        fds.push_back(rec);
    }
    write_table(task_group, "fds", fds);
}

void dump_shared_files(DumpState& state) {
    h5::Hid shared = state.writer.shared();
    write_table(shared, "files", state.files);
    write_table(shared, "pipes", state.pipes);
    write_blob(shared, "pipe_data", state.pipe_data);
}

namespace {

int to_high_fd(int fd, const SharedFds& fds, const std::string& what) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, fds.lowest);
    if (high < 0) fail_errno("cannot move the descriptor of " + what);
    close(fd);
    return high;
}

int open_file(const FileRecord& f, const FileOptions& options) {
    const std::string what = "file " + f.path;
    const int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_TRUNC | O_EXCL) ;
    int fd = open(f.path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) fail_errno("cannot reopen " + what + " (it was open at checkpoint time)");
    const int access = flags & O_ACCMODE;
    if (f.kind == static_cast<uint32_t>(FileKind::Regular) && options.truncate_written && access != O_RDONLY) {
        struct stat st {};
        if (fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) > f.size && ftruncate(fd, static_cast<off_t>(f.size)) != 0)
            fail_errno("cannot cut " + what + " back to its checkpoint size");
    }
    if (f.kind == static_cast<uint32_t>(FileKind::Regular) && lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0)
        fail_errno("cannot restore the offset of " + what);
    return fd;
}

// Another open file description of a memfd or deleted file that
// create_shared_memory made: opened through /proc/self/fd, so it is the same
// object (with the same name in /proc/PID/fd), with this description's own
// flags and offset.
int reopen_object(const FileRecord& f, const SharedFds& fds) {
    const std::string what = "file " + std::to_string(f.id) + " (" + f.path + ")";
    auto it = fds.shmem.find(f.object_id);
    if (f.object_id == 0 || it == fds.shmem.end())
        fail(what + " refers to shared memory object " + std::to_string(f.object_id) + ", which is not in the image");
    const std::string self = "/proc/self/fd/" + std::to_string(it->second);
    const int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOFOLLOW | O_TMPFILE);
    UniqueFd fd(open(self.c_str(), flags | O_CLOEXEC));
    if (!fd.valid()) fail_errno("cannot open " + what + " again");
    if (!(flags & O_PATH) && lseek(fd.get(), static_cast<off_t>(f.pos), SEEK_SET) < 0)
        fail_errno("cannot restore the offset of " + what);
    return fd.release();
}

}  // namespace

void create_shared_files(const TreeImage& tree, SharedFds& fds, const FileOptions& options) {
    // Anonymous pipes first: each becomes a pair of descriptions.
    std::set<uint64_t> fifo_ids, filled_fifos;
    for (const auto& f : tree.files)
        if (f.kind == static_cast<uint32_t>(FileKind::Fifo)) fifo_ids.insert(f.object_id);
    std::map<uint64_t, std::pair<int, int>> pipes;
    for (const auto& p : tree.pipes) {
        if (fifo_ids.contains(p.id)) continue;
        int ends[2];
        if (pipe2(ends, O_CLOEXEC) != 0) fail_errno("cannot create pipe " + std::to_string(p.id));
        if (p.capacity > 0) fcntl(ends[1], F_SETPIPE_SZ, static_cast<int>(p.capacity));
        if (p.data_bytes > 0)
            write_all(ends[1], tree.pipe_data.data() + p.data_offset, p.data_bytes, "the buffered bytes of pipe " + std::to_string(p.id));
        const std::string what = "pipe " + std::to_string(p.id);
        pipes[p.id] = {to_high_fd(ends[0], fds, what), to_high_fd(ends[1], fds, what)};
    }
    for (const auto& f : tree.files) {
        const auto kind = static_cast<FileKind>(f.kind);
        int fd = -1;
        switch (kind) {
            case FileKind::Inherited:
                fd = fcntl(static_cast<int>(f.inherited_fd), F_DUPFD_CLOEXEC, fds.lowest);
                if (fd < 0) fail_errno("cannot re-bind fd " + std::to_string(f.inherited_fd) + " of the launcher");
                break;
            case FileKind::PipeRead:
            case FileKind::PipeWrite: {
                auto it = pipes.find(f.object_id);
                if (it == pipes.end()) fail("file " + std::to_string(f.id) + " refers to a missing pipe");
                fd = fcntl(kind == FileKind::PipeRead ? it->second.first : it->second.second, F_DUPFD_CLOEXEC, fds.lowest);
                // Flags belong to the description: O_NONBLOCK of this end.
                fcntl(fd, F_SETFL, static_cast<int>(f.flags) & ~O_ACCMODE);
                break;
            }
            case FileKind::Fifo: {
                const int raw = open(f.path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
                if (raw < 0) fail_errno("cannot reopen FIFO " + f.path);
                fd = to_high_fd(raw, fds, "FIFO " + f.path);
                // Its unread bytes go back once, through the first description.
                if (filled_fifos.insert(f.object_id).second)
                    for (const auto& p : tree.pipes)
                        if (p.id == f.object_id && p.data_bytes > 0)
                            write_all(fd, tree.pipe_data.data() + p.data_offset, p.data_bytes, "the unread bytes of FIFO " + f.path);
                fcntl(fd, F_SETFL, static_cast<int>(f.flags) & ~O_ACCMODE);
                break;
            }
            case FileKind::DevNull:
            case FileKind::DevZero:
            case FileKind::DevUrandom:
            case FileKind::Regular:
            case FileKind::Directory:
                fd = to_high_fd(open_file(f, options), fds, f.path);
                break;
            case FileKind::Memfd:
            case FileKind::DeletedFile:
                fd = to_high_fd(reopen_object(f, fds), fds, f.path);
                break;
            default:
                fail("file " + std::to_string(f.id) + " (" + f.path + ") has an unknown kind " + std::to_string(f.kind));
        }
        fds.files[f.id] = fd;
    }
    finish_shared_memory(tree, fds);
    for (auto& [id, ends] : pipes) {
        close(ends.first);
        close(ends.second);
    }
}

void install_fds(const TaskImage& task, const SharedFds& fds) {
    std::vector<bool> wanted(static_cast<size_t>(fds.lowest), false);
    for (const auto& r : task.fds) {
        auto it = fds.files.find(r.file_id);
        if (it == fds.files.end()) fail("fd " + std::to_string(r.fd) + " of process " + std::to_string(task.task.pid) + " has no file");
        if (dup3(it->second, r.fd, (r.fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
            fail_errno("cannot install fd " + std::to_string(r.fd) + " of process " + std::to_string(task.task.pid));
        wanted[static_cast<size_t>(r.fd)] = true;
    }
    // Whatever else the restorer had open below the restore's range goes.
    for (int fd = 0; fd < fds.lowest; ++fd)
        if (!wanted[static_cast<size_t>(fd)]) close(fd);
}

}  // namespace ckpt::agent
