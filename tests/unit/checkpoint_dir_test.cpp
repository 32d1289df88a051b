#include "image/checkpoint_dir.hpp"
#include "image/error.hpp"
#include "image/fault.hpp"
#include "image/inspect.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

using namespace ckpt::image;
using ckpt::test::ScratchDir;
namespace fs = std::filesystem;

TEST(CheckpointDir, CommitMovesLatestAndCheckpointValidates) {
    ScratchDir scratch;
    CheckpointDir dir(scratch / "ckpt");
    EXPECT_FALSE(dir.latest());
    std::string first = ckpt::test::make_checkpoint(dir, 3);
    EXPECT_EQ(fs::path(first).filename(), "ckpt-000001");
    ASSERT_TRUE(dir.latest());
    EXPECT_EQ(dir.latest()->sequence, 1u);
    std::string second = ckpt::test::make_checkpoint(dir, 3, Compression::Zstd);
    EXPECT_EQ(dir.latest()->sequence, 2u);
    EXPECT_EQ(fs::read_symlink(scratch.path() / "ckpt" / "latest"), "ckpt-000002");

    Manifest m = read_manifest(second);
    EXPECT_EQ(m.info.nranks, 3u);
    EXPECT_EQ(m.info.nnodes, 2u);
    EXPECT_EQ(m.info.sequence, 2u);
    EXPECT_EQ(m.ranks[2].file, "rank-00002.h5");

    auto report = inspect(scratch / "ckpt", true, 2);
    EXPECT_TRUE(report.error.empty()) << report.error;
    EXPECT_EQ(report.path, fs::canonical(second).string());
    EXPECT_EQ(report.ranks.size(), 3u);
    EXPECT_GT(report.totals.stored_bytes, report.totals.on_disk_bytes);
}

TEST(CheckpointDir, RetentionKeepsNewestAndNeverLatest) {
    ScratchDir scratch;
    CheckpointDir dir(scratch / "ckpt");
    for (int i = 0; i < 4; ++i) ckpt::test::make_checkpoint(dir, 1);
    dir.apply_retention(2);
    auto left = dir.committed();
    ASSERT_EQ(left.size(), 2u);
    EXPECT_EQ(left[0].sequence, 3u);
    EXPECT_EQ(left[1].sequence, 4u);
    dir.apply_retention(0);  // treated as 1: the latest survives
    left = dir.committed();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].sequence, 4u);
    EXPECT_TRUE(inspect(scratch / "ckpt", true, 1).error.empty());
}

TEST(CheckpointDir, AbortedCheckpointDisappearsAndSequenceMovesOn) {
    ScratchDir scratch;
    CheckpointDir dir(scratch / "ckpt");
    ckpt::test::make_checkpoint(dir, 1);
    {
        auto pending = dir.begin();
        EXPECT_EQ(pending.sequence(), 2u);
        EXPECT_TRUE(fs::exists(pending.partial_path()));
        // destroyed without commit
    }
    EXPECT_FALSE(fs::exists(scratch.path() / "ckpt" / "ckpt-000002.partial"));
    EXPECT_EQ(dir.latest()->sequence, 1u);
    // The directory alone no longer knows that 2 was used; the coordinator
    // that aborted it does, and asks for a higher number.
    EXPECT_EQ(dir.begin().sequence(), 2u);
    EXPECT_EQ(dir.begin(3).sequence(), 3u);
    EXPECT_EQ(dir.begin(1).sequence(), 2u);
}

// A rank still dumping when its checkpoint is aborted (its coordinator saw
// another rank fail) cannot leave its file behind, whether it began before
// or after the abort. (The partial is renamed away before it is removed, so
// neither can a file created while the removal runs: that window is not
// reproducible here.)
TEST(CheckpointDir, AbortedCheckpointTakesNoLateRankFile) {
    ScratchDir scratch;
    CheckpointDir dir(scratch / "ckpt");
    auto pending = dir.begin();
    RankHeader header;
    header.rank = 3;
    header.job_id = "job-1";
    SyntheticSpec spec{1, 1, 1 << 16};
    auto memory = synthetic_memory(spec.bytes_per_task, 0.5, 1);
    {
        RankWriter writing(pending.rank_path(3), header, PageOptions{});  // began before the abort
        write_synthetic_rank(writing, spec, memory);
        pending.abort();
        EXPECT_THROW(writing.finish(1), ImageError);
    }
    EXPECT_THROW(RankWriter(pending.rank_path(2), header, PageOptions{}), ImageError);  // began after it
    for (const auto& entry : fs::directory_iterator(scratch.path() / "ckpt"))
        EXPECT_TRUE(entry.path().filename().string().starts_with(".")) << "left behind: " << entry.path();
}

TEST(CheckpointDir, LeftoversOfADeadRemoverAreSwept) {
    ScratchDir scratch;
    CheckpointDir dir(scratch / "ckpt");
    for (const char* name : {"ckpt-000004.deleting", "ckpt-000005.partial.deleting"}) {
        fs::create_directories(scratch.path() / "ckpt" / name / "sub");
        std::ofstream(scratch.path() / "ckpt" / name / "rank-00000.h5").put('x');
    }
    fs::create_directories(scratch.path() / "ckpt" / "notes.deleting");  // not ours
    dir.remove_abandoned();
    EXPECT_FALSE(fs::exists(scratch.path() / "ckpt" / "ckpt-000004.deleting"));
    EXPECT_FALSE(fs::exists(scratch.path() / "ckpt" / "ckpt-000005.partial.deleting"));
    EXPECT_TRUE(fs::exists(scratch.path() / "ckpt" / "notes.deleting"));
}

TEST(CheckpointDir, CommitRefusesMissingRank) {
    ScratchDir scratch;
    CheckpointDir dir(scratch / "ckpt");
    auto pending = dir.begin();
    std::vector<ManifestRankRecord> rows(2);
    rows[0].rank = 0;
    rows[1].rank = 2;
    EXPECT_THROW(pending.commit("j", 0, rows), ImageError);
    EXPECT_FALSE(dir.latest());
}

// A writer killed at any point of the commit leaves the previous checkpoint
// as `latest`, intact; the next begin() clears what the dead writer left.
class CommitCrash : public ::testing::TestWithParam<ckpt::FaultPoint> {};

TEST_P(CommitCrash, PreviousCheckpointSurvives) {
    ScratchDir scratch;
    const std::string path = scratch / "ckpt";
    {
        CheckpointDir dir(path);
        ckpt::test::make_checkpoint(dir, 2);
    }
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        setenv("CKPT_FAULT", std::string(ckpt::fault_name(GetParam())).c_str(), 1);
        CheckpointDir dir(path);
        ckpt::test::make_checkpoint(dir, 2);
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "fault point not reached";

    CheckpointDir dir(path);
    ASSERT_TRUE(dir.latest());
    const auto latest = *dir.latest();
    if (GetParam() == ckpt::FaultPoint::CommitBeforeLatest) {
        // The new checkpoint is complete; only `latest` had not moved yet.
        EXPECT_EQ(dir.committed().size(), 2u);
    } else {
        EXPECT_EQ(dir.committed().size(), 1u);
    }
    EXPECT_EQ(latest.sequence, 1u);
    auto report = inspect(path, true, 1);
    EXPECT_TRUE(report.error.empty()) << report.error;
    EXPECT_EQ(report.manifest->sequence, 1u);

    // The dead writer's leftovers are gone; only the new writer's own lock
    // is in the new partial directory.
    auto next = dir.begin();
    EXPECT_EQ(next.sequence(), GetParam() == ckpt::FaultPoint::CommitBeforeLatest ? 3u : 2u);
    for (const auto& entry : fs::directory_iterator(next.partial_path())) EXPECT_EQ(entry.path().filename(), ".lock");
    size_t partials = 0;
    for (const auto& entry : fs::directory_iterator(path)) partials += entry.path().filename().string().ends_with(".partial");
    EXPECT_EQ(partials, 1u);
}

INSTANTIATE_TEST_SUITE_P(FaultPoints, CommitCrash,
                         ::testing::Values(ckpt::FaultPoint::RankBeforeRename, ckpt::FaultPoint::CommitBeforeManifest,
                                           ckpt::FaultPoint::CommitManifestUnrenamed, ckpt::FaultPoint::CommitBeforeRename,
                                           ckpt::FaultPoint::CommitBeforeLatest),
                         [](const auto& info) {
                             std::string n(ckpt::fault_name(info.param));
                             for (char& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });
