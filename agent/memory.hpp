// Memory: the address space of a process (dump: mappings and the pages
// worth storing; restore: the same mappings at the same addresses, filled).
#pragma once

#include "agent/engine.hpp"
#include "agent/procfs.hpp"

#include <sys/stat.h>

#include <optional>
#include <string>

namespace ckpt::agent {

VmaKind classify_mapping(const MapEntry& m);
// Memfd or DeletedFile for an object that exists only through descriptors
// and mappings, from its name as /proc shows it ("/memfd:NAME (deleted)",
// "/path (deleted)"); nullopt for anything else. Mappings and descriptors
// are classified alike by it.
std::optional<VmaKind> unlinked_kind(const std::string& path);

// Writes /task/<pid>/{vmas,pages,page_index,page_chunks}; shared memory is
// registered in state and written once by dump_shared_memory().
void dump_memory(Task& task, DumpState& state, hid_t task_group);
void dump_shared_memory(DumpState& state);
// The shared memory object behind descriptor `fd` of a memfd or deleted file
// (`st`: stat of /proc/PID/fd/N, `target`: its link): the same object as its
// mappings (by device and inode), whose content is then read through the
// descriptor, at the file's size, with a memfd's seals. Returns its id.
uint64_t dump_shmem_descriptor(const Task& task, int fd, const struct stat& st, VmaKind kind, const std::string& target,
                               DumpState& state, const std::string& where);

// In the restore's init: one memfd per shared memory object, filled with its
// content, at fds >= kRestoreFdBase.
void create_shared_memory(const RankReader& reader, const TreeImage& tree, SharedFds& fds);
// In the restore's init, once every open file description of them has been
// opened (create_shared_files): memfds and deleted files get their mode, and
// memfds their seals. Earlier, the mode could deny those opens and the seals
// the filling.
void finish_shared_memory(const TreeImage& tree, const SharedFds& fds);

// A free range of `size` bytes avoiding every range in `avoid`.
uint64_t find_hole(uint64_t size, const std::vector<std::pair<uint64_t, uint64_t>>& avoid);

// Replaces the restorer's address space with the image's: unmaps the
// restorer (except the trampoline), moves the vDSO/vvar to their saved
// addresses, maps every saved mapping and fills it, sets the mm fields.
void restore_memory(Task& task, const TaskImage& image, const RankReader& reader, const SharedFds& fds,
                    const Trampoline& trampoline, WorkerPool& pool);

}  // namespace ckpt::agent
