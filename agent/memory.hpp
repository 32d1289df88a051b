// Memory: the address space of a process (dump: mappings and the pages
// worth storing; restore: the same mappings at the same addresses, filled).
#pragma once

#include "agent/engine.hpp"
#include "agent/procfs.hpp"

namespace ckpt::agent {

VmaKind classify_mapping(const MapEntry& m);

// Writes /task/<pid>/{vmas,pages,page_index,page_chunks}; shared memory is
// registered in state and written once by dump_shared_memory().
void dump_memory(Task& task, DumpState& state, hid_t task_group);
void dump_shared_memory(DumpState& state);

// In the restore's init: one memfd per shared memory object, filled with its
// content, at fds >= kRestoreFdBase.
void create_shared_memory(const RankReader& reader, const TreeImage& tree, SharedFds& fds);

// A free range of `size` bytes avoiding every range in `avoid`.
uint64_t find_hole(uint64_t size, const std::vector<std::pair<uint64_t, uint64_t>>& avoid);

// Replaces the restorer's address space with the image's: unmaps the
// restorer (except the trampoline), moves the vDSO/vvar to their saved
// addresses, maps every saved mapping and fills it, sets the mm fields.
void restore_memory(Task& task, const TaskImage& image, const RankReader& reader, const SharedFds& fds,
                    const Trampoline& trampoline, WorkerPool& pool);

}  // namespace ckpt::agent
