// libFuzzer target: arbitrary bytes as an image file.
//
// The input is written to a scratch file and handed to ckpt::image::inspect()
// with page verification, exactly as `ckpt-info` would read it:
//   - an input containing "ckpt-manifest" is written as <dir>/manifest.h5 and
//     the checkpoint directory is inspected (next to it lies a copy of the
//     rank file named by $FUZZ_RANK_FILE, when set, so that a valid manifest
//     seed reaches the rank file);
//   - any other input is written as rank-00000.h5 and inspected on its own.
//
// Most mutations of raw bytes land in HDF5's own metadata parsing, so this
// target measures libhdf5's robustness more than ours. With Debian's libhdf5
// 1.10.8 it fails within a minute or two, always inside the library:
//   - heap-buffer-overflow / SEGV / memcpy-param-overlap in H5HG_read (the
//     global heap holding the variable-length strings of our tables), reached
//     from H5Dread -> H5T_convert -> H5T__conv_vlen;
//   - hangs (infinite loop) deserialising a damaged global heap collection
//     (H5HG__protect -> H5C_protect -> the H5HG cache deserialize callback);
//   - multi-GiB mallocs in H5T__conv_vlen and in the metadata cache, sized by
//     damaged lengths;
//   - leaks on error paths, mostly H5O__cache_deserialize/chunk_deserialize
//     when H5Oopen meets a damaged object header.
// (Fixed upstream after 1.10.8: HDFGroup/hdf5 PR #2808 "Sanitize H5HG cache
// deserialization code", PR #2665 for the object header leak, issue #4586.)
// run-fuzz.sh therefore runs it only on the valid seeds and on regression
// files unless FUZZ_RAW_SECONDS is set, and then with -detect_leaks=0.
#include "image/h5.hpp"
#include "image/inspect.hpp"
#include "fuzz_scratch.hpp"

#include <hdf5.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace fs = std::filesystem;

namespace {

fs::path g_root;       // scratch root, removed at exit
fs::path g_rank_file;  // <root>/single/rank-00000.h5
fs::path g_ckpt_dir;   // <root>/ckpt (manifest.h5 + rank-00000.h5)

void remove_scratch() {
    std::error_code ec;
    if (!g_root.empty()) fs::remove_all(g_root, ec);
}

void write_file(const fs::path& path, const uint8_t* data, size_t size) {
    FILE* f = fopen(path.c_str(), "wb");
    if (!f) {
        perror(path.c_str());
        abort();
    }
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

// Every HDF5 object the reader opened must be closed again when inspect()
// returns: a leak here is a bug in the reader's RAII, not in HDF5.
void check_no_open_objects(const char* what) {
    const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open != 0) {
        fprintf(stderr, "fuzz: %zd HDF5 object(s) still open after %s\n", open, what);
        abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    ckpt::image::h5::quiet_library();
    // HDF5 callocs a 1 MiB type conversion buffer for every H5Dread and, with
    // the default free list limits, hands it back to the system at once: under
    // ASan that is an mmap, page faults and munmap per table read. Keeping
    // freed blocks (up to a bound) makes the target about three times faster.
    H5set_free_list_limits(16 << 20, 4 << 20, 16 << 20, 4 << 20, 64 << 20, 16 << 20);
    g_root = ckpt::fuzz::make_scratch("raw");
    atexit(remove_scratch);
    fs::create_directories(g_root / "single");
    fs::create_directories(g_root / "ckpt");
    g_rank_file = g_root / "single" / "rank-00000.h5";
    g_ckpt_dir = g_root / "ckpt";
    if (const char* rank = getenv("FUZZ_RANK_FILE")) {
        std::error_code ec;
        fs::copy_file(rank, g_ckpt_dir / "rank-00000.h5", fs::copy_options::overwrite_existing, ec);
        if (ec) fprintf(stderr, "fuzz: cannot copy FUZZ_RANK_FILE %s: %s\n", rank, ec.message().c_str());
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const bool manifest = bytes.find("ckpt-manifest") != std::string_view::npos;
    const fs::path target = manifest ? g_ckpt_dir : g_rank_file;
    write_file(manifest ? g_ckpt_dir / "manifest.h5" : g_rank_file, data, size);

    ckpt::image::InspectReport report = ckpt::image::inspect(target.string(), true, 1);
    check_no_open_objects("inspect");
    // The printers see whatever a damaged image left in the report.
    volatile size_t n = ckpt::image::format_human(report, true).size() + ckpt::image::format_json(report).size();
    (void)n;
    return 0;
}
