// The fault points of image/fault.hpp: how CKPT_FAULT selects them, and
// that every one is documented. Each case that reaches a point runs in a
// child process, which the point kills or stops.
#include "image/fault.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <functional>
#include <set>
#include <sstream>

using ckpt::FaultPoint;
using ckpt::test::ScratchDir;

namespace {

// Runs body in a child with the environment env (name, value); returns the
// child's wait status. A child that stops is continued once and reported
// as stopped (WIFSTOPPED), then reaped.
struct Outcome {
    bool stopped = false;
    int status = 0;  // the final wait status
};

Outcome in_child(const std::vector<std::pair<std::string, std::string>>& env, const std::function<void()>& body) {
    pid_t child = fork();
    if (child == 0) {
        for (const char* name : {"CKPT_FAULT", "CKPT_FAULT_RANK", "CKPT_FAULT_ARM"}) unsetenv(name);
        for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
        body();
        _exit(7);
    }
    Outcome out;
    int st = 0;
    waitpid(child, &st, WUNTRACED);
    if (WIFSTOPPED(st)) {
        out.stopped = true;
        kill(child, SIGCONT);
        waitpid(child, &st, 0);
    }
    out.status = st;
    return out;
}

bool killed(const Outcome& o) { return !o.stopped && WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGKILL; }
bool went_on(const Outcome& o) { return WIFEXITED(o.status) && WEXITSTATUS(o.status) == 7; }

}  // namespace

TEST(FaultPoint, NamedPointKillsByDefaultOthersDoNothing) {
    auto o = in_child({{"CKPT_FAULT", "agent-dumping"}}, [] {
        ckpt::fault_point(FaultPoint::RankDumped);
        ckpt::fault_point(FaultPoint::AgentDumping);
    });
    EXPECT_TRUE(killed(o));
    EXPECT_TRUE(went_on(in_child({{"CKPT_FAULT", "agent-dumping"}}, [] { ckpt::fault_point(FaultPoint::RankDumped); })));
    EXPECT_TRUE(went_on(in_child({}, [] { ckpt::fault_point(FaultPoint::RankDumped); })));
}

TEST(FaultPoint, StopActionStopsAndGoesOnWhenContinued) {
    auto o = in_child({{"CKPT_FAULT", "commit-before-rename,coordinator-dumping:stop"}},
                      [] { ckpt::fault_point(FaultPoint::CoordinatorDumping); });
    EXPECT_TRUE(o.stopped);
    EXPECT_TRUE(went_on(o));
}

TEST(FaultPoint, RankSelectorConcernsRankPointsOnly) {
    const std::vector<std::pair<std::string, std::string>> env = {{"CKPT_FAULT", "rank-dump-start,coordinator-dumping"},
                                                                   {"CKPT_FAULT_RANK", "2"}};
    EXPECT_TRUE(went_on(in_child(env, [] { ckpt::fault_point(FaultPoint::RankDumpStart, 1); })));
    EXPECT_TRUE(killed(in_child(env, [] { ckpt::fault_point(FaultPoint::RankDumpStart, 2); })));
    EXPECT_TRUE(killed(in_child(env, [] { ckpt::fault_point(FaultPoint::CoordinatorDumping); })));
}

TEST(FaultPoint, ArmedOnlyOnceTheFileExists) {
    ScratchDir scratch;
    const std::string arm = scratch / "armed";
    const std::vector<std::pair<std::string, std::string>> env = {{"CKPT_FAULT", "rank-dumped"}, {"CKPT_FAULT_ARM", arm}};
    EXPECT_TRUE(went_on(in_child(env, [] { ckpt::fault_point(FaultPoint::RankDumped, 0); })));
    std::ofstream(arm).put('\n');
    EXPECT_TRUE(killed(in_child(env, [] { ckpt::fault_point(FaultPoint::RankDumped, 0); })));
}

TEST(FaultPoint, MisspeltSpecificationIsAnError) {
    auto error_with = [](const std::vector<std::pair<std::string, std::string>>& env) {
        auto o = in_child(env, [] { _exit(ckpt::fault_spec_error().empty() ? 0 : 1); });
        return WIFEXITED(o.status) && WEXITSTATUS(o.status) == 1;
    };
    EXPECT_FALSE(error_with({}));
    EXPECT_FALSE(error_with({{"CKPT_FAULT", "rank-dumped:stop,commit-before-latest:kill"}, {"CKPT_FAULT_RANK", "3"}}));
    EXPECT_TRUE(error_with({{"CKPT_FAULT", "rank-dumpd"}}));
    EXPECT_TRUE(error_with({{"CKPT_FAULT", "rank-dumped:hang"}}));
    EXPECT_TRUE(error_with({{"CKPT_FAULT", "rank-dumped"}, {"CKPT_FAULT_RANK", "two"}}));
}

TEST(FaultPoint, EveryPointIsNamedOnceAndDocumented) {
    std::ifstream doc(std::string(CKPT_SOURCE_DIR) + "/docs/architecture.md");
    ASSERT_TRUE(doc) << "cannot read docs/architecture.md";
    std::stringstream text;
    text << doc.rdbuf();
    std::set<std::string_view> names;
    for (const auto& info : ckpt::fault_points()) {
        EXPECT_TRUE(names.insert(info.name).second) << info.name << " is named twice";
        EXPECT_EQ(ckpt::fault_name(info.point), info.name);
        EXPECT_NE(text.str().find("`" + std::string(info.name) + "`"), std::string::npos)
            << "fault point " << info.name << " is not in docs/architecture.md";
    }
}
