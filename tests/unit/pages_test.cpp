#include "image/error.hpp"
#include "image/pages.hpp"
#include "image/synthetic.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

using namespace ckpt::image;
using ckpt::test::ScratchDir;

namespace {

struct Run {
    uint64_t vaddr;
    uint64_t bytes;
};

// Writes runs of `memory` (consumed in order) and returns what a reader
// delivers, keyed by address.
std::map<uint64_t, uint8_t> round_trip(const std::string& path, const std::vector<Run>& runs, const std::vector<uint8_t>& memory,
                                       PageOptions options, PageStats* stats = nullptr) {
    WorkerPool pool(2);
    {
        h5::Hid fapl = image_file_access(path);
        h5::Hid f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
        h5::Hid g = h5::create_group(f, "space");
        PageWriter writer(g, options, pool);
        uint64_t used = 0;
        for (const auto& r : runs) {
            writer.append(r.vaddr, std::span(memory).subspan(used, r.bytes));
            used += r.bytes;
        }
        PageStats s = writer.finish();
        if (stats) *stats = s;
    }
    h5::Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    PageReader reader(h5::open_group(f, "space"), pool);
    std::map<uint64_t, uint8_t> pages;  // first byte of each page is enough to place it; full compare below
    std::vector<uint8_t> seen;
    uint64_t last_end = 0;
    reader.read([&](uint64_t vaddr, std::span<const uint8_t> data) {
        EXPECT_GE(vaddr, last_end) << "pages out of order";
        last_end = vaddr + data.size();
        for (uint64_t off = 0; off < data.size(); off += kPageSize) pages[vaddr + off] = data[off];
        seen.insert(seen.end(), data.begin(), data.end());
    });
    uint64_t total = 0;
    for (const auto& r : runs) total += r.bytes;
    EXPECT_EQ(seen.size(), total);
    EXPECT_TRUE(std::equal(seen.begin(), seen.end(), memory.begin()));
    return pages;
}

std::vector<Run> awkward_runs() {
    // Runs that start and end inside chunks, span several chunks, and touch.
    return {{0x1000, 3 * kPageSize},       {0x400000, 300 * kPageSize}, {0x400000 + 300 * kPageSize, 2 * kPageSize},
            {0x7fff0000, 1 * kPageSize},   {0x80000000, 700 * kPageSize}};
}

}  // namespace

class PagesRoundTrip : public ::testing::TestWithParam<Compression> {};

TEST_P(PagesRoundTrip, EveryPageComesBackAtItsAddress) {
    ScratchDir dir;
    auto runs = awkward_runs();
    uint64_t total = 0;
    for (const auto& r : runs) total += r.bytes;
    auto memory = synthetic_memory(total, 0.5, 7);
    PageOptions options;
    options.compression = GetParam();
    options.chunk_bytes = 64 * kPageSize;
    PageStats stats;
    auto pages = round_trip(dir / "p.h5", runs, memory, options, &stats);
    EXPECT_EQ(stats.bytes, total);
    EXPECT_EQ(stats.runs, 4u);  // the two touching runs merge
    EXPECT_EQ(pages.size(), total / kPageSize);
    EXPECT_TRUE(pages.contains(0x80000000 + 699 * kPageSize));
    if (GetParam() == Compression::Zstd) {
        EXPECT_LT(stats.stored_bytes, stats.bytes * 3 / 4);
    }
}

INSTANTIATE_TEST_SUITE_P(Compression, PagesRoundTrip, ::testing::Values(Compression::None, Compression::Zstd),
                         [](const auto& info) { return to_string(info.param); });

TEST(Pages, IncompressibleChunksAreStoredRawAndStillRead) {
    ScratchDir dir;
    auto memory = synthetic_memory(256 * kPageSize, 0.0, 3);
    PageOptions options;
    options.compression = Compression::Zstd;
    options.chunk_bytes = 32 * kPageSize;
    PageStats stats;
    round_trip(dir / "p.h5", {{0x10000, memory.size()}}, memory, options, &stats);
    EXPECT_EQ(stats.stored_bytes, stats.bytes);
}

TEST(Pages, EmptyAddressSpace) {
    ScratchDir dir;
    auto pages = round_trip(dir / "p.h5", {}, {}, PageOptions{});
    EXPECT_TRUE(pages.empty());
}

TEST(Pages, WriterRefusesMisalignedOrBackwardPages) {
    ScratchDir dir;
    const std::string path = dir / "p.h5";
    WorkerPool pool(1);
    h5::Hid fapl = image_file_access(path);
    h5::Hid f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
    h5::Hid g = h5::create_group(f, "space");
    PageWriter writer(g, PageOptions{}, pool);
    std::vector<uint8_t> page(kPageSize);
    EXPECT_THROW(writer.append(0x1001, page), ImageError);
    EXPECT_THROW(writer.append(0x1000, std::span(page).first(100)), ImageError);
    writer.append(0x5000, page);
    EXPECT_THROW(writer.append(0x4000, page), ImageError);
}

class PagesDamage : public ::testing::TestWithParam<Compression> {};

TEST_P(PagesDamage, FlippedByteInPageDataNamesTheChunk) {
    ScratchDir dir;
    const std::string path = dir / "p.h5";
    auto memory = synthetic_memory(128 * kPageSize, 0.5, 1);
    PageOptions options;
    options.compression = GetParam();
    options.chunk_bytes = 32 * kPageSize;
    round_trip(path, {{0x10000, memory.size()}}, memory, options);
    ckpt::test::flip_byte(path, ckpt::test::data_offset(path, "/space/pages", 2) + 40);
    h5::Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    WorkerPool pool(2);
    PageReader reader(h5::open_group(f, "space"), pool);
    try {
        reader.read([](uint64_t, std::span<const uint8_t>) {});
        FAIL() << "damage not detected";
    } catch (const ImageError& e) {
        EXPECT_EQ(e.object(), "/space/pages");
        EXPECT_NE(std::string(e.what()).find("chunk 2"), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(Compression, PagesDamage, ::testing::Values(Compression::None, Compression::Zstd),
                         [](const auto& info) { return to_string(info.param); });
