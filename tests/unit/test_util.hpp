// Helpers shared by the image tests: scratch directories and byte surgery
// on image files.
#pragma once

#include "image/h5.hpp"
#include "image/checkpoint_dir.hpp"
#include "image/rank_image.hpp"
#include "image/synthetic.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace ckpt::test {

// A fresh directory per test, removed afterwards.
class ScratchDir {
public:
    ScratchDir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string name = std::string("ckpt-test-") + info->test_suite_name() + "-" + info->name() + "-XXXXXX";
        for (char& c : name)
            if (c == '/') c = '_';
        std::string templ = (std::filesystem::temp_directory_path() / name).string();
        if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
        path_ = templ;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// File offset of a dataset's data: contiguous datasets, or chunk `chunk` of
// a chunked one.
inline uint64_t data_offset(const std::string& file, const std::string& dataset, uint64_t chunk = 0) {
    image::h5::Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    image::h5::Hid d(H5Dopen2(f, dataset.c_str(), H5P_DEFAULT));
    image::h5::Hid dcpl(H5Dget_create_plist(d));
    if (H5Pget_layout(dcpl) != H5D_CHUNKED) return H5Dget_offset(d);
    image::h5::Hid space(H5Dget_space(d));
    hsize_t offset[1];
    unsigned mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    H5Dget_chunk_info(d, space, chunk, offset, &mask, &addr, &size);
    return addr;
}

inline void flip_byte(const std::string& file, uint64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x5a));
}

// Writes and commits a checkpoint of `ranks` synthetic rank files; returns
// its path.
inline std::string make_checkpoint(image::CheckpointDir& dir, uint32_t ranks,
                                   image::Compression compression = image::Compression::None,
                                   const std::string& job_id = "job-1") {
    using namespace image;
    auto pending = dir.begin();
    SyntheticSpec spec{2, 2, 1 << 20};
    auto memory = synthetic_memory(spec.bytes_per_task, 0.5, pending.sequence());
    std::vector<ManifestRankRecord> rows;
    for (uint32_t rank = 0; rank < ranks; ++rank) {
        RankHeader header;
        header.rank = rank;
        header.job_id = job_id;
        header.node = "node" + std::to_string(rank % 2);
        PageOptions options;
        options.compression = compression;
        RankWriter writer(pending.rank_path(rank), header, options);
        write_synthetic_rank(writer, spec, memory);
        RankSummary s = writer.finish(1000 + rank);
        rows.push_back(manifest_row(writer.header(), s, 1000 + rank));
    }
    return pending.commit(job_id, 5000, rows);
}

inline void truncate_file(const std::string& file, uint64_t size) { std::filesystem::resize_file(file, size); }

}  // namespace ckpt::test
