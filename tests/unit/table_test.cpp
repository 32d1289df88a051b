#include "image/error.hpp"
#include "image/schema.hpp"
#include "image/table.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

using namespace ckpt::image;
using ckpt::test::ScratchDir;

namespace {

h5::Hid create_file(const std::string& path) {
    h5::Hid fapl = image_file_access(path);
    return h5::Hid(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
}

}  // namespace

TEST(Table, RoundTripsIntegersArraysAndStrings) {
    ScratchDir dir;
    const std::string path = dir / "t.h5";
    std::vector<ThreadRecord> threads(3);
    for (int i = 0; i < 3; ++i) {
        threads[i].tid = 100 + i;
        threads[i].gpregs[5] = 0xdeadbeef00ull + i;
        threads[i].syscall_nr = -1 - i;
        threads[i].comm = "thread with a long name " + std::string(static_cast<size_t>(i) * 50, 'x');
    }
    {
        h5::Hid f = create_file(path);
        write_table(f, "threads", threads);
        write_table(f, "empty", std::vector<VmaRecord>{});
    }
    h5::Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    auto back = read_table<ThreadRecord>(f, "threads");
    ASSERT_EQ(back.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(back[i].tid, 100 + i);
        EXPECT_EQ(back[i].gpregs, threads[i].gpregs);
        EXPECT_EQ(back[i].syscall_nr, -1 - i);
        EXPECT_EQ(back[i].comm, threads[i].comm);
    }
    EXPECT_TRUE(read_table<VmaRecord>(f, "empty").empty());
}

TEST(Table, ChecksumIsCanonical) {
    std::vector<VmaRecord> a(1), b(1);
    a[0].path = "x";
    b[0].path = "x";
    EXPECT_EQ(table_checksum(a), table_checksum(b));
    b[0].pgoff = 1;
    EXPECT_NE(table_checksum(a), table_checksum(b));
    EXPECT_NE(table_checksum(std::vector<VmaRecord>{}), table_checksum(a));
}

TEST(Table, DamagedRowIsReportedWithFileAndDataset) {
    ScratchDir dir;
    const std::string path = dir / "t.h5";
    {
        h5::Hid f = create_file(path);
        h5::Hid g = h5::create_group(f, "task");
        std::vector<RlimitRecord> limits = {{7, 0, 1024, 4096}, {3, 0, 1, 2}};
        write_table(g, "rlimits", limits);
    }
    ckpt::test::flip_byte(path, ckpt::test::data_offset(path, "/task/rlimits") + 9);
    h5::Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    try {
        read_table<RlimitRecord>(h5::open_group(f, "task"), "rlimits");
        FAIL() << "damage not detected";
    } catch (const ImageError& e) {
        EXPECT_EQ(e.file(), path);
        EXPECT_EQ(e.object(), "/task/rlimits");
        EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos);
    }
}

TEST(Table, MissingFieldIsNamed) {
    ScratchDir dir;
    const std::string path = dir / "t.h5";
    {
        h5::Hid f = create_file(path);
        write_table(f, "rows", std::vector<PageRunRecord>{{0, 4096, 0}});
    }
    h5::Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    // A page index is not a VMA table: the reader names what is missing.
    try {
        read_table<VmaRecord>(f, "rows");
        FAIL();
    } catch (const ImageError& e) {
        EXPECT_NE(std::string(e.what()).find("lacks field(s) start, end"), std::string::npos) << e.what();
    }
    EXPECT_THROW(read_table<VmaRecord>(f, "no_such_table"), ImageError);
}

TEST(Blob, RoundTripAndDamage) {
    ScratchDir dir;
    const std::string path = dir / "b.h5";
    std::vector<uint8_t> data(3 * 512);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 13);
    {
        h5::Hid f = create_file(path);
        write_blob(f, "xsave", data, {3, 512});
    }
    {
        h5::Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
        Blob b = read_blob(f, "xsave", 1 << 20);
        EXPECT_EQ(b.data, data);
        EXPECT_EQ(b.dims, (std::vector<uint64_t>{3, 512}));
        EXPECT_THROW(read_blob(f, "xsave", 100), ImageError);  // larger than the caller allows
    }
    ckpt::test::flip_byte(path, ckpt::test::data_offset(path, "/xsave") + 700);
    h5::Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    EXPECT_THROW(read_blob(f, "xsave", 1 << 20), ImageError);
}
