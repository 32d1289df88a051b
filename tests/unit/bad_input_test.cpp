// Every kind of bad input named by issue 1 gives one clear error naming the
// file (and object), never a crash. inspect() is what ckpt-info runs.
#include "image/checkpoint_dir.hpp"
#include "image/inspect.hpp"
#include "image/table.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace ckpt::image;
using ckpt::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

class BadInput : public ::testing::Test {
protected:
    void SetUp() override {
        CheckpointDir dir(scratch_ / "ckpt");
        previous_ = ckpt::test::make_checkpoint(dir, 2);
        checkpoint_ = ckpt::test::make_checkpoint(dir, 2, Compression::Zstd);
        rank1_ = checkpoint_ + "/rank-00001.h5";
    }

    // The damaged checkpoint fails with an error containing every fragment;
    // the previous one still validates.
    void expect_error(const std::string& path, std::initializer_list<std::string> fragments) {
        auto report = inspect(path, true, 2);
        ASSERT_FALSE(report.error.empty()) << "damage not detected";
        for (const auto& f : fragments) EXPECT_NE(report.error.find(f), std::string::npos) << "'" << f << "' not in: " << report.error;
        auto previous = inspect(previous_, true, 2);
        EXPECT_TRUE(previous.error.empty()) << previous.error;
    }

    void rewrite_rank_table(const std::function<void(std::vector<ManifestRankRecord>&)>& edit) {
        const std::string manifest = checkpoint_ + "/manifest.h5";
        h5::Hid f(H5Fopen(manifest.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
        auto rows = read_table<ManifestRankRecord>(f, "rank_table");
        edit(rows);
        H5Ldelete(f, "rank_table", H5P_DEFAULT);
        write_table(f, "rank_table", rows);  // a valid checksum: only the content is wrong
    }

    ScratchDir scratch_;
    std::string previous_, checkpoint_, rank1_;
};

}  // namespace

TEST_F(BadInput, FlippedByteInPageData) {
    ckpt::test::flip_byte(rank1_, ckpt::test::data_offset(rank1_, "/task/101/pages", 1) + 10);
    expect_error(checkpoint_, {rank1_, "/task/101/pages", "chunk 1"});
}

TEST_F(BadInput, FlippedByteInTable) {
    ckpt::test::flip_byte(rank1_, ckpt::test::data_offset(rank1_, "/task/1/vmas") + 3);
    expect_error(checkpoint_, {rank1_, "/task/1/vmas", "checksum mismatch"});
}

TEST_F(BadInput, FlippedByteInBlob) {
    ckpt::test::flip_byte(rank1_, ckpt::test::data_offset(rank1_, "/task/1/xsave") + 1000);
    expect_error(checkpoint_, {rank1_, "/task/1/xsave", "checksum mismatch"});
}

TEST_F(BadInput, TruncatedRankFile) {
    ckpt::test::truncate_file(rank1_, fs::file_size(rank1_) / 2);
    expect_error(checkpoint_, {rank1_});
    // The rank file alone, without the manifest's size check, fails too.
    auto alone = inspect(rank1_, true, 1);
    EXPECT_FALSE(alone.error.empty());
    EXPECT_NE(alone.error.find(rank1_), std::string::npos) << alone.error;
}

TEST_F(BadInput, MissingRankFile) {
    fs::remove(rank1_);
    expect_error(checkpoint_, {rank1_, "No such file"});
}

TEST_F(BadInput, ManifestNamesFileOutsideItsDirectory) {
    rewrite_rank_table([](auto& rows) { rows[1].file = "../../etc/passwd"; });
    expect_error(checkpoint_, {"manifest.h5", "/rank_table", "../../etc/passwd", "not a rank file inside the checkpoint directory"});
}

TEST_F(BadInput, ManifestListsAnotherImage) {
    rewrite_rank_table([](auto& rows) { rows[1].image_id = "0123"; });
    expect_error(checkpoint_, {rank1_, "not the image the manifest lists for rank 1"});
}

TEST_F(BadInput, RankFileFromAnotherCheckpoint) {
    fs::copy_file(previous_ + "/rank-00001.h5", rank1_, fs::copy_options::overwrite_existing);
    expect_error(checkpoint_, {rank1_, "not the image the manifest lists"});
}

TEST_F(BadInput, WrongFormatVersionOfRankFile) {
    {
        h5::Hid f(H5Fopen(rank1_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
        h5::set_attr_u64(f, "format_major", 2);
    }
    expect_error(checkpoint_, {rank1_, "format version 2.0 is not supported"});
}

TEST_F(BadInput, WrongFormatVersionOfManifest) {
    {
        const std::string manifest = checkpoint_ + "/manifest.h5";
        h5::Hid f(H5Fopen(manifest.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
        h5::set_attr_u64(f, "format_major", 7);
    }
    expect_error(checkpoint_, {"manifest.h5", "format version 7.0 is not supported"});
}

TEST_F(BadInput, EmptyFile) {
    { std::ofstream(rank1_, std::ios::trunc); }
    expect_error(checkpoint_, {rank1_, "file is empty"});
}

TEST_F(BadInput, NotAnHdf5File) {
    { std::ofstream(rank1_, std::ios::trunc) << "this is a text file, not an image\n"; }
    expect_error(checkpoint_, {rank1_, "is not an HDF5 file"});
}

TEST_F(BadInput, EmptyManifest) {
    { std::ofstream(checkpoint_ + "/manifest.h5", std::ios::trunc); }
    expect_error(checkpoint_, {"manifest.h5", "file is empty"});
}

TEST_F(BadInput, PathThatIsNoCheckpoint) {
    auto report = inspect(scratch_ / "nowhere", true, 1);
    EXPECT_NE(report.error.find("does not exist"), std::string::npos) << report.error;
    fs::create_directory(scratch_ / "empty");
    report = inspect(scratch_ / "empty", true, 1);
    EXPECT_NE(report.error.find("holds no committed checkpoint"), std::string::npos) << report.error;
}

TEST_F(BadInput, QuickCheckSkipsPageDataButNotTables) {
    ckpt::test::flip_byte(rank1_, ckpt::test::data_offset(rank1_, "/task/101/pages", 1) + 10);
    EXPECT_TRUE(inspect(checkpoint_, false, 1).error.empty());
    ckpt::test::flip_byte(rank1_, ckpt::test::data_offset(rank1_, "/task/1/threads") + 3);
    EXPECT_FALSE(inspect(checkpoint_, false, 1).error.empty());
}
