// ckpt under SLURM (slurm/slurm_job.hpp): durations, squeue's time left,
// the job's directory and run id, checkpoint signals, the decision to
// resume, and ckpt-ctl's directory.
#include "slurm/slurm_job.hpp"
#include "agent/sys.hpp"

#include "test_util.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace ckpt::slurm;
using ckpt::agent::EngineError;

namespace {

// Sets SLURM variables for one test, and takes them away after.
class SlurmEnv {
public:
    SlurmEnv(const char* job, const char* restarts, const char* step) {
        set("SLURM_JOB_ID", job);
        set("SLURM_RESTART_COUNT", restarts);
        set("SLURM_STEP_ID", step);
    }
    ~SlurmEnv() {
        for (const char* n : {"SLURM_JOB_ID", "SLURM_RESTART_COUNT", "SLURM_STEP_ID", "CKPT_JOBS_DIR"}) unsetenv(n);
    }
    void set(const char* name, const char* value) {
        if (value) setenv(name, value, 1);
        else unsetenv(name);
    }
};

void committed_checkpoint(const std::filesystem::path& dir, int seq) {
    char name[32];
    snprintf(name, sizeof name, "ckpt-%06d", seq);
    std::filesystem::create_directories(dir / name);
    std::ofstream(dir / name / "manifest.h5") << "x";
}

}  // namespace

TEST(SlurmDuration, Forms) {
    EXPECT_EQ(parse_duration("90", "--x"), 90u);
    EXPECT_EQ(parse_duration("90s", "--x"), 90u);
    EXPECT_EQ(parse_duration("15m", "--x"), 900u);
    EXPECT_EQ(parse_duration("2h", "--x"), 7200u);
    EXPECT_EQ(parse_duration("1:30", "--x"), 90u);
    EXPECT_EQ(parse_duration("1:00:05", "--x"), 3605u);
    for (const char* bad : {"", "m", "5x", "-3", "1:2:3:4", "1::2", "1.5h"}) {
        try {
            parse_duration(bad, "--before-walltime");
            ADD_FAILURE() << "accepted " << bad;
        } catch (const EngineError& e) {
            EXPECT_NE(std::string(e.what()).find("--before-walltime"), std::string::npos) << e.what();
        }
    }
}

TEST(SlurmTimeLeft, SqueueFormats) {
    EXPECT_EQ(parse_time_left("UNLIMITED\n"), std::nullopt);
    EXPECT_EQ(parse_time_left("NOT_SET"), std::nullopt);
    EXPECT_EQ(parse_time_left("0:45\n"), 45);
    EXPECT_EQ(parse_time_left("59:59"), 3599);
    EXPECT_EQ(parse_time_left("1:00:00"), 3600);
    EXPECT_EQ(parse_time_left("2-03:04:05"), 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
    EXPECT_EQ(parse_time_left("5"), 300);  // a bare number is minutes
    EXPECT_THROW(parse_time_left("soon"), EngineError);
    EXPECT_THROW(parse_time_left("x-1:00"), EngineError);
}

TEST(SlurmJob, RunIdChangesWithRequeueNotDirectory) {
    SlurmEnv env("1234", nullptr, "0");
    auto first = current_job();
    ASSERT_TRUE(first);
    EXPECT_EQ(run_id(*first), "slurm-1234.0");
    EXPECT_EQ(job_dir_name(*first, ""), "slurm-1234");
    env.set("SLURM_RESTART_COUNT", "2");
    auto again = current_job();
    EXPECT_EQ(run_id(*again), "slurm-1234.0.r2");
    EXPECT_EQ(job_dir_name(*again, ""), "slurm-1234");
    env.set("SLURM_STEP_ID", nullptr);
    EXPECT_EQ(run_id(*current_job()), "slurm-1234.batch.r2");
    env.set("SLURM_RESTART_COUNT", "two");
    EXPECT_THROW(current_job(), EngineError);
}

TEST(SlurmJob, DirectoryNames) {
    Job j{"77", std::nullopt, std::nullopt};
    EXPECT_EQ(job_dir_name(j, "sim42"), "sim42");
    EXPECT_EQ(job_dir_name(j, "88"), "slurm-88");
    EXPECT_THROW(job_dir_name(j, "../x"), EngineError);
    EXPECT_THROW(job_dir_name(j, ".."), EngineError);
    EXPECT_EQ(job_dir("/s/ckpt", "slurm-77"), "/s/ckpt/slurm-77");
    EXPECT_EQ(job_dir("/s/ckpt/", "slurm-77"), "/s/ckpt/slurm-77");
    EXPECT_EQ(job_dir("/s/ckpt/slurm-77", "slurm-77"), "/s/ckpt/slurm-77");  // already the job's
}

TEST(SlurmSignals, Names) {
    EXPECT_EQ(parse_checkpoint_signal("USR1"), SIGUSR1);
    EXPECT_EQ(parse_checkpoint_signal("SIGTERM"), SIGTERM);
    EXPECT_EQ(parse_checkpoint_signal(std::to_string(SIGUSR2)), SIGUSR2);
    for (const char* bad : {"KILL", "SIGSTOP", "CONT", "9", "USR3"}) EXPECT_THROW(parse_checkpoint_signal(bad), EngineError) << bad;
    Options o;
    o.checkpoint_signals = {SIGUSR1};
    EXPECT_TRUE(take_checkpoint_signal(o, SIGUSR1, 0));
    EXPECT_FALSE(take_checkpoint_signal(o, SIGTERM, 0));
    EXPECT_EQ(watcher_args(o, "/d", "slurm-1.0", 1, 1), std::nullopt);  // rank 0's only
    EXPECT_TRUE(watcher_args(o, "/d", "slurm-1.0", 0, 1));
    EXPECT_EQ(watcher_args(Options{}, "/d", "slurm-1.0", 0, 1), std::nullopt);
}

TEST(SlurmPlan, OutsideSlurmNothingChanges) {
    ckpt::test::ScratchDir dir;
    SlurmEnv env(nullptr, nullptr, nullptr);
    auto p = plan_launch(dir / "ck", "", true, "", 0);
    EXPECT_EQ(p.ckpt_dir, dir / "ck");
    EXPECT_EQ(p.restart, "");
    EXPECT_FALSE(p.drop_program);
    EXPECT_EQ(plan_launch(dir / "ck", "never", true, "", 0).restart, "");
    EXPECT_FALSE(plan_launch(dir / "ck", "auto", true, "", 0).drop_program);  // refused outside SLURM
}

TEST(SlurmPlan, ResumesFromTheJobsOwnCheckpoints) {
    ckpt::test::ScratchDir dir;
    SlurmEnv env("55", nullptr, "0");
    env.set("CKPT_JOBS_DIR", (dir / "jobs").c_str());
    // A first run: nothing to resume; the job's directory is recorded.
    auto first = plan_launch(dir / "ck", "", true, "", 0);
    EXPECT_EQ(first.ckpt_dir, dir / "ck/slurm-55");
    EXPECT_EQ(first.restart, "");
    EXPECT_EQ(std::filesystem::read_symlink(dir / "jobs/slurm-55"), std::filesystem::absolute(dir / "ck/slurm-55"));
    // Requeued with nothing committed: starts anew, and says so.
    env.set("SLURM_RESTART_COUNT", "1");
    auto none = plan_launch(dir / "ck", "", true, "", 0);
    EXPECT_EQ(none.restart, "");
    ASSERT_EQ(none.notes.size(), 1u);
    EXPECT_NE(none.notes[0].find("starts from the beginning"), std::string::npos) << none.notes[0];
    // A committed checkpoint: every rank resumes, rank 0 says it once.
    committed_checkpoint(dir / "ck/slurm-55", 3);
    auto rank0 = plan_launch(dir / "ck", "", true, "", 0);
    EXPECT_EQ(rank0.restart, "auto");
    EXPECT_TRUE(rank0.drop_program);
    ASSERT_EQ(rank0.notes.size(), 1u);
    EXPECT_NE(rank0.notes[0].find("ckpt-000003"), std::string::npos) << rank0.notes[0];
    auto rank3 = plan_launch(dir / "ck", "", true, "", 3);
    EXPECT_EQ(rank3.restart, "auto");
    EXPECT_TRUE(rank3.notes.empty());
    // --restart=never, and an explicit path, are left alone.
    EXPECT_EQ(plan_launch(dir / "ck", "never", true, "", 0).restart, "");
    EXPECT_EQ(plan_launch(dir / "ck", "/else/ckpt-000001", false, "", 0).restart, "/else/ckpt-000001");
    EXPECT_TRUE(plan_launch(dir / "ck", "/else/ckpt-000001", true, "", 0).drop_program);  // a batch script's program
    // Another job on the same --ckpt-dir does not see job 55's checkpoints.
    env.set("SLURM_JOB_ID", "56");
    EXPECT_EQ(plan_launch(dir / "ck", "", true, "", 0).restart, "");
}

TEST(SlurmCtl, Directory) {
    ckpt::test::ScratchDir dir;
    SlurmEnv env(nullptr, nullptr, nullptr);
    env.set("CKPT_JOBS_DIR", (dir / "jobs").c_str());
    std::filesystem::create_directories(dir / "ck/slurm-9");
    EXPECT_EQ(ctl_dir(dir / "ck", "9"), dir / "ck/slurm-9");
    EXPECT_EQ(ctl_dir(dir / "ck", "slurm-9"), dir / "ck/slurm-9");
    EXPECT_THROW(ctl_dir(dir / "ck", "10"), EngineError);
    EXPECT_EQ(ctl_dir(dir / "ck", ""), dir / "ck");  // outside a job, --ckpt-dir DIR is DIR
    EXPECT_EQ(ctl_dir(dir / "ck/slurm-9", ""), dir / "ck/slurm-9");
    try {
        ctl_dir("", "9");
        ADD_FAILURE() << "found a job without a record";
    } catch (const EngineError& e) {
        EXPECT_NE(std::string(e.what()).find(dir / "jobs"), std::string::npos) << e.what();
    }
    register_job_dir(Job{"9", std::nullopt, std::nullopt}, dir / "ck/slurm-9");
    EXPECT_EQ(ctl_dir("", "9"), dir / "ck/slurm-9");
    // Inside the job, DIR means the job's directory under it, and nothing means the record.
    env.set("SLURM_JOB_ID", "9");
    EXPECT_EQ(ctl_dir(dir / "ck", ""), dir / "ck/slurm-9");
    EXPECT_EQ(ctl_dir("", ""), dir / "ck/slurm-9");
}
