// plan_spawn: who forks whom at restore, which stand-ins stand for exited
// leaders, who joins which group, and which shapes are refused.
#include "agent/process.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

using namespace ckpt::agent;

namespace {

TaskRecord task(int32_t pid, int32_t ppid, int32_t pgid, int32_t sid) {
    TaskRecord t;
    t.pid = pid;
    t.ppid = ppid;
    t.pgid = pgid;
    t.sid = sid;
    t.nthreads = 1;
    return t;
}

TaskRecord zombie(int32_t pid, int32_t ppid, int32_t pgid, int32_t sid) {
    TaskRecord t = task(pid, ppid, pgid, sid);
    t.state = static_cast<uint32_t>(TaskState::Zombie);
    t.nthreads = 0;
    return t;
}

std::vector<int32_t> children(const SpawnPlan& plan, int32_t pid) { return plan.node(pid).children; }

std::string refusal(const std::vector<TaskRecord>& tasks) {
    try {
        plan_spawn(tasks);
    } catch (const EngineError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(SpawnPlan, PlainTreeNeedsNoStandIn) {
    const SpawnPlan plan = plan_spawn({task(2, 1, 1, 1), task(3, 2, 3, 1), task(4, 3, 3, 1), task(5, 2, 5, 5)});
    EXPECT_EQ(plan.stand_ins, 0u);
    EXPECT_EQ(plan.joiners, 0u);
    EXPECT_EQ(plan.processes, 4u);
    EXPECT_EQ(children(plan, 1), (std::vector<int32_t>{2}));
    EXPECT_EQ(children(plan, 2), (std::vector<int32_t>{3, 5}));
    EXPECT_TRUE(plan.node(3).new_group);
    EXPECT_FALSE(plan.node(4).new_group);
    EXPECT_TRUE(plan.node(5).new_session);
}

// The shapes of tests/victims/pgid_session.cpp.
TEST(SpawnPlan, ExitedLeadersGetStandIns) {
    const SpawnPlan plan = plan_spawn({
        task(2, 1, 1, 1),   // the victim, a child subreaper
        task(3, 2, 3, 3),   // S: its own session
        task(4, 2, 4, 1),   // G
        task(5, 2, 4, 1),   // H, in G's group
        task(7, 2, 6, 1),   // Y: group 6's leader exited
        task(8, 3, 3, 3),   // S1
        task(9, 3, 9, 3),   // S2
        task(11, 2, 10, 10) // M: session 10's leader exited
    });
    EXPECT_EQ(plan.stand_ins, 2u);
    EXPECT_EQ(plan.processes, 10u);
    // Session 10's stand-in is forked by M's parent and forks M.
    EXPECT_TRUE(plan.node(10).stand_in);
    EXPECT_TRUE(plan.node(10).new_session);
    EXPECT_EQ(children(plan, 10), (std::vector<int32_t>{11}));
    EXPECT_TRUE(plan.node(2).adopts);
    EXPECT_EQ(plan.node(11).join, 0);  // inherits group 10 from the stand-in
    // Group 6's stand-in is forked by Y's parent; Y joins it, H joins G.
    EXPECT_TRUE(plan.node(6).stand_in);
    EXPECT_TRUE(plan.node(6).new_group);
    EXPECT_TRUE(plan.node(6).children.empty());
    EXPECT_EQ(plan.node(7).join, 6);
    EXPECT_EQ(plan.node(5).join, 4);
    EXPECT_EQ(plan.joiners, 2u);
    const auto& victim = children(plan, 2);
    EXPECT_NE(std::find(victim.begin(), victim.end(), 6), victim.end());
    EXPECT_NE(std::find(victim.begin(), victim.end(), 10), victim.end());
    EXPECT_EQ(std::find(victim.begin(), victim.end(), 11), victim.end());
}

TEST(SpawnPlan, GroupStandInInsideASessionStandIn) {
    // 5 adopted by 2: session 3 and group 4 have lost their leaders.
    const SpawnPlan plan = plan_spawn({task(2, 1, 1, 1), task(5, 2, 4, 3)});
    EXPECT_EQ(children(plan, 2), (std::vector<int32_t>{3}));
    EXPECT_EQ(children(plan, 3), (std::vector<int32_t>{5, 4}));
    EXPECT_TRUE(plan.node(4).stand_in && plan.node(4).new_group);
    EXPECT_EQ(plan.node(5).join, 4);
}

TEST(SpawnPlan, OrphansOfInitComeFromAStandInOfInit) {
    const SpawnPlan plan = plan_spawn({task(2, 1, 1, 1), task(4, 1, 3, 3)});
    EXPECT_EQ(children(plan, 1), (std::vector<int32_t>{3, 2}));
    EXPECT_EQ(children(plan, 3), (std::vector<int32_t>{4}));
    EXPECT_FALSE(plan.node(1).adopts);  // init adopts orphans anyway
}

TEST(SpawnPlan, AZombieLeaderForksTheOrphansOfItsSession) {
    const SpawnPlan plan = plan_spawn({task(2, 1, 1, 1), zombie(3, 2, 3, 3), task(4, 2, 3, 3)});
    EXPECT_EQ(plan.stand_ins, 0u);
    EXPECT_EQ(children(plan, 3), (std::vector<int32_t>{4}));
    EXPECT_TRUE(plan.node(2).adopts);
}

TEST(SpawnPlan, LeadersOutsideTheirGroupAndParentsInTheirChildsGroup) {
    // 3 made group 3 and went back to group 1; 4 stays in group 3.
    // 5 joined the group of its child 6.
    const SpawnPlan plan = plan_spawn({task(2, 1, 1, 1), task(3, 2, 1, 1), task(4, 3, 3, 1), task(5, 2, 6, 1), task(6, 5, 6, 1)});
    EXPECT_TRUE(plan.node(3).new_group);
    EXPECT_EQ(plan.node(3).join, 1);
    EXPECT_EQ(plan.node(4).join, 0);
    EXPECT_EQ(plan.node(5).join, 6);
    EXPECT_TRUE(plan.node(6).new_group);
    EXPECT_EQ(plan.stand_ins, 0u);
}

TEST(SpawnPlan, RefusesWhatCannotComeBack) {
    auto refused = [](const std::vector<TaskRecord>& tasks, const std::string& start) {
        const std::string why = refusal(tasks);
        EXPECT_EQ(why.rfind(start, 0), 0u) << why;
    };
    // Adopted out of a session whose leader still runs.
    refused({task(2, 1, 1, 1), task(3, 2, 3, 3), task(5, 2, 3, 3)},
            "process 5: it is in session 3 but its parent 2 is not, and the session's leader still runs");
    // One session's orphans adopted by two processes.
    refused({task(2, 1, 1, 1), task(3, 2, 1, 1), task(5, 2, 4, 4), task(6, 3, 4, 4)},
            "process 6: it is in session 4 but its parent 3 is not, and other processes of that session");
    // A zombie leader whose orphan went elsewhere.
    refused({task(2, 1, 1, 1), task(3, 2, 1, 1), zombie(4, 2, 4, 4), task(5, 3, 4, 4)},
            "process 5: it is in session 4 but its parent 3 is not, and the session's leader is a zombie whose parent is 2");
    // Shapes the kernel does not make.
    refused({task(2, 1, 1, 1), task(3, 2, 4, 3)}, "process 3: it leads session 3 but is in process group 4");
    refused({task(2, 1, 1, 1), task(3, 2, 3, 3), task(4, 3, 3, 1)}, "process 4: it is in session 1 but its process group 3 is in session 3");
    refused({task(2, 1, 0, 1)}, "process 2: its process group or session lies outside the job");
    refused({task(2, 1, 1, 1), task(4, 2, 4, 2)}, "process 4: it is in session 2, which process 2 created but is not in");
    refused({task(2, 3, 1, 1), task(3, 2, 1, 1)}, "process 2: its ancestors in the image form a cycle");
}
