// The checkpoint image schema: every record type stored in an image, with
// its fields, units and meaning. This is the only place the schema is
// defined; docs/image-format.md describes it and `ckpt-info --schema`
// prints it from here.
//
// Versioning: kFormatMajor changes when an existing object changes meaning
// or is removed; readers refuse any other major. kFormatMinor grows when
// objects or fields are added; readers accept any minor of their major and
// ignore what they do not know.
#pragma once

#include "image/table.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace ckpt::image {

inline constexpr uint32_t kFormatMajor = 1;
inline constexpr uint32_t kFormatMinor = 0;
inline constexpr const char* kRankFormatName = "ckpt-rank-image";
inline constexpr const char* kManifestFormatName = "ckpt-manifest";
inline constexpr uint64_t kPageSize = 4096;

// ---- /tree/tasks: the process tree of one rank ----------------------------
enum class TaskState : uint32_t { Running = 0, Zombie = 1 };

struct TaskRecord {
    int32_t pid = 0;     // in the rank's PID namespace
    int32_t ppid = 0;
    int32_t pgid = 0;
    int32_t sid = 0;
    uint32_t state = 0;  // TaskState
    int32_t exit_status = 0;  // wait status of a zombie
    uint32_t nthreads = 0;
    uint64_t pidns_inode = 0;
    uint64_t userns_inode = 0;
    uint64_t mntns_inode = 0;
    std::string comm;
};

template <>
struct TableSchema<TaskRecord> {
    static constexpr const char* name = "tasks";
    static constexpr const char* doc = "One row per process of the rank's tree, parents before children.";
    static constexpr auto fields = std::make_tuple(
        field("pid", &TaskRecord::pid, "", "process id inside the rank's PID namespace"),
        field("ppid", &TaskRecord::ppid, "", "parent's pid (0 for the tree's root)"),
        field("pgid", &TaskRecord::pgid, "", "process group id"),
        field("sid", &TaskRecord::sid, "", "session id"),
        field("state", &TaskRecord::state, "", "0 running, 1 zombie (exited, not yet reaped)"),
        field("exit_status", &TaskRecord::exit_status, "", "wait(2) status of a zombie, else 0"),
        field("nthreads", &TaskRecord::nthreads, "", "number of threads (rows in /task/<pid>/threads)"),
        field("pidns_inode", &TaskRecord::pidns_inode, "", "inode of the PID namespace at checkpoint"),
        field("userns_inode", &TaskRecord::userns_inode, "", "inode of the user namespace at checkpoint"),
        field("mntns_inode", &TaskRecord::mntns_inode, "", "inode of the mount namespace at checkpoint"),
        field("comm", &TaskRecord::comm, "", "command name (/proc/PID/comm)"));
};

// ---- /task/<pid>/process: per-process scalars -----------------------------
struct ProcessRecord {
    uint32_t umask = 0;
    uint32_t personality = 0;
    uint32_t dumpable = 0;
    uint32_t no_new_privs = 0;
    uint32_t child_subreaper = 0;
    int32_t pdeath_signal = 0;
    uint32_t thp_disable = 0;
    uint32_t pad = 0;
    uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
    uint64_t start_brk = 0, brk = 0, start_stack = 0;
    uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
    int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC at checkpoint
    int64_t boottime_ns = 0;   // CLOCK_BOOTTIME at checkpoint
    std::string cwd;
    std::string root;
    std::string exe;
};

template <>
struct TableSchema<ProcessRecord> {
    static constexpr const char* name = "process";
    static constexpr const char* doc = "One row: process-wide scalars and the mm fields restored with PR_SET_MM_MAP.";
    static constexpr auto fields = std::make_tuple(
        field("umask", &ProcessRecord::umask, "", "file mode creation mask"),
        field("personality", &ProcessRecord::personality, "", "personality(2) flags"),
        field("dumpable", &ProcessRecord::dumpable, "", "PR_GET_DUMPABLE"),
        field("no_new_privs", &ProcessRecord::no_new_privs, "", "PR_GET_NO_NEW_PRIVS"),
        field("child_subreaper", &ProcessRecord::child_subreaper, "", "PR_GET_CHILD_SUBREAPER"),
        field("pdeath_signal", &ProcessRecord::pdeath_signal, "", "PR_GET_PDEATHSIG (of the leader)"),
        field("thp_disable", &ProcessRecord::thp_disable, "", "PR_GET_THP_DISABLE"),
        field("pad", &ProcessRecord::pad, "", "reserved, 0"),
        field("start_code", &ProcessRecord::start_code, "address", "mm start_code"),
        field("end_code", &ProcessRecord::end_code, "address", "mm end_code"),
        field("start_data", &ProcessRecord::start_data, "address", "mm start_data"),
        field("end_data", &ProcessRecord::end_data, "address", "mm end_data"),
        field("start_brk", &ProcessRecord::start_brk, "address", "mm start_brk"),
        field("brk", &ProcessRecord::brk, "address", "current program break"),
        field("start_stack", &ProcessRecord::start_stack, "address", "mm start_stack"),
        field("arg_start", &ProcessRecord::arg_start, "address", "start of argv strings"),
        field("arg_end", &ProcessRecord::arg_end, "address", "end of argv strings"),
        field("env_start", &ProcessRecord::env_start, "address", "start of environment strings"),
        field("env_end", &ProcessRecord::env_end, "address", "end of environment strings"),
        field("monotonic_ns", &ProcessRecord::monotonic_ns, "ns", "CLOCK_MONOTONIC at checkpoint"),
        field("boottime_ns", &ProcessRecord::boottime_ns, "ns", "CLOCK_BOOTTIME at checkpoint"),
        field("cwd", &ProcessRecord::cwd, "path", "current working directory"),
        field("root", &ProcessRecord::root, "path", "root directory"),
        field("exe", &ProcessRecord::exe, "path", "/proc/PID/exe target"));
};

// ---- /task/<pid>/vmas: the address space ----------------------------------
enum class VmaKind : uint32_t {
    AnonPrivate = 0,
    AnonShared = 1,  // content in /shared/shmem/<shmem_id>
    FilePrivate = 2,  // only pages that differ from the file are stored
    FileShared = 3,   // the file itself holds the data
    Vdso = 4,
    Vvar = 5,
    VvarVclock = 6,
    Vsyscall = 7,
    Memfd = 8,        // content in /shared/shmem/<shmem_id>
    DeletedFile = 9,  // content in /shared/shmem/<shmem_id>
};

struct VmaRecord {
    uint64_t start = 0;
    uint64_t end = 0;
    uint32_t prot = 0;   // PROT_*
    uint32_t flags = 0;  // MAP_* (MAP_SHARED/MAP_PRIVATE, MAP_GROWSDOWN ...)
    uint32_t kind = 0;   // VmaKind
    uint32_t madvise = 0;
    uint64_t pgoff = 0;  // file offset
    uint64_t dev = 0;
    uint64_t inode = 0;
    uint64_t shmem_id = 0;
    std::string path;
};

template <>
struct TableSchema<VmaRecord> {
    static constexpr const char* name = "vmas";
    static constexpr const char* doc = "One row per mapping, sorted by start, non-overlapping.";
    static constexpr auto fields = std::make_tuple(
        field("start", &VmaRecord::start, "address", "first byte, page aligned"),
        field("end", &VmaRecord::end, "address", "one past the last byte, page aligned"),
        field("prot", &VmaRecord::prot, "", "PROT_READ|PROT_WRITE|PROT_EXEC bits"),
        field("flags", &VmaRecord::flags, "", "MAP_SHARED/MAP_PRIVATE, MAP_GROWSDOWN ... bits"),
        field("kind", &VmaRecord::kind, "",
              "0 anon private, 1 anon shared, 2 file private, 3 file shared, 4 vdso, 5 vvar, 6 vvar_vclock, "
              "7 vsyscall, 8 memfd, 9 deleted file"),
        field("madvise", &VmaRecord::madvise, "", "madvise state: 1 MADV_WIPEONFORK, 2 MADV_DONTFORK, 4 MADV_DONTDUMP, 8 MADV_HUGEPAGE, 16 MADV_NOHUGEPAGE, 32 MADV_MERGEABLE"),
        field("pgoff", &VmaRecord::pgoff, "bytes", "offset of start in the mapped file"),
        field("dev", &VmaRecord::dev, "", "device of the mapped file"),
        field("inode", &VmaRecord::inode, "", "inode of the mapped file"),
        field("shmem_id", &VmaRecord::shmem_id, "", "id of the shared memory object holding the content, or 0"),
        field("path", &VmaRecord::path, "path", "mapped file or pseudo name ([heap], [stack] ...)"));
};

// ---- /task/<pid>/page_index: where stored pages belong ---------------------
struct PageRunRecord {
    uint64_t vaddr = 0;        // first address of the run
    uint64_t bytes = 0;        // multiple of kPageSize
    uint64_t data_offset = 0;  // offset in the pages dataset
};

template <>
struct TableSchema<PageRunRecord> {
    static constexpr const char* name = "page_index";
    static constexpr const char* doc =
        "Runs of stored pages in address order; run i's bytes follow run i-1's in the pages dataset.";
    static constexpr auto fields = std::make_tuple(
        field("vaddr", &PageRunRecord::vaddr, "address", "first page of the run, page aligned"),
        field("bytes", &PageRunRecord::bytes, "bytes", "length of the run, a multiple of the page size"),
        field("data_offset", &PageRunRecord::data_offset, "bytes", "offset of the run in the pages dataset"));
};

struct PageChunkRecord {
    uint64_t xxh3 = 0;          // of the uncompressed chunk (zero padded at the end)
    uint64_t stored_bytes = 0;  // bytes of the chunk on disk
};

template <>
struct TableSchema<PageChunkRecord> {
    static constexpr const char* name = "page_chunks";
    static constexpr const char* doc = "One row per chunk of the pages dataset.";
    static constexpr auto fields = std::make_tuple(
        field("xxh3", &PageChunkRecord::xxh3, "", "XXH3-64 of the uncompressed chunk, zero padded to chunk_bytes"),
        field("stored_bytes", &PageChunkRecord::stored_bytes, "bytes", "size of the chunk as stored"));
};

// ---- /task/<pid>/threads ---------------------------------------------------
inline constexpr size_t kUserRegsWords = 27;  // struct user_regs_struct on x86-64

struct ThreadRecord {
    int32_t tid = 0;
    uint32_t state = 0;  // 0 running, 1 stopped in a system call
    std::array<uint64_t, kUserRegsWords> gpregs{};
    uint64_t fs_base = 0;
    uint64_t gs_base = 0;
    uint64_t sigmask = 0;
    uint64_t sigpending = 0;
    uint64_t altstack_sp = 0;
    uint64_t altstack_size = 0;
    uint32_t altstack_flags = 0;
    uint32_t rseq_len = 0;
    uint64_t rseq_addr = 0;
    uint32_t rseq_sig = 0;
    uint32_t xsave_bytes = 0;
    uint64_t robust_list = 0;
    uint64_t robust_list_len = 0;
    uint64_t clear_tid_addr = 0;
    int64_t syscall_nr = -1;  // system call the thread was stopped in, or -1
    std::array<uint64_t, 16> cpu_affinity{};  // CPUs 0..1023
    uint64_t timer_slack_ns = 0;
    std::string comm;
};

template <>
struct TableSchema<ThreadRecord> {
    static constexpr const char* name = "threads";
    static constexpr const char* doc =
        "One row per thread, the thread-group leader first; row i's XSAVE area is row i of the xsave dataset.";
    static constexpr auto fields = std::make_tuple(
        field("tid", &ThreadRecord::tid, "", "thread id inside the rank's PID namespace"),
        field("state", &ThreadRecord::state, "", "0 running in user space, 1 stopped inside a system call"),
        field("gpregs", &ThreadRecord::gpregs, "", "struct user_regs_struct (NT_PRSTATUS), x86-64 order"),
        field("fs_base", &ThreadRecord::fs_base, "address", "FS base (TLS)"),
        field("gs_base", &ThreadRecord::gs_base, "address", "GS base"),
        field("sigmask", &ThreadRecord::sigmask, "", "blocked signals, bit n-1 for signal n"),
        field("sigpending", &ThreadRecord::sigpending, "", "thread-directed pending signals"),
        field("altstack_sp", &ThreadRecord::altstack_sp, "address", "sigaltstack base"),
        field("altstack_size", &ThreadRecord::altstack_size, "bytes", "sigaltstack size"),
        field("altstack_flags", &ThreadRecord::altstack_flags, "", "sigaltstack flags (SS_DISABLE ...)"),
        field("rseq_len", &ThreadRecord::rseq_len, "bytes", "registered rseq area length, 0 when none"),
        field("rseq_addr", &ThreadRecord::rseq_addr, "address", "registered rseq area"),
        field("rseq_sig", &ThreadRecord::rseq_sig, "", "rseq abort signature"),
        field("xsave_bytes", &ThreadRecord::xsave_bytes, "bytes", "length of the XSAVE area (NT_X86_XSTATE)"),
        field("robust_list", &ThreadRecord::robust_list, "address", "robust futex list head"),
        field("robust_list_len", &ThreadRecord::robust_list_len, "bytes", "robust futex list head length"),
        field("clear_tid_addr", &ThreadRecord::clear_tid_addr, "address", "set_tid_address(2) value"),
        field("syscall_nr", &ThreadRecord::syscall_nr, "", "system call interrupted by the checkpoint, or -1"),
        field("cpu_affinity", &ThreadRecord::cpu_affinity, "", "CPU affinity mask, bit n for CPU n (up to 1024)"),
        field("timer_slack_ns", &ThreadRecord::timer_slack_ns, "ns", "PR_GET_TIMERSLACK"),
        field("comm", &ThreadRecord::comm, "", "thread name"));
};

// ---- /task/<pid>/fds and /shared/files --------------------------------------
struct FdRecord {
    int32_t fd = 0;
    uint32_t fd_flags = 0;  // FD_CLOEXEC
    uint64_t file_id = 0;   // row id in /shared/files
};

template <>
struct TableSchema<FdRecord> {
    static constexpr const char* name = "fds";
    static constexpr const char* doc = "The descriptor table: one row per open fd.";
    static constexpr auto fields = std::make_tuple(
        field("fd", &FdRecord::fd, "", "descriptor number"),
        field("fd_flags", &FdRecord::fd_flags, "", "FD_CLOEXEC"),
        field("file_id", &FdRecord::file_id, "", "id of the open file description in /shared/files"));
};

enum class FileKind : uint32_t {
    Regular = 0,
    Directory = 1,
    PipeRead = 2,
    PipeWrite = 3,
    Fifo = 4,
    DevNull = 5,
    DevZero = 6,
    DevUrandom = 7,  // also /dev/random and /dev/full by path
    Memfd = 8,        // content in /shared/shmem/<object_id>
    Inherited = 9,    // leads outside the tree (stdin/out/err of the launcher): re-bound on restore
    DeletedFile = 10, // unlinked while open; content in /shared/shmem/<object_id>
};

struct FileRecord {
    uint64_t id = 0;
    uint32_t kind = 0;   // FileKind
    uint32_t flags = 0;  // open(2) flags (O_APPEND, O_NONBLOCK ...)
    uint64_t pos = 0;
    uint64_t size = 0;       // size of a regular file at checkpoint
    uint32_t mode = 0;       // st_mode
    uint32_t inherited_fd = 0;  // for kind Inherited: which launcher fd
    uint64_t object_id = 0;  // pipe id in /shared/pipes, shmem id for memfd and deleted file
    std::string path;
};

template <>
struct TableSchema<FileRecord> {
    static constexpr const char* name = "files";
    static constexpr const char* doc = "Open file descriptions, each stored once and shared by the fds that point at it.";
    static constexpr auto fields = std::make_tuple(
        field("id", &FileRecord::id, "", "id referenced by fds.file_id (unique, not 0)"),
        field("kind", &FileRecord::kind, "",
              "0 regular, 1 directory, 2 pipe read end, 3 pipe write end, 4 FIFO, 5 /dev/null, 6 /dev/zero, "
              "7 /dev/urandom, 8 memfd, 9 inherited from the launcher, 10 deleted file (unlinked while open)"),
        field("flags", &FileRecord::flags, "", "open(2) status flags"),
        field("pos", &FileRecord::pos, "bytes", "file offset"),
        field("size", &FileRecord::size, "bytes", "size of a regular file at checkpoint (cut back to on restore)"),
        field("mode", &FileRecord::mode, "", "st_mode"),
        field("inherited_fd", &FileRecord::inherited_fd, "", "launcher fd a kind-9 file is re-bound to"),
        field("object_id", &FileRecord::object_id, "",
              "pipe id (/shared/pipes), or for a memfd or deleted file the id of its content in /shared/shmem, else 0"),
        field("path", &FileRecord::path, "path", "path at checkpoint"));
};

// ---- /shared/pipes ------------------------------------------------------------
struct PipeRecord {
    uint64_t id = 0;
    uint64_t capacity = 0;     // F_GETPIPE_SZ
    uint64_t data_offset = 0;  // into /shared/pipe_data
    uint64_t data_bytes = 0;   // bytes buffered, not yet read
};

template <>
struct TableSchema<PipeRecord> {
    static constexpr const char* name = "pipes";
    static constexpr const char* doc = "Pipes and FIFOs inside the tree with the bytes buffered in them.";
    static constexpr auto fields = std::make_tuple(
        field("id", &PipeRecord::id, "", "pipe id referenced by files.object_id"),
        field("capacity", &PipeRecord::capacity, "bytes", "pipe buffer size (F_GETPIPE_SZ)"),
        field("data_offset", &PipeRecord::data_offset, "bytes", "offset of the buffered bytes in pipe_data"),
        field("data_bytes", &PipeRecord::data_bytes, "bytes", "number of bytes buffered"));
};

// ---- /shared/shmem: shared memory objects --------------------------------------
struct ShmemRecord {
    uint64_t id = 0;
    uint64_t bytes = 0;
    uint32_t kind = 0;  // VmaKind of its mappings (AnonShared, Memfd, DeletedFile)
    uint32_t seals = 0;  // F_GET_SEALS of a memfd seen through a descriptor
    std::string name;
};

template <>
struct TableSchema<ShmemRecord> {
    static constexpr const char* name = "shmem";
    static constexpr const char* doc =
        "Shared memory objects (shared anonymous memory, memfds, deleted files), each stored once for all its mappings "
        "and descriptors; its pages are in /shared/shmem_<id>/{page_index,pages}, offsets as vaddr.";
    static constexpr auto fields = std::make_tuple(
        field("id", &ShmemRecord::id, "", "id referenced by vmas.shmem_id and files.object_id"),
        field("bytes", &ShmemRecord::bytes, "bytes",
              "size of the object: the file's size when a descriptor of it was open, else the extent of its mappings"),
        field("kind", &ShmemRecord::kind, "", "1 shared anonymous memory, 8 memfd, 9 deleted file (as vmas.kind)"),
        field("seals", &ShmemRecord::seals, "", "F_GET_SEALS of a memfd with an open descriptor, else 0"),
        field("name", &ShmemRecord::name, "", "memfd name or deleted file path"));
};

// ---- /task/<pid>/sigactions, /task/<pid>/pending_signals -----------------------
struct SigactionRecord {
    uint32_t signo = 0;
    uint32_t pad = 0;
    uint64_t handler = 0;
    uint64_t flags = 0;
    uint64_t restorer = 0;
    uint64_t mask = 0;
};

template <>
struct TableSchema<SigactionRecord> {
    static constexpr const char* name = "sigactions";
    static constexpr const char* doc = "Signal dispositions that are not SIG_DFL.";
    static constexpr auto fields = std::make_tuple(
        field("signo", &SigactionRecord::signo, "", "signal number"),
        field("pad", &SigactionRecord::pad, "", "reserved, 0"),
        field("handler", &SigactionRecord::handler, "address", "sa_handler (0 SIG_DFL, 1 SIG_IGN)"),
        field("flags", &SigactionRecord::flags, "", "sa_flags"),
        field("restorer", &SigactionRecord::restorer, "address", "sa_restorer"),
        field("mask", &SigactionRecord::mask, "", "sa_mask"));
};

struct PendingSignalRecord {
    int32_t tid = 0;  // 0: process-wide (shared) queue
    uint32_t signo = 0;
    std::array<uint8_t, 128> siginfo{};
};

template <>
struct TableSchema<PendingSignalRecord> {
    static constexpr const char* name = "pending_signals";
    static constexpr const char* doc = "Queued signals with their siginfo (PTRACE_PEEKSIGINFO).";
    static constexpr auto fields = std::make_tuple(
        field("tid", &PendingSignalRecord::tid, "", "thread the signal is queued on, 0 for the process queue"),
        field("signo", &PendingSignalRecord::signo, "", "signal number"),
        field("siginfo", &PendingSignalRecord::siginfo, "", "raw siginfo_t"));
};

// ---- /task/<pid>/timers ------------------------------------------------------
enum class TimerKind : uint32_t { ItimerReal = 0, ItimerVirtual = 1, ItimerProf = 2, Posix = 3 };

struct TimerRecord {
    uint32_t kind = 0;  // TimerKind
    int32_t timer_id = 0;
    int32_t clock_id = 0;
    int32_t signo = 0;
    int32_t notify = 0;  // sigev_notify
    int32_t notify_tid = 0;
    uint64_t sigev_value = 0;
    int64_t value_ns = 0;
    int64_t interval_ns = 0;
    int32_t overrun = 0;
    uint32_t pad = 0;
};

template <>
struct TableSchema<TimerRecord> {
    static constexpr const char* name = "timers";
    static constexpr const char* doc = "Interval timers and POSIX timers armed at checkpoint.";
    static constexpr auto fields = std::make_tuple(
        field("kind", &TimerRecord::kind, "", "0 ITIMER_REAL, 1 ITIMER_VIRTUAL, 2 ITIMER_PROF, 3 POSIX timer"),
        field("timer_id", &TimerRecord::timer_id, "", "POSIX timer id"),
        field("clock_id", &TimerRecord::clock_id, "", "clock of a POSIX timer"),
        field("signo", &TimerRecord::signo, "", "signal delivered on expiry"),
        field("notify", &TimerRecord::notify, "", "sigev_notify"),
        field("notify_tid", &TimerRecord::notify_tid, "", "thread for SIGEV_THREAD_ID"),
        field("sigev_value", &TimerRecord::sigev_value, "", "sigev_value"),
        field("value_ns", &TimerRecord::value_ns, "ns", "time to next expiry"),
        field("interval_ns", &TimerRecord::interval_ns, "ns", "reload interval"),
        field("overrun", &TimerRecord::overrun, "", "overrun count"),
        field("pad", &TimerRecord::pad, "", "reserved, 0"));
};

// ---- /task/<pid>/rlimits, /task/<pid>/creds -----------------------------------
struct RlimitRecord {
    uint32_t resource = 0;
    uint32_t pad = 0;
    uint64_t soft = 0;
    uint64_t hard = 0;
};

template <>
struct TableSchema<RlimitRecord> {
    static constexpr const char* name = "rlimits";
    static constexpr const char* doc = "Resource limits (prlimit), one row per resource.";
    static constexpr auto fields = std::make_tuple(
        field("resource", &RlimitRecord::resource, "", "RLIMIT_* number"),
        field("pad", &RlimitRecord::pad, "", "reserved, 0"),
        field("soft", &RlimitRecord::soft, "", "soft limit (RLIM_INFINITY = 2^64-1)"),
        field("hard", &RlimitRecord::hard, "", "hard limit"));
};

struct CredsRecord {
    uint32_t uid = 0, euid = 0, suid = 0, fsuid = 0;
    uint32_t gid = 0, egid = 0, sgid = 0, fsgid = 0;
    uint64_t cap_inheritable = 0, cap_permitted = 0, cap_effective = 0, cap_bounding = 0, cap_ambient = 0;
    uint32_t securebits = 0;
    uint32_t pad = 0;
    std::string groups;  // supplementary groups, comma separated
};

template <>
struct TableSchema<CredsRecord> {
    static constexpr const char* name = "creds";
    static constexpr const char* doc = "One row: the process credentials.";
    static constexpr auto fields = std::make_tuple(
        field("uid", &CredsRecord::uid, "", "real uid"), field("euid", &CredsRecord::euid, "", "effective uid"),
        field("suid", &CredsRecord::suid, "", "saved uid"), field("fsuid", &CredsRecord::fsuid, "", "filesystem uid"),
        field("gid", &CredsRecord::gid, "", "real gid"), field("egid", &CredsRecord::egid, "", "effective gid"),
        field("sgid", &CredsRecord::sgid, "", "saved gid"), field("fsgid", &CredsRecord::fsgid, "", "filesystem gid"),
        field("cap_inheritable", &CredsRecord::cap_inheritable, "", "inheritable capability set"),
        field("cap_permitted", &CredsRecord::cap_permitted, "", "permitted capability set"),
        field("cap_effective", &CredsRecord::cap_effective, "", "effective capability set"),
        field("cap_bounding", &CredsRecord::cap_bounding, "", "bounding set"),
        field("cap_ambient", &CredsRecord::cap_ambient, "", "ambient set"),
        field("securebits", &CredsRecord::securebits, "", "PR_GET_SECUREBITS"),
        field("pad", &CredsRecord::pad, "", "reserved, 0"),
        field("groups", &CredsRecord::groups, "", "supplementary group ids, comma separated"));
};

// ---- /mpi: the MPI proxy's state (filled by mpi_plugin) -----------------------
struct MpiObjectRecord {
    uint64_t seq = 0;
    uint64_t virtual_handle = 0;
    uint32_t kind = 0;  // ObjKind of mpi_plugin/common/calls.hpp
    uint32_t call = 0;  // Call of mpi_plugin/common/calls.hpp
    uint64_t args_offset = 0;
    uint64_t args_bytes = 0;
};

template <>
struct TableSchema<MpiObjectRecord> {
    static constexpr const char* name = "creation_log";
    static constexpr const char* doc = "How every live MPI object was made, in creation order; replayed on restart.";
    static constexpr auto fields = std::make_tuple(
        field("seq", &MpiObjectRecord::seq, "", "creation order"),
        field("virtual_handle", &MpiObjectRecord::virtual_handle, "", "handle value the application holds"),
        field("kind", &MpiObjectRecord::kind, "", "1 communicator, 2 group, 3 datatype, 4 reduction operation"),
        field("call", &MpiObjectRecord::call, "", "the shim's call that made (or freed) it: CommCreate, CommFree, GroupCreate, TypeCreate, OpCreate... (mpi_plugin/common/calls.hpp)"),
        field("args_offset", &MpiObjectRecord::args_offset, "bytes", "offset in payload of the call's arguments: int64 words, then the arrays it read"),
        field("args_bytes", &MpiObjectRecord::args_bytes, "bytes", "length of the arguments"));
};

struct MpiMessageRecord {
    uint64_t comm = 0;  // virtual communicator handle
    int32_t source = 0;
    int32_t tag = 0;
    uint64_t data_offset = 0;
    uint64_t data_bytes = 0;
};

template <>
struct TableSchema<MpiMessageRecord> {
    static constexpr const char* name = "drained_messages";
    static constexpr const char* doc = "Messages drained from the network at checkpoint, in arrival order.";
    static constexpr auto fields = std::make_tuple(
        field("comm", &MpiMessageRecord::comm, "", "communicator id (the shim's)"),
        field("source", &MpiMessageRecord::source, "", "source rank in comm"),
        field("tag", &MpiMessageRecord::tag, "", "message tag"),
        field("data_offset", &MpiMessageRecord::data_offset, "bytes", "offset of the message in payload"),
        field("data_bytes", &MpiMessageRecord::data_bytes, "bytes", "message length"));
};

struct MpiRequestRecord {
    uint64_t virtual_request = 0;
    uint32_t call = 0;
    uint32_t pad = 0;
    uint64_t args_offset = 0;
    uint64_t args_bytes = 0;
};

template <>
struct TableSchema<MpiRequestRecord> {
    static constexpr const char* name = "pending_requests";
    static constexpr const char* doc = "Nonblocking operations the application has not completed at checkpoint; receives are posted again on restart.";
    static constexpr auto fields = std::make_tuple(
        field("virtual_request", &MpiRequestRecord::virtual_request, "", "request id the application's handle holds"),
        field("call", &MpiRequestRecord::call, "", "0 send, 1 receive (posted again on resume), 2 collective"),
        field("pad", &MpiRequestRecord::pad, "", "reserved, 0"),
        field("args_offset", &MpiRequestRecord::args_offset, "bytes", "offset in payload of the request (PendingRequest of mpi_plugin/common/state.hpp)"),
        field("args_bytes", &MpiRequestRecord::args_bytes, "bytes", "length of it"));
};

// ---- manifest.h5: /ranks table ------------------------------------------------
struct ManifestRankRecord {
    uint32_t rank = 0;
    uint32_t ntasks = 0;
    uint32_t nthreads = 0;
    uint32_t pad = 0;
    uint64_t nvmas = 0;
    uint64_t file_bytes = 0;     // size of the rank file
    uint64_t memory_bytes = 0;   // sum of VMA sizes
    uint64_t stored_bytes = 0;   // page data, uncompressed
    uint64_t on_disk_bytes = 0;  // page data as stored (compressed)
    int64_t dump_ns = 0;
    std::string file;  // basename inside the checkpoint directory
    std::string node;  // host name
    std::string image_id;
};

template <>
struct TableSchema<ManifestRankRecord> {
    static constexpr const char* name = "rank_table";
    static constexpr const char* doc = "One row per rank file of the checkpoint.";
    static constexpr auto fields = std::make_tuple(
        field("rank", &ManifestRankRecord::rank, "", "MPI rank (or task index)"),
        field("ntasks", &ManifestRankRecord::ntasks, "", "processes in the rank's tree"),
        field("nthreads", &ManifestRankRecord::nthreads, "", "threads in the rank's tree"),
        field("pad", &ManifestRankRecord::pad, "", "reserved, 0"),
        field("nvmas", &ManifestRankRecord::nvmas, "", "mappings in the rank's tree"),
        field("file_bytes", &ManifestRankRecord::file_bytes, "bytes", "size of the rank file"),
        field("memory_bytes", &ManifestRankRecord::memory_bytes, "bytes", "address space covered by mappings"),
        field("stored_bytes", &ManifestRankRecord::stored_bytes, "bytes", "page data stored, uncompressed"),
        field("on_disk_bytes", &ManifestRankRecord::on_disk_bytes, "bytes", "page data as written (compressed)"),
        field("dump_ns", &ManifestRankRecord::dump_ns, "ns", "time the rank took to write its image"),
        field("file", &ManifestRankRecord::file, "", "rank file name, a plain name inside this directory"),
        field("node", &ManifestRankRecord::node, "", "host the rank ran on"),
        field("image_id", &ManifestRankRecord::image_id, "", "the rank file's image_id attribute"));
};

}  // namespace ckpt::image
