// The node agent: one per node and job, started by the node's local rank 0.
// It holds the node's one connection to the coordinator and hands messages
// between it and the ranks' ckpt-run on the node (a unix socket in the
// user's private runtime directory).
#pragma once

#include <chrono>
#include <string>

namespace ckpt::agent {

struct NodeAgentOptions {
    std::string ckpt_dir;
    std::string job_id;
    std::chrono::seconds connect_timeout{120};
    int verbosity = 1;
};

// Returns the agent process's exit status.
int run_node_agent(const NodeAgentOptions& options);

}  // namespace ckpt::agent
