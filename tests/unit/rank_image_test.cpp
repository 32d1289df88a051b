#include "image/error.hpp"
#include "image/fault.hpp"
#include "image/rank_image.hpp"
#include "image/synthetic.hpp"
#include "image/table.hpp"
#include "test_util.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>

using namespace ckpt::image;
using ckpt::test::ScratchDir;

namespace {

RankSummary write_rank(const std::string& path, Compression c, const SyntheticSpec& spec = {}) {
    auto memory = synthetic_memory(spec.bytes_per_task, 0.5, 42);
    RankHeader header;
    header.rank = 3;
    header.job_id = "job-1";
    PageOptions options;
    options.compression = c;
    RankWriter writer(path, header, options);
    write_synthetic_rank(writer, spec, memory);
    return writer.finish(12345);
}

}  // namespace

TEST(RankImage, WritesAVerifiableImage) {
    ScratchDir dir;
    const std::string path = dir / "rank-00003.h5";
    SyntheticSpec spec{3, 4, 2 << 20};
    RankSummary written = write_rank(path, Compression::Zstd, spec);
    EXPECT_EQ(written.ntasks, 4u);  // three live tasks and a zombie
    EXPECT_EQ(written.nthreads, 12u);

    RankReader reader(path);
    EXPECT_EQ(reader.header().rank, 3u);
    EXPECT_EQ(reader.header().job_id, "job-1");
    EXPECT_EQ(reader.dump_ns(), 12345);
    WorkerPool pool(2);
    RankSummary s = reader.verify(true, pool);
    EXPECT_EQ(s.ntasks, written.ntasks);
    EXPECT_EQ(s.stored_bytes, 3 * ((2u << 20) + kPageSize) + 2 * kPageSize);
    EXPECT_GT(s.datasets, 40u);
    auto tasks = reader.tasks();
    ASSERT_EQ(tasks.size(), 4u);
    EXPECT_EQ(tasks[3].state, static_cast<uint32_t>(TaskState::Zombie));
    EXPECT_EQ(read_record<ProcessRecord>(reader.task(1), "process").cwd, "/scratch");

    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "images may hold secrets";
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(RankImage, AbandonedWriterLeavesNothing) {
    ScratchDir dir;
    const std::string path = dir / "rank-00000.h5";
    {
        RankWriter writer(path, RankHeader{}, PageOptions{});
        writer.write_tree({});
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(RankImage, WriterRefusesToFinishAnInconsistentImage) {
    ScratchDir dir;
    const std::string path = dir / "rank-00000.h5";
    RankWriter writer(path, RankHeader{}, PageOptions{});
    writer.write_tree({{7, 0, 7, 7, 0, 0, 1, 0, 0, 0, "lonely"}});  // task 7 has no /task/7 group
    EXPECT_THROW(writer.finish(0), ImageError);
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(RankImage, CrossReferencesAreChecked) {
    ScratchDir dir;
    const std::string path = dir / "rank-00000.h5";
    {
        auto memory = synthetic_memory(1 << 20, 0.5, 1);
        RankWriter writer(path, RankHeader{}, PageOptions{});
        write_synthetic_rank(writer, SyntheticSpec{1, 1, 1 << 20}, memory);
        // An fd naming an open file description that does not exist.
        h5::Hid task = h5::open_group(writer.root(), "task/1");
        H5Ldelete(task, "fds", H5P_DEFAULT);
        write_table<FdRecord>(task, "fds", {{0, 0, 99}});
        try {
            writer.finish(0);
            FAIL() << "dangling fd accepted";
        } catch (const ImageError& e) {
            EXPECT_NE(std::string(e.what()).find("fd 0 refers to file 99"), std::string::npos) << e.what();
        }
    }
}

// A writer makes only hard links; a reader refuses soft and external ones by
// name instead of following them (an external link back into the same file
// even leaves libhdf5 unable to close what it opened).
TEST(RankImage, LinksOtherThanHardAreRefused) {
    ScratchDir dir;
    const std::string path = dir / "rank-00000.h5";
    write_rank(path, Compression::None, SyntheticSpec{1, 1, 1 << 20});
    const struct {
        std::string name, expected;
    } cases[] = {{"external", "/task/1/vmas: is an external link"}, {"soft", "/task/1/vmas: is a soft link"}};
    for (const auto& c : cases) {
        {
            h5::Hid file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
            ASSERT_TRUE(file.valid());
            H5Ldelete(file, "/task/1/vmas", H5P_DEFAULT);
            if (c.name == "external")
                ASSERT_GE(H5Lcreate_external("rank-00000.h5", "/", file, "/task/1/vmas", H5P_DEFAULT, H5P_DEFAULT), 0);
            else
                ASSERT_GE(H5Lcreate_soft("/tree/tasks", file, "/task/1/vmas", H5P_DEFAULT, H5P_DEFAULT), 0);
        }
        try {
            RankReader reader(path);
            WorkerPool pool(1);
            reader.verify(true, pool);
            FAIL() << c.name << " link followed";
        } catch (const ImageError& e) {
            EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
        }
        EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0) << "the reader left HDF5 objects open";
    }
}

namespace {

// A synthetic rank whose /shared/files gains `extra`; a deleted file of
// 10000 bytes (object 2, its last page reaching past the end) is added to
// /shared/shmem. Returns finish()'s error, empty when the image is accepted.
std::string with_unlinked_files(const std::string& path, const std::vector<FileRecord>& extra) {
    auto memory = synthetic_memory(1 << 20, 0.5, 1);
    RankWriter writer(path, RankHeader{}, PageOptions{});
    write_synthetic_rank(writer, SyntheticSpec{1, 1, 1 << 20}, memory);
    h5::Hid shared = h5::open_group(writer.root(), "shared");
    auto files = read_table<FileRecord>(shared, "files");
    files.insert(files.end(), extra.begin(), extra.end());
    H5Ldelete(shared, "files", H5P_DEFAULT);
    write_table(shared, "files", files);
    auto shmem = read_table<ShmemRecord>(shared, "shmem");
    shmem.push_back({2, 10000, static_cast<uint32_t>(VmaKind::DeletedFile), 0, "/scratch/gone (deleted)"});
    H5Ldelete(shared, "shmem", H5P_DEFAULT);
    write_table(shared, "shmem", shmem);
    h5::Hid object = h5::create_group(writer.root(), shmem_group_name(2));
    auto pages = writer.page_writer(object);
    pages->append(0, std::span<const uint8_t>(memory).first(3 * kPageSize));
    pages->finish();
    try {
        writer.finish(0);
    } catch (const ImageError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(RankImage, DescriptorsOfUnlinkedFilesAreChecked) {
    ScratchDir dir;
    const auto deleted = static_cast<uint32_t>(FileKind::DeletedFile);
    const auto memfd = static_cast<uint32_t>(FileKind::Memfd);
    EXPECT_EQ(with_unlinked_files(dir / "ok.h5", {{10, deleted, O_RDWR, 5, 10000, 0100600, 0, 2, "/scratch/gone (deleted)"}}), "");
    std::string err = with_unlinked_files(dir / "dangling.h5", {{10, memfd, O_RDWR, 0, 4096, 0100777, 0, 7, "/memfd:x (deleted)"}});
    EXPECT_NE(err.find("file 10 refers to shared memory 7"), std::string::npos) << err;
    err = with_unlinked_files(dir / "kind.h5", {{10, memfd, O_RDWR, 0, 4096, 0100777, 0, 2, "/memfd:x (deleted)"}});
    EXPECT_NE(err.find("disagree on the kind"), std::string::npos) << err;
    err = with_unlinked_files(dir / "unknown.h5", {{10, 11, O_RDWR, 0, 0, 0100600, 0, 0, "/x"}});
    EXPECT_NE(err.find("unknown kind"), std::string::npos) << err;
}

TEST(RankImage, KilledBeforeRenameLeavesNoRankFile) {
    ScratchDir dir;
    const std::string path = dir / "rank-00000.h5";
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        setenv("CKPT_FAULT", std::string(ckpt::fault_name(ckpt::FaultPoint::RankBeforeRename)).c_str(), 1);
        write_rank(path, Compression::None, SyntheticSpec{1, 1, 1 << 20});
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_THROW(RankReader{path}, ImageError);
}
